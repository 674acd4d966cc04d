//! Stream names. One stream per chat (self, personal, group) and one per user.

use crate::ids::{ChatId, UserId};

/// Prefix of every chat stream.
pub const CHAT_PREFIX: &str = "chat-";
/// Prefix of every user stream.
pub const USER_PREFIX: &str = "user-";

/// The stream of a chat: `chat-<chatId>`.
pub fn chat(id: &ChatId) -> String {
    format!("{CHAT_PREFIX}{id}")
}

/// The stream of a user: `user-<userId>`.
pub fn user(id: &UserId) -> String {
    format!("{USER_PREFIX}{id}")
}
