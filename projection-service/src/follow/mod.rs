//! Following the event log in-process: the all-in-one server's projector, and the
//! projection-service's when it is not fed over NATS.

pub mod nats;

use std::sync::Arc;
use std::time::Duration;

use events_schema::{Position, RecordedEvent};
use futures::StreamExt;
use infra::backoff::Backoff;
use infra::EventStore;
use tokio::sync::{mpsc, watch};

use crate::read_models::{Projector, BATCH};

/// Follows the event log from the projector's checkpoint until `stop` turns true: applies each
/// batch of committed events, then publishes the new checkpoint on `progress` (read-your-writes
/// waits on it) and hands the batch to `applied` (delivery to sockets). A failure of the store or
/// the database is logged and retried from the checkpoint after a pause; nothing is skipped but
/// an event [`Projector::apply`] parks (one the read models cannot take).
pub async fn run(
    store: Arc<dyn EventStore>,
    projector: Arc<Projector>,
    progress: watch::Sender<Position>,
    applied: Option<mpsc::Sender<Vec<Arc<RecordedEvent>>>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let from = match projector.checkpoint().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "projector: cannot read its checkpoint; retrying");
                if sleep_or_stop(&mut stop, backoff.next()).await {
                    return Ok(());
                }
                continue;
            }
        };
        let mut events = store.subscribe_all(from).ready_chunks(BATCH);
        loop {
            let next = tokio::select! {
                biased;
                next = events.next() => next,
                _ = stop.changed() => return Ok(()),
            };
            let Some(chunk) = next else { break };
            let mut batch = Vec::with_capacity(chunk.len());
            let mut failure = None;
            for item in chunk {
                match item {
                    Ok(event) => batch.push(event),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                match projector.apply(&batch).await {
                    Ok(position) => {
                        backoff.reset();
                        progress.send_replace(position);
                        if let Some(applied) = &applied {
                            let batch: Vec<Arc<RecordedEvent>> =
                                batch.into_iter().map(Arc::new).collect();
                            if applied.send(batch).await.is_err() {
                                tracing::debug!("delivery has stopped; projecting on");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "projector: applying a batch failed; retrying from the checkpoint");
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                tracing::error!(error = %e, "projector: event log subscription failed; resubscribing");
                break;
            }
        }
        if sleep_or_stop(&mut stop, backoff.next()).await {
            return Ok(());
        }
    }
}

/// Sleeps for `pause`; true when asked to stop meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
