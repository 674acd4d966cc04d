//! What happens to a message after it was sent: edited, deleted, reacted to. Each names the chat
//! and the message (its `messageId`, as clients know it); the time is the envelope's.

use serde::{Deserialize, Serialize};

use crate::emoji::Emoji;
use crate::ids::{ChatId, MessageId, UserId};
use crate::values::Content;

/// The sender changed the text of their message. The log keeps every version; read models show
/// the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEdited {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub editor: UserId,
    pub content: Content,
}

/// A message was deleted, by its sender or by the group's admin. The log keeps what was said;
/// read models show it as deleted, without its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDeleted {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// Who deleted it: the sender, or the admin of a group.
    pub deleted_by: UserId,
}

/// A member reacted to a message with an emoji (they had not with this one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionAdded {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub user_id: UserId,
    pub emoji: Emoji,
}

/// A member took back their reaction with an emoji.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionRemoved {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub user_id: UserId,
    pub emoji: Emoji,
}
