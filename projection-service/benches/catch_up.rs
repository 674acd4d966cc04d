//! How fast the topology's projection catches up: builds a PostgreSQL event store of N events
//! (users, groups and mostly messages, as a chat server's log is), relays it onto a JetStream
//! stream that keeps the newest K, then starts the projection-service's NATS loop on empty read
//! models and times it until its checkpoint reaches the log's head. With K below N it reads the
//! first N−K events from the event store (what a projection stopped for longer than the stream
//! reaches back does); with `--keep 0` the stream holds every event and it reads them all from
//! JetStream, for comparison.
//!
//!   cargo bench -p projection-service --bench catch_up -- [--events 200000] [--keep 10000]
//!
//! (`cargo test` runs it with 5,000 events and a stream of 500.)
//!
//! Needs the machine's PostgreSQL (TEST_PG_URL) and NATS (TEST_NATS_URL); its database and stream
//! are unique to the run and removed afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use infra::db::Database;
use infra::event_store::open_event_store;
use infra::testing::{bench_arg, DeleteEventsStream, TempPostgres};
use projection_service::nats::LazyStore;
use projection_service::Projector;
use tokio::sync::watch;

mod common;
use common::fill;

/// A run that has not relayed or caught up by then is broken, not slow.
const DEADLINE: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() {
    let _ = infra::telemetry::init_logging(infra::config::LogFormat::Text, "projection-service");
    // `cargo test --all-targets` runs this too, without `--bench`: a small run, as a smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let events: usize = bench_arg("events")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 200_000 } else { 5_000 });
    let keep: u64 = bench_arg("keep")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 10_000 } else { 500 });
    let keep = (keep > 0).then_some(keep);
    let pg = TempPostgres::create("catch_up_bench").await;
    let store = open_event_store(&pg.url()).await.expect("store");
    let t = Instant::now();
    fill(&store, events).await;
    let head = store.head().await.expect("head");
    eprintln!("{head} events stored in {:.1} s", t.elapsed().as_secs_f64());

    let client = infra::testing::nats_client().await;
    let prefix = infra::testing::unique_prefix();
    let _stream = DeleteEventsStream::new(&client, &prefix);
    let (stop_relay, relay_stopped) = watch::channel(false);
    let relay = tokio::spawn(infra::relay::run(
        store.clone(),
        client.clone(),
        prefix.clone(),
        keep,
        relay_stopped,
    ));
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = infra::relay::ensure_events_stream(&js, &prefix)
        .await
        .expect("stream");
    let t = Instant::now();
    while infra::relay::last_published(&mut stream)
        .await
        .expect("stream")
        < head
    {
        assert!(t.elapsed() < DEADLINE, "not relayed within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let on_stream = infra::relay::stream_state(&mut stream)
        .await
        .expect("stream")
        .messages;
    eprintln!(
        "relayed in {:.1} s; the stream holds {on_stream}",
        t.elapsed().as_secs_f64()
    );
    let _ = stop_relay.send(true);
    let _ = relay.await;

    let projector = Arc::new(
        Projector::new(Database::connect(&pg.url()).await.expect("db"))
            .await
            .expect("read models"),
    );
    let (stop, stopped) = watch::channel(false);
    let t = Instant::now();
    let projection = tokio::spawn(projection_service::nats::run(
        client.clone(),
        prefix.clone(),
        projector.clone(),
        Arc::new(LazyStore::new(pg.url())),
        stopped,
    ));
    while projector.checkpoint().await.expect("checkpoint") < head {
        assert!(t.elapsed() < DEADLINE, "not caught up within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = projection.await;
    let from_store = head.saturating_sub(on_stream);
    println!(
        "caught up {head} events in {seconds:.2} s = {:.0} events/s ({from_store} from the event \
         store, {on_stream} from JetStream)",
        head as f64 / seconds
    );
}
