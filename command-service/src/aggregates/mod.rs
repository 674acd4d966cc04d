//! Aggregates: `apply` evolves state from an event, `decide_*` functions decide commands. Neither
//! does I/O.

pub mod chat;
pub mod recent;
pub mod self_chat;
pub mod user;

use events_schema::{Accepted, DomainEvent, RecordedEvent, RefusalCode};

/// State rebuilt from a stream's events.
pub trait Aggregate: Default + Send + 'static {
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

/// Given/when/then helpers for aggregate tests.
#[cfg(test)]
pub mod testing {
    use super::Aggregate;
    use events_schema::{DomainEvent, RecordedEvent};

    /// The state after `events` (positions 1, 2, … and versions 0, 1, … in order).
    pub fn given<A: Aggregate>(events: &[DomainEvent]) -> A {
        let mut state = A::default();
        for (i, event) in events.iter().enumerate() {
            let recorded = RecordedEvent {
                event_id: uuid::Uuid::now_v7(),
                stream: "test".into(),
                version: i as u64,
                position: i as u64 + 1,
                event_type: event.event_type().into(),
                schema_version: event.schema_version(),
                occurred_at: events_schema::envelope::now_millis(),
                actor: None,
                correlation_id: uuid::Uuid::nil(),
                causation_id: None,
                payload: event.payload(),
            };
            state.apply(event, &recorded);
        }
        state
    }
}
