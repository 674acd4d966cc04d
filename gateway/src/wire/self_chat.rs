//! The self chat: its page (`self-chat`) and a note delivered to the user's other sockets
//! (`receive-self-message`).

use events_schema::events::AttachmentShared;
use events_schema::{ChatId, Content, MessageId};
use serde::Serialize;

use super::changes::{Reactions, Receipts};

/// `self-chat`.
#[derive(Debug, Serialize)]
pub struct SelfChat {
    #[serde(rename = "HasMore")]
    pub has_more: bool,
    #[serde(rename = "Messages")]
    pub messages: Vec<SelfMessage>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Receipts")]
    pub receipts: Receipts,
}

/// A note of `self-chat`; `Deleted`, `EditedAt` and `Reactions` only when it has them.
#[derive(Debug, Serialize)]
pub struct SelfMessage {
    #[serde(rename = "Content")]
    pub content: String,
    #[serde(rename = "Deleted", skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(rename = "EditedAt", skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(rename = "Reactions", skip_serializing_if = "Reactions::is_empty")]
    pub reactions: Reactions,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(
        rename = "Attachments",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::files::wire"
    )]
    pub attachments: Vec<AttachmentShared>,
    #[serde(rename = "_id")]
    pub id: MessageId,
}

/// `receive-self-message`.
#[derive(Debug, Serialize)]
pub struct SelfMessageReceived<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Content")]
    pub content: &'a Content,
    #[serde(rename = "MessageId")]
    pub message_id: &'a MessageId,
    #[serde(rename = "Timestamp")]
    pub timestamp: &'a str,
    #[serde(
        rename = "Attachments",
        skip_serializing_if = "<[_]>::is_empty",
        serialize_with = "crate::files::wire"
    )]
    pub attachments: &'a [AttachmentShared],
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn the_page_and_the_delivery() {
        assert_wire(
            &SelfChat {
                has_more: false,
                messages: vec![SelfMessage {
                    content: "note".into(),
                    deleted: false,
                    edited_at: None,
                    reactions: Reactions::new(),
                    timestamp: "2026-11-24T09:30:00.000Z".into(),
                    id: MessageId::parse("m1").unwrap(),
                    attachments: Vec::new(),
                }],
                name: "Ada".into(),
                receipts: Receipts::new(),
            },
            json!({
                "Messages": [{"_id": "m1", "Content": "note", "Timestamp": "2026-11-24T09:30:00.000Z"}],
                "Name": "Ada",
                "Receipts": {},
                "HasMore": false,
            }),
        );
        assert_wire(
            &SelfMessageReceived {
                chat_id: &ChatId::parse("u1").unwrap(),
                content: &Content::parse("note").unwrap(),
                message_id: &MessageId::parse("m1").unwrap(),
                timestamp: "2026-11-24T09:30:00.000Z",
                attachments: &[],
            },
            json!({"ChatId": "u1", "Content": "note", "MessageId": "m1", "Timestamp": "2026-11-24T09:30:00.000Z"}),
        );
    }
}
