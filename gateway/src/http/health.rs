//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use infra::health::Checks;
use serde_json::Value;
use utoipa::ToSchema;

use crate::state::AppState;
use crate::wire::Outcome;

/// `GET /health`.
#[utoipa::path(
    get,
    path = "/health",
    summary = "Liveness",
    tag = "operations",
    responses(
        (status = 200, description = "The process runs (`success` 1)", body = Outcome),
    )
)]
pub async fn health() -> Json<Outcome<'static>> {
    Json(Outcome::ok("ok"))
}

/// The body of `GET /ready` (`infra::health`'s), for the API's description.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    /// 1 ready, -1 not.
    #[schema(minimum = -1, maximum = 1)]
    success: i32,
    message: String,
    /// What does not answer: `event store (…)`, `database`, `NATS`; absent when ready.
    #[schema(nullable = false)]
    down: Option<Vec<String>>,
    /// Conditions that leave the service ready but need attention (events parked by the
    /// projector); absent when there are none.
    #[schema(nullable = false)]
    degraded: Option<Vec<String>>,
}

/// 200 when every backend answers; 503 naming the ones that don't. The checks and the answer are
/// `infra::health`'s, as for every service.
#[utoipa::path(
    get,
    path = "/ready",
    summary = "Readiness",
    description = "Ready when the event store, the database and (in the topology) NATS answer.",
    tag = "operations",
    responses(
        (status = 200, description = "Ready (`success` 1), perhaps with `degraded` conditions", body = Readiness),
        (status = 503, description = "Not ready: `down` names what does not answer (`success` -1)",
            body = Readiness),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    checks(&state).ready().await
}

/// What this gateway needs: the event store, the database and, in the topology, NATS. All-in-one,
/// the projector is this process's: events it parked leave the gateway ready but degraded.
fn checks(state: &AppState) -> Checks {
    let checks = Checks::default()
        .with_event_store(
            format!("event store ({})", state.store.backend()),
            state.store.clone(),
        )
        .with_database(state.reads.clone());
    match &state.nats {
        Some(client) => checks.with_nats(client.clone()),
        None => {
            let reads = state.reads.clone();
            checks.with_degraded(move || {
                let reads = reads.clone();
                async move { projection_service::dead_letters::degraded(&reads).await }
            })
        }
    }
}

/// Prometheus metrics, on `PORT` unless `METRICS_PORT` gives them a port of their own (then 404
/// here, so that a proxy in front of `PORT` never exposes them).
#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics, in the Prometheus text format",
            content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are off (`METRICS=off`), or served on `METRICS_PORT` \
            instead"),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.settings.telemetry.metrics_port.is_some() {
        return StatusCode::NOT_FOUND.into_response();
    }
    infra::telemetry::metrics_route().await
}
