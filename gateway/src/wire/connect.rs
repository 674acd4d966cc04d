//! What a socket is told about its connection: refused (`auth-failure`), a fresh access token,
//! who it is (`user-id`), and its chat lists.

use events_schema::{ChatId, UserId};
use serde::Serialize;

/// `auth-failure`: the handshake was refused or the session ended; the socket is disconnected.
#[derive(Debug, Serialize)]
pub struct AuthFailure<'a> {
    pub reason: &'a str,
}

/// `access-token`: minted at the handshake from the refresh token, the access token had expired.
#[derive(Debug, Serialize)]
pub struct AccessToken<'a> {
    #[serde(rename = "accessToken")]
    pub access_token: &'a str,
}

/// `user-id`.
#[derive(Debug, Serialize)]
pub struct UserIdentity<'a> {
    #[serde(rename = "userId")]
    pub user_id: &'a UserId,
    #[serde(rename = "userName")]
    pub user_name: &'a str,
}

/// `personal-chat-list`.
#[derive(Debug, Serialize)]
pub struct PersonalChatList {
    #[serde(rename = "PersonalChatList")]
    pub chats: Vec<PersonalChatEntry>,
}

#[derive(Debug, Serialize)]
pub struct PersonalChatEntry {
    #[serde(rename = "LastChat")]
    pub last_chat: Option<String>,
    #[serde(rename = "Partner")]
    pub partner: String,
    #[serde(rename = "PartnerId")]
    pub partner_id: UserId,
    #[serde(rename = "Unread")]
    pub unread: i64,
    #[serde(rename = "_id")]
    pub id: ChatId,
}

/// `group-chat-list`.
#[derive(Debug, Serialize)]
pub struct GroupChatList {
    #[serde(rename = "GroupChatList")]
    pub groups: Vec<GroupChatEntry>,
}

#[derive(Debug, Serialize)]
pub struct GroupChatEntry {
    #[serde(rename = "LastChat")]
    pub last_chat: Option<String>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Unread")]
    pub unread: i64,
    #[serde(rename = "_id")]
    pub id: ChatId,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn chat(id: &str) -> ChatId {
        ChatId::parse(id).unwrap()
    }

    #[test]
    fn the_connection_events() {
        assert_wire(
            &AuthFailure {
                reason: "session ended",
            },
            json!({"reason": "session ended"}),
        );
        assert_wire(
            &AccessToken {
                access_token: "a.b.c",
            },
            json!({"accessToken": "a.b.c"}),
        );
        assert_wire(
            &UserIdentity {
                user_id: &user("u1"),
                user_name: "Ada",
            },
            json!({"userId": "u1", "userName": "Ada"}),
        );
    }

    #[test]
    fn the_chat_lists() {
        let personal = PersonalChatList {
            chats: vec![
                PersonalChatEntry {
                    last_chat: Some("2026-11-24T09:30:00.000Z".into()),
                    partner: "Bob".into(),
                    partner_id: user("u2"),
                    unread: 3,
                    id: chat("p1"),
                },
                PersonalChatEntry {
                    last_chat: None,
                    partner: "Cy".into(),
                    partner_id: user("u3"),
                    unread: 0,
                    id: chat("p2"),
                },
            ],
        };
        assert_wire(
            &personal,
            json!({"PersonalChatList": [
                {"_id": "p1", "Partner": "Bob", "PartnerId": "u2", "LastChat": "2026-11-24T09:30:00.000Z", "Unread": 3},
                {"_id": "p2", "Partner": "Cy", "PartnerId": "u3", "LastChat": null, "Unread": 0},
            ]}),
        );
        let groups = GroupChatList {
            groups: vec![GroupChatEntry {
                last_chat: None,
                name: "Team".into(),
                unread: 1,
                id: chat("g1"),
            }],
        };
        assert_wire(
            &groups,
            json!({"GroupChatList": [{"_id": "g1", "Name": "Team", "LastChat": null, "Unread": 1}]}),
        );
    }
}
