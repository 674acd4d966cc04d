//! The event catalogue of the chat backend.
//!
//! Everything here is a public contract between the services: the envelope every stored event
//! carries ([`envelope`]), the events themselves ([`events`]), the commands the gateway sends to the
//! command-service and the outcomes it answers with ([`commands`]), the identifiers and validated
//! values they are made of ([`ids`], [`values`]) and the stream names ([`streams`]).
//!
//! The JSON shape of each is documented in `docs/events.md` and pinned by round-trip tests.

pub mod commands;
pub mod emoji;
pub mod envelope;
pub mod events;
pub mod fixtures;
pub mod ids;
pub mod streams;
pub mod values;

pub use commands::{Accepted, ChatKind, Command, CommandEnvelope, CommandOutcome, RefusalCode};
pub use emoji::Emoji;
pub use envelope::{EventMetadata, NewEvent, Position, RecordedEvent};
pub use events::{DecodeError, DomainEvent};
pub use ids::{ChatId, MessageId, UserId};
pub use values::{ClientId, Content, Description, GroupName, UserName, ValueError};
