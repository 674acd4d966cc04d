//! Request bodies: JSON objects declared `Content-Type: application/json`, with typed refusals for
//! bodies that are too large, of another media type, not JSON or not objects.
//!
//! The media type is what keeps a cross-site page out: a form or `fetch` can send `text/plain`,
//! `application/x-www-form-urlencoded` or `multipart/form-data` (with the victim's cookies) without
//! a CORS preflight, but not `application/json`. So a request declaring any other type is refused
//! (415) before its body is read or anything is done, even when the body is empty; a request with
//! no body and no `Content-Type` (a cookie-only `/logout` or `/refresh`) reads as `{}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::error::ApiError;

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A JSON object body (an empty body reads as `{}`).
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared = declared_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest("unreadable request body".into())
            }
        })?;
        if declared == Declared::Nothing && !is_blank(&bytes) {
            tracing::debug!(
                bytes = bytes.len(),
                "body refused: no Content-Type declared"
            );
            return Err(ApiError::UnsupportedMediaType);
        }
        Self::from_bytes(&bytes)
    }
}

/// What a request says its body is, once it is known not to be another media type.
#[derive(Debug, PartialEq, Eq)]
enum Declared {
    Json,
    /// No `Content-Type`: only an empty body is accepted.
    Nothing,
}

/// `Content-Type` must be `application/json` (case-insensitive, parameters such as `charset`
/// allowed), or absent; anything else, several of them, or an unreadable one is refused.
fn declared_type(headers: &HeaderMap) -> Result<Declared, ApiError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(Declared::Nothing),
        (Some(value), None) => value,
        (Some(_), Some(_)) => {
            tracing::debug!("body refused: several Content-Type headers");
            return Err(ApiError::UnsupportedMediaType);
        }
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(Declared::Json),
        _ => {
            tracing::debug!(content_type = ?value, "body refused: not application/json");
            Err(ApiError::UnsupportedMediaType)
        }
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

impl JsonObject {
    /// Decodes a body already read (apart from the request so it can be tested and fuzzed alone).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ApiError> {
        if is_blank(bytes) {
            return Ok(JsonObject(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            )),
            Err(_) => Err(ApiError::BadRequest("the body is not valid JSON".into())),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn read(content_types: &[&str], body: &'static str) -> Result<JsonObject, ApiError> {
        let mut request = Request::builder().method("POST").uri("/login");
        for content_type in content_types {
            request = request.header(header::CONTENT_TYPE, *content_type);
        }
        JsonObject::from_request(request.body(Body::from(body)).unwrap(), &()).await
    }

    #[tokio::test]
    async fn only_json_is_read_and_only_an_empty_body_may_omit_its_type() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;charset=UTF-8",
        ] {
            let body = read(&[json], r#"{"email":"a@b.io"}"#).await;
            assert_eq!(body.unwrap().string("email").unwrap(), "a@b.io", "{json}");
            assert!(read(&[json], "").await.unwrap().0.is_empty(), "{json}");
        }
        assert!(read(&[], "").await.unwrap().0.is_empty());
        assert!(read(&[], " \r\n").await.unwrap().0.is_empty());
        let refused = [
            (&["text/plain"][..], r#"{"email":"a@b.io"}"#),
            (&["text/plain;charset=UTF-8"], ""),
            (&["application/x-www-form-urlencoded"], "email=a%40b.io"),
            (&["multipart/form-data; boundary=x"], ""),
            (&["application/jsonp"], "{}"),
            (&["application/json-seq"], "{}"),
            (&["json"], "{}"),
            (&[""], "{}"),
            (&["application/json", "text/plain"], "{}"),
            (&[], r#"{"email":"a@b.io"}"#),
        ];
        for (content_types, body) in refused {
            assert!(
                matches!(
                    read(content_types, body).await,
                    Err(ApiError::UnsupportedMediaType)
                ),
                "{content_types:?} {body:?}"
            );
        }
        assert!(matches!(
            read(&["application/json"], "{").await,
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn bodies_are_objects_blank_or_refused() {
        assert!(JsonObject::from_bytes(b" \n").unwrap().0.is_empty());
        let body = JsonObject::from_bytes(br#"{"email":"a@b.io","n":1}"#).unwrap();
        assert_eq!(body.string("email").unwrap(), "a@b.io");
        assert!(body.string("n").is_err());
        assert!(body.string("missing").is_err());
        assert_eq!(body.optional_string("missing").unwrap(), None);
        for bad in [&b"[1]"[..], b"\"x\"", b"{", b"\xff"] {
            assert!(matches!(
                JsonObject::from_bytes(bad),
                Err(ApiError::BadRequest(_))
            ));
        }
    }
}
