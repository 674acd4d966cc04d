//! The command-service against the real SQLite event store.

use std::sync::Arc;

use command_service::CommandService;
use events_schema::{
    streams, ChatId, ClientId, Command, CommandEnvelope, CommandOutcome, Content, RefusalCode,
    UserId, UserName,
};
use infra::event_store::open_event_store;
use infra::EventStore;
use uuid::Uuid;

async fn store(dir: &tempfile::TempDir) -> Arc<dyn EventStore> {
    open_event_store(&format!(
        "sqlite://{}",
        dir.path().join("events.db").display()
    ))
    .await
    .unwrap()
}

fn envelope(actor: Option<&UserId>, command: Command) -> CommandEnvelope {
    CommandEnvelope {
        correlation_id: Uuid::now_v7(),
        actor: actor.cloned(),
        command,
        trace_parent: None,
    }
}

async fn verified_user(service: &CommandService) -> UserId {
    let user = UserId::generate();
    let name = UserName::parse("Ada").unwrap();
    let register = service
        .handle(envelope(
            None,
            Command::RegisterUser {
                user_id: user.clone(),
                name,
            },
        ))
        .await;
    assert!(
        matches!(register, CommandOutcome::Accepted(_)),
        "{register:?}"
    );
    let verify = service
        .handle(envelope(
            Some(&user),
            Command::VerifyUser {
                user_id: user.clone(),
            },
        ))
        .await;
    assert!(matches!(verify, CommandOutcome::Accepted(_)), "{verify:?}");
    user
}

fn send(user: &UserId, text: &str, client_id: Option<&str>) -> CommandEnvelope {
    envelope(
        Some(user),
        Command::SendSelfMessage {
            content: Content::parse(text).unwrap(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            attachments: Vec::new(),
        },
    )
}

#[tokio::test]
async fn verification_creates_the_self_chat_once_and_notes_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = CommandService::new(store.clone());
    let user = verified_user(&service).await;
    // Verifying again writes nothing new.
    let before = store.head().await.unwrap();
    let again = service
        .handle(envelope(
            Some(&user),
            Command::VerifyUser {
                user_id: user.clone(),
            },
        ))
        .await;
    assert!(matches!(again, CommandOutcome::Accepted(_)));
    assert_eq!(store.head().await.unwrap(), before);

    let CommandOutcome::Accepted(accepted) = service.handle(send(&user, "hello", None)).await
    else {
        panic!("refused")
    };
    assert_eq!(accepted.chat_id, Some(ChatId::self_chat_of(&user)));
    assert!(accepted.message_id.is_some() && accepted.occurred_at.is_some());
    assert_eq!(accepted.position, store.head().await.unwrap());
    let chat = store
        .read_stream(&streams::chat(&ChatId::self_chat_of(&user)), 0, 10)
        .await
        .unwrap();
    let types: Vec<_> = chat.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["SelfChatCreated", "MessageSent"]);
}

#[tokio::test]
async fn refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = CommandService::new(store.clone());
    let stranger = UserId::generate();
    let head = store.head().await.unwrap();
    let outcome = service.handle(send(&stranger, "hi", None)).await;
    assert!(
        matches!(
            outcome,
            CommandOutcome::Refused {
                code: RefusalCode::NotFound,
                ..
            }
        ),
        "{outcome:?}"
    );
    let anonymous = envelope(
        None,
        Command::SendSelfMessage {
            content: Content::parse("hi").unwrap(),
            client_id: None,
            attachments: Vec::new(),
        },
    );
    assert!(matches!(
        service.handle(anonymous).await,
        CommandOutcome::Refused {
            code: RefusalCode::Forbidden,
            ..
        }
    ));
    let verify = service
        .handle(envelope(None, Command::VerifyUser { user_id: stranger }))
        .await;
    assert!(matches!(
        verify,
        CommandOutcome::Refused {
            code: RefusalCode::NotFound,
            ..
        }
    ));
    assert_eq!(store.head().await.unwrap(), head);
}

#[tokio::test]
async fn a_client_id_retry_stores_nothing_and_answers_the_first_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = CommandService::new(store.clone());
    let user = verified_user(&service).await;
    let CommandOutcome::Accepted(first) = service.handle(send(&user, "once", Some("k1"))).await
    else {
        panic!()
    };
    // A fresh service (as after a restart) rebuilds the window from the stream.
    let restarted = CommandService::new(store.clone());
    let CommandOutcome::Accepted(again) = restarted.handle(send(&user, "once", Some("k1"))).await
    else {
        panic!()
    };
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.position, first.position);
    assert_eq!(store.head().await.unwrap(), first.position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_racing_on_one_chat_both_succeed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let a = Arc::new(CommandService::new(store.clone()));
    let b = Arc::new(CommandService::new(store.clone()));
    let user = verified_user(&a).await;
    let tasks = (0..40).map(|i| {
        let service = if i % 2 == 0 { a.clone() } else { b.clone() };
        let command = send(&user, &format!("note {i}"), None);
        tokio::spawn(async move { service.handle(command).await })
    });
    for outcome in futures_join(tasks).await {
        assert!(
            matches!(outcome, CommandOutcome::Accepted(_)),
            "{outcome:?}"
        );
    }
    let chat = store
        .read_stream(&streams::chat(&ChatId::self_chat_of(&user)), 0, 100)
        .await
        .unwrap();
    assert_eq!(chat.len(), 41);
    assert!(chat.iter().enumerate().all(|(i, e)| e.version == i as u64));
}

/// Spawns every task first (the iterator is lazy), then waits for them in order.
async fn futures_join<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let tasks: Vec<_> = tasks.collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// A flood of sends to one chat is decided in batches, one append each: every send gets its own
/// answer, a `ClientId` repeated inside the flood is stored once, and the stream stays gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_one_chat_is_appended_in_batches_with_one_answer_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let service = Arc::new(CommandService::new(store.clone()));
    let user = verified_user(&service).await;
    let tasks = (0..240).map(|i| {
        let service = service.clone();
        // Sends 200..240 repeat the ClientIds of sends 0..40.
        let key = (!(40..200).contains(&i)).then(|| format!("k{}", i % 200));
        let command = send(&user, &format!("note {i}"), key.as_deref());
        tokio::spawn(async move { service.handle(command).await })
    });
    let mut accepted = Vec::new();
    for outcome in futures_join(tasks).await {
        let CommandOutcome::Accepted(a) = outcome else {
            panic!("{outcome:?}")
        };
        accepted.push(a);
    }
    let ids: std::collections::HashSet<_> = accepted.iter().map(|a| a.message_id.clone()).collect();
    assert_eq!(
        ids.len(),
        200,
        "each ClientId repeat answers with the first send's id"
    );
    for i in 0..40 {
        assert_eq!(accepted[i].message_id, accepted[200 + i].message_id);
    }
    let writes: std::collections::HashSet<_> = accepted.iter().map(|a| a.position).collect();
    assert!(writes.len() < 100, "{} appends for 240 sends", writes.len());
    let head = store.head().await.unwrap();
    assert!(accepted
        .iter()
        .all(|a| a.position > 0 && a.position <= head));
    let chat = store
        .read_stream(&streams::chat(&ChatId::self_chat_of(&user)), 0, 1000)
        .await
        .unwrap();
    assert_eq!(chat.len(), 201);
    assert!(chat.iter().enumerate().all(|(i, e)| e.version == i as u64));
}
