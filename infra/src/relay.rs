//! Events onto NATS without loss: the relay follows the event store's own ordered log by global
//! position and publishes every event to the JetStream stream `<PREFIX>_EVENTS`, subject
//! `<prefix>.events.<stream>`, with the event id as the NATS message id (JetStream drops a
//! duplicate within its window), and its position, the position of the event before it and (when
//! its request was traced) its W3C `traceparent` in headers. It starts from the position of the last event already on the JetStream stream, so a
//! relay that died at any moment, or several relays running at once, leave every stored event on
//! NATS exactly once, in log order.
//!
//! The stream keeps the newest events only (`NATS_STREAM_MAX_EVENTS`): the relay, its only writer,
//! sets that limit on it at start. Whoever reads it must tell a trimmed beginning from the log's
//! (see [`crate::feed::StreamGap`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, context::Publish, stream};
use events_schema::Position;
use futures::StreamExt;
use tokio::sync::watch;

use crate::telemetry::names;
use crate::{subjects, EventStore};

/// Header carrying an event's global position.
pub const POSITION_HEADER: &str = "Chat-Position";
/// Header carrying the position of the event before it in the log (0: none), so that a reader of
/// the stream can tell that nothing between the two is missing, whatever the store's positions look
/// like (consecutive here; commit positions with gaps in EventStoreDB).
pub const PREVIOUS_HEADER: &str = "Chat-Previous";
/// Publishes awaiting their acknowledgement at once.
const IN_FLIGHT: usize = 256;
/// How long JetStream remembers message ids to drop duplicates.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Creates the events stream if it does not exist (idempotent; every service may call it at start).
/// The relay then sets its retention ([`set_retention`]), so one made at the same moment by
/// another service may already differ from this config: it is taken as it is.
pub async fn ensure_events_stream(
    js: &jetstream::Context,
    prefix: &str,
) -> anyhow::Result<stream::Stream> {
    let name = subjects::events_stream(prefix);
    let created = js
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subjects::all_events(prefix)],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await;
    match created {
        Ok(stream) => Ok(stream),
        // Created by someone else between the look-up and the creation, with the limit set.
        Err(e) => js
            .get_stream(&name)
            .await
            .map_err(|_| anyhow::anyhow!("cannot create the JetStream stream {name}: {e}")),
    }
}

/// Makes the stream keep the newest `keep` events (`None`: every event), dropping older ones first,
/// when its limit is not that already (a stream made by another service, or by a relay with
/// another setting). Lowering the limit trims the stream at once.
pub async fn set_retention(
    js: &jetstream::Context,
    stream: &stream::Stream,
    keep: Option<u64>,
) -> anyhow::Result<()> {
    let wanted = keep.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let config = &stream.cached_info().config;
    if config.max_messages == wanted && config.discard == stream::DiscardPolicy::Old {
        return Ok(());
    }
    let mut config = config.clone();
    let before = config.max_messages;
    config.max_messages = wanted;
    config.discard = stream::DiscardPolicy::Old;
    js.update_stream(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot set the retention of {}: {e}", config.name))?;
    tracing::info!(stream = %config.name, before, keep = wanted, "set how many events the stream keeps (-1: all)");
    Ok(())
}

/// The stream's current state (first and last sequence, message count).
pub async fn stream_state(stream: &mut stream::Stream) -> anyhow::Result<stream::State> {
    Ok(stream
        .info()
        .await
        .context("JetStream stream info")?
        .state
        .clone())
}

/// The position of the last event on the JetStream stream (0 when it is empty).
pub async fn last_published(stream: &mut stream::Stream) -> anyhow::Result<Position> {
    let state = stream_state(stream).await?;
    if state.messages == 0 {
        return Ok(0);
    }
    let last = stream
        .get_raw_message(state.last_sequence)
        .await
        .context("last JetStream message")?;
    let position = last
        .headers
        .get(POSITION_HEADER)
        .and_then(|v| v.as_str().parse::<Position>().ok())
        .context("the last JetStream message has no position header")?;
    Ok(position)
}

/// Relays until `stop` turns true, onto a stream keeping the newest `keep` events (`None`: all).
/// A failure (NATS or the store away) is logged and the relay starts again from the last event
/// JetStream holds, after a pause.
pub async fn run(
    store: Arc<dyn EventStore>,
    client: async_nats::Client,
    prefix: String,
    keep: Option<u64>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let js = jetstream::new(client);
    let published = Arc::new(AtomicU64::new(0));
    let watcher = tokio::spawn(watch_lag(store.clone(), published.clone()));
    crate::process::retry_until_stopped(stop, "the event relay", |mut stop| {
        let (store, js, prefix) = (store.clone(), js.clone(), prefix.clone());
        let published = published.clone();
        async move { relay_once(&store, &js, &prefix, keep, &published, &mut stop).await }
    })
    .await;
    watcher.abort();
    Ok(())
}

/// How often the relay's lag is measured against the log's head.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Keeps [`names::RELAY_LAG_EVENTS`] at the distance from the last event JetStream acknowledged
/// to the log's head.
async fn watch_lag(store: Arc<dyn EventStore>, published: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(LAG_EVERY);
    loop {
        tick.tick().await;
        if let Ok(head) = store.head().await {
            let behind = head.saturating_sub(published.load(Ordering::Relaxed));
            metrics::gauge!(names::RELAY_LAG_EVENTS).set(behind as f64);
        }
    }
}

/// Where a stream keeping `keep` events would start: the position of the event before the oldest
/// of the newest `keep` (0: the log is not longer than that). A relay far behind (a new or emptied
/// stream, NATS's storage lost, a relay stopped for long) starts there instead of publishing the
/// whole log again only for the stream to drop it, which would hold every new event back behind
/// it; readers find the jump like any trimmed beginning ([`crate::feed::StreamGap`]) and read the
/// rest from the event store. The count is of positions, exact for stores whose positions follow
/// each other (SQL ones) and fewer events for stores with gaps; the position returned is always
/// an event's, so the next event's `Chat-Previous` stays true.
async fn oldest_kept(store: &dyn EventStore, keep: u64) -> anyhow::Result<Position> {
    let head = store.head().await.context("reading the event log's head")?;
    let Some(before) = head.checked_sub(keep).filter(|p| *p > 0) else {
        return Ok(0);
    };
    let event = store
        .read_all(before - 1, 1)
        .await
        .context("reading the event log")?;
    Ok(event.first().map_or(0, |e| e.position))
}

/// Publishes the first event after a jump ([`oldest_kept`]), alone and acknowledged before any
/// other, and only if the stream's last sequence is still `seen`. Two relays that jumped from
/// different places (each read the log's head at another moment) would otherwise interleave,
/// putting the stream out of log order; the one refused starts again from what the other
/// published. An event another relay has already published is a duplicate JetStream drops before
/// that check, so relays that jumped to the same place go on together.
pub async fn publish_after_jump(
    js: &jetstream::Context,
    subject: String,
    publish: Publish,
    seen: u64,
) -> anyhow::Result<()> {
    js.send_publish(subject, publish.expected_last_sequence(seen))
        .await
        .context("publishing to JetStream")?
        .await
        .context("the JetStream stream changed since the relay looked at it (another relay?)")?;
    Ok(())
}

/// Publishes from JetStream's last event onwards; returns Ok only when asked to stop.
async fn relay_once(
    store: &Arc<dyn EventStore>,
    js: &jetstream::Context,
    prefix: &str,
    keep: Option<u64>,
    acknowledged: &AtomicU64,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut stream = ensure_events_stream(js, prefix).await?;
    set_retention(js, &stream, keep).await?;
    // Looked at before the last event, so that a stream moving in between makes it stale, not new.
    let seen = stream_state(&mut stream).await?.last_sequence;
    let published = last_published(&mut stream).await?;
    let from = match keep {
        Some(keep) => published.max(oldest_kept(store.as_ref(), keep).await?),
        None => published,
    };
    tracing::info!(from, published, stream = %subjects::events_stream(prefix), "relaying events to JetStream");
    acknowledged.store(from, Ordering::Relaxed);
    let mut events = store.subscribe_all(from);
    let mut acks = VecDeque::new();
    let mut previous = from;
    // After a jump, the first event goes alone and only onto the stream as it was seen.
    let mut jumped_past = (from > published).then_some(seen);
    loop {
        // Wait for acknowledgements while many are outstanding, or while the log is quiet.
        let next = if acks.len() >= IN_FLIGHT {
            None
        } else if acks.is_empty() {
            tokio::select! {
                next = events.next() => Some(next),
                _ = stop.changed() => return Ok(()),
            }
        } else {
            // Take whatever is ready without waiting; otherwise settle the oldest acknowledgement.
            futures::FutureExt::now_or_never(events.next())
        };
        match next {
            Some(Some(event)) => {
                let event = event.context("reading the event log")?;
                let body = serde_json::to_vec(&event).context("encoding an event")?;
                let mut publish = Publish::build()
                    .payload(body.into())
                    .message_id(event.event_id.to_string())
                    .header(POSITION_HEADER, event.position.to_string())
                    .header(PREVIOUS_HEADER, previous.to_string());
                if let Some(trace_parent) = &event.trace_parent {
                    // For NATS-level tools; the services read it from the event itself.
                    publish = publish
                        .header(crate::telemetry::traces::TRACEPARENT, trace_parent.as_str());
                }
                previous = event.position;
                let subject = subjects::event(prefix, &event.stream);
                if let Some(seen) = jumped_past.take() {
                    publish_after_jump(js, subject, publish, seen).await?;
                    acknowledged.store(previous, Ordering::Relaxed);
                    metrics::counter!(names::EVENTS_RELAYED).increment(1);
                    continue;
                }
                let ack = js
                    .send_publish(subject, publish)
                    .await
                    .context("publishing to JetStream")?;
                acks.push_back((event.position, ack));
            }
            Some(None) => anyhow::bail!("the event log subscription ended"),
            None => {
                if let Some((position, ack)) = acks.pop_front() {
                    ack.await
                        .context("JetStream did not acknowledge an event")?;
                    acknowledged.store(position, Ordering::Relaxed);
                    metrics::counter!(names::EVENTS_RELAYED).increment(1);
                }
            }
        }
    }
}
