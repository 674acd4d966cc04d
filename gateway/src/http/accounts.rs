//! Sign-up, e-mail verification and resending the code.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use events_schema::{Command, UserName};
use infra::mail::VerificationMail;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::body::JsonObject;
use super::error::ApiError;
use super::openapi::{JsonBodyRefusals, RateLimited};
use super::registration::{self, ensure_chat_user, record_registration};
use super::sessions::{set_session_cookies, tokens_body};
use crate::auth::{Email, Password, SignupOutcome};
use crate::limits::AuthRoute;
use crate::state::AppState;
use crate::wire::{Outcome, SignedIn};

/// The body of `POST /signup`, for the API's description: the handler reads it field by field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SignupBody {
    /// 1–64 characters.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// The account's e-mail address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 8–256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    /// Accepted and ignored.
    source: Option<String>,
}

/// `POST /signup {name, email, password, source?}`.
#[utoipa::path(
    post,
    path = "/signup",
    summary = "Sign up",
    description = "Creates an unverified account and mails it a verification link and 6-digit code. \
        Signing up again while unverified replaces the password and name, ends the account's \
        sessions and sends a new code.",
    tag = "accounts",
    request_body(content = SignupBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Verification mail sent (`success` 1)", body = Outcome),
        (status = 400, description = "A missing or invalid field: e-mail syntax, name 1–64 characters, \
            password 8–256 characters (`success` -1)", body = Outcome),
        (status = 409, description = "`User Already Exists`: the e-mail belongs to a verified account \
            (`success` 0)", body = Outcome),
        (status = 500, description = "The mail could not be sent or the registration could not be \
            recorded; the account stays (`success` -1)", body = Outcome),
        JsonBodyRefusals,
        RateLimited,
    )
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// The account's e-mail address.
    #[param(required = true, format = Email, max_length = 254)]
    email: Option<String>,
    /// The 6-digit code of the verification mail.
    #[param(required = true, pattern = "^[0-9]{6}$")]
    token: Option<String>,
    /// `app` for the JSON answer instead of the HTML page.
    source: Option<String>,
}

/// `GET /verify?email=&token=&source=app`.
#[utoipa::path(
    get,
    path = "/verify",
    summary = "Verify an e-mail address",
    description = "Checks the mailed code, signs the user in (both cookies) and creates the self chat. \
        The answer is an HTML page, or JSON when `source=app` or `Accept: application/json`. After \
        5 wrong codes the code is void until `/resend`.",
    tag = "accounts",
    params(VerifyQuery),
    responses(
        (status = 200, description = "Verified and signed in; both cookies set",
            headers(("Set-Cookie" = String, description = "`access_token` and `refresh_token`")),
            content(
                (SignedIn = "application/json"),
                (String = "text/html"),
            )),
        (status = 400, description = "A wrong, used or expired code (`success` 0); a malformed \
            e-mail or query string (`success` -1)", body = Outcome),
        (status = 500, description = "A server error (`success` -1)", body = Outcome),
        RateLimited,
    )
)]
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

/// The body of `POST /resend`, for the API's description: the handler reads it field by field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ResendBody {
    /// The account's e-mail address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Accepted and ignored.
    source: Option<String>,
}

/// `POST /resend {email}`: answers the same whether or not the account exists.
#[utoipa::path(
    post,
    path = "/resend",
    summary = "Send a new verification code",
    description = "Mails a new code, voiding the previous one, to an existing unverified account; \
        answers the same whether or not the account exists.",
    tag = "accounts",
    request_body(content = ResendBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Done, whether or not the account exists (`success` 1)", body = Outcome),
        (status = 400, description = "A missing or malformed e-mail (`success` -1)", body = Outcome),
        (status = 500, description = "The mail could not be sent (`success` -1)", body = Outcome),
        JsonBodyRefusals,
        RateLimited,
    )
)]
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
