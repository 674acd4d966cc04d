//! A chat as one of its members may read it: the membership check every chat query makes first,
//! and, per message, which members have read it.

use events_schema::ChatId;
use projection_service::queries::{self, ChatView, Kind, MemberView, MessageView};

use super::handler::{query_failed, Ctx};
use super::reply::Failure;
use crate::wire::{timestamp, Reactions, ReadStatus, Reading, Receipt, Receipts};

/// The chat, if it exists, is of `kind`, is not deleted and has the user as a member; with its
/// members. Waits for the log head first, so the answer reflects every acknowledged change.
pub async fn readable(
    ctx: &Ctx,
    chat: &ChatId,
    kind: Kind,
) -> Result<(ChatView, Vec<MemberView>), Failure> {
    member_of(ctx, chat, |k| k == kind).await
}

/// The chat, if it exists, is of a kind `accepted`, is not deleted and has the user as a member;
/// with its members. Waits for the log head first, like [`readable`].
pub async fn member_of(
    ctx: &Ctx,
    chat: &ChatId,
    accepted: impl Fn(Kind) -> bool,
) -> Result<(ChatView, Vec<MemberView>), Failure> {
    ctx.state
        .consistency
        .caught_up_to_head(ctx.state.store.as_ref())
        .await;
    let view = queries::chat(&ctx.state.reads, chat)
        .await
        .map_err(query_failed)?
        .filter(|c| accepted(c.kind) && !c.deleted)
        .ok_or_else(|| Failure::not_found("no such chat"))?;
    let members = queries::members(&ctx.state.reads, chat)
        .await
        .map_err(query_failed)?;
    if !members.iter().any(|m| m.id == ctx.user.user_id) {
        return Err(Failure::forbidden("not a member of this chat"));
    }
    Ok((view, members))
}

/// `ReadStatus`: each current member's id → "Read" or "Unread" for one message.
pub fn read_status(members: &[MemberView], message: &MessageView) -> ReadStatus {
    members
        .iter()
        .map(|m| {
            let read = m.id == message.sender_id || m.read_version >= message.version as i64;
            let reading = if read { Reading::Read } else { Reading::Unread };
            (m.id.to_string(), reading)
        })
        .collect()
}

/// `Receipts` of a page: each current member's delivered and read pointers.
pub async fn receipts(ctx: &Ctx, chat: &ChatId) -> Result<Receipts, Failure> {
    Ok(queries::receipts(&ctx.state.reads, chat, None)
        .await
        .map_err(query_failed)?
        .into_iter()
        .map(|r| {
            let receipt = Receipt {
                delivered: r.delivered,
                read: r.read,
            };
            (r.user.to_string(), receipt)
        })
        .collect())
}

/// `EditedAt` of a message in a page, where it was edited.
pub fn edited_at(message: &MessageView) -> Option<String> {
    message.edited_at.map(timestamp)
}

/// `Reactions` of a message in a page.
pub fn reactions(message: &mut MessageView) -> Reactions {
    std::mem::take(&mut message.reactions).into_iter().collect()
}
