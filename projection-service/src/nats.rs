//! The projection-service of the production topology: a JetStream durable consumer feeds the
//! projector; a batch is acknowledged only after its transaction (with the checkpoint) commits,
//! and the committed position is announced on `<prefix>.progress.read_models` for the gateways.

use std::sync::Arc;

use async_nats::jetstream;
use infra::feed::{durable_name, progress_subject, DurableFeed};
use tokio::sync::watch;

use crate::projector::{Projector, BATCH, CHECKPOINT};

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
    let progress = progress_subject(&prefix, CHECKPOINT);
    infra::process::retry_until_stopped(stop, "the projection", |mut stop| {
        let (js, client, prefix) = (js.clone(), client.clone(), prefix.clone());
        let (name, progress, projector) = (name.clone(), progress.clone(), projector.clone());
        async move {
            follow(
                &js, &client, &prefix, &name, &progress, &projector, &mut stop,
            )
            .await
        }
    })
    .await;
    Ok(())
}

/// One run of the feed from the checkpoint; Ok only when asked to stop.
async fn follow(
    js: &jetstream::Context,
    client: &async_nats::Client,
    prefix: &str,
    name: &str,
    progress: &str,
    projector: &Projector,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let checkpoint = projector.checkpoint().await?;
    let mut feed = DurableFeed::open(js, prefix, name, checkpoint).await?;
    announce(client, progress, checkpoint).await;
    loop {
        let batch = tokio::select! {
            biased;
            batch = feed.next_batch(BATCH) => batch?,
            _ = stop.changed() => return Ok(()),
        };
        let position = projector.apply(&batch.events).await?;
        batch.ack().await?;
        announce(client, progress, position).await;
    }
}

async fn announce(client: &async_nats::Client, subject: &str, position: u64) {
    if let Err(e) = client
        .publish(subject.to_owned(), position.to_string().into())
        .await
    {
        tracing::debug!(error = %e, "cannot announce the projection's progress");
    }
}
