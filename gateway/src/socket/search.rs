//! `search-messages` (docs/api.md, "Search"): the caller's messages found by their words, in the
//! chats they are a member of now. The read models do the matching and the membership filter
//! (`projection_service::read_models::search`); this file parses, limits and answers.

use projection_service::queries;
use projection_service::read_models::search::{self, SearchRequest};
use serde_json::Value;

use super::budget;
use super::handler::{internal, spend, Answer, Ctx};
use super::reply::Failure;
use super::requests;
use crate::limits::Budget;
use crate::wire::{timestamp, SearchResult, SearchResults};

/// `search-messages {Query, ChatId?, Before?, Limit?}` → acknowledgement `{Results, HasMore,
/// Next}`. Spends the caller's `SEARCH_RATE_LIMIT` budget, shared with `search-user`.
pub async fn search_messages(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::search_messages(&payload)?;
    spend(&ctx, Budget::Search)?;
    // As every chat query: the answer reflects every change acknowledged before it.
    ctx.state
        .consistency
        .caught_up_to_head(ctx.state.store.as_ref())
        .await;
    let reads = &ctx.state.reads;
    if let Some(chat) = &request.chat {
        // The answers a chat's fetch gives: no such (or a deleted) chat, or not a member.
        let exists = queries::chat(reads, chat)
            .await
            .map_err(internal)?
            .is_some_and(|c| !c.deleted);
        if !exists {
            tracing::debug!(user = %ctx.user.user_id, chat = %chat.as_str(), "search in no such chat: refused");
            return Err(Failure::not_found("no such chat"));
        }
        let members = queries::members(reads, chat).await.map_err(internal)?;
        if !members.iter().any(|m| m.id == ctx.user.user_id) {
            tracing::debug!(user = %ctx.user.user_id, chat = %chat.as_str(), "search in a chat of others: refused");
            return Err(Failure::forbidden("not a member of this chat"));
        }
    }
    let page = search::search_messages(
        reads,
        &SearchRequest {
            user: &ctx.user.user_id,
            terms: &request.terms,
            chat: request.chat.as_ref(),
            before: request.before.as_ref(),
            limit: request.limit,
        },
    )
    .await
    .map_err(internal)?;
    let cursors: Vec<_> = page.hits.iter().map(|hit| hit.cursor()).collect();
    let mut results: Vec<SearchResult> = page
        .hits
        .into_iter()
        .map(|hit| SearchResult {
            chat_id: hit.chat_id,
            content: hit.content,
            message_id: hit.message_id,
            sender_id: hit.sender_id,
            timestamp: timestamp(hit.sent_at),
        })
        .collect();
    // Cut as message pages are, so one answer stays small; the rest is on the next page.
    let has_more = budget::fit_page(&mut results, page.has_more);
    let next = results
        .len()
        .checked_sub(1)
        .and_then(|last| cursors.get(last))
        .filter(|_| has_more)
        .map(ToString::to_string);
    Answer::ack_only(&SearchResults {
        has_more,
        next,
        results,
    })
}
