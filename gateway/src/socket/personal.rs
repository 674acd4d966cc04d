//! Personal chats: one per pair of users, created by either (docs/api.md, "Personal chats").
//! Commands go to the command-service, which decides them against the chat's aggregate; queries
//! read the projections after waiting for the log head, and check membership there. Deliveries to
//! other users' sockets come from the events (`crate::delivery`), not from here.

use events_schema::{ChatId, ChatKind, Command, UserId};
use projection_service::queries::{self, Kind};
use serde_json::Value;

use super::attachments;
use super::budget;
use super::chat_view::{edited_at, reactions, read_status, readable, receipts};
use super::handler::{command, query_failed, spend, Answer, Ctx};
use super::reply::Failure;
use super::requests;
use crate::limits::Budget;
use crate::wire::{
    timestamp, ChatCheck, PersonalChat, PersonalChatCreated, PersonalMessage, PersonalRead, Sent,
};

/// `check-chat {Receiver}` → `create-chat-result`.
pub async fn check_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let receiver = requests::receiver(&payload)?;
    ctx.state.consistency.caught_up_for(&ctx.user.user_id).await;
    let partner = queries::user(&ctx.state.reads, &receiver)
        .await
        .map_err(query_failed)?
        .filter(|u| u.verified)
        .ok_or_else(|| Failure::not_found("no such user"))?;
    let chat_id = ChatId::personal_between(&ctx.user.user_id, &receiver);
    let exists = queries::chat(&ctx.state.reads, &chat_id)
        .await
        .map_err(query_failed)?
        .is_some_and(|c| c.kind == Kind::Personal);
    let answer = ChatCheck {
        chat_id: exists.then_some(chat_id),
        exists: u8::from(exists),
        partner: partner.name,
        partner_id: receiver,
    };
    Answer::event("create-chat-result", &answer)
}

/// `create-personal-chat {Receiver}` → `create-personal-chat-creator {ChatId, Partner, PartnerId}`.
pub async fn create_personal_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let receiver = requests::receiver(&payload)?;
    spend(&ctx, Budget::Creation)?;
    let accepted = command(
        &ctx,
        Command::CreatePersonalChat {
            partner: receiver.clone(),
        },
    )
    .await?;
    let partner = name_of(&ctx, &receiver).await?;
    let created = PersonalChatCreated {
        chat_id: accepted.chat_id.as_ref(),
        partner: &partner,
        partner_id: &receiver,
    };
    Answer::event("create-personal-chat-creator", &created)
}

/// `fetch-personal-chat {ChatId, Before?, Limit?}` → `personal-chat`.
pub async fn fetch_personal_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat, page) = requests::chat_page(&payload, "ChatId")?;
    let (_, members) = readable(&ctx, &chat, Kind::Personal).await?;
    let found = queries::message_page(&ctx.state.reads, &chat, page.before.as_ref(), page.limit)
        .await
        .map_err(query_failed)?;
    let me = &ctx.user.user_id;
    let partner = members.iter().find(|m| &m.id != me);
    let mut messages: Vec<PersonalMessage> = found
        .messages
        .into_iter()
        .map(|mut m| PersonalMessage {
            read_status: read_status(&members, &m),
            timestamp: timestamp(m.sent_at),
            edited_at: edited_at(&m),
            reactions: reactions(&mut m),
            deleted: m.deleted,
            attachments: std::mem::take(&mut m.attachments),
            reply_to: m.reply_to,
            content: m.content,
            sender: m.sender_id,
            id: m.id,
        })
        .collect();
    let has_more = budget::fit_page(&mut messages, found.has_more);
    let my_name = members
        .iter()
        .find(|m| &m.id == me)
        .map_or("", |m| m.name.as_str());
    let page = PersonalChat {
        has_more,
        messages,
        partner: partner.map(|p| p.name.as_str()),
        partner_id: partner.map(|p| &p.id),
        receipts: receipts(&ctx, &chat).await?,
        user: my_name,
        user_id: me,
    };
    Answer::event("personal-chat", &page)
}

/// `send-personal-message {ChatId, Content, ClientId?, ReplyTo?}`: the ack; deliveries go to the
/// partner and the sender's other sockets.
pub async fn send_personal_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let send = requests::send_to(&payload, "ChatId")?;
    let attachments = attachments::of_request(&ctx, &payload).await?;
    let send = Command::SendMessage {
        chat_id: send.chat_id,
        kind: ChatKind::Personal,
        content: send.content,
        client_id: send.client_id,
        reply_to: send.reply_to,
        attachments,
    };
    Answer::ack_only(&Sent::from(&command(&ctx, send).await?))
}

/// `read-personal-message {ChatId, UpTo?}`: the ack; the partner gets `read-personal-msg-ack` and
/// `receipt`.
pub async fn read_personal_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, up_to) = requests::read(&payload, "ChatId")?;
    command(
        &ctx,
        Command::MarkRead {
            chat_id: chat_id.clone(),
            kind: ChatKind::Personal,
            up_to,
        },
    )
    .await?;
    Answer::ack_only(&PersonalRead { chat_id: &chat_id })
}

/// The stored name of `user` (empty for a user the read models do not know).
async fn name_of(ctx: &Ctx, user: &UserId) -> Result<String, Failure> {
    Ok(queries::user(&ctx.state.reads, user)
        .await
        .map_err(query_failed)?
        .map(|u| u.name)
        .unwrap_or_default())
}
