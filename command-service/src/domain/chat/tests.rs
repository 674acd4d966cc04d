use events_schema::events::{
    AdminChanged, GroupDeleted, MemberAdded, MemberRemoved, RemovalReason,
};
use proptest::prelude::*;

use super::*;
use crate::domain::testing::{given, occurred_at, Given};

fn u(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn m(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

fn key(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}

fn text() -> Content {
    Content::parse("hi").unwrap()
}

/// The id of every group in these tests.
fn g() -> ChatId {
    ChatId::parse("g").unwrap()
}

fn group_created(admin: &str, others: &[&str]) -> DomainEvent {
    let mut members = vec![u(admin)];
    members.extend(others.iter().map(|o| u(o)));
    GroupCreated {
        chat_id: g(),
        name: "Team".into(),
        description: String::new(),
        admin: u(admin),
        members,
    }
    .into()
}

fn group(admin: &str, others: &[&str]) -> Given<Chat> {
    given([group_created(admin, others)])
}

fn create_group(admin: &str, participants: Vec<UserId>) -> ChatCommand {
    ChatCommand::CreateGroup {
        chat_id: g(),
        admin: u(admin),
        name: GroupName::parse("Team").unwrap(),
        description: Description::parse("").unwrap(),
        participants,
    }
}

fn send_to(kind: ChatKind, sender: &str, client_id: Option<&str>, id: &str) -> ChatCommand {
    ChatCommand::Send {
        kind,
        sender: u(sender),
        content: text(),
        client_id: client_id.map(key),
        message_id: m(id),
        reply_to: None,
        attachments: Vec::new(),
    }
}

fn send(sender: &str, id: &str) -> ChatCommand {
    send_to(ChatKind::Group, sender, None, id)
}

fn sent(chat_id: ChatId, sender: &str, client_id: Option<&str>, id: &str) -> DomainEvent {
    MessageSent {
        chat_id,
        message_id: m(id),
        sender_id: u(sender),
        content: text(),
        format: MessageFormat::Text,
        client_id: client_id.map(key),
        reply_to: None,
        attachments: Vec::new(),
    }
    .into()
}

fn read(reader: &str) -> ChatCommand {
    ChatCommand::MarkRead {
        kind: ChatKind::Group,
        reader: u(reader),
        up_to: None,
    }
}

fn add(admin: &str, member: &str) -> ChatCommand {
    ChatCommand::AddMember {
        admin: u(admin),
        member: u(member),
    }
}

fn added(member: &str) -> DomainEvent {
    MemberAdded {
        chat_id: g(),
        member: u(member),
    }
    .into()
}

fn kick(admin: &str, member: &str) -> ChatCommand {
    ChatCommand::Kick {
        admin: u(admin),
        member: u(member),
    }
}

fn removed(member: &str, reason: RemovalReason) -> DomainEvent {
    MemberRemoved {
        chat_id: g(),
        member: u(member),
        reason,
    }
    .into()
}

fn change_admin(admin: &str, member: &str) -> ChatCommand {
    ChatCommand::ChangeAdmin {
        admin: u(admin),
        member: u(member),
    }
}

fn leave(member: &str) -> ChatCommand {
    ChatCommand::Leave { member: u(member) }
}

fn delete(admin: &str) -> ChatCommand {
    ChatCommand::Delete { admin: u(admin) }
}

/// "Nothing to write" at `position`, for a request on chat `g`.
fn done_at(position: Position) -> Accepted {
    Accepted {
        position,
        chat_id: Some(g()),
        ..Accepted::default()
    }
}

#[test]
fn a_personal_chat_is_created_once_and_its_id_never_names_a_group() {
    let p1 = ChatId::parse("p1").unwrap();
    let create = |creator: &str, partner: &str| ChatCommand::CreatePersonal {
        chat_id: p1.clone(),
        creator: u(creator),
        partner: u(partner),
    };
    given::<Chat>([])
        .when(create("a", "b"))
        .then([PersonalChatCreated {
            chat_id: p1.clone(),
            creator: u("a"),
            partner: u("b"),
        }
        .into()])
        .when(send_to(ChatKind::Personal, "a", None, "m1"))
        .then([sent(p1.clone(), "a", None, "m1")])
        .when(create("b", "a"))
        .then_already_done(Accepted {
            position: 1,
            chat_id: Some(p1.clone()),
            ..Accepted::default()
        })
        .when(create_group("a", vec![u("b")]))
        .then_refused(RefusalCode::Conflict);
    let taken = ChatCommand::CreatePersonal {
        chat_id: g(),
        creator: u("a"),
        partner: u("b"),
    };
    group("a", &["b"])
        .when(taken.clone())
        .then_refused(RefusalCode::Conflict)
        .when(delete("a"))
        .then([GroupDeleted { chat_id: g() }.into()])
        .when(taken)
        .then_refused(RefusalCode::Conflict);
}

#[test]
fn a_group_refuses_a_participant_named_twice_and_ignores_the_admin_among_them() {
    given::<Chat>([])
        .when(create_group("a", vec![u("b"), u("b")]))
        .then_refused(RefusalCode::BadRequest)
        .when(create_group("a", vec![u("a"), u("b")]))
        .then([group_created("a", &["b"])])
        .when(create_group("a", vec![u("b")]))
        .then_refused(RefusalCode::Conflict);
}

#[test]
fn only_members_send_and_read_and_the_kind_must_match() {
    group("a", &["b"])
        .when(send("b", "m1"))
        .then([sent(g(), "b", None, "m1")])
        .when(send("x", "m2"))
        .then_refused(RefusalCode::Forbidden)
        .when(read("x"))
        .then_refused(RefusalCode::Forbidden)
        .when(send_to(ChatKind::Personal, "b", None, "m2"))
        .then_refused(RefusalCode::NotFound);
    given::<Chat>([])
        .when(send("a", "m1"))
        .then_refused(RefusalCode::NotFound);
}

#[test]
fn a_personal_chat_has_no_admin_and_no_one_leaves_it() {
    let p1 = ChatId::parse("p1").unwrap();
    let personal: DomainEvent = PersonalChatCreated {
        chat_id: p1.clone(),
        creator: u("a"),
        partner: u("b"),
    }
    .into();
    given::<Chat>([personal])
        .when(send_to(ChatKind::Group, "a", None, "m1"))
        .then_refused(RefusalCode::NotFound)
        .when(add("a", "c"))
        .then_refused(RefusalCode::NotFound)
        .when(leave("b"))
        .then_refused(RefusalCode::NotFound)
        .when(delete("a"))
        .then_refused(RefusalCode::NotFound)
        .when(send_to(ChatKind::Personal, "a", None, "m1"))
        .then([sent(p1, "a", None, "m1")]);
}

#[test]
fn marking_read_writes_one_event_and_only_when_something_is_unread() {
    let mut history = group("a", &["b"]);
    history.store((1..=5).map(|i| sent(g(), "a", None, &format!("m{i}"))));
    history
        .when(read("a"))
        .then_already_done(done_at(6))
        .when(read("b"))
        .then([MessageRead {
            chat_id: g(),
            reader: u("b"),
            up_to_version: 5,
        }
        .into()])
        .when(read("b"))
        .then_already_done(done_at(7));
}

#[test]
fn a_member_added_has_nothing_unread_from_before() {
    group("a", &[])
        .when(send("a", "m1"))
        .then([sent(g(), "a", None, "m1")])
        .when(add("a", "d"))
        .then([added("d")])
        .when(read("d"))
        .then_already_done(done_at(3))
        .when(send("a", "m2"))
        .then([sent(g(), "a", None, "m2")])
        .when(read("d"))
        .then([MessageRead {
            chat_id: g(),
            reader: u("d"),
            up_to_version: 3,
        }
        .into()]);
}

#[test]
fn only_the_admin_administers() {
    group("a", &["b", "c"])
        .when(add("b", "d"))
        .then_refused(RefusalCode::Forbidden)
        .when(kick("b", "c"))
        .then_refused(RefusalCode::Forbidden)
        .when(change_admin("b", "c"))
        .then_refused(RefusalCode::Forbidden)
        .when(delete("b"))
        .then_refused(RefusalCode::Forbidden)
        .when(add("a", "d"))
        .then([added("d")])
        .when(add("a", "b"))
        .then_refused(RefusalCode::Conflict);
}

#[test]
fn the_admin_stays_a_member_until_handing_over() {
    group("a", &["b", "c"])
        .when(leave("a"))
        .then_refused(RefusalCode::Forbidden)
        .when(kick("a", "a"))
        .then_refused(RefusalCode::BadRequest)
        .when(change_admin("a", "a"))
        .then_refused(RefusalCode::BadRequest)
        .when(change_admin("a", "z"))
        .then_refused(RefusalCode::NotFound)
        .when(kick("a", "z"))
        .then_refused(RefusalCode::NotFound)
        .when(kick("a", "c"))
        .then([removed("c", RemovalReason::Kicked)])
        .when(send("c", "m1"))
        .then_refused(RefusalCode::Forbidden)
        .when(change_admin("a", "b"))
        .then([AdminChanged {
            chat_id: g(),
            from: u("a"),
            to: u("b"),
        }
        .into()])
        .when(leave("a"))
        .then([removed("a", RemovalReason::Left)])
        .when(leave("a"))
        .then_refused(RefusalCode::Forbidden);
}

#[test]
fn a_deleted_group_accepts_nothing() {
    group("a", &["b"])
        .when(delete("a"))
        .then([GroupDeleted { chat_id: g() }.into()])
        .when(send("b", "m1"))
        .then_refused(RefusalCode::NotFound)
        .when(read("b"))
        .then_refused(RefusalCode::NotFound)
        .when(add("a", "c"))
        .then_refused(RefusalCode::NotFound)
        .when(leave("b"))
        .then_refused(RefusalCode::NotFound)
        .when(delete("a"))
        .then_refused(RefusalCode::NotFound)
        .when(create_group("a", vec![]))
        .then_refused(RefusalCode::Conflict);
}

#[test]
fn a_repeated_client_id_answers_the_first_message() {
    group("a", &[])
        .when(send_to(ChatKind::Group, "a", Some("k"), "m1"))
        .then([sent(g(), "a", Some("k"), "m1")])
        .when(send_to(ChatKind::Group, "a", Some("k"), "m2"))
        .then_already_done(Accepted {
            position: 2,
            chat_id: Some(g()),
            message_id: Some(m("m1")),
            occurred_at: Some(occurred_at(1)),
        });
}

#[test]
fn another_members_client_id_never_answers_for_a_senders_message() {
    group("a", &["b"])
        .when(send_to(ChatKind::Group, "b", Some("k-1"), "m1"))
        .then([sent(g(), "b", Some("k-1"), "m1")])
        .when(send_to(ChatKind::Group, "a", Some("k-1"), "m2"))
        .then([sent(g(), "a", Some("k-1"), "m2")]);
}

#[test]
fn a_group_holds_at_most_the_member_cap() {
    let people: Vec<String> = (1..MAX_GROUP_MEMBERS).map(|i| format!("p{i}")).collect();
    let ids: Vec<UserId> = people.iter().map(|p| u(p)).collect();
    let names: Vec<&str> = people.iter().map(String::as_str).collect();
    let mut too_many = ids.clone();
    too_many.push(u("one-more"));
    given::<Chat>([])
        .when(create_group("a", too_many))
        .then_refused(RefusalCode::BadRequest)
        .when(create_group("a", ids))
        .then([group_created("a", &names)])
        .when(add("a", "one-more"))
        .then_refused(RefusalCode::Conflict)
        .when(kick("a", "p1"))
        .then([removed("p1", RemovalReason::Kicked)])
        .when(add("a", "one-more"))
        .then([added("one-more")]);
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
    /// Changes to the message sent by the op at that index (if it sent one).
    Reply(usize, usize),
    Edit(usize, usize),
    DeleteMessage(usize, usize),
    React(usize, usize, usize, bool),
    Deliver(usize, usize),
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
        1 => p.clone().prop_map(Op::Delete),
        2 => (p.clone(), 0..60usize).prop_map(|(x, m)| Op::Reply(x, m)),
        2 => (p.clone(), 0..60usize).prop_map(|(x, m)| Op::Edit(x, m)),
        1 => (p.clone(), 0..60usize).prop_map(|(x, m)| Op::DeleteMessage(x, m)),
        3 => (p.clone(), 0..60usize, 0..3usize, any::<bool>()).prop_map(|(x, m, e, on)| Op::React(x, m, e, on)),
        2 => (p, 0..60usize).prop_map(|(x, m)| Op::Deliver(x, m)),
    ]
}

/// The command of `op`; `n` makes its message id unique.
fn command(op: &Op, n: usize) -> ChatCommand {
    let who = |i: usize| PEOPLE[i];
    let id = format!("m{n}");
    match op {
        Op::Send(x) => send(who(*x), &id),
        Op::SendKeyed(x, k) => send_to(ChatKind::Group, who(*x), Some(&format!("k{k}")), &id),
        Op::Read(x) => read(who(*x)),
        Op::Add(x, y) => add(who(*x), who(*y)),
        Op::Kick(x, y) => kick(who(*x), who(*y)),
        Op::ChangeAdmin(x, y) => change_admin(who(*x), who(*y)),
        Op::Leave(x) => leave(who(*x)),
        Op::Delete(x) => delete(who(*x)),
        Op::Reply(x, m) => ChatCommand::Send {
            kind: ChatKind::Group,
            sender: u(who(*x)),
            content: text(),
            client_id: None,
            message_id: MessageId::parse(&id).unwrap(),
            reply_to: Some(m_(*m)),
            attachments: Vec::new(),
        },
        Op::Edit(x, m) => ChatCommand::Edit {
            editor: u(who(*x)),
            message_id: m_(*m),
            content: text(),
            now: occurred_at(n),
            window: std::time::Duration::from_millis(30),
        },
        Op::DeleteMessage(x, m) => ChatCommand::DeleteMessage {
            by: u(who(*x)),
            message_id: m_(*m),
        },
        Op::React(x, m, e, on) => ChatCommand::React {
            user: u(who(*x)),
            message_id: m_(*m),
            emoji: Emoji::parse(["👍", "🎉", "😮"][*e]).unwrap(),
            on: *on,
        },
        Op::Deliver(x, m) => ChatCommand::MarkDelivered {
            reader: u(who(*x)),
            up_to: m_(*m),
        },
    }
}

/// The id of the message the op at `index` sends, if it sends one.
fn m_(index: usize) -> MessageId {
    m(&format!("m{index}"))
}

proptest! {
    /// For any sequence of commands: the state rebuilt from the stored events equals the state the
    /// decisions saw; a refused command writes nothing and changes nothing; the admin is always a
    /// member; a deleted group accepts nothing.
    #[test]
    fn decisions_and_replay_agree(ops in proptest::collection::vec(op(), 1..60)) {
        let mut history = group("a", &["b", "c"]);
        for (n, op) in ops.iter().enumerate() {
            let before = history.state().clone();
            let decision = before.decide(&command(op, n));
            let refused = decision.is_err();
            if let Ok(Decision::Append(events)) = decision {
                history.store(events);
            }
            if refused {
                prop_assert_eq!(history.state(), &before, "a refused {:?} changed the state", op);
            }
            if before.state == ChatState::Deleted {
                prop_assert!(refused, "a deleted group accepted {:?}", op);
            }
            if let ChatState::Group(group) = &history.state().state {
                prop_assert!(group.members.contains_key(&group.admin));
            }
            prop_assert_eq!(history.replayed(), history.state().clone());
        }
    }
}
