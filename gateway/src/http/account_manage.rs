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
use utoipa::ToSchema;

use super::body::JsonObject;
use super::cookies::{self, ACCESS_COOKIE};
use super::error::ApiError;
use super::openapi::{JsonBodyRefusals, RateLimited};
use crate::auth::{AuthError, Email, Password, SessionId};
use crate::limits::AuthRoute;
use crate::state::AppState;
use crate::wire::{timestamp, Outcome};

/// `GET /sessions`: the caller's open sessions, the newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// The caller's open sessions, the newest first.
    #[serde(rename = "Sessions")]
    pub sessions: Vec<SessionEntry>,
    pub message: &'static str,
    /// 1.
    pub success: i32,
}

/// One open session: `Id` is what `DELETE /sessions/{Id}` takes; times as everywhere else.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionEntry {
    /// When it was opened (RFC 3339, milliseconds, UTC).
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    /// Whether it is the caller's own.
    #[serde(rename = "Current")]
    pub current: bool,
    /// Opaque: what `DELETE /sessions/{id}` takes.
    #[serde(rename = "Id")]
    pub id: String,
    /// The address of the login or verification that opened it, when known.
    #[serde(rename = "Ip")]
    #[schema(required = true)]
    pub ip: Option<String>,
    /// When it was last used, written at most once a minute (RFC 3339, milliseconds, UTC).
    #[serde(rename = "LastUsedAt")]
    pub last_used_at: String,
    /// The user agent (at most 256 characters) of the login or verification that opened it,
    /// when known.
    #[serde(rename = "UserAgent")]
    #[schema(required = true)]
    pub user_agent: Option<String>,
}

/// The body of `POST /password/forgot`, for the API's description: the handler reads it field by
/// field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ForgotPasswordBody {
    /// The account's e-mail address.
    #[schema(format = Email, max_length = 254)]
    email: String,
}

/// `POST /password/forgot {email}`: the same answer, at the same cost, whether or not the account
/// exists; the lookup, the code and the mail happen after the answer.
#[utoipa::path(
    post,
    path = "/password/forgot",
    summary = "Ask for a password reset code",
    description = "Mails an existing verified account a 6-digit code (10 minutes, 5 tries) that \
        `/password/reset` takes; a new request voids the previous code. The answer is the same, at \
        the same cost, whether or not the account exists.",
    tag = "accounts",
    request_body(content = ForgotPasswordBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Done, whether or not the account exists (`success` 1)", body = Outcome),
        (status = 400, description = "A missing or malformed e-mail (`success` -1)", body = Outcome),
        JsonBodyRefusals,
        RateLimited,
    )
)]
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

/// The body of `POST /password/reset`, for the API's description: the handler reads it field by
/// field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ResetPasswordBody {
    /// The account's e-mail address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// The mailed 6-digit code.
    #[schema(pattern = "^[0-9]{6}$")]
    token: String,
    /// The new password, 8–256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

/// `POST /password/reset {email, token, password}`: a new password, and every session of the
/// account ends (its sockets get `auth-failure` and are disconnected, on every gateway).
#[utoipa::path(
    post,
    path = "/password/reset",
    summary = "Reset the password",
    description = "Replaces the password and ends every session of the account; the code is spent. \
        After 5 wrong codes the code is void until a new `/password/forgot`.",
    tag = "accounts",
    request_body(content = ResetPasswordBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Password changed, every session ended (`success` 1)", body = Outcome),
        (status = 400, description = "A wrong, used or expired code, or an unknown or malformed e-mail \
            (`success` 0); a missing field or a password outside 8–256 characters (`success` -1)",
            body = Outcome),
        (status = 500, description = "A server error (`success` -1)", body = Outcome),
        JsonBodyRefusals,
        RateLimited,
    )
)]
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
#[utoipa::path(
    get,
    path = "/sessions",
    summary = "The caller's open sessions",
    tag = "sessions",
    security(("access_token" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The caller's open sessions, the newest first", body = SessionList),
        (status = 401, description = "No valid access token of an open session (`success` 0)", body = Outcome),
        (status = 500, description = "A server error (`success` -1)", body = Outcome),
    )
)]
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
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    summary = "End one of the caller's sessions",
    description = "Its sockets get `auth-failure` and are disconnected, on every gateway.",
    tag = "sessions",
    params(("id" = String, Path, description = "A session's `Id`, as `GET /sessions` lists it")),
    security(("access_token" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The session ended (`success` 1)", body = Outcome),
        (status = 401, description = "No valid access token of an open session (`success` 0)", body = Outcome),
        (status = 404, description = "No session of the caller's has that id: another user's, an \
            ended one and an unknown one alike (`success` 0)", body = Outcome),
        (status = 500, description = "A server error (`success` -1)", body = Outcome),
    )
)]
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
