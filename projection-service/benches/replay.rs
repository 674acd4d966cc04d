//! Replay speed and memory: builds an event store of N events (users, chats and mostly messages,
//! as a chat server's log is), projects it live, then replays it and reports the rebuild rate, the
//! time of the check-and-swap, and the peak resident memory during the replay (reset before it,
//! so it is the replay's own).
//!
//!   cargo bench -p projection-service --bench replay -- [--events 1000000] [--backend sqlite|postgres]
//!
//! PostgreSQL: a uniquely named database on TEST_PG_URL's server, dropped afterwards.

use std::time::Instant;

use infra::db::Database;
use infra::event_store::open_event_store;
use infra::testing::{bench_arg, TempPostgres};
use projection_service::replay::{replay, ReplayOptions, ReplayOutcome};
use projection_service::Projector;

mod common;
use common::fill;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let _ = infra::telemetry::init_logging(infra::config::LogFormat::Text, "projection-service");
    // `cargo test --all-targets` runs this too, without `--bench`: a small run, as a smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let events: usize = bench_arg("events")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 5_000 });
    let backend = bench_arg("backend").unwrap_or_else(|| "sqlite".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = if backend == "postgres" {
        Some(TempPostgres::create("replay_bench").await)
    } else {
        None
    };
    let (store_url, live_url) = match &pg {
        Some(pg) => (pg.url(), pg.url()),
        None => (
            format!("sqlite://{}", dir.path().join("events.db").display()),
            format!("sqlite://{}", dir.path().join("chat.db").display()),
        ),
    };
    let store = open_event_store(&store_url).await.expect("store");
    let t = Instant::now();
    fill(&store, events).await;
    let head = store.head().await.expect("head");
    eprintln!(
        "{backend}: {head} events stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let live = Projector::new(Database::connect(&live_url).await.expect("db"))
        .await
        .expect("live");
    let t = Instant::now();
    loop {
        let from = live.checkpoint().await.expect("checkpoint");
        let batch = store.read_all(from, 2048).await.expect("read");
        if batch.is_empty() {
            break;
        }
        live.apply(&batch).await.expect("apply");
    }
    eprintln!(
        "{backend}: projected live in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The replay's own peak: reset the high-water mark first (Linux: clear_refs 5).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kib("VmRSS:");
    let t = Instant::now();
    let options = ReplayOptions {
        projection: "read_models".into(),
        force: false,
        stop_after: None,
    };
    let outcome = replay(store.clone(), &live_url, &options)
        .await
        .expect("replay");
    let total = t.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    match outcome {
        Some(ReplayOutcome::Swapped {
            events: replayed,
            differed,
            ..
        }) => {
            assert!(differed.is_empty());
            println!(
                "{backend}: replayed {replayed} events, checked and swapped in {total:.2} s = {:.0} events/s overall; \
                 resident memory {:.0} MiB before, peak {:.0} MiB during",
                replayed as f64 / total,
                rss_before as f64 / 1024.0,
                peak as f64 / 1024.0
            );
        }
        other => panic!("replay did not swap: {other:?}"),
    }
}
