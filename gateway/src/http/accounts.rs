//! Sign-up, e-mail verification and resending the code.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use events_schema::{Command, UserName};
use infra::mail::VerificationMail;
use serde::Deserialize;

use super::body::JsonObject;
use super::error::ApiError;
use super::registration::{self, ensure_chat_user, record_registration};
use super::sessions::{set_session_cookies, tokens_body};
use crate::auth::{Email, Password, SignupOutcome};
use crate::limits::AuthRoute;
use crate::state::AppState;
use crate::wire::Outcome;

/// `POST /signup {name, email, password, source?}`.
pub async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Outcome<'static>>, ApiError> {
    state.limiter.check(AuthRoute::Signup, peer, &headers)?;
    let name =
        UserName::parse(body.string("name")?).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let email = Email::parse(body.string("email")?)?;
    let password = Password::parse(body.string("password")?)?;
    let (user_id, code) = match state.auth.signup(&name, &email, &password).await? {
        SignupOutcome::Created { user_id, code } => {
            record_registration(&state, &user_id, &name).await?;
            (user_id, code)
        }
        SignupOutcome::Replaced {
            user_id,
            code,
            renamed,
            ended_sessions,
            registered,
        } => {
            for session in &ended_sessions {
                state.end_session(session, "password changed").await;
            }
            if !registered {
                // An earlier sign-up stored the account but not its registration: this one
                // completes it, under the name given now.
                record_registration(&state, &user_id, &name).await?;
            } else if let Some(name) = renamed {
                let command = Command::RenameUser {
                    user_id: user_id.clone(),
                    name,
                };
                registration::dispatch(&state, Some(user_id.clone()), command).await?;
            }
            (user_id, code)
        }
    };
    send_code(&state, &email, &name, &code).await?;
    tracing::info!(%user_id, "signed up; verification mail sent");
    Ok(Json(Outcome::ok("Verification mail sent")))
}

async fn send_code(
    state: &AppState,
    email: &Email,
    name: &UserName,
    code: &str,
) -> Result<(), ApiError> {
    let mail = VerificationMail::build(
        &state.settings.public_url,
        email.as_str(),
        name.as_str(),
        code,
    );
    state.mailer.send(&mail).await.map_err(|e| {
        ApiError::Internal(format!(
            "verification mail could not be sent ({}): {e}",
            state.mailer.describe()
        ))
    })
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    email: Option<String>,
    token: Option<String>,
    source: Option<String>,
}

/// `GET /verify?email=&token=&source=app`.
pub async fn verify(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<VerifyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    state.limiter.check(AuthRoute::Verify, peer, &headers)?;
    let Ok(Query(query)) = query else {
        return Err(ApiError::BadRequest("malformed query string".into()));
    };
    let email = Email::parse(query.email.as_deref().unwrap_or_default())?;
    let code = query.token.as_deref().unwrap_or_default();
    let verified = state.auth.verify(&email, code).await?;
    ensure_chat_user(&state, &verified).await?;
    super::account_manage::note_client(&state, &verified.session_id, peer, &headers).await;
    let mut response_headers = HeaderMap::new();
    set_session_cookies(&state, &mut response_headers, &verified.tokens);
    let wants_json = query.source.as_deref() == Some("app")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let body = tokens_body(&verified.tokens, &verified.user_id, None);
        Ok((response_headers, Json(body)).into_response())
    } else {
        Ok((response_headers, Html(VERIFIED_PAGE)).into_response())
    }
}

const VERIFIED_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>E-mail verified</title></head>\
<body><h1>Your e-mail address is verified</h1><p>You are signed in; you can close this page and go back to the chat.</p></body></html>";

/// `POST /resend {email}`: answers the same whether or not the account exists.
pub async fn resend(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Json<Outcome<'static>>, ApiError> {
    state.limiter.check(AuthRoute::Resend, peer, &headers)?;
    let email = Email::parse(body.string("email")?)?;
    if let Some(outcome) = state.auth.resend(&email).await? {
        send_code(&state, &email, &outcome.name, &outcome.code).await?;
        tracing::info!(user_id = %outcome.user_id, "verification code re-sent");
    }
    Ok(Json(Outcome::ok(
        "If the account is waiting for verification, a new code was sent",
    )))
}
