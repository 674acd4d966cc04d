//! Catch-up (`sync`): the deliveries a user's sockets got, or would have got, after a `Seq`,
//! rendered again from the log by the code that made them live. Nothing is written per recipient:
//! the user's stretches of membership (a read model) say which chats' streams to read and which
//! part of each; the events are read from those streams in log order and delivered into a list
//! instead of to sockets, keeping those addressed to the user.

use std::collections::VecDeque;

use events_schema::{streams, ChatId, Position, RecordedEvent, UserId};
use infra::event_store::{AuditQuery, AuditSubject};
use infra::StoreError;
use projection_service::memberships::{self, Stretch};
use projection_service::queries::QueryError;
use thiserror::Error;

use super::audience::{last_seq_of, position_of, Caught, Delivery, Out};
use super::memo::ChatMemo;
use super::{deliver, receipts};
use crate::state::AppState;

/// Events read from one stream at a time.
const PAGE: usize = 256;
/// Events rendered past a full page to learn whether another delivery follows.
const LOOK_AHEAD: usize = 256;

/// A page of catch-up.
pub struct CatchUp {
    /// In `Seq` order.
    pub caught: Vec<Caught>,
    /// Where the next page starts: the last returned `Seq`, or, when nothing more is there, the
    /// newest the read models have reached.
    pub seq: u64,
    pub has_more: bool,
}

#[derive(Debug, Error)]
pub enum CatchUpError {
    /// `Since` names a point this log never reached (a reset server, a foreign value).
    #[error("Since is ahead of the log")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// One chat's stream, read page by page between the user's stretches.
struct ChatCursor {
    chat: ChatId,
    stretches: Vec<Stretch>,
    /// Read after this position.
    after: Position,
    buffered: VecDeque<RecordedEvent>,
    exhausted: bool,
}

impl ChatCursor {
    /// The next event of the chat within one of the user's stretches and up to `upto`.
    async fn peek(
        &mut self,
        state: &AppState,
        upto: Position,
    ) -> Result<Option<&RecordedEvent>, StoreError> {
        loop {
            while let Some(front) = self.buffered.front() {
                if front.position > upto {
                    self.buffered.clear();
                    self.exhausted = true;
                } else if self.stretches.iter().any(|s| s.covers(front.position)) {
                    return Ok(self.buffered.front());
                } else {
                    self.buffered.pop_front();
                }
            }
            if self.exhausted {
                return Ok(None);
            }
            let page = state
                .store
                .audit(&AuditQuery {
                    subject: AuditSubject::Stream(streams::chat(&self.chat)),
                    after: self.after,
                    limit: PAGE,
                    since: None,
                    until: None,
                    event_type: None,
                })
                .await?;
            self.exhausted = page.len() < PAGE;
            if let Some(last) = page.last() {
                self.after = last.position;
            }
            self.buffered.extend(page);
        }
    }
}

/// Up to `limit` deliveries `user` got after `since`, in order. The read models must have caught
/// up with the log first (the caller waits), so that members and names are known at every event
/// read; events past what they have applied wait for the next page.
pub async fn catch_up(
    state: &AppState,
    user: &UserId,
    since: u64,
    limit: usize,
) -> Result<CatchUp, CatchUpError> {
    let upto = state.consistency.applied();
    let from = position_of(since);
    if from > upto {
        return Err(CatchUpError::Gone);
    }
    let mut cursors: Vec<ChatCursor> = Vec::new();
    for found in memberships::of_user(&state.reads, user, from).await? {
        // Events at `from` itself may hold deliveries after `since`.
        let after = from.max(found.stretch.since).saturating_sub(1);
        match cursors.iter_mut().find(|c| c.chat == found.chat_id) {
            Some(cursor) => {
                cursor.after = cursor.after.min(after);
                cursor.stretches.push(found.stretch);
            }
            None => cursors.push(ChatCursor {
                chat: found.chat_id,
                stretches: vec![found.stretch],
                after,
                buffered: VecDeque::new(),
                exhausted: false,
            }),
        }
    }
    let mut memo = ChatMemo::default();
    let unused = receipts::Coalescer::default();
    let mut caught: Vec<Caught> = Vec::new();
    let mut has_more = false;
    let mut looked = 0;
    loop {
        // The cursor whose next event comes first in the log.
        let mut next: Option<(usize, Position)> = None;
        for (i, cursor) in cursors.iter_mut().enumerate() {
            if let Some(event) = cursor.peek(state, upto).await? {
                if next.is_none_or(|(_, p)| event.position < p) {
                    next = Some((i, event.position));
                }
            }
        }
        let Some((i, _)) = next else { break };
        if caught.len() >= limit {
            // A full page: whether more is there is known by finding one more delivery, looked
            // for among a bounded number of events (past it, `HasMore` may be answered by an empty
            // page).
            looked += 1;
            if looked > LOOK_AHEAD {
                has_more = true;
                break;
            }
        }
        let Some(event) = cursors[i].buffered.pop_front() else {
            break;
        };
        let mut made = Vec::new();
        let mut delivery = Delivery::new(
            event.position,
            Out::Collect {
                user,
                caught: &mut made,
            },
        );
        if let Err(e) = deliver(state, &mut memo, &unused, &mut delivery, &event).await {
            tracing::debug!(position = event.position, error = %e, "catch-up: an event the read models cannot render is skipped, as delivery skipped it");
        }
        caught.extend(made.into_iter().filter(|c| c.seq > since));
        if caught.len() > limit {
            break;
        }
    }
    if caught.len() > limit {
        caught.truncate(limit);
        has_more = true;
    }
    let current: Vec<&ChatId> = cursors
        .iter()
        .filter(|c| c.stretches.iter().any(|s| s.until.is_none()))
        .map(|c| &c.chat)
        .collect();
    keep_last_receipts(&mut caught, &current);
    let seq = match (has_more, caught.last()) {
        (true, Some(last)) => last.seq,
        _ => since.max(last_seq_of(upto)),
    };
    Ok(CatchUp {
        caught,
        seq,
        has_more,
    })
}

/// A `receipt` tells a member's pointers as they are now; of several for one member and chat, the
/// last says it all (live, they are coalesced the same way). Only chats the user is still a member
/// of (`current`) are told: pointers moved since they left are none of theirs.
fn keep_last_receipts(caught: &mut Vec<Caught>, current: &[&ChatId]) {
    let mut seen: Vec<(ChatId, UserId)> = Vec::new();
    let mut keep = vec![true; caught.len()];
    for (i, c) in caught.iter().enumerate().rev() {
        if let Some(key) = &c.receipt_of {
            if seen.contains(key) || !current.contains(&&key.0) {
                keep[i] = false;
            } else {
                seen.push(key.clone());
            }
        }
    }
    let mut flags = keep.into_iter();
    caught.retain(|_| flags.next().unwrap_or(true));
}
