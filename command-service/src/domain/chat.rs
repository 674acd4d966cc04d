//! Personal chats and groups (stream `chat-<chatId>`). The state holds only what decisions need:
//! where the chat is in its life (not yet created, personal, group, deleted), its members with
//! their read pointers, the admin of a group, the version of the newest message and the recent
//! `ClientId`s. It never holds the messages, so deciding costs the same on a chat of a hundred
//! thousand messages as on an empty one. What a group's admin may do, and the membership events
//! that follow, are in `chat/group.rs`; edits, deletions and reactions in `chat/changes.rs`, decided
//! on the few facts per message that `messages::MessageBook` keeps (sender, time, deleted,
//! reactions), never their text.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use events_schema::events::{
    AttachmentShared, GroupCreated, MessageFormat, MessageRead, MessageSent, MessagesDelivered,
    PersonalChatCreated,
};
use events_schema::{
    Accepted, ChatId, ChatKind, ClientId, Content, Description, DomainEvent, Emoji, GroupName,
    MessageId, Position, RecordedEvent, RefusalCode, UserId,
};

use super::messages::MessageBook;
use super::recent::RecentSends;
use super::{Aggregate, Decision, Refusal};

/// The most members a group may have, the admin included. Every message is delivered to each of
/// them and every page carries each one's read status, so the cost of one request grows with it.
pub const MAX_GROUP_MEMBERS: usize = 1000;

/// What a chat can be asked to do. The acting user is named in each command; checks that need
/// other streams (that a user exists and is verified) are made before a command is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// The personal chat of `creator` and `partner` at `chat_id` (the pair's id).
    CreatePersonal {
        chat_id: ChatId,
        creator: UserId,
        partner: UserId,
    },
    /// A new group of `admin` and `participants` (users checked to exist).
    CreateGroup {
        chat_id: ChatId,
        admin: UserId,
        name: GroupName,
        description: Description,
        participants: Vec<UserId>,
    },
    /// A message from `sender`; `message_id` is its id if a new message is written.
    Send {
        kind: ChatKind,
        sender: UserId,
        content: Content,
        client_id: Option<ClientId>,
        message_id: MessageId,
        /// A live message of this chat that this one answers.
        reply_to: Option<MessageId>,
        /// Files the sender uploaded (the gateway checked that they are theirs).
        attachments: Vec<AttachmentShared>,
    },
    /// `editor` changes the text of their message; `now` is when they ask, and the message may be
    /// edited until `window` after it was sent.
    Edit {
        editor: UserId,
        message_id: MessageId,
        content: Content,
        now: DateTime<Utc>,
        window: Duration,
    },
    /// `by` deletes a message: theirs, or any as the group's admin.
    DeleteMessage {
        by: UserId,
        message_id: MessageId,
    },
    /// `user` reacts with `emoji` (`on`) or takes the reaction back.
    React {
        user: UserId,
        message_id: MessageId,
        emoji: Emoji,
        on: bool,
    },
    /// `reader` has read everything so far, or up to `up_to` (never back).
    MarkRead {
        kind: ChatKind,
        reader: UserId,
        up_to: Option<MessageId>,
    },
    /// `reader`'s devices have received the chat up to `up_to` (never back).
    MarkDelivered {
        reader: UserId,
        up_to: MessageId,
    },
    /// `admin` adds `member` (an existing, verified user).
    AddMember {
        admin: UserId,
        member: UserId,
    },
    Kick {
        admin: UserId,
        member: UserId,
    },
    ChangeAdmin {
        admin: UserId,
        member: UserId,
    },
    Leave {
        member: UserId,
    },
    Delete {
        admin: UserId,
    },
}

/// A current member and how far they have read and received (the stream versions of the last
/// message read and delivered; reading a message delivers it too, so the delivered pointer that
/// counts is the greater of the two).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub read_up_to: Option<u64>,
    pub delivered_up_to: Option<u64>,
}

pub type Members = BTreeMap<UserId, Member>;

/// A personal chat: its two members, for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    pub id: ChatId,
    /// Position of its creation, the answer to creating it again.
    pub created_at: Position,
    pub members: Members,
}

/// A live group: its members and its admin, who is one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: ChatId,
    pub admin: UserId,
    pub members: Members,
}

/// Where a chat is in its life. Each state holds what its rules read, and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ChatState {
    /// Nothing was created at this id.
    #[default]
    New,
    Personal(Personal),
    Group(Group),
    /// A deleted group: its id stays taken and it accepts nothing more.
    Deleted,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chat {
    pub state: ChatState,
    /// Stream version of the newest message.
    pub last_message: Option<u64>,
    /// Position of the last event applied, for idempotent answers.
    pub last_position: Position,
    pub client_ids: RecentSends,
    /// What the rules need of each message.
    pub messages: MessageBook,
}

impl Aggregate for Chat {
    type Command = ChatCommand;

    fn decide(&self, command: &ChatCommand) -> Result<Decision, Refusal> {
        match command {
            ChatCommand::CreatePersonal {
                chat_id,
                creator,
                partner,
            } => self.create_personal(chat_id, creator, partner),
            ChatCommand::CreateGroup {
                chat_id,
                admin,
                name,
                description,
                participants,
            } => self.create_group(chat_id, admin, name, description, participants),
            ChatCommand::Send {
                kind,
                sender,
                content,
                client_id,
                message_id,
                reply_to,
                attachments,
            } => self.send(
                *kind,
                sender,
                content,
                client_id.as_ref(),
                message_id,
                reply_to.as_ref(),
                attachments,
            ),
            ChatCommand::Edit {
                editor,
                message_id,
                content,
                now,
                window,
            } => self.edit(editor, message_id, content, *now, *window),
            ChatCommand::DeleteMessage { by, message_id } => self.delete_message(by, message_id),
            ChatCommand::React {
                user,
                message_id,
                emoji,
                on,
            } => self.react(user, message_id, emoji, *on),
            ChatCommand::MarkRead {
                kind,
                reader,
                up_to,
            } => self.mark_read(*kind, reader, up_to.as_ref()),
            ChatCommand::MarkDelivered { reader, up_to } => self.mark_delivered(reader, up_to),
            ChatCommand::AddMember { admin, member } => self.add_member(admin, member),
            ChatCommand::Kick { admin, member } => self.kick(admin, member),
            ChatCommand::ChangeAdmin { admin, member } => self.change_admin(admin, member),
            ChatCommand::Leave { member } => self.leave(member),
            ChatCommand::Delete { admin } => self.delete(admin),
        }
    }

    fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent) {
        self.last_position = recorded.position;
        match event {
            DomainEvent::PersonalChatCreated(e) if matches!(self.state, ChatState::New) => {
                self.state = ChatState::Personal(Personal {
                    id: e.chat_id.clone(),
                    created_at: recorded.position,
                    members: unread([e.creator.clone(), e.partner.clone()]),
                });
            }
            DomainEvent::GroupCreated(e) if matches!(self.state, ChatState::New) => {
                self.state = ChatState::Group(Group {
                    id: e.chat_id.clone(),
                    admin: e.admin.clone(),
                    members: unread(e.members.iter().cloned()),
                });
            }
            DomainEvent::MessageSent(e) => {
                self.last_message = Some(recorded.version);
                // The sender has read their own message.
                if let Some(sender) = self.state.member_mut(&e.sender_id) {
                    sender.read_up_to = Some(recorded.version);
                }
                self.client_ids.remember_sent(e, recorded);
                self.messages.apply(event, recorded);
            }
            DomainEvent::MessageDeleted(_)
            | DomainEvent::ReactionAdded(_)
            | DomainEvent::ReactionRemoved(_) => self.messages.apply(event, recorded),
            DomainEvent::MessageRead(e) => {
                if let Some(reader) = self.state.member_mut(&e.reader) {
                    reader.read_up_to = reader.read_up_to.max(Some(e.up_to_version));
                }
            }
            DomainEvent::MessagesDelivered(e) => {
                if let Some(reader) = self.state.member_mut(&e.reader) {
                    reader.delivered_up_to = reader.delivered_up_to.max(Some(e.up_to_version));
                }
            }
            DomainEvent::MemberAdded(_)
            | DomainEvent::MemberRemoved(_)
            | DomainEvent::AdminChanged(_)
            | DomainEvent::GroupDeleted(_) => self.state.group_changed(event, self.last_message),
            // Events no decision of this chat makes in its present state change nothing.
            _ => {}
        }
    }
}

/// Members who have read nothing yet.
fn unread(users: impl IntoIterator<Item = UserId>) -> Members {
    users.into_iter().map(|u| (u, Member::default())).collect()
}

impl ChatState {
    /// A member of a live chat; none before it is created or once it is deleted.
    fn member_mut(&mut self, user: &UserId) -> Option<&mut Member> {
        match self {
            ChatState::Personal(chat) => chat.members.get_mut(user),
            ChatState::Group(group) => group.members.get_mut(user),
            ChatState::New | ChatState::Deleted => None,
        }
    }
}

fn refuse(code: RefusalCode, message: &str) -> Result<Decision, Refusal> {
    Err(Refusal::new(code, message))
}

fn no_such_chat() -> Refusal {
    Refusal::new(RefusalCode::NotFound, "no such chat")
}

impl Chat {
    fn done(&self, chat_id: &ChatId, position: Position) -> Decision {
        Decision::AlreadyDone(Accepted {
            position,
            chat_id: Some(chat_id.clone()),
            ..Accepted::default()
        })
    }

    /// The chat as any request of `kind` needs it: live, and of that kind.
    fn live(&self, kind: ChatKind) -> Result<(&ChatId, &Members), Refusal> {
        match (&self.state, kind) {
            (ChatState::Personal(chat), ChatKind::Personal) => Ok((&chat.id, &chat.members)),
            (ChatState::Group(group), ChatKind::Group) => Ok((&group.id, &group.members)),
            _ => Err(no_such_chat()),
        }
    }

    fn member(&self, kind: ChatKind, user: &UserId) -> Result<(&ChatId, &Members), Refusal> {
        let (id, members) = self.live(kind)?;
        if !members.contains_key(user) {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "not a member of this chat",
            ));
        }
        Ok((id, members))
    }

    /// Created once; asking again answers with the existing chat.
    fn create_personal(
        &self,
        chat_id: &ChatId,
        creator: &UserId,
        partner: &UserId,
    ) -> Result<Decision, Refusal> {
        match &self.state {
            ChatState::Personal(chat) => Ok(self.done(&chat.id, chat.created_at)),
            ChatState::Group(_) | ChatState::Deleted => {
                refuse(RefusalCode::Conflict, "the id is taken")
            }
            ChatState::New => Ok(Decision::Append(vec![PersonalChatCreated {
                chat_id: chat_id.clone(),
                creator: creator.clone(),
                partner: partner.clone(),
            }
            .into()])),
        }
    }

    /// A participant named twice refuses the whole request; the admin named among them is ignored
    /// (they are a member anyway).
    fn create_group(
        &self,
        chat_id: &ChatId,
        admin: &UserId,
        name: &GroupName,
        description: &Description,
        participants: &[UserId],
    ) -> Result<Decision, Refusal> {
        if !matches!(self.state, ChatState::New) {
            return refuse(RefusalCode::Conflict, "the id is taken");
        }
        let mut members = vec![admin.clone()];
        for participant in participants.iter().filter(|p| *p != admin) {
            if members.contains(participant) {
                return Err(Refusal::new(
                    RefusalCode::BadRequest,
                    format!("participant {participant} is listed twice"),
                ));
            }
            members.push(participant.clone());
        }
        if members.len() > MAX_GROUP_MEMBERS {
            return Err(Refusal::new(
                RefusalCode::BadRequest,
                format!("a group has at most {MAX_GROUP_MEMBERS} members, the admin included"),
            ));
        }
        Ok(Decision::Append(vec![GroupCreated {
            chat_id: chat_id.clone(),
            name: name.as_str().to_owned(),
            description: description.as_str().to_owned(),
            admin: admin.clone(),
            members,
        }
        .into()]))
    }

    /// A repeated `ClientId` of the same sender answers with the message it first sent. A reply
    /// names a live message of this chat, else it is refused `not_found`.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        kind: ChatKind,
        sender: &UserId,
        content: &Content,
        client_id: Option<&ClientId>,
        message_id: &MessageId,
        reply_to: Option<&MessageId>,
        attachments: &[AttachmentShared],
    ) -> Result<Decision, Refusal> {
        let (chat_id, _) = self.member(kind, sender)?;
        if let Some(earlier) = client_id.and_then(|c| self.client_ids.get(sender, c)) {
            return Ok(Decision::AlreadyDone(Accepted {
                position: earlier.position,
                chat_id: Some(chat_id.clone()),
                message_id: Some(earlier.message_id.clone()),
                occurred_at: Some(earlier.occurred_at),
            }));
        }
        if let Some(answered) = reply_to {
            changes::live(&self.messages, answered)?;
        }
        Ok(Decision::Append(vec![MessageSent {
            chat_id: chat_id.clone(),
            message_id: message_id.clone(),
            sender_id: sender.clone(),
            content: content.clone(),
            format: MessageFormat::Text,
            client_id: client_id.cloned(),
            reply_to: reply_to.cloned(),
            attachments: attachments.to_vec(),
        }
        .into()]))
    }

    /// Moves the reader's pointer to the newest message, or to `up_to`: one event however many
    /// were unread, and none when it would not move forward. `up_to` must be a message of the
    /// chat (deleted or not: it names a place), else `not_found`.
    fn mark_read(
        &self,
        kind: ChatKind,
        reader: &UserId,
        up_to: Option<&MessageId>,
    ) -> Result<Decision, Refusal> {
        let (chat_id, members) = self.member(kind, reader)?;
        let pointer = members.get(reader).and_then(|m| m.read_up_to);
        let target = match up_to {
            None => self.last_message,
            Some(id) => Some(self.place_of(id)?),
        };
        match target {
            Some(last) if pointer < Some(last) => Ok(Decision::Append(vec![MessageRead {
                chat_id: chat_id.clone(),
                reader: reader.clone(),
                up_to_version: last,
            }
            .into()])),
            _ => Ok(self.done(chat_id, self.last_position)),
        }
    }

    /// Moves the reader's delivered pointer to `up_to`, if that is past both their pointers.
    fn mark_delivered(&self, reader: &UserId, up_to: &MessageId) -> Result<Decision, Refusal> {
        let chat_id = self.joined(reader)?;
        let target = self.place_of(up_to)?;
        let me = match &self.state {
            ChatState::Personal(chat) => chat.members.get(reader),
            ChatState::Group(group) => group.members.get(reader),
            ChatState::New | ChatState::Deleted => None,
        };
        let pointer = me.and_then(|m| m.delivered_up_to.max(m.read_up_to));
        if pointer >= Some(target) {
            return Ok(self.done(chat_id, self.last_position));
        }
        Ok(Decision::Append(vec![MessagesDelivered {
            chat_id: chat_id.clone(),
            reader: reader.clone(),
            up_to_version: target,
        }
        .into()]))
    }

    /// The stream version of a message of this chat.
    fn place_of(&self, id: &MessageId) -> Result<u64, Refusal> {
        self.messages
            .get(id)
            .map(|m| m.version())
            .ok_or_else(|| Refusal::new(RefusalCode::NotFound, "no such message in this chat"))
    }
}

pub(crate) mod changes;
mod group;
#[cfg(test)]
mod tests;
