//! Messages and read receipts: to the partner or the other members, and to the sender's other
//! sockets where the protocol says so.

use events_schema::events::{MessageRead, MessageSent};
use events_schema::RecordedEvent;
use projection_service::queries::Kind;
use socketioxide::socket::Sid;

use super::audience::{emit, others, Audience, Delivery};
use super::memo::ChatMemo;
use crate::state::AppState;
use crate::wire::{timestamp, ChatMessage, ReadReceipt, SelfMessageReceived};

/// `receive-self-message`, `receive-personal-message` or `receive-group-message`.
pub(super) async fn sent(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    recorded: &RecordedEvent,
    sent: &MessageSent,
    origin: Option<Sid>,
) -> anyhow::Result<()> {
    let at = timestamp(recorded.occurred_at);
    if sent.chat_id.as_str() == sent.sender_id.as_str() {
        let payload = SelfMessageReceived {
            chat_id: &sent.chat_id,
            content: &sent.content,
            message_id: &sent.message_id,
            timestamp: &at,
            attachments: &sent.attachments,
        };
        let to = Audience::users([sent.sender_id.clone()]).but_origin(origin);
        emit(state, d, to, "receive-self-message", &payload);
        return Ok(());
    }
    let Some(entry) = memo.get(state, &sent.chat_id, d.position()).await? else {
        return Ok(());
    };
    let (chat, everyone) = (&entry.view, &entry.members_at(d.position()));
    let sender = everyone
        .iter()
        .find(|m| m.id == sent.sender_id)
        .map_or("", |m| m.name.as_str());
    let payload = ChatMessage {
        chat_id: &sent.chat_id,
        content: &sent.content,
        message_id: &sent.message_id,
        reply_to: sent.reply_to.as_ref(),
        attachments: &sent.attachments,
        sender,
        sender_id: &sent.sender_id,
        timestamp: &at,
    };
    match chat.kind {
        Kind::Personal => {
            // The partner, and the sender's other sockets.
            let to = Audience::users(everyone.iter().map(|m| m.id.clone())).but_origin(origin);
            emit(state, d, to, "receive-personal-message", &payload);
        }
        Kind::Group => {
            let to = Audience::users(others(everyone, &sent.sender_id));
            emit(state, d, to, "receive-group-message", &payload);
        }
        Kind::SelfChat => {}
    }
    Ok(())
}

/// `read-personal-msg-ack` or `read-grp-msg-ack`, to everyone in the chat but the reader.
pub(super) async fn read(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    read: &MessageRead,
) -> anyhow::Result<()> {
    let Some(entry) = memo.get(state, &read.chat_id, d.position()).await? else {
        return Ok(());
    };
    let (chat, everyone) = (&entry.view, &entry.members_at(d.position()));
    let to = Audience::users(others(everyone, &read.reader));
    let receipt = ReadReceipt {
        chat_id: &read.chat_id,
        reader: &read.reader,
    };
    match chat.kind {
        Kind::Personal => emit(state, d, to, "read-personal-msg-ack", &receipt),
        Kind::Group => emit(state, d, to, "read-grp-msg-ack", &receipt),
        Kind::SelfChat => {}
    }
    Ok(())
}
