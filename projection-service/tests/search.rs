//! Message search against real databases (a SQLite file and a uniquely named PostgreSQL
//! database): words match whole and case-insensitively, the last one as a prefix too; only chats
//! the searcher is a member of now; edited text as edited, deleted messages never; pages newest
//! first; the index survives a batch applied twice, a replay, and an upgrade of a database that
//! already holds messages.

use std::sync::Arc;

use events_schema::events::{
    GroupCreated, GroupDeleted, MemberRemoved, MessageDeleted, MessageEdited, MessageFormat,
    MessageSent, PersonalChatCreated, RemovalReason, SelfChatCreated, UserRegistered, UserVerified,
};
use events_schema::{
    streams, ChatId, Content, DomainEvent, EventMetadata, MessageId, UserId, UserName,
};
use infra::db::{Database, DbKind};
use infra::event_store::open_event_store;
use infra::testing::TempPostgres;
use infra::{EventStore, ExpectedVersion};
use projection_service::read_models::search::{
    search_messages, SearchCursor, SearchPage, SearchRequest, SearchTerms,
};
use projection_service::replay::{replay, ReplayOptions, ReplayOutcome};
use projection_service::Projector;
use uuid::Uuid;

/// A store and a read-model database, on SQLite or PostgreSQL.
struct Setup {
    store: Arc<dyn EventStore>,
    url: String,
    _dir: tempfile::TempDir,
    _pg: Option<TempPostgres>,
}

async fn sqlite() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = open_event_store(&format!(
        "sqlite://{}",
        dir.path().join("events.db").display()
    ))
    .await
    .unwrap();
    let url = format!("sqlite://{}", dir.path().join("chat.db").display());
    Setup {
        store,
        url,
        _dir: dir,
        _pg: None,
    }
}

async fn postgres() -> Setup {
    let pg = TempPostgres::create("search_test").await;
    let store = open_event_store(&pg.url()).await.unwrap();
    Setup {
        store,
        url: pg.url(),
        _dir: tempfile::tempdir().unwrap(),
        _pg: Some(pg),
    }
}

impl Setup {
    async fn append(&self, stream: &str, event: impl Into<DomainEvent>) {
        let event: DomainEvent = event.into();
        let new = event.into_new_event(EventMetadata {
            actor: None,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            trace_parent: None,
        });
        self.store
            .append(stream, ExpectedVersion::Any, vec![new])
            .await
            .unwrap();
    }

    async fn user(&self, name: &str) -> UserId {
        let user = UserId::generate();
        let stream = streams::user(&user);
        self.append(
            &stream,
            UserRegistered {
                user_id: user.clone(),
                name: UserName::parse(name).unwrap(),
            },
        )
        .await;
        self.append(
            &stream,
            UserVerified {
                user_id: user.clone(),
            },
        )
        .await;
        let chat = ChatId::self_chat_of(&user);
        self.append(
            &streams::chat(&chat),
            SelfChatCreated {
                chat_id: chat,
                owner: user.clone(),
            },
        )
        .await;
        user
    }

    async fn personal(&self, a: &UserId, b: &UserId) -> ChatId {
        let chat = ChatId::personal_between(a, b);
        self.append(
            &streams::chat(&chat),
            PersonalChatCreated {
                chat_id: chat.clone(),
                creator: a.clone(),
                partner: b.clone(),
            },
        )
        .await;
        chat
    }

    async fn group(&self, admin: &UserId, members: &[&UserId]) -> ChatId {
        let chat = ChatId::generate();
        self.append(
            &streams::chat(&chat),
            GroupCreated {
                chat_id: chat.clone(),
                name: "Group".into(),
                description: String::new(),
                admin: admin.clone(),
                members: members.iter().map(|m| (*m).clone()).collect(),
            },
        )
        .await;
        chat
    }

    async fn say(&self, chat: &ChatId, sender: &UserId, text: &str) -> MessageId {
        let id = MessageId::generate();
        self.append(
            &streams::chat(chat),
            MessageSent {
                chat_id: chat.clone(),
                message_id: id.clone(),
                sender_id: sender.clone(),
                content: Content::parse(text).unwrap(),
                format: MessageFormat::Text,
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            },
        )
        .await;
        id
    }

    /// Projects the whole log, in batches as the running projector does, and gives the database.
    async fn project(&self) -> Database {
        let db = Database::connect(&self.url).await.unwrap();
        let projector = Projector::new(db.clone()).await.unwrap();
        loop {
            let from = projector.checkpoint().await.unwrap();
            let batch = self.store.read_all(from, 1000).await.unwrap();
            if batch.is_empty() {
                return db;
            }
            projector.apply(&batch).await.unwrap();
        }
    }
}

async fn page(
    db: &Database,
    user: &UserId,
    query: &str,
    chat: Option<&ChatId>,
    before: Option<&SearchCursor>,
    limit: u32,
) -> SearchPage {
    let terms = SearchTerms::parse(query).unwrap();
    search_messages(
        db,
        &SearchRequest {
            user,
            terms: &terms,
            chat,
            before,
            limit,
        },
    )
    .await
    .unwrap()
}

/// The text of every result of `query` for `user` (one page of up to 100), newest first.
async fn found(db: &Database, user: &UserId, query: &str) -> Vec<String> {
    let page = page(db, user, query, None, None, 100).await;
    assert!(!page.has_more);
    page.hits.into_iter().map(|h| h.content).collect()
}

/// FTS5's own check of the SQLite index against `messages` (PostgreSQL's index is the engine's).
async fn index_is_consistent(db: &Database) {
    if db.kind == DbKind::Sqlite {
        sqlx::query(
            "INSERT INTO message_search (message_search, rank) VALUES ('integrity-check', 1)",
        )
        .execute(&db.pool)
        .await
        .expect("the FTS5 index matches the messages");
    }
}

async fn words_match_whole_case_insensitively_and_the_last_as_a_prefix(s: Setup) {
    let ada = s.user("Ada").await;
    let notes = ChatId::self_chat_of(&ada);
    for text in [
        "Hello World",
        "hello there, worldwide",
        "Say HELLO!",
        "helium balloon",
        "Grüße aus Köln",
        "東京 tower",
        "it's a mix-up",
    ] {
        s.say(&notes, &ada, text).await;
    }
    let db = s.project().await;

    assert_eq!(
        found(&db, &ada, "hello").await,
        ["Say HELLO!", "hello there, worldwide", "Hello World"]
    );
    assert_eq!(found(&db, &ada, "HEL").await.len(), 4, "a prefix");
    assert_eq!(
        found(&db, &ada, "world hello").await,
        ["Hello World"],
        "a word before the last matches whole only"
    );
    assert_eq!(
        found(&db, &ada, "hello world").await,
        ["hello there, worldwide", "Hello World"],
        "the last word as a prefix"
    );
    assert!(found(&db, &ada, "ello").await.is_empty(), "no infixes");
    assert!(
        found(&db, &ada, "hello balloon").await.is_empty(),
        "every word"
    );
    assert_eq!(found(&db, &ada, "KÖLN grüße").await, ["Grüße aus Köln"]);
    assert!(found(&db, &ada, "koln").await.is_empty(), "diacritics kept");
    assert_eq!(found(&db, &ada, "東京").await, ["東京 tower"]);
    assert_eq!(found(&db, &ada, "mix up").await, ["it's a mix-up"]);
    assert_eq!(found(&db, &ada, "it's").await, ["it's a mix-up"]);
    // What would be engine syntax is only a separator between words.
    assert!(found(&db, &ada, "hello\" OR \"balloon").await.is_empty());
    assert!(found(&db, &ada, "hello') | ('balloon").await.is_empty());
    assert_eq!(
        found(&db, &ada, "NEAR(hello world)").await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(&db, &ada, "hello:* & !world").await,
        ["hello there, worldwide", "Hello World"]
    );
    assert_eq!(found(&db, &ada, "hel*").await.len(), 4);
}

async fn only_chats_the_searcher_is_a_member_of_now(s: Setup) {
    let (ada, bob, cy) = (s.user("Ada").await, s.user("Bob").await, s.user("Cy").await);
    let ada_bob = s.personal(&ada, &bob).await;
    let bob_cy = s.personal(&bob, &cy).await;
    let kept = s.group(&bob, &[&bob, &ada, &cy]).await;
    let left = s.group(&bob, &[&bob, &ada]).await;
    let deleted = s.group(&ada, &[&ada, &bob]).await;
    s.say(&ada_bob, &bob, "secret plan one").await;
    s.say(&bob_cy, &cy, "secret plan two").await;
    s.say(&kept, &cy, "secret plan three").await;
    s.say(&left, &bob, "secret plan four").await;
    s.say(&deleted, &bob, "secret plan five").await;
    s.say(&ChatId::self_chat_of(&cy), &cy, "secret plan six")
        .await;
    let db = s.project().await;
    assert_eq!(
        sorted(found(&db, &ada, "secret plan").await),
        [
            "secret plan five",
            "secret plan four",
            "secret plan one",
            "secret plan three"
        ]
    );
    assert_eq!(
        found(&db, &bob, "plan").await.len(),
        5,
        "bob is in every chat but cy's notes"
    );

    s.append(
        &streams::chat(&left),
        MemberRemoved {
            chat_id: left.clone(),
            member: ada.clone(),
            reason: RemovalReason::Kicked,
        },
    )
    .await;
    s.append(
        &streams::chat(&deleted),
        GroupDeleted {
            chat_id: deleted.clone(),
        },
    )
    .await;
    let db = s.project().await;
    assert_eq!(
        sorted(found(&db, &ada, "secret").await),
        ["secret plan one", "secret plan three"]
    );
    assert_eq!(
        found(&db, &bob, "plan").await.len(),
        4,
        "the deleted group's are gone"
    );

    // One chat only; the membership filter still holds there.
    let only = page(&db, &ada, "secret", Some(&kept), None, 10).await;
    assert_eq!(only.hits.len(), 1);
    assert_eq!(only.hits[0].chat_id, kept);
    assert_eq!(only.hits[0].sender_id, cy);
    assert!(page(&db, &ada, "secret", Some(&bob_cy), None, 10)
        .await
        .hits
        .is_empty());
    assert!(page(&db, &ada, "secret", Some(&left), None, 10)
        .await
        .hits
        .is_empty());
}

fn sorted(mut texts: Vec<String>) -> Vec<String> {
    texts.sort();
    texts
}

async fn pages_are_newest_first_and_follow_their_cursor(s: Setup) {
    let (ada, bob) = (s.user("Ada").await, s.user("Bob").await);
    let chat = s.personal(&ada, &bob).await;
    let group = s.group(&ada, &[&ada, &bob]).await;
    let mut sent = Vec::new();
    for i in 0..25 {
        let at = if i % 2 == 0 { &chat } else { &group };
        sent.push((
            at.clone(),
            s.say(at, &bob, &format!("ping number {i}")).await,
        ));
        s.say(at, &bob, "pong").await;
    }
    let db = s.project().await;
    let mut seen: Vec<MessageId> = Vec::new();
    let mut hits = Vec::new();
    let mut before: Option<SearchCursor> = None;
    let mut pages = 0;
    loop {
        let got = page(&db, &ada, "ping", None, before.as_ref(), 10).await;
        pages += 1;
        seen.extend(got.hits.iter().map(|h| h.message_id.clone()));
        hits.extend(got.hits.iter().cloned());
        assert_eq!(got.has_more, got.next.is_some());
        match got.next {
            Some(next) => {
                assert_eq!(got.hits.len(), 10);
                // The cursor survives its text (the wire's `Before`).
                before = Some(next.to_string().parse().unwrap());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    if db.kind == DbKind::Sqlite {
        // Newest first: the order they were stored in.
        let newest_first: Vec<MessageId> = sent.iter().rev().map(|(_, m)| m.clone()).collect();
        assert_eq!(seen, newest_first);
    }
    // Newest first across the pages: by time, then (within one millisecond) by chat and place.
    for pair in hits.windows(2).filter(|_| db.kind == DbKind::Postgres) {
        let key = |h: &projection_service::read_models::search::SearchHit| {
            (h.sent_at, h.chat_id.as_str().to_owned(), h.version)
        };
        assert!(key(&pair[0]) > key(&pair[1]), "newest first, each once");
    }
    // Within a chat, in the chat's order.
    for chat in [&chat, &group] {
        let mine: Vec<&MessageId> = hits
            .iter()
            .filter(|h| &h.chat_id == chat)
            .map(|h| &h.message_id)
            .collect();
        let expected: Vec<&MessageId> = sent
            .iter()
            .rev()
            .filter(|(c, _)| c == chat)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(mine, expected);
    }
    assert_eq!(seen.len(), 25);
}

async fn edited_text_as_edited_and_deleted_messages_never(s: Setup) {
    let (ada, bob) = (s.user("Ada").await, s.user("Bob").await);
    let chat = s.personal(&ada, &bob).await;
    let edited = s.say(&chat, &ada, "apple pie").await;
    let gone = s.say(&chat, &bob, "cherry tart").await;
    s.say(&chat, &bob, "apple crumble").await;
    let db = s.project().await;
    assert_eq!(found(&db, &bob, "apple").await.len(), 2);
    s.append(
        &streams::chat(&chat),
        MessageEdited {
            chat_id: chat.clone(),
            message_id: edited.clone(),
            editor: ada.clone(),
            content: Content::parse("banana split").unwrap(),
        },
    )
    .await;
    s.append(
        &streams::chat(&chat),
        MessageDeleted {
            chat_id: chat.clone(),
            message_id: gone.clone(),
            deleted_by: bob.clone(),
        },
    )
    .await;
    let db = s.project().await;
    assert_eq!(found(&db, &bob, "apple").await, ["apple crumble"]);
    let hit = page(&db, &bob, "banana", None, None, 5).await.hits;
    assert_eq!(hit.len(), 1);
    assert_eq!(
        (&hit[0].message_id, hit[0].content.as_str()),
        (&edited, "banana split")
    );
    assert!(found(&db, &bob, "cherry").await.is_empty());
    assert!(found(&db, &bob, "tart").await.is_empty());
    index_is_consistent(&db).await;

    // The whole log applied again (from position 0, as after a lost checkpoint) changes nothing.
    let projector = Projector::new(db.clone()).await.unwrap();
    let all = s.store.read_all(0, 10_000).await.unwrap();
    sqlx::query("UPDATE projection_checkpoints SET position = 0")
        .execute(&db.pool)
        .await
        .unwrap();
    projector.apply(&all).await.unwrap();
    assert_eq!(found(&db, &bob, "apple").await, ["apple crumble"]);
    assert_eq!(found(&db, &bob, "banana").await, ["banana split"]);
    assert!(found(&db, &bob, "cherry").await.is_empty());
    index_is_consistent(&db).await;
}

async fn a_replay_rebuilds_the_index(s: Setup) {
    let (ada, bob) = (s.user("Ada").await, s.user("Bob").await);
    let chat = s.personal(&ada, &bob).await;
    let edited = s.say(&chat, &ada, "first draft").await;
    for i in 0..40 {
        s.say(&chat, &bob, &format!("replayed line {i}")).await;
    }
    s.append(
        &streams::chat(&chat),
        MessageEdited {
            chat_id: chat.clone(),
            message_id: edited,
            editor: ada.clone(),
            content: Content::parse("final version").unwrap(),
        },
    )
    .await;
    let db = s.project().await;
    let before = (
        found(&db, &ada, "replayed").await,
        found(&db, &ada, "final").await,
        found(&db, &ada, "draft").await,
    );
    assert_eq!(before.0.len(), 40);
    let options = ReplayOptions {
        projection: "read_models".into(),
        force: false,
        stop_after: None,
    };
    let outcome = replay(s.store.clone(), &s.url, &options).await.unwrap();
    assert!(
        matches!(outcome, Some(ReplayOutcome::Swapped { ref differed, .. }) if differed.is_empty()),
        "{outcome:?}"
    );
    let db = Database::connect(&s.url).await.unwrap();
    let after = (
        found(&db, &ada, "replayed").await,
        found(&db, &ada, "final").await,
        found(&db, &ada, "draft").await,
    );
    assert_eq!(after, before);
    index_is_consistent(&db).await;
}

/// A database that held messages before the search index existed has them indexed by the
/// migration that adds it.
async fn an_upgraded_database_has_its_messages_indexed(s: Setup) {
    let db = Database::connect(&s.url).await.unwrap();
    let dir = match db.kind {
        DbKind::Sqlite => "migrations/sqlite",
        DbKind::Postgres => "migrations/postgres",
    };
    let all =
        sqlx::migrate::Migrator::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .await
            .unwrap();
    let mut earlier = sqlx::migrate::Migrator {
        migrations: all
            .migrations
            .iter()
            .filter(|m| m.version < 2006)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    earlier.set_ignore_missing(true);
    earlier.run(&db.pool).await.unwrap();
    // The read models as an older release left them.
    for (sql, chat) in [
        (
            "INSERT INTO chats (chat_id, kind, created_at) VALUES ($1, 'self', 0)",
            "u1",
        ),
        (
            "INSERT INTO chat_members (chat_id, user_id) VALUES ($1, 'u1')",
            "u1",
        ),
    ] {
        sqlx::query(sql).bind(chat).execute(&db.pool).await.unwrap();
    }
    for (version, text) in [(0i64, "kept from before"), (1, "older words")] {
        sqlx::query(
            "INSERT INTO messages (chat_id, version, message_id, sender_id, content, sent_at) \
             VALUES ('u1', $1, $2, 'u1', $3, $4)",
        )
        .bind(version)
        .bind(format!("m{version}"))
        .bind(text)
        .bind(1_795_000_000_000 + version)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    Projector::new(db.clone()).await.unwrap();
    let u1 = UserId::parse("u1").unwrap();
    assert_eq!(found(&db, &u1, "before").await, ["kept from before"]);
    assert_eq!(found(&db, &u1, "words").await, ["older words"]);
    index_is_consistent(&db).await;
}

macro_rules! on_both {
    ($($test:ident),*) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::sqlite().await).await; })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::postgres().await).await; })*
        }
    };
}

on_both!(
    words_match_whole_case_insensitively_and_the_last_as_a_prefix,
    only_chats_the_searcher_is_a_member_of_now,
    pages_are_newest_first_and_follow_their_cursor,
    edited_text_as_edited_and_deleted_messages_never,
    a_replay_rebuilds_the_index,
    an_upgraded_database_has_its_messages_indexed
);
