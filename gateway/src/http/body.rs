//! Request bodies: JSON objects read leniently (as Express's body parser does, whatever the
//! Content-Type), with typed refusals for bodies that are too large, not JSON or not objects.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A JSON object body (an empty body reads as `{}`).
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest("unreadable request body".into())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            )),
            Err(_) => Err(ApiError::BadRequest("the body is not valid JSON".into())),
        }
    }
}

impl JsonObject {
    /// A required string field.
    pub fn string(&self, field: &'static str) -> Result<&str, ApiError> {
        match self.0.get(field) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::BadRequest(format!("{field} must be a string"))),
            None => Err(ApiError::BadRequest(format!("{field} is required"))),
        }
    }

    /// An optional string field (absent or null reads as `None`).
    pub fn optional_string(&self, field: &'static str) -> Result<Option<&str>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::BadRequest(format!("{field} must be a string"))),
        }
    }
}
