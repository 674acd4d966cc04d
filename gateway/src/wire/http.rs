//! The HTTP API's bodies (docs/api.md, "HTTP"): every answer has `success` (1 ok, 0 refused, -1 bad
//! request or server error, -2 not verified) and `message`; the token routes add the tokens.

use events_schema::{UserId, UserName};
use serde::Serialize;
use utoipa::ToSchema;

/// `{success, message}`: every answer without tokens, refusals included.
#[derive(Debug, Serialize, ToSchema)]
pub struct Outcome<'a> {
    /// What happened, for a person.
    pub message: &'a str,
    /// 1 ok, 0 refused, -1 bad request or server error, -2 account not verified.
    #[schema(minimum = -2, maximum = 1)]
    pub success: i32,
}

impl<'a> Outcome<'a> {
    /// A success (`success: 1`).
    pub fn ok(message: &'a str) -> Self {
        Self {
            message,
            success: 1,
        }
    }
}

/// A verification (`source=app` or JSON asked for) or a login: `userName` only for a login.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn<'a> {
    /// The access token (HS256 JWT), also set as the `access_token` cookie.
    #[serde(rename = "accessToken")]
    pub access_token: &'a str,
    pub message: &'a str,
    /// The refresh token (opaque), also set as the `refresh_token` cookie.
    #[serde(rename = "refreshToken")]
    pub refresh_token: &'a str,
    /// 1.
    pub success: i32,
    #[serde(rename = "userId")]
    #[schema(value_type = String)]
    pub user_id: &'a UserId,
    /// The user's name; a login's answer only.
    #[serde(rename = "userName", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
    pub user_name: Option<&'a UserName>,
}

/// `POST /refresh`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refreshed<'a> {
    /// A new access token, also set as the `access_token` cookie.
    #[serde(rename = "accessToken")]
    pub access_token: &'a str,
    pub message: &'a str,
    /// The new refresh token (the one presented is spent), also set as the `refresh_token` cookie.
    #[serde(rename = "refreshToken")]
    pub refresh_token: &'a str,
    /// 1.
    pub success: i32,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn outcomes() {
        assert_wire(
            &Outcome::ok("Logged out"),
            json!({"success": 1, "message": "Logged out"}),
        );
        assert_wire(
            &Outcome {
                message: "Account not verified; check your e-mail",
                success: -2,
            },
            json!({"success": -2, "message": "Account not verified; check your e-mail"}),
        );
    }

    #[test]
    fn token_bodies() {
        let user = UserId::parse("u1").unwrap();
        let name = UserName::parse("Ada").unwrap();
        let login = SignedIn {
            access_token: "a",
            message: "Signed in",
            refresh_token: "r",
            success: 1,
            user_id: &user,
            user_name: Some(&name),
        };
        assert_wire(
            &login,
            json!({
                "success": 1, "message": "Signed in", "accessToken": "a", "refreshToken": "r",
                "userId": "u1", "userName": "Ada",
            }),
        );
        let verified = SignedIn {
            user_name: None,
            ..login
        };
        assert_wire(
            &verified,
            json!({
                "success": 1, "message": "Signed in", "accessToken": "a", "refreshToken": "r",
                "userId": "u1",
            }),
        );
        assert_wire(
            &Refreshed {
                access_token: "a",
                message: "Tokens refreshed",
                refresh_token: "r",
                success: 1,
            },
            json!({"success": 1, "message": "Tokens refreshed", "accessToken": "a", "refreshToken": "r"}),
        );
    }
}
