//! Personal chats: whether one exists (`create-chat-result`), its creation, its page, and the
//! acknowledgement of marking it read.

use events_schema::events::AttachmentShared;
use events_schema::{ChatId, MessageId, UserId};
use serde::Serialize;

use super::changes::{Reactions, Receipts};
use super::messages::ReadStatus;

/// `create-chat-result`: `Exists` 1 with the chat's id, or 0 without one (`ChatId` is then left
/// out, not null).
#[derive(Debug, Serialize)]
pub struct ChatCheck {
    #[serde(rename = "ChatId", skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<ChatId>,
    #[serde(rename = "Exists")]
    pub exists: u8,
    #[serde(rename = "Partner")]
    pub partner: String,
    #[serde(rename = "PartnerId")]
    pub partner_id: UserId,
}

/// `create-personal-chat-creator` (the partner) and `create-personal-chat-partner` (the creator).
#[derive(Debug, Serialize)]
pub struct PersonalChatCreated<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: Option<&'a ChatId>,
    #[serde(rename = "Partner")]
    pub partner: &'a str,
    #[serde(rename = "PartnerId")]
    pub partner_id: &'a UserId,
}

/// `personal-chat`. `Partner` and `PartnerId` are null when the partner is no longer a member.
#[derive(Debug, Serialize)]
pub struct PersonalChat<'a> {
    #[serde(rename = "HasMore")]
    pub has_more: bool,
    #[serde(rename = "Messages")]
    pub messages: Vec<PersonalMessage>,
    #[serde(rename = "Partner")]
    pub partner: Option<&'a str>,
    #[serde(rename = "PartnerId")]
    pub partner_id: Option<&'a UserId>,
    #[serde(rename = "Receipts")]
    pub receipts: Receipts,
    #[serde(rename = "User")]
    pub user: &'a str,
    #[serde(rename = "UserId")]
    pub user_id: &'a UserId,
}

/// A message of `personal-chat`. `Sender` is the sender's id. `Deleted` (then `Content` is
/// empty), `EditedAt`, `Reactions` and `ReplyTo` are there only when the message has them.
#[derive(Debug, Serialize)]
pub struct PersonalMessage {
    #[serde(rename = "Content")]
    pub content: String,
    #[serde(rename = "Deleted", skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(rename = "EditedAt", skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(rename = "Reactions", skip_serializing_if = "Reactions::is_empty")]
    pub reactions: Reactions,
    #[serde(rename = "ReadStatus")]
    pub read_status: ReadStatus,
    #[serde(rename = "ReplyTo", skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
    #[serde(
        rename = "Attachments",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::files::wire"
    )]
    pub attachments: Vec<AttachmentShared>,
    #[serde(rename = "Sender")]
    pub sender: UserId,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "_id")]
    pub id: MessageId,
}

/// The acknowledgement of `read-personal-message`.
#[derive(Debug, Serialize)]
pub struct PersonalRead<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::{assert_wire, Reactions, Reading, Receipts};

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn a_check_names_the_chat_only_when_it_exists() {
        assert_wire(
            &ChatCheck {
                chat_id: Some(ChatId::parse("p1").unwrap()),
                exists: 1,
                partner: "Bob".into(),
                partner_id: user("u2"),
            },
            json!({"Exists": 1, "ChatId": "p1", "Partner": "Bob", "PartnerId": "u2"}),
        );
        assert_wire(
            &ChatCheck {
                chat_id: None,
                exists: 0,
                partner: "Bob".into(),
                partner_id: user("u2"),
            },
            json!({"Exists": 0, "Partner": "Bob", "PartnerId": "u2"}),
        );
    }

    #[test]
    fn creation_and_read() {
        let chat = ChatId::parse("p1").unwrap();
        assert_wire(
            &PersonalChatCreated {
                chat_id: Some(&chat),
                partner: "Bob",
                partner_id: &user("u2"),
            },
            json!({"ChatId": "p1", "Partner": "Bob", "PartnerId": "u2"}),
        );
        assert_wire(
            &PersonalChatCreated {
                chat_id: None,
                partner: "",
                partner_id: &user("u2"),
            },
            json!({"ChatId": null, "Partner": "", "PartnerId": "u2"}),
        );
        assert_wire(&PersonalRead { chat_id: &chat }, json!({"ChatId": "p1"}));
    }

    #[test]
    fn the_page() {
        let me = user("u1");
        let page = PersonalChat {
            has_more: true,
            messages: vec![PersonalMessage {
                content: "hi".into(),
                deleted: false,
                edited_at: None,
                reactions: Reactions::new(),
                reply_to: None,
                read_status: [
                    ("u1".to_owned(), Reading::Read),
                    ("u2".to_owned(), Reading::Unread),
                ]
                .into_iter()
                .collect(),
                sender: me.clone(),
                timestamp: "2026-11-24T09:30:00.000Z".into(),
                id: MessageId::parse("m1").unwrap(),
                attachments: Vec::new(),
            }],
            partner: None,
            partner_id: None,
            receipts: Receipts::new(),
            user: "Ada",
            user_id: &me,
        };
        assert_wire(
            &page,
            json!({
                "Messages": [{
                    "_id": "m1", "Sender": "u1", "Content": "hi",
                    "ReadStatus": {"u1": "Read", "u2": "Unread"},
                    "Timestamp": "2026-11-24T09:30:00.000Z",
                }],
                "UserId": "u1",
                "User": "Ada",
                "Partner": null,
                "PartnerId": null,
                "Receipts": {},
                "HasMore": true,
            }),
        );
    }

    #[test]
    fn a_message_with_a_reply_an_edit_and_reactions_and_one_deleted() {
        let me = user("u1");
        let reactions: Reactions = [("👍".to_owned(), vec![user("u2"), me.clone()])]
            .into_iter()
            .collect();
        let changed = PersonalMessage {
            content: "better".into(),
            deleted: false,
            edited_at: Some("2026-11-24T09:31:00.000Z".into()),
            reactions,
            read_status: [("u1".to_owned(), Reading::Read)].into_iter().collect(),
            reply_to: Some(MessageId::parse("m0").unwrap()),
            sender: me.clone(),
            timestamp: "2026-11-24T09:30:00.000Z".into(),
            id: MessageId::parse("m1").unwrap(),
            attachments: Vec::new(),
        };
        assert_wire(
            &changed,
            json!({
                "Content": "better", "EditedAt": "2026-11-24T09:31:00.000Z",
                "Reactions": {"👍": ["u2", "u1"]}, "ReadStatus": {"u1": "Read"}, "ReplyTo": "m0",
                "Sender": "u1", "Timestamp": "2026-11-24T09:30:00.000Z", "_id": "m1",
            }),
        );
        let deleted = PersonalMessage {
            content: String::new(),
            deleted: true,
            edited_at: None,
            reactions: Reactions::new(),
            reply_to: None,
            ..changed
        };
        assert_wire(
            &deleted,
            json!({
                "Content": "", "Deleted": true, "ReadStatus": {"u1": "Read"}, "Sender": "u1",
                "Timestamp": "2026-11-24T09:30:00.000Z", "_id": "m1",
            }),
        );
    }
}
