//! The gateway in the production topology (`NATS_URL` set): commands go to the command-service
//! queue group; the events to deliver come from the projection-service's announcements of what
//! the read models applied (infra::feed::Applied), with anything missed read back from JetStream;
//! and what one gateway must tell the others (a session ended) travels on core NATS. No gateway
//! knows where a user is connected: every gateway follows every event and emits to the sockets it
//! holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events_schema::{Position, RecordedEvent};
use futures::StreamExt;
use infra::db::Database;
use infra::feed::{applied_subject, events_between, Applied};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::SessionId;
use crate::state::AppState;

/// The projection whose announcements the gateway delivers from.
const READ_MODELS: &str = "read_models";
/// How often the read models' checkpoint is also read from the database, in case an announcement
/// was missed (NATS reconnecting).
const PROGRESS_POLL: Duration = Duration::from_secs(1);
/// How long the checkpoint may stay ahead of what this gateway delivered before the missing events
/// are read back from JetStream (their announcement may still be on its way).
const GAP_GRACE: Duration = Duration::from_secs(2);
/// How long reading missed events back from JetStream may take.
const GAP_READ: Duration = Duration::from_secs(10);

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

    /// Starts following what the read models applied (to deliver it and to know their progress)
    /// and ended sessions.
    pub async fn follow(
        &self,
        state: AppState,
        progress: watch::Sender<Position>,
        applied: mpsc::Sender<Vec<Arc<RecordedEvent>>>,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let announcements = self
            .client
            .subscribe(applied_subject(&self.prefix, READ_MODELS))
            .await
            .map_err(|e| anyhow::anyhow!("NATS subscription: {e}"))?;
        let sessions = self
            .client
            .subscribe(self.sessions_subject())
            .await
            .map_err(|e| anyhow::anyhow!("NATS subscription: {e}"))?;
        let give_up: GiveUp = {
            let state = state.clone();
            Arc::new(move || {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Some(io) = state.io() {
                        if let Err(e) = io.disconnect().await {
                            tracing::debug!(error = %e, "disconnecting every socket");
                        }
                    }
                });
            })
        };
        let follower = Follower {
            js: async_nats::jetstream::new(self.client.clone()),
            prefix: self.prefix.clone(),
            reads: state.reads.clone(),
            give_up,
            progress,
            applied,
            deliveries: Deliveries::default(),
        };
        Ok(vec![
            tokio::spawn(follower.run(announcements)),
            tokio::spawn(end_sessions(sessions, state)),
        ])
    }
}

/// Where this gateway's deliveries stand: a pure bookkeeping of positions, so that every event the
/// read models applied is handed to delivery once, in order, whichever way it arrived.
#[derive(Default)]
struct Deliveries {
    /// Everything up to here was handed to delivery (`None`: nothing yet, the gateway just started).
    delivered: Option<Position>,
    /// Since when the read models' checkpoint has been ahead of `delivered` with no announcement.
    behind_since: Option<Instant>,
}

/// What to do with an announcement.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Already delivered (a repeat, or the projection restarting).
    Skip,
    /// First read back the events after `.0` up to `.1` (missed announcements), then deliver the
    /// announced events after `.2`.
    Deliver(Option<(Position, Position)>, Position),
}

impl Deliveries {
    fn on_applied(&mut self, after: Position, position: Position) -> Plan {
        let plan = match self.delivered {
            // From now: the first announcement heard.
            None => Plan::Deliver(None, 0),
            Some(done) if position <= done => return Plan::Skip,
            Some(done) if after > done => Plan::Deliver(Some((done, after)), after),
            Some(done) => Plan::Deliver(None, done),
        };
        self.delivered = Some(position);
        self.behind_since = None;
        plan
    }

    /// The checkpoint read from the database: the events after `.0` up to `.1` to read back when
    /// it has stayed ahead of what was delivered for longer than an announcement takes.
    fn on_checkpoint(
        &mut self,
        checkpoint: Position,
        now: Instant,
    ) -> Option<(Position, Position)> {
        let Some(done) = self.delivered else {
            // Nothing heard yet: deliver from here on.
            self.delivered = Some(checkpoint);
            return None;
        };
        if checkpoint <= done {
            self.behind_since = None;
            return None;
        }
        let since = *self.behind_since.get_or_insert(now);
        if now.duration_since(since) < GAP_GRACE {
            return None;
        }
        self.delivered = Some(checkpoint);
        self.behind_since = None;
        Some((done, checkpoint))
    }
}

/// What a gateway does when events it missed cannot be read back: disconnect its sockets (their
/// clients reconnect and fetch) rather than deliver with a hole.
type GiveUp = Arc<dyn Fn() + Send + Sync>;

/// Delivers what the read models applied, and keeps `progress` at their highest known checkpoint.
struct Follower {
    js: async_nats::jetstream::Context,
    prefix: String,
    reads: Database,
    give_up: GiveUp,
    progress: watch::Sender<Position>,
    applied: mpsc::Sender<Vec<Arc<RecordedEvent>>>,
    deliveries: Deliveries,
}

impl Follower {
    async fn run(mut self, mut announcements: async_nats::Subscriber) {
        let mut poll = tokio::time::interval(PROGRESS_POLL);
        loop {
            // `false` once delivery has stopped (the gateway is shutting down).
            let going = tokio::select! {
                message = announcements.next() => match message {
                    Some(message) => match serde_json::from_slice::<Applied>(&message.payload) {
                        Ok(batch) => self.announced(batch).await,
                        Err(e) => {
                            tracing::debug!(error = %e, "unreadable announcement ignored");
                            true
                        }
                    },
                    None => return,
                },
                _ = poll.tick() => match projection_service::queries::checkpoint(&self.reads).await {
                    Ok(checkpoint) => {
                        self.raise(checkpoint);
                        match self.deliveries.on_checkpoint(checkpoint, Instant::now()) {
                            Some((after, upto)) => self.read_back(after, upto).await,
                            None => true,
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read the read models' checkpoint");
                        true
                    }
                },
            };
            if !going {
                return;
            }
        }
    }

    /// `false` when delivery has stopped (the gateway is shutting down).
    async fn announced(&mut self, batch: Applied) -> bool {
        self.raise(batch.position);
        let Plan::Deliver(missed, after) = self.deliveries.on_applied(batch.after, batch.position)
        else {
            return true;
        };
        if let Some((from, upto)) = missed {
            if !self.read_back(from, upto).await {
                return false;
            }
        }
        let events: Vec<_> = batch
            .events
            .into_iter()
            .filter(|e| e.position > after)
            .map(Arc::new)
            .collect();
        events.is_empty() || self.applied.send(events).await.is_ok()
    }

    /// Delivers the events after `after` up to `upto`, read back from JetStream. Should they not
    /// be there, this gateway's sockets are disconnected rather than left with a hole in their
    /// conversations: their clients reconnect and fetch.
    async fn read_back(&mut self, after: Position, upto: Position) -> bool {
        tracing::info!(after, upto, "reading missed events back from JetStream");
        match events_between(&self.js, &self.prefix, after, upto, GAP_READ).await {
            Ok(events) => {
                events.is_empty()
                    || self
                        .applied
                        .send(events.into_iter().map(Arc::new).collect())
                        .await
                        .is_ok()
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), after, upto, "missed events cannot be read back; disconnecting this gateway's sockets");
                (self.give_up)();
                true
            }
        }
    }

    fn raise(&self, position: Position) {
        self.progress.send_if_modified(|p| {
            let higher = position > *p;
            if higher {
                *p = position;
            }
            higher
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use infra::ExpectedVersion;

    /// The machine's NATS JetStream, a relay from a store of our own, and a follower whose
    /// announcements the test writes: what the follower hands to delivery is every event once,
    /// in order, whether it was announced, missed between two announcements, or missed at the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn missed_announcements_are_read_back_from_jetstream_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = infra::event_store::open_event_store(&format!(
            "sqlite://{}",
            dir.path().join("events.db").display()
        ))
        .await
        .unwrap();
        for i in 0..12 {
            store
                .append(
                    &format!("s-{}", i % 3),
                    ExpectedVersion::Any,
                    vec![infra::testing::test_event(format!("{{\"n\":{i}}}"))],
                )
                .await
                .unwrap();
        }
        let events = store.read_all(0, 100).await.unwrap();
        let client = infra::testing::nats_client().await;
        let prefix = infra::testing::unique_prefix();
        let js = async_nats::jetstream::new(client.clone());
        let _cleanup = infra::testing::DeleteEventsStream::new(&client, &prefix);
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(infra::relay::run(
            store.clone(),
            client.clone(),
            prefix.clone(),
            None,
            stopped,
        ));
        let reads = Database::connect(&format!(
            "sqlite://{}",
            dir.path().join("reads.db").display()
        ))
        .await
        .unwrap();
        let _tables = projection_service::Projector::new(reads.clone())
            .await
            .unwrap();
        let (progress, _) = watch::channel(0);
        let (applied, mut delivered) = mpsc::channel(16);
        let gave_up = Arc::new(AtomicUsize::new(0));
        let follower = Follower {
            js: js.clone(),
            prefix: prefix.clone(),
            reads: reads.clone(),
            give_up: {
                let gave_up = gave_up.clone();
                Arc::new(move || {
                    gave_up.fetch_add(1, Ordering::SeqCst);
                })
            },
            progress,
            applied,
            deliveries: Deliveries::default(),
        };
        let subject = format!("{prefix}.applied.test");
        let announcements = client.subscribe(subject.clone()).await.unwrap();
        let following = tokio::spawn(follower.run(announcements));
        let announce = |from: usize, to: usize| {
            let raw: Vec<_> = events[from..to]
                .iter()
                .map(|e| serde_json::to_vec(e).unwrap().into())
                .collect();
            let positions: Vec<Position> = events[from..to].iter().map(|e| e.position).collect();
            let after = if from == 0 {
                0
            } else {
                events[from - 1].position
            };
            infra::feed::applied_messages(after, events[to - 1].position, &raw, &positions, 1 << 20)
        };
        // The relay has put every event on the stream before the follower needs them back.
        for _ in 0..200 {
            let mut stream = infra::relay::ensure_events_stream(&js, &prefix)
                .await
                .unwrap();
            if infra::relay::last_published(&mut stream).await.unwrap() == events[11].position {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Events 0-2 announced, 3-5 missed, 6-8 announced; 9-11 only in the checkpoint.
        for message in announce(0, 3).into_iter().chain(announce(6, 9)) {
            client.publish(subject.clone(), message).await.unwrap();
        }
        client.flush().await.unwrap();
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position) VALUES ('read_models', $1)",
        )
        .bind(events[11].position as i64)
        .execute(&reads.pool)
        .await
        .unwrap();
        let mut got = Vec::new();
        while got.len() < 12 {
            let batch = tokio::time::timeout(Duration::from_secs(15), delivered.recv())
                .await
                .expect("the follower delivers within the grace and a poll")
                .expect("the follower runs");
            got.extend(batch.iter().map(|e| (**e).clone()));
        }
        assert_eq!(got, events, "every event once, in log order");
        assert_eq!(gave_up.load(Ordering::SeqCst), 0);
        following.abort();
        stop.send(true).unwrap();
        relay.await.unwrap().unwrap();
    }

    #[test]
    fn the_first_announcement_is_delivered_whole_then_each_continues_the_last() {
        let mut d = Deliveries::default();
        assert_eq!(d.on_applied(10, 15), Plan::Deliver(None, 0));
        assert_eq!(d.on_applied(15, 20), Plan::Deliver(None, 15));
        assert_eq!(d.delivered, Some(20));
    }

    #[test]
    fn a_repeat_or_a_restart_announcement_is_skipped() {
        let mut d = Deliveries::default();
        d.on_applied(10, 20);
        assert_eq!(d.on_applied(10, 20), Plan::Skip);
        // The projection (re)starting announces its checkpoint with no events.
        assert_eq!(d.on_applied(20, 20), Plan::Skip);
        assert_eq!(d.on_applied(15, 18), Plan::Skip);
    }

    #[test]
    fn a_missed_announcement_is_read_back_before_the_next_is_delivered() {
        let mut d = Deliveries::default();
        d.on_applied(10, 20);
        assert_eq!(d.on_applied(30, 40), Plan::Deliver(Some((20, 30)), 30));
        assert_eq!(d.delivered, Some(40));
    }

    #[test]
    fn an_overlapping_announcement_delivers_only_what_is_new() {
        let mut d = Deliveries::default();
        d.on_applied(10, 20);
        assert_eq!(d.on_applied(15, 25), Plan::Deliver(None, 20));
    }

    #[test]
    fn a_checkpoint_ahead_for_longer_than_the_grace_is_read_back_once() {
        let mut d = Deliveries::default();
        let t0 = Instant::now();
        // Nothing heard yet: the checkpoint is where delivery starts.
        assert_eq!(d.on_checkpoint(5, t0), None);
        assert_eq!(d.delivered, Some(5));
        assert_eq!(
            d.on_checkpoint(9, t0),
            None,
            "its announcement may be on its way"
        );
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE / 2), None);
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE), Some((5, 9)));
        assert_eq!(d.delivered, Some(9));
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE * 2), None);
    }

    #[test]
    fn an_announcement_arriving_within_the_grace_cancels_the_read_back() {
        let mut d = Deliveries::default();
        let t0 = Instant::now();
        d.on_applied(0, 5);
        assert_eq!(d.on_checkpoint(9, t0), None);
        assert_eq!(d.on_applied(5, 9), Plan::Deliver(None, 5));
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE * 3), None);
    }
}
