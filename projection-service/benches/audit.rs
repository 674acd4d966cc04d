//! Design target: an audit page of 100 events from a chat with 1,000,000 events in under 10 ms.
//! Builds one chat stream of N events (plus another stream around it), then times 1,000 pages each
//! from the start, the middle and the end of its history, filtered by type, and by actor, and
//! prints p50/p99/max.
//!
//!   cargo bench -p projection-service --bench audit -- [--events 1000000] [--backend sqlite|postgres]

use std::sync::Arc;
use std::time::Instant;

use events_schema::{EventMetadata, NewEvent};
use infra::event_store::open_event_store;
use infra::testing::{bench_arg, print_percentiles, TempPostgres};
use infra::{AuditQuery, AuditSubject, EventStore, ExpectedVersion};
use uuid::Uuid;

fn event(kind: &str, actor: &str, n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: kind.into(),
        schema_version: 1,
        occurred_at: events_schema::envelope::now_millis(),
        metadata: EventMetadata {
            actor: Some(actor.into()),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            trace_parent: None,
        },
        payload: format!("{{\"content\":\"message {n} of an ordinary length, more or less\"}}"),
    }
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs this too, without `--bench`: a small run, as a smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let events: usize = bench_arg("events")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 5_000 });
    let backend = bench_arg("backend").unwrap_or_else(|| "sqlite".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = if backend == "postgres" {
        Some(TempPostgres::create("audit_bench").await)
    } else {
        None
    };
    let url = match &pg {
        Some(pg) => pg.url(),
        None => format!("sqlite://{}", dir.path().join("events.db").display()),
    };
    let store: Arc<dyn EventStore> = open_event_store(&url).await.expect("store");
    let t = Instant::now();
    let mut written = 0;
    while written < events {
        // The audited chat, with an unrelated chat's events interleaved every ten batches.
        let n = 1000.min(events - written);
        let batch: Vec<_> = (0..n)
            .map(|k| {
                let kind = if k % 10 == 0 {
                    "MessageRead"
                } else {
                    "MessageSent"
                };
                event(kind, if k % 2 == 0 { "ann" } else { "bob" }, written + k)
            })
            .collect();
        store
            .append("chat-audited", ExpectedVersion::Any, batch)
            .await
            .expect("append");
        written += n;
        if written % 10_000 == 0 {
            let other: Vec<_> = (0..100).map(|k| event("MessageSent", "cat", k)).collect();
            store
                .append("chat-other", ExpectedVersion::Any, other)
                .await
                .expect("append");
        }
    }
    let head = store.head().await.expect("head");
    if let Some(pg) = &pg {
        // What autovacuum does within a minute of a bulk load: without statistics, the planner
        // guesses, and a guess can cost a hundred times the page.
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url())
            .await
            .expect("connect");
        sqlx::Executor::execute(&mut conn, "ANALYZE events")
            .await
            .expect("analyze");
    }
    eprintln!(
        "{backend}: {events} events in one chat ({head} in all) stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let query = |after, event_type: Option<&str>| AuditQuery {
        subject: AuditSubject::Stream("chat-audited".into()),
        after,
        limit: 100,
        since: None,
        until: None,
        event_type: event_type.map(str::to_owned),
    };
    let cases = [
        ("first page", query(0, None)),
        ("middle page", query(head / 2, None)),
        ("last full page", query(head.saturating_sub(250), None)),
        (
            "middle page, type=MessageRead",
            query(head / 2, Some("MessageRead")),
        ),
        (
            "a user's middle page",
            AuditQuery {
                subject: AuditSubject::Actor("bob".into()),
                ..query(head / 2, None)
            },
        ),
    ];
    for (name, q) in cases {
        let mut samples = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let t = Instant::now();
            let page = store.audit(&q).await.expect("audit");
            samples.push(t.elapsed());
            assert_eq!(page.len(), 100, "{name}");
        }
        print_percentiles(&format!("{backend} {name}"), &mut samples);
    }
}
