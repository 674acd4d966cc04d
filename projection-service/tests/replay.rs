//! Replay against real databases (SQLite files and a uniquely named PostgreSQL database): the
//! rebuilt read models equal the live ones and are swapped in; an interrupted replay resumes and
//! ends identical; a live model that went wrong is reported, not overwritten (unless forced);
//! events stored under an old schema version replay upcast.

use std::sync::Arc;

use events_schema::events::{
    GroupCreated, MemberAdded, MemberRemoved, MessageDeleted, MessageEdited, MessageFormat,
    MessageRead, MessageSent, MessagesDelivered, PersonalChatCreated, ReactionAdded, RemovalReason,
    SelfChatCreated, UserRegistered, UserVerified,
};
use events_schema::{
    streams, ChatId, Content, DomainEvent, Emoji, EventMetadata, MessageId, UserId, UserName,
};
use infra::db::Database;
use infra::event_store::open_event_store;
use infra::testing::TempPostgres;
use infra::{EventStore, ExpectedVersion};
use projection_service::replay::{replay, ReplayOptions, ReplayOutcome};
use projection_service::Projector;
use sqlx::Row;
use uuid::Uuid;

/// A store and a live read-model database, on SQLite or PostgreSQL.
struct Setup {
    store: Arc<dyn EventStore>,
    live_url: String,
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
    let live_url = format!("sqlite://{}", dir.path().join("chat.db").display());
    Setup {
        store,
        live_url,
        _dir: dir,
        _pg: None,
    }
}

async fn postgres() -> Setup {
    let pg = TempPostgres::create("replay_test").await;
    let store = open_event_store(&pg.url()).await.unwrap();
    Setup {
        store,
        live_url: pg.url(),
        _dir: tempfile::tempdir().unwrap(),
        _pg: Some(pg),
    }
}

async fn append(store: &Arc<dyn EventStore>, stream: &str, event: impl Into<DomainEvent>) {
    let event: DomainEvent = event.into();
    let new = event.into_new_event(EventMetadata {
        actor: None,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        trace_parent: None,
    });
    store
        .append(stream, ExpectedVersion::Any, vec![new])
        .await
        .unwrap();
}

/// Old events first (schema version 1, as checked in), then a few users, chats and `messages`
/// messages of today's schema.
async fn history(store: &Arc<dyn EventStore>, messages: usize) {
    old_events(store).await;
    more_history(store, messages).await;
}

async fn old_events(store: &Arc<dyn EventStore>) {
    let fixture = events_schema::fixtures::v1_personal_chat();
    infra::testing::append_recorded(store.as_ref(), &fixture).await;
}

async fn more_history(store: &Arc<dyn EventStore>, messages: usize) {
    let users: Vec<UserId> = (0..6).map(|_| UserId::generate()).collect();
    for (i, user) in users.iter().enumerate() {
        let stream = streams::user(user);
        let name = UserName::parse(&format!("User {i}")).unwrap();
        append(
            store,
            &stream,
            UserRegistered {
                user_id: user.clone(),
                name,
            },
        )
        .await;
        append(
            store,
            &stream,
            UserVerified {
                user_id: user.clone(),
            },
        )
        .await;
        let chat = ChatId::self_chat_of(user);
        append(
            store,
            &streams::chat(&chat),
            SelfChatCreated {
                chat_id: chat.clone(),
                owner: user.clone(),
            },
        )
        .await;
    }
    let personal = ChatId::personal_between(&users[0], &users[1]);
    append(
        store,
        &streams::chat(&personal),
        PersonalChatCreated {
            chat_id: personal.clone(),
            creator: users[0].clone(),
            partner: users[1].clone(),
        },
    )
    .await;
    let group = ChatId::generate();
    append(
        store,
        &streams::chat(&group),
        GroupCreated {
            chat_id: group.clone(),
            name: "Replayed".into(),
            description: String::new(),
            admin: users[2].clone(),
            members: users[2..5].to_vec(),
        },
    )
    .await;
    let mut previous: Option<(ChatId, MessageId)> = None;
    for i in 0..messages {
        let (chat, sender) = if i % 3 == 0 {
            (&group, &users[2 + i % 3])
        } else {
            (&personal, &users[i % 2])
        };
        let message_id = MessageId::generate();
        // Some answer the message before them when it is of the same chat.
        let reply_to = previous
            .as_ref()
            .filter(|(c, _)| c == chat && i % 5 == 1)
            .map(|(_, m)| m.clone());
        append(
            store,
            &streams::chat(chat),
            MessageSent {
                chat_id: chat.clone(),
                message_id: message_id.clone(),
                sender_id: sender.clone(),
                content: Content::parse(&format!("message {i}")).unwrap(),
                format: MessageFormat::Text,
                client_id: None,
                reply_to,
                attachments: Vec::new(),
            },
        )
        .await;
        changes(store, chat, &message_id, sender, i).await;
        previous = Some((chat.clone(), message_id));
        if i % 50 == 7 {
            append(
                store,
                &streams::chat(&personal),
                MessageRead {
                    chat_id: personal.clone(),
                    reader: users[1].clone(),
                    up_to_version: 2,
                },
            )
            .await;
        }
    }
    append(
        store,
        &streams::chat(&group),
        MemberAdded {
            chat_id: group.clone(),
            member: users[5].clone(),
        },
    )
    .await;
    append(
        store,
        &streams::chat(&group),
        MemberRemoved {
            chat_id: group.clone(),
            member: users[3].clone(),
            reason: RemovalReason::Kicked,
        },
    )
    .await;
}

/// Edits, reactions, deletions and delivered pointers on some of the messages.
async fn changes(
    store: &Arc<dyn EventStore>,
    chat: &ChatId,
    message_id: &MessageId,
    sender: &UserId,
    i: usize,
) {
    let stream = streams::chat(chat);
    let (chat_id, message_id) = (chat.clone(), message_id.clone());
    if i % 11 == 4 {
        let content = Content::parse(&format!("message {i}, edited")).unwrap();
        let editor = sender.clone();
        let edited = MessageEdited {
            chat_id: chat_id.clone(),
            message_id: message_id.clone(),
            editor,
            content,
        };
        append(store, &stream, edited).await;
    }
    if i % 7 == 3 {
        for emoji in ["👍", "🎉"] {
            let user_id = sender.clone();
            let emoji = Emoji::parse(emoji).unwrap();
            let reacted = ReactionAdded {
                chat_id: chat_id.clone(),
                message_id: message_id.clone(),
                user_id,
                emoji,
            };
            append(store, &stream, reacted).await;
        }
    }
    if i % 13 == 6 {
        let deleted_by = sender.clone();
        let deleted = MessageDeleted {
            chat_id: chat_id.clone(),
            message_id: message_id.clone(),
            deleted_by,
        };
        append(store, &stream, deleted).await;
    }
    if i % 17 == 2 {
        let reader = sender.clone();
        append(
            store,
            &stream,
            MessagesDelivered {
                chat_id,
                reader,
                up_to_version: 1,
            },
        )
        .await;
    }
}

/// Projects the whole log into the live tables, as the running projector would.
async fn project_live(store: &Arc<dyn EventStore>, live_url: &str) -> Projector {
    let live = Projector::new(Database::connect(live_url).await.unwrap())
        .await
        .unwrap();
    loop {
        let from = live.checkpoint().await.unwrap();
        let batch = store.read_all(from, 1000).await.unwrap();
        if batch.is_empty() {
            return live;
        }
        live.apply(&batch).await.unwrap();
    }
}

/// Every read-model table, row by row, in key order.
async fn dump(live_url: &str) -> Vec<String> {
    let db = Database::connect(live_url).await.unwrap();
    let mut out = Vec::new();
    for (table, key) in [
        ("projection_checkpoints", "name"),
        ("users", "user_id"),
        ("chats", "chat_id"),
        ("chat_members", "chat_id, user_id"),
        ("messages", "chat_id, version"),
        ("message_reactions", "message_id, emoji, user_id"),
        ("chat_memberships", "chat_id, user_id, since_position"),
    ] {
        let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY {key}"))
            .fetch_all(&db.pool)
            .await
            .unwrap();
        for row in rows {
            let mut line = format!("{table}:");
            for i in 0..row.len() {
                let text = row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        row.try_get::<Option<i64>, _>(i)
                            .ok()
                            .flatten()
                            .map(|n| n.to_string())
                    })
                    .unwrap_or_else(|| "NULL".into());
                line.push_str(&format!(" {text}"));
            }
            out.push(line);
        }
    }
    out
}

fn options(stop_after: Option<u64>, force: bool) -> ReplayOptions {
    ReplayOptions {
        projection: "read_models".into(),
        force,
        stop_after,
    }
}

async fn a_replay_is_identical_to_the_live_models_and_is_swapped_in(setup: Setup) {
    history(&setup.store, 300).await;
    project_live(&setup.store, &setup.live_url).await;
    let before = dump(&setup.live_url).await;
    let outcome = replay(setup.store.clone(), &setup.live_url, &options(None, false))
        .await
        .unwrap();
    let head = setup.store.head().await.unwrap();
    assert_eq!(
        outcome,
        Some(ReplayOutcome::Swapped {
            position: head,
            events: head,
            differed: vec![]
        })
    );
    assert_eq!(dump(&setup.live_url).await, before);
    // The version 1 messages of the fixture were replayed (upcast) like today's.
    assert!(before.iter().any(|l| l.contains("Hello, Grace")));
}

async fn an_interrupted_replay_resumes_and_ends_identical(setup: Setup) {
    history(&setup.store, 600).await;
    project_live(&setup.store, &setup.live_url).await;
    let before = dump(&setup.live_url).await;
    let head = setup.store.head().await.unwrap();
    // Stopped half-way: nothing swapped, the fresh tables keep their checkpoint.
    let half = head / 2;
    assert_eq!(
        replay(
            setup.store.clone(),
            &setup.live_url,
            &options(Some(half), false)
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(dump(&setup.live_url).await, before);
    // More events meanwhile; the live projection takes them too.
    more_history(&setup.store, 50).await;
    project_live(&setup.store, &setup.live_url).await;
    let before = dump(&setup.live_url).await;
    let head = setup.store.head().await.unwrap();
    replay_resumes_to_the_end(
        &setup,
        half,
        head,
        "the second run resumed where the first stopped",
    )
    .await;
    assert_eq!(dump(&setup.live_url).await, before);
}

async fn a_live_model_gone_wrong_is_reported_not_overwritten_unless_forced(setup: Setup) {
    history(&setup.store, 100).await;
    project_live(&setup.store, &setup.live_url).await;
    let good = dump(&setup.live_url).await;
    let db = Database::connect(&setup.live_url).await.unwrap();
    sqlx::query("UPDATE messages SET content = 'tampered' WHERE content = 'message 5'")
        .execute(&db.pool)
        .await
        .unwrap();
    let tampered = dump(&setup.live_url).await;
    assert_ne!(tampered, good);
    match replay(setup.store.clone(), &setup.live_url, &options(None, false))
        .await
        .unwrap()
    {
        Some(ReplayOutcome::Differs { tables, .. }) => {
            assert_eq!(tables, vec!["messages".to_owned()])
        }
        other => panic!("not reported: {other:?}"),
    }
    assert_eq!(dump(&setup.live_url).await, tampered, "nothing swapped");
    match replay(setup.store.clone(), &setup.live_url, &options(None, true))
        .await
        .unwrap()
    {
        Some(ReplayOutcome::Swapped { differed, .. }) => {
            assert_eq!(differed, vec!["messages".to_owned()])
        }
        other => panic!("not forced: {other:?}"),
    }
    assert_eq!(
        dump(&setup.live_url).await,
        good,
        "the rebuilt rows replaced the wrong ones"
    );
}

/// A read model an upgrade added (stretches of membership) starts empty beside the others; a
/// replay fills it from the log and is swapped in without its emptiness counting as a difference.
async fn a_replay_fills_a_read_model_an_upgrade_added(setup: Setup) {
    history(&setup.store, 50).await;
    project_live(&setup.store, &setup.live_url).await;
    let full = dump(&setup.live_url).await;
    assert!(full.iter().any(|l| l.starts_with("chat_memberships:")));
    let db = Database::connect(&setup.live_url).await.unwrap();
    sqlx::query("DELETE FROM chat_memberships")
        .execute(&db.pool)
        .await
        .unwrap();
    match replay(setup.store.clone(), &setup.live_url, &options(None, false))
        .await
        .unwrap()
    {
        Some(ReplayOutcome::Swapped { differed, .. }) => assert_eq!(differed, Vec::<String>::new()),
        other => panic!("not swapped: {other:?}"),
    }
    assert_eq!(dump(&setup.live_url).await, full, "filled from the log");
}

/// Replays to the end and checks it resumed from `from`: it swaps at `head`, every table matching,
/// having applied only the events after `from`.
async fn replay_resumes_to_the_end(setup: &Setup, from: u64, head: u64, why: &str) {
    match replay(setup.store.clone(), &setup.live_url, &options(None, false))
        .await
        .unwrap()
    {
        Some(ReplayOutcome::Swapped {
            position,
            events,
            differed,
        }) => {
            assert_eq!((position, differed), (head, vec![]));
            assert_eq!(events, head - from, "{why}");
        }
        other => panic!("not swapped: {other:?}"),
    }
}

/// `count` messages in one group, appended 500 at a time (a long log, quickly).
async fn many_messages(store: &Arc<dyn EventStore>, count: usize) {
    let user = UserId::generate();
    let stream = streams::user(&user);
    append(
        store,
        &stream,
        UserRegistered {
            user_id: user.clone(),
            name: UserName::parse("Long").unwrap(),
        },
    )
    .await;
    append(
        store,
        &stream,
        UserVerified {
            user_id: user.clone(),
        },
    )
    .await;
    let group = ChatId::generate();
    append(
        store,
        &streams::chat(&group),
        GroupCreated {
            chat_id: group.clone(),
            name: "long".into(),
            description: String::new(),
            admin: user.clone(),
            members: vec![user.clone()],
        },
    )
    .await;
    let mut written = 0;
    while written < count {
        let batch: Vec<_> = (written..(written + 500).min(count))
            .map(|i| {
                DomainEvent::from(MessageSent {
                    chat_id: group.clone(),
                    message_id: MessageId::generate(),
                    sender_id: user.clone(),
                    content: Content::parse(&format!("long {i}")).unwrap(),
                    format: MessageFormat::Text,
                    client_id: None,
                    reply_to: None,
                    attachments: Vec::new(),
                })
                .into_new_event(EventMetadata {
                    actor: Some(user.to_string()),
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    trace_parent: None,
                })
            })
            .collect();
        written += batch.len();
        store
            .append(&streams::chat(&group), ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }
}

/// The fresh tables' checkpoint, read from where the replay builds them (0 while they are not there).
async fn rebuilt_checkpoint(setup: &Setup) -> u64 {
    let url = if setup._pg.is_some() {
        setup.live_url.clone()
    } else {
        let file =
            setup.live_url.strip_prefix("sqlite://").unwrap().to_owned() + "-replay-read_models";
        if !std::path::Path::new(&file).exists() {
            return 0;
        }
        format!("sqlite://{file}")
    };
    let Ok(db) = Database::connect(&url).await else {
        return 0;
    };
    let table = if setup._pg.is_some() {
        "replay_read_models.projection_checkpoints"
    } else {
        "projection_checkpoints"
    };
    let row = sqlx::query(&format!(
        "SELECT position FROM {table} WHERE name = 'read_models'"
    ))
    .fetch_optional(&db.pool)
    .await;
    db.pool.close().await;
    match row {
        Ok(Some(row)) => row.try_get::<i64, _>(0).unwrap_or(0).max(0) as u64,
        _ => 0,
    }
}

async fn a_replay_killed_half_way_resumes_and_ends_identical(setup: Setup) {
    history(&setup.store, 50).await;
    many_messages(&setup.store, 60_000).await;
    project_live(&setup.store, &setup.live_url).await;
    let before = dump(&setup.live_url).await;
    let head = setup.store.head().await.unwrap();
    let store_url = if setup._pg.is_some() {
        setup.live_url.clone()
    } else {
        setup.live_url.replace("chat.db", "events.db")
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_projection-service"))
        .args(["replay", "--all"])
        .env("EVENT_STORE_URL", &store_url)
        .env("DATABASE_URL", &setup.live_url)
        .env("DATA_DIR", setup._dir.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL) once it has rebuilt part of the log, and well before the end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let at_kill = loop {
        let reached = rebuilt_checkpoint(&setup).await;
        if reached > 0 {
            child.kill().await.unwrap();
            break reached;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replay never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let after_kill = rebuilt_checkpoint(&setup).await;
    assert!(
        after_kill < head,
        "killed after the rebuild had ended ({after_kill} of {head})"
    );
    assert_eq!(
        dump(&setup.live_url).await,
        before,
        "a killed replay swaps nothing"
    );
    replay_resumes_to_the_end(
        &setup,
        after_kill,
        head,
        &format!("resumed from the killed run's checkpoint ({at_kill} seen)"),
    )
    .await;
    assert_eq!(dump(&setup.live_url).await, before);
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
    a_replay_is_identical_to_the_live_models_and_is_swapped_in,
    a_replay_fills_a_read_model_an_upgrade_added,
    an_interrupted_replay_resumes_and_ends_identical,
    a_live_model_gone_wrong_is_reported_not_overwritten_unless_forced,
    a_replay_killed_half_way_resumes_and_ends_identical
);
