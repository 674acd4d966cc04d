//! The projection-service of the production topology: a JetStream durable consumer feeds the
//! projector; a batch is acknowledged only after its transaction (with the checkpoint) commits,
//! and what it applied is then published on `<prefix>.applied.read_models` for the gateways to
//! deliver (infra::feed::Applied).
//!
//! The stream keeps only the newest events (`NATS_STREAM_MAX_EVENTS`). When it no longer reaches
//! back to the checkpoint (the projection was stopped, or fell behind, for longer than that), the
//! projection reads what is missing from the event store, which it opens only then, and goes back
//! to the stream where it takes over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream;
use bytes::Bytes;
use events_schema::Position;
use infra::event_store::open_event_store;
use infra::feed::{applied_messages, DurableFeed, StreamGap};
use infra::subjects;
use infra::EventStore;
use tokio::sync::{watch, OnceCell};

use crate::read_models::checkpoint::NAME as CHECKPOINT;
use crate::read_models::{Projector, BATCH};

/// Room left in a NATS message for its subject and headers.
const ENVELOPE_ROOM: usize = 4 * 1024;

/// The event store, opened the first time the stream does not reach back far enough.
pub struct LazyStore {
    url: String,
    store: OnceCell<Arc<dyn EventStore>>,
    /// A catch-up needs the store: set when one starts, cleared only when one has finished.
    needed: AtomicBool,
}

impl LazyStore {
    /// The store at `url` (EVENT_STORE_URL), not opened yet.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            store: OnceCell::new(),
            needed: AtomicBool::new(false),
        }
    }

    /// For `/ready`: `false` only while the projection needs the store to catch up and it cannot
    /// be opened or does not answer. A projection that follows the stream does not depend on it.
    pub async fn ready(&self) -> bool {
        if !self.needed.load(Ordering::Relaxed) {
            return true;
        }
        match self.get().await {
            Ok(store) => store.ping().await.is_ok(),
            Err(_) => false,
        }
    }

    async fn get(&self) -> anyhow::Result<&Arc<dyn EventStore>> {
        self.store
            .get_or_try_init(|| async {
                open_event_store(&self.url).await.map_err(|e| {
                    anyhow::anyhow!("event store (EVENT_STORE_URL) unavailable: {e:#}")
                })
            })
            .await
    }
}

/// Projects until `stop` turns true. Any failure (NATS or the database away, a message out of
/// order) is logged and the feed is reopened from the checkpoint after a pause; the batch in hand
/// is committed before stopping. What the stream no longer holds is read from `store`.
pub async fn run(
    client: async_nats::Client,
    prefix: String,
    projector: Arc<Projector>,
    store: Arc<LazyStore>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let js = jetstream::new(client.clone());
    let name = subjects::durable_consumer(&prefix, CHECKPOINT);
    let subject = subjects::applied(&prefix, CHECKPOINT);
    infra::process::retry_until_stopped(stop, "the projection", |mut stop| {
        let (js, client, prefix) = (js.clone(), client.clone(), prefix.clone());
        let (name, subject, projector) = (name.clone(), subject.clone(), projector.clone());
        let store = store.clone();
        async move {
            let announcer = Announcer {
                client: &client,
                subject: &subject,
            };
            let feed = Feed {
                js: &js,
                prefix: &prefix,
                name: &name,
                store: &store,
            };
            follow(feed, announcer, &projector, &mut stop).await
        }
    })
    .await;
    Ok(())
}

/// Where the events come from: the JetStream stream, and the event store for what it dropped.
#[derive(Clone, Copy)]
struct Feed<'a> {
    js: &'a jetstream::Context,
    prefix: &'a str,
    name: &'a str,
    store: &'a LazyStore,
}

/// One run of the feed from the checkpoint; Ok only when asked to stop.
async fn follow(
    source: Feed<'_>,
    announcer: Announcer<'_>,
    projector: &Projector,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut checkpoint = projector.checkpoint().await?;
    let mut feed = DurableFeed::open(source.js, source.prefix, source.name, checkpoint).await?;
    announcer.applied(checkpoint, checkpoint, &[], &[]).await;
    loop {
        let batch = tokio::select! {
            biased;
            batch = feed.next_batch(BATCH) => batch,
            _ = stop.changed() => return Ok(()),
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                let Some(gap) = e.downcast_ref::<StreamGap>().copied() else {
                    return Err(e);
                };
                // Its pull request would go on filling a buffer nobody reads meanwhile.
                drop(feed);
                checkpoint =
                    catch_up(source.store, checkpoint, gap, announcer, projector, stop).await?;
                if *stop.borrow() {
                    return Ok(());
                }
                feed = DurableFeed::open(source.js, source.prefix, source.name, checkpoint).await?;
                continue;
            }
        };
        let position = projector.apply(&batch.events).await?;
        // What this commit applied: the batch's events after the checkpoint it started from (a
        // redelivered event at or before it changed nothing and is not announced again).
        let skip = batch.events.partition_point(|e| e.position <= checkpoint);
        let positions: Vec<Position> = batch.events[skip..].iter().map(|e| e.position).collect();
        let raw = batch.raw[skip..].to_vec();
        batch.ack().await?;
        if position > checkpoint {
            announcer
                .applied(checkpoint, position, &raw, &positions)
                .await;
            checkpoint = position;
        }
    }
}

/// Applies from the event store the events after `checkpoint` up to `gap.upto` (the event before
/// the first the stream still holds), a batch a transaction as from the stream, each announced for
/// the gateways; returns the checkpoint reached. Stops early, between two commits, when asked to
/// stop.
async fn catch_up(
    lazy: &LazyStore,
    mut checkpoint: Position,
    gap: StreamGap,
    announcer: Announcer<'_>,
    projector: &Projector,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Position> {
    tracing::warn!(
        after = checkpoint,
        upto = gap.upto,
        "the JetStream stream no longer holds these events; reading them from the event store"
    );
    if gap.upto <= checkpoint {
        // The stream's first event claims to follow one at or before the checkpoint: not a log
        // this projection can have come from.
        return Err(gap.into());
    }
    lazy.needed.store(true, Ordering::Relaxed);
    let store = lazy.get().await?;
    while checkpoint < gap.upto && !*stop.borrow() {
        let events = store
            .read_all(checkpoint, BATCH)
            .await
            .context("reading the event store")?;
        anyhow::ensure!(
            !events.is_empty(),
            "the event store (EVENT_STORE_URL) ends at position {checkpoint}, but the JetStream \
             stream's events follow position {}: is it the store the relay publishes from?",
            gap.upto
        );
        let raw = events
            .iter()
            .map(|e| serde_json::to_vec(e).map(Bytes::from))
            .collect::<Result<Vec<_>, _>>()
            .context("encoding an event")?;
        let positions: Vec<Position> = events.iter().map(|e| e.position).collect();
        let position = projector.apply(&events).await?;
        announcer
            .applied(checkpoint, position, &raw, &positions)
            .await;
        checkpoint = position;
    }
    if checkpoint < gap.upto {
        // Stopped half-way: the next start needs the store again.
        return Ok(checkpoint);
    }
    lazy.needed.store(false, Ordering::Relaxed);
    tracing::info!(
        checkpoint,
        "read from the event store; back to the JetStream stream"
    );
    Ok(checkpoint)
}

/// Publishes what the read models applied, for the gateways' deliveries.
#[derive(Clone, Copy)]
struct Announcer<'a> {
    client: &'a async_nats::Client,
    subject: &'a str,
}

impl Announcer<'_> {
    /// Best effort: a gateway that misses one reads the events back from JetStream when it sees
    /// the next one, or the checkpoint, move past what it delivered.
    async fn applied(
        &self,
        after: Position,
        position: Position,
        raw: &[Bytes],
        positions: &[Position],
    ) {
        let max = (self.client.server_info().max_payload)
            .saturating_sub(ENVELOPE_ROOM)
            .max(1);
        for message in applied_messages(after, position, raw, positions, max) {
            if let Err(e) = self.client.publish(self.subject.to_owned(), message).await {
                tracing::debug!(error = %e, "cannot announce what the projection applied");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_store_counts_for_readiness_only_while_a_catch_up_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let reachable = LazyStore::new(infra::db::sqlite_url(&dir.path().join("events.db")));
        // Nothing listens on port 1.
        let unreachable = LazyStore::new("postgres://postgres@127.0.0.1:1/none");
        for store in [&reachable, &unreachable] {
            assert!(store.ready().await, "not needed: ready whatever the store");
            store.needed.store(true, Ordering::Relaxed);
        }
        assert!(reachable.ready().await);
        assert!(!unreachable.ready().await, "needed and away: not ready");
    }
}
