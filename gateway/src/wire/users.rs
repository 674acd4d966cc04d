//! The users: one's own details (`user-details`) and search results (`searched-user`,
//! `added-user-match`).

use events_schema::UserId;
use serde::Serialize;

/// `user-details`.
#[derive(Debug, Serialize)]
pub struct UserDetails<'a> {
    #[serde(rename = "Email")]
    pub email: String,
    #[serde(rename = "Id")]
    pub id: &'a UserId,
    #[serde(rename = "Name")]
    pub name: String,
    /// How many sessions of the user are open.
    #[serde(rename = "Sessions")]
    pub sessions: i64,
}

/// `searched-user` and `added-user-match`.
#[derive(Debug, Serialize)]
pub struct FoundUsers {
    #[serde(rename = "Users")]
    pub users: Vec<FoundUser>,
}

#[derive(Debug, Serialize)]
pub struct FoundUser {
    #[serde(rename = "Email")]
    pub email: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "_id")]
    pub id: UserId,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn details_and_search_results() {
        let me = UserId::parse("u1").unwrap();
        assert_wire(
            &UserDetails {
                email: "ada@example.com".into(),
                id: &me,
                name: "Ada".into(),
                sessions: 2,
            },
            json!({"Name": "Ada", "Email": "ada@example.com", "Id": "u1", "Sessions": 2}),
        );
        assert_wire(
            &FoundUsers {
                users: vec![FoundUser {
                    email: "bob@example.com".into(),
                    name: "Bob".into(),
                    id: UserId::parse("u2").unwrap(),
                }],
            },
            json!({"Users": [{"_id": "u2", "Name": "Bob", "Email": "bob@example.com"}]}),
        );
        assert_wire(&FoundUsers { users: vec![] }, json!({"Users": []}));
    }
}
