//! Serving commands over NATS: this instance joins the command-service queue group on
//! `<prefix>.commands` and answers each request it is given on the request's reply subject.

use std::sync::Arc;
use std::time::Duration;

use events_schema::{CommandEnvelope, CommandOutcome, RefusalCode};
use futures::StreamExt;
use infra::bus::{command_queue, command_subject};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::CommandService;

/// How long in-flight commands may take to finish once asked to stop.
const DRAIN: Duration = Duration::from_secs(8);

/// Serves until `stop` turns true, then stops taking requests and lets in-flight ones finish
/// (bounded by [`DRAIN`]).
pub async fn serve(
    service: Arc<CommandService>,
    client: async_nats::Client,
    prefix: &str,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut requests = client
        .queue_subscribe(command_subject(prefix), command_queue(prefix))
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to commands: {e}"))?;
    tracing::info!(subject = %command_subject(prefix), "serving commands");
    let mut in_flight = JoinSet::new();
    loop {
        let message = tokio::select! {
            message = requests.next() => message,
            _ = stop.changed() => break,
        };
        let Some(message) = message else { break };
        // Reap finished tasks so the set does not grow.
        while in_flight.try_join_next().is_some() {}
        let Some(reply) = message.reply.clone() else {
            tracing::debug!("command without a reply subject ignored");
            continue;
        };
        let service = service.clone();
        let client = client.clone();
        in_flight.spawn(async move {
            let outcome = match serde_json::from_slice::<CommandEnvelope>(&message.payload) {
                Ok(envelope) => service.handle(envelope).await,
                Err(e) => {
                    tracing::debug!(error = %e, "unreadable command refused");
                    CommandOutcome::refused(RefusalCode::BadRequest, "unreadable command")
                }
            };
            match serde_json::to_vec(&outcome) {
                Ok(body) => {
                    if let Err(e) = client.publish(reply, body.into()).await {
                        tracing::warn!(error = %e, "cannot answer a command");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode an outcome"),
            }
        });
    }
    let _ = requests.unsubscribe().await;
    let drained = tokio::time::timeout(DRAIN, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("stopped with commands still in flight");
    }
    let _ = client.flush().await;
    Ok(())
}
