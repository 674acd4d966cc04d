//! Design target: deciding `send-personal-message` on a chat with 100,000 stored messages costs the
//! same as on an empty one. Measured end to end through `CommandService::handle` on the SQLite
//! event store (decide + durable append), and for the decision alone.
//!
//!   cargo bench -p command-service --bench decide

use std::sync::Arc;
use std::time::Instant;

use command_service::domain::chat::{Chat, ChatCommand};
use command_service::domain::Aggregate;
use command_service::CommandService;
use criterion::{criterion_group, criterion_main, Criterion};
use events_schema::events::{MessageFormat, MessageSent, PersonalChatCreated};
use events_schema::{
    ChatId, ChatKind, Command, CommandEnvelope, CommandOutcome, Content, DomainEvent,
    EventMetadata, MessageId, RecordedEvent, UserId,
};
use infra::event_store::open_event_store;
use infra::{EventStore, ExpectedVersion};
use uuid::Uuid;

const BIG: usize = 100_000;

fn meta() -> EventMetadata {
    EventMetadata {
        actor: None,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        trace_parent: None,
    }
}

fn message(chat: &ChatId, sender: &UserId, i: usize) -> DomainEvent {
    MessageSent {
        chat_id: chat.clone(),
        message_id: MessageId::generate(),
        sender_id: sender.clone(),
        content: Content::parse(&format!("message {i}")).unwrap(),
        format: MessageFormat::Text,
        client_id: None,
        reply_to: None,
        attachments: Vec::new(),
    }
    .into()
}

async fn chat_with(store: &Arc<dyn EventStore>, a: &UserId, b: &UserId, messages: usize) -> ChatId {
    let chat = ChatId::generate();
    let stream = format!("chat-{chat}");
    let created: DomainEvent = PersonalChatCreated {
        chat_id: chat.clone(),
        creator: a.clone(),
        partner: b.clone(),
    }
    .into();
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![created.into_new_event(meta())],
        )
        .await
        .unwrap();
    for start in (0..messages).step_by(1000) {
        let batch = (start..(start + 1000).min(messages))
            .map(|i| message(&chat, a, i).into_new_event(meta()))
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }
    chat
}

fn send(chat: &ChatId, sender: &UserId) -> CommandEnvelope {
    CommandEnvelope {
        correlation_id: Uuid::now_v7(),
        actor: Some(sender.clone()),
        command: Command::SendMessage {
            chat_id: chat.clone(),
            kind: ChatKind::Personal,
            content: Content::parse("bench").unwrap(),
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
        },
        trace_parent: None,
    }
}

fn end_to_end(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (service, empty, big, sender) = rt.block_on(async {
        let store = open_event_store(&format!(
            "sqlite://{}",
            dir.path().join("events.db").display()
        ))
        .await
        .unwrap();
        let (a, b) = (UserId::generate(), UserId::generate());
        let empty = chat_with(&store, &a, &b, 0).await;
        let big = chat_with(&store, &a, &b, BIG).await;
        let service = CommandService::new(store);
        // The first command on a stream loads it once (a cold cache after a restart); after that the
        // state is cached and only caught up from its version.
        for chat in [&empty, &big] {
            let started = Instant::now();
            let outcome = service.handle(send(chat, &a)).await;
            assert!(
                matches!(outcome, CommandOutcome::Accepted(_)),
                "{outcome:?}"
            );
            eprintln!(
                "first command on {chat}: {:?} (cold load)",
                started.elapsed()
            );
        }
        (service, empty, big, a)
    });
    let service = Arc::new(service);
    let mut group = c.benchmark_group("send_personal_message_end_to_end");
    for (name, chat) in [("chat_with_100k_messages", big), ("empty_chat", empty)] {
        let service = service.clone();
        let sender = sender.clone();
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let service = service.clone();
                let command = send(&chat, &sender);
                async move { service.handle(command).await }
            })
        });
    }
    group.finish();
}

fn recorded(event: &DomainEvent, i: usize) -> RecordedEvent {
    RecordedEvent {
        event_id: Uuid::nil(),
        stream: "chat-bench".into(),
        version: i as u64,
        position: i as u64 + 1,
        event_type: event.event_type().into(),
        schema_version: 1,
        occurred_at: events_schema::envelope::now_millis(),
        actor: None,
        correlation_id: Uuid::nil(),
        causation_id: None,
        payload: String::new(),
        trace_parent: None,
    }
}

fn decision_only(c: &mut Criterion) {
    let (a, b) = (UserId::generate(), UserId::generate());
    let chat = ChatId::generate();
    let state_with = |messages: usize| {
        let mut state = Chat::default();
        let created: DomainEvent = PersonalChatCreated {
            chat_id: chat.clone(),
            creator: a.clone(),
            partner: b.clone(),
        }
        .into();
        state.apply(&created, &recorded(&created, 0));
        for i in 0..messages {
            let e = message(&chat, &a, i);
            state.apply(&e, &recorded(&e, i + 1));
        }
        state
    };
    let send = ChatCommand::Send {
        kind: ChatKind::Personal,
        sender: a.clone(),
        content: Content::parse("bench").unwrap(),
        client_id: None,
        reply_to: None,
        message_id: MessageId::generate(),
        attachments: Vec::new(),
    };
    let mut group = c.benchmark_group("send_personal_message_decision");
    for (name, state) in [
        ("empty_chat", state_with(0)),
        ("chat_with_100k_messages", state_with(BIG)),
    ] {
        group.bench_function(name, |bench| bench.iter(|| state.decide(&send)));
    }
    group.finish();
}

criterion_group!(benches, decision_only, end_to_end);
criterion_main!(benches);
