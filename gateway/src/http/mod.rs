//! The HTTP API of PROTOCOL.md §2.

pub mod body;
pub mod cookies;
pub mod error;
pub mod rate_limit;

mod accounts;
mod audit;
mod health;
mod sessions;

use axum::extract::DefaultBodyLimit;
use axum::http::{Request, Uri};
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The routes, with the body limit. Paths are lowercase here; [`lowercase_path`] makes matching
/// case-insensitive, as Express does.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(accounts::signup))
        .route("/verify", get(accounts::verify))
        .route("/resend", post(accounts::resend))
        .route("/login", post(sessions::login))
        .route("/logout", post(sessions::logout))
        .route("/refresh", post(sessions::refresh))
        .route("/update-access-token", post(sessions::update_access_token))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/audit/chats/{chat_id}/events", get(audit::chat_events))
        .route("/audit/users/{user_id}/events", get(audit::user_events))
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
}

/// Lowercases the path (not the query) before routing.
pub fn lowercase_path<B>(mut req: Request<B>) -> Request<B> {
    let uri = req.uri();
    if uri.path().bytes().any(|b| b.is_ascii_uppercase()) {
        let lowered = match uri.query() {
            Some(q) => format!("{}?{}", uri.path().to_ascii_lowercase(), q),
            None => uri.path().to_ascii_lowercase(),
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(pq) = lowered.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(new_uri) = Uri::from_parts(parts) {
                *req.uri_mut() = new_uri;
            }
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_path_is_lowercased() {
        let req = Request::builder()
            .uri("/Verify?email=A@B.c&token=1")
            .body(())
            .unwrap();
        assert_eq!(
            lowercase_path(req).uri().to_string(),
            "/verify?email=A@B.c&token=1"
        );
    }
}
