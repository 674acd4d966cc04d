//! Groups: creation, the page, and the administration's answers and deliveries (members added,
//! kicked out, leaving; the admin changed; the group deleted).

use events_schema::events::AttachmentShared;
use std::collections::BTreeMap;

use events_schema::{ChatId, MessageId, UserId};
use serde::Serialize;

use super::changes::{Reactions, Receipts};
use super::messages::ReadStatus;

/// `create-group-chat-creator` (the creator) and `create-group-chat-receiver` (each other
/// participant).
#[derive(Debug, Serialize)]
pub struct GroupCreated<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
    #[serde(rename = "Name")]
    pub name: &'a str,
}

/// `group-chat`. `Participants` maps each member's id to their name.
#[derive(Debug, Serialize)]
pub struct GroupChat {
    #[serde(rename = "Admin")]
    pub admin: Option<UserId>,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "GroupId")]
    pub group_id: ChatId,
    #[serde(rename = "HasMore")]
    pub has_more: bool,
    #[serde(rename = "Messages")]
    pub messages: Vec<GroupMessage>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Participants")]
    pub participants: BTreeMap<String, String>,
    #[serde(rename = "Receipts")]
    pub receipts: Receipts,
}

/// A message of `group-chat`: its id twice (`Id` and `_id`), `Sender` the sender's name.
#[derive(Debug, Serialize)]
pub struct GroupMessage {
    #[serde(rename = "Content")]
    pub content: String,
    #[serde(rename = "Deleted", skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(rename = "EditedAt", skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(rename = "Id")]
    pub id: MessageId,
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
    pub sender: String,
    #[serde(rename = "SenderId")]
    pub sender_id: UserId,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "_id")]
    pub underscore_id: MessageId,
}

/// The acknowledgement of `read-group-message`.
#[derive(Debug, Serialize)]
pub struct GroupRead<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
}

/// The acknowledgement of `add-member`.
#[derive(Debug, Serialize)]
pub struct MemberAdded<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
    #[serde(rename = "Member")]
    pub member: &'a UserId,
}

/// `add-member-success`, to every member but the new one.
#[derive(Debug, Serialize)]
pub struct MemberJoined<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Member")]
    pub member: &'a UserId,
    #[serde(rename = "MemberName")]
    pub member_name: &'a str,
}

/// `new-grp-added`, to the new member.
#[derive(Debug, Serialize)]
pub struct AddedToGroup<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
}

/// `kickout-successful`, to the admin who kicked.
#[derive(Debug, Serialize)]
pub struct Kicked<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
    #[serde(rename = "Member")]
    pub member: &'a UserId,
}

/// `kicked-out`, to the member kicked out.
#[derive(Debug, Serialize)]
pub struct KickedOut<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
    #[serde(rename = "GroupName")]
    pub group_name: &'a str,
}

/// `someone-kicked-out`, to the remaining members but the admin. `GroupName` too: the original
/// web page reads it from this event.
#[derive(Debug, Serialize)]
pub struct SomeoneKickedOut<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
    #[serde(rename = "GroupName")]
    pub group_name: &'a str,
    #[serde(rename = "Member")]
    pub member: &'a UserId,
}

/// `group-left-success`, to the member who left.
#[derive(Debug, Serialize)]
pub struct GroupLeft<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
    #[serde(rename = "Message")]
    pub message: &'a str,
}

/// `user-left-grp`, to the remaining members. `User` is the leaving user's id, as the original
/// sends it.
#[derive(Debug, Serialize)]
pub struct UserLeftGroup<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
    #[serde(rename = "User")]
    pub user: &'a UserId,
    #[serde(rename = "UserName")]
    pub user_name: &'a str,
}

/// `change-admin-success-creator` (the former admin) and `change-admin-success-receiver` (the
/// other members).
#[derive(Debug, Serialize)]
pub struct AdminChanged<'a> {
    #[serde(rename = "Admin")]
    pub admin: &'a UserId,
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
}

/// `delete-group-chat-creator` (the admin) and `delete-grp-success-receiver` (the other members).
#[derive(Debug, Serialize)]
pub struct GroupDeleted<'a> {
    #[serde(rename = "GroupId")]
    pub group_id: &'a ChatId,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::{assert_wire, Reactions, Reading, Receipts};

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn group() -> ChatId {
        ChatId::parse("g1").unwrap()
    }

    #[test]
    fn the_page() {
        let page = GroupChat {
            admin: Some(user("u1")),
            description: "".into(),
            group_id: group(),
            has_more: false,
            messages: vec![GroupMessage {
                content: "hi".into(),
                deleted: false,
                edited_at: None,
                reactions: Reactions::new(),
                reply_to: None,
                id: MessageId::parse("m1").unwrap(),
                read_status: [("u1".to_owned(), Reading::Read)].into_iter().collect(),
                sender: "Ada".into(),
                sender_id: user("u1"),
                timestamp: "2026-11-24T09:30:00.000Z".into(),
                underscore_id: MessageId::parse("m1").unwrap(),
                attachments: Vec::new(),
            }],
            name: "Team".into(),
            participants: [
                ("u1".to_owned(), "Ada".to_owned()),
                ("u2".to_owned(), "Bob".to_owned()),
            ]
            .into_iter()
            .collect(),
            receipts: Receipts::new(),
        };
        assert_wire(
            &page,
            json!({
                "GroupId": "g1",
                "Admin": "u1",
                "Name": "Team",
                "Description": "",
                "Participants": {"u1": "Ada", "u2": "Bob"},
                "Messages": [{
                    "Id": "m1", "_id": "m1", "Sender": "Ada", "SenderId": "u1", "Content": "hi",
                    "ReadStatus": {"u1": "Read"}, "Timestamp": "2026-11-24T09:30:00.000Z",
                }],
                "HasMore": false,
                "Receipts": {},
            }),
        );
        let no_admin = GroupChat {
            admin: None,
            messages: vec![],
            participants: BTreeMap::new(),
            ..page
        };
        assert_eq!(
            serde_json::to_value(&no_admin).unwrap()["Admin"],
            json!(null)
        );
    }

    #[test]
    fn a_message_with_every_change_keeps_the_field_order() {
        let message = GroupMessage {
            content: String::new(),
            deleted: true,
            edited_at: Some("2026-11-24T09:31:00.000Z".into()),
            id: MessageId::parse("m1").unwrap(),
            reactions: [("🎉".to_owned(), vec![user("u2")])].into_iter().collect(),
            read_status: [("u1".to_owned(), Reading::Read)].into_iter().collect(),
            reply_to: Some(MessageId::parse("m0").unwrap()),
            sender: "Ada".into(),
            sender_id: user("u1"),
            timestamp: "2026-11-24T09:30:00.000Z".into(),
            underscore_id: MessageId::parse("m1").unwrap(),
            attachments: Vec::new(),
        };
        assert_wire(
            &message,
            json!({
                "Content": "", "Deleted": true, "EditedAt": "2026-11-24T09:31:00.000Z", "Id": "m1",
                "Reactions": {"🎉": ["u2"]}, "ReadStatus": {"u1": "Read"}, "ReplyTo": "m0",
                "Sender": "Ada", "SenderId": "u1", "Timestamp": "2026-11-24T09:30:00.000Z",
                "_id": "m1",
            }),
        );
    }

    #[test]
    fn creation_and_reading() {
        let g = group();
        assert_wire(
            &GroupCreated {
                group_id: &g,
                name: "Team",
            },
            json!({"GroupId": "g1", "Name": "Team"}),
        );
        assert_wire(&GroupRead { group_id: &g }, json!({"GroupId": "g1"}));
    }

    #[test]
    fn members_added() {
        let (g, bob) = (group(), user("u2"));
        assert_wire(
            &MemberAdded {
                group_id: &g,
                member: &bob,
            },
            json!({"GroupId": "g1", "Member": "u2"}),
        );
        assert_wire(
            &MemberJoined {
                chat_id: &g,
                member: &bob,
                member_name: "Bob",
            },
            json!({"ChatId": "g1", "Member": "u2", "MemberName": "Bob"}),
        );
        assert_wire(&AddedToGroup { chat_id: &g }, json!({"ChatId": "g1"}));
    }

    #[test]
    fn members_kicked_out_and_leaving() {
        let (g, bob) = (group(), user("u2"));
        assert_wire(
            &Kicked {
                group_id: &g,
                member: &bob,
            },
            json!({"GroupId": "g1", "Member": "u2"}),
        );
        assert_wire(
            &KickedOut {
                group_id: &g,
                group_name: "Team",
            },
            json!({"GroupId": "g1", "GroupName": "Team"}),
        );
        assert_wire(
            &SomeoneKickedOut {
                group_id: &g,
                group_name: "Team",
                member: &bob,
            },
            json!({"GroupId": "g1", "GroupName": "Team", "Member": "u2"}),
        );
        assert_wire(
            &GroupLeft {
                group_id: &g,
                message: "You left the group",
            },
            json!({"Message": "You left the group", "GroupId": "g1"}),
        );
        assert_wire(
            &UserLeftGroup {
                group_id: &g,
                user: &bob,
                user_name: "Bob",
            },
            json!({"GroupId": "g1", "User": "u2", "UserName": "Bob"}),
        );
    }

    #[test]
    fn the_admin_changed_and_the_group_deleted() {
        let (g, bob) = (group(), user("u2"));
        assert_wire(
            &AdminChanged {
                admin: &bob,
                group_id: &g,
            },
            json!({"GroupId": "g1", "Admin": "u2"}),
        );
        assert_wire(&GroupDeleted { group_id: &g }, json!({"GroupId": "g1"}));
    }
}
