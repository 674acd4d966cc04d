//! A group's administration: what its admin may do to it and its members, leaving it, and the
//! events that follow.

use events_schema::events::{
    AdminChanged, GroupDeleted, MemberAdded, MemberRemoved, RemovalReason,
};
use events_schema::{ChatKind, DomainEvent, RefusalCode, UserId};

use super::{no_such_chat, refuse, Chat, ChatState, Group, Member, MAX_GROUP_MEMBERS};
use crate::domain::{Decision, Refusal};

impl ChatState {
    /// Evolves a live group by one of its membership events; `last_message` is the stream version
    /// of the newest message.
    pub(super) fn group_changed(&mut self, event: &DomainEvent, last_message: Option<u64>) {
        let ChatState::Group(group) = self else {
            return;
        };
        match event {
            DomainEvent::MemberAdded(e) => {
                // A new member has nothing unread from before they joined.
                let read_up_to = last_message;
                let member = Member {
                    read_up_to,
                    delivered_up_to: read_up_to,
                };
                group.members.insert(e.member.clone(), member);
            }
            DomainEvent::MemberRemoved(e) => {
                group.members.remove(&e.member);
            }
            DomainEvent::AdminChanged(e) => group.admin = e.to.clone(),
            DomainEvent::GroupDeleted(_) => *self = ChatState::Deleted,
            _ => {}
        }
    }
}

impl Chat {
    /// The live group, if `actor` is its admin.
    fn administered_by(&self, actor: &UserId) -> Result<&Group, Refusal> {
        let ChatState::Group(group) = &self.state else {
            return Err(no_such_chat());
        };
        if group.admin != *actor {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "only the group admin may do this",
            ));
        }
        Ok(group)
    }

    pub(super) fn add_member(&self, actor: &UserId, member: &UserId) -> Result<Decision, Refusal> {
        let group = self.administered_by(actor)?;
        if group.members.contains_key(member) {
            return refuse(RefusalCode::Conflict, "Already in Group");
        }
        if group.members.len() >= MAX_GROUP_MEMBERS {
            return Err(Refusal::new(
                RefusalCode::Conflict,
                format!("the group is full ({MAX_GROUP_MEMBERS} members)"),
            ));
        }
        Ok(Decision::Append(vec![MemberAdded {
            chat_id: group.id.clone(),
            member: member.clone(),
        }
        .into()]))
    }

    pub(super) fn kick(&self, actor: &UserId, member: &UserId) -> Result<Decision, Refusal> {
        let group = self.administered_by(actor)?;
        if actor == member {
            return refuse(
                RefusalCode::BadRequest,
                "the admin cannot kick themselves; hand over admin and leave",
            );
        }
        if !group.members.contains_key(member) {
            return refuse(RefusalCode::NotFound, "not a member of this group");
        }
        Ok(Decision::Append(vec![MemberRemoved {
            chat_id: group.id.clone(),
            member: member.clone(),
            reason: RemovalReason::Kicked,
        }
        .into()]))
    }

    pub(super) fn change_admin(
        &self,
        actor: &UserId,
        member: &UserId,
    ) -> Result<Decision, Refusal> {
        let group = self.administered_by(actor)?;
        if actor == member {
            return refuse(RefusalCode::BadRequest, "already the admin");
        }
        if !group.members.contains_key(member) {
            return refuse(RefusalCode::NotFound, "not a member of this group");
        }
        Ok(Decision::Append(vec![AdminChanged {
            chat_id: group.id.clone(),
            from: actor.clone(),
            to: member.clone(),
        }
        .into()]))
    }

    pub(super) fn leave(&self, actor: &UserId) -> Result<Decision, Refusal> {
        let (chat_id, _) = self.member(ChatKind::Group, actor)?;
        if matches!(&self.state, ChatState::Group(group) if group.admin == *actor) {
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

    pub(super) fn delete(&self, actor: &UserId) -> Result<Decision, Refusal> {
        let group = self.administered_by(actor)?;
        Ok(Decision::Append(vec![GroupDeleted {
            chat_id: group.id.clone(),
        }
        .into()]))
    }
}
