//! Credentials of a handshake, from (in order) the `auth` payload, the query string, the cookies;
//! and the Origin rule for cookie-authenticated handshakes.

use axum::http::header;
use serde_json::Value;
use socketioxide::extract::SocketRef;

use super::rooms::SocketUser;
use crate::auth::AuthError;
use crate::http::cookies::{self, ACCESS_COOKIE, REFRESH_COOKIE};
use crate::state::AppState;

#[derive(Debug, Default, PartialEq, Eq)]
struct Credentials {
    access: Option<String>,
    refresh: Option<String>,
    from_cookie: bool,
}

/// Authenticates a handshake: the user, and a fresh access token when the presented one had
/// expired but the refresh token is good. Errors are reasons safe to send in `auth-failure`.
pub async fn authenticate(
    state: &AppState,
    socket: &SocketRef,
    auth: Option<Value>,
) -> Result<(SocketUser, Option<String>), &'static str> {
    let parts = socket.req_parts();
    let credentials = from_auth_payload(auth.as_ref())
        .or_else(|| from_query(parts.uri.query()))
        .or_else(|| from_cookies(&parts.headers))
        .ok_or("no credentials")?;
    if credentials.from_cookie {
        // A browser attaches cookies to cross-site WebSocket handshakes too; only allowed origins
        // may ride on them. No Origin at all is a native (mobile) client: allowed.
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| state.settings.origin_allowed(o));
            if !allowed {
                return Err("origin not allowed");
            }
        }
    }
    let authenticated = match state
        .auth
        .authenticate(
            credentials.access.as_deref(),
            credentials.refresh.as_deref(),
        )
        .await
    {
        Ok(authenticated) => authenticated,
        Err(AuthError::RefreshReused { session_id }) => {
            // The theft signal, as at `/refresh`: the session is already revoked; its sockets go.
            tracing::warn!(%session_id, "spent refresh token presented at a handshake: session revoked");
            state.end_session(&session_id, "session revoked").await;
            return Err("invalid or expired credentials");
        }
        Err(e) => {
            tracing::debug!(reason = %e, "handshake credentials refused");
            return Err("invalid or expired credentials");
        }
    };
    let user = SocketUser {
        user_id: authenticated.user_id,
        name: authenticated.name,
        session_id: authenticated.session_id,
    };
    Ok((user, authenticated.fresh_access))
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn from_auth_payload(auth: Option<&Value>) -> Option<Credentials> {
    let auth = auth?.as_object()?;
    let access = non_empty(auth.get("accessToken")).or_else(|| non_empty(auth.get("token")));
    let refresh = non_empty(auth.get("refreshToken"));
    (access.is_some() || refresh.is_some()).then_some(Credentials {
        access,
        refresh,
        from_cookie: false,
    })
}

fn from_query(query: Option<&str>) -> Option<Credentials> {
    let mut credentials = Credentials::default();
    for (key, value) in form_pairs(query?) {
        match key.as_str() {
            "accessToken" if !value.is_empty() => credentials.access = Some(value),
            "refreshToken" if !value.is_empty() => credentials.refresh = Some(value),
            _ => {}
        }
    }
    (credentials.access.is_some() || credentials.refresh.is_some()).then_some(credentials)
}

fn from_cookies(headers: &axum::http::HeaderMap) -> Option<Credentials> {
    let access = cookies::read(headers, ACCESS_COOKIE);
    let refresh = cookies::read(headers, REFRESH_COOKIE);
    (access.is_some() || refresh.is_some()).then_some(Credentials {
        access,
        refresh,
        from_cookie: true,
    })
}

/// `application/x-www-form-urlencoded` pairs (percent-decoding, `+` as space).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_payload_wins_and_token_is_an_alias() {
        let c = from_auth_payload(Some(&json!({"token": "a"}))).unwrap();
        assert_eq!(c.access.as_deref(), Some("a"));
        assert!(!c.from_cookie);
        assert!(from_auth_payload(Some(&json!({}))).is_none());
        assert!(from_auth_payload(Some(&json!({"accessToken": 5}))).is_none());
    }

    #[test]
    fn query_tokens_are_decoded() {
        let c = from_query(Some(
            "EIO=4&transport=polling&accessToken=a%2Eb&refreshToken=r+s",
        ))
        .unwrap();
        assert_eq!(c.access.as_deref(), Some("a.b"));
        assert_eq!(c.refresh.as_deref(), Some("r s"));
        assert!(from_query(Some("EIO=4&transport=websocket")).is_none());
        assert!(from_query(Some("accessToken=%zz")).is_none());
    }
}
