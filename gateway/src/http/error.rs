//! The one error type of the HTTP layer, mapped once to status codes and the protocol's bodies
//! (`success` 1 ok, 0 refused, -1 bad request or server error, -2 not verified).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::AuthError;
use crate::limits::RetryAfter;
use crate::wire::Outcome;

#[derive(Debug)]
pub enum ApiError {
    /// 400, success -1: a missing or invalid field.
    BadRequest(String),
    /// 413, success -1.
    TooLarge,
    /// 415, success -1: a body (or a declared type) other than `application/json`.
    UnsupportedMediaType,
    /// 429, success -1, with Retry-After in seconds.
    RateLimited { retry_after_secs: u64 },
    /// A refusal with its own status and `success` 0 (e.g. 401, 409, 400 for a wrong code).
    Refused { status: StatusCode, message: String },
    /// 403, success -2.
    NotVerified,
    /// 500, success -1; the detail is logged, not sent.
    Internal(String),
}

impl ApiError {
    pub fn refused(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::Refused {
            status,
            message: message.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidInput(what) => ApiError::BadRequest(what.to_string()),
            AuthError::AlreadyExists => {
                ApiError::refused(StatusCode::CONFLICT, "User Already Exists")
            }
            AuthError::InvalidCode => ApiError::refused(
                StatusCode::BAD_REQUEST,
                "Invalid or expired verification code",
            ),
            AuthError::InvalidCredentials => {
                ApiError::refused(StatusCode::UNAUTHORIZED, "Invalid email or password")
            }
            AuthError::NotVerified => ApiError::NotVerified,
            AuthError::InvalidRefresh | AuthError::RefreshReused { .. } => {
                ApiError::refused(StatusCode::UNAUTHORIZED, "Invalid refresh token")
            }
            AuthError::InvalidAccess => ApiError::BadRequest("invalid access token".into()),
            AuthError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<RetryAfter> for ApiError {
    fn from(wait: RetryAfter) -> Self {
        ApiError::RateLimited {
            retry_after_secs: wait.secs,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, success, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, -1, m),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                -1,
                "request body larger than 16 KiB".to_owned(),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                -1,
                "the body must be JSON, sent as Content-Type: application/json".to_owned(),
            ),
            ApiError::RateLimited { retry_after_secs } => {
                let body = Outcome {
                    message: "too many requests, try again later",
                    success: -1,
                };
                let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
                tracing::debug!(retry_after_secs, "refused: rate limited");
                return response;
            }
            ApiError::Refused { status, message } => (status, 0, message),
            ApiError::NotVerified => (
                StatusCode::FORBIDDEN,
                -2,
                "Account not verified; check your e-mail".to_owned(),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    -1,
                    "internal error, try again".to_owned(),
                )
            }
        };
        if status != StatusCode::INTERNAL_SERVER_ERROR {
            tracing::debug!(%status, %message, "refused");
        }
        (
            status,
            Json(Outcome {
                message: &message,
                success,
            }),
        )
            .into_response()
    }
}
