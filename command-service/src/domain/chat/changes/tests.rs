//! Given/when/then for replies, edits, deletions and reactions, each rule on its own.

use std::time::Duration;

use chrono::{DateTime, Utc};
use events_schema::events::{
    GroupCreated, MessageDeleted, MessageEdited, MessageFormat, MessageSent, PersonalChatCreated,
    ReactionAdded, ReactionRemoved,
};
use events_schema::{
    Accepted, ChatId, ChatKind, Content, DomainEvent, Emoji, MessageId, RefusalCode, UserId,
};

use super::MAX_EMOJI;
use crate::domain::chat::{Chat, ChatCommand};
use crate::domain::testing::{given, occurred_at, Given};

const HOUR: Duration = Duration::from_secs(3600);

fn u(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn m(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

fn g() -> ChatId {
    ChatId::parse("g").unwrap()
}

fn p() -> ChatId {
    ChatId::parse("p").unwrap()
}

fn text(s: &str) -> Content {
    Content::parse(s).unwrap()
}

fn emoji(s: &str) -> Emoji {
    Emoji::parse(s).unwrap()
}

/// `after` past the time the event at `index` was stored.
fn later(index: usize, after: Duration) -> DateTime<Utc> {
    occurred_at(index) + chrono::Duration::from_std(after).unwrap()
}

/// A group of admin `a` with `b` and `c`; `b` sent `m1` (the event at index 1).
fn group() -> Given<Chat> {
    given([
        GroupCreated {
            chat_id: g(),
            name: "Team".into(),
            description: String::new(),
            admin: u("a"),
            members: vec![u("a"), u("b"), u("c")],
        }
        .into(),
        sent(g(), "b", "m1", None),
    ])
}

/// The personal chat of `a` and `b`; `b` sent `m1`.
fn personal() -> Given<Chat> {
    given([
        PersonalChatCreated {
            chat_id: p(),
            creator: u("a"),
            partner: u("b"),
        }
        .into(),
        sent(p(), "b", "m1", None),
    ])
}

fn sent(chat_id: ChatId, sender: &str, id: &str, reply_to: Option<&str>) -> DomainEvent {
    MessageSent {
        chat_id,
        message_id: m(id),
        sender_id: u(sender),
        content: text("hi"),
        format: MessageFormat::Text,
        client_id: None,
        reply_to: reply_to.map(m),
        attachments: Vec::new(),
    }
    .into()
}

fn reply(kind: ChatKind, sender: &str, id: &str, to: &str) -> ChatCommand {
    ChatCommand::Send {
        kind,
        sender: u(sender),
        content: text("hi"),
        client_id: None,
        message_id: m(id),
        reply_to: Some(m(to)),
        attachments: Vec::new(),
    }
}

fn edit(editor: &str, id: &str, now: DateTime<Utc>) -> ChatCommand {
    ChatCommand::Edit {
        editor: u(editor),
        message_id: m(id),
        content: text("better"),
        now,
        window: 48 * HOUR,
    }
}

fn edited(chat_id: ChatId, editor: &str, id: &str) -> DomainEvent {
    MessageEdited {
        chat_id,
        message_id: m(id),
        editor: u(editor),
        content: text("better"),
    }
    .into()
}

fn delete(by: &str, id: &str) -> ChatCommand {
    ChatCommand::DeleteMessage {
        by: u(by),
        message_id: m(id),
    }
}

fn deleted(chat_id: ChatId, by: &str, id: &str) -> DomainEvent {
    MessageDeleted {
        chat_id,
        message_id: m(id),
        deleted_by: u(by),
    }
    .into()
}

fn react(user: &str, id: &str, e: &str, on: bool) -> ChatCommand {
    ChatCommand::React {
        user: u(user),
        message_id: m(id),
        emoji: emoji(e),
        on,
    }
}

fn added(user: &str, id: &str, e: &str) -> DomainEvent {
    ReactionAdded {
        chat_id: g(),
        message_id: m(id),
        user_id: u(user),
        emoji: emoji(e),
    }
    .into()
}

fn removed(user: &str, id: &str, e: &str) -> DomainEvent {
    ReactionRemoved {
        chat_id: g(),
        message_id: m(id),
        user_id: u(user),
        emoji: emoji(e),
    }
    .into()
}

#[test]
fn a_reply_names_a_live_message_of_the_same_chat() {
    group()
        .when(reply(ChatKind::Group, "c", "m2", "m1"))
        .then([sent(g(), "c", "m2", Some("m1"))])
        // A message of another chat is no message of this one.
        .when(reply(ChatKind::Group, "c", "m3", "elsewhere"))
        .then_refused(RefusalCode::NotFound);
    group()
        .and([deleted(g(), "b", "m1")])
        .when(reply(ChatKind::Group, "c", "m2", "m1"))
        .then_refused(RefusalCode::NotFound);
    personal()
        .when(reply(ChatKind::Personal, "a", "m2", "m1"))
        .then([sent(p(), "a", "m2", Some("m1"))]);
}

#[test]
fn only_the_sender_edits_within_the_window() {
    group()
        .when(edit("c", "m1", later(1, HOUR)))
        .then_refused(RefusalCode::Forbidden)
        // Not even the admin edits another's message.
        .when(edit("a", "m1", later(1, HOUR)))
        .then_refused(RefusalCode::Forbidden)
        .when(edit("b", "m1", later(1, 48 * HOUR)))
        .then([edited(g(), "b", "m1")])
        .when(edit(
            "b",
            "m1",
            later(1, 48 * HOUR + Duration::from_millis(1)),
        ))
        .then_refused(RefusalCode::Forbidden)
        .when(edit("b", "unknown", later(1, HOUR)))
        .then_refused(RefusalCode::NotFound);
    // The window is the setting's.
    let short = ChatCommand::Edit {
        editor: u("b"),
        message_id: m("m1"),
        content: text("better"),
        now: later(1, HOUR),
        window: Duration::from_secs(60),
    };
    group().when(short).then_refused(RefusalCode::Forbidden);
}

#[test]
fn a_deleted_message_cannot_be_edited_deleted_or_reacted_to() {
    group()
        .and([deleted(g(), "b", "m1")])
        .when(edit("b", "m1", later(1, HOUR)))
        .then_refused(RefusalCode::NotFound)
        .when(delete("b", "m1"))
        .then_refused(RefusalCode::NotFound)
        .when(react("c", "m1", "👍", true))
        .then_refused(RefusalCode::NotFound);
}

#[test]
fn the_sender_or_the_admin_deletes() {
    group()
        .when(delete("c", "m1"))
        .then_refused(RefusalCode::Forbidden)
        .when(delete("b", "m1"))
        .then([deleted(g(), "b", "m1")]);
    group()
        .when(delete("a", "m1"))
        .then([deleted(g(), "a", "m1")]);
    // A personal chat has no admin: the partner may not delete.
    personal()
        .when(delete("a", "m1"))
        .then_refused(RefusalCode::Forbidden)
        .when(delete("b", "m1"))
        .then([deleted(p(), "b", "m1")]);
}

#[test]
fn members_only() {
    group()
        .when(react("stranger", "m1", "👍", true))
        .then_refused(RefusalCode::Forbidden)
        .when(delete("stranger", "m1"))
        .then_refused(RefusalCode::Forbidden)
        .when(edit("stranger", "m1", later(1, HOUR)))
        .then_refused(RefusalCode::Forbidden)
        .when(reply(ChatKind::Group, "stranger", "m2", "m1"))
        .then_refused(RefusalCode::Forbidden);
    given::<Chat>([])
        .when(react("a", "m1", "👍", true))
        .then_refused(RefusalCode::NotFound);
}

#[test]
fn reactions_toggle_once_per_user_and_emoji() {
    group()
        .when(react("c", "m1", "👍", true))
        .then([added("c", "m1", "👍")])
        // Again: already so, nothing written.
        .when(react("c", "m1", "👍", true))
        .then_already_done(Accepted {
            position: 3,
            chat_id: Some(g()),
            ..Accepted::default()
        })
        .when(react("a", "m1", "👍", true))
        .then([added("a", "m1", "👍")])
        .when(react("c", "m1", "👍", false))
        .then([removed("c", "m1", "👍")])
        .when(react("c", "m1", "👍", false))
        .then_already_done(Accepted {
            position: 5,
            chat_id: Some(g()),
            ..Accepted::default()
        });
}

#[test]
fn a_message_carries_at_most_twenty_distinct_emoji() {
    let faces: Vec<String> = (0..=MAX_EMOJI as u32)
        .map(|i| char::from_u32(0x1F600 + i).unwrap().to_string())
        .collect();
    let mut history = group();
    for face in &faces[..MAX_EMOJI] {
        history = history
            .when(react("c", "m1", face, true))
            .then([added("c", "m1", face)]);
    }
    let history = history
        .when(react("a", "m1", &faces[MAX_EMOJI], true))
        .then_refused(RefusalCode::Conflict)
        // One of the twenty already there is no new emoji.
        .when(react("a", "m1", &faces[0], true))
        .then([added("a", "m1", &faces[0])])
        .when(react("c", "m1", &faces[1], false))
        .then([removed("c", "m1", &faces[1])]);
    // The last one to take an emoji back makes room for another.
    history
        .when(react("a", "m1", &faces[MAX_EMOJI], true))
        .then([added("a", "m1", &faces[MAX_EMOJI])]);
}

#[test]
fn replay_gives_the_decided_state() {
    let history = group()
        .when(react("c", "m1", "👍", true))
        .then([added("c", "m1", "👍")])
        .when(reply(ChatKind::Group, "a", "m2", "m1"))
        .then([sent(g(), "a", "m2", Some("m1"))])
        .when(delete("a", "m2"))
        .then([deleted(g(), "a", "m2")]);
    assert_eq!(history.replayed(), *history.state());
    assert_eq!(history.state().messages.len(), 2);
}

mod receipts {
    use events_schema::events::{MessageRead, MessagesDelivered};

    use super::*;

    fn read_up_to(reader: &str, id: Option<&str>) -> ChatCommand {
        ChatCommand::MarkRead {
            kind: ChatKind::Group,
            reader: u(reader),
            up_to: id.map(m),
        }
    }

    fn deliver(reader: &str, id: &str) -> ChatCommand {
        ChatCommand::MarkDelivered {
            reader: u(reader),
            up_to: m(id),
        }
    }

    fn delivered(reader: &str, version: u64) -> DomainEvent {
        MessagesDelivered {
            chat_id: g(),
            reader: u(reader),
            up_to_version: version,
        }
        .into()
    }

    fn was_read(reader: &str, version: u64) -> DomainEvent {
        MessageRead {
            chat_id: g(),
            reader: u(reader),
            up_to_version: version,
        }
        .into()
    }

    /// `b` sent m1, m2, m3 (versions 1, 2, 3).
    fn three() -> Given<Chat> {
        group().and([sent(g(), "b", "m2", None), sent(g(), "b", "m3", None)])
    }

    #[test]
    fn pointers_move_forward_only_one_event_a_move() {
        let unchanged = |position| Accepted {
            position,
            chat_id: Some(g()),
            ..Accepted::default()
        };
        three()
            .when(deliver("c", "m2"))
            .then([delivered("c", 2)])
            .when(deliver("c", "m1"))
            .then_already_done(unchanged(5))
            .when(deliver("c", "m3"))
            .then([delivered("c", 3)])
            // A read up to an older message than delivered moves the read pointer only.
            .when(read_up_to("c", Some("m1")))
            .then([was_read("c", 1)])
            .when(read_up_to("c", Some("m1")))
            .then_already_done(unchanged(7))
            .when(read_up_to("c", None))
            .then([was_read("c", 3)])
            .when(read_up_to("c", Some("m2")))
            .then_already_done(unchanged(8));
    }

    #[test]
    fn a_read_pulls_the_delivered_pointer_along() {
        three()
            .when(read_up_to("a", Some("m2")))
            .then([was_read("a", 2)])
            // Delivered up to m2 already, by reading it.
            .when(deliver("a", "m1"))
            .then_already_done(Accepted {
                position: 5,
                chat_id: Some(g()),
                ..Accepted::default()
            })
            .when(deliver("a", "m3"))
            .then([delivered("a", 3)]);
        // The sender has read (and so received) their own messages.
        three()
            .when(deliver("b", "m3"))
            .then_already_done(Accepted {
                position: 4,
                chat_id: Some(g()),
                ..Accepted::default()
            });
    }

    #[test]
    fn only_messages_of_the_chat_and_only_members() {
        three()
            .when(deliver("c", "elsewhere"))
            .then_refused(RefusalCode::NotFound)
            .when(read_up_to("c", Some("elsewhere")))
            .then_refused(RefusalCode::NotFound)
            .when(deliver("stranger", "m1"))
            .then_refused(RefusalCode::Forbidden);
    }
}
