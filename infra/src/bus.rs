//! NATS transport. Commands travel by request/reply on `<prefix>.commands`, served by a queue group
//! of command-service instances: NATS hands each request to exactly one live instance, the reply
//! comes straight back to the waiting gateway, and nothing needs to be stored in between (the
//! command's effect is stored by the event store; a request whose instance dies is answered as
//! failed by the gateway's timeout, and its effect is either stored once or not at all). A
//! JetStream work queue would persist requests that no client is waiting for any more.

use std::time::Duration;

use events_schema::{CommandEnvelope, CommandOutcome, RefusalCode};

/// How long a gateway waits for a command-service's answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The subject commands are sent on.
pub fn command_subject(prefix: &str) -> String {
    format!("{prefix}.commands")
}

/// The queue group command-service instances share.
pub fn command_queue(prefix: &str) -> String {
    format!("{prefix}.command-service")
}

/// Connects to `url`, failing within a few seconds (with the reason) when NATS is unreachable;
/// once connected the client reconnects by itself.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(COMMAND_TIMEOUT))
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("NATS (NATS_URL) unavailable: {e}"))
}

/// Sends commands to whichever command-service instance NATS picks, and waits (bounded) for its
/// answer.
#[derive(Clone)]
pub struct NatsCommands {
    client: async_nats::Client,
    subject: String,
}

impl NatsCommands {
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        Self {
            client,
            subject: command_subject(prefix),
        }
    }

    /// The command's outcome; `internal` when no instance answers within [`COMMAND_TIMEOUT`] or
    /// the answer cannot be read. Never waits longer.
    pub async fn dispatch(&self, envelope: &CommandEnvelope) -> CommandOutcome {
        let payload = match serde_json::to_vec(envelope) {
            Ok(p) => p,
            Err(e) => return internal(format!("cannot encode the command: {e}")),
        };
        let request = self.client.request(self.subject.clone(), payload.into());
        match tokio::time::timeout(COMMAND_TIMEOUT, request).await {
            Ok(Ok(reply)) => serde_json::from_slice(&reply.payload).unwrap_or_else(|e| {
                internal(format!("unreadable answer from the command-service: {e}"))
            }),
            Ok(Err(e)) => match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    internal("no command-service is running".into())
                }
                async_nats::RequestErrorKind::TimedOut => {
                    internal("the command-service did not answer in time".into())
                }
                async_nats::RequestErrorKind::Other => {
                    internal(format!("NATS request failed: {e}"))
                }
            },
            Err(_) => internal("the command-service did not answer in time".into()),
        }
    }
}

fn internal(detail: String) -> CommandOutcome {
    tracing::warn!(%detail, "command not answered");
    CommandOutcome::refused(
        RefusalCode::Internal,
        "the command could not be processed; try again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_share_the_prefix() {
        assert_eq!(command_subject("chat"), "chat.commands");
        assert_eq!(command_queue("run42"), "run42.command-service");
    }
}
