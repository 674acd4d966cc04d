//! The projection-service of the production topology: a JetStream durable consumer feeds the
//! projector; a batch is acknowledged only after its transaction (with the checkpoint) commits,
//! and what it applied is then published on `<prefix>.applied.read_models` for the gateways to
//! deliver (infra::feed::Applied).

use std::sync::Arc;

use async_nats::jetstream;
use bytes::Bytes;
use events_schema::Position;
use infra::feed::{applied_messages, applied_subject, durable_name, DurableFeed};
use tokio::sync::watch;

use crate::projector::{Projector, BATCH, CHECKPOINT};

/// Room left in a NATS message for its subject and headers.
const ENVELOPE_ROOM: usize = 4 * 1024;

/// Projects until `stop` turns true. Any failure (NATS or the database away, a message out of
/// order) is logged and the feed is reopened from the checkpoint after a pause; the batch in hand
/// is committed before stopping.
pub async fn run(
    client: async_nats::Client,
    prefix: String,
    projector: Arc<Projector>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let js = jetstream::new(client.clone());
    let name = durable_name(&prefix, CHECKPOINT);
    let subject = applied_subject(&prefix, CHECKPOINT);
    infra::process::retry_until_stopped(stop, "the projection", |mut stop| {
        let (js, client, prefix) = (js.clone(), client.clone(), prefix.clone());
        let (name, subject, projector) = (name.clone(), subject.clone(), projector.clone());
        async move {
            let announcer = Announcer {
                client: &client,
                subject: &subject,
            };
            follow(&js, &prefix, &name, announcer, &projector, &mut stop).await
        }
    })
    .await;
    Ok(())
}

/// One run of the feed from the checkpoint; Ok only when asked to stop.
async fn follow(
    js: &jetstream::Context,
    prefix: &str,
    name: &str,
    announcer: Announcer<'_>,
    projector: &Projector,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut checkpoint = projector.checkpoint().await?;
    let mut feed = DurableFeed::open(js, prefix, name, checkpoint).await?;
    announcer.applied(checkpoint, checkpoint, &[], &[]).await;
    loop {
        let batch = tokio::select! {
            biased;
            batch = feed.next_batch(BATCH) => batch?,
            _ = stop.changed() => return Ok(()),
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
