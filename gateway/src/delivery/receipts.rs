//! `receipt` to the other members when a member's delivered or read pointer moves, at most one a
//! second per member and chat: the first move is told at once; moves within the next second are
//! told once, when it has passed, with the pointers as they are then (read from the read models,
//! so the last word always arrives and nothing stale is told). Each gateway coalesces the events
//! it delivers on its own; every gateway gets every event, so each tells its own sockets the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_schema::{ChatId, UserId};
use projection_service::queries;
use tokio::time::Instant;

use super::audience::{emit_as, emit_receipt, others, Audience, Delivery, Out};
use super::memo::ChatMemo;
use crate::state::AppState;
use crate::wire::ReceiptMoved;

/// The least time between two `receipt`s of one member in one chat.
const EVERY: Duration = Duration::from_secs(1);
/// Members and chats remembered before the ones quiet for a second are forgotten.
const REMEMBERED: usize = 10_000;

#[derive(Default, Clone)]
pub(super) struct Coalescer {
    slots: Arc<Mutex<HashMap<(ChatId, UserId), Slot>>>,
}

struct Slot {
    /// When the last `receipt` was told.
    last: Instant,
    /// Whether one is due at `last + EVERY`.
    due: bool,
    /// The `Seq` of the newest move, which the due `receipt` carries.
    seq: u64,
}

impl Coalescer {
    /// `reader`'s pointers in `chat` moved. Live, the `receipt` is told now or coalesced; in a
    /// catch-up it is made at once (the catch-up keeps the last of each reader and chat).
    pub(super) async fn moved(
        &self,
        state: &AppState,
        memo: &mut ChatMemo,
        d: &mut Delivery<'_>,
        chat: &ChatId,
        reader: &UserId,
    ) -> anyhow::Result<()> {
        let seq = d.next_seq();
        if !d.is_live() {
            let everyone = memo.members_at(state, chat, d.position()).await?;
            if let Some(payload) = pointers(state, chat, reader).await? {
                let to = Audience::users(others(&everyone, reader));
                let payload = payload.wire(chat, reader);
                emit_receipt(state, d, seq, to, &payload, (chat.clone(), reader.clone()));
            }
            return Ok(());
        }
        let Some(wait) = self.wait(chat, reader, seq) else {
            return Ok(());
        };
        if wait.is_zero() {
            tell(state, chat, reader, seq).await;
            return Ok(());
        }
        let (this, state, chat, reader) =
            (self.clone(), state.clone(), chat.clone(), reader.clone());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let mut seq = seq;
            if let Ok(mut slots) = this.slots.lock() {
                if let Some(slot) = slots.get_mut(&(chat.clone(), reader.clone())) {
                    slot.last = Instant::now();
                    slot.due = false;
                    seq = slot.seq;
                }
            }
            tell(&state, &chat, &reader, seq).await;
        });
        Ok(())
    }

    /// How long until the `receipt` may be told (zero: now), or `None` when one is already due.
    fn wait(&self, chat: &ChatId, reader: &UserId, seq: u64) -> Option<Duration> {
        let now = Instant::now();
        let Ok(mut slots) = self.slots.lock() else {
            // A poisoned map only means a panic elsewhere: tell at once rather than never.
            return Some(Duration::ZERO);
        };
        if slots.len() >= REMEMBERED {
            slots.retain(|_, s| s.due || now.duration_since(s.last) < EVERY);
        }
        let key = (chat.clone(), reader.clone());
        match slots.get_mut(&key) {
            Some(slot) if slot.due => {
                slot.seq = seq;
                None
            }
            Some(slot) if now.duration_since(slot.last) < EVERY => {
                slot.due = true;
                slot.seq = seq;
                Some(EVERY - now.duration_since(slot.last))
            }
            Some(slot) => {
                slot.last = now;
                slot.seq = seq;
                Some(Duration::ZERO)
            }
            None => {
                slots.insert(
                    key,
                    Slot {
                        last: now,
                        due: false,
                        seq,
                    },
                );
                Some(Duration::ZERO)
            }
        }
    }
}

/// A member's pointers as the read models have them now.
struct Pointers(queries::ReceiptView);

impl Pointers {
    fn wire<'a>(&'a self, chat: &'a ChatId, reader: &'a UserId) -> ReceiptMoved<'a> {
        ReceiptMoved {
            chat_id: chat,
            delivered: self.0.delivered.as_ref(),
            read: self.0.read.as_ref(),
            user_id: reader,
        }
    }
}

/// `reader`'s pointers in `chat`, or `None` when they are no longer a member.
async fn pointers(
    state: &AppState,
    chat: &ChatId,
    reader: &UserId,
) -> Result<Option<Pointers>, queries::QueryError> {
    let receipts = queries::receipts(&state.reads, chat, Some(reader)).await?;
    Ok(receipts.into_iter().next().map(Pointers))
}

/// `receipt {ChatId, UserId, Delivered, Read, Seq}` to every other current member.
async fn tell(state: &AppState, chat: &ChatId, reader: &UserId, seq: u64) {
    let found = async {
        let pointers = pointers(state, chat, reader).await?;
        let members = queries::members(&state.reads, chat).await?;
        Ok::<_, queries::QueryError>((pointers, members))
    };
    let (pointers, members) = match found.await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(%chat, error = %e, "receipt not delivered");
            return;
        }
    };
    // No longer a member: nothing to tell.
    let Some(pointers) = pointers else {
        return;
    };
    let others = members
        .into_iter()
        .filter(|m| m.id != *reader)
        .map(|m| m.id);
    let payload = pointers.wire(chat, reader);
    emit_as(
        state,
        &mut Out::Sockets,
        seq,
        Audience::users(others),
        "receipt",
        &payload,
        None,
    );
}
