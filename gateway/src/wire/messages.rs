//! Messages in personal chats and groups alike: the acknowledgement of a send, the delivery to the
//! other sockets, read receipts, and per message who has read it.

use events_schema::events::AttachmentShared;
use std::collections::BTreeMap;

use events_schema::{Accepted, ChatId, Content, MessageId, UserId};
use serde::Serialize;

use super::timestamp;

/// The acknowledgement of `send-self-message`, `send-personal-message` and `send-group-message`.
#[derive(Debug, Serialize)]
pub struct Sent {
    #[serde(rename = "ChatId")]
    pub chat_id: Option<ChatId>,
    #[serde(rename = "MessageId")]
    pub message_id: Option<MessageId>,
    #[serde(rename = "Timestamp")]
    pub timestamp: Option<String>,
}

impl From<&Accepted> for Sent {
    fn from(accepted: &Accepted) -> Self {
        Self {
            chat_id: accepted.chat_id.clone(),
            message_id: accepted.message_id.clone(),
            timestamp: accepted.occurred_at.map(timestamp),
        }
    }
}

/// `receive-personal-message` and `receive-group-message`. `Sender` is the sender's name.
#[derive(Debug, Serialize)]
pub struct ChatMessage<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Content")]
    pub content: &'a Content,
    #[serde(rename = "MessageId")]
    pub message_id: &'a MessageId,
    /// The message of the same chat this one answers; left out when none.
    #[serde(rename = "ReplyTo", skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<&'a MessageId>,
    #[serde(
        rename = "Attachments",
        skip_serializing_if = "<[_]>::is_empty",
        serialize_with = "crate::files::wire"
    )]
    pub attachments: &'a [AttachmentShared],
    #[serde(rename = "Sender")]
    pub sender: &'a str,
    #[serde(rename = "SenderId")]
    pub sender_id: &'a UserId,
    #[serde(rename = "Timestamp")]
    pub timestamp: &'a str,
}

/// `read-personal-msg-ack` and `read-grp-msg-ack`.
#[derive(Debug, Serialize)]
pub struct ReadReceipt<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Reader")]
    pub reader: &'a UserId,
}

/// `ReadStatus` of a message in a page: each current member's id → whether they have read it.
pub type ReadStatus = BTreeMap<String, Reading>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reading {
    Read,
    Unread,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn a_send_is_acknowledged_with_its_ids_and_time() {
        let accepted = Accepted {
            chat_id: Some(ChatId::parse("c1").unwrap()),
            message_id: Some(MessageId::parse("m1").unwrap()),
            occurred_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_000),
            ..Accepted::default()
        };
        assert_wire(
            &Sent::from(&accepted),
            json!({"MessageId": "m1", "ChatId": "c1", "Timestamp": "2026-11-18T11:06:40.000Z"}),
        );
        let nothing = Accepted::default();
        assert_wire(
            &Sent::from(&nothing),
            json!({"MessageId": null, "ChatId": null, "Timestamp": null}),
        );
    }

    #[test]
    fn deliveries_and_receipts() {
        let chat = ChatId::parse("c1").unwrap();
        let sender = UserId::parse("u1").unwrap();
        assert_wire(
            &ChatMessage {
                chat_id: &chat,
                content: &Content::parse("hi").unwrap(),
                message_id: &MessageId::parse("m1").unwrap(),
                reply_to: None,
                sender: "Ada",
                sender_id: &sender,
                timestamp: "2026-11-24T09:30:00.000Z",
                attachments: &[],
            },
            json!({
                "ChatId": "c1", "Content": "hi", "Sender": "Ada", "SenderId": "u1",
                "MessageId": "m1", "Timestamp": "2026-11-24T09:30:00.000Z",
            }),
        );
        let answered = MessageId::parse("m0").unwrap();
        assert_wire(
            &ChatMessage {
                chat_id: &chat,
                content: &Content::parse("yes").unwrap(),
                message_id: &MessageId::parse("m1").unwrap(),
                reply_to: Some(&answered),
                sender: "Ada",
                sender_id: &sender,
                timestamp: "2026-11-24T09:30:00.000Z",
                attachments: &[],
            },
            json!({
                "ChatId": "c1", "Content": "yes", "MessageId": "m1", "ReplyTo": "m0",
                "Sender": "Ada", "SenderId": "u1", "Timestamp": "2026-11-24T09:30:00.000Z",
            }),
        );
        assert_wire(
            &ReadReceipt {
                chat_id: &chat,
                reader: &sender,
            },
            json!({"ChatId": "c1", "Reader": "u1"}),
        );
        let status: ReadStatus = [
            ("u2".to_owned(), Reading::Unread),
            ("u1".to_owned(), Reading::Read),
        ]
        .into_iter()
        .collect();
        assert_wire(&status, json!({"u1": "Read", "u2": "Unread"}));
    }
}
