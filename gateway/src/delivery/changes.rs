//! Edits, deletions and reactions: `message-edited`, `message-deleted` and `reaction` to every
//! socket of every current member of the chat (the requesting socket too: the acknowledgement
//! says the change was stored, the delivery is the change itself, the same for every socket).

use events_schema::events::{MessageDeleted, MessageEdited, ReactionAdded, ReactionRemoved};
use events_schema::{ChatId, Emoji, MessageId, RecordedEvent, UserId};

use super::audience::{emit, Audience, Delivery};
use super::memo::ChatMemo;
use crate::state::AppState;
use crate::wire::{timestamp, DeletedMessage, EditedMessage, ReactionChanged};

/// Every member of `chat` at the event, or no one for a chat the read models do not know.
async fn members(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &Delivery<'_>,
    chat: &ChatId,
) -> anyhow::Result<Audience> {
    let everyone = memo.members_at(state, chat, d.position()).await?;
    Ok(Audience::users(everyone.into_iter().map(|m| m.id)))
}

pub(super) async fn edited(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    recorded: &RecordedEvent,
    e: &MessageEdited,
) -> anyhow::Result<()> {
    let at = timestamp(recorded.occurred_at);
    let payload = EditedMessage {
        chat_id: &e.chat_id,
        content: &e.content,
        edited_at: &at,
        message_id: &e.message_id,
    };
    let to = members(state, memo, d, &e.chat_id).await?;
    emit(state, d, to, "message-edited", &payload);
    Ok(())
}

pub(super) async fn deleted(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    e: &MessageDeleted,
) -> anyhow::Result<()> {
    let payload = DeletedMessage {
        chat_id: &e.chat_id,
        message_id: &e.message_id,
    };
    let to = members(state, memo, d, &e.chat_id).await?;
    emit(state, d, to, "message-deleted", &payload);
    Ok(())
}

/// One reaction turned on or off.
pub(super) struct Reaction<'a> {
    pub chat_id: &'a ChatId,
    pub message_id: &'a MessageId,
    pub user_id: &'a UserId,
    pub emoji: &'a Emoji,
    pub on: bool,
}

impl<'a> From<&'a ReactionAdded> for Reaction<'a> {
    fn from(e: &'a ReactionAdded) -> Self {
        let (chat_id, message_id, user_id, emoji) =
            (&e.chat_id, &e.message_id, &e.user_id, &e.emoji);
        Self {
            chat_id,
            message_id,
            user_id,
            emoji,
            on: true,
        }
    }
}

impl<'a> From<&'a ReactionRemoved> for Reaction<'a> {
    fn from(e: &'a ReactionRemoved) -> Self {
        let (chat_id, message_id, user_id, emoji) =
            (&e.chat_id, &e.message_id, &e.user_id, &e.emoji);
        Self {
            chat_id,
            message_id,
            user_id,
            emoji,
            on: false,
        }
    }
}

pub(super) async fn reaction(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    r: Reaction<'_>,
) -> anyhow::Result<()> {
    let payload = ReactionChanged {
        chat_id: r.chat_id,
        emoji: r.emoji,
        message_id: r.message_id,
        on: r.on,
        user_id: r.user_id,
    };
    let to = members(state, memo, d, r.chat_id).await?;
    emit(state, d, to, "reaction", &payload);
    Ok(())
}
