//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use infra::health::Checks;
use serde_json::Value;

use crate::state::AppState;
use crate::wire::Outcome;

pub async fn health() -> Json<Outcome<'static>> {
    Json(Outcome::ok("ok"))
}

/// 200 when every backend answers; 503 naming the ones that don't. The checks and the answer are
/// `infra::health`'s, as for every service.
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
pub async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.settings.telemetry.metrics_port.is_some() {
        return StatusCode::NOT_FOUND.into_response();
    }
    infra::telemetry::metrics_route().await
}
