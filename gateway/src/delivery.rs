//! Delivery: events the read models have applied become emits to the sockets of this node. Every
//! node gets every event, so no node needs to know where a user is connected. Events are delivered
//! in log order, so every socket sees a chat's messages in the order `fetch-…` returns them.

use std::collections::HashMap;
use std::sync::Arc;

use events_schema::events::{
    AdminChanged, GroupCreated, GroupDeleted, MemberAdded, MemberRemoved, MessageRead, MessageSent,
    PersonalChatCreated, RemovalReason,
};
use events_schema::{ChatId, DomainEvent, RecordedEvent, UserId};
use projection_service::queries::{self, ChatView, Kind, MemberView};
use serde_json::{json, Value};
use socketioxide::socket::Sid;
use tokio::sync::mpsc;

use crate::socket::{outbound, user_room};
use crate::state::AppState;
use crate::wire::timestamp;

/// Delivers batches of applied events until the channel closes.
pub async fn run(state: AppState, mut applied: mpsc::Receiver<Vec<Arc<RecordedEvent>>>) {
    let mut chats = ChatMemo::default();
    while let Some(batch) = applied.recv().await {
        for event in batch {
            if let Err(e) = deliver(&state, &mut chats, &event).await {
                tracing::warn!(position = event.position, error = %e, "event not delivered");
            }
        }
    }
}

/// Chats and their members as the read models had them, so that delivering a message costs no
/// query. An entry is dropped by any event that changes the chat other than a message, a read
/// receipt or an added member, and reloaded (after the projector applied that event) on next use;
/// an added member is added to it, so a group built one member at a time reads its member list
/// once, not once per add.
#[derive(Default)]
struct ChatMemo {
    chats: HashMap<ChatId, Arc<(ChatView, Vec<Member>)>>,
}

/// What delivery needs of a member: whom to address, and the name a message's `Sender` carries.
#[derive(Clone)]
struct Member {
    id: UserId,
    name: String,
}

impl From<MemberView> for Member {
    fn from(m: MemberView) -> Self {
        Self {
            id: m.id,
            name: m.name,
        }
    }
}

impl ChatMemo {
    const CAPACITY: usize = 10_000;

    async fn get(
        &mut self,
        state: &AppState,
        chat: &ChatId,
    ) -> anyhow::Result<Option<Arc<(ChatView, Vec<Member>)>>> {
        if let Some(found) = self.chats.get(chat) {
            return Ok(Some(found.clone()));
        }
        let Some(view) = queries::chat(&state.reads, chat).await? else {
            return Ok(None);
        };
        let members = members(state, chat).await?;
        if self.chats.len() >= Self::CAPACITY {
            self.chats.clear();
        }
        let entry = Arc::new((view, members));
        self.chats.insert(chat.clone(), entry.clone());
        Ok(Some(entry))
    }

    fn forget(&mut self, chat: &ChatId) {
        self.chats.remove(chat);
    }

    /// The chat with `member` among its members: read as [`ChatMemo::get`] does, with the member
    /// added when the read models had not applied the add yet when the entry was read.
    async fn with_member(
        &mut self,
        state: &AppState,
        chat: &ChatId,
        member: Member,
    ) -> anyhow::Result<Option<Arc<(ChatView, Vec<Member>)>>> {
        if self.get(state, chat).await?.is_none() {
            return Ok(None);
        }
        // Taken out of the map, the entry is shared with nobody, so it is changed in place.
        let Some(mut entry) = self.chats.remove(chat) else {
            return Ok(None);
        };
        let (_, members) = Arc::make_mut(&mut entry);
        if !members.iter().any(|m| m.id == member.id) {
            members.push(member);
        }
        self.chats.insert(chat.clone(), entry.clone());
        Ok(Some(entry))
    }
}

/// Who gets an event: every socket of `users`, except the requesting socket.
struct Audience {
    users: Vec<UserId>,
    except: Option<Sid>,
}

impl Audience {
    fn users(users: impl IntoIterator<Item = UserId>) -> Self {
        Self {
            users: users.into_iter().collect(),
            except: None,
        }
    }

    fn but_origin(mut self, origin: Option<Sid>) -> Self {
        self.except = origin;
        self
    }
}

fn emit(state: &AppState, audience: Audience, event: &'static str, payload: Value) {
    if audience.users.is_empty() {
        return;
    }
    let Some(io) = state.io() else { return };
    let rooms: Vec<String> = audience.users.iter().map(user_room).collect();
    // One socket at a time rather than one broadcast, so that a socket whose buffer is full is
    // known and disconnected (outbound.rs); the payload is serialized once. The origin is skipped
    // here rather than through a room of its own, which every socket would have to keep.
    let Some(payload) = outbound::encode(&payload) else {
        return;
    };
    for socket in io.to(rooms).sockets() {
        if Some(socket.id) != audience.except {
            outbound::emit(&socket, event, &payload);
        }
    }
}

fn others(members: &[Member], but: &UserId) -> Vec<UserId> {
    members
        .iter()
        .filter(|m| &m.id != but)
        .map(|m| m.id.clone())
        .collect()
}

async fn name_of(state: &AppState, user: &UserId) -> anyhow::Result<String> {
    Ok(queries::user(&state.reads, user)
        .await?
        .map(|u| u.name)
        .unwrap_or_default())
}

async fn members(state: &AppState, chat: &ChatId) -> anyhow::Result<Vec<Member>> {
    let members = queries::members(&state.reads, chat).await?;
    Ok(members.into_iter().map(Member::from).collect())
}

fn actor_of(recorded: &RecordedEvent) -> Option<UserId> {
    recorded
        .actor
        .as_deref()
        .and_then(|a| UserId::parse(a).ok())
}

async fn deliver(
    state: &AppState,
    memo: &mut ChatMemo,
    recorded: &RecordedEvent,
) -> anyhow::Result<()> {
    let event = DomainEvent::from_recorded(recorded)?;
    if !matches!(
        event,
        DomainEvent::MessageSent(_) | DomainEvent::MessageRead(_) | DomainEvent::MemberAdded(_)
    ) {
        if let Some(chat) = event.chat_id() {
            memo.forget(chat);
        }
    }
    // The request's own socket is answered by its ack; deliveries skip it where the protocol says
    // "the sender's other sockets".
    let origin = state.origins.take(&recorded.correlation_id);
    let actor = actor_of(recorded);
    match event {
        DomainEvent::MessageSent(sent) => {
            deliver_message(state, memo, recorded, &sent, origin).await?
        }
        DomainEvent::MessageRead(MessageRead {
            chat_id, reader, ..
        }) => {
            let Some(entry) = memo.get(state, &chat_id).await? else {
                return Ok(());
            };
            let (chat, everyone) = &*entry;
            let to = Audience::users(others(everyone, &reader));
            match chat.kind {
                Kind::Personal => emit(
                    state,
                    to,
                    "read-personal-msg-ack",
                    json!({"ChatId": chat_id, "Reader": reader}),
                ),
                Kind::Group => emit(
                    state,
                    to,
                    "read-grp-msg-ack",
                    json!({"Reader": reader, "ChatId": chat_id}),
                ),
                Kind::SelfChat => {}
            }
        }
        DomainEvent::PersonalChatCreated(PersonalChatCreated {
            chat_id,
            creator,
            partner,
        }) => {
            let name = name_of(state, &creator).await?;
            let payload = json!({"ChatId": chat_id, "Partner": name, "PartnerId": creator});
            emit(
                state,
                Audience::users([partner]),
                "create-personal-chat-partner",
                payload,
            );
        }
        DomainEvent::GroupCreated(GroupCreated {
            chat_id,
            name,
            admin,
            members,
            ..
        }) => {
            let to = Audience::users(members.into_iter().filter(|m| m != &admin));
            emit(
                state,
                to,
                "create-group-chat-receiver",
                json!({"GroupId": chat_id, "Name": name}),
            );
        }
        DomainEvent::MemberAdded(MemberAdded { chat_id, member }) => {
            let name = name_of(state, &member).await?;
            let joined = Member {
                id: member.clone(),
                name: name.clone(),
            };
            let everyone = memo.with_member(state, &chat_id, joined).await?;
            let to = everyone.map_or_else(Vec::new, |entry| others(&entry.1, &member));
            let payload = json!({"ChatId": chat_id, "Member": member, "MemberName": name});
            emit(state, Audience::users(to), "add-member-success", payload);
            emit(
                state,
                Audience::users([member]),
                "new-grp-added",
                json!({"ChatId": chat_id}),
            );
        }
        DomainEvent::MemberRemoved(MemberRemoved {
            chat_id,
            member,
            reason,
        }) => {
            let remaining = members(state, &chat_id).await?;
            match reason {
                RemovalReason::Kicked => {
                    let group = queries::chat(&state.reads, &chat_id)
                        .await?
                        .map(|c| c.name)
                        .unwrap_or_default();
                    emit(
                        state,
                        Audience::users([member.clone()]),
                        "kicked-out",
                        json!({"GroupId": chat_id, "GroupName": group}),
                    );
                    let to = match &actor {
                        Some(admin) => others(&remaining, admin),
                        None => remaining.iter().map(|m| m.id.clone()).collect(),
                    };
                    emit(
                        state,
                        Audience::users(to),
                        "someone-kicked-out",
                        json!({"GroupId": chat_id, "Member": member}),
                    );
                }
                RemovalReason::Left => {
                    let name = name_of(state, &member).await?;
                    let to = Audience::users(remaining.into_iter().map(|m| m.id));
                    emit(
                        state,
                        to,
                        "user-left-grp",
                        json!({"GroupId": chat_id, "User": name, "UserId": member}),
                    );
                }
            }
        }
        DomainEvent::AdminChanged(AdminChanged { chat_id, from, to }) => {
            let audience = Audience::users(others(&members(state, &chat_id).await?, &from));
            emit(
                state,
                audience,
                "change-admin-success-receiver",
                json!({"GroupId": chat_id, "Admin": to}),
            );
        }
        DomainEvent::GroupDeleted(GroupDeleted { chat_id }) => {
            let everyone = members(state, &chat_id).await?;
            let to = match &actor {
                Some(admin) => others(&everyone, admin),
                None => everyone.iter().map(|m| m.id.clone()).collect(),
            };
            emit(
                state,
                Audience::users(to),
                "delete-grp-success-receiver",
                json!({"GroupId": chat_id}),
            );
        }
        DomainEvent::UserRegistered(_)
        | DomainEvent::UserRenamed(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::SelfChatCreated(_) => {}
    }
    Ok(())
}

async fn deliver_message(
    state: &AppState,
    memo: &mut ChatMemo,
    recorded: &RecordedEvent,
    sent: &MessageSent,
    origin: Option<Sid>,
) -> anyhow::Result<()> {
    let at = timestamp(recorded.occurred_at);
    if sent.chat_id.as_str() == sent.sender_id.as_str() {
        let payload = json!({"ChatId": sent.chat_id, "Content": sent.content, "MessageId": sent.message_id, "Timestamp": at});
        let to = Audience::users([sent.sender_id.clone()]).but_origin(origin);
        emit(state, to, "receive-self-message", payload);
        return Ok(());
    }
    let Some(entry) = memo.get(state, &sent.chat_id).await? else {
        return Ok(());
    };
    let (chat, everyone) = &*entry;
    let sender = everyone
        .iter()
        .find(|m| m.id == sent.sender_id)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    match chat.kind {
        Kind::Personal => {
            // The partner, and the sender's other sockets.
            let payload = json!({
                "ChatId": sent.chat_id, "Content": sent.content, "Sender": sender, "SenderId": sent.sender_id,
                "MessageId": sent.message_id, "Timestamp": at,
            });
            let to = Audience::users(everyone.iter().map(|m| m.id.clone())).but_origin(origin);
            emit(state, to, "receive-personal-message", payload);
        }
        Kind::Group => {
            let payload = json!({
                "ChatId": sent.chat_id, "Sender": sender, "SenderId": sent.sender_id, "Content": sent.content,
                "MessageId": sent.message_id, "Timestamp": at,
            });
            emit(
                state,
                Audience::users(others(everyone, &sent.sender_id)),
                "receive-group-message",
                payload,
            );
        }
        Kind::SelfChat => {}
    }
    Ok(())
}
