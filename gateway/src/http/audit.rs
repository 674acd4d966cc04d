//! The audit routes: a chat's whole history and a user's every action, from the event store.
//! They exist only when `AUDIT_TOKEN` is set (otherwise 404, like any unknown path) and answer only
//! `Authorization: Bearer <AUDIT_TOKEN>` (otherwise 401); a user's access token is not one.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use events_schema::{streams, ChatId, UserId};
use infra::AuditSubject;
use projection_service::audit::{AuditPage, AuditParams};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, PartialSchema, ToSchema};

use crate::state::AppState;
use crate::wire::Outcome;

/// The query string, as text: `projection_service::audit` judges it (and describes it here).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQueryString {
    /// Only events after this log position (the previous page's `next`); 0 by default.
    #[param(value_type = Option<u64>, minimum = 0)]
    after: Option<String>,
    /// Events per page, 1–1000; 100 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only events before this time (RFC 3339); after `since`.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// Only events of this type (an event type name: letters and digits).
    #[param(pattern = "^[A-Za-z0-9]{1,64}$")]
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// A page of the audit (`projection_service::audit::AuditPage`), for the API's description.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditEventPage {
    /// In log order.
    events: Vec<AuditEvent>,
    /// The `after` of the next page; null when this one is the last.
    #[schema(required = true)]
    next: Option<u64>,
}

/// One event as an auditor sees it (`projection_service::audit::AuditEvent`).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct AuditEvent {
    /// Its position in the whole log.
    position: u64,
    /// Its stream (`chat-…`, `user-…`).
    stream: String,
    /// Its version in the stream.
    version: u64,
    /// The event type.
    #[schema(rename = "type")]
    event_type: String,
    /// RFC 3339, milliseconds, UTC.
    #[schema(format = DateTime)]
    occurred_at: String,
    /// The user who acted, when one did.
    #[schema(required = true)]
    actor: Option<String>,
    correlation_id: String,
    /// The event's data in the current schema of its type.
    data: Value,
}

/// What an audit route answers when it does not serve the request.
pub struct AuditRefusals;

impl IntoResponses for AuditRefusals {
    fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let outcome = |description: &str| {
            ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Outcome")))
                    .build(),
            )
        };
        let unauthorized = outcome("The request does not bear `AUDIT_TOKEN` (`success` -1)")
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(String::schema())
                    .description(Some("`Bearer`"))
                    .build(),
            );
        [
            (
                "400",
                outcome(
                    "A bad id or parameter (`success` -1); judged only for a bearer of the token",
                ),
            ),
            ("401", unauthorized),
            (
                "404",
                ResponseBuilder::new()
                    .description("`AUDIT_TOKEN` is not set: the route does not exist"),
            ),
            (
                "500",
                outcome("The event store could not be read (`success` -1)"),
            ),
        ]
        .into_iter()
        .map(|(status, response)| (status.to_owned(), response.build().into()))
        .collect()
    }
}

/// The path and query as extracted, read only once the caller is known to bear the audit token:
/// an unauthenticated caller learns nothing from how its parameters are judged.
type PathParam = Result<Path<String>, PathRejection>;
type QueryParams = Result<Query<AuditQueryString>, QueryRejection>;

/// `GET /audit/chats/{chat_id}/events`.
#[utoipa::path(
    get,
    path = "/audit/chats/{chat_id}/events",
    summary = "A chat's whole history",
    description = "Every event of the chat's stream, in log order, a page at a time.",
    tag = "audit",
    params(("chat_id" = String, Path, description = "The chat's id"), AuditQueryString),
    security(("audit_token" = [])),
    responses(
        (status = 200, description = "A page of events", body = AuditEventPage),
        AuditRefusals,
    )
)]
pub async fn chat_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathParam,
    query: QueryParams,
) -> Response {
    let (chat_id, query) = match authorized_request(&state, &headers, path, query) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    match ChatId::parse(&chat_id) {
        Ok(chat) => page(&state, AuditSubject::Stream(streams::chat(&chat)), query).await,
        Err(_) => bad_request("not a chat id"),
    }
}

/// `GET /audit/users/{user_id}/events`.
#[utoipa::path(
    get,
    path = "/audit/users/{user_id}/events",
    summary = "Every event a user acted in",
    description = "Every event whose actor is the user, in log order, a page at a time.",
    tag = "audit",
    params(("user_id" = String, Path, description = "The user's id"), AuditQueryString),
    security(("audit_token" = [])),
    responses(
        (status = 200, description = "A page of events", body = AuditEventPage),
        AuditRefusals,
    )
)]
pub async fn user_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathParam,
    query: QueryParams,
) -> Response {
    let (user_id, query) = match authorized_request(&state, &headers, path, query) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    match UserId::parse(&user_id) {
        Ok(user) => page(&state, AuditSubject::Actor(user.to_string()), query).await,
        Err(_) => bad_request("not a user id"),
    }
}

/// The bearer token first (404 / 401), then the path and query (400).
fn authorized_request(
    state: &AppState,
    headers: &HeaderMap,
    path: PathParam,
    query: QueryParams,
) -> Result<(String, AuditQueryString), Refusal> {
    authorize(state, headers)?;
    let Ok(Path(id)) = path else {
        return Err(Refusal::BadRequest("malformed path".into()));
    };
    match query {
        Ok(Query(query)) => Ok((id, query)),
        Err(rejection) => Err(Refusal::BadRequest(rejection.body_text())),
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
    /// The token is right; the path or query is not.
    BadRequest(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoSuchRoute => StatusCode::NOT_FOUND.into_response(),
            Refusal::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(Outcome {
                    message: "audit token required",
                    success: -1,
                }),
            )
                .into_response(),
            Refusal::BadRequest(message) => bad_request(&message),
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
                Json(Outcome {
                    message: "the event store could not be read",
                    success: -1,
                }),
            )
                .into_response()
        }
    }
}

fn bad_request(message: &str) -> Response {
    tracing::debug!(%message, "audit request refused");
    (
        StatusCode::BAD_REQUEST,
        Json(Outcome {
            message,
            success: -1,
        }),
    )
        .into_response()
}
