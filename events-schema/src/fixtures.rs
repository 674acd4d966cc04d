//! Events as earlier versions of this code stored them (`events-schema/fixtures/`), for the tests
//! of every crate: they must keep loading, upcast, whatever the schema has become since.

use crate::envelope::{EventMetadata, NewEvent, RecordedEvent};

const V1_PERSONAL_CHAT: &str = include_str!("../fixtures/v1-personal-chat.jsonl");

/// Two users, their personal chat, two `MessageSent` of schema version 1 and a read receipt, in
/// log order.
pub fn v1_personal_chat() -> Vec<RecordedEvent> {
    V1_PERSONAL_CHAT
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("fixture line: {e}")))
        .collect()
}

/// A recorded event as it was appended: same id, type, schema version, time, metadata, payload.
pub fn as_new(event: &RecordedEvent) -> NewEvent {
    NewEvent {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        occurred_at: event.occurred_at,
        metadata: EventMetadata {
            actor: event.actor.clone(),
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            trace_parent: event.trace_parent.clone(),
        },
        payload: event.payload.clone(),
    }
}
