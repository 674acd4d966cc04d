use super::*;

/// Routes with the default rules.
fn route(envelope: &CommandEnvelope) -> Result<Plan, Refusal> {
    super::route(envelope, &Rules::default())
}

fn u(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn g() -> ChatId {
    ChatId::parse("g").unwrap()
}

fn by(actor: Option<&str>, command: Command) -> CommandEnvelope {
    CommandEnvelope {
        correlation_id: uuid::Uuid::now_v7(),
        actor: actor.map(u),
        command,
        trace_parent: None,
    }
}

fn hi() -> Content {
    Content::parse("hi").unwrap()
}

fn refusal(plan: Result<Plan, Refusal>) -> Refusal {
    plan.expect_err("a refusal")
}

#[test]
fn only_the_account_commands_need_no_signed_in_user() {
    let name = UserName::parse("Ada").unwrap();
    let accounts = [
        Command::RegisterUser {
            user_id: u("a"),
            name: name.clone(),
        },
        Command::RenameUser {
            user_id: u("a"),
            name,
        },
        Command::VerifyUser { user_id: u("a") },
    ];
    for command in accounts {
        assert!(route(&by(None, command)).is_ok());
    }
    let signed_in_only = [
        Command::CreatePersonalChat { partner: u("b") },
        Command::CreateGroup {
            group_id: g(),
            name: GroupName::parse("T").unwrap(),
            description: Description::parse("").unwrap(),
            participants: vec![],
        },
        Command::SendMessage {
            chat_id: g(),
            kind: ChatKind::Group,
            content: hi(),
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
        },
        Command::MarkRead {
            chat_id: g(),
            kind: ChatKind::Group,
            up_to: None,
        },
        Command::AddMember {
            chat_id: g(),
            member: u("b"),
        },
        Command::KickMember {
            chat_id: g(),
            member: u("b"),
        },
        Command::ChangeAdmin {
            chat_id: g(),
            member: u("b"),
        },
        Command::LeaveGroup { chat_id: g() },
        Command::DeleteGroup { chat_id: g() },
        Command::SetPresenceVisibility { visible: false },
        Command::ChangeName {
            name: UserName::parse("Ada").unwrap(),
        },
    ];
    for command in signed_in_only {
        let refused = refusal(route(&by(None, command)));
        assert_eq!(
            refused,
            Refusal::new(RefusalCode::Forbidden, "this needs a signed-in user")
        );
    }
    let note = Command::SendSelfMessage {
        content: hi(),
        client_id: None,
        attachments: Vec::new(),
    };
    assert_eq!(
        refusal(route(&by(None, note))),
        Refusal::new(RefusalCode::Forbidden, "sending needs a signed-in user")
    );
}

#[test]
fn a_personal_chat_checks_both_users_and_is_named_by_the_pair() {
    let asked_by = |creator: &str, partner: &str| {
        route(&by(
            Some(creator),
            Command::CreatePersonalChat {
                partner: u(partner),
            },
        ))
    };
    let pair = ChatId::personal_between(&u("a"), &u("b"));
    assert_eq!(
        asked_by("a", "b"),
        Ok(Plan {
            verified: vec![u("a"), u("b")],
            steps: vec![Step::Chat(Decide {
                stream: streams::chat(&pair),
                command: ChatCommand::CreatePersonal {
                    chat_id: pair.clone(),
                    creator: u("a"),
                    partner: u("b"),
                },
                batched: false,
            })],
        })
    );
    let Ok(Plan { steps, .. }) = asked_by("b", "a") else {
        panic!("refused")
    };
    assert!(matches!(&steps[..], [Step::Chat(step)] if step.stream == streams::chat(&pair)));
    assert_eq!(refusal(asked_by("a", "a")).code, RefusalCode::BadRequest);
}

#[test]
fn a_group_checks_every_participant_but_the_admin() {
    let participants = vec![u("a"), u("b"), u("c"), u("b")];
    let plan = route(&by(
        Some("a"),
        Command::CreateGroup {
            group_id: g(),
            name: GroupName::parse("T").unwrap(),
            description: Description::parse("").unwrap(),
            participants: participants.clone(),
        },
    ));
    assert_eq!(
        plan,
        Ok(Plan {
            // Named twice, checked twice: the group refuses the request either way.
            verified: vec![u("b"), u("c"), u("b")],
            steps: vec![Step::Chat(Decide {
                stream: streams::chat(&g()),
                command: ChatCommand::CreateGroup {
                    chat_id: g(),
                    admin: u("a"),
                    name: GroupName::parse("T").unwrap(),
                    description: Description::parse("").unwrap(),
                    participants,
                },
                batched: false,
            })],
        })
    );
}

#[test]
fn verification_decides_the_user_then_creates_the_self_chat() {
    assert_eq!(
        route(&by(None, Command::VerifyUser { user_id: u("a") })),
        Ok(Plan {
            verified: vec![],
            steps: vec![
                Step::User(Decide {
                    stream: streams::user(&u("a")),
                    command: UserCommand::Verify { user_id: u("a") },
                    batched: false,
                }),
                Step::SelfChat(Decide {
                    stream: streams::chat(&ChatId::self_chat_of(&u("a"))),
                    command: SelfChatCommand::Create { owner: u("a") },
                    batched: false,
                }),
            ],
        })
    );
}

#[test]
fn messages_are_batched_by_their_senders_stream_and_each_has_its_own_id() {
    let note = || {
        by(
            Some("a"),
            Command::SendSelfMessage {
                content: hi(),
                client_id: None,
                attachments: Vec::new(),
            },
        )
    };
    let ids: Vec<MessageId> = [note(), note()]
        .iter()
        .map(|envelope| match route(envelope) {
            Ok(Plan { verified, steps }) => match &steps[..] {
                [Step::SelfChat(step)] => {
                    assert!(verified.is_empty() && step.batched);
                    assert_eq!(step.stream, streams::chat(&ChatId::self_chat_of(&u("a"))));
                    match &step.command {
                        SelfChatCommand::Send { message_id, .. } => message_id.clone(),
                        other => panic!("{other:?}"),
                    }
                }
                other => panic!("{other:?}"),
            },
            Err(refusal) => panic!("{refusal:?}"),
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    let message = by(
        Some("a"),
        Command::SendMessage {
            chat_id: g(),
            kind: ChatKind::Group,
            content: hi(),
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
        },
    );
    let Ok(Plan { steps, .. }) = route(&message) else {
        panic!("refused")
    };
    assert!(matches!(&steps[..], [Step::Chat(step)] if step.batched));
}

#[test]
fn only_adding_a_member_checks_another_user() {
    let on_g = |command: Command| route(&by(Some("a"), command)).expect("routed");
    let added = on_g(Command::AddMember {
        chat_id: g(),
        member: u("b"),
    });
    assert_eq!(added.verified, vec![u("b")]);
    let others = [
        Command::KickMember {
            chat_id: g(),
            member: u("b"),
        },
        Command::ChangeAdmin {
            chat_id: g(),
            member: u("b"),
        },
        Command::LeaveGroup { chat_id: g() },
        Command::DeleteGroup { chat_id: g() },
    ];
    for command in others {
        let plan = on_g(command);
        assert!(plan.verified.is_empty());
        assert!(
            matches!(&plan.steps[..], [Step::Chat(step)] if !step.batched && step.stream == streams::chat(&g()))
        );
    }
    // Pointer moves come one per message received: they share the stream's batch with sends.
    let floods = [
        Command::MarkRead {
            chat_id: g(),
            kind: ChatKind::Group,
            up_to: None,
        },
        Command::MarkDelivered {
            chat_id: g(),
            up_to: MessageId::generate(),
        },
    ];
    for command in floods {
        let plan = on_g(command);
        assert!(plan.verified.is_empty());
        assert!(
            matches!(&plan.steps[..], [Step::Chat(step)] if step.batched && step.stream == streams::chat(&g()))
        );
    }
}

#[test]
fn events_carry_the_actor_and_the_request() {
    let envelope = by(Some("a"), Command::LeaveGroup { chat_id: g() });
    assert_eq!(
        metadata(&envelope),
        EventMetadata {
            actor: Some("a".into()),
            correlation_id: envelope.correlation_id,
            causation_id: None,
            trace_parent: None,
        }
    );
}

#[test]
fn changes_to_a_message_go_to_the_self_chat_only_when_it_is_the_actors_own() {
    let mine = ChatId::self_chat_of(&u("a"));
    let rules = Rules {
        edit_window: std::time::Duration::from_secs(60),
    };
    let edit = |chat_id: ChatId| {
        by(
            Some("a"),
            Command::EditMessage {
                chat_id,
                message_id: MessageId::parse("m1").unwrap(),
                content: hi(),
            },
        )
    };
    let Ok(Plan { steps, verified }) = super::route(&edit(mine.clone()), &rules) else {
        panic!("an edit of a note is routed");
    };
    assert!(verified.is_empty());
    assert!(
        matches!(&steps[..], [Step::SelfChat(Decide { stream, command: SelfChatCommand::Edit { window, .. }, batched: false })]
        if *stream == streams::chat(&mine) && window.as_secs() == 60)
    );
    let Ok(Plan { steps, .. }) = super::route(&edit(g()), &rules) else {
        panic!("an edit in a group is routed");
    };
    assert!(
        matches!(&steps[..], [Step::Chat(Decide { stream, command: ChatCommand::Edit { .. }, batched: false })]
        if *stream == streams::chat(&g()))
    );
    // Someone else's self chat is no self chat of theirs: the chat aggregate refuses it.
    let theirs = by(
        Some("b"),
        Command::React {
            chat_id: mine,
            message_id: MessageId::parse("m1").unwrap(),
            emoji: Emoji::parse("👍").unwrap(),
            on: true,
        },
    );
    assert!(matches!(
        &route(&theirs).expect("routed").steps[..],
        [Step::Chat(_)]
    ));
    let anonymous = by(
        None,
        Command::DeleteMessage {
            chat_id: g(),
            message_id: MessageId::parse("m1").unwrap(),
        },
    );
    assert_eq!(refusal(route(&anonymous)).code, RefusalCode::Forbidden);
}

#[test]
fn presence_visibility_is_decided_on_the_callers_own_stream() {
    assert_eq!(
        route(&by(
            Some("a"),
            Command::SetPresenceVisibility { visible: false }
        )),
        Ok(Plan {
            verified: vec![],
            steps: vec![Step::User(Decide {
                stream: streams::user(&u("a")),
                command: UserCommand::SetPresenceVisibility {
                    user_id: u("a"),
                    visible: false,
                },
                batched: false,
            })],
        })
    );
}

#[test]
fn a_name_change_is_decided_on_the_callers_own_stream() {
    let name = UserName::parse("Ada L").unwrap();
    assert_eq!(
        route(&by(Some("a"), Command::ChangeName { name: name.clone() })),
        Ok(Plan {
            verified: vec![],
            steps: vec![Step::User(Decide {
                stream: streams::user(&u("a")),
                command: UserCommand::ChangeName {
                    user_id: u("a"),
                    name,
                },
                batched: false,
            })],
        })
    );
}
