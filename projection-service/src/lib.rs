//! The projection-service: the global event log in, read models out (user directory, chat lists,
//! message pages), in PostgreSQL or SQLite.
//!
//! [`Projector::apply`] applies a batch of events and moves the checkpoint in the same transaction,
//! so a crash never leaves a model ahead of or behind its checkpoint, and an event applied twice
//! changes nothing. [`run`] follows the log from the checkpoint forever. [`queries`] are the reads
//! the gateway answers with.

pub mod audit_cli;
pub mod nats;
mod projector;
pub mod queries;
pub mod replay;

pub use projector::{run, Projector};
