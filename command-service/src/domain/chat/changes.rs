//! What members may do to a message once it is sent (docs/api.md, "Replies, edits, deletions,
//! reactions"): its sender edits it within the edit window, its sender or the group's admin
//! deletes it, any member reacts to it. A deleted message is gone for every request.

use std::time::Duration;

use chrono::{DateTime, Utc};
use events_schema::events::{MessageDeleted, MessageEdited, ReactionAdded, ReactionRemoved};
use events_schema::{ChatId, Content, Emoji, MessageId, RefusalCode, UserId};

use super::{Chat, ChatState};
use crate::domain::messages::{Message, MessageBook};
use crate::domain::{Decision, Refusal};

/// The most distinct emoji one message may carry.
pub const MAX_EMOJI: usize = 20;

/// A live message of the chat: known and not deleted.
pub(crate) fn live<'a>(book: &'a MessageBook, id: &MessageId) -> Result<Message<'a>, Refusal> {
    match book.get(id) {
        Some(message) if !message.is_deleted() => Ok(message),
        _ => Err(Refusal::new(
            RefusalCode::NotFound,
            "no such message in this chat",
        )),
    }
}

/// The sender may edit until `window` after sending.
pub(crate) fn may_edit(
    message: &Message<'_>,
    editor: &UserId,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<(), Refusal> {
    if message.sender() != Some(editor) {
        return Err(Refusal::new(
            RefusalCode::Forbidden,
            "only its sender may edit a message",
        ));
    }
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let open = message
        .sent_at()
        .and_then(|sent| sent.checked_add_signed(window))
        .is_some_and(|closes| now <= closes);
    if !open {
        return Err(Refusal::new(
            RefusalCode::Forbidden,
            "the message is too old to edit",
        ));
    }
    Ok(())
}

/// The events of a reaction turned on or off: none when it already is.
pub(crate) fn reaction(
    chat_id: &ChatId,
    message_id: &MessageId,
    message: &Message<'_>,
    user: &UserId,
    emoji: &Emoji,
    on: bool,
) -> Result<Option<events_schema::DomainEvent>, Refusal> {
    let (chat_id, message_id, user_id, emoji) = (
        chat_id.clone(),
        message_id.clone(),
        user.clone(),
        emoji.clone(),
    );
    if message.has_reaction(user, &emoji) == on {
        return Ok(None);
    }
    if !on {
        return Ok(Some(
            ReactionRemoved {
                chat_id,
                message_id,
                user_id,
                emoji,
            }
            .into(),
        ));
    }
    if !message.has_emoji(&emoji) && message.emoji_count() >= MAX_EMOJI {
        return Err(Refusal::new(
            RefusalCode::Conflict,
            format!("a message carries at most {MAX_EMOJI} distinct emoji"),
        ));
    }
    Ok(Some(
        ReactionAdded {
            chat_id,
            message_id,
            user_id,
            emoji,
        }
        .into(),
    ))
}

impl Chat {
    /// A live personal chat or group with `user` among its members.
    pub(super) fn joined(&self, user: &UserId) -> Result<&ChatId, Refusal> {
        let (id, members) = match &self.state {
            ChatState::Personal(chat) => (&chat.id, &chat.members),
            ChatState::Group(group) => (&group.id, &group.members),
            ChatState::New | ChatState::Deleted => return Err(super::no_such_chat()),
        };
        if !members.contains_key(user) {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "not a member of this chat",
            ));
        }
        Ok(id)
    }

    pub(super) fn edit(
        &self,
        editor: &UserId,
        message_id: &MessageId,
        content: &Content,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Decision, Refusal> {
        let chat_id = self.joined(editor)?;
        may_edit(&live(&self.messages, message_id)?, editor, now, window)?;
        Ok(Decision::Append(vec![MessageEdited {
            chat_id: chat_id.clone(),
            message_id: message_id.clone(),
            editor: editor.clone(),
            content: content.clone(),
        }
        .into()]))
    }

    pub(super) fn delete_message(
        &self,
        by: &UserId,
        message_id: &MessageId,
    ) -> Result<Decision, Refusal> {
        let chat_id = self.joined(by)?;
        let message = live(&self.messages, message_id)?;
        let admin = matches!(&self.state, ChatState::Group(group) if group.admin == *by);
        if message.sender() != Some(by) && !admin {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "only its sender or the group's admin may delete a message",
            ));
        }
        Ok(Decision::Append(vec![MessageDeleted {
            chat_id: chat_id.clone(),
            message_id: message_id.clone(),
            deleted_by: by.clone(),
        }
        .into()]))
    }

    pub(super) fn react(
        &self,
        user: &UserId,
        message_id: &MessageId,
        emoji: &Emoji,
        on: bool,
    ) -> Result<Decision, Refusal> {
        let chat_id = self.joined(user)?;
        let message = live(&self.messages, message_id)?;
        match reaction(chat_id, message_id, &message, user, emoji, on)? {
            Some(event) => Ok(Decision::Append(vec![event])),
            None => Ok(self.done(chat_id, self.last_position)),
        }
    }
}

#[cfg(test)]
mod tests;
