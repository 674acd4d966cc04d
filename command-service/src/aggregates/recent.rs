//! The recent `ClientId`s of a chat, for idempotent sends: a bounded window, because retries come
//! within seconds and the state must stay small however long the chat's history.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use events_schema::events::MessageSent;
use events_schema::{ClientId, MessageId, Position, RecordedEvent};

/// How many recent `ClientId`s a chat remembers.
pub const CLIENT_ID_WINDOW: usize = 1024;

/// A message remembered by its `ClientId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: MessageId,
    pub position: Position,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentSends {
    by_id: HashMap<ClientId, SentMessage>,
    order: VecDeque<ClientId>,
}

impl RecentSends {
    pub fn remember(&mut self, client_id: ClientId, sent: SentMessage) {
        if self.by_id.insert(client_id.clone(), sent).is_none() {
            self.order.push_back(client_id);
        }
        while self.order.len() > CLIENT_ID_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    /// Remembers a stored message if it carries a `ClientId`.
    pub fn remember_sent(&mut self, sent: &MessageSent, recorded: &RecordedEvent) {
        if let Some(client_id) = &sent.client_id {
            self.remember(
                client_id.clone(),
                SentMessage {
                    message_id: sent.message_id.clone(),
                    position: recorded.position,
                    occurred_at: recorded.occurred_at,
                },
            );
        }
    }

    pub fn get(&self, client_id: &ClientId) -> Option<&SentMessage> {
        self.by_id.get(client_id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn contains_key(&self, client_id: &ClientId) -> bool {
        self.by_id.contains_key(client_id)
    }
}
