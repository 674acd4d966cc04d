//! Following what the read models applied: each announcement is handed to delivery, and what was
//! missed (an announcement lost while NATS reconnected) is read back from JetStream first, so every
//! event is delivered once, in log order. The read models' checkpoint is also polled, for a gap
//! at the end that no later announcement would reveal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events_schema::{Position, RecordedEvent};
use futures::StreamExt;
use infra::db::Database;
use infra::feed::{events_between, Applied};
use tokio::sync::{mpsc, watch};

use super::deliveries::{Deliveries, Plan};

/// How often the read models' checkpoint is also read from the database, in case an announcement
/// was missed (NATS reconnecting).
const PROGRESS_POLL: Duration = Duration::from_secs(1);
/// How long reading missed events back from JetStream may take.
const GAP_READ: Duration = Duration::from_secs(10);

/// What a gateway does when events it missed cannot be read back: disconnect its sockets (their
/// clients reconnect and fetch) rather than deliver with a hole.
pub type GiveUp = Arc<dyn Fn() + Send + Sync>;

/// Delivers what the read models applied, and keeps `progress` at their highest known checkpoint.
pub(super) struct Follower {
    js: async_nats::jetstream::Context,
    prefix: String,
    reads: Database,
    give_up: GiveUp,
    progress: watch::Sender<Position>,
    applied: mpsc::Sender<Vec<Arc<RecordedEvent>>>,
    deliveries: Deliveries,
}

impl Follower {
    pub(super) fn new(
        client: &async_nats::Client,
        prefix: &str,
        reads: Database,
        give_up: GiveUp,
        progress: watch::Sender<Position>,
        applied: mpsc::Sender<Vec<Arc<RecordedEvent>>>,
    ) -> Self {
        Self {
            js: async_nats::jetstream::new(client.clone()),
            prefix: prefix.to_owned(),
            reads,
            give_up,
            progress,
            applied,
            deliveries: Deliveries::default(),
        }
    }

    pub(super) async fn run(mut self, mut announcements: async_nats::Subscriber) {
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
        let subject = infra::subjects::applied(&prefix, "test");
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
}
