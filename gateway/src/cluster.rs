//! The gateway in the production topology (`NATS_URL` set): commands go to the command-service
//! queue group, events to deliver come from JetStream, and what one gateway must tell the others
//! (a session ended) travels on core NATS. No gateway knows where a user is connected: every
//! gateway follows every event and emits to the sockets it holds.

use std::sync::Arc;
use std::time::Duration;

use events_schema::{Position, RecordedEvent};
use futures::StreamExt;
use infra::db::Database;
use infra::feed::{live_events, progress_subject};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::SessionId;
use crate::state::AppState;

/// The projection whose progress the gateway waits on.
const READ_MODELS: &str = "read_models";
/// How often the read models' checkpoint is also read from the database, in case an announcement
/// was missed (NATS reconnecting).
const PROGRESS_POLL: Duration = Duration::from_secs(1);
/// How long a delivery waits for the read models to reflect its event before going ahead with what
/// they have (the projection-service may be down; sockets should still hear of new messages).
const DELIVERY_WAIT: Duration = Duration::from_secs(5);
/// Largest batch of events handed to delivery at once.
const DELIVERY_BATCH: usize = 512;

/// This gateway's NATS connection and the deployment's subject prefix.
#[derive(Clone)]
pub struct Cluster {
    pub client: async_nats::Client,
    pub prefix: String,
}

#[derive(Serialize, Deserialize)]
struct SessionEnded {
    session: String,
    reason: String,
}

impl Cluster {
    fn sessions_subject(&self) -> String {
        format!("{}.sessions.ended", self.prefix)
    }

    /// Tells every gateway (this one included) to end a session's sockets.
    pub async fn end_session(&self, session: &SessionId, reason: &str) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&SessionEnded {
            session: session.as_str().to_owned(),
            reason: reason.to_owned(),
        })?;
        self.client
            .publish(self.sessions_subject(), body.into())
            .await?;
        Ok(())
    }

    /// Whether NATS is connected now (for `/ready`).
    pub fn connected(&self) -> bool {
        matches!(
            self.client.connection_state(),
            async_nats::connection::State::Connected
        )
    }

    /// Starts following the read models' progress, the events to deliver, and ended sessions.
    pub async fn follow(
        &self,
        state: AppState,
        progress: watch::Sender<Position>,
        applied: mpsc::Sender<Vec<Arc<RecordedEvent>>>,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let announcements = self
            .client
            .subscribe(progress_subject(&self.prefix, READ_MODELS))
            .await
            .map_err(|e| anyhow::anyhow!("NATS subscription: {e}"))?;
        let sessions = self
            .client
            .subscribe(self.sessions_subject())
            .await
            .map_err(|e| anyhow::anyhow!("NATS subscription: {e}"))?;
        let events = live_events(
            async_nats::jetstream::new(self.client.clone()),
            self.prefix.clone(),
        );
        let waiting = progress.subscribe();
        Ok(vec![
            tokio::spawn(follow_progress(
                announcements,
                state.reads.clone(),
                progress,
            )),
            tokio::spawn(feed_delivery(events, waiting, applied)),
            tokio::spawn(end_sessions(sessions, state)),
        ])
    }
}

/// Keeps `progress` at the highest position the read models are known to have committed.
async fn follow_progress(
    mut announcements: async_nats::Subscriber,
    db: Database,
    progress: watch::Sender<Position>,
) {
    let raise = |position: Position| {
        progress.send_if_modified(|p| {
            let higher = position > *p;
            if higher {
                *p = position;
            }
            higher
        });
    };
    let mut poll = tokio::time::interval(PROGRESS_POLL);
    loop {
        tokio::select! {
            message = announcements.next() => match message {
                Some(message) => match std::str::from_utf8(&message.payload).ok().and_then(|s| s.parse().ok()) {
                    Some(position) => raise(position),
                    None => tracing::debug!("unreadable progress announcement ignored"),
                },
                None => return,
            },
            _ = poll.tick() => match projection_service::queries::checkpoint(&db).await {
                Ok(position) => raise(position),
                Err(e) => tracing::debug!(error = %e, "cannot read the read models' checkpoint"),
            },
        }
    }
}

/// Hands events to delivery in log order, each batch once the read models reflect it (bounded).
async fn feed_delivery(
    events: futures::stream::BoxStream<'static, RecordedEvent>,
    mut progress: watch::Receiver<Position>,
    applied: mpsc::Sender<Vec<Arc<RecordedEvent>>>,
) {
    let mut batches = events.ready_chunks(DELIVERY_BATCH);
    while let Some(batch) = batches.next().await {
        let Some(last) = batch.last().map(|e| e.position) else {
            continue;
        };
        let reached = tokio::time::timeout(DELIVERY_WAIT, progress.wait_for(|p| *p >= last))
            .await
            .is_ok_and(|r| r.is_ok());
        if !reached {
            tracing::warn!(
                position = last,
                "read models did not reach the events to deliver in time; delivering with what they have"
            );
        }
        if applied
            .send(batch.into_iter().map(Arc::new).collect())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Ends, on this gateway, the sessions any gateway ended.
async fn end_sessions(mut sessions: async_nats::Subscriber, state: AppState) {
    while let Some(message) = sessions.next().await {
        match serde_json::from_slice::<SessionEnded>(&message.payload) {
            Ok(ended) => {
                state
                    .end_local_session(&SessionId::from_stored(ended.session), &ended.reason)
                    .await
            }
            Err(e) => tracing::debug!(error = %e, "unreadable session announcement ignored"),
        }
    }
}
