//! Delivery: events the read models have applied become emits to the sockets of this node. Every
//! node gets every event, so no node needs to know where a user is connected. Events are delivered
//! in log order, so every socket sees a chat's messages in the order `fetch-…` returns them.
//!
//! `messages` delivers messages and read receipts, `receipts` the coalesced `receipt` of delivered
//! and read pointers, `changes` edits, deletions and reactions,
//! `chats` the life of chats (created, members
//! joining and leaving, the admin changing, deleted); `audience` says who gets an event, and
//! `memo` keeps the chats' members so that a message costs no query.

mod audience;
mod catch_up;
mod changes;
mod chats;
mod memo;
mod messages;
mod receipts;

use std::sync::Arc;

use events_schema::{DomainEvent, RecordedEvent, UserId};
use infra::telemetry::traces;
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::state::AppState;
use audience::{Delivery, Out};
use memo::ChatMemo;

pub use audience::{last_seq_of, position_of, Caught};
pub use catch_up::{catch_up, CatchUp, CatchUpError};

/// Delivers batches of applied events until the channel closes.
pub async fn run(state: AppState, mut applied: mpsc::Receiver<Vec<Arc<RecordedEvent>>>) {
    let mut chats = ChatMemo::default();
    let receipts = receipts::Coalescer::default();
    while let Some(batch) = applied.recv().await {
        for event in &batch {
            let mut delivery = Delivery::new(event.position, Out::Sockets);
            let traced = traces::event_spans(traces::Stage::Deliver, [event.as_ref()]);
            let work = deliver(&state, &mut chats, &receipts, &mut delivery, event);
            let delivered = match traced.into_iter().next() {
                Some(span) => work.instrument(span).await,
                None => work.await,
            };
            if let Err(e) = delivered {
                tracing::warn!(position = event.position, error = %e, "event not delivered");
            }
        }
        if let Some(last) = batch.last() {
            state.consistency.delivered(last.position);
        }
    }
}

/// Makes the deliveries of one event: to this node's sockets, or into a catch-up.
async fn deliver(
    state: &AppState,
    memo: &mut ChatMemo,
    receipts: &receipts::Coalescer,
    d: &mut Delivery<'_>,
    recorded: &RecordedEvent,
) -> anyhow::Result<()> {
    let event = DomainEvent::from_recorded(recorded)?;
    if !matches!(
        event,
        DomainEvent::MessageSent(_)
            | DomainEvent::MessageRead(_)
            | DomainEvent::MemberAdded(_)
            | DomainEvent::MessageEdited(_)
            | DomainEvent::MessageDeleted(_)
            | DomainEvent::ReactionAdded(_)
            | DomainEvent::ReactionRemoved(_)
            | DomainEvent::MessagesDelivered(_)
    ) {
        if let Some(chat) = event.chat_id() {
            memo.forget(chat);
        }
    }
    // The request's own socket is answered by its ack; deliveries skip it where the protocol says
    // "the sender's other sockets".
    let origin = match d.is_live() {
        true => state.origins.take(&recorded.correlation_id),
        false => None,
    };
    let actor = actor_of(recorded);
    match event {
        DomainEvent::MessageSent(sent) => {
            messages::sent(state, memo, d, recorded, &sent, origin).await?
        }
        DomainEvent::MessageRead(read) => {
            messages::read(state, memo, d, &read).await?;
            receipts
                .moved(state, memo, d, &read.chat_id, &read.reader)
                .await?;
        }
        DomainEvent::MessagesDelivered(e) => {
            receipts
                .moved(state, memo, d, &e.chat_id, &e.reader)
                .await?
        }
        DomainEvent::PersonalChatCreated(created) => {
            chats::personal_created(state, d, &created).await?
        }
        DomainEvent::GroupCreated(created) => chats::group_created(state, d, &created),
        DomainEvent::MemberAdded(added) => chats::member_added(state, memo, d, &added).await?,
        DomainEvent::MemberRemoved(removed) => {
            chats::member_removed(state, memo, d, &removed, actor.as_ref()).await?
        }
        DomainEvent::AdminChanged(changed) => {
            chats::admin_changed(state, memo, d, &changed).await?
        }
        DomainEvent::GroupDeleted(deleted) => {
            chats::group_deleted(state, memo, d, &deleted, actor.as_ref()).await?
        }
        DomainEvent::MessageEdited(e) => changes::edited(state, memo, d, recorded, &e).await?,
        DomainEvent::MessageDeleted(e) => changes::deleted(state, memo, d, &e).await?,
        DomainEvent::ReactionAdded(e) => changes::reaction(state, memo, d, (&e).into()).await?,
        DomainEvent::ReactionRemoved(e) => changes::reaction(state, memo, d, (&e).into()).await?,
        DomainEvent::PresenceVisibilitySet(e) => {
            // Presence is not part of a catch-up: only live deliveries tell the contacts.
            if d.is_live() {
                state.presence.visibility_changed(&e).await
            }
        }
        DomainEvent::UserRenamed(e) => {
            // Later messages carry the new name as their `Sender`.
            memo.forget_member(&e.user_id);
            // Like presence, a name change is told live only; pages read the name as it is.
            if d.is_live() {
                state.presence.renamed(&e).await
            }
        }
        DomainEvent::UserRegistered(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::SelfChatCreated(_) => {}
    }
    Ok(())
}

/// The user who caused the event, when it was a user.
fn actor_of(recorded: &RecordedEvent) -> Option<UserId> {
    recorded
        .actor
        .as_deref()
        .and_then(|a| UserId::parse(a).ok())
}
