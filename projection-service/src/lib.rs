//! The projection-service: the global event log in, read models out (user directory, chat lists,
//! message pages), in PostgreSQL or SQLite.
//!
//! - [`read_models`]: the tables, how each event changes them ([`Projector::apply`] applies a batch
//!   and moves the checkpoint in the same transaction, so a crash never leaves a model ahead of or
//!   behind its checkpoint, and an event applied twice changes nothing), the events parked because
//!   they cannot be applied, and the queries the gateway answers with.
//! - [`follow`]: feeding the projector, from the event store ([`run`]) or from NATS ([`nats`]).
//! - [`replay`]: rebuilding the read models from the log beside the live ones, then swapping.
//! - [`audit`]: the full history of a chat or a user, for the audit routes and the command line.

pub mod audit;
pub mod follow;
pub mod read_models;
pub mod replay;

pub use follow::{nats, run};
pub use read_models::{dead_letters, memberships, queries, Projector};
