//! Personal chats and groups (stream `chat-<chatId>`). The state holds only what decisions need:
//! the kind, the members with their read pointers, the admin, whether the group is deleted, the
//! version of the newest message and the recent `ClientId`s. It never holds the messages, so
//! deciding costs the same on a chat of a hundred thousand messages as on an empty one.

use std::collections::BTreeMap;

use events_schema::events::{
    AdminChanged, GroupCreated, GroupDeleted, MemberAdded, MemberRemoved, MessageFormat,
    MessageRead, MessageSent, PersonalChatCreated, RemovalReason,
};
use events_schema::{
    Accepted, ChatId, ChatKind, ClientId, Content, Description, DomainEvent, GroupName, MessageId,
    Position, RecordedEvent, RefusalCode, UserId,
};

use super::recent::RecentSends;
use super::{Aggregate, Decision, Refusal};

/// A current member and how far they have read (the stream version of the last message read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub read_up_to: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chat {
    pub id: Option<ChatId>,
    pub kind: Option<ChatKind>,
    pub name: String,
    pub admin: Option<UserId>,
    pub members: BTreeMap<UserId, Member>,
    pub deleted: bool,
    /// Stream version of the newest message.
    pub last_message: Option<u64>,
    pub created_at: Position,
    /// Position of the last event applied, for idempotent answers.
    pub last_position: Position,
    pub client_ids: RecentSends,
}

impl Aggregate for Chat {
    fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent) {
        self.last_position = recorded.position;
        match event {
            DomainEvent::PersonalChatCreated(e) => {
                self.id = Some(e.chat_id.clone());
                self.kind = Some(ChatKind::Personal);
                self.created_at = recorded.position;
                self.members.insert(e.creator.clone(), Member::default());
                self.members.insert(e.partner.clone(), Member::default());
            }
            DomainEvent::GroupCreated(e) => {
                self.id = Some(e.chat_id.clone());
                self.kind = Some(ChatKind::Group);
                self.created_at = recorded.position;
                self.name = e.name.clone();
                self.admin = Some(e.admin.clone());
                for member in &e.members {
                    self.members.insert(member.clone(), Member::default());
                }
            }
            DomainEvent::MessageSent(e) => {
                self.last_message = Some(recorded.version);
                // The sender has read their own message.
                if let Some(sender) = self.members.get_mut(&e.sender_id) {
                    sender.read_up_to = Some(recorded.version);
                }
                self.client_ids.remember_sent(e, recorded);
            }
            DomainEvent::MessageRead(e) => {
                if let Some(reader) = self.members.get_mut(&e.reader) {
                    reader.read_up_to = reader.read_up_to.max(Some(e.up_to_version));
                }
            }
            DomainEvent::MemberAdded(e) => {
                // A new member has nothing unread from before they joined.
                self.members.insert(
                    e.member.clone(),
                    Member {
                        read_up_to: self.last_message,
                    },
                );
            }
            DomainEvent::MemberRemoved(e) => {
                self.members.remove(&e.member);
            }
            DomainEvent::AdminChanged(e) => self.admin = Some(e.to.clone()),
            DomainEvent::GroupDeleted(_) => self.deleted = true,
            DomainEvent::UserRegistered(_)
            | DomainEvent::UserRenamed(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::SelfChatCreated(_) => {}
        }
    }
}

fn refuse(code: RefusalCode, message: &str) -> Result<Decision, Refusal> {
    Err(Refusal::new(code, message))
}

impl Chat {
    fn done(&self, position: Position) -> Decision {
        Decision::AlreadyDone(Accepted {
            position,
            chat_id: self.id.clone(),
            ..Accepted::default()
        })
    }

    /// The chat as it must be for any request of `kind`: existing, of that kind, not deleted.
    fn live(&self, kind: ChatKind) -> Result<&ChatId, Refusal> {
        match (&self.id, self.kind) {
            (Some(id), Some(k)) if k == kind && !self.deleted => Ok(id),
            _ => Err(Refusal::new(RefusalCode::NotFound, "no such chat")),
        }
    }

    fn member(&self, kind: ChatKind, user: &UserId) -> Result<&ChatId, Refusal> {
        let id = self.live(kind)?;
        if !self.members.contains_key(user) {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "not a member of this chat",
            ));
        }
        Ok(id)
    }

    fn admin(&self, actor: &UserId) -> Result<&ChatId, Refusal> {
        let id = self.live(ChatKind::Group)?;
        if self.admin.as_ref() != Some(actor) {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "only the group admin may do this",
            ));
        }
        Ok(id)
    }

    /// The personal chat of `creator` and `partner` at `chat_id` (the pair's id): created once;
    /// asking again answers with the existing chat.
    pub fn create_personal(
        &self,
        chat_id: &ChatId,
        creator: &UserId,
        partner: &UserId,
    ) -> Result<Decision, Refusal> {
        match self.kind {
            Some(ChatKind::Personal) => Ok(self.done(self.created_at)),
            Some(ChatKind::Group) => refuse(RefusalCode::Conflict, "the id is taken"),
            None => Ok(Decision::Append(vec![PersonalChatCreated {
                chat_id: chat_id.clone(),
                creator: creator.clone(),
                partner: partner.clone(),
            }
            .into()])),
        }
    }

    /// A new group of the admin and `participants` (users the caller has checked exist). A
    /// participant named twice refuses the whole request; the admin named among them is ignored
    /// (they are a member anyway).
    pub fn create_group(
        &self,
        chat_id: &ChatId,
        admin: &UserId,
        name: &GroupName,
        description: &Description,
        participants: &[UserId],
    ) -> Result<Decision, Refusal> {
        if self.kind.is_some() {
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
        Ok(Decision::Append(vec![GroupCreated {
            chat_id: chat_id.clone(),
            name: name.as_str().to_owned(),
            description: description.as_str().to_owned(),
            admin: admin.clone(),
            members,
        }
        .into()]))
    }

    pub fn send(
        &self,
        kind: ChatKind,
        sender: &UserId,
        content: &Content,
        client_id: Option<&ClientId>,
        message_id: MessageId,
    ) -> Result<Decision, Refusal> {
        let chat_id = self.member(kind, sender)?;
        if let Some(earlier) = client_id.and_then(|c| self.client_ids.get(c)) {
            return Ok(Decision::AlreadyDone(Accepted {
                position: earlier.position,
                chat_id: Some(chat_id.clone()),
                message_id: Some(earlier.message_id.clone()),
                occurred_at: Some(earlier.occurred_at),
            }));
        }
        Ok(Decision::Append(vec![MessageSent {
            chat_id: chat_id.clone(),
            message_id,
            sender_id: sender.clone(),
            content: content.clone(),
            format: MessageFormat::Text,
            client_id: client_id.cloned(),
        }
        .into()]))
    }

    /// Moves the reader's pointer to the newest message: one event however many were unread, and
    /// none when nothing is unread.
    pub fn mark_read(&self, kind: ChatKind, reader: &UserId) -> Result<Decision, Refusal> {
        let chat_id = self.member(kind, reader)?;
        let pointer = self.members.get(reader).and_then(|m| m.read_up_to);
        match self.last_message {
            Some(last) if pointer < Some(last) => Ok(Decision::Append(vec![MessageRead {
                chat_id: chat_id.clone(),
                reader: reader.clone(),
                up_to_version: last,
            }
            .into()])),
            _ => Ok(self.done(self.last_position)),
        }
    }

    /// The admin adds `member` (an existing, verified user, checked by the caller).
    pub fn add_member(&self, actor: &UserId, member: &UserId) -> Result<Decision, Refusal> {
        let chat_id = self.admin(actor)?;
        if self.members.contains_key(member) {
            return refuse(RefusalCode::Conflict, "Already in Group");
        }
        Ok(Decision::Append(vec![MemberAdded {
            chat_id: chat_id.clone(),
            member: member.clone(),
        }
        .into()]))
    }

    pub fn kick(&self, actor: &UserId, member: &UserId) -> Result<Decision, Refusal> {
        let chat_id = self.admin(actor)?;
        if actor == member {
            return refuse(
                RefusalCode::BadRequest,
                "the admin cannot kick themselves; hand over admin and leave",
            );
        }
        if !self.members.contains_key(member) {
            return refuse(RefusalCode::NotFound, "not a member of this group");
        }
        Ok(Decision::Append(vec![MemberRemoved {
            chat_id: chat_id.clone(),
            member: member.clone(),
            reason: RemovalReason::Kicked,
        }
        .into()]))
    }

    pub fn change_admin(&self, actor: &UserId, member: &UserId) -> Result<Decision, Refusal> {
        let chat_id = self.admin(actor)?;
        if actor == member {
            return refuse(RefusalCode::BadRequest, "already the admin");
        }
        if !self.members.contains_key(member) {
            return refuse(RefusalCode::NotFound, "not a member of this group");
        }
        Ok(Decision::Append(vec![AdminChanged {
            chat_id: chat_id.clone(),
            from: actor.clone(),
            to: member.clone(),
        }
        .into()]))
    }

    pub fn leave(&self, actor: &UserId) -> Result<Decision, Refusal> {
        let chat_id = self.member(ChatKind::Group, actor)?;
        if self.admin.as_ref() == Some(actor) {
            return refuse(
                RefusalCode::Forbidden,
                "the admin cannot leave; hand over admin first",
            );
        }
        Ok(Decision::Append(vec![MemberRemoved {
            chat_id: chat_id.clone(),
            member: actor.clone(),
            reason: RemovalReason::Left,
        }
        .into()]))
    }

    pub fn delete(&self, actor: &UserId) -> Result<Decision, Refusal> {
        let chat_id = self.admin(actor)?;
        Ok(Decision::Append(vec![GroupDeleted {
            chat_id: chat_id.clone(),
        }
        .into()]))
    }
}

#[cfg(test)]
mod tests;
