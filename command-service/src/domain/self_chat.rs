//! The self chat (stream `chat-<userId>`): notes to self. Its state never holds the messages, only
//! what decisions need: who owns it, the recent `ClientId`s for idempotent sends, and the few
//! facts per note that its owner's edits, deletions and reactions are decided on (the rules of
//! `chat/changes.rs`, with the owner as the only member).

use std::time::Duration;

use chrono::{DateTime, Utc};

use events_schema::events::{
    AttachmentShared, MessageDeleted, MessageEdited, MessageFormat, MessageSent, SelfChatCreated,
};
use events_schema::{
    Accepted, ChatId, ClientId, Content, DomainEvent, Emoji, MessageId, Position, RecordedEvent,
    RefusalCode, UserId,
};

use super::chat::changes;
use super::messages::MessageBook;
use super::recent::RecentSends;
use super::{Aggregate, Decision, Refusal};

/// What a self chat can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfChatCommand {
    /// The self chat of `owner` comes to be (once; asking again answers with it).
    Create { owner: UserId },
    /// A note from `sender`; `message_id` is its id if a new message is written.
    Send {
        sender: UserId,
        content: Content,
        client_id: Option<ClientId>,
        message_id: MessageId,
        attachments: Vec<AttachmentShared>,
    },
    /// `editor` changes a note's text (as `ChatCommand::Edit`).
    Edit {
        editor: UserId,
        message_id: MessageId,
        content: Content,
        now: DateTime<Utc>,
        window: Duration,
    },
    /// `by` deletes a note.
    DeleteMessage { by: UserId, message_id: MessageId },
    /// `user` reacts to a note with `emoji` (`on`) or takes the reaction back.
    React {
        user: UserId,
        message_id: MessageId,
        emoji: Emoji,
        on: bool,
    },
}

/// Who owns a created self chat, and where it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub owner: UserId,
    pub at: Position,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfChat {
    pub created: Option<Created>,
    pub client_ids: RecentSends,
    pub messages: MessageBook,
    /// Position of the last event applied, for idempotent answers.
    pub last_position: Position,
}

impl Aggregate for SelfChat {
    type Command = SelfChatCommand;

    fn decide(&self, command: &SelfChatCommand) -> Result<Decision, Refusal> {
        match command {
            SelfChatCommand::Create { owner } => self.create(owner),
            SelfChatCommand::Send {
                sender,
                content,
                client_id,
                message_id,
                attachments,
            } => self.send(sender, content, client_id.as_ref(), message_id, attachments),
            SelfChatCommand::Edit {
                editor,
                message_id,
                content,
                now,
                window,
            } => {
                let owner = self.owned_by(editor)?;
                let message = changes::live(&self.messages, message_id)?;
                changes::may_edit(&message, editor, *now, *window)?;
                Ok(Decision::Append(vec![MessageEdited {
                    chat_id: ChatId::self_chat_of(owner),
                    message_id: message_id.clone(),
                    editor: editor.clone(),
                    content: content.clone(),
                }
                .into()]))
            }
            SelfChatCommand::DeleteMessage { by, message_id } => {
                let owner = self.owned_by(by)?;
                changes::live(&self.messages, message_id)?;
                Ok(Decision::Append(vec![MessageDeleted {
                    chat_id: ChatId::self_chat_of(owner),
                    message_id: message_id.clone(),
                    deleted_by: by.clone(),
                }
                .into()]))
            }
            SelfChatCommand::React {
                user,
                message_id,
                emoji,
                on,
            } => {
                let owner = self.owned_by(user)?;
                let chat_id = ChatId::self_chat_of(owner);
                let message = changes::live(&self.messages, message_id)?;
                match changes::reaction(&chat_id, message_id, &message, user, emoji, *on)? {
                    Some(event) => Ok(Decision::Append(vec![event])),
                    None => Ok(Decision::AlreadyDone(Accepted {
                        position: self.last_position,
                        chat_id: Some(chat_id),
                        ..Accepted::default()
                    })),
                }
            }
        }
    }

    fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent) {
        self.last_position = recorded.position;
        match event {
            DomainEvent::SelfChatCreated(e) => {
                self.created = Some(Created {
                    owner: e.owner.clone(),
                    at: recorded.position,
                });
            }
            DomainEvent::MessageSent(e) => {
                self.client_ids.remember_sent(e, recorded);
                self.messages.apply(event, recorded);
            }
            DomainEvent::MessageDeleted(_)
            | DomainEvent::ReactionAdded(_)
            | DomainEvent::ReactionRemoved(_) => self.messages.apply(event, recorded),
            _ => {}
        }
    }
}

impl SelfChat {
    /// The owner of the created self chat, if that is `user`.
    fn owned_by(&self, user: &UserId) -> Result<&UserId, Refusal> {
        match &self.created {
            None => Err(Refusal::new(RefusalCode::NotFound, "no such chat")),
            Some(Created { owner, .. }) if owner != user => Err(Refusal::new(
                RefusalCode::Forbidden,
                "only its owner writes to a self chat",
            )),
            Some(Created { owner, .. }) => Ok(owner),
        }
    }

    fn create(&self, owner: &UserId) -> Result<Decision, Refusal> {
        match &self.created {
            Some(created) => Ok(Decision::AlreadyDone(Accepted {
                position: created.at,
                chat_id: Some(ChatId::self_chat_of(owner)),
                ..Accepted::default()
            })),
            None => Ok(Decision::Append(vec![SelfChatCreated {
                chat_id: ChatId::self_chat_of(owner),
                owner: owner.clone(),
            }
            .into()])),
        }
    }

    fn send(
        &self,
        sender: &UserId,
        content: &Content,
        client_id: Option<&ClientId>,
        message_id: &MessageId,
        attachments: &[AttachmentShared],
    ) -> Result<Decision, Refusal> {
        let Some(Created { owner, .. }) = &self.created else {
            return Err(Refusal::new(
                RefusalCode::NotFound,
                "no self chat for this user",
            ));
        };
        if owner != sender {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "only its owner writes to a self chat",
            ));
        }
        if let Some(earlier) = client_id.and_then(|c| self.client_ids.get(sender, c)) {
            return Ok(Decision::AlreadyDone(Accepted {
                position: earlier.position,
                chat_id: Some(ChatId::self_chat_of(owner)),
                message_id: Some(earlier.message_id.clone()),
                occurred_at: Some(earlier.occurred_at),
            }));
        }
        Ok(Decision::Append(vec![MessageSent {
            chat_id: ChatId::self_chat_of(owner),
            message_id: message_id.clone(),
            sender_id: sender.clone(),
            content: content.clone(),
            format: MessageFormat::Text,
            client_id: client_id.cloned(),
            reply_to: None,
            attachments: attachments.to_vec(),
        }
        .into()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recent::CLIENT_ID_WINDOW;
    use crate::domain::testing::{given, occurred_at};

    fn me() -> UserId {
        UserId::parse("u1").unwrap()
    }

    fn m(id: &str) -> MessageId {
        MessageId::parse(id).unwrap()
    }

    fn hi() -> Content {
        Content::parse("hi").unwrap()
    }

    fn created(owner: &UserId) -> DomainEvent {
        SelfChatCreated {
            chat_id: ChatId::self_chat_of(owner),
            owner: owner.clone(),
        }
        .into()
    }

    fn send(sender: &UserId, client_id: Option<&str>, message_id: &str) -> SelfChatCommand {
        SelfChatCommand::Send {
            sender: sender.clone(),
            content: hi(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            message_id: m(message_id),
            attachments: Vec::new(),
        }
    }

    fn sent(sender: &UserId, client_id: Option<&str>, message_id: &str) -> DomainEvent {
        MessageSent {
            chat_id: ChatId::self_chat_of(sender),
            message_id: m(message_id),
            sender_id: sender.clone(),
            content: hi(),
            format: MessageFormat::Text,
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            reply_to: None,
            attachments: Vec::new(),
        }
        .into()
    }

    #[test]
    fn only_the_owner_writes_and_only_once_created() {
        let me = me();
        given::<SelfChat>([])
            .when(send(&me, None, "m1"))
            .then_refused(RefusalCode::NotFound);
        given::<SelfChat>([created(&me)])
            .when(send(&UserId::parse("u2").unwrap(), None, "m1"))
            .then_refused(RefusalCode::Forbidden)
            .when(send(&me, None, "m1"))
            .then([sent(&me, None, "m1")]);
    }

    #[test]
    fn a_repeated_client_id_answers_the_first_message() {
        let me = me();
        given::<SelfChat>([created(&me), sent(&me, Some("k1"), "m1")])
            .when(send(&me, Some("k1"), "m2"))
            .then_already_done(Accepted {
                position: 2,
                chat_id: Some(ChatId::self_chat_of(&me)),
                message_id: Some(m("m1")),
                occurred_at: Some(occurred_at(1)),
            })
            .when(send(&me, Some("k2"), "m2"))
            .then([sent(&me, Some("k2"), "m2")]);
    }

    #[test]
    fn the_client_id_window_is_bounded() {
        let me = me();
        let mut events = vec![created(&me)];
        for i in 0..(CLIENT_ID_WINDOW + 10) {
            events.push(sent(&me, Some(&format!("k{i}")), &format!("m{i}")));
        }
        let history = given::<SelfChat>(events);
        let window = &history.state().client_ids;
        assert_eq!(window.len(), CLIENT_ID_WINDOW);
        assert!(!window.contains_key(&me, &ClientId::parse("k0").unwrap()));
        let newest = ClientId::parse(&format!("k{}", CLIENT_ID_WINDOW + 9)).unwrap();
        assert!(window.contains_key(&me, &newest));
        // A key that fell out of the window is a new message again.
        history
            .when(send(&me, Some("k0"), "again"))
            .then([sent(&me, Some("k0"), "again")]);
    }

    #[test]
    fn only_the_owner_edits_deletes_and_reacts_to_a_note() {
        let (me, other) = (me(), UserId::parse("u2").unwrap());
        let chat_id = ChatId::self_chat_of(&me);
        let edit = |editor: &UserId, after: i64| SelfChatCommand::Edit {
            editor: editor.clone(),
            message_id: m("m1"),
            content: Content::parse("better").unwrap(),
            now: occurred_at(1) + chrono::Duration::seconds(after),
            window: Duration::from_secs(60),
        };
        let thumbs = Emoji::parse("👍").unwrap();
        given::<SelfChat>([created(&me), sent(&me, None, "m1")])
            .when(edit(&other, 1))
            .then_refused(RefusalCode::Forbidden)
            .when(edit(&me, 61))
            .then_refused(RefusalCode::Forbidden)
            .when(edit(&me, 60))
            .then([MessageEdited {
                chat_id: chat_id.clone(),
                message_id: m("m1"),
                editor: me.clone(),
                content: Content::parse("better").unwrap(),
            }
            .into()])
            .when(SelfChatCommand::React {
                user: me.clone(),
                message_id: m("m1"),
                emoji: thumbs.clone(),
                on: true,
            })
            .then([events_schema::events::ReactionAdded {
                chat_id: chat_id.clone(),
                message_id: m("m1"),
                user_id: me.clone(),
                emoji: thumbs,
            }
            .into()])
            .when(SelfChatCommand::DeleteMessage {
                by: me.clone(),
                message_id: m("m1"),
            })
            .then([MessageDeleted {
                chat_id,
                message_id: m("m1"),
                deleted_by: me.clone(),
            }
            .into()])
            .when(edit(&me, 1))
            .then_refused(RefusalCode::NotFound);
    }

    #[test]
    fn creating_twice_writes_once() {
        let me = me();
        given::<SelfChat>([])
            .when(SelfChatCommand::Create { owner: me.clone() })
            .then([created(&me)])
            .when(SelfChatCommand::Create { owner: me.clone() })
            .then_already_done(Accepted {
                position: 1,
                chat_id: Some(ChatId::self_chat_of(&me)),
                ..Accepted::default()
            });
    }
}
