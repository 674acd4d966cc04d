//! The gateway's shared state and the ports it talks through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use async_trait::async_trait;
use events_schema::{Command, CommandEnvelope, CommandOutcome, Position, UserId};
use infra::config::Settings;
use infra::db::Database;
use infra::mail::Mailer;
use infra::EventStore;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::{AuthService, SessionId};
use crate::drain::Requests;
use crate::limits::{AuthRateLimiter, Limits};
use crate::presence::Presence;

/// Where commands go: the in-process command-service (all-in-one) or NATS (production).
#[async_trait]
pub trait CommandBus: Send + Sync + 'static {
    async fn dispatch(&self, command: CommandEnvelope) -> CommandOutcome;
}

#[async_trait]
impl CommandBus for command_service::CommandService {
    async fn dispatch(&self, command: CommandEnvelope) -> CommandOutcome {
        self.handle(command).await
    }
}

/// Ends a session's sockets: on this gateway all-in-one; on every gateway of the topology (this
/// one included) when there are several.
#[async_trait]
pub trait SessionEnds: Send + Sync + 'static {
    /// The session's sockets get `auth-failure {reason}` and are disconnected.
    async fn end(&self, session: &SessionId, reason: &str);
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub auth: Arc<AuthService>,
    pub mailer: Arc<dyn Mailer>,
    pub commands: Arc<dyn CommandBus>,
    pub reads: Database,
    pub store: Arc<dyn EventStore>,
    pub consistency: Arc<Consistency>,
    pub origins: Arc<OriginSockets>,
    pub limiter: Arc<AuthRateLimiter>,
    /// Per-user and per-address limits of the socket side.
    pub limits: Arc<Limits>,
    /// Where a session's end goes: this gateway's sockets, or every gateway's.
    pub session_ends: Arc<dyn SessionEnds>,
    /// This gateway's NATS connection in the production topology; `None` all-in-one.
    pub nats: Option<async_nats::Client>,
    /// Set once the Socket.IO layer is built (the layer itself needs this state first).
    pub io_cell: Arc<OnceLock<SocketIo>>,
    /// Socket requests taken and not yet answered, for a stop that answers them first.
    pub requests: Arc<Requests>,
    /// Who is online and who is typing.
    pub presence: Arc<Presence>,
    /// Where uploaded files are kept (`FILES_URL`).
    pub files: crate::files::FileStore,
}

impl AppState {
    /// The Socket.IO server, for broadcasts and disconnects.
    pub fn io(&self) -> Option<&SocketIo> {
        self.io_cell.get()
    }

    /// Ends a session's sockets wherever they are connected.
    pub async fn end_session(&self, session: &SessionId, reason: &str) {
        self.session_ends.end(session, reason).await
    }

    /// Sends a command for `actor` and records its position for the actor's read-your-writes.
    pub async fn dispatch(
        &self,
        correlation_id: Uuid,
        actor: Option<UserId>,
        command: Command,
    ) -> CommandOutcome {
        let name = command.name();
        let span = tracing::info_span!("dispatch", command = name, %correlation_id);
        let outcome = self
            .commands
            .dispatch(CommandEnvelope {
                correlation_id,
                actor: actor.clone(),
                command,
                trace_parent: infra::telemetry::traces::trace_parent_of_exported(&span),
            })
            .instrument(span)
            .await;
        match (&outcome, &actor) {
            (CommandOutcome::Accepted(accepted), Some(actor)) => {
                self.consistency.written(actor, accepted.position)
            }
            (CommandOutcome::Refused { code, message }, _) => {
                tracing::debug!(command = name, %correlation_id, code = code.as_str(), %message, "command refused");
            }
            _ => {}
        }
        outcome
    }
}

/// Read-your-writes: remembers, per user, the global position of their last acknowledged command,
/// and lets a query wait (bounded) until the read models have reached it.
pub struct Consistency {
    applied: watch::Receiver<Position>,
    /// The position up to which this node has made its deliveries.
    delivered: watch::Sender<Position>,
    pending: Mutex<HashMap<UserId, Position>>,
    max_wait: Duration,
}

impl Consistency {
    pub fn new(applied: watch::Receiver<Position>, max_wait: Duration) -> Self {
        // Events the read models had applied before this node started are none of its deliveries.
        let delivered = watch::Sender::new(*applied.borrow());
        Self {
            applied,
            delivered,
            pending: Mutex::new(HashMap::new()),
            max_wait,
        }
    }

    /// Records that this node has made the deliveries of every event up to `position`.
    pub fn delivered(&self, position: Position) {
        self.delivered.send_if_modified(|at| {
            let moved = position > *at;
            if moved {
                *at = position;
            }
            moved
        });
    }

    /// The position up to which this node has made its deliveries: a socket connected now gets
    /// every delivery of later events.
    pub fn delivered_up_to(&self) -> Position {
        *self.delivered.borrow()
    }

    /// Records that `user`'s request was acknowledged at `position`.
    pub fn written(&self, user: &UserId, position: Position) {
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(user.clone()).or_insert(0);
            *entry = (*entry).max(position);
        }
    }

    /// The position the read models have reached.
    pub fn applied(&self) -> Position {
        *self.applied.borrow()
    }

    /// Forgets the writes the read models have already reached (users who wrote and never read
    /// again would otherwise stay in the map forever).
    pub fn sweep(&self) {
        let applied = self.applied();
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|_, position| *position > applied);
        }
    }

    /// Waits until the read models reflect everything stored so far, by anyone (bounded like
    /// [`Consistency::caught_up_for`]). Chat queries use it, so a member removed by the admin is
    /// refused from their very next request, and everyone reads at least what was acknowledged.
    pub async fn caught_up_to_head(&self, store: &dyn EventStore) {
        let target = match store.head().await {
            Ok(head) => head,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the log head; answering from the read models as they are");
                return;
            }
        };
        let mut applied = self.applied.clone();
        if tokio::time::timeout(self.max_wait, applied.wait_for(|p| *p >= target))
            .await
            .is_err()
        {
            tracing::warn!(
                target,
                "read models did not reach the log head in time; answering from what they have"
            );
        }
    }

    /// Waits until the read models reflect every acknowledged write of `user`. Gives up after the
    /// bound (the answer may then be stale, which is logged) rather than hanging the request.
    pub async fn caught_up_for(&self, user: &UserId) {
        let target = match self.pending.lock() {
            Ok(pending) => pending.get(user).copied(),
            Err(_) => None,
        };
        let Some(target) = target else { return };
        let mut applied = self.applied.clone();
        let reached = tokio::time::timeout(self.max_wait, applied.wait_for(|p| *p >= target)).await;
        match reached {
            Ok(Ok(_)) => {
                if let Ok(mut pending) = self.pending.lock() {
                    if pending.get(user).is_some_and(|p| *p <= target) {
                        pending.remove(user);
                    }
                }
            }
            _ => {
                tracing::warn!(%user, target, "read models did not catch up in time; answering from what they have")
            }
        }
    }
}

/// Which socket sent the request behind a correlation id, so a delivery can skip the sender's own
/// socket ("the sender's other sockets"). Entries are short-lived; stale ones are swept.
#[derive(Default)]
pub struct OriginSockets {
    entries: Mutex<HashMap<Uuid, (Sid, Instant)>>,
}

impl OriginSockets {
    const TTL: Duration = Duration::from_secs(60);

    pub fn remember(&self, correlation: Uuid, socket_id: Sid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(correlation, (socket_id, Instant::now()));
        }
    }

    pub fn take(&self, correlation: &Uuid) -> Option<Sid> {
        self.entries
            .lock()
            .ok()?
            .remove(correlation)
            .map(|(sid, _)| sid)
    }

    pub fn sweep(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
        }
    }
}
