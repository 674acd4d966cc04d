//! Serving commands over NATS: this instance joins the command-service queue group on
//! `<prefix>.commands` and answers each request it is given on the request's reply subject: a
//! command with its outcome, a batch of commands with their outcomes in order (see [`answer`]).

use std::sync::Arc;
use std::time::Duration;

use events_schema::{CommandEnvelope, CommandOutcome, RefusalCode};
use futures::StreamExt;
use infra::subjects;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::CommandService;

/// How long in-flight commands may take to finish once asked to stop.
const DRAIN: Duration = Duration::from_secs(8);

/// Serves until `stop` turns true, then stops taking requests and lets in-flight ones finish
/// (bounded by [`DRAIN`]). Requests NATS had already handed to this instance when it was told to
/// stop are still answered: the subscription is drained, not dropped, so a restart or a rolling
/// upgrade leaves no command waiting for an answer that will not come.
pub async fn serve(
    service: Arc<CommandService>,
    client: async_nats::Client,
    prefix: &str,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut requests = client
        .queue_subscribe(subjects::commands(prefix), subjects::command_queue(prefix))
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to commands: {e}"))?;
    tracing::info!(subject = %subjects::commands(prefix), "serving commands");
    let mut in_flight = JoinSet::new();
    // Set once asked to stop: until then the drained subscription's last requests are taken.
    let mut draining: Option<tokio::time::Instant> = None;
    loop {
        let message = tokio::select! {
            message = requests.next() => message,
            _ = stop.changed(), if draining.is_none() => {
                draining = Some(tokio::time::Instant::now() + DRAIN);
                if let Err(e) = requests.drain().await {
                    tracing::warn!(error = %e, "cannot drain the command subscription");
                    break;
                }
                continue;
            }
            () = sleep_until(draining), if draining.is_some() => break,
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
            let body = match answer(&service, &message.payload).await {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode an outcome");
                    return;
                }
            };
            if let Err(e) = client.publish(reply, body.into()).await {
                tracing::warn!(error = %e, "cannot answer a command");
            }
        });
    }
    let _ = requests.unsubscribe().await;
    let deadline = draining.unwrap_or_else(|| tokio::time::Instant::now() + DRAIN);
    let drained = tokio::time::timeout_at(deadline, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("stopped with commands still in flight");
    }
    let _ = client.flush().await;
    Ok(())
}

/// Resolves at `at`; never when there is no `at`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The answer to one request: a command (a JSON object) is answered by its outcome; a batch (a JSON
/// array of commands, see `infra::bus::NatsCommands`) by the array of their outcomes, in order,
/// decided concurrently as separate requests would be. An unreadable command is refused as
/// `bad-request` (alone, or in its place in the batch), never dropped.
pub async fn answer(service: &CommandService, payload: &[u8]) -> serde_json::Result<Vec<u8>> {
    let is_batch = payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !is_batch {
        return serde_json::to_vec(&decide(service, serde_json::from_slice(payload)).await);
    }
    let outcomes = match serde_json::from_slice::<Vec<&RawValue>>(payload) {
        Ok(commands) => {
            futures::future::join_all(
                commands
                    .into_iter()
                    .map(|c| decide(service, serde_json::from_str(c.get()))),
            )
            .await
        }
        // Not even an array of JSON values: there is no telling how many commands it held, so the
        // answer is one refusal, which the gateway reads as a failed request.
        Err(e) => vec![decide(service, Err(e)).await],
    };
    serde_json::to_vec(&outcomes)
}

async fn decide(
    service: &CommandService,
    envelope: serde_json::Result<CommandEnvelope>,
) -> CommandOutcome {
    match envelope {
        Ok(envelope) => service.handle(envelope).await,
        Err(e) => {
            tracing::debug!(error = %e, "unreadable command refused");
            CommandOutcome::refused(RefusalCode::BadRequest, "unreadable command")
        }
    }
}
