//! The relay against the machine's NATS JetStream: every stored event reaches the JetStream stream
//! exactly once and in log order, across a relay killed mid-stream and several relays at once.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use events_schema::{NewEvent, RecordedEvent};
use infra::event_store::open_event_store;
use infra::feed::StreamGap;
use infra::relay::{self, last_published};
use infra::{EventStore, ExpectedVersion};
use tokio::sync::watch;

fn event(n: usize) -> NewEvent {
    infra::testing::test_event(format!("{{\"n\":{n}}}"))
}

async fn append(store: &Arc<dyn EventStore>, from: usize, count: usize) {
    for i in from..from + count {
        store
            .append(
                &format!("s-{}", i % 7),
                ExpectedVersion::Any,
                vec![event(i)],
            )
            .await
            .unwrap();
    }
}

struct Fixture {
    prefix: String,
    client: async_nats::Client,
    store: Arc<dyn EventStore>,
    _stream: infra::testing::DeleteEventsStream,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = open_event_store(&format!(
            "sqlite://{}",
            dir.path().join("events.db").display()
        ))
        .await
        .unwrap();
        let client = infra::testing::nats_client().await;
        let prefix = infra::testing::unique_prefix();
        Self {
            _stream: infra::testing::DeleteEventsStream::new(&client, &prefix),
            prefix,
            client,
            store,
            _dir: dir,
        }
    }

    fn start(
        &self,
    ) -> (
        watch::Sender<bool>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        self.start_keeping(None)
    }

    /// A relay onto a stream that keeps the newest `keep` events (`None`: all).
    fn start_keeping(
        &self,
        keep: Option<u64>,
    ) -> (
        watch::Sender<bool>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(relay::run(
            self.store.clone(),
            self.client.clone(),
            self.prefix.clone(),
            keep,
            stopped,
        ));
        (stop, task)
    }

    /// Every message on the JetStream stream, decoded, in stream order.
    async fn published(&self) -> Vec<RecordedEvent> {
        let js = jetstream::new(self.client.clone());
        let mut stream = relay::ensure_events_stream(&js, &self.prefix)
            .await
            .unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            let message = stream.get_raw_message(seq).await.unwrap();
            out.push(serde_json::from_slice(&message.payload).unwrap());
        }
        out
    }

    /// Waits until the stream's newest event is the store's newest; the stream's info then.
    async fn wait_relayed(&self) -> jetstream::stream::Info {
        let js = jetstream::new(self.client.clone());
        let mut stream = relay::ensure_events_stream(&js, &self.prefix)
            .await
            .unwrap();
        let head = self.store.head().await.unwrap();
        for _ in 0..200 {
            if last_published(&mut stream).await.unwrap() == head {
                return stream.info().await.unwrap().clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the relay did not reach position {head}");
    }

    async fn wait_for(&self, count: usize) -> Vec<RecordedEvent> {
        let js = jetstream::new(self.client.clone());
        let mut stream = relay::ensure_events_stream(&js, &self.prefix)
            .await
            .unwrap();
        for _ in 0..200 {
            if stream.info().await.unwrap().state.messages as usize >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.published().await
    }
}

async fn assert_exactly_the_log(f: &Fixture, published: &[RecordedEvent]) {
    let stored = f.store.read_all(0, 10_000).await.unwrap();
    assert_eq!(published.len(), stored.len(), "every stored event once");
    assert_eq!(published, &stored[..], "in log order, byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_jetstream_once_in_order() {
    let f = Fixture::new().await;
    append(&f.store, 0, 40).await;
    let (stop, task) = f.start();
    let published = f.wait_for(40).await;
    assert_exactly_the_log(&f, &published).await;
    // Live events follow.
    append(&f.store, 40, 20).await;
    let published = f.wait_for(60).await;
    assert_exactly_the_log(&f, &published).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let js = jetstream::new(f.client.clone());
    let mut stream = relay::ensure_events_stream(&js, &f.prefix).await.unwrap();
    assert_eq!(last_published(&mut stream).await.unwrap(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_stream_and_a_second_relay_leave_no_gap_and_no_duplicate() {
    let f = Fixture::new().await;
    append(&f.store, 0, 300).await;
    let (_stop, killed) = f.start();
    // Kill it while it is publishing.
    tokio::time::sleep(Duration::from_millis(30)).await;
    killed.abort();
    let _ = killed.await;
    append(&f.store, 300, 50).await;
    // Two relays at once, as with two command-service instances.
    let (stop_a, a) = f.start();
    let (stop_b, b) = f.start();
    let published = f.wait_for(350).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published_again = f.published().await;
    assert_eq!(
        published.len(),
        published_again.len(),
        "nothing arrives twice later"
    );
    assert_exactly_the_log(&f, &published_again).await;
    for (stop, task) in [(stop_a, a), (stop_b, b)] {
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }
}

/// What a gateway reads back after missing announcements: exactly the events after one position
/// up to another, as stored, from wherever they lie in the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_events_are_read_back_by_position() {
    let f = Fixture::new().await;
    append(&f.store, 0, 30).await;
    let (stop, task) = f.start();
    let published = f.wait_for(30).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let js = jetstream::new(f.client.clone());
    let wait = Duration::from_secs(10);
    let stored = f.store.read_all(0, 100).await.unwrap();
    assert_eq!(published, stored);
    let (after, upto) = (stored[9].position, stored[19].position);
    let back = infra::feed::events_between(&js, &f.prefix, after, upto, wait)
        .await
        .unwrap();
    assert_eq!(back, stored[10..20].to_vec(), "the 11th to the 20th event");
    let all = infra::feed::events_between(&js, &f.prefix, 0, stored[29].position, wait)
        .await
        .unwrap();
    assert_eq!(all, stored);
    let none = infra::feed::events_between(&js, &f.prefix, upto, upto, wait)
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// A projection whose checkpoint is older than the stream's first event (the stream was trimmed)
/// must not start after the gap: its feed refuses, naming what is missing, and a feed whose
/// checkpoint is the event just before what the stream holds goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_refuses_to_skip_events_the_stream_no_longer_holds() {
    let f = Fixture::new().await;
    append(&f.store, 0, 30).await;
    let (stop, task) = f.start();
    f.wait_for(30).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let js = jetstream::new(f.client.clone());
    let stream = relay::ensure_events_stream(&js, &f.prefix).await.unwrap();
    stream.purge().keep(10).await.unwrap();
    let stored = f.store.read_all(0, 100).await.unwrap();
    let durable = infra::subjects::durable_consumer(&f.prefix, "test");
    let first_batch = |after| {
        let (js, prefix, durable) = (js.clone(), f.prefix.clone(), durable.clone());
        async move {
            let mut feed = infra::feed::DurableFeed::open(&js, &prefix, &durable, after).await?;
            tokio::time::timeout(Duration::from_secs(10), feed.next_batch(100))
                .await
                .map_err(|_| anyhow::anyhow!("no batch"))?
        }
    };
    for after in [0, stored[9].position] {
        let refused = first_batch(after).await.err().expect("the gap was skipped");
        assert_eq!(
            refused.downcast_ref::<StreamGap>(),
            Some(&StreamGap {
                after,
                upto: stored[19].position
            }),
            "{refused:#}"
        );
    }
    // A batch holds what had arrived when it was taken: read until the 30th.
    let mut feed = infra::feed::DurableFeed::open(&js, &f.prefix, &durable, stored[19].position)
        .await
        .unwrap();
    let mut events = Vec::new();
    while events.len() < 10 {
        let batch = tokio::time::timeout(Duration::from_secs(10), feed.next_batch(100))
            .await
            .expect("the rest of the stream arrives")
            .unwrap();
        events.extend(batch.events);
    }
    assert_eq!(events, stored[20..].to_vec(), "the 21st to the 30th");
}

/// The relay makes the stream keep only the newest events, whoever created it and with whatever
/// limit before; far behind the log, it starts where the stream would keep from, with the first
/// event saying which it follows; and it goes on from the last event the stream holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_keeps_only_the_newest_events() {
    let f = Fixture::new().await;
    let js = jetstream::new(f.client.clone());
    // Created first by another service, which sets no limit.
    let stream = relay::ensure_events_stream(&js, &f.prefix).await.unwrap();
    let event_at = |sequence| {
        let stream = stream.clone();
        async move {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let previous = message.headers.get(relay::PREVIOUS_HEADER).unwrap();
            let previous: u64 = previous.as_str().parse().unwrap();
            let event: RecordedEvent = serde_json::from_slice(&message.payload).unwrap();
            (event, previous)
        }
    };
    append(&f.store, 0, 30).await;
    let (stop, task) = f.start_keeping(Some(10));
    let info = f.wait_relayed().await;
    assert_eq!(info.config.max_messages, 10);
    let stored = f.store.read_all(0, 100).await.unwrap();
    assert_eq!(
        (info.state.first_sequence, info.state.messages),
        (1, 10),
        "only the newest 10 were published"
    );
    let (first, previous) = event_at(1).await;
    assert_eq!(first, stored[20], "the 21st event is the oldest kept");
    assert_eq!(previous, stored[19].position, "and it follows the 20th");

    // Live events push the oldest out.
    append(&f.store, 30, 5).await;
    let info = f.wait_relayed().await;
    assert_eq!((info.state.first_sequence, info.state.messages), (6, 10));
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // A relay started again goes on from the newest event the stream holds; one told to keep
    // everything lifts the limit.
    append(&f.store, 35, 5).await;
    let (stop, task) = f.start_keeping(None);
    let info = f.wait_relayed().await;
    assert_eq!(info.config.max_messages, -1);
    assert_eq!(
        (info.state.first_sequence, info.state.messages),
        (6, 15),
        "the 5 new events after the 10 kept"
    );
    let stored = f.store.read_all(0, 100).await.unwrap();
    let (first, previous) = event_at(6).await;
    assert_eq!((first, previous), (stored[25].clone(), stored[24].position));
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

/// A gateway reading back missed events the stream no longer holds is refused, not handed the
/// events after the hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_back_events_the_stream_dropped_is_refused() {
    let f = Fixture::new().await;
    append(&f.store, 0, 30).await;
    let (stop, task) = f.start_keeping(Some(10));
    f.wait_relayed().await;
    let js = jetstream::new(f.client.clone());
    let head = f.store.head().await.unwrap();
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let stored = f.store.read_all(0, 100).await.unwrap();
    let wait = Duration::from_secs(10);
    let refused = infra::feed::events_between(&js, &f.prefix, stored[4].position, head, wait)
        .await
        .expect_err("events with a hole were returned");
    assert_eq!(
        refused.downcast_ref::<StreamGap>(),
        Some(&StreamGap {
            after: stored[4].position,
            upto: stored[19].position
        }),
        "{refused:#}"
    );
    let kept = infra::feed::events_between(&js, &f.prefix, stored[19].position, head, wait)
        .await
        .unwrap();
    assert_eq!(kept, stored[20..].to_vec());
}

/// The first publish after a relay's jump goes only onto the stream as the relay saw it, so two
/// relays that jumped from different places cannot interleave; the same event published by a
/// relay that jumped to the same place is a duplicate and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jump_publishes_only_onto_the_stream_as_it_was_seen() {
    let f = Fixture::new().await;
    append(&f.store, 0, 2).await;
    let stored = f.store.read_all(0, 10).await.unwrap();
    let js = jetstream::new(f.client.clone());
    relay::ensure_events_stream(&js, &f.prefix).await.unwrap();
    let publish = |event: &RecordedEvent| {
        let body = serde_json::to_vec(event).unwrap();
        let publish = jetstream::context::Publish::build()
            .payload(body.into())
            .message_id(event.event_id.to_string());
        (infra::subjects::event(&f.prefix, &event.stream), publish)
    };
    let (subject, first) = publish(&stored[0]);
    relay::publish_after_jump(&js, subject, first, 0)
        .await
        .expect("onto the empty stream it saw");
    let (subject, second) = publish(&stored[1]);
    relay::publish_after_jump(&js, subject, second, 0)
        .await
        .expect_err("the stream moved since it was seen");
    let (subject, again) = publish(&stored[0]);
    relay::publish_after_jump(&js, subject, again, 0)
        .await
        .expect("a duplicate passes");
    let published = f.wait_for(1).await;
    assert_eq!(published, stored[..1].to_vec(), "only the first, once");
}
