//! Delivery: events the read models have applied become emits to the sockets of this node.
//! Every node gets every event, so no node needs to know where a user is connected.

use std::sync::Arc;

use events_schema::events::MessageSent;
use events_schema::{DomainEvent, RecordedEvent};
use serde_json::json;
use tokio::sync::mpsc;

use crate::socket::user_room;
use crate::state::AppState;
use crate::wire::timestamp;

/// Delivers batches of applied events until the channel closes.
pub async fn run(state: AppState, mut applied: mpsc::Receiver<Vec<Arc<RecordedEvent>>>) {
    while let Some(batch) = applied.recv().await {
        for event in batch {
            deliver(&state, &event).await;
        }
    }
}

async fn deliver(state: &AppState, recorded: &RecordedEvent) {
    let event = match DomainEvent::from_recorded(recorded) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(position = recorded.position, error = %e, "event not delivered: cannot decode");
            return;
        }
    };
    // The request's own socket is answered by its ack; the delivery skips it.
    let origin = state.origins.take(&recorded.correlation_id);
    if let DomainEvent::MessageSent(sent) = &event {
        if sent.chat_id.as_str() == sent.sender_id.as_str() {
            deliver_self_message(state, recorded, sent, origin).await;
        }
    }
}

async fn deliver_self_message(
    state: &AppState,
    recorded: &RecordedEvent,
    sent: &MessageSent,
    origin: Option<socketioxide::socket::Sid>,
) {
    let payload = json!({
        "ChatId": sent.chat_id,
        "Content": sent.content,
        "MessageId": sent.message_id,
        "Timestamp": timestamp(recorded.occurred_at),
    });
    let Some(io) = state.io() else { return };
    let mut to = io.to(user_room(&sent.sender_id));
    if let Some(sid) = origin {
        to = to.except(sid);
    }
    if let Err(e) = to.emit("receive-self-message", &payload).await {
        tracing::debug!(error = %e, "receive-self-message not delivered");
    }
}
