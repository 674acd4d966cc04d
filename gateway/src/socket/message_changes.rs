//! Changes to sent messages (docs/api.md, "Replies, edits, deletions, reactions"): `edit-message`,
//! `delete-message` and `react`, in any chat the caller is a member of (their self chat too).
//! The chat's aggregate decides each (who may, the edit window, the emoji cap); the members get
//! `message-edited`, `message-deleted` and `reaction` from the events (`crate::delivery`).

use events_schema::Command;
use serde_json::Value;

use super::handler::{command, Answer, Ctx};
use super::reply::Failure;
use super::requests;
use crate::wire::{Delivered, MessageChanged};

/// `edit-message {ChatId, MessageId, Content}`.
pub async fn edit_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let edit = requests::edit_message(&payload)?;
    let (chat_id, message_id) = (edit.chat_id.clone(), edit.message_id.clone());
    command(
        &ctx,
        Command::EditMessage {
            chat_id: edit.chat_id,
            message_id: edit.message_id,
            content: edit.content,
        },
    )
    .await?;
    Answer::ack_only(&MessageChanged {
        chat_id: &chat_id,
        message_id: &message_id,
    })
}

/// `delete-message {ChatId, MessageId}`.
pub async fn delete_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, message_id) = requests::message(&payload)?;
    command(
        &ctx,
        Command::DeleteMessage {
            chat_id: chat_id.clone(),
            message_id: message_id.clone(),
        },
    )
    .await?;
    Answer::ack_only(&MessageChanged {
        chat_id: &chat_id,
        message_id: &message_id,
    })
}

/// `mark-delivered {ChatId, UpTo}`: the caller's devices have received the chat up to `UpTo`;
/// the other members get `receipt`.
pub async fn mark_delivered(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, up_to) = requests::mark_delivered(&payload)?;
    command(
        &ctx,
        Command::MarkDelivered {
            chat_id: chat_id.clone(),
            up_to,
        },
    )
    .await?;
    Answer::ack_only(&Delivered { chat_id: &chat_id })
}

/// `react {ChatId, MessageId, Emoji, On}`.
pub async fn react(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let reaction = requests::react(&payload)?;
    let (chat_id, message_id) = (reaction.chat_id.clone(), reaction.message_id.clone());
    command(
        &ctx,
        Command::React {
            chat_id: reaction.chat_id,
            message_id: reaction.message_id,
            emoji: reaction.emoji,
            on: reaction.on,
        },
    )
    .await?;
    Answer::ack_only(&MessageChanged {
        chat_id: &chat_id,
        message_id: &message_id,
    })
}
