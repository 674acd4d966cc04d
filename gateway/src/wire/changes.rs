//! Replies, edits, deletions and reactions (docs/api.md, "Replies, edits, deletions, reactions"):
//! the acknowledgement of a change, the deliveries `message-edited`, `message-deleted` and
//! `reaction`, and the reactions of a message in a page; receipts (docs/api.md, "Receipts"): the
//! `receipt` delivery and `Receipts` of a page.

use std::collections::BTreeMap;

use events_schema::{ChatId, Content, Emoji, MessageId, UserId};
use serde::Serialize;

/// `Reactions` of a message in a page: each emoji → who reacted with it, in the order they did.
pub type Reactions = BTreeMap<String, Vec<UserId>>;

/// A member's pointers: the last message delivered to them and the last they read (null: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    #[serde(rename = "Delivered")]
    pub delivered: Option<MessageId>,
    #[serde(rename = "Read")]
    pub read: Option<MessageId>,
}

/// `Receipts` of a page: each member's id → their pointers.
pub type Receipts = BTreeMap<String, Receipt>;

/// `receipt`: a member's pointers moved (at most one a second per member and chat).
#[derive(Debug, Serialize)]
pub struct ReceiptMoved<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Delivered")]
    pub delivered: Option<&'a MessageId>,
    #[serde(rename = "Read")]
    pub read: Option<&'a MessageId>,
    #[serde(rename = "UserId")]
    pub user_id: &'a UserId,
}

/// The acknowledgement of `mark-delivered`.
#[derive(Debug, Serialize)]
pub struct Delivered<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
}

/// The acknowledgement of `edit-message`, `delete-message` and `react`.
#[derive(Debug, Serialize)]
pub struct MessageChanged<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "MessageId")]
    pub message_id: &'a MessageId,
}

/// `message-edited`.
#[derive(Debug, Serialize)]
pub struct EditedMessage<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Content")]
    pub content: &'a Content,
    #[serde(rename = "EditedAt")]
    pub edited_at: &'a str,
    #[serde(rename = "MessageId")]
    pub message_id: &'a MessageId,
}

/// `message-deleted`.
#[derive(Debug, Serialize)]
pub struct DeletedMessage<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "MessageId")]
    pub message_id: &'a MessageId,
}

/// `reaction`: `On` true when `UserId` reacted with `Emoji`, false when they took it back.
#[derive(Debug, Serialize)]
pub struct ReactionChanged<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Emoji")]
    pub emoji: &'a Emoji,
    #[serde(rename = "MessageId")]
    pub message_id: &'a MessageId,
    #[serde(rename = "On")]
    pub on: bool,
    #[serde(rename = "UserId")]
    pub user_id: &'a UserId,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn acknowledgement_and_deliveries() {
        let (chat, message, user) = (
            ChatId::parse("c1").unwrap(),
            MessageId::parse("m1").unwrap(),
            UserId::parse("u1").unwrap(),
        );
        assert_wire(
            &MessageChanged {
                chat_id: &chat,
                message_id: &message,
            },
            json!({"ChatId": "c1", "MessageId": "m1"}),
        );
        assert_wire(
            &EditedMessage {
                chat_id: &chat,
                content: &Content::parse("better").unwrap(),
                edited_at: "2026-12-04T06:00:00.000Z",
                message_id: &message,
            },
            json!({
                "ChatId": "c1", "Content": "better", "EditedAt": "2026-12-04T06:00:00.000Z",
                "MessageId": "m1",
            }),
        );
        assert_wire(
            &DeletedMessage {
                chat_id: &chat,
                message_id: &message,
            },
            json!({"ChatId": "c1", "MessageId": "m1"}),
        );
        assert_wire(
            &ReactionChanged {
                chat_id: &chat,
                emoji: &Emoji::parse("👍").unwrap(),
                message_id: &message,
                on: false,
                user_id: &user,
            },
            json!({"ChatId": "c1", "Emoji": "👍", "MessageId": "m1", "On": false, "UserId": "u1"}),
        );
    }

    #[test]
    fn receipts() {
        let (chat, m1, user) = (
            ChatId::parse("c1").unwrap(),
            MessageId::parse("m1").unwrap(),
            UserId::parse("u1").unwrap(),
        );
        assert_wire(
            &ReceiptMoved {
                chat_id: &chat,
                delivered: Some(&m1),
                read: None,
                user_id: &user,
            },
            json!({"ChatId": "c1", "Delivered": "m1", "Read": null, "UserId": "u1"}),
        );
        assert_wire(&Delivered { chat_id: &chat }, json!({"ChatId": "c1"}));
        let page: Receipts = [(
            "u1".to_owned(),
            Receipt {
                delivered: Some(m1.clone()),
                read: Some(m1),
            },
        )]
        .into_iter()
        .collect();
        assert_wire(&page, json!({"u1": {"Delivered": "m1", "Read": "m1"}}));
    }

    #[test]
    fn reactions_are_keyed_by_emoji() {
        let reactions: Reactions = [
            ("🎉".to_owned(), vec![UserId::parse("u2").unwrap()]),
            (
                "👍".to_owned(),
                vec![UserId::parse("u3").unwrap(), UserId::parse("u1").unwrap()],
            ),
        ]
        .into_iter()
        .collect();
        assert_wire(&reactions, json!({"👍": ["u3", "u1"], "🎉": ["u2"]}));
    }
}
