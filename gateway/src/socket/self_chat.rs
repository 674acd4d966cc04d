//! The self chat: a user's notes to themselves, whose id is the user's.

use events_schema::{ChatId, Command};
use projection_service::queries;
use serde_json::Value;

use super::budget;
use super::chat_view::{edited_at, reactions, receipts};
use super::handler::{command, query_failed, Answer, Ctx};
use super::reply::Failure;
use super::requests;
use crate::wire::{timestamp, SelfChat, SelfMessage, Sent};

/// `fetch-self-chat {Before?, Limit?}` → `self-chat`.
pub async fn fetch_self_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::page(&payload)?;
    let me = &ctx.user.user_id;
    // Up to the log head, not only this gateway's own record of the user's writes: a note edited
    // or reacted to from a socket on another gateway is the same user's write.
    ctx.state
        .consistency
        .caught_up_to_head(ctx.state.store.as_ref())
        .await;
    let chat = ChatId::self_chat_of(me);
    let page = queries::message_page(
        &ctx.state.reads,
        &chat,
        request.before.as_ref(),
        request.limit,
    )
    .await
    .map_err(query_failed)?;
    let mut messages: Vec<SelfMessage> = page
        .messages
        .into_iter()
        .map(|mut m| SelfMessage {
            edited_at: edited_at(&m),
            reactions: reactions(&mut m),
            deleted: m.deleted,
            attachments: std::mem::take(&mut m.attachments),
            content: m.content,
            timestamp: timestamp(m.sent_at),
            id: m.id,
        })
        .collect();
    let has_more = budget::fit_page(&mut messages, page.has_more);
    let page = SelfChat {
        has_more,
        messages,
        name: ctx.user.name.clone(),
        receipts: receipts(&ctx, &chat).await?,
    };
    Answer::event("self-chat", &page)
}

/// `send-self-message {Content, ClientId?}`: the ack; the user's other sockets get
/// `receive-self-message`.
pub async fn send_self_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::send_self(&payload)?;
    let attachments = super::attachments::of_request(&ctx, &payload).await?;
    let send = Command::SendSelfMessage {
        content: request.content,
        client_id: request.client_id,
        attachments,
    };
    let accepted = command(&ctx, send).await?;
    Answer::ack_only(&Sent::from(&accepted))
}
