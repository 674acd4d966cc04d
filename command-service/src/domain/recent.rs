//! The recent `ClientId`s of a chat, for idempotent sends: a bounded window, because retries come
//! within seconds and the state must stay small however long the chat's history. A key is the
//! sender's own (docs/api.md, "Requests", `ClientId`): another member's `ClientId` never answers
//! for a sender's message.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use events_schema::events::MessageSent;
use events_schema::{ClientId, MessageId, Position, RecordedEvent, UserId};

/// How many recent `ClientId`s a chat remembers.
pub const CLIENT_ID_WINDOW: usize = 1024;

/// A message remembered by its `ClientId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: MessageId,
    pub position: Position,
    pub occurred_at: DateTime<Utc>,
}

/// A `ClientId` as the sender who chose it.
type Key = (UserId, ClientId);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentSends {
    by_id: HashMap<Key, SentMessage>,
    order: VecDeque<Key>,
}

impl RecentSends {
    pub fn remember(&mut self, sender: UserId, client_id: ClientId, sent: SentMessage) {
        let key = (sender, client_id);
        if self.by_id.insert(key.clone(), sent).is_none() {
            self.order.push_back(key);
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
                sent.sender_id.clone(),
                client_id.clone(),
                SentMessage {
                    message_id: sent.message_id.clone(),
                    position: recorded.position,
                    occurred_at: recorded.occurred_at,
                },
            );
        }
    }

    /// The message `sender` sent with `client_id`, if it is still in the window.
    pub fn get(&self, sender: &UserId, client_id: &ClientId) -> Option<&SentMessage> {
        self.by_id.get(&(sender.clone(), client_id.clone()))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn contains_key(&self, sender: &UserId, client_id: &ClientId) -> bool {
        self.get(sender, client_id).is_some()
    }
}
