//! The events: facts in the past tense, versioned, never edited.
//!
//! Each event is a struct serialised as the JSON `payload` of a [`RecordedEvent`]; its name is the
//! envelope's `event_type` and its version the envelope's `schema_version`. Field names are
//! camelCase. [`DomainEvent::decode`] upcasts payloads stored under older schema versions.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::envelope::{EventMetadata, NewEvent, RecordedEvent};
use crate::ids::{ChatId, MessageId, UserId};
use crate::values::{ClientId, Content, UserName};

mod changes;

pub use changes::{MessageDeleted, MessageEdited, ReactionAdded, ReactionRemoved};

/// A user signed up (the account itself, with its secrets, lives outside the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user_id: UserId,
    pub name: UserName,
}

/// A user who signed up again before verifying chose another name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRenamed {
    pub user_id: UserId,
    pub name: UserName,
}

/// A user proved they own their e-mail address; from now on they can be found and chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserVerified {
    pub user_id: UserId,
}

/// A user chose whether their contacts see them online (a preference, so it is kept in the log;
/// being online is not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceVisibilitySet {
    pub user_id: UserId,
    pub visible: bool,
}

/// A user's notes-to-self chat came to be; its id is the user's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfChatCreated {
    pub chat_id: ChatId,
    pub owner: UserId,
}

/// A one-to-one chat between two users came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalChatCreated {
    pub chat_id: ChatId,
    pub creator: UserId,
    pub partner: UserId,
}

/// A group came to be; its creator is its admin and a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCreated {
    pub chat_id: ChatId,
    pub name: String,
    pub description: String,
    pub admin: UserId,
    /// Every member, the admin included.
    pub members: Vec<UserId>,
}

/// A message was written to a chat. Its time is the envelope's `occurredAt`, its place in the chat
/// the envelope's stream `version`.
///
/// Schema version 2 added `format` (version 1 messages were all plain text: see [`upcast`]).
/// `replyTo` came later as an optional field of version 2: a payload without it is a message that
/// replies to nothing, so every message stored before still decodes as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSent {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub sender_id: UserId,
    pub content: Content,
    /// How `content` is to be read. Required from version 2 on (no serde default: a version 1
    /// payload only decodes through its upcaster).
    pub format: MessageFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// The message of the same chat this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
    /// Files the sender uploaded and shared with the chat in this message. Optional within
    /// version 2 like `replyTo`: absent means none, and it is left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentShared>,
}

/// A file shared in a message: what the chat's members see of it. The bytes stay in the file
/// store under `fileId`; the rest is copied here when the message is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentShared {
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub size: u64,
    pub content_type: String,
}

/// How a message's content is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageFormat {
    /// Plain text, shown as written (every message the ExpressChat protocol can send).
    Text,
}

/// Brings a payload stored as `version` of `event_type` one version forward. Each step is a pure
/// JSON rewrite, so every reader (decisions, projections, delivery, audit, replay) sees events in
/// the current shape, and the log itself is never edited.
fn upcast_step(event_type: &str, version: u32, payload: &mut serde_json::Value) {
    // One upcaster so far; every later schema change adds its arm here.
    #[allow(clippy::single_match)]
    match (event_type, version) {
        // Version 2 of MessageSent: the format, plain text for everything written before.
        ("MessageSent", 1) => {
            if let Some(fields) = payload.as_object_mut() {
                fields
                    .entry("format")
                    .or_insert_with(|| serde_json::Value::from("text"));
            }
        }
        _ => {}
    }
}

/// The payload of a stored event in the current schema version of its type, as JSON.
pub fn upcast(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<serde_json::Value, DecodeError> {
    let current = DomainEvent::current_version(event_type)?;
    if schema_version == 0 || schema_version > current {
        return Err(DecodeError::UnknownVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
        });
    }
    let mut value: serde_json::Value =
        serde_json::from_str(payload).map_err(|source| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            source,
        })?;
    for version in schema_version..current {
        upcast_step(event_type, version, &mut value);
    }
    Ok(value)
}

/// A member read a chat up to and including a message (a read pointer, not one event per message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRead {
    pub chat_id: ChatId,
    pub reader: UserId,
    /// The stream version of the last message read.
    pub up_to_version: u64,
}

/// A member's delivered pointer moved forward: their devices have received the chat up to and
/// including a message (one event however many messages it passes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesDelivered {
    pub chat_id: ChatId,
    pub reader: UserId,
    /// The stream version of the last message delivered.
    pub up_to_version: u64,
}

/// The admin added a member to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberAdded {
    pub chat_id: ChatId,
    pub member: UserId,
}

/// Why a member is no longer in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RemovalReason {
    Kicked,
    Left,
}

/// A member was kicked out of, or left, a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRemoved {
    pub chat_id: ChatId,
    pub member: UserId,
    pub reason: RemovalReason,
}

/// The admin handed the group over to another member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminChanged {
    pub chat_id: ChatId,
    pub from: UserId,
    pub to: UserId,
}

/// The admin deleted a group. Its stream stays, for the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDeleted {
    pub chat_id: ChatId,
}

/// Why a stored payload could not be turned into an event.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} has no schema version {version}")]
    UnknownVersion { event_type: String, version: u32 },
    #[error("malformed {event_type} payload: {source}")]
    Malformed {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

macro_rules! catalogue {
    ($($variant:ident => $version:literal),* $(,)?) => {
        /// Every event of the catalogue.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum DomainEvent {
            $($variant($variant),)*
        }

        $(impl From<$variant> for DomainEvent {
            fn from(e: $variant) -> Self {
                DomainEvent::$variant(e)
            }
        })*

        impl DomainEvent {
            /// Every event type name with its current schema version.
            pub const CATALOGUE: &'static [(&'static str, u32)] = &[$((stringify!($variant), $version)),*];

            /// The envelope's `event_type`.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(DomainEvent::$variant(_) => stringify!($variant),)*
                }
            }

            /// The current schema version of this event's type.
            pub fn schema_version(&self) -> u32 {
                match self {
                    $(DomainEvent::$variant(_) => $version,)*
                }
            }

            /// The JSON payload, in the current schema version.
            pub fn payload(&self) -> String {
                let encoded = match self {
                    $(DomainEvent::$variant(e) => serde_json::to_string(e),)*
                };
                // Serialising these plain structs of strings cannot fail.
                encoded.unwrap_or_default()
            }

            /// The current schema version of `event_type`.
            pub fn current_version(event_type: &str) -> Result<u32, DecodeError> {
                Self::CATALOGUE
                    .iter()
                    .find(|(name, _)| *name == event_type)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))
            }

            /// Decodes a stored payload of any known schema version, upcasting old versions.
            pub fn decode(event_type: &str, schema_version: u32, payload: &str) -> Result<Self, DecodeError> {
                let current = Self::current_version(event_type)?;
                let malformed = |source| DecodeError::Malformed { event_type: event_type.to_owned(), source };
                if schema_version == current {
                    // The common case: no detour through a JSON tree.
                    return match event_type {
                        $(stringify!($variant) => serde_json::from_str::<$variant>(payload).map(DomainEvent::$variant).map_err(malformed),)*
                        other => Err(DecodeError::UnknownType(other.to_owned())),
                    };
                }
                let value = upcast(event_type, schema_version, payload)?;
                match event_type {
                    $(stringify!($variant) => serde_json::from_value::<$variant>(value).map(DomainEvent::$variant).map_err(malformed),)*
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}

catalogue! {
    UserRegistered => 1,
    UserRenamed => 1,
    UserVerified => 1,
    SelfChatCreated => 1,
    PersonalChatCreated => 1,
    GroupCreated => 1,
    MessageSent => 2,
    MessageRead => 1,
    MemberAdded => 1,
    MemberRemoved => 1,
    AdminChanged => 1,
    GroupDeleted => 1,
    MessageEdited => 1,
    MessageDeleted => 1,
    ReactionAdded => 1,
    ReactionRemoved => 1,
    MessagesDelivered => 1,
    PresenceVisibilitySet => 1,
}

impl DomainEvent {
    /// Wraps this event for appending, with a fresh event id and the current time.
    pub fn into_new_event(self, metadata: EventMetadata) -> NewEvent {
        NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: self.event_type().to_owned(),
            schema_version: self.schema_version(),
            occurred_at: crate::envelope::now_millis(),
            metadata,
            payload: self.payload(),
        }
    }

    /// Decodes the payload of a recorded event.
    pub fn from_recorded(event: &RecordedEvent) -> Result<Self, DecodeError> {
        Self::decode(&event.event_type, event.schema_version, &event.payload)
    }

    /// The chat this event is about, if any.
    pub fn chat_id(&self) -> Option<&ChatId> {
        match self {
            DomainEvent::UserRegistered(_)
            | DomainEvent::UserRenamed(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::PresenceVisibilitySet(_) => None,
            DomainEvent::SelfChatCreated(e) => Some(&e.chat_id),
            DomainEvent::PersonalChatCreated(e) => Some(&e.chat_id),
            DomainEvent::GroupCreated(e) => Some(&e.chat_id),
            DomainEvent::MessageSent(e) => Some(&e.chat_id),
            DomainEvent::MessageRead(e) => Some(&e.chat_id),
            DomainEvent::MemberAdded(e) => Some(&e.chat_id),
            DomainEvent::MemberRemoved(e) => Some(&e.chat_id),
            DomainEvent::AdminChanged(e) => Some(&e.chat_id),
            DomainEvent::GroupDeleted(e) => Some(&e.chat_id),
            DomainEvent::MessageEdited(e) => Some(&e.chat_id),
            DomainEvent::MessageDeleted(e) => Some(&e.chat_id),
            DomainEvent::ReactionAdded(e) => Some(&e.chat_id),
            DomainEvent::ReactionRemoved(e) => Some(&e.chat_id),
            DomainEvent::MessagesDelivered(e) => Some(&e.chat_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emoji::Emoji;

    #[test]
    fn version_1_messages_load_upcast_to_plain_text() {
        let stored = crate::fixtures::v1_personal_chat();
        let sent: Vec<MessageSent> = stored
            .iter()
            .filter_map(|e| match DomainEvent::from_recorded(e) {
                Ok(DomainEvent::MessageSent(m)) => Some(m),
                Ok(_) => None,
                Err(err) => panic!("fixture event {} does not load: {err}", e.position),
            })
            .collect();
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|m| m.format == MessageFormat::Text));
        assert_eq!(sent[1].client_id.as_ref().map(|c| c.as_str()), Some("c-1"));
        // Without its upcaster a version 1 payload is not a valid MessageSent: the step is needed.
        let v1 = stored
            .iter()
            .find(|e| e.event_type == "MessageSent")
            .unwrap();
        assert_eq!(v1.schema_version, 1);
        assert!(serde_json::from_str::<MessageSent>(&v1.payload).is_err());
        // The upcast payload is the current shape, field for field.
        let data = upcast("MessageSent", 1, &v1.payload).unwrap();
        assert_eq!(data["format"], "text");
        assert_eq!(data["content"], "Hello, Grace");
    }

    #[test]
    fn versions_beyond_the_current_one_are_refused() {
        assert!(matches!(
            DomainEvent::decode("MessageSent", 3, "{}"),
            Err(DecodeError::UnknownVersion { .. })
        ));
        assert!(matches!(
            upcast("NoSuchEvent", 1, "{}"),
            Err(DecodeError::UnknownType(_))
        ));
    }

    fn sample() -> Vec<DomainEvent> {
        let u = UserId::parse("u1").unwrap();
        let c = ChatId::parse("c1").unwrap();
        vec![
            UserRegistered {
                user_id: u.clone(),
                name: UserName::parse("Ada").unwrap(),
            }
            .into(),
            UserVerified { user_id: u.clone() }.into(),
            SelfChatCreated {
                chat_id: c.clone(),
                owner: u.clone(),
            }
            .into(),
            MessageSent {
                chat_id: c.clone(),
                message_id: MessageId::parse("m1").unwrap(),
                sender_id: u.clone(),
                content: Content::parse("hi").unwrap(),
                format: MessageFormat::Text,
                client_id: None,
                reply_to: Some(MessageId::parse("m0").unwrap()),
                attachments: Vec::new(),
            }
            .into(),
            MessageEdited {
                chat_id: c.clone(),
                message_id: MessageId::parse("m1").unwrap(),
                editor: u.clone(),
                content: Content::parse("hi again").unwrap(),
            }
            .into(),
            ReactionAdded {
                chat_id: c.clone(),
                message_id: MessageId::parse("m1").unwrap(),
                user_id: u.clone(),
                emoji: Emoji::parse("👍").unwrap(),
            }
            .into(),
            ReactionRemoved {
                chat_id: c.clone(),
                message_id: MessageId::parse("m1").unwrap(),
                user_id: u.clone(),
                emoji: Emoji::parse("👍").unwrap(),
            }
            .into(),
            MessageDeleted {
                chat_id: c.clone(),
                message_id: MessageId::parse("m1").unwrap(),
                deleted_by: u.clone(),
            }
            .into(),
            MessagesDelivered {
                chat_id: c.clone(),
                reader: u.clone(),
                up_to_version: 3,
            }
            .into(),
            MemberRemoved {
                chat_id: c,
                member: u,
                reason: RemovalReason::Kicked,
            }
            .into(),
        ]
    }

    #[test]
    fn every_event_round_trips_through_its_payload() {
        for e in sample() {
            let back =
                DomainEvent::decode(e.event_type(), e.schema_version(), &e.payload()).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn payload_shape_is_stable() {
        let e: DomainEvent = MessageSent {
            chat_id: ChatId::parse("c1").unwrap(),
            message_id: MessageId::parse("m1").unwrap(),
            sender_id: UserId::parse("u1").unwrap(),
            content: Content::parse("hi").unwrap(),
            format: MessageFormat::Text,
            client_id: Some(ClientId::parse("k").unwrap()),
            reply_to: None,
            attachments: Vec::new(),
        }
        .into();
        assert_eq!(
            e.payload(),
            r#"{"chatId":"c1","messageId":"m1","senderId":"u1","content":"hi","format":"text","clientId":"k"}"#
        );
        assert_eq!(e.schema_version(), 2);
        let kicked: DomainEvent = MemberRemoved {
            chat_id: ChatId::parse("g").unwrap(),
            member: UserId::parse("u").unwrap(),
            reason: RemovalReason::Left,
        }
        .into();
        assert_eq!(
            kicked.payload(),
            r#"{"chatId":"g","member":"u","reason":"left"}"#
        );
    }

    #[test]
    fn presence_visibility_has_a_stable_shape() {
        let hidden: DomainEvent = PresenceVisibilitySet {
            user_id: UserId::parse("u1").unwrap(),
            visible: false,
        }
        .into();
        assert_eq!(hidden.payload(), r#"{"userId":"u1","visible":false}"#);
        assert_eq!(hidden.event_type(), "PresenceVisibilitySet");
        assert_eq!(hidden.schema_version(), 1);
        assert_eq!(hidden.chat_id(), None);
        let back = DomainEvent::decode("PresenceVisibilitySet", 1, &hidden.payload()).unwrap();
        assert_eq!(back, hidden);
    }

    #[test]
    fn unknown_types_and_versions_are_refused() {
        assert!(matches!(
            DomainEvent::decode("Nope", 1, "{}"),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            DomainEvent::decode("UserVerified", 9, "{}"),
            Err(DecodeError::UnknownVersion { .. })
        ));
        assert!(matches!(
            DomainEvent::decode("UserVerified", 1, "[]"),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn messages_stored_before_replies_existed_still_load() {
        // A version 2 MessageSent exactly as stored before `replyTo` was added.
        let stored = r#"{"chatId":"c1","messageId":"m1","senderId":"u1","content":"hi","format":"text","clientId":"k"}"#;
        let Ok(DomainEvent::MessageSent(sent)) = DomainEvent::decode("MessageSent", 2, stored)
        else {
            panic!("a message stored before replies does not load");
        };
        assert_eq!(sent.reply_to, None);
        assert_eq!(sent.content.as_str(), "hi");
        // Written again, it is the same bytes: no `replyTo: null` appears in old messages' shape.
        assert_eq!(DomainEvent::MessageSent(sent).payload(), stored);
    }

    #[test]
    fn attachments_are_optional_and_round_trip() {
        let stored =
            r#"{"chatId":"c1","messageId":"m1","senderId":"u1","content":"hi","format":"text"}"#;
        let Ok(DomainEvent::MessageSent(sent)) = DomainEvent::decode("MessageSent", 2, stored)
        else {
            panic!("a message stored before attachments does not load");
        };
        assert!(sent.attachments.is_empty());
        assert_eq!(DomainEvent::MessageSent(sent).payload(), stored);

        let with = r#"{"chatId":"c1","messageId":"m1","senderId":"u1","content":"hi","format":"text","attachments":[{"fileId":"f1","name":"a.png","size":3,"contentType":"image/png"},{"fileId":"f2","size":0,"contentType":"text/plain"}]}"#;
        let Ok(DomainEvent::MessageSent(sent)) = DomainEvent::decode("MessageSent", 2, with) else {
            panic!("a message with attachments does not load");
        };
        assert_eq!(sent.attachments.len(), 2);
        assert_eq!(sent.attachments[0].name.as_deref(), Some("a.png"));
        assert_eq!(sent.attachments[1].name, None);
        assert_eq!(DomainEvent::MessageSent(sent).payload(), with);
    }

    #[test]
    fn changes_to_messages_have_a_stable_shape() {
        let (c, m, u) = (
            ChatId::parse("c1").unwrap(),
            MessageId::parse("m1").unwrap(),
            UserId::parse("u1").unwrap(),
        );
        let reply: DomainEvent = MessageSent {
            chat_id: c.clone(),
            message_id: MessageId::parse("m2").unwrap(),
            sender_id: u.clone(),
            content: Content::parse("yes").unwrap(),
            format: MessageFormat::Text,
            client_id: None,
            reply_to: Some(m.clone()),
            attachments: Vec::new(),
        }
        .into();
        assert_eq!(
            reply.payload(),
            r#"{"chatId":"c1","messageId":"m2","senderId":"u1","content":"yes","format":"text","replyTo":"m1"}"#
        );
        let edited: DomainEvent = MessageEdited {
            chat_id: c.clone(),
            message_id: m.clone(),
            editor: u.clone(),
            content: Content::parse("new").unwrap(),
        }
        .into();
        assert_eq!(
            edited.payload(),
            r#"{"chatId":"c1","messageId":"m1","editor":"u1","content":"new"}"#
        );
        let deleted: DomainEvent = MessageDeleted {
            chat_id: c.clone(),
            message_id: m.clone(),
            deleted_by: u.clone(),
        }
        .into();
        assert_eq!(
            deleted.payload(),
            r#"{"chatId":"c1","messageId":"m1","deletedBy":"u1"}"#
        );
        let reacted: DomainEvent = ReactionAdded {
            chat_id: c,
            message_id: m,
            user_id: u,
            emoji: Emoji::parse("🎉").unwrap(),
        }
        .into();
        assert_eq!(
            reacted.payload(),
            r#"{"chatId":"c1","messageId":"m1","userId":"u1","emoji":"🎉"}"#
        );
        assert_eq!(reacted.event_type(), "ReactionAdded");
        assert_eq!(reacted.schema_version(), 1);
    }

    #[test]
    fn stored_values_are_trusted_on_decode() {
        // The log is written only by decisions that parsed their values, so decoding keeps what was
        // stored even where today's rules would refuse it (rules may tighten after the fact).
        let blank = r#"{"chatId":"c","messageId":"m","senderId":"u","content":"  "}"#;
        assert!(DomainEvent::decode("MessageSent", 1, blank).is_ok());
    }
}
