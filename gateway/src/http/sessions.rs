//! Login, logout, token refresh and the original's `update-access-token`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use events_schema::{UserId, UserName};
use utoipa::ToSchema;

use super::body::JsonObject;
use super::cookies::{self, ACCESS_COOKIE, REFRESH_COOKIE};
use super::error::ApiError;
use super::openapi::{JsonBodyRefusals, RateLimited};
use super::registration::ensure_chat_user;
use crate::auth::{AuthError, Email, TokenPair};
use crate::limits::AuthRoute;
use crate::state::AppState;
use crate::wire::{Outcome, Refreshed, SignedIn};

/// The body of `POST /login`, for the API's description: the handler reads it field by field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoginBody {
    #[schema(format = Email)]
    email: String,
    password: String,
}

/// `POST /login {email, password}`.
#[utoipa::path(
    post,
    path = "/login",
    summary = "Log in",
    description = "Opens a session: both tokens in the body and as cookies.",
    tag = "tokens",
    request_body(content = LoginBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in; both cookies set",
            headers(("Set-Cookie" = String, description = "`access_token` and `refresh_token`")),
            body = SignedIn),
        (status = 400, description = "A missing field (`success` -1)", body = Outcome),
        (status = 401, description = "`Invalid email or password`, for an unknown e-mail and a wrong \
            password alike (`success` 0)", body = Outcome),
        (status = 403, description = "The right password, but the account is not verified (`success` -2)",
            body = Outcome),
        (status = 500, description = "A server error (`success` -1)", body = Outcome),
        JsonBodyRefusals,
        RateLimited,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    state.limiter.check(AuthRoute::Login, peer, &headers)?;
    let email = body.string("email")?;
    let password = body.string("password")?;
    // A malformed address cannot belong to an account: the same answer as an unknown one.
    let email = Email::parse(email).map_err(|_| ApiError::from(AuthError::InvalidCredentials))?;
    let ok = state.auth.login(&email, password).await?;
    ensure_chat_user(&state, &ok).await?;
    super::account_manage::note_client(&state, &ok.session_id, peer, &headers).await;
    let mut response_headers = HeaderMap::new();
    set_session_cookies(&state, &mut response_headers, &ok.tokens);
    let body = tokens_body(&ok.tokens, &ok.user_id, Some(&ok.name));
    Ok((response_headers, Json(body)).into_response())
}

/// The body of `POST /logout` and `POST /refresh`, for the API's description; the refresh cookie
/// may stand in for it. A body that is not a JSON object is ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RefreshTokenBody {
    /// The refresh token; when absent or empty, the `refresh_token` cookie's.
    #[schema(rename = "refreshToken")]
    refresh_token: Option<String>,
}

/// `POST /logout` with the refresh cookie or `{refreshToken}`: 200 unless the body is refused.
#[utoipa::path(
    post,
    path = "/logout",
    summary = "Log out",
    description = "Revokes the session the refresh token names, if any (its sockets get \
        `auth-failure` and are disconnected), and clears both cookies.",
    tag = "tokens",
    request_body(content = Option<RefreshTokenBody>, content_type = "application/json"),
    security((), ("refresh_cookie" = [])),
    responses(
        (status = 200, description = "Logged out, whether or not the token named a session; both \
            cookies cleared (`success` 1)",
            headers(("Set-Cookie" = String, description = "`access_token` and `refresh_token`, expired")),
            body = Outcome),
        JsonBodyRefusals,
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonObject, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let body = optional_body(body)?;
    let token = refresh_token_from(&headers, body.as_ref());
    if let Some(token) = token {
        if let Some(session) = state.auth.logout(&token).await {
            state.end_session(&session, "logged out").await;
        }
    }
    let secure = state.settings.secure_cookies();
    let mut response_headers = HeaderMap::new();
    cookies::clear(&mut response_headers, ACCESS_COOKIE, secure);
    cookies::clear(&mut response_headers, REFRESH_COOKIE, secure);
    Ok((response_headers, Json(Outcome::ok("Logged out"))))
}

/// `POST /refresh` with the refresh cookie or `{refreshToken}`: rotates the refresh token.
#[utoipa::path(
    post,
    path = "/refresh",
    summary = "Refresh the tokens",
    description = "A new access token and a new refresh token; the one presented is spent. \
        Presenting a spent refresh token revokes the whole session and disconnects its sockets.",
    tag = "tokens",
    request_body(content = Option<RefreshTokenBody>, content_type = "application/json"),
    security((), ("refresh_cookie" = [])),
    responses(
        (status = 200, description = "New tokens; both cookies set",
            headers(("Set-Cookie" = String, description = "`access_token` and `refresh_token`")),
            body = Refreshed),
        (status = 401, description = "`Invalid refresh token`: none, unknown, expired or spent \
            (`success` 0)", body = Outcome),
        (status = 500, description = "A server error (`success` -1)", body = Outcome),
        JsonBodyRefusals,
        RateLimited,
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<JsonObject, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let body = optional_body(body)?;
    state.limiter.check(AuthRoute::Refresh, peer, &headers)?;
    let Some(token) = refresh_token_from(&headers, body.as_ref()) else {
        return Err(AuthError::InvalidRefresh.into());
    };
    let tokens = match state.auth.refresh(&token).await {
        Ok(tokens) => tokens,
        Err(AuthError::RefreshReused { session_id }) => {
            tracing::warn!(%session_id, "spent refresh token presented again: session revoked");
            state.end_session(&session_id, "session revoked").await;
            return Err(AuthError::InvalidRefresh.into());
        }
        Err(e) => return Err(e.into()),
    };
    let mut response_headers = HeaderMap::new();
    set_session_cookies(&state, &mut response_headers, &tokens);
    let body = Refreshed {
        access_token: &tokens.access,
        message: "Tokens refreshed",
        refresh_token: &tokens.refresh,
        success: 1,
    };
    Ok((response_headers, Json(body)).into_response())
}

/// The body of `POST /update-access-token`, for the API's description: the handler reads it field
/// by field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UpdateAccessTokenBody {
    /// An access token (the protocol's spelling, one `c`).
    #[schema(rename = "acessToken")]
    acess_token: String,
}

/// `POST /update-access-token {acessToken}` (the original's spelling): sets the access cookie for
/// a token this server signed, that has not expired and whose session is still open.
#[utoipa::path(
    post,
    path = "/update-access-token",
    summary = "Set the access cookie",
    description = "Sets the `access_token` cookie to the given access token, when this server \
        signed it, it has not expired and its session is open.",
    tag = "tokens",
    request_body(content = UpdateAccessTokenBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The cookie is set (`success` 1)",
            headers(("Set-Cookie" = String, description = "`access_token`")),
            body = Outcome),
        (status = 400, description = "A missing field, or a token that is not a valid access token \
            of an open session (`success` -1)", body = Outcome),
        (status = 500, description = "A server error (`success` -1)", body = Outcome),
        JsonBodyRefusals,
    )
)]
pub async fn update_access_token(
    State(state): State<AppState>,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let token = body.string("acessToken")?;
    let claims = state.auth.check_access_signature(token)?;
    if !state.auth.session_active(&claims.session_id()).await? {
        return Err(AuthError::InvalidAccess.into());
    }
    let mut response_headers = HeaderMap::new();
    let remaining = claims.remaining();
    cookies::set(
        &mut response_headers,
        ACCESS_COOKIE,
        token,
        remaining,
        state.settings.secure_cookies(),
    );
    Ok((response_headers, Json(Outcome::ok("Access token updated"))))
}

/// The body of a route that can take its token from the cookie instead: a body that is not valid
/// JSON reads as none (the cookie may still do), but one of another media type or over the limit
/// refuses the request before anything is done, so a cross-site form cannot ride on the cookie.
fn optional_body(body: Result<JsonObject, ApiError>) -> Result<Option<JsonObject>, ApiError> {
    match body {
        Ok(body) => Ok(Some(body)),
        Err(refused @ (ApiError::UnsupportedMediaType | ApiError::TooLarge)) => Err(refused),
        Err(ignored) => {
            tracing::debug!(reason = ?ignored, "unreadable body ignored; the cookie may still do");
            Ok(None)
        }
    }
}

fn refresh_token_from(headers: &HeaderMap, body: Option<&JsonObject>) -> Option<String> {
    let from_body = body
        .and_then(|b| b.optional_string("refreshToken").ok().flatten())
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    from_body.or_else(|| cookies::read(headers, REFRESH_COOKIE))
}

/// Sets both cookies for a fresh token pair.
pub fn set_session_cookies(state: &AppState, headers: &mut HeaderMap, tokens: &TokenPair) {
    let secure = state.settings.secure_cookies();
    cookies::set(
        headers,
        ACCESS_COOKIE,
        &tokens.access,
        state.settings.access_token_ttl,
        secure,
    );
    cookies::set(
        headers,
        REFRESH_COOKIE,
        &tokens.refresh,
        state.settings.refresh_token_ttl,
        secure,
    );
}

/// The body of a successful verification or login.
pub fn tokens_body<'a>(
    tokens: &'a TokenPair,
    user_id: &'a UserId,
    name: Option<&'a UserName>,
) -> SignedIn<'a> {
    SignedIn {
        access_token: &tokens.access,
        message: "Signed in",
        refresh_token: &tokens.refresh,
        success: 1,
        user_id,
        user_name: name,
    }
}
