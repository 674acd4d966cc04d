//! Design target: `search-messages` over 1,000,000 messages in 1,000 chats, the searcher a member
//! of 100 of them: p99 ≤ 30 ms, on each read-model backend (SQLite's FTS5 index, PostgreSQL's GIN
//! index). Fills a read model of each kind directly (bulk SQL, not through the server), runs the
//! same searches on both, and prints p50/p99/max per kind of query and overall.
//!
//!   cargo bench -p projection-service --bench search
//!   cargo bench -p projection-service --bench search -- --messages 100000 --searches 1000 --only sqlite
//!
//! (`cargo test` runs it with 20,000 messages and 100 searches.)
//!
//! The text: every message is 10 words drawn (by a fixed hash of its number, so both backends hold
//! the same text) from a vocabulary of 10,000 made-up words; a word is then in about 1,000 messages,
//! about 100 of them in the searcher's chats. The searches, 1,000 by default: half one whole word,
//! a quarter two words, a quarter the first three letters of a word (a prefix, which matches about
//! twenty words' messages).

use std::time::{Duration, Instant};

use events_schema::UserId;
use infra::db::{Database, DbKind};
use infra::testing::{bench_arg, print_percentiles, TempPostgres};
use projection_service::read_models::search::{search_messages, SearchRequest, SearchTerms};
use projection_service::Projector;

const CHATS: i64 = 1_000;
const WORDS: i64 = 10_000;
const WORDS_PER_MESSAGE: i64 = 10;

/// The vocabulary: word `i` spelled from syllables, in lower case, all distinct.
fn word(i: i64) -> String {
    const SYLLABLES: [&str; 22] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "de", "po", "ga", "fu", "be", "zi", "ho",
        "ju", "we", "ly", "xo", "qa", "ce", "ny",
    ];
    let mut n = i;
    let mut out = String::new();
    loop {
        out.push_str(SYLLABLES[(n % 22) as usize]);
        n /= 22;
        if n == 0 {
            break;
        }
    }
    out
}

/// The statement that writes `messages` rows `1..=count` (positions `$1` and `$2`): chat
/// `c<i % 1000>`, and word `k` of message `i` a fixed hash of `(i, k)`.
fn fill_sql(kind: DbKind) -> String {
    let words: Vec<String> = (0..WORDS_PER_MESSAGE)
        .map(|k| {
            format!(
                "(SELECT w FROM bench_vocab WHERE id = ((n.i * {} + {}) % 1000003) % {WORDS})",
                2_654_435_761_i64 % 1_000_003 + k * 7919,
                k * 104_729
            )
        })
        .collect();
    let content = words.join(" || ' ' || ");
    let series = match kind {
        DbKind::Sqlite => {
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) SELECT"
        }
        DbKind::Postgres => "SELECT",
    };
    let from = match kind {
        DbKind::Sqlite => "FROM n",
        DbKind::Postgres => "FROM generate_series($1::bigint, $2::bigint) AS n(i)",
    };
    format!(
        "INSERT INTO messages (chat_id, version, message_id, sender_id, content, sent_at) {series} \
         'c' || (n.i % {CHATS}), n.i / {CHATS}, 'm' || n.i, 'u' || (n.i % 7), {content}, \
         1700000000000 + n.i {from}"
    )
}

async fn fill(db: &Database, messages: i64) {
    let started = Instant::now();
    let pool = &db.pool;
    sqlx::query("CREATE TABLE bench_vocab (id BIGINT PRIMARY KEY, w TEXT NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    for chunk in (0..WORDS).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("({i}, '{}')", word(*i)))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO bench_vocab VALUES {}",
            values.join(", ")
        ))
        .execute(pool)
        .await
        .unwrap();
    }
    // 1,000 groups; the searcher ("me") is in every tenth, seven others in each.
    for c in 0..CHATS {
        sqlx::query(
            "INSERT INTO chats (chat_id, kind, name, created_at) VALUES ($1, 'group', 'g', 0)",
        )
        .bind(format!("c{c}"))
        .execute(pool)
        .await
        .unwrap();
        let mut members: Vec<String> = (0..7).map(|u| format!("u{u}")).collect();
        if c % 10 == 0 {
            members.push("me".into());
        }
        for m in members {
            sqlx::query("INSERT INTO chat_members (chat_id, user_id) VALUES ($1, $2)")
                .bind(format!("c{c}"))
                .bind(m)
                .execute(pool)
                .await
                .unwrap();
        }
    }
    // PostgreSQL builds a GIN index faster at once than row by row: the index is dropped for the
    // fill and made again after it, as the migration makes it.
    if db.kind == DbKind::Postgres {
        sqlx::query("DROP INDEX messages_search")
            .execute(pool)
            .await
            .unwrap();
    }
    let sql = fill_sql(db.kind);
    let step = 100_000;
    let mut from = 1;
    while from <= messages {
        let to = (from + step - 1).min(messages);
        sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .execute(pool)
            .await
            .unwrap();
        from = to + 1;
    }
    if db.kind == DbKind::Postgres {
        sqlx::query("SET maintenance_work_mem = '256MB'")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query(
            "CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple'::regconfig, content))",
        )
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    } else {
        sqlx::query("INSERT INTO message_search (message_search) VALUES ('optimize')")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    }
    eprintln!(
        "{}: filled {messages} messages in {:?}",
        db.kind.name(),
        started.elapsed()
    );
}

/// The searches: `(kind, query)`, from a fixed seed.
fn searches(count: usize) -> Vec<(&'static str, String)> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % WORDS as u64) as i64
    };
    (0..count)
        .map(|i| match i % 4 {
            0 | 1 => ("one word", word(next())),
            2 => ("two words", format!("{} {}", word(next()), word(next()))),
            _ => {
                let w = word(next());
                ("prefix", w.chars().take(3).collect())
            }
        })
        .collect()
}

async fn run(db: &Database, count: usize) {
    let me = UserId::parse("me").unwrap();
    let queries = searches(count);
    // A few first, so the caches are warm as in a running server.
    for (_, q) in queries.iter().take(20) {
        let terms = SearchTerms::parse(q).unwrap();
        search(db, &me, &terms).await;
    }
    let mut by_kind: Vec<(&str, Vec<Duration>)> = Vec::new();
    let mut all = Vec::new();
    let mut found = 0usize;
    for (kind, q) in &queries {
        let terms = SearchTerms::parse(q).unwrap();
        let started = Instant::now();
        found += search(db, &me, &terms).await;
        let took = started.elapsed();
        all.push(took);
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, samples)) => samples.push(took),
            None => by_kind.push((kind, vec![took])),
        }
    }
    let backend = db.kind.name();
    for (kind, mut samples) in by_kind {
        print_percentiles(&format!("{backend} search, {kind}"), &mut samples);
    }
    print_percentiles(&format!("{backend} search, all"), &mut all);
    eprintln!(
        "{backend}: {:.1} results a search on average (a page holds at most 20)",
        found as f64 / queries.len() as f64
    );
}

async fn search(db: &Database, me: &UserId, terms: &SearchTerms) -> usize {
    let page = search_messages(
        db,
        &SearchRequest {
            user: me,
            terms,
            chat: None,
            before: None,
            limit: 20,
        },
    )
    .await
    .unwrap();
    page.hits.len()
}

fn main() {
    // `cargo test --all-targets` runs this too, without `--bench`: a small run, as a smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let (messages, count) = if full {
        (1_000_000, 1_000)
    } else {
        (20_000, 100)
    };
    let messages: i64 = bench_arg("messages").map_or(messages, |m| m.parse().unwrap());
    let count: usize = bench_arg("searches").map_or(count, |m| m.parse().unwrap());
    let only = bench_arg("only");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        if only.as_deref().is_none_or(|o| o == "sqlite") {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("reads.db").display());
            let db = Database::connect(&url).await.unwrap();
            Projector::new(db.clone()).await.unwrap();
            fill(&db, messages).await;
            run(&db, count).await;
            db.pool.close().await;
        }
        if only.as_deref().is_none_or(|o| o == "postgres") {
            let pg = TempPostgres::create("search_bench").await;
            let db = Database::connect(&pg.url()).await.unwrap();
            Projector::new(db.clone()).await.unwrap();
            fill(&db, messages).await;
            run(&db, count).await;
            db.pool.close().await;
        }
    });
}
