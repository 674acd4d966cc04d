//! What delivery reads of the read models: chats with their members' stretches of membership
//! (remembered between events), and names.

use std::collections::HashMap;
use std::sync::Arc;

use events_schema::{ChatId, Position, UserId};
use projection_service::memberships::{self, Stretch};
use projection_service::queries::{self, ChatView};

use crate::state::AppState;

/// Chats and their members' stretches as the read models had them, so that delivering a message
/// costs no query. An entry is dropped by any event that changes the chat other than a message, a
/// read receipt or an added member, and reloaded (after the projector applied that event) on next
/// use; an added member is added to it, so a group built one member at a time reads its members
/// once, not once per add. Stretches make the members exact at each event's position, whatever
/// the read models applied since.
#[derive(Default)]
pub(super) struct ChatMemo {
    chats: HashMap<ChatId, Arc<ChatEntry>>,
}

/// A chat and who was a member of it when.
#[derive(Clone)]
pub(super) struct ChatEntry {
    pub view: ChatView,
    stretches: Vec<(Member, Stretch)>,
}

impl ChatEntry {
    /// The members at `position`: those whose stretch covers it (the event that made or ended a
    /// membership included).
    pub(super) fn members_at(&self, position: Position) -> Vec<Member> {
        self.stretches
            .iter()
            .filter(|(_, s)| s.covers(position))
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// What delivery needs of a member: whom to address, and the name a message's `Sender` carries.
#[derive(Clone)]
pub(super) struct Member {
    pub id: UserId,
    pub name: String,
}

impl ChatMemo {
    const CAPACITY: usize = 10_000;

    /// The chat, with every stretch of membership that did not end before `from` (the position
    /// being delivered; later events only move forward).
    pub(super) async fn get(
        &mut self,
        state: &AppState,
        chat: &ChatId,
        from: Position,
    ) -> anyhow::Result<Option<Arc<ChatEntry>>> {
        if let Some(found) = self.chats.get(chat) {
            return Ok(Some(found.clone()));
        }
        let Some(view) = queries::chat(&state.reads, chat).await? else {
            return Ok(None);
        };
        let stretches = memberships::of_chat(&state.reads, chat, from)
            .await?
            .into_iter()
            .map(|m| {
                let member = Member {
                    id: m.user_id,
                    name: m.name,
                };
                (member, m.stretch)
            })
            .collect();
        if self.chats.len() >= Self::CAPACITY {
            self.chats.clear();
        }
        let entry = Arc::new(ChatEntry { view, stretches });
        self.chats.insert(chat.clone(), entry.clone());
        Ok(Some(entry))
    }

    /// The members of `chat` at `position` (none for a chat the read models do not know).
    pub(super) async fn members_at(
        &mut self,
        state: &AppState,
        chat: &ChatId,
        position: Position,
    ) -> anyhow::Result<Vec<Member>> {
        Ok(self
            .get(state, chat, position)
            .await?
            .map(|entry| entry.members_at(position))
            .unwrap_or_default())
    }

    pub(super) fn forget(&mut self, chat: &ChatId) {
        self.chats.remove(chat);
    }

    /// Forgets every chat `user` is a member of (their name changed).
    pub(super) fn forget_member(&mut self, user: &UserId) {
        self.chats
            .retain(|_, entry| !entry.stretches.iter().any(|(m, _)| m.id == *user));
    }

    /// The chat with `member` a member from `position` on: read as [`ChatMemo::get`] does, with
    /// the stretch added when the entry was read before the read models had applied the add.
    pub(super) async fn with_member(
        &mut self,
        state: &AppState,
        chat: &ChatId,
        member: Member,
        position: Position,
    ) -> anyhow::Result<Option<Arc<ChatEntry>>> {
        if self.get(state, chat, position).await?.is_none() {
            return Ok(None);
        }
        // Taken out of the map, the entry is shared with nobody, so it is changed in place.
        let Some(mut entry) = self.chats.remove(chat) else {
            return Ok(None);
        };
        let stretches = &mut Arc::make_mut(&mut entry).stretches;
        if !stretches
            .iter()
            .any(|(m, s)| m.id == member.id && s.covers(position))
        {
            let stretch = Stretch {
                since: position,
                until: None,
            };
            stretches.push((member, stretch));
        }
        self.chats.insert(chat.clone(), entry.clone());
        Ok(Some(entry))
    }
}

/// The stored name of `user` (empty for a user the read models do not know).
pub(super) async fn name_of(state: &AppState, user: &UserId) -> anyhow::Result<String> {
    Ok(queries::user(&state.reads, user)
        .await?
        .map(|u| u.name)
        .unwrap_or_default())
}
