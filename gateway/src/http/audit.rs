//! The audit routes: a chat's whole history and a user's every action, from the event store.
//! They exist only when `AUDIT_TOKEN` is set (otherwise 404, like any unknown path) and answer only
//! `Authorization: Bearer <AUDIT_TOKEN>` (otherwise 401); a user's access token is not one.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use events_schema::{streams, ChatId, UserId};
use infra::audit::{AuditPage, AuditParams};
use infra::AuditSubject;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQueryString {
    after: Option<String>,
    limit: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

pub async fn chat_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(chat_id): Path<String>,
    Query(query): Query<AuditQueryString>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        return refused.into_response();
    }
    match ChatId::parse(&chat_id) {
        Ok(chat) => page(&state, AuditSubject::Stream(streams::chat(&chat)), query).await,
        Err(_) => bad_request("not a chat id"),
    }
}

pub async fn user_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    Query(query): Query<AuditQueryString>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        return refused.into_response();
    }
    match UserId::parse(&user_id) {
        Ok(user) => page(&state, AuditSubject::Actor(user.to_string()), query).await,
        Err(_) => bad_request("not a user id"),
    }
}

/// 404 without `AUDIT_TOKEN`; 401 unless the request bears it. The tokens are compared as SHA-256
/// digests in constant time, so neither their content nor their length shows in the timing.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(expected) = &state.settings.audit_token else {
        return Err(Refusal::NoSuchRoute);
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let matches = presented.is_some_and(|token| {
        let a = Sha256::digest(token.as_bytes());
        let b = Sha256::digest(expected.as_bytes());
        bool::from(a.ct_eq(&b))
    });
    if matches {
        Ok(())
    } else {
        tracing::debug!(
            present = presented.is_some(),
            "audit request refused: not the audit token"
        );
        Err(Refusal::Unauthorized)
    }
}

/// Why an audit request is not served.
enum Refusal {
    /// `AUDIT_TOKEN` is unset: the route does not exist.
    NoSuchRoute,
    /// The request does not bear the audit token.
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoSuchRoute => StatusCode::NOT_FOUND.into_response(),
            Refusal::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"success": -1, "message": "audit token required"})),
            )
                .into_response(),
        }
    }
}

async fn page(state: &AppState, subject: AuditSubject, query: AuditQueryString) -> Response {
    let params = AuditParams {
        after: query.after,
        limit: query.limit,
        since: query.since,
        until: query.until,
        event_type: query.event_type,
    };
    let query = match params.query(subject) {
        Ok(q) => q,
        Err(e) => return bad_request(&e.to_string()),
    };
    match state.store.audit(&query).await {
        Ok(events) => Json(AuditPage::new(&events, query.limit)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "audit read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"success": -1, "message": "the event store could not be read"})),
            )
                .into_response()
        }
    }
}

fn bad_request(message: &str) -> Response {
    tracing::debug!(%message, "audit request refused");
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"success": -1, "message": message})),
    )
        .into_response()
}
