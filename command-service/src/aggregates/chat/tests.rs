use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

fn u(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn text() -> Content {
    Content::parse("hi").unwrap()
}

/// Applies events with consecutive versions/positions and a fixed time, like the store would.
#[derive(Default)]
struct History {
    events: Vec<DomainEvent>,
    state: Chat,
}

fn recorded(event: &DomainEvent, i: usize) -> RecordedEvent {
    RecordedEvent {
        event_id: uuid::Uuid::nil(),
        stream: "chat-test".into(),
        version: i as u64,
        position: i as u64 + 1,
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        occurred_at: chrono::Utc
            .timestamp_millis_opt(1_700_000_000_000 + i as i64)
            .unwrap(),
        actor: None,
        correlation_id: uuid::Uuid::nil(),
        causation_id: None,
        payload: event.payload(),
    }
}

impl History {
    fn given(events: Vec<DomainEvent>) -> Self {
        let mut h = History::default();
        for e in events {
            h.push(e);
        }
        h
    }

    fn push(&mut self, event: DomainEvent) {
        let r = recorded(&event, self.events.len());
        self.state.apply(&event, &r);
        self.events.push(event);
    }

    /// Applies a decision's events; returns whether anything was written.
    fn run(&mut self, decision: Result<Decision, Refusal>) -> Result<usize, Refusal> {
        match decision? {
            Decision::Append(events) => {
                let n = events.len();
                for e in events {
                    self.push(e);
                }
                Ok(n)
            }
            Decision::AlreadyDone(_) => Ok(0),
        }
    }

    fn rebuilt(&self) -> Chat {
        let mut state = Chat::default();
        for (i, e) in self.events.iter().enumerate() {
            state.apply(e, &recorded(e, i));
        }
        state
    }
}

fn group(admin: &str, others: &[&str]) -> History {
    let mut members = vec![u(admin)];
    members.extend(others.iter().map(|o| u(o)));
    History::given(vec![GroupCreated {
        chat_id: ChatId::parse("g").unwrap(),
        name: "Team".into(),
        description: String::new(),
        admin: u(admin),
        members,
    }
    .into()])
}

fn code(r: Result<usize, Refusal>) -> RefusalCode {
    r.unwrap_err().code
}

#[test]
fn a_personal_chat_is_created_once() {
    let id = ChatId::parse("p1").unwrap();
    let mut h = History::default();
    assert_eq!(h.run(h.state.create_personal(&id, &u("a"), &u("b"))), Ok(1));
    assert_eq!(h.run(h.state.create_personal(&id, &u("b"), &u("a"))), Ok(0));
}

#[test]
fn a_group_refuses_a_participant_named_twice_and_ignores_the_admin_among_them() {
    let id = ChatId::parse("g2").unwrap();
    let (name, description) = (
        GroupName::parse("T").unwrap(),
        Description::parse("").unwrap(),
    );
    let twice = Chat::default().create_group(&id, &u("a"), &name, &description, &[u("b"), u("b")]);
    assert_eq!(twice.unwrap_err().code, RefusalCode::BadRequest);
    match Chat::default().create_group(&id, &u("a"), &name, &description, &[u("a"), u("b")]) {
        Ok(Decision::Append(events)) => match &events[0] {
            DomainEvent::GroupCreated(g) => assert_eq!(g.members, vec![u("a"), u("b")]),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_members_send_and_read() {
    let mut h = group("a", &["b"]);
    let m = || MessageId::generate();
    assert_eq!(
        h.run(h.state.send(ChatKind::Group, &u("b"), &text(), None, m())),
        Ok(1)
    );
    assert_eq!(
        code(h.run(h.state.send(ChatKind::Group, &u("x"), &text(), None, m()))),
        RefusalCode::Forbidden
    );
    assert_eq!(
        code(h.run(h.state.mark_read(ChatKind::Group, &u("x")))),
        RefusalCode::Forbidden
    );
    assert_eq!(
        code(
            h.run(
                h.state
                    .send(ChatKind::Personal, &u("b"), &text(), None, m())
            )
        ),
        RefusalCode::NotFound,
        "kind must match"
    );
    assert_eq!(
        code(h.run(Chat::default().send(ChatKind::Group, &u("a"), &text(), None, m()))),
        RefusalCode::NotFound
    );
}

#[test]
fn marking_read_writes_one_event_and_only_when_something_is_unread() {
    let mut h = group("a", &["b"]);
    for _ in 0..5 {
        h.run(h.state.send(
            ChatKind::Group,
            &u("a"),
            &text(),
            None,
            MessageId::generate(),
        ))
        .unwrap();
    }
    assert_eq!(
        h.run(h.state.mark_read(ChatKind::Group, &u("a"))),
        Ok(0),
        "own messages are read"
    );
    assert_eq!(h.run(h.state.mark_read(ChatKind::Group, &u("b"))), Ok(1));
    assert_eq!(h.state.members[&u("b")].read_up_to, h.state.last_message);
    assert_eq!(h.run(h.state.mark_read(ChatKind::Group, &u("b"))), Ok(0));
}

#[test]
fn admin_rules() {
    let mut h = group("a", &["b", "c"]);
    assert_eq!(
        code(h.run(h.state.add_member(&u("b"), &u("d")))),
        RefusalCode::Forbidden
    );
    assert_eq!(
        code(h.run(h.state.kick(&u("b"), &u("c")))),
        RefusalCode::Forbidden
    );
    assert_eq!(
        code(h.run(h.state.change_admin(&u("b"), &u("c")))),
        RefusalCode::Forbidden
    );
    assert_eq!(code(h.run(h.state.delete(&u("b")))), RefusalCode::Forbidden);
    assert_eq!(
        code(h.run(h.state.add_member(&u("a"), &u("b")))),
        RefusalCode::Conflict
    );
    assert_eq!(
        code(h.run(h.state.leave(&u("a")))),
        RefusalCode::Forbidden,
        "the admin cannot leave"
    );
    assert_eq!(
        code(h.run(h.state.kick(&u("a"), &u("a")))),
        RefusalCode::BadRequest
    );
    assert_eq!(
        code(h.run(h.state.kick(&u("a"), &u("z")))),
        RefusalCode::NotFound
    );
    assert_eq!(h.run(h.state.kick(&u("a"), &u("c"))), Ok(1));
    assert_eq!(
        code(h.run(h.state.send(
            ChatKind::Group,
            &u("c"),
            &text(),
            None,
            MessageId::generate()
        ))),
        RefusalCode::Forbidden,
        "kicked"
    );
    assert_eq!(h.run(h.state.change_admin(&u("a"), &u("b"))), Ok(1));
    assert_eq!(h.run(h.state.leave(&u("a"))), Ok(1), "no longer admin");
    assert_eq!(
        code(h.run(h.state.leave(&u("a")))),
        RefusalCode::Forbidden,
        "already left"
    );
    assert_eq!(h.run(h.state.delete(&u("b"))), Ok(1));
    assert_eq!(
        code(h.run(h.state.send(
            ChatKind::Group,
            &u("b"),
            &text(),
            None,
            MessageId::generate()
        ))),
        RefusalCode::NotFound,
        "deleted"
    );
    assert_eq!(code(h.run(h.state.delete(&u("b")))), RefusalCode::NotFound);
}

#[test]
fn a_repeated_client_id_answers_the_first_message() {
    let mut h = group("a", &[]);
    let key = ClientId::parse("k").unwrap();
    let first = MessageId::generate();
    h.run(
        h.state
            .send(ChatKind::Group, &u("a"), &text(), Some(&key), first.clone()),
    )
    .unwrap();
    match h.state.send(
        ChatKind::Group,
        &u("a"),
        &text(),
        Some(&key),
        MessageId::generate(),
    ) {
        Ok(Decision::AlreadyDone(a)) => assert_eq!(a.message_id, Some(first)),
        other => panic!("{other:?}"),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    SendKeyed(usize, u8),
    Read(usize),
    Add(usize, usize),
    Kick(usize, usize),
    ChangeAdmin(usize, usize),
    Leave(usize),
    Delete(usize),
}

const PEOPLE: [&str; 5] = ["a", "b", "c", "d", "e"];

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PEOPLE.len();
    prop_oneof![
        4 => p.clone().prop_map(Op::Send),
        2 => (p.clone(), 0u8..4).prop_map(|(x, k)| Op::SendKeyed(x, k)),
        3 => p.clone().prop_map(Op::Read),
        2 => (p.clone(), p.clone()).prop_map(|(x, y)| Op::Add(x, y)),
        1 => (p.clone(), p.clone()).prop_map(|(x, y)| Op::Kick(x, y)),
        1 => (p.clone(), p.clone()).prop_map(|(x, y)| Op::ChangeAdmin(x, y)),
        1 => p.clone().prop_map(Op::Leave),
        1 => p.prop_map(Op::Delete),
    ]
}

proptest! {
    /// For any sequence of commands: the state rebuilt from the stored events equals the state the
    /// decisions saw; a refused command writes nothing and changes nothing; the admin is always a
    /// member; a deleted group accepts nothing.
    #[test]
    fn decisions_and_replay_agree(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = group("a", &["b", "c"]);
        for op in ops {
            let before_len = h.events.len();
            let before = h.state.clone();
            let who = |i: usize| u(PEOPLE[i]);
            let decision = match &op {
                Op::Send(x) => h.state.send(ChatKind::Group, &who(*x), &text(), None, MessageId::generate()),
                Op::SendKeyed(x, k) => {
                    let key = ClientId::parse(&format!("k{k}")).unwrap();
                    h.state.send(ChatKind::Group, &who(*x), &text(), Some(&key), MessageId::generate())
                }
                Op::Read(x) => h.state.mark_read(ChatKind::Group, &who(*x)),
                Op::Add(x, y) => h.state.add_member(&who(*x), &who(*y)),
                Op::Kick(x, y) => h.state.kick(&who(*x), &who(*y)),
                Op::ChangeAdmin(x, y) => h.state.change_admin(&who(*x), &who(*y)),
                Op::Leave(x) => h.state.leave(&who(*x)),
                Op::Delete(x) => h.state.delete(&who(*x)),
            };
            let refused = decision.is_err();
            let was_deleted = before.deleted;
            let _ = h.run(decision);
            if refused {
                prop_assert_eq!(h.events.len(), before_len, "a refused {:?} wrote events", op);
                prop_assert_eq!(&h.state, &before);
            }
            if was_deleted {
                prop_assert!(refused, "a deleted group accepted {:?}", op);
            }
            if let Some(admin) = &h.state.admin {
                prop_assert!(h.state.members.contains_key(admin) || h.state.deleted);
            }
            prop_assert_eq!(h.rebuilt(), h.state.clone());
        }
    }
}
