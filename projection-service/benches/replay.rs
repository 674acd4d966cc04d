//! Replay speed and memory: builds an event store of N events (users, chats and mostly messages,
//! as a chat server's log is), projects it live, then replays it and reports the rebuild rate, the
//! time of the check-and-swap, and the peak resident memory during the replay (reset before it,
//! so it is the replay's own).
//!
//!   cargo bench -p projection-service --bench replay -- [--events 1000000] [--backend sqlite|postgres]
//!
//! PostgreSQL: a uniquely named database on TEST_PG_URL's server, dropped afterwards.

use std::sync::Arc;
use std::time::Instant;

use events_schema::events::{
    GroupCreated, MessageFormat, MessageSent, UserRegistered, UserVerified,
};
use events_schema::{
    streams, ChatId, Content, DomainEvent, EventMetadata, MessageId, UserId, UserName,
};
use infra::db::Database;
use infra::event_store::open_event_store;
use infra::testing::{bench_arg, TempPostgres};
use infra::{EventStore, ExpectedVersion};
use projection_service::replay::{replay, ReplayOptions, ReplayOutcome};
use projection_service::Projector;
use uuid::Uuid;

fn new_event(event: impl Into<DomainEvent>) -> events_schema::NewEvent {
    let event: DomainEvent = event.into();
    event.into_new_event(EventMetadata {
        actor: None,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
    })
}

/// `events` events: 200 users, 100 groups of 20, the rest messages appended 500 at a time.
async fn fill(store: &Arc<dyn EventStore>, events: usize) {
    let users: Vec<UserId> = (0..200).map(|_| UserId::generate()).collect();
    for (i, user) in users.iter().enumerate() {
        let name = UserName::parse(&format!("User {i}")).expect("name");
        let batch = vec![
            new_event(UserRegistered {
                user_id: user.clone(),
                name,
            }),
            new_event(UserVerified {
                user_id: user.clone(),
            }),
        ];
        store
            .append(&streams::user(user), ExpectedVersion::Any, batch)
            .await
            .expect("append");
    }
    let groups: Vec<ChatId> = (0..100).map(|_| ChatId::generate()).collect();
    for (i, group) in groups.iter().enumerate() {
        let members: Vec<UserId> = (0..20)
            .map(|j| users[(i * 7 + j) % users.len()].clone())
            .collect();
        let created = new_event(GroupCreated {
            chat_id: group.clone(),
            name: format!("group {i}"),
            description: String::new(),
            admin: members[0].clone(),
            members,
        });
        store
            .append(&streams::chat(group), ExpectedVersion::Any, vec![created])
            .await
            .expect("append");
    }
    let mut written = 500;
    let mut round = 0;
    while written < events {
        let group = &groups[round % groups.len()];
        let batch: Vec<_> = (0..500.min(events - written))
            .map(|k| {
                new_event(MessageSent {
                    chat_id: group.clone(),
                    message_id: MessageId::generate(),
                    sender_id: users[(round * 7 + k % 20) % users.len()].clone(),
                    content: Content::parse(&format!(
                        "message {round}-{k}: some words of an ordinary length"
                    ))
                    .expect("content"),
                    format: MessageFormat::Text,
                    client_id: None,
                })
            })
            .collect();
        written += batch.len();
        store
            .append(&streams::chat(group), ExpectedVersion::Any, batch)
            .await
            .expect("append");
        round += 1;
    }
}

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
    infra::process::init_logging();
    let events: usize = bench_arg("events")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
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
