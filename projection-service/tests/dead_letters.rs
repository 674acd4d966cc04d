//! Events the projector cannot apply, against real databases: text stored before the values refused
//! NUL projects on PostgreSQL (cleaned); an event the read models refuse, or whose payload does not
//! decode, is parked in `projection_dead_letters` and the events after it project, in-process, over
//! NATS and in a replay; a failure that is not the event's own parks nothing.

use std::sync::Arc;
use std::time::Duration;

use events_schema::events::{SelfChatCreated, UserRegistered, UserVerified};
use events_schema::{
    streams, ChatId, DomainEvent, EventMetadata, MessageId, NewEvent, Position, UserId, UserName,
};
use infra::db::Database;
use infra::event_store::open_event_store;
use infra::testing::TempPostgres;
use infra::{EventStore, ExpectedVersion};
use projection_service::dead_letters::{self, DeadLetter};
use projection_service::replay::{replay, ReplayOptions, ReplayOutcome};
use projection_service::{queries, Projector};
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// An event store and a read-model database on one backend, with a projector on the latter.
struct Setup {
    backend: Backend,
    store: Arc<dyn EventStore>,
    store_url: String,
    reads_url: String,
    db: Database,
    projector: Arc<Projector>,
    _dir: tempfile::TempDir,
    _pg: Option<TempPostgres>,
}

async fn setup(backend: Backend) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (store_url, reads_url, pg) = match backend {
        Backend::Sqlite => (
            infra::db::sqlite_url(&dir.path().join("events.db")),
            infra::db::sqlite_url(&dir.path().join("reads.db")),
            None,
        ),
        Backend::Postgres => {
            let pg = TempPostgres::create("dead_letters_test").await;
            (pg.url(), pg.url(), Some(pg))
        }
    };
    let store = open_event_store(&store_url).await.unwrap();
    let db = Database::connect(&reads_url).await.unwrap();
    let projector = Arc::new(Projector::new(db.clone()).await.unwrap());
    Setup {
        backend,
        store,
        store_url,
        reads_url,
        db,
        projector,
        _dir: dir,
        _pg: pg,
    }
}

/// Makes the read models refuse a message whose content is `poison`, as a constraint refuses data
/// it cannot hold.
async fn refuse_poison(db: &Database, backend: Backend) {
    let sql = match backend {
        Backend::Postgres => {
            "ALTER TABLE messages ADD CONSTRAINT no_poison CHECK (content <> 'poison')"
        }
        Backend::Sqlite => {
            "CREATE TRIGGER no_poison BEFORE INSERT ON messages WHEN NEW.content = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'no_poison'); END"
        }
    };
    sqlx::query(sql).execute(&db.pool).await.unwrap();
}

fn new_event(event_type: &str, schema_version: u32, payload: String) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version,
        occurred_at: events_schema::envelope::now_millis(),
        metadata: EventMetadata {
            actor: None,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            trace_parent: None,
        },
        payload,
    }
}

/// Appends one event as stored, whatever its payload; returns its position.
async fn append(store: &Arc<dyn EventStore>, stream: &str, event: NewEvent) -> Position {
    store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
        .unwrap()
        .position
}

async fn append_domain(store: &Arc<dyn EventStore>, stream: &str, event: impl Into<DomainEvent>) {
    let event: DomainEvent = event.into();
    let new = new_event(event.event_type(), event.schema_version(), event.payload());
    append(store, stream, new).await;
}

/// A verified user with their self chat; returns the chat.
async fn user(store: &Arc<dyn EventStore>, id: &UserId, name: &str) -> ChatId {
    let stream = streams::user(id);
    let name = UserName::parse(name).unwrap();
    let user_id = id.clone();
    append_domain(store, &stream, UserRegistered { user_id, name }).await;
    let user_id = id.clone();
    append_domain(store, &stream, UserVerified { user_id }).await;
    let chat = ChatId::self_chat_of(id);
    let (chat_id, owner) = (chat.clone(), id.clone());
    append_domain(
        store,
        &streams::chat(&chat),
        SelfChatCreated { chat_id, owner },
    )
    .await;
    chat
}

/// A message as a hand-made payload, so its content is stored whatever today's values allow;
/// returns its position and the event.
async fn message(
    store: &Arc<dyn EventStore>,
    chat: &ChatId,
    sender: &UserId,
    content: &str,
) -> (Position, NewEvent) {
    let payload = json!({
        "chatId": chat.as_str(),
        "messageId": MessageId::generate().as_str(),
        "senderId": sender.as_str(),
        "content": content,
        "format": "text",
    });
    let event = new_event("MessageSent", 2, payload.to_string());
    (
        append(store, &streams::chat(chat), event.clone()).await,
        event,
    )
}

/// The chat's message contents, newest first.
async fn contents(db: &Database, chat: &ChatId) -> Vec<String> {
    let page = queries::message_page(db, chat, None, 50).await.unwrap();
    page.messages.into_iter().map(|m| m.content).collect()
}

/// Applies the whole log, a batch at a time, as a projector following it would.
async fn project_all(s: &Setup) -> Position {
    loop {
        let from = s.projector.checkpoint().await.unwrap();
        let batch = s.store.read_all(from, 1000).await.unwrap();
        if batch.is_empty() {
            return from;
        }
        s.projector.apply(&batch).await.unwrap();
    }
}

/// Waits until the projector's checkpoint reaches `position`.
async fn reached(projector: &Projector, position: Position) {
    let wait = async {
        while projector.checkpoint().await.unwrap() < position {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("the projector did not reach {position}: it is stalled"));
}

/// The one parked event, checked to be `event` at `position` and refused for `because`.
fn assert_parked(parked: &[DeadLetter], position: Position, event: &NewEvent, because: &str) {
    assert_eq!(parked.len(), 1, "{parked:?}");
    let letter = &parked[0];
    assert_eq!(
        (
            letter.position,
            letter.event_id.as_str(),
            letter.event_type.as_str()
        ),
        (position, event.event_id.to_string().as_str(), "MessageSent")
    );
    assert!(letter.error.contains(because), "{}", letter.error);
    assert!(letter.parked_at > 0);
}

/// The reproduced stall: text with NUL (and other C0 controls), stored before the values refused
/// it, in a message, a user's name and a group's name and description. The in-process projector
/// carries on past them; PostgreSQL holds each NUL as U+FFFD, SQLite the text as stored.
async fn text_stored_before_the_rule_projects(s: Setup) {
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    message(&s.store, &chat, &ada, "a\u{0}b\u{1}c").await;
    let bob = UserId::parse("bob").unwrap();
    let payload = json!({"userId": "bob", "name": "B\u{0}b"}).to_string();
    append(
        &s.store,
        &streams::user(&bob),
        new_event("UserRegistered", 1, payload),
    )
    .await;
    let group = ChatId::parse("g1").unwrap();
    let payload = json!({
        "chatId": "g1", "name": "Te\u{0}am", "description": "x\u{0}y", "admin": "ada",
        "members": ["ada"],
    });
    append(
        &s.store,
        &streams::chat(&group),
        new_event("GroupCreated", 1, payload.to_string()),
    )
    .await;
    let (head, _) = message(&s.store, &chat, &ada, "after").await;

    let (progress, mut progressed) = watch::channel(0);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(projection_service::run(
        s.store.clone(),
        s.projector.clone(),
        progress,
        None,
        stop,
    ));
    tokio::time::timeout(Duration::from_secs(20), progressed.wait_for(|p| *p >= head))
        .await
        .expect("the projector stalled on the text")
        .unwrap();
    stop_tx.send(true).unwrap();
    task.await.unwrap().unwrap();

    let nul = match s.backend {
        Backend::Postgres => '\u{FFFD}',
        Backend::Sqlite => '\u{0}',
    };
    assert_eq!(
        contents(&s.db, &chat).await,
        vec!["after".to_owned(), format!("a{nul}b\u{1}c")]
    );
    let bob = queries::user(&s.db, &bob).await.unwrap().unwrap();
    assert_eq!(bob.name, format!("B{nul}b"));
    let group = queries::chat(&s.db, &group).await.unwrap().unwrap();
    assert_eq!(
        (group.name, group.description),
        (format!("Te{nul}am"), format!("x{nul}y"))
    );
    assert_eq!(dead_letters::list(&s.db).await.unwrap(), vec![]);
}

/// One batch holding a message the read models refuse: it is tried alone a few times, parked with
/// the checkpoint passing it, and the messages around it project. Applying the log again changes
/// nothing.
async fn an_event_the_read_models_refuse_is_parked(s: Setup) {
    refuse_poison(&s.db, s.backend).await;
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    message(&s.store, &chat, &ada, "before").await;
    let (poison, event) = message(&s.store, &chat, &ada, "poison").await;
    let (head, _) = message(&s.store, &chat, &ada, "after").await;
    let all = s.store.read_all(0, 100).await.unwrap();
    assert_eq!(s.projector.apply(&all).await.unwrap(), head);
    assert_eq!(contents(&s.db, &chat).await, vec!["after", "before"]);
    let parked = dead_letters::list(&s.db).await.unwrap();
    assert_parked(&parked, poison, &event, "no_poison");

    assert_eq!(s.projector.apply(&all).await.unwrap(), head);
    assert_eq!(dead_letters::list(&s.db).await.unwrap(), parked);
    assert_eq!(
        dead_letters::degraded(&s.db).await.as_deref(),
        Some("1 event parked in projection_dead_letters (the read models lack its effect)")
    );
}

/// Payloads that do not decode (malformed, an unknown type, a version from the future) are parked
/// at once, in the batch's own transaction.
async fn an_undecodable_event_is_parked(s: Setup) {
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    let stream = streams::chat(&chat);
    let malformed = append(
        &s.store,
        &stream,
        new_event("MessageSent", 2, r#"{"chatId":5}"#.into()),
    )
    .await;
    let unknown = append(&s.store, &stream, new_event("ChatArchived", 1, "{}".into())).await;
    let future = append(&s.store, &stream, new_event("MessageSent", 9, "{}".into())).await;
    let (head, _) = message(&s.store, &chat, &ada, "after").await;
    assert_eq!(project_all(&s).await, head);
    assert_eq!(contents(&s.db, &chat).await, vec!["after"]);
    let parked: Vec<(Position, String, String)> = dead_letters::list(&s.db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.position, d.event_type, d.error))
        .collect();
    assert_eq!(parked.len(), 3, "{parked:?}");
    assert_eq!(
        (parked[0].0, parked[0].1.as_str()),
        (malformed, "MessageSent")
    );
    assert!(parked[0].2.starts_with("malformed MessageSent payload"));
    assert_eq!(
        parked[1],
        (
            unknown,
            "ChatArchived".into(),
            "unknown event type \"ChatArchived\"".into()
        )
    );
    assert_eq!(
        parked[2],
        (
            future,
            "MessageSent".into(),
            "MessageSent has no schema version 9".into()
        )
    );
}

/// A failure that would meet every event alike (here a table gone; a lost connection is another)
/// is the projector's, not the event's: nothing is parked, the checkpoint stays, the caller
/// retries.
async fn a_failure_not_of_the_event_parks_nothing(s: Setup) {
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    let at = project_all(&s).await;
    message(&s.store, &chat, &ada, "hello").await;
    sqlx::query("DROP TABLE messages")
        .execute(&s.db.pool)
        .await
        .unwrap();
    let all = s.store.read_all(0, 100).await.unwrap();
    assert!(s.projector.apply(&all).await.is_err());
    assert_eq!(s.projector.checkpoint().await.unwrap(), at);
    assert_eq!(dead_letters::list(&s.db).await.unwrap(), vec![]);
    s.db.pool.close().await;
    assert!(s.projector.apply(&all).await.is_err(), "the pool is closed");
}

/// A replay follows the same policy: an event that does not decode is parked in the rebuilt
/// tables as in the live ones, and they match.
async fn a_replay_parks_what_the_live_projection_parked(s: Setup) {
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    let malformed = append(
        &s.store,
        &streams::chat(&chat),
        new_event("MessageSent", 2, "[]".into()),
    )
    .await;
    message(&s.store, &chat, &ada, "after").await;
    let head = project_all(&s).await;
    match replay(s.store.clone(), &s.reads_url, &options(false))
        .await
        .unwrap()
    {
        Some(ReplayOutcome::Swapped {
            position, differed, ..
        }) => assert_eq!((position, differed), (head, vec![])),
        other => panic!("not swapped: {other:?}"),
    }
    let parked = dead_letters::list(&s.db).await.unwrap();
    assert_eq!(
        parked.iter().map(|d| d.position).collect::<Vec<_>>(),
        vec![malformed]
    );
    assert_eq!(contents(&s.db, &chat).await, vec!["after"]);
}

/// An event parked live that the rebuilt tables can apply (what a fixed projector does) is reported
/// as a difference, and a forced swap brings it back and empties the list.
async fn a_replay_that_can_apply_a_parked_event_brings_it_back(s: Setup) {
    refuse_poison(&s.db, s.backend).await;
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    message(&s.store, &chat, &ada, "poison").await;
    project_all(&s).await;
    assert_eq!(dead_letters::count(&s.db).await.unwrap(), 1);
    match replay(s.store.clone(), &s.reads_url, &options(false))
        .await
        .unwrap()
    {
        Some(ReplayOutcome::Differs { tables, .. }) => {
            // The message, and what it moves: the chat's newest message, the sender's pointer.
            let differ = [
                "projection_dead_letters",
                "chats",
                "chat_members",
                "messages",
            ];
            assert_eq!(tables, differ)
        }
        other => panic!("not reported: {other:?}"),
    }
    // The live tables refuse it still; the fix here is to lift the refusal.
    let lift = match s.backend {
        Backend::Postgres => "ALTER TABLE messages DROP CONSTRAINT no_poison",
        Backend::Sqlite => "DROP TRIGGER no_poison",
    };
    sqlx::query(lift).execute(&s.db.pool).await.unwrap();
    let swapped = replay(s.store.clone(), &s.reads_url, &options(true))
        .await
        .unwrap();
    assert!(
        matches!(swapped, Some(ReplayOutcome::Swapped { .. })),
        "{swapped:?}"
    );
    assert_eq!(contents(&s.db, &chat).await, vec!["poison"]);
    assert_eq!(dead_letters::count(&s.db).await.unwrap(), 0);
}

fn options(force: bool) -> ReplayOptions {
    ReplayOptions {
        projection: "read_models".into(),
        force,
        stop_after: None,
    }
}

/// The production topology's projection (JetStream in, PostgreSQL out) parks the refused event and
/// projects what follows it from the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_refused_event_is_parked_and_the_next_ones_project() {
    let s = setup(Backend::Postgres).await;
    refuse_poison(&s.db, s.backend).await;
    let client = infra::testing::nats_client().await;
    let prefix = infra::testing::unique_prefix();
    let _stream = infra::testing::DeleteEventsStream::new(&client, &prefix);
    let (stop_tx, stop) = watch::channel(false);
    let relay = tokio::spawn(infra::relay::run(
        s.store.clone(),
        client.clone(),
        prefix.clone(),
        None,
        stop.clone(),
    ));
    let projection = tokio::spawn(projection_service::nats::run(
        client.clone(),
        prefix.clone(),
        s.projector.clone(),
        Arc::new(projection_service::nats::LazyStore::new(
            s.store_url.clone(),
        )),
        stop,
    ));
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    let (poison, event) = message(&s.store, &chat, &ada, "poison").await;
    let (head, _) = message(&s.store, &chat, &ada, "after").await;
    reached(&s.projector, head).await;
    stop_tx.send(true).unwrap();
    relay.await.unwrap().unwrap();
    projection.await.unwrap().unwrap();
    assert_eq!(contents(&s.db, &chat).await, vec!["after"]);
    let parked = dead_letters::list(&s.db).await.unwrap();
    assert_parked(&parked, poison, &event, "no_poison");
}

/// The all-in-one projector (in-process, SQLite) parks the refused event and goes on following
/// the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_a_refused_event_is_parked_and_the_next_ones_project() {
    let s = setup(Backend::Sqlite).await;
    refuse_poison(&s.db, s.backend).await;
    let (progress, _) = watch::channel(0);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(projection_service::run(
        s.store.clone(),
        s.projector.clone(),
        progress,
        None,
        stop,
    ));
    let ada = UserId::parse("ada").unwrap();
    let chat = user(&s.store, &ada, "Ada").await;
    let (poison, event) = message(&s.store, &chat, &ada, "poison").await;
    let (head, _) = message(&s.store, &chat, &ada, "after").await;
    reached(&s.projector, head).await;
    stop_tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(contents(&s.db, &chat).await, vec!["after"]);
    assert_parked(
        &dead_letters::list(&s.db).await.unwrap(),
        poison,
        &event,
        "no_poison",
    );
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::setup(super::Backend::Sqlite).await).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::setup(super::Backend::Postgres).await).await;
            })*
        }
    };
}

on_both!(
    text_stored_before_the_rule_projects,
    an_event_the_read_models_refuse_is_parked,
    an_undecodable_event_is_parked,
    a_failure_not_of_the_event_parks_nothing,
    a_replay_parks_what_the_live_projection_parked,
    a_replay_that_can_apply_a_parked_event_brings_it_back,
);
