//! The envelope every stored event carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A position in the global log. Positions strictly increase in append order; they are not
/// necessarily contiguous (an EventStoreDB commit position is not). `0` means "before the first event".
pub type Position = u64;

/// Who did it and why: the part of the envelope the writer chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The acting user; `None` for the system (e.g. e-mail verification).
    pub actor: Option<String>,
    /// The request that led to this event (one per client request).
    pub correlation_id: Uuid,
    /// The message that directly caused this event, when it is not the request itself.
    pub causation_id: Option<Uuid>,
    /// The W3C trace context (`traceparent`) of the span that wrote the event, when its request
    /// was traced: whoever handles the event later continues that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
}

/// An event about to be appended. Its stream, version and position are given by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    /// Millisecond precision, so that the stored value round-trips exactly.
    pub occurred_at: DateTime<Utc>,
    pub metadata: EventMetadata,
    /// The event's data as JSON text; stored and returned byte for byte.
    pub payload: String,
}

/// An event as stored: the full envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream: String,
    /// 0 for the first event of a stream (EventStoreDB's "revision").
    pub version: u64,
    pub position: Position,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub actor: Option<String>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// See [`EventMetadata::trace_parent`]; absent from the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
    /// The event's data as JSON text, exactly as appended.
    pub payload: String,
}

/// The current time truncated to milliseconds, the precision of every stored timestamp.
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
