//! Managing an account: a forgotten password reset by mailed code, and the signed-in user's open
//! sessions, listed and ended one by one (docs/api.md, "Accounts").

use std::net::SocketAddr;

use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use events_schema::UserId;
use infra::mail::OutgoingMail;
use serde::Serialize;

use super::body::JsonObject;
use super::cookies::{self, ACCESS_COOKIE};
use super::error::ApiError;
use crate::auth::{AuthError, Email, Password, SessionId};
use crate::limits::AuthRoute;
use crate::state::AppState;
use crate::wire::{timestamp, Outcome};

/// `GET /sessions`: the caller's open sessions, the newest first.
#[derive(Debug, Serialize)]
pub struct SessionList {
    #[serde(rename = "Sessions")]
    pub sessions: Vec<SessionEntry>,
    pub message: &'static str,
    pub success: i32,
}

/// One open session: `Id` is what `DELETE /sessions/{Id}` takes; times as everywhere else.
#[derive(Debug, Serialize)]
pub struct SessionEntry {
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "Current")]
    pub current: bool,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Ip")]
    pub ip: Option<String>,
    #[serde(rename = "LastUsedAt")]
    pub last_used_at: String,
    #[serde(rename = "UserAgent")]
    pub user_agent: Option<String>,
}

/// `POST /password/forgot {email}`: the same answer, at the same cost, whether or not the account
/// exists; the lookup, the code and the mail happen after the answer.
pub async fn forgot_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Outcome<'static>>, ApiError> {
    state
        .limiter
        .check(AuthRoute::PasswordForgot, peer, &headers)?;
    let email = Email::parse(body.string("email")?)?;
    tokio::spawn(async move { mail_reset_code(&state, &email).await });
    Ok(Json(Outcome::ok(
        "If the account exists, a code to reset its password was sent",
    )))
}

async fn mail_reset_code(state: &AppState, email: &Email) {
    let requested = match state.auth.forgot_password(email).await {
        Ok(Some(requested)) => requested,
        Ok(None) => {
            tracing::debug!("password reset asked for an address with no verified account");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "password reset code not made");
            return;
        }
    };
    let mail = reset_mail(email.as_str(), requested.name.as_str(), &requested.code);
    match state.mailer.send(&mail).await {
        Ok(()) => tracing::info!(user_id = %requested.user_id, "password reset code sent"),
        Err(e) => tracing::error!(
            user_id = %requested.user_id,
            error = %e,
            mailer = state.mailer.describe(),
            "password reset mail could not be sent"
        ),
    }
}

/// The reset mail: the code, as text and as HTML.
fn reset_mail(email: &str, name: &str, code: &str) -> OutgoingMail {
    let text = format!(
        "Hello {name},\r\n\r\nSomeone asked to reset the password of your account.\r\n\
         Your password reset code: {code}\r\n\r\nThe code expires in 10 minutes. \
         If you did not ask for it, ignore this mail: your password stays as it is.\r\n"
    );
    let html = format!(
        "<!doctype html><html><body><p>Hello {name},</p>\
         <p>Someone asked to reset the password of your account.</p>\
         <p>Your password reset code: <b>{code}</b></p>\
         <p>The code expires in 10 minutes. If you did not ask for it, ignore this mail: your \
         password stays as it is.</p></body></html>",
        name = html_escape(name),
    );
    OutgoingMail {
        to_email: email.to_owned(),
        to_name: name.to_owned(),
        subject: "Your password reset code".to_owned(),
        text,
        html,
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `POST /password/reset {email, token, password}`: a new password, and every session of the
/// account ends (its sockets get `auth-failure` and are disconnected, on every gateway).
pub async fn reset_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Outcome<'static>>, ApiError> {
    state
        .limiter
        .check(AuthRoute::PasswordReset, peer, &headers)?;
    let email = body.string("email")?;
    let token = body.string("token")?;
    // Judged before any code is tried, so a refused password costs no try.
    let password = Password::parse(body.string("password")?)?;
    // A malformed address cannot belong to an account: the same answer as an unknown one.
    let email = Email::parse(email).map_err(|_| ApiError::from(AuthError::InvalidCode))?;
    let (user_id, ended) = state.auth.reset_password(&email, token, &password).await?;
    for session in &ended {
        state.end_session(session, "password changed").await;
    }
    tracing::info!(%user_id, sessions = ended.len(), "password reset; every session ended");
    Ok(Json(Outcome::ok("Password changed")))
}

/// The caller's user and session, from `Authorization: Bearer` or the `access_token` cookie:
/// a valid access token of an open session, else 401.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<(UserId, SessionId), ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let Some(token) = bearer.or_else(|| cookies::read(headers, ACCESS_COOKIE)) else {
        return Err(unauthorized("no access token"));
    };
    match state.auth.access_session(&token).await {
        Ok(who) => Ok(who),
        Err(AuthError::Internal(detail)) => Err(ApiError::Internal(detail)),
        Err(e) => Err(unauthorized(&e.to_string())),
    }
}

fn unauthorized(reason: &str) -> ApiError {
    tracing::debug!(reason, "sessions: no valid access token");
    ApiError::refused(StatusCode::UNAUTHORIZED, "Invalid or missing access token")
}

fn millis(at: i64) -> String {
    timestamp(DateTime::<Utc>::from_timestamp_millis(at).unwrap_or_default())
}

/// `GET /sessions`.
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionList>, ApiError> {
    let (user, current) = caller(&state, &headers).await?;
    let sessions = state
        .auth
        .sessions_of(&user, &current)
        .await?
        .into_iter()
        .map(|s| SessionEntry {
            created_at: millis(s.created_at),
            current: s.current,
            id: s.id,
            ip: s.ip,
            last_used_at: millis(s.last_used_at),
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Json(SessionList {
        sessions,
        message: "Sessions",
        success: 1,
    }))
}

/// `DELETE /sessions/{Id}`: ends one of the caller's sessions; any other id is 404.
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Outcome<'static>>, ApiError> {
    let (user, _) = caller(&state, &headers).await?;
    let not_found = || ApiError::refused(StatusCode::NOT_FOUND, "No such session");
    let Ok(Path(id)) = path else {
        return Err(not_found());
    };
    let Some(session) = state.auth.end_own_session(&user, &id).await? else {
        tracing::debug!(%user, "ending a session: none of the caller's has that id");
        return Err(not_found());
    };
    state.end_session(&session, "session ended").await;
    tracing::info!(%user, "session ended by its user");
    Ok(Json(Outcome::ok("Session ended")))
}

/// Notes the client a new session was opened from: its user agent and address (the one the
/// rate limits count).
pub async fn note_client(
    state: &AppState,
    session: &SessionId,
    peer: SocketAddr,
    headers: &HeaderMap,
) {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let ip = state.limiter.client_ip(peer, headers).to_string();
    state.auth.note_client(session, agent, &ip).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn session_lists_have_the_protocols_fields() {
        assert_wire(
            &SessionList {
                sessions: vec![SessionEntry {
                    created_at: "2026-11-24T09:30:00.000Z".into(),
                    current: true,
                    id: "ab12".into(),
                    ip: Some("127.0.0.1".into()),
                    last_used_at: "2026-11-24T09:31:00.000Z".into(),
                    user_agent: None,
                }],
                message: "Sessions",
                success: 1,
            },
            json!({
                "success": 1, "message": "Sessions",
                "Sessions": [{
                    "Id": "ab12", "Current": true, "CreatedAt": "2026-11-24T09:30:00.000Z",
                    "LastUsedAt": "2026-11-24T09:31:00.000Z", "UserAgent": null, "Ip": "127.0.0.1",
                }],
            }),
        );
    }

    #[test]
    fn the_reset_mail_carries_the_code_and_escapes_the_name() {
        let mail = reset_mail("a@b.co", "<Ada>", "123456");
        assert!(mail.text.contains("Your password reset code: 123456"));
        assert!(mail.html.contains("&lt;Ada&gt;"));
        assert!(!mail.html.contains("<Ada>"));
    }
}
