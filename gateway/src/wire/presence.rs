//! Typing and presence (docs/api.md, "Typing" and "Presence"): `typing` to a chat's other
//! members, `presence` on connect and `presence-changed` to a user's contacts.

use events_schema::{ChatId, UserId, UserName};
use serde::Serialize;

/// `typing`: a member started or stopped typing in a chat.
#[derive(Debug, Clone, Serialize)]
pub struct TypingChanged<'a> {
    #[serde(rename = "ChatId")]
    pub chat_id: &'a ChatId,
    #[serde(rename = "Typing")]
    pub typing: bool,
    #[serde(rename = "UserId")]
    pub user_id: &'a UserId,
}

/// One contact in `presence`, and `presence-changed`: whether they are online, and when they were
/// last seen (null while online, when hidden, or never seen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPresence {
    #[serde(rename = "LastSeen")]
    pub last_seen: Option<String>,
    #[serde(rename = "Online")]
    pub online: bool,
    #[serde(rename = "UserId")]
    pub user_id: UserId,
}

/// `presence-changed` after a contact renamed themselves.
#[derive(Debug, Clone, Serialize)]
pub struct NameChanged<'a> {
    #[serde(rename = "Name")]
    pub name: &'a UserName,
    #[serde(rename = "UserId")]
    pub user_id: &'a UserId,
}

/// `presence`, on connect: the user's contacts, the most recently active chats first.
#[derive(Debug, Serialize)]
pub struct PresenceList {
    #[serde(rename = "Users")]
    pub users: Vec<UserPresence>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn typing_and_presence_have_the_protocols_fields() {
        let (chat, user) = (ChatId::parse("c1").unwrap(), UserId::parse("u1").unwrap());
        assert_wire(
            &TypingChanged {
                chat_id: &chat,
                typing: true,
                user_id: &user,
            },
            json!({"ChatId": "c1", "Typing": true, "UserId": "u1"}),
        );
        let offline = UserPresence {
            last_seen: Some("2026-11-24T09:30:00.000Z".into()),
            online: false,
            user_id: user.clone(),
        };
        assert_wire(
            &offline,
            json!({"LastSeen": "2026-11-24T09:30:00.000Z", "Online": false, "UserId": "u1"}),
        );
        assert_wire(
            &PresenceList {
                users: vec![UserPresence {
                    last_seen: None,
                    online: true,
                    user_id: user,
                }],
            },
            json!({"Users": [{"LastSeen": null, "Online": true, "UserId": "u1"}]}),
        );
        let name = UserName::parse("Ada L").unwrap();
        let user = UserId::parse("u1").unwrap();
        assert_wire(
            &NameChanged {
                name: &name,
                user_id: &user,
            },
            json!({"UserId": "u1", "Name": "Ada L"}),
        );
    }
}
