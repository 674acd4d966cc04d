//! NATS transport. Commands travel by request/reply on `<prefix>.commands`, served by a queue group
//! of command-service instances: NATS hands each request to exactly one live instance, the reply
//! comes straight back to the waiting gateway, and nothing needs to be stored in between (the
//! command's effect is stored by the event store; a request whose instance dies is answered as
//! failed by the gateway's timeout, and its effect is either stored once or not at all). A
//! JetStream work queue would persist requests that no client is waiting for any more.
//!
//! Under load a gateway batches: it keeps at most [`COMMANDS_IN_FLIGHT`] requests out, and the
//! commands that queue meanwhile leave together in the next one (a JSON array, answered by the
//! array of outcomes), so NATS carries one request and one reply per batch instead of per
//! command. An idle gateway sends each command the moment it comes, alone, as the plain envelope.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use events_schema::{CommandEnvelope, CommandOutcome, RefusalCode};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::backoff::Backoff;

/// How long a gateway waits for a command-service's answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url`, failing within a few seconds (with the reason) when NATS is unreachable;
/// once connected the client reconnects by itself.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    use crate::telemetry::names;
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(COMMAND_TIMEOUT))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => {
                    metrics::gauge!(names::NATS_CONNECTED).set(1.0);
                }
                async_nats::Event::Disconnected => {
                    metrics::gauge!(names::NATS_CONNECTED).set(0.0);
                    metrics::counter!(names::NATS_RECONNECTS).increment(1);
                    tracing::warn!("NATS: connection lost; reconnecting");
                }
                other => tracing::debug!(event = %other, "NATS"),
            }
        })
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("NATS (NATS_URL) unavailable: {e}"))
}

/// Requests this gateway keeps in flight to the command-services at once. While that many are
/// out, new commands wait and leave together in the next request: under load a gateway sends one
/// NATS request per batch of commands instead of one per command; an idle one sends each at once.
pub const COMMANDS_IN_FLIGHT: usize = 8;
/// How long one request may keep its slot. A command-service instance that takes requests and
/// never answers would otherwise hold every slot in turn and stall this gateway's commands for the
/// whole [`COMMAND_TIMEOUT`]; past this, the request waits on without its slot.
const SLOT_HOLD: Duration = Duration::from_millis(500);
/// The most commands one request carries.
const MAX_BATCH: usize = 64;
/// The most bytes of commands one request carries (NATS refuses messages over its `max_payload`,
/// 1 MiB by default); a single command larger than this still goes, alone.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A command waiting to be sent, and where its outcome goes.
struct Pending {
    payload: bytes::Bytes,
    answer: oneshot::Sender<CommandOutcome>,
}

/// Sends commands to whichever command-service instance NATS picks, and waits (bounded) for its
/// answer. A request carries one command (the envelope's JSON, answered by one outcome) or, when
/// commands queued up behind [`COMMANDS_IN_FLIGHT`] requests, several (a JSON array of envelopes,
/// answered by the array of their outcomes in the same order).
#[derive(Clone)]
pub struct NatsCommands {
    queue: mpsc::UnboundedSender<Pending>,
}

impl NatsCommands {
    /// Starts the task that sends this client's requests (on the current Tokio runtime).
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(send_requests(
            client,
            crate::subjects::commands(prefix).into(),
            pending,
        ));
        Self { queue }
    }

    /// The command's outcome; `internal` when no instance answers within [`COMMAND_TIMEOUT`] or
    /// the answer cannot be read. Never waits longer.
    pub async fn dispatch(&self, envelope: &CommandEnvelope) -> CommandOutcome {
        let payload = match serde_json::to_vec(envelope) {
            Ok(p) => p.into(),
            Err(e) => return internal(format!("cannot encode the command: {e}")),
        };
        let (answer, outcome) = oneshot::channel();
        if self.queue.send(Pending { payload, answer }).is_err() {
            return internal("the command sender has stopped".into());
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, outcome).await {
            Ok(Ok(outcome)) => outcome,
            // The request was answered as failed (and logged) or dropped with its task.
            Ok(Err(_)) => refused_internal(),
            Err(_) => internal("the command-service did not answer in time".into()),
        }
    }
}

/// Takes queued commands into requests, at most [`COMMANDS_IN_FLIGHT`] out at once; ends when
/// every [`NatsCommands`] handle is gone.
async fn send_requests(
    client: async_nats::Client,
    subject: Subject,
    mut pending: mpsc::UnboundedReceiver<Pending>,
) {
    let slots = Arc::new(Semaphore::new(COMMANDS_IN_FLIGHT));
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match pending.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        // Waiting here for a free slot is what lets the queue fill into a batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // A command whose caller gave up (and was answered `internal`) is not sent any more.
        if first.answer.is_closed() {
            continue;
        }
        let mut bytes = first.payload.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) if next.answer.is_closed() => {}
                Ok(next) if bytes + next.payload.len() > MAX_BATCH_BYTES => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => {
                    bytes += next.payload.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        // Cheap clones: the client is a handle, the subject shared bytes.
        let (client, subject) = (client.clone(), subject.clone());
        tokio::spawn(async move {
            let request = request(&client, subject, batch);
            tokio::pin!(request);
            tokio::select! {
                () = &mut request => return,
                () = tokio::time::sleep(SLOT_HOLD) => drop(slot),
            }
            request.await;
        });
    }
}

/// How long to wait before asking again when no command-service instance is subscribed: the first
/// pause, doubled after each try up to [`NO_RESPONDERS_MAX_PAUSE`].
const NO_RESPONDERS_FIRST_PAUSE: Duration = Duration::from_millis(25);
const NO_RESPONDERS_MAX_PAUSE: Duration = Duration::from_millis(400);

/// Sends one request and hands every command its outcome.
///
/// "No responders" means NATS handed the request to nobody, so nothing was decided and sending it
/// again cannot do anything twice: the request is sent again, with growing pauses, while an
/// instance may still come (a restart, a rolling upgrade) and someone still waits for an answer,
/// for at most [`COMMAND_TIMEOUT`] in all.
async fn request(client: &async_nats::Client, subject: Subject, mut batch: Vec<Pending>) {
    let started = tokio::time::Instant::now();
    let mut pauses = Backoff::new(NO_RESPONDERS_FIRST_PAUSE, NO_RESPONDERS_MAX_PAUSE);
    loop {
        match ask(client, subject.clone(), &batch).await {
            Asked::Answered(payload) => return hand_out(batch, &payload),
            Asked::Failed(detail) => return fail(batch, detail),
            Asked::NoResponders => {
                batch.retain(|p| !p.answer.is_closed());
                if batch.is_empty() {
                    return;
                }
                let pause = pauses.next();
                if started.elapsed() + pause >= COMMAND_TIMEOUT {
                    return fail(batch, "no command-service is running".into());
                }
                tracing::debug!(
                    commands = batch.len(),
                    pause_ms = pause.as_millis() as u64,
                    "no command-service is subscribed; asking again"
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// What became of one request.
enum Asked {
    Answered(bytes::Bytes),
    NoResponders,
    Failed(String),
}

/// Sends the batch as one request: the command itself when alone, else the array of them.
async fn ask(client: &async_nats::Client, subject: Subject, batch: &[Pending]) -> Asked {
    let single = batch.len() == 1;
    let payload = if single {
        batch[0].payload.clone()
    } else {
        let mut body =
            Vec::with_capacity(batch.iter().map(|p| p.payload.len() + 1).sum::<usize>() + 1);
        body.push(b'[');
        for (i, p) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&p.payload);
        }
        body.push(b']');
        body.into()
    };
    let request = client.request(subject, payload);
    match tokio::time::timeout(COMMAND_TIMEOUT, request).await {
        Ok(Ok(reply)) => Asked::Answered(reply.payload),
        Ok(Err(e)) => match e.kind() {
            async_nats::RequestErrorKind::NoResponders => Asked::NoResponders,
            async_nats::RequestErrorKind::TimedOut => {
                Asked::Failed("the command-service did not answer in time".into())
            }
            async_nats::RequestErrorKind::Other => {
                Asked::Failed(format!("NATS request failed: {e}"))
            }
        },
        Err(_) => Asked::Failed("the command-service did not answer in time".into()),
    }
}

/// Hands every command of the batch its outcome from the reply.
fn hand_out(batch: Vec<Pending>, reply: &[u8]) {
    let outcomes = if batch.len() == 1 {
        serde_json::from_slice::<CommandOutcome>(reply).map(|o| vec![o])
    } else {
        serde_json::from_slice::<Vec<CommandOutcome>>(reply)
    };
    match outcomes {
        Ok(outcomes) if outcomes.len() == batch.len() => {
            for (p, outcome) in batch.into_iter().zip(outcomes) {
                // The caller may have timed out meanwhile; nothing waits for it then.
                let _ = p.answer.send(outcome);
            }
        }
        Ok(outcomes) => {
            let detail = format!(
                "the command-service answered {} outcomes for {} commands",
                outcomes.len(),
                batch.len()
            );
            fail(batch, detail)
        }
        Err(e) => fail(
            batch,
            format!("unreadable answer from the command-service: {e}"),
        ),
    }
}

/// Answers every command of a request that failed as a whole (logged once).
fn fail(batch: Vec<Pending>, detail: String) {
    tracing::warn!(%detail, commands = batch.len(), "commands not answered");
    for p in batch {
        let _ = p.answer.send(refused_internal());
    }
}

fn refused_internal() -> CommandOutcome {
    CommandOutcome::refused(
        RefusalCode::Internal,
        "the command could not be processed; try again",
    )
}

fn internal(detail: String) -> CommandOutcome {
    tracing::warn!(%detail, "command not answered");
    refused_internal()
}
