//! Commands over the machine's real NATS server: a command-service instance serving the queue
//! group and the gateway-side client, each test on its own subject prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use command_service::CommandService;
use events_schema::{
    ChatId, Command, CommandEnvelope, CommandOutcome, Content, RefusalCode, UserId, UserName,
};
use infra::bus::{command_subject, NatsCommands};
use infra::event_store::open_event_store;
use tokio::sync::watch;
use uuid::Uuid;

use infra::testing::{nats_client as client, unique_prefix as prefix};

struct Instance {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn instance(prefix: &str) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let store = open_event_store(&format!(
        "sqlite://{}",
        dir.path().join("events.db").display()
    ))
    .await
    .unwrap();
    let service = Arc::new(CommandService::new(store));
    let (stop, stopped) = watch::channel(false);
    let client = client().await;
    let prefix = prefix.to_owned();
    let task = tokio::spawn(async move {
        command_service::nats::serve(service, client, &prefix, stopped).await
    });
    // The subscription is made by the serving task; give it a moment to reach the server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Instance {
        stop,
        task,
        _dir: dir,
    }
}

fn envelope(actor: &UserId, command: Command) -> CommandEnvelope {
    CommandEnvelope {
        correlation_id: Uuid::now_v7(),
        actor: Some(actor.clone()),
        command,
    }
}

#[tokio::test]
async fn commands_are_decided_by_a_command_service_over_nats() {
    let prefix = prefix();
    let server = instance(&prefix).await;
    let commands = NatsCommands::new(client().await, &prefix);
    let user = UserId::generate();
    let register = Command::RegisterUser {
        user_id: user.clone(),
        name: UserName::parse("Ada").unwrap(),
    };
    assert!(matches!(
        commands.dispatch(&envelope(&user, register)).await,
        CommandOutcome::Accepted(_)
    ));
    let verify = Command::VerifyUser {
        user_id: user.clone(),
    };
    assert!(matches!(
        commands.dispatch(&envelope(&user, verify)).await,
        CommandOutcome::Accepted(_)
    ));
    let send = Command::SendSelfMessage {
        content: Content::parse("over nats").unwrap(),
        client_id: None,
    };
    match commands.dispatch(&envelope(&user, send)).await {
        CommandOutcome::Accepted(a) => {
            assert_eq!(a.chat_id, Some(ChatId::self_chat_of(&user)));
            assert!(a.message_id.is_some());
        }
        other => panic!("expected acceptance, got {other:?}"),
    }
    // A refusal travels back typed.
    let stranger = UserId::generate();
    let send = Command::SendSelfMessage {
        content: Content::parse("x").unwrap(),
        client_id: None,
    };
    match commands.dispatch(&envelope(&stranger, send)).await {
        CommandOutcome::Refused { code, .. } => assert_eq!(code, RefusalCode::NotFound),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An unreadable request is refused, not dropped.
    let raw = client()
        .await
        .request(command_subject(&prefix), "not json".into())
        .await
        .unwrap();
    let outcome: CommandOutcome = serde_json::from_slice(&raw.payload).unwrap();
    assert!(matches!(
        outcome,
        CommandOutcome::Refused {
            code: RefusalCode::BadRequest,
            ..
        }
    ));
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_no_command_service_the_gateway_gets_internal_without_waiting_long() {
    let prefix = prefix();
    let commands = NatsCommands::new(client().await, &prefix);
    let user = UserId::generate();
    let started = Instant::now();
    let outcome = commands
        .dispatch(&envelope(
            &user,
            Command::VerifyUser {
                user_id: user.clone(),
            },
        ))
        .await;
    assert!(
        matches!(
            outcome,
            CommandOutcome::Refused {
                code: RefusalCode::Internal,
                ..
            }
        ),
        "{outcome:?}"
    );
    // "No responders" is immediate; the bound itself is checked below.
    assert!(started.elapsed() < infra::bus::COMMAND_TIMEOUT);
}

#[tokio::test]
async fn a_command_service_that_never_answers_costs_the_timeout_and_no_more() {
    let prefix = prefix();
    // Something is subscribed (so NATS does not say "no responders") but never answers.
    let silent = client().await;
    let _sub = silent
        .queue_subscribe(command_subject(&prefix), infra::bus::command_queue(&prefix))
        .await
        .unwrap();
    silent.flush().await.unwrap();
    let commands = NatsCommands::new(client().await, &prefix);
    let user = UserId::generate();
    let bounded = tokio::time::timeout(
        infra::bus::COMMAND_TIMEOUT + Duration::from_secs(2),
        commands.dispatch(&envelope(
            &user,
            Command::VerifyUser {
                user_id: user.clone(),
            },
        )),
    )
    .await
    .expect("the gateway side gives up by itself");
    assert!(matches!(
        bounded,
        CommandOutcome::Refused {
            code: RefusalCode::Internal,
            ..
        }
    ));
}

#[tokio::test]
async fn with_two_instances_in_the_queue_group_every_request_is_answered() {
    let prefix = prefix();
    // Two instances on separate stores would split one user's streams, so each command here is for
    // a fresh user: what matters is that every request is answered, by exactly one instance.
    let a = instance(&prefix).await;
    let b = instance(&prefix).await;
    let commands = NatsCommands::new(client().await, &prefix);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let commands = commands.clone();
        tasks.push(tokio::spawn(async move {
            let user = UserId::generate();
            let name = UserName::parse(&format!("user {i}")).unwrap();
            commands
                .dispatch(&envelope(
                    &user,
                    Command::RegisterUser {
                        user_id: user.clone(),
                        name,
                    },
                ))
                .await
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), CommandOutcome::Accepted(_)));
    }
    for instance in [a, b] {
        instance.stop.send(true).unwrap();
        instance.task.await.unwrap().unwrap();
    }
}
