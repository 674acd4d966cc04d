//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({"success": 1, "message": "ok"}))
}

/// 200 when every backend answers; 503 naming the ones that don't (the services' shape too,
/// `infra::health`).
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut down = Vec::new();
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "event store does not answer");
        down.push(format!("event store ({})", state.store.backend()));
    }
    if let Err(e) = state.reads.ping().await {
        tracing::warn!(error = %e, "database does not answer");
        down.push("database".to_owned());
    }
    if let Some(cluster) = &state.cluster {
        if !cluster.connected() {
            tracing::warn!("NATS is not connected");
            down.push("NATS".to_owned());
        }
    }
    infra::health::readiness(&down)
}
