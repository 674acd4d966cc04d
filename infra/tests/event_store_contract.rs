//! The event-store contract: every backend passes the same tests. A backend joins with one
//! `contract_tests!` line (an EventStoreDB backend through the `eventstore` crate would add
//! `contract_tests!(esdb, Esdb::new)`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use events_schema::events::MessageFormat;
use events_schema::{DomainEvent, EventMetadata, NewEvent, RecordedEvent};
use futures::StreamExt;
use infra::event_store::open_event_store;
use infra::{AuditQuery, AuditSubject, EventStore, ExpectedVersion, StoreError};
use uuid::Uuid;

/// A place a store lives, which can be opened again to simulate a restart.
#[async_trait::async_trait]
trait Backend: Send + Sync {
    async fn open(&self) -> Arc<dyn EventStore>;
}

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    async fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn EventStore> {
        let url = format!("sqlite://{}", self.dir.path().join("events.db").display());
        open_event_store(&url).await.expect("sqlite store opens")
    }
}

/// A uniquely named database on the machine's PostgreSQL, dropped when the test ends.
struct Postgres {
    db: infra::testing::TempPostgres,
}

impl Postgres {
    async fn new() -> Self {
        Self {
            db: infra::testing::TempPostgres::create("es_contract").await,
        }
    }

    fn url(&self) -> String {
        self.db.url()
    }
}

#[async_trait::async_trait]
impl Backend for Postgres {
    async fn open(&self) -> Arc<dyn EventStore> {
        open_event_store(&self.url())
            .await
            .expect("postgres store opens")
    }
}

fn event(payload: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "TestHappened".into(),
        schema_version: 1,
        occurred_at: events_schema::envelope::now_millis(),
        metadata: EventMetadata {
            actor: Some("u1".into()),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            trace_parent: None,
        },
        payload: payload.into(),
    }
}

async fn concurrent_appends_with_the_same_expected_version_one_wins(b: &dyn Backend) {
    let store = b.open().await;
    store
        .append("s", ExpectedVersion::NoStream, vec![event("{}")])
        .await
        .unwrap();
    let attempts = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
                    "s",
                    ExpectedVersion::Exact(0),
                    vec![event(&format!("{{\"i\":{i}}}"))],
                )
                .await
        })
    });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                r,
                Err(StoreError::WrongExpectedVersion {
                    actual: Some(1),
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert_eq!(store.read_stream("s", 0, 100).await.unwrap().len(), 2);
}

async fn expected_version_semantics(b: &dyn Backend) {
    let store = b.open().await;
    assert!(store
        .read_stream("missing", 0, 10)
        .await
        .unwrap()
        .is_empty());
    let early = store
        .append("a", ExpectedVersion::Exact(0), vec![event("{}")])
        .await;
    assert!(matches!(
        early,
        Err(StoreError::WrongExpectedVersion { actual: None, .. })
    ));
    let first = store
        .append("a", ExpectedVersion::NoStream, vec![event("{}")])
        .await
        .unwrap();
    assert_eq!(first.version, 0);
    let again = store
        .append("a", ExpectedVersion::NoStream, vec![event("{}")])
        .await;
    assert!(matches!(
        again,
        Err(StoreError::WrongExpectedVersion { .. })
    ));
    let second = store
        .append("a", ExpectedVersion::Any, vec![event("{}"), event("{}")])
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert!(second.position > first.position);
    assert!(matches!(
        store.append("a", ExpectedVersion::Exact(2), vec![]).await,
        Err(StoreError::EmptyAppend)
    ));
    assert_eq!(
        store
            .append("a", ExpectedVersion::Exact(2), vec![event("{}")])
            .await
            .unwrap()
            .version,
        3
    );
    let last = store
        .read_all(0, 100)
        .await
        .unwrap()
        .last()
        .unwrap()
        .position;
    assert_eq!(store.head().await.unwrap(), last);
}

async fn a_multi_event_append_is_all_or_nothing(b: &dyn Backend) {
    let store = b.open().await;
    store
        .append("m", ExpectedVersion::NoStream, vec![event("{}")])
        .await
        .unwrap();
    // A conflicting append of several events writes none of them.
    assert!(store
        .append(
            "m",
            ExpectedVersion::Exact(7),
            vec![event("{}"), event("{}")]
        )
        .await
        .is_err());
    // An append failing half-way (its second event reuses an existing id) writes none of them.
    let existing = store.read_stream("m", 0, 1).await.unwrap()[0].event_id;
    let mut dup = event("{}");
    dup.event_id = existing;
    assert!(store
        .append(
            "m",
            ExpectedVersion::Exact(0),
            vec![event("{\"n\":1}"), dup]
        )
        .await
        .is_err());
    assert_eq!(store.read_stream("m", 0, 100).await.unwrap().len(), 1);
    assert_eq!(store.read_all(0, 100).await.unwrap().len(), 1);
    // And the store goes on.
    assert_eq!(
        store
            .append("m", ExpectedVersion::Exact(0), vec![event("{}")])
            .await
            .unwrap()
            .version,
        1
    );
}

async fn the_global_order_is_total_and_agrees_with_every_stream(b: &dyn Backend) {
    let store = b.open().await;
    let writers = (0..8).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..25 {
                let stream = format!("stream-{}", (w + i) % 4);
                store
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        vec![event("{}"), event("{}")],
                    )
                    .await
                    .unwrap();
            }
        })
    });
    futures::future::join_all(writers).await;
    let all = store.read_all(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 8 * 25 * 2);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let mut next_version: HashMap<&str, u64> = HashMap::new();
    for e in &all {
        let expected = next_version.entry(e.stream.as_str()).or_insert(0);
        assert_eq!(
            e.version, *expected,
            "stream {} out of order in the global log",
            e.stream
        );
        *expected += 1;
    }
}

async fn reading_after_a_position_survives_a_restart(b: &dyn Backend) {
    let store = b.open().await;
    for i in 0..10 {
        store
            .append(
                &format!("r{}", i % 3),
                ExpectedVersion::Any,
                vec![event("{}")],
            )
            .await
            .unwrap();
    }
    let all = store.read_all(0, 100).await.unwrap();
    let p = all[4].position;
    drop(store);
    let reopened = b.open().await;
    assert_eq!(reopened.read_all(p, 100).await.unwrap(), all[5..].to_vec());
    let next = reopened
        .append("r0", ExpectedVersion::Any, vec![event("{}")])
        .await
        .unwrap();
    assert!(next.position > all.last().unwrap().position);
}

async fn an_event_round_trips_byte_for_byte(b: &dyn Backend) {
    let store = b.open().await;
    let payload = "{ \"z\":1,\n\t\"a\" : \"é 漢字 \\u00e9 \\\"q\\\" 🎉\",  \"n\":1.50 }";
    let mut sent = event(payload);
    sent.metadata.causation_id = Some(Uuid::now_v7());
    sent.metadata.trace_parent =
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    sent.schema_version = 3;
    let written = store
        .append("bytes", ExpectedVersion::NoStream, vec![sent.clone()])
        .await
        .unwrap();
    let read: RecordedEvent = store.read_stream("bytes", 0, 1).await.unwrap().remove(0);
    assert_eq!(read.payload.as_bytes(), payload.as_bytes());
    assert_eq!(
        (read.event_id, read.event_type.as_str(), read.schema_version),
        (sent.event_id, "TestHappened", 3)
    );
    assert_eq!(
        (read.occurred_at, read.actor.clone()),
        (sent.occurred_at, sent.metadata.actor.clone())
    );
    assert_eq!(
        (read.correlation_id, read.causation_id),
        (sent.metadata.correlation_id, sent.metadata.causation_id)
    );
    assert_eq!(read.trace_parent, sent.metadata.trace_parent);
    assert_eq!(
        store.read_stream("bytes", 0, 1).await.unwrap()[0].trace_parent,
        read.trace_parent
    );
    // An untraced event reads back untraced.
    let untraced = store
        .append("bytes", ExpectedVersion::Exact(0), vec![event("{}")])
        .await
        .unwrap();
    let read_untraced = store.read_all(untraced.position - 1, 1).await.unwrap();
    assert_eq!(read_untraced[0].trace_parent, None);
    assert_eq!(
        (read.stream.as_str(), read.version, read.position),
        ("bytes", 0, written.position)
    );
    assert_eq!(
        store.read_all(written.position - 1, 1).await.unwrap()[0],
        read
    );
}

async fn subscribe_all_catches_up_then_follows_live(b: &dyn Backend) {
    let store = b.open().await;
    for _ in 0..5 {
        store
            .append("live", ExpectedVersion::Any, vec![event("{}")])
            .await
            .unwrap();
    }
    let start = store.read_all(0, 100).await.unwrap()[1].position;
    let mut follower = store.subscribe_all(start);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                store
                    .append(
                        &format!("live-{}", i % 5),
                        ExpectedVersion::Any,
                        vec![event("{}")],
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 3 + 40 {
        let next = tokio::time::timeout(Duration::from_secs(10), follower.next())
            .await
            .expect("the follower keeps up");
        seen.push(next.expect("the stream does not end").expect("no error"));
    }
    writer.await.unwrap();
    let all = store.read_all(start, 1000).await.unwrap();
    assert_eq!(
        seen, all,
        "exactly the events after the start, in order, no gaps, no duplicates"
    );
}

/// Two stores on one database, as two processes would be: neither may trust what it remembers of
/// a stream once the other has appended.
async fn another_writer_on_the_same_database_is_noticed(b: &dyn Backend) {
    let a = b.open().await;
    let other = b.open().await;
    a.append("shared", ExpectedVersion::NoStream, vec![event("{}")])
        .await
        .unwrap();
    other
        .append("shared", ExpectedVersion::Exact(0), vec![event("{}")])
        .await
        .unwrap();
    match a
        .append("shared", ExpectedVersion::Exact(0), vec![event("{}")])
        .await
    {
        Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(1)),
        other => panic!("a stale expected version must be refused, got {other:?}"),
    }
    let ok = a
        .append("shared", ExpectedVersion::Exact(1), vec![event("{}")])
        .await
        .unwrap();
    assert_eq!(ok.version, 2);
    let positions: Vec<u64> = a
        .read_all(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions.len(), 3);
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

/// A follower on one store sees the appends of another store on the same database (another
/// process) in log order among its own, none missed and none twice: a store may hand its own
/// commits to its followers, but never skip what others wrote in between.
async fn a_follower_sees_interleaved_writers_in_log_order(b: &dyn Backend) {
    let a = b.open().await;
    let other = b.open().await;
    let start = a.head().await.unwrap();
    let mut follower = a.subscribe_all(start);
    let writers = {
        let (a, other) = (a.clone(), other.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let (store, name) = if i % 3 == 0 {
                    (&other, "theirs")
                } else {
                    (&a, "ours")
                };
                store
                    .append(
                        name,
                        ExpectedVersion::Any,
                        vec![event(&format!("{{\"i\":{i}}}"))],
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 30 {
        let next = tokio::time::timeout(Duration::from_secs(10), follower.next())
            .await
            .expect("the follower keeps up");
        seen.push(next.expect("the stream does not end").expect("no error"));
    }
    writers.await.unwrap();
    assert_eq!(
        seen,
        a.read_all(start, 1000).await.unwrap(),
        "both writers' events, in log order, as stored"
    );
}

/// Two stores on one database appending at the same moment (two processes) both succeed, and
/// the log has no hole: appends take turns on the log's head rather than both claiming it.
async fn concurrent_writers_on_one_database_take_turns(b: &dyn Backend) {
    let a = b.open().await;
    let other = b.open().await;
    let start = a.head().await.unwrap();
    let write = |store: Arc<dyn EventStore>, name: &'static str| {
        tokio::spawn(async move {
            for _ in 0..40 {
                store
                    .append(name, ExpectedVersion::Any, vec![event("{}")])
                    .await
                    .expect("an append with any version succeeds");
            }
        })
    };
    let (x, y) = (write(a.clone(), "turns-a"), write(other.clone(), "turns-b"));
    x.await.unwrap();
    y.await.unwrap();
    let positions: Vec<u64> = a
        .read_all(start, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, (start + 1..=start + 80).collect::<Vec<_>>());
}

async fn old_schema_versions_are_kept_as_written_and_load_upcast(b: &dyn Backend) {
    let store = b.open().await;
    let fixture = events_schema::fixtures::v1_personal_chat();
    infra::testing::append_recorded(store.as_ref(), &fixture).await;
    let read = store.read_all(0, 100).await.unwrap();
    assert_eq!(read.len(), fixture.len());
    let mut messages = 0;
    for (stored, old) in read.iter().zip(&fixture) {
        // The log keeps what was written: version 1, byte for byte.
        assert_eq!(
            (
                stored.schema_version,
                stored.payload.as_str(),
                stored.event_id
            ),
            (old.schema_version, old.payload.as_str(), old.event_id)
        );
        if let DomainEvent::MessageSent(sent) =
            DomainEvent::from_recorded(stored).expect("an old event loads")
        {
            assert_eq!(sent.format, MessageFormat::Text);
            messages += 1;
        }
    }
    assert_eq!(messages, 2);
}

async fn audit_pages_follow_a_stream_or_an_actor_with_filters(b: &dyn Backend) {
    let store = b.open().await;
    let at =
        |s: i64| chrono::DateTime::from_timestamp_millis(1_800_000_000_000 + s * 1000).unwrap();
    let write = |stream: &'static str, actor: &'static str, kind: &'static str, t: i64| {
        let mut e = event("{}");
        e.metadata.actor = Some(actor.into());
        e.event_type = kind.into();
        e.occurred_at = at(t);
        (stream, e)
    };
    let plan = vec![
        write("chat-a", "ann", "MessageSent", 0),
        write("chat-b", "bob", "MessageSent", 1),
        write("chat-a", "bob", "MessageRead", 2),
        write("chat-a", "ann", "MessageSent", 3),
        write("chat-b", "ann", "MemberAdded", 4),
        write("chat-a", "ann", "GroupDeleted", 5),
    ];
    for (stream, e) in plan {
        store
            .append(stream, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    let query = |subject: AuditSubject| AuditQuery {
        subject,
        after: 0,
        limit: 100,
        since: None,
        until: None,
        event_type: None,
    };
    let kinds = |events: &[RecordedEvent]| {
        events
            .iter()
            .map(|e| (e.stream.clone(), e.event_type.clone()))
            .collect::<Vec<_>>()
    };
    let chat_a = store
        .audit(&query(AuditSubject::Stream("chat-a".into())))
        .await
        .unwrap();
    assert_eq!(chat_a.len(), 4);
    assert!(chat_a.windows(2).all(|w| w[0].position < w[1].position));
    assert!(chat_a.iter().all(|e| e.stream == "chat-a"));
    let ann = store
        .audit(&query(AuditSubject::Actor("ann".into())))
        .await
        .unwrap();
    assert_eq!(
        kinds(&ann),
        vec![
            ("chat-a".into(), "MessageSent".into()),
            ("chat-a".into(), "MessageSent".into()),
            ("chat-b".into(), "MemberAdded".into()),
            ("chat-a".into(), "GroupDeleted".into()),
        ]
    );
    // Pages: after the last position of the previous one.
    let mut paged = Vec::new();
    let mut q = query(AuditSubject::Stream("chat-a".into()));
    q.limit = 3;
    loop {
        let page = store.audit(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = last.position;
        paged.extend(page);
    }
    assert_eq!(paged, chat_a);
    // Filters: a time range [since, until) and a type.
    let mut q = query(AuditSubject::Stream("chat-a".into()));
    q.since = Some(at(2));
    q.until = Some(at(5));
    assert_eq!(
        kinds(&store.audit(&q).await.unwrap()),
        vec![
            ("chat-a".into(), "MessageRead".into()),
            ("chat-a".into(), "MessageSent".into())
        ]
    );
    q.event_type = Some("MessageSent".into());
    assert_eq!(store.audit(&q).await.unwrap().len(), 1);
    assert!(store
        .audit(&query(AuditSubject::Actor("nobody".into())))
        .await
        .unwrap()
        .is_empty());
}

macro_rules! contract_tests {
    ($backend:ident, $new:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_appends_with_the_same_expected_version_one_wins() {
                super::concurrent_appends_with_the_same_expected_version_one_wins(&$new().await)
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn expected_version_semantics() {
                super::expected_version_semantics(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_multi_event_append_is_all_or_nothing() {
                super::a_multi_event_append_is_all_or_nothing(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_global_order_is_total_and_agrees_with_every_stream() {
                super::the_global_order_is_total_and_agrees_with_every_stream(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reading_after_a_position_survives_a_restart() {
                super::reading_after_a_position_survives_a_restart(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_event_round_trips_byte_for_byte() {
                super::an_event_round_trips_byte_for_byte(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn another_writer_on_the_same_database_is_noticed() {
                super::another_writer_on_the_same_database_is_noticed(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_follower_sees_interleaved_writers_in_log_order() {
                super::a_follower_sees_interleaved_writers_in_log_order(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_writers_on_one_database_take_turns() {
                super::concurrent_writers_on_one_database_take_turns(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn old_schema_versions_are_kept_as_written_and_load_upcast() {
                super::old_schema_versions_are_kept_as_written_and_load_upcast(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn audit_pages_follow_a_stream_or_an_actor_with_filters() {
                super::audit_pages_follow_a_stream_or_an_actor_with_filters(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn subscribe_all_catches_up_then_follows_live() {
                super::subscribe_all_catches_up_then_follows_live(&$new().await).await;
            }
        }
    };
}

contract_tests!(sqlite, Sqlite::new);
contract_tests!(postgres, Postgres::new);

/// A backend reached over the network, whose server can go away for a while (a restart, a
/// failover) while the store stays open. An EventStoreDB backend joins with
/// `outage_tests!(esdb, Esdb::new)`, stopping its node's client port.
#[async_trait::async_trait]
trait Outage: Backend {
    /// Cuts every connection the store holds and refuses new ones until [`Outage::end`].
    async fn begin(&self);
    async fn end(&self);
}

#[async_trait::async_trait]
impl Outage for Postgres {
    async fn begin(&self) {
        self.allow_connections(false).await;
        let admin = self.admin().await;
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(self.db.name())
            .execute(&admin)
            .await
            .expect("cut the store's connections");
    }

    async fn end(&self) {
        self.allow_connections(true).await;
    }
}

impl Postgres {
    async fn admin(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&infra::testing::admin_url())
            .await
            .expect("admin connection")
    }

    async fn allow_connections(&self, allow: bool) {
        let sql = format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allow}",
            self.db.name()
        );
        sqlx::query(&sql)
            .execute(&self.admin().await)
            .await
            .expect("change ALLOW_CONNECTIONS");
    }
}

/// A store that has written one event (its connections are open and in use), whose server then
/// goes away.
async fn open_then_lose_the_server(b: &dyn Outage) -> Arc<dyn EventStore> {
    let store = b.open().await;
    store
        .append("before", ExpectedVersion::NoStream, vec![event("0")])
        .await
        .unwrap();
    b.begin().await;
    store
}

/// Appends made while the server is away for less than the store's patience (2 s) are written
/// once each when it is back, and answered as written; none fails, none is doubled.
async fn appends_during_a_short_outage_are_written_once(b: &dyn Outage) {
    let store = open_then_lose_the_server(b).await;
    let appends: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(
                        &format!("during-{i}"),
                        ExpectedVersion::NoStream,
                        vec![event(&i.to_string()), event(&i.to_string())],
                    )
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.end().await;
    for (i, append) in appends.into_iter().enumerate() {
        let result = append.await.unwrap();
        assert!(result.is_ok(), "append {i}: {result:?}");
    }
    for i in 0..40 {
        let events = store
            .read_stream(&format!("during-{i}"), 0, 10)
            .await
            .unwrap();
        assert_eq!(events.len(), 2, "stream during-{i}");
    }
    assert_eq!(store.read_all(0, 1000).await.unwrap().len(), 81);
}

/// Appends made while the server stays away longer are answered as failed within the commands'
/// bound (never left hanging), are not stored, and the store writes again once it is back.
async fn appends_during_a_long_outage_fail_in_time_and_the_store_recovers(b: &dyn Outage) {
    let store = open_then_lose_the_server(b).await;
    let started = std::time::Instant::now();
    let failed = store
        .append("during", ExpectedVersion::NoStream, vec![event("1")])
        .await;
    let waited = started.elapsed();
    b.end().await;
    assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    let after = store
        .append("after", ExpectedVersion::NoStream, vec![event("2")])
        .await;
    assert!(after.is_ok(), "{after:?}");
    assert!(store.read_stream("during", 0, 10).await.unwrap().is_empty());
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 2);
}

macro_rules! outage_tests {
    ($backend:ident, $new:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn appends_during_a_short_outage_are_written_once() {
                super::appends_during_a_short_outage_are_written_once(&$new().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn appends_during_a_long_outage_fail_in_time_and_the_store_recovers() {
                super::appends_during_a_long_outage_fail_in_time_and_the_store_recovers(
                    &$new().await,
                )
                .await;
            }
        }
    };
}

mod outage {
    use super::*;
    outage_tests!(postgres, Postgres::new);
}
