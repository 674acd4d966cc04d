//! Given/when/then for aggregate tests: given these stored events, when this command, then exactly
//! these new events (or this refusal, or this "already done"). Each `then…` returns the history with
//! the decision's events stored, so a scenario reads as one chain.

use chrono::{DateTime, TimeZone, Utc};
use events_schema::{Accepted, DomainEvent, RecordedEvent, RefusalCode};

use super::{Aggregate, Decision, Refusal};

/// The time of the event stored at `index`: fixed, so an answer that reports it can be stated.
pub fn occurred_at(index: usize) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + index as i64)
        .single()
        .unwrap_or_default()
}

/// The event stored at `index` of a stream, as the store would record it: version `index`,
/// position `index + 1`.
pub fn recorded(event: &DomainEvent, index: usize) -> RecordedEvent {
    RecordedEvent {
        event_id: uuid::Uuid::nil(),
        stream: "test".into(),
        version: index as u64,
        position: index as u64 + 1,
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        occurred_at: occurred_at(index),
        actor: None,
        correlation_id: uuid::Uuid::nil(),
        causation_id: None,
        payload: event.payload(),
        trace_parent: None,
    }
}

/// A stream's stored events and the state they leave.
#[derive(Debug)]
pub struct Given<A> {
    events: Vec<DomainEvent>,
    state: A,
}

/// A history of `events`, stored in order.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = DomainEvent>) -> Given<A> {
    let mut history = Given {
        events: Vec::new(),
        state: A::default(),
    };
    history.store(events);
    history
}

impl<A: Aggregate> Given<A> {
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The state rebuilt from scratch from the stored events.
    pub fn replayed(&self) -> A {
        let mut state = A::default();
        for (i, event) in self.events.iter().enumerate() {
            state.apply(event, &recorded(event, i));
        }
        state
    }

    pub fn events(&self) -> &[DomainEvent] {
        &self.events
    }

    /// Stores `events` after the ones already there, and applies them.
    pub fn store(&mut self, events: impl IntoIterator<Item = DomainEvent>) {
        for event in events {
            self.state
                .apply(&event, &recorded(&event, self.events.len()));
            self.events.push(event);
        }
    }

    /// The history with `events` stored after it, for a scenario that goes on from them.
    pub fn and(mut self, events: impl IntoIterator<Item = DomainEvent>) -> Self {
        self.store(events);
        self
    }

    /// Decides `command` on the state the history leaves.
    pub fn when(self, command: A::Command) -> When<A> {
        let decision = self.state.decide(&command);
        When {
            history: self,
            decision,
        }
    }
}

/// A command decided, waiting for what is expected of it.
#[derive(Debug)]
pub struct When<A> {
    history: Given<A>,
    decision: Result<Decision, Refusal>,
}

impl<A: Aggregate> When<A> {
    /// Expects exactly `expected` to be appended; the history goes on with them stored.
    #[track_caller]
    pub fn then(mut self, expected: impl IntoIterator<Item = DomainEvent>) -> Given<A> {
        let expected: Vec<DomainEvent> = expected.into_iter().collect();
        assert_eq!(self.decision, Ok(Decision::Append(expected.clone())));
        self.history.store(expected);
        self.history
    }

    /// Expects a refusal with `code`; the history goes on unchanged.
    #[track_caller]
    pub fn then_refused(self, code: RefusalCode) -> Given<A> {
        match &self.decision {
            Err(refusal) => assert_eq!(refusal.code, code, "refused for: {}", refusal.message),
            Ok(decision) => panic!("expected a refusal ({code:?}), got {decision:?}"),
        }
        self.history
    }

    /// Expects nothing to be written and `expected` as the answer; the history goes on unchanged.
    #[track_caller]
    pub fn then_already_done(self, expected: Accepted) -> Given<A> {
        assert_eq!(self.decision, Ok(Decision::AlreadyDone(expected)));
        self.history
    }
}
