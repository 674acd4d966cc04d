//! Design target: a history page of 50 from a chat with 1,000,000 messages, p99 under 5 ms
//! all-in-one (SQLite read model). The page query is a keyset scan on (chat_id, version).
//!
//!   cargo bench -p projection-service --bench page
//!
//! Besides criterion's estimate of the mean, each case prints the p50/p99/max of every query it ran.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use events_schema::{ChatId, MessageId};
use infra::db::Database;
use projection_service::{queries, Projector};

const MESSAGES: i64 = 1_000_000;

fn page_of_50(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = rt.block_on(async {
        let db = Database::connect(&format!("sqlite://{}", dir.path().join("reads.db").display())).await.unwrap();
        Projector::new(db.clone()).await.unwrap();
        let started = Instant::now();
        sqlx::query("INSERT INTO chats (chat_id, kind, created_at, last_version, last_chat) VALUES ('big', 'personal', 0, $1, $1)")
            .bind(MESSAGES)
            .execute(&db.pool)
            .await
            .unwrap();
        // Other chats' messages interleave in the same table, as in real use.
        sqlx::query(
            "INSERT INTO messages (chat_id, version, message_id, sender_id, content, sent_at) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             SELECT CASE WHEN i % 10 = 0 THEN 'other' || (i % 97) ELSE 'big' END, i, 'm' || i, 'u' || (i % 2), \
                    'message number ' || i, 1700000000000 + i FROM n",
        )
        .bind(MESSAGES * 10 / 9 + 1)
        .execute(&db.pool)
        .await
        .unwrap();
        eprintln!("filled the read model in {:?}", started.elapsed());
        db
    });
    let chat = ChatId::parse("big").unwrap();
    let mut group = c.benchmark_group("message_page_of_50_in_1m");
    let cases = [
        ("newest", None),
        ("middle", Some("m555551")),
        ("oldest", Some("m101")),
    ];
    for (name, before) in cases {
        let before = before.map(|b| MessageId::parse(b).unwrap());
        let samples = Mutex::new(Vec::new());
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let db = db.clone();
                let chat = chat.clone();
                let before = before.clone();
                let samples = &samples;
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let page = queries::message_page(&db, &chat, before.as_ref(), 50)
                            .await
                            .unwrap();
                        let took = started.elapsed();
                        assert!(!page.messages.is_empty());
                        total += took;
                        samples.lock().unwrap().push(took);
                    }
                    total
                }
            })
        });
        infra::testing::print_percentiles(name, &mut samples.lock().unwrap());
    }
    group.finish();
}

criterion_group!(benches, page_of_50);
criterion_main!(benches);
