//! Commands over the machine's real NATS server: a command-service instance serving the queue
//! group and the gateway-side client, each test on its own subject prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use command_service::CommandService;
use events_schema::{
    ChatId, Command, CommandEnvelope, CommandOutcome, Content, RefusalCode, UserId, UserName,
};
use futures::StreamExt;
use infra::bus::{NatsCommands, COMMANDS_IN_FLIGHT};
use infra::event_store::open_event_store;
use infra::subjects::{command_queue, commands as command_subject};
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
        command_service::transport::nats::serve(service, client, &prefix, stopped).await
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
        trace_parent: None,
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
        attachments: Vec::new(),
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
        attachments: Vec::new(),
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
async fn with_no_command_service_the_gateway_gets_internal_within_the_bound() {
    let prefix = prefix();
    let commands = NatsCommands::new(client().await, &prefix);
    let user = UserId::generate();
    let outcome = tokio::time::timeout(
        infra::bus::COMMAND_TIMEOUT + Duration::from_secs(1),
        commands.dispatch(&envelope(
            &user,
            Command::VerifyUser {
                user_id: user.clone(),
            },
        )),
    )
    .await
    .expect("the gateway side gives up by itself");
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
}

/// A restart of the only instance (or a rolling upgrade) leaves a moment with nobody subscribed.
/// NATS then answers "no responders": nothing was decided, so the gateway asks again, and a
/// command sent in that moment is decided by the instance that comes.
#[tokio::test]
async fn a_command_sent_while_no_instance_runs_is_decided_by_the_one_that_comes() {
    let prefix = prefix();
    let commands = NatsCommands::new(client().await, &prefix);
    let user = UserId::generate();
    let name = UserName::parse("late").unwrap();
    let sent = {
        let commands = commands.clone();
        let command = envelope(
            &user,
            Command::RegisterUser {
                user_id: user.clone(),
                name,
            },
        );
        tokio::spawn(async move { commands.dispatch(&command).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!sent.is_finished(), "answered before any instance ran");
    let server = instance(&prefix).await;
    let outcome = sent.await.unwrap();
    assert!(
        matches!(outcome, CommandOutcome::Accepted(_)),
        "{outcome:?}"
    );
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_command_service_that_never_answers_costs_the_timeout_and_no_more() {
    let prefix = prefix();
    // Something is subscribed (so NATS does not say "no responders") but never answers.
    let _silent = stand_in(&prefix).await;
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

/// Answers one request the way a command-service would be read by the gateway: each command with a
/// `not-found` refusal carrying its correlation id, in the request's shape (one outcome for one
/// command, an array for a batch). Returns how many commands the request carried.
async fn answer_with_correlation_ids(
    nats: &async_nats::Client,
    request: async_nats::Message,
) -> usize {
    let echo = |e: &CommandEnvelope| {
        CommandOutcome::refused(RefusalCode::NotFound, e.correlation_id.to_string())
    };
    let (count, body) = if request.payload.first() == Some(&b'[') {
        let batch: Vec<CommandEnvelope> = serde_json::from_slice(&request.payload).unwrap();
        let outcomes: Vec<CommandOutcome> = batch.iter().map(echo).collect();
        (batch.len(), serde_json::to_vec(&outcomes).unwrap())
    } else {
        let single: CommandEnvelope = serde_json::from_slice(&request.payload).unwrap();
        (1, serde_json::to_vec(&echo(&single)).unwrap())
    };
    nats.publish(request.reply.unwrap(), body.into())
        .await
        .unwrap();
    count
}

/// A raw member of the command-service queue group on the real NATS server, for tests that decide
/// themselves when, or whether, requests are answered.
async fn stand_in(prefix: &str) -> (async_nats::Client, async_nats::Subscriber) {
    let nats = client().await;
    let requests = nats
        .queue_subscribe(command_subject(prefix), command_queue(prefix))
        .await
        .unwrap();
    nats.flush().await.unwrap();
    (nats, requests)
}

/// Dispatches a fresh user's `VerifyUser` on a task of its own: its correlation id and outcome.
fn spawn_verify(commands: &NatsCommands) -> tokio::task::JoinHandle<(Uuid, CommandOutcome)> {
    let commands = commands.clone();
    let user = UserId::generate();
    let command = envelope(
        &user,
        Command::VerifyUser {
            user_id: user.clone(),
        },
    );
    tokio::spawn(async move { (command.correlation_id, commands.dispatch(&command).await) })
}

#[tokio::test]
async fn commands_queued_behind_busy_requests_leave_together_and_each_gets_its_own_outcome() {
    let prefix = prefix();
    // A stand-in command-service, so that the test decides when requests are answered.
    let (responder, mut requests) = stand_in(&prefix).await;
    let commands = NatsCommands::new(client().await, &prefix);
    // Every slot taken by a request the stand-in holds (one command each: the next is dispatched
    // once the one before has arrived).
    let mut tasks = Vec::new();
    let mut held = Vec::new();
    while held.len() < COMMANDS_IN_FLIGHT {
        tasks.push(spawn_verify(&commands));
        held.push(requests.next().await.unwrap());
    }
    assert!(
        held.iter().all(|r| r.payload.first() == Some(&b'{')),
        "one command each while slots are free"
    );
    // These queue behind them (the pause lets every one reach the queue)...
    tasks.extend((0..20).map(|_| spawn_verify(&commands)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for request in held {
        assert_eq!(answer_with_correlation_ids(&responder, request).await, 1);
    }
    // ...and leave together as soon as a slot frees.
    let batch = requests.next().await.unwrap();
    assert_eq!(answer_with_correlation_ids(&responder, batch).await, 20);
    for task in tasks {
        let (id, outcome) = task.await.unwrap();
        match outcome {
            CommandOutcome::Refused {
                code: RefusalCode::NotFound,
                message,
            } => assert_eq!(
                message,
                id.to_string(),
                "an outcome reached another command"
            ),
            other => panic!("expected the stand-in's answer, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_batch_is_answered_in_order_with_an_unreadable_command_refused_in_its_place() {
    let prefix = prefix();
    let server = instance(&prefix).await;
    let user = UserId::generate();
    let register = envelope(
        &user,
        Command::RegisterUser {
            user_id: user.clone(),
            name: UserName::parse("Batch").unwrap(),
        },
    );
    let stranger = UserId::generate();
    let send = envelope(
        &stranger,
        Command::SendSelfMessage {
            content: Content::parse("x").unwrap(),
            client_id: None,
            attachments: Vec::new(),
        },
    );
    let body = format!(
        "[{}, {{\"not\": \"a command\"}}, {}]",
        serde_json::to_string(&register).unwrap(),
        serde_json::to_string(&send).unwrap()
    );
    let raw = client()
        .await
        .request(command_subject(&prefix), body.into())
        .await
        .unwrap();
    let outcomes: Vec<CommandOutcome> = serde_json::from_slice(&raw.payload).unwrap();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(
        matches!(outcomes[0], CommandOutcome::Accepted(_)),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            outcomes[1],
            CommandOutcome::Refused {
                code: RefusalCode::BadRequest,
                ..
            }
        ),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            outcomes[2],
            CommandOutcome::Refused {
                code: RefusalCode::NotFound,
                ..
            }
        ),
        "{outcomes:?}"
    );
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn many_concurrent_commands_each_get_their_own_outcome_from_the_service() {
    let prefix = prefix();
    let server = instance(&prefix).await;
    let commands = NatsCommands::new(client().await, &prefix);
    // More users at once than the gateway keeps requests in flight, so that batches form.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let commands = commands.clone();
        tasks.push(tokio::spawn(async move {
            let user = UserId::generate();
            let register = Command::RegisterUser {
                user_id: user.clone(),
                name: UserName::parse(&format!("user {i}")).unwrap(),
            };
            let verify = Command::VerifyUser {
                user_id: user.clone(),
            };
            for command in [register, verify] {
                assert!(matches!(
                    commands.dispatch(&envelope(&user, command)).await,
                    CommandOutcome::Accepted(_)
                ));
            }
            let send = Command::SendSelfMessage {
                content: Content::parse("mine").unwrap(),
                client_id: None,
                attachments: Vec::new(),
            };
            (
                user.clone(),
                commands.dispatch(&envelope(&user, send)).await,
            )
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            (user, CommandOutcome::Accepted(a)) => {
                assert_eq!(a.chat_id, Some(ChatId::self_chat_of(&user)))
            }
            (_, other) => panic!("expected acceptance, got {other:?}"),
        }
    }
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_instance_that_never_answers_cannot_hold_every_slot_until_the_timeout() {
    let prefix = prefix();
    // The only member of the queue group takes requests and never answers.
    let (_silent, mut requests) = stand_in(&prefix).await;
    let commands = NatsCommands::new(client().await, &prefix);
    // Every slot taken by an unanswered request.
    let mut tasks = Vec::new();
    for _ in 0..COMMANDS_IN_FLIGHT {
        tasks.push(spawn_verify(&commands));
        requests.next().await.unwrap();
    }
    // One more still leaves well before the held requests time out.
    let started = Instant::now();
    tasks.push(spawn_verify(&commands));
    requests.next().await.unwrap();
    assert!(
        started.elapsed() < infra::bus::COMMAND_TIMEOUT / 2,
        "a command waited {:?} for a slot held by a silent instance",
        started.elapsed()
    );
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().1,
            CommandOutcome::Refused {
                code: RefusalCode::Internal,
                ..
            }
        ));
    }
}

/// Requests NATS has already handed to an instance when it is told to stop (a restart, a rolling
/// upgrade) are still answered: its subscription is drained, not dropped.
#[tokio::test]
async fn requests_handed_to_an_instance_told_to_stop_are_still_answered() {
    const REQUESTS: usize = 20;
    let prefix = prefix();
    let server = instance(&prefix).await;
    let subject = command_subject(&prefix);
    // The requests come from a runtime of their own, on another thread, so that this one (which
    // runs the instance) can be held still while they reach the instance's connection.
    let (sent_tx, sent) = std::sync::mpsc::channel();
    let requester = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let nats = client().await;
            let mut asked = Vec::new();
            for i in 0..REQUESTS {
                let user = UserId::generate();
                let command = envelope(
                    &user,
                    Command::RegisterUser {
                        user_id: user.clone(),
                        name: UserName::parse(&format!("drained {i}")).unwrap(),
                    },
                );
                let (nats, subject) = (nats.clone(), subject.clone());
                let payload = serde_json::to_vec(&command).unwrap();
                asked.push(tokio::spawn(async move {
                    let reply = tokio::time::timeout(
                        Duration::from_secs(4),
                        nats.request(subject, payload.into()),
                    )
                    .await;
                    match reply {
                        Ok(Ok(reply)) => serde_json::from_slice::<CommandOutcome>(&reply.payload)
                            .map_err(|e| e.to_string()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("no answer within 4 s".to_owned()),
                    }
                }));
            }
            nats.flush().await.unwrap();
            sent_tx.send(()).unwrap();
            let mut outcomes = Vec::new();
            for task in asked {
                outcomes.push(task.await.unwrap());
            }
            outcomes
        })
    });
    // Hold the instance's runtime still (a blocking wait on purpose) while the requests are
    // published and delivered to its socket, then tell it to stop before it has read any.
    sent.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
    let outcomes = requester.join().unwrap();
    let unanswered: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Ok(CommandOutcome::Accepted(_))))
        .collect();
    assert!(
        unanswered.is_empty(),
        "{} of {REQUESTS} not accepted: {unanswered:?}",
        unanswered.len()
    );
}
