//! The write model's rules: each aggregate decides its own commands against its state and evolves
//! that state from its stream's events. Nothing here does I/O, waits, or reads a clock, so every
//! rule is tested by handing it events and a command.

pub mod chat;
pub mod messages;
pub mod recent;
pub mod self_chat;
pub mod user;

use events_schema::{Accepted, DomainEvent, RecordedEvent, RefusalCode};

/// State rebuilt from one stream's events, and the decisions taken on it.
pub trait Aggregate: Default + Clone + Send + 'static {
    /// What this aggregate can be asked to do, with every value the decision needs (the acting
    /// user, ids chosen by the caller). Commands wait in a stream's queue and are decided on
    /// another task, hence `Send + Sync + 'static`.
    type Command: Send + Sync + 'static;

    /// Decides `command` on the current state: the events to append, "already done", or a refusal.
    fn decide(&self, command: &Self::Command) -> Result<Decision, Refusal>;

    /// Evolves the state by one stored event (`recorded` gives its version, position and time).
    fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent);
}

/// What a decision asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Append these events.
    Append(Vec<DomainEvent>),
    /// Nothing to write: what was asked is already true (an idempotent repeat).
    AlreadyDone(Accepted),
}

/// A refused command: nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
pub mod testing;
