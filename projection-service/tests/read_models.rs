//! The projector and its queries against real databases: SQLite in a temporary directory and a
//! uniquely named PostgreSQL database, with one set of tests for both.

use std::sync::Arc;
use std::time::Duration;

use events_schema::events::{
    GroupCreated, GroupDeleted, MemberAdded, MemberRemoved, MessageDeleted, MessageEdited,
    MessageFormat, MessageRead, MessageSent, MessagesDelivered, PersonalChatCreated, ReactionAdded,
    ReactionRemoved, RemovalReason, SelfChatCreated, UserRegistered, UserRenamed, UserVerified,
};
use events_schema::{
    ChatId, Content, DomainEvent, Emoji, EventMetadata, MessageId, RecordedEvent, UserId, UserName,
};
use infra::db::Database;
use infra::event_store::open_event_store;
use infra::testing::TempPostgres;
use infra::ExpectedVersion;
use projection_service::{queries, run, Projector};
use tokio::sync::watch;
use uuid::Uuid;

/// Held only for its `Drop` (removes the directory or drops the database).
#[allow(dead_code)]
enum Backing {
    Sqlite(tempfile::TempDir),
    Postgres(TempPostgres),
}

struct Fixture {
    db: Database,
    projector: Projector,
    _backing: Backing,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&infra::db::sqlite_url(&dir.path().join("reads.db")))
        .await
        .unwrap();
    let projector = Projector::new(db.clone()).await.unwrap();
    Fixture {
        db,
        projector,
        _backing: Backing::Sqlite(dir),
    }
}

async fn postgres() -> Fixture {
    let pg = TempPostgres::create("reads_test").await;
    let db = Database::connect(&pg.url()).await.unwrap();
    let projector = Projector::new(db.clone()).await.unwrap();
    Fixture {
        db,
        projector,
        _backing: Backing::Postgres(pg),
    }
}

/// Builds recorded events with consecutive positions and per-stream versions.
#[derive(Default, Clone)]
struct Log {
    events: Vec<RecordedEvent>,
    versions: std::collections::HashMap<String, u64>,
}

impl Log {
    fn push(&mut self, stream: &str, event: impl Into<DomainEvent>) -> RecordedEvent {
        let event: DomainEvent = event.into();
        let new = event.into_new_event(EventMetadata {
            actor: None,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            trace_parent: None,
        });
        let version = self.versions.entry(stream.to_owned()).or_insert(0);
        let recorded = RecordedEvent {
            event_id: new.event_id,
            stream: stream.to_owned(),
            version: *version,
            position: self.events.len() as u64 + 1,
            event_type: new.event_type,
            schema_version: new.schema_version,
            occurred_at: new.occurred_at,
            actor: None,
            correlation_id: new.metadata.correlation_id,
            causation_id: None,
            payload: new.payload,
            trace_parent: None,
        };
        *version += 1;
        self.events.push(recorded.clone());
        recorded
    }

    fn user(&mut self, id: &UserId, name: &str, verified: bool) {
        let stream = format!("user-{id}");
        self.push(
            &stream,
            UserRegistered {
                user_id: id.clone(),
                name: UserName::parse(name).unwrap(),
            },
        );
        if verified {
            self.push(
                &stream,
                UserVerified {
                    user_id: id.clone(),
                },
            );
            self.push(
                &format!("chat-{id}"),
                SelfChatCreated {
                    chat_id: ChatId::self_chat_of(id),
                    owner: id.clone(),
                },
            );
        }
    }

    fn personal_chat(&mut self, id: &str, creator: &UserId, partner: &UserId) -> ChatId {
        let chat_id = ChatId::parse(id).unwrap();
        self.push(
            &format!("chat-{id}"),
            PersonalChatCreated {
                chat_id: chat_id.clone(),
                creator: creator.clone(),
                partner: partner.clone(),
            },
        );
        chat_id
    }

    fn message(&mut self, chat: &ChatId, sender: &UserId, text: &str) -> MessageId {
        let id = MessageId::generate();
        self.push(
            &format!("chat-{chat}"),
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
        );
        id
    }
}

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// Every read-model row, for before/after comparisons.
async fn snapshot(db: &Database) -> Vec<String> {
    use sqlx::Row;
    let mut out = Vec::new();
    for (table, key) in [
        ("users", "user_id"),
        ("chats", "chat_id"),
        ("chat_members", "chat_id, user_id"),
        ("messages", "chat_id, version"),
        ("message_reactions", "message_id, emoji, user_id"),
        ("chat_memberships", "chat_id, user_id, since_position"),
        ("projection_checkpoints", "name"),
    ] {
        let sql = format!("SELECT * FROM {table} ORDER BY {key}");
        let rows = sqlx::query(&sql).fetch_all(&db.pool).await.unwrap();
        for row in rows {
            let cols: Vec<String> = (0..row.len())
                .map(|i| {
                    row.try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                        .unwrap_or_else(|_| "NULL".into())
                })
                .collect();
            out.push(format!("{table}: {}", cols.join("|")));
        }
    }
    out
}

async fn applying_a_batch_twice_changes_nothing(f: Fixture) {
    let mut log = Log::default();
    let ada = uid("ada");
    log.user(&ada, "Ada", true);
    let chat = ChatId::self_chat_of(&ada);
    for i in 0..5 {
        log.message(&chat, &ada, &format!("note {i}"));
    }
    let end = f.projector.apply(&log.events).await.unwrap();
    assert_eq!(end, log.events.len() as u64);
    let before = snapshot(&f.db).await;
    assert!(before.len() > 5);
    assert_eq!(f.projector.apply(&log.events).await.unwrap(), end);
    assert_eq!(f.projector.apply(&log.events[2..5]).await.unwrap(), end);
    assert_eq!(
        snapshot(&f.db).await,
        before,
        "re-applied events changed the read models"
    );
    assert_eq!(f.projector.checkpoint().await.unwrap(), end);

    // An overlapping batch applies only what is new.
    let newer = log.message(&chat, &ada, "newer");
    let overlap = &log.events[log.events.len() - 3..];
    f.projector.apply(overlap).await.unwrap();
    let page = queries::message_page(&f.db, &chat, None, 50).await.unwrap();
    assert_eq!(page.messages.len(), 6);
    assert_eq!(page.messages[0].id, newer);
}

async fn pages_are_keyset_newest_first(f: Fixture) {
    let mut log = Log::default();
    let ada = uid("ada");
    log.user(&ada, "Ada", true);
    let chat = ChatId::self_chat_of(&ada);
    let ids: Vec<MessageId> = (0..7)
        .map(|i| log.message(&chat, &ada, &format!("m{i}")))
        .collect();
    let other = uid("bob");
    log.user(&other, "Bob", true);
    let foreign = log.message(&ChatId::self_chat_of(&other), &other, "bob's");
    f.projector.apply(&log.events).await.unwrap();

    let first = queries::message_page(&f.db, &chat, None, 3).await.unwrap();
    let first_ids: Vec<MessageId> = first.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        first_ids,
        vec![ids[6].clone(), ids[5].clone(), ids[4].clone()]
    );
    assert!(first.has_more);
    let next = queries::message_page(&f.db, &chat, Some(&ids[4]), 3)
        .await
        .unwrap();
    assert_eq!(next.messages[0].id, ids[3]);
    let last = queries::message_page(&f.db, &chat, Some(&ids[1]), 3)
        .await
        .unwrap();
    assert_eq!(last.messages.len(), 1);
    assert!(!last.has_more);
    assert!(matches!(
        queries::message_page(&f.db, &chat, Some(&foreign), 3).await,
        Err(queries::QueryError::UnknownMessage)
    ));
    assert!(matches!(
        queries::message_page(&f.db, &chat, Some(&MessageId::parse("nope").unwrap()), 3).await,
        Err(queries::QueryError::UnknownMessage)
    ));
}

/// Replies, edits, deletions and reactions as pages show them, each applied once however often
/// its batch is.
async fn pages_show_replies_edits_deletions_and_reactions(f: Fixture) {
    let mut log = Log::default();
    let (ada, bob) = (uid("ada"), uid("bob"));
    log.user(&ada, "Ada", true);
    log.user(&bob, "Bob", true);
    let chat = log.personal_chat("p1", &ada, &bob);
    let stream = format!("chat-{chat}");
    let first = log.message(&chat, &ada, "first");
    let reply = MessageId::generate();
    log.push(
        &stream,
        MessageSent {
            chat_id: chat.clone(),
            message_id: reply.clone(),
            sender_id: bob.clone(),
            content: Content::parse("answer").unwrap(),
            format: MessageFormat::Text,
            client_id: None,
            reply_to: Some(first.clone()),
            attachments: Vec::new(),
        },
    );
    let edited = log.push(
        &stream,
        MessageEdited {
            chat_id: chat.clone(),
            message_id: first.clone(),
            editor: ada.clone(),
            content: Content::parse("first, better").unwrap(),
        },
    );
    let reaction = |user: &UserId, emoji: &str| ReactionAdded {
        chat_id: chat.clone(),
        message_id: reply.clone(),
        user_id: user.clone(),
        emoji: Emoji::parse(emoji).unwrap(),
    };
    log.push(&stream, reaction(&bob, "👍"));
    log.push(&stream, reaction(&ada, "👍"));
    log.push(&stream, reaction(&ada, "🎉"));
    log.push(
        &stream,
        ReactionRemoved {
            chat_id: chat.clone(),
            message_id: reply.clone(),
            user_id: ada.clone(),
            emoji: Emoji::parse("🎉").unwrap(),
        },
    );
    let gone = log.message(&chat, &bob, "oops");
    log.push(&stream, reaction(&ada, "😮"));
    log.push(
        &stream,
        ReactionAdded {
            message_id: gone.clone(),
            ..reaction(&ada, "😮")
        },
    );
    log.push(
        &stream,
        MessageDeleted {
            chat_id: chat.clone(),
            message_id: gone.clone(),
            deleted_by: bob.clone(),
        },
    );
    // An edit of a deleted message changes nothing (the aggregate refuses it; the read model
    // holds anyway).
    log.push(
        &stream,
        MessageEdited {
            chat_id: chat.clone(),
            message_id: gone.clone(),
            editor: bob.clone(),
            content: Content::parse("back").unwrap(),
        },
    );
    let end = f.projector.apply(&log.events).await.unwrap();
    let once = snapshot(&f.db).await;
    assert_eq!(f.projector.apply(&log.events).await.unwrap(), end);
    assert_eq!(snapshot(&f.db).await, once);

    let page = queries::message_page(&f.db, &chat, None, 10).await.unwrap();
    let [deleted, answer, original] = &page.messages[..] else {
        panic!("three messages: {:?}", page.messages);
    };
    assert_eq!((deleted.id.clone(), deleted.deleted), (gone, true));
    assert_eq!(deleted.content, "");
    assert!(deleted.reactions.is_empty());
    assert_eq!(deleted.edited_at, None);
    assert_eq!(answer.reply_to.as_ref(), Some(&first));
    assert_eq!(
        answer.reactions,
        vec![
            ("👍".to_owned(), vec![bob.clone(), ada.clone()]),
            ("😮".to_owned(), vec![ada.clone()]),
        ]
    );
    assert_eq!(answer.edited_at, None);
    // Bob's answer is unread by Ada; his deleted message is not counted.
    let list = queries::personal_chat_list(&f.db, &ada).await.unwrap();
    assert_eq!(list[0].unread, 1);
    assert_eq!(original.content, "first, better");
    assert_eq!(original.edited_at, Some(edited.occurred_at));
    assert!(!original.deleted && original.reply_to.is_none());
}

/// Delivered and read pointers as message ids: a read delivers too, a pointer never moves back.
async fn receipts_name_the_last_message_delivered_and_read(f: Fixture) {
    let mut log = Log::default();
    let (ada, bob) = (uid("ada"), uid("bob"));
    log.user(&ada, "Ada", true);
    log.user(&bob, "Bob", true);
    let chat = log.personal_chat("p1", &ada, &bob);
    let stream = format!("chat-{chat}");
    let ids: Vec<MessageId> = (0..3)
        .map(|i| log.message(&chat, &ada, &format!("m{i}")))
        .collect();
    let pointer = |version: u64| MessagesDelivered {
        chat_id: chat.clone(),
        reader: bob.clone(),
        up_to_version: version,
    };
    // Versions: 0 the creation, 1..=3 the messages.
    log.push(&stream, pointer(2));
    log.push(&stream, pointer(1));
    f.projector.apply(&log.events).await.unwrap();
    let receipts = queries::receipts(&f.db, &chat, None).await.unwrap();
    let of = |who: &UserId| receipts.iter().find(|r| &r.user == who).cloned().unwrap();
    assert_eq!(
        (of(&bob).delivered, of(&bob).read),
        (Some(ids[1].clone()), None)
    );
    // The sender has read, and so received, their own messages.
    assert_eq!(
        (of(&ada).delivered, of(&ada).read),
        (Some(ids[2].clone()), Some(ids[2].clone()))
    );
    log.push(
        &stream,
        MessageRead {
            chat_id: chat.clone(),
            reader: bob.clone(),
            up_to_version: 3,
        },
    );
    f.projector.apply(&log.events).await.unwrap();
    let only_bob = queries::receipts(&f.db, &chat, Some(&bob)).await.unwrap();
    assert_eq!(only_bob.len(), 1);
    assert_eq!(
        (only_bob[0].delivered.clone(), only_bob[0].read.clone()),
        (Some(ids[2].clone()), Some(ids[2].clone()))
    );
}

async fn search_finds_verified_names_literally(f: Fixture) {
    let mut log = Log::default();
    log.user(&uid("a"), "Ada Lovelace", true);
    log.user(&uid("b"), "ADAM", true);
    log.user(&uid("c"), "Adaline", false);
    log.user(&uid("d"), "100%_ada", true);
    log.user(&uid("e"), "Eve", true);
    log.push(
        "user-e",
        UserRenamed {
            user_id: uid("e"),
            name: UserName::parse("Evada").unwrap(),
        },
    );
    f.projector.apply(&log.events).await.unwrap();

    let names = |v: Vec<queries::UserView>| v.into_iter().map(|u| u.name).collect::<Vec<_>>();
    let found = queries::search_users(&f.db, "ADA", &uid("a"), 8)
        .await
        .unwrap();
    assert_eq!(
        names(found),
        vec!["100%_ada", "ADAM", "Evada"],
        "verified only, not the searcher, by name"
    );
    assert_eq!(
        names(
            queries::search_users(&f.db, "%_", &uid("zz"), 8)
                .await
                .unwrap()
        ),
        vec!["100%_ada"]
    );
    assert_eq!(
        queries::search_users(&f.db, "a", &uid("zz"), 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        queries::search_users(&f.db, "_", &uid("zz"), 8)
            .await
            .unwrap()
            .len(),
        1
    );
    // No name holds a control character; PostgreSQL would refuse a NUL in the pattern.
    assert!(queries::search_users(&f.db, "a\u{0}", &uid("zz"), 8)
        .await
        .unwrap()
        .is_empty());
    let ada = queries::user(&f.db, &uid("a")).await.unwrap().unwrap();
    assert!(ada.verified);
    assert!(
        !queries::user(&f.db, &uid("c"))
            .await
            .unwrap()
            .unwrap()
            .verified
    );
}

async fn chat_lists_follow_membership_and_read_pointers(f: Fixture) {
    let mut log = Log::default();
    let (ada, bob, cy) = (uid("ada"), uid("bob"), uid("cy"));
    for (u, n) in [(&ada, "Ada"), (&bob, "Bob"), (&cy, "Cy")] {
        log.user(u, n, true);
    }
    let pc = log.personal_chat("pc1", &ada, &bob);
    let g = ChatId::parse("g1").unwrap();
    log.push(
        "chat-g1",
        GroupCreated {
            chat_id: g.clone(),
            name: "Team".into(),
            description: "d".into(),
            admin: ada.clone(),
            members: vec![ada.clone(), bob.clone(), cy.clone()],
        },
    );
    log.message(&pc, &ada, "hi bob");
    log.message(&pc, &ada, "are you there");
    log.message(&g, &bob, "hello team");
    f.projector.apply(&log.events).await.unwrap();

    let bob_personal = queries::personal_chat_list(&f.db, &bob).await.unwrap();
    assert_eq!(bob_personal.len(), 1);
    assert_eq!(
        (
            bob_personal[0].partner_name.as_str(),
            bob_personal[0].unread
        ),
        ("Ada", 2)
    );
    assert!(bob_personal[0].last_chat.is_some());
    let ada_personal = queries::personal_chat_list(&f.db, &ada).await.unwrap();
    assert_eq!(
        (ada_personal[0].partner_id.clone(), ada_personal[0].unread),
        (bob.clone(), 0),
        "own messages are read"
    );
    let ada_groups = queries::group_chat_list(&f.db, &ada).await.unwrap();
    assert_eq!(
        (ada_groups[0].name.as_str(), ada_groups[0].unread),
        ("Team", 1)
    );
    assert!(queries::personal_chat_list(&f.db, &cy)
        .await
        .unwrap()
        .is_empty());

    // Bob reads the personal chat up to its last message (version 2); Cy leaves the group.
    log.push(
        "chat-pc1",
        MessageRead {
            chat_id: pc.clone(),
            reader: bob.clone(),
            up_to_version: 2,
        },
    );
    log.push(
        "chat-g1",
        MemberRemoved {
            chat_id: g.clone(),
            member: cy.clone(),
            reason: RemovalReason::Left,
        },
    );
    f.projector.apply(&log.events).await.unwrap();
    assert_eq!(
        queries::personal_chat_list(&f.db, &bob).await.unwrap()[0].unread,
        0
    );
    assert!(queries::group_chat_list(&f.db, &cy)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        queries::group_chat_list(&f.db, &bob).await.unwrap()[0].unread,
        0,
        "own message"
    );
}

async fn run_follows_the_live_log(f: Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_event_store(&infra::db::sqlite_url(&dir.path().join("events.db")))
        .await
        .unwrap();
    let projector = Arc::new(f.projector);
    let (progress_tx, mut progress) = watch::channel(0);
    let (applied_tx, mut applied) = tokio::sync::mpsc::channel(16);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(run(
        store.clone(),
        projector.clone(),
        progress_tx,
        Some(applied_tx),
        stop,
    ));

    let ada = uid("ada");
    let meta = || EventMetadata {
        actor: None,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        trace_parent: None,
    };
    let registered: DomainEvent = UserRegistered {
        user_id: ada.clone(),
        name: UserName::parse("Ada").unwrap(),
    }
    .into();
    let verified: DomainEvent = UserVerified {
        user_id: ada.clone(),
    }
    .into();
    let at = store
        .append(
            "user-ada",
            ExpectedVersion::NoStream,
            vec![
                registered.into_new_event(meta()),
                verified.into_new_event(meta()),
            ],
        )
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        progress.wait_for(|p| *p >= at.position),
    )
    .await
    .unwrap()
    .unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(10), applied.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered.first().map(|e| e.position), Some(1));
    assert!(queries::user(&f.db, &ada).await.unwrap().unwrap().verified);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(projector.checkpoint().await.unwrap(), at.position);
}

/// The topology's projection behind a JetStream stream that no longer reaches back to its
/// checkpoint (it keeps the newest 10 of the first 41 events): it reads the rest from the event
/// store, announces it like any commit, and goes back to the stream for what follows. Its read
/// models end as a projection of the whole log would, and its announcements continue each other
/// from the first event to the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_what_the_stream_dropped_is_read_from_the_event_store() {
    use futures::StreamExt as _;

    let (f, whole) = (postgres().await, postgres().await);
    let dir = tempfile::tempdir().unwrap();
    let store_url = infra::db::sqlite_url(&dir.path().join("events.db"));
    let store = open_event_store(&store_url).await.unwrap();
    let (ada, bob) = (uid("ada"), uid("bob"));
    let mut log = Log::default();
    log.user(&ada, "Ada", true);
    log.user(&bob, "Bob", true);
    let pc = log.personal_chat("pc1", &ada, &bob);
    for i in 0..40 {
        log.message(&pc, if i % 2 == 0 { &ada } else { &bob }, &format!("m{i}"));
    }
    infra::testing::append_recorded(store.as_ref(), &log.events[..41]).await;

    let client = infra::testing::nats_client().await;
    let prefix = infra::testing::unique_prefix();
    let _stream = infra::testing::DeleteEventsStream::new(&client, &prefix);
    let mut announced = client
        .subscribe(infra::subjects::applied(
            &prefix,
            infra::subjects::READ_MODELS,
        ))
        .await
        .unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let relay = tokio::spawn(infra::relay::run(
        store.clone(),
        client.clone(),
        prefix.clone(),
        Some(10),
        stop.clone(),
    ));
    let js = async_nats::jetstream::new(client.clone());
    let mut events = infra::relay::ensure_events_stream(&js, &prefix)
        .await
        .unwrap();
    let relayed = async {
        while infra::relay::last_published(&mut events).await.unwrap() < 41 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), relayed)
        .await
        .expect("the relay reached the 41st event");
    let state = infra::relay::stream_state(&mut events).await.unwrap();
    assert_eq!(state.messages, 10, "the stream holds the newest 10");

    let projector = Arc::new(f.projector);
    let projection = tokio::spawn(projection_service::nats::run(
        client.clone(),
        prefix.clone(),
        projector.clone(),
        Arc::new(projection_service::nats::LazyStore::new(store_url)),
        stop,
    ));
    let reached = |position| {
        let projector = projector.clone();
        async move {
            let wait = async {
                while projector.checkpoint().await.unwrap() < position {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(20), wait)
                .await
                .unwrap_or_else(|_| panic!("the projection did not reach {position}"));
        }
    };
    reached(41).await;
    // Live events after the catch-up come from the stream.
    infra::testing::append_recorded(store.as_ref(), &log.events[41..]).await;
    reached(log.events.len() as u64).await;
    stop_tx.send(true).unwrap();
    relay.await.unwrap().unwrap();
    projection.await.unwrap().unwrap();

    whole
        .projector
        .apply(&store.read_all(0, 1000).await.unwrap())
        .await
        .unwrap();
    assert_eq!(snapshot(&f.db).await, snapshot(&whole.db).await);
    let mut after = None;
    let mut seen = Vec::new();
    while seen.len() < log.events.len() {
        let message = tokio::time::timeout(Duration::from_secs(5), announced.next())
            .await
            .expect("every event announced")
            .unwrap();
        let applied: infra::feed::Applied = serde_json::from_slice(&message.payload).unwrap();
        if let Some(after) = after {
            assert_eq!(applied.after, after, "each announcement continues the last");
        }
        after = Some(applied.position);
        seen.extend(applied.events.iter().map(|e| e.position));
    }
    assert_eq!(seen, (1..=log.events.len() as u64).collect::<Vec<_>>());
}

/// Stretches of membership, in log positions: opened by creation and adds, closed (inclusively)
/// by a removal or the group's deletion, a new one for each return.
async fn memberships_are_exact_stretches(f: Fixture) {
    use projection_service::memberships::{self, Stretch};
    let mut log = Log::default();
    let (ada, bob) = (uid("ada"), uid("bob"));
    log.user(&ada, "Ada", true);
    log.user(&bob, "Bob", true);
    let g = ChatId::parse("g1").unwrap();
    let created = log
        .push(
            "chat-g1",
            GroupCreated {
                chat_id: g.clone(),
                name: "Team".into(),
                description: "d".into(),
                admin: ada.clone(),
                members: vec![ada.clone(), bob.clone()],
            },
        )
        .position;
    let kicked = log
        .push(
            "chat-g1",
            MemberRemoved {
                chat_id: g.clone(),
                member: bob.clone(),
                reason: RemovalReason::Kicked,
            },
        )
        .position;
    log.message(&g, &ada, "without bob");
    let back = log
        .push(
            "chat-g1",
            MemberAdded {
                chat_id: g.clone(),
                member: bob.clone(),
            },
        )
        .position;
    let deleted = log
        .push("chat-g1", GroupDeleted { chat_id: g.clone() })
        .position;
    f.projector.apply(&log.events).await.unwrap();

    let bob_in_g: Vec<Stretch> = memberships::of_user(&f.db, &bob, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.chat_id == g)
        .map(|s| s.stretch)
        .collect();
    assert_eq!(
        bob_in_g,
        vec![
            Stretch {
                since: created,
                until: Some(kicked)
            },
            Stretch {
                since: back,
                until: Some(deleted)
            },
        ]
    );
    // From a later point, only the stretches that reach it.
    let from_back = memberships::of_user(&f.db, &bob, kicked + 1).await.unwrap();
    assert_eq!(
        from_back
            .iter()
            .filter(|s| s.chat_id == g)
            .map(|s| s.stretch.since)
            .collect::<Vec<_>>(),
        vec![back]
    );
    let chat = memberships::of_chat(&f.db, &g, 0).await.unwrap();
    let at = |p: u64| -> Vec<&str> {
        chat.iter()
            .filter(|m| m.stretch.covers(p))
            .map(|m| m.user_id.as_str())
            .collect()
    };
    assert_eq!(
        at(kicked),
        vec!["ada", "bob"],
        "the removal reaches the removed"
    );
    assert_eq!(at(kicked + 1), vec!["ada"]);
    assert_eq!(at(deleted), vec!["ada", "bob"]);
    assert!(at(deleted + 1).is_empty());
    assert_eq!(
        chat.iter()
            .find(|m| m.user_id == bob)
            .map(|m| m.name.as_str()),
        Some("Bob")
    );
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::sqlite().await).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::postgres().await).await;
            })*
        }
    };
}

on_both!(
    applying_a_batch_twice_changes_nothing,
    pages_are_keyset_newest_first,
    pages_show_replies_edits_deletions_and_reactions,
    receipts_name_the_last_message_delivered_and_read,
    search_finds_verified_names_literally,
    chat_lists_follow_membership_and_read_pointers,
    memberships_are_exact_stretches,
    run_follows_the_live_log,
);
