//! `POST /files` and `GET /files/{FileId}` (docs/api.md, "Files").

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use events_schema::UserId;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cookies::{self, ACCESS_COOKIE};
use super::openapi::Binary;
use crate::files::{self, checked_content_type, FileRecord, PutError};
use crate::state::AppState;
use crate::wire::Outcome;

/// A refusal of a file route: its status and a short reason, logged at debug.
fn refuse(status: StatusCode, message: &'static str) -> Response {
    tracing::debug!(
        status = status.as_u16(),
        reason = message,
        "file request refused"
    );
    #[derive(Serialize)]
    struct Refusal {
        success: i32,
        message: &'static str,
    }
    let success = if status.is_server_error() { -1 } else { 0 };
    (status, Json(Refusal { success, message })).into_response()
}

/// The caller, from `Authorization: Bearer` or the `access_token` cookie: a valid token of an open
/// session; else the refusal (401).
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<UserId, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let Some(token) = bearer.or_else(|| cookies::read(headers, ACCESS_COOKIE)) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "an access token is needed",
        ));
    };
    let unauthorized = || refuse(StatusCode::UNAUTHORIZED, "invalid access token");
    let claims = state
        .auth
        .check_access_signature(&token)
        .map_err(|_| unauthorized())?;
    match state.auth.session_active(&claims.session_id()).await {
        Ok(true) => {}
        Ok(false) => return Err(unauthorized()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a session");
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "try again"));
        }
    }
    UserId::parse(&claims.sub).map_err(|_| unauthorized())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A display name: at most 255 characters, no control characters.
    name: Option<String>,
}

/// `201` to `POST /files`.
#[derive(Serialize, ToSchema)]
struct Uploaded<'a> {
    /// 1.
    success: i32,
    /// What `GET /files/{file_id}` and a message's attachment take.
    #[serde(rename = "FileId")]
    file_id: &'a str,
    /// In bytes.
    #[serde(rename = "Size")]
    size: u64,
    /// The declared type without parameters; an image type only when the bytes start with that
    /// format's signature, else `application/octet-stream`.
    #[serde(rename = "ContentType")]
    content_type: &'a str,
    /// The SHA-256 of the bytes, lowercase hex.
    #[serde(rename = "Sha256")]
    sha256: &'a str,
}

/// Longest display name kept, in characters.
const MAX_NAME_CHARS: usize = 255;

/// `POST /files?name=…`: the raw body, streamed to the file store.
#[utoipa::path(
    post,
    path = "/files",
    summary = "Upload a file",
    description = "The raw file is the body, with its `Content-Type` (any type); it is streamed to \
        the file store, never held whole, and the 16 KiB JSON limit does not apply. An upload not \
        sent in a message within 24 h is removed.",
    tag = "files",
    params(UploadQuery),
    request_body(content = Binary, content_type = "application/octet-stream",
        description = "The file's bytes, sent with its own `Content-Type`"),
    security(("access_token" = []), ("access_cookie" = [])),
    responses(
        (status = 201, description = "Stored", body = Uploaded),
        (status = 400, description = "A bad `name`, or a body that could not be read (`success` 0)",
            body = Outcome),
        (status = 401, description = "No valid access token of an open session (`success` 0)", body = Outcome),
        (status = 413, description = "Larger than `FILE_MAX_BYTES`; nothing is kept (`success` 0)",
            body = Outcome),
        (status = 503, description = "The file store or the database does not answer; nothing is \
            kept (`success` -1)", body = Outcome),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let user = match caller(&state, &headers).await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let Ok(Query(query)) = query else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable query");
    };
    let name = match query
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
    {
        Some(n) if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "name: at most 255 characters, no control characters",
            )
        }
        other => other,
    };
    let max = state.settings.file_max_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > max) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file larger than FILE_MAX_BYTES",
        );
    }
    let declared_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let file_id = uuid::Uuid::now_v7().simple().to_string();
    let stream = body.into_data_stream().boxed();
    let written = match state.files.put_stream(&file_id, stream, max).await {
        Ok(written) => written,
        Err(PutError::TooLarge) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file larger than FILE_MAX_BYTES",
            )
        }
        Err(PutError::Body(e)) => {
            tracing::debug!(error = %e, "upload body failed");
            return refuse(StatusCode::BAD_REQUEST, "the body could not be read");
        }
        Err(PutError::Store(e)) => {
            tracing::error!(error = %e, "file store refused an upload");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "file store unavailable");
        }
    };
    let record = FileRecord {
        file_id: file_id.clone(),
        uploader: user.as_str().to_owned(),
        size: written.size,
        content_type: checked_content_type(declared_type.as_deref(), &written.head),
        sha256: written.sha256,
        name,
    };
    if let Err(e) = files::insert(&state.reads, &record).await {
        tracing::error!(error = %e, "cannot record an upload");
        let _ = state.files.delete(&file_id).await;
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again");
    }
    let body = Uploaded {
        success: 1,
        file_id: &record.file_id,
        size: record.size,
        content_type: &record.content_type,
        sha256: &record.sha256,
    };
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `GET /files/{FileId}`: to its uploader and the current members of a chat where it was sent.
#[utoipa::path(
    get,
    path = "/files/{file_id}",
    summary = "Download a file",
    description = "To its uploader and to the current members of a chat where it was sent in a \
        message not deleted since; the cookie is enough, so an `<img>` loads it. `If-None-Match` \
        with the ETag answers `304`; one `Range: bytes=a-b`, `a-` or `-n` answers `206`; several \
        ranges or another unit, the whole file.",
    tag = "files",
    params(
        ("file_id" = String, Path, description = "The `FileId` of the upload"),
        ("Range" = Option<String>, Header, nullable = false, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "The ETag of a copy the client holds"),
    ),
    security(("access_token" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The bytes, streamed, with the file's `Content-Type`",
            headers(
                ("Content-Length" = u64, description = "The file's size"),
                ("ETag" = String, description = "The quoted SHA-256 of the bytes"),
                ("Accept-Ranges" = String, description = "`bytes`"),
                ("Content-Disposition" = String, description = "`inline` for PNG, JPEG, GIF and WebP \
                    images, `attachment` otherwise; the name as ASCII and as RFC 8187 `filename*`"),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
            ),
            content_type = "*/*", body = Binary),
        (status = 206, description = "The range asked for",
            headers(
                ("Content-Range" = String, description = "`bytes a-b/size`"),
                ("Content-Length" = u64, description = "The range's length"),
            ),
            content_type = "*/*", body = Binary),
        (status = 304, description = "Not modified: `If-None-Match` names this file's ETag"),
        (status = 401, description = "No valid access token of an open session (`success` 0)", body = Outcome),
        (status = 404, description = "No such file, or not one the caller may read (`success` 0)",
            body = Outcome),
        (status = 416, description = "The range starts past the end",
            headers(("Content-Range" = String, description = "`bytes */size`"))),
        (status = 503, description = "The file store or the database does not answer (`success` -1)",
            body = Outcome),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let user = match caller(&state, &headers).await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let not_found = || refuse(StatusCode::NOT_FOUND, "no such file");
    // A segment that is not UTF-8 once decoded (`%FF`) names no file either.
    let Ok(Path(file_id)) = path else {
        return not_found();
    };
    if file_id.is_empty()
        || file_id.len() > 64
        || !file_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return not_found();
    }
    state
        .consistency
        .caught_up_to_head(state.store.as_ref())
        .await;
    let file = match files::readable(&state.reads, &file_id, &user).await {
        Ok(Some(file)) => file,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a file's record");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again");
        }
    };
    let etag = format!("\"{}\"", file.sha256);
    let mut out = HeaderMap::new();
    let set = |out: &mut HeaderMap, name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set(&mut out, header::ETAG, &etag);
    set(&mut out, header::ACCEPT_RANGES, "bytes");
    set(&mut out, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        &mut out,
        header::CACHE_CONTROL,
        "private, max-age=0, must-revalidate",
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    set(&mut out, header::CONTENT_TYPE, &file.content_type);
    set(&mut out, header::CONTENT_DISPOSITION, &disposition(&file));
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(raw) => match parse_range(raw, file.size) {
            RangeAsked::Whole => None,
            RangeAsked::Part(range) => Some(range),
            RangeAsked::Unsatisfiable => {
                set(
                    &mut out,
                    header::CONTENT_RANGE,
                    &format!("bytes */{}", file.size),
                );
                tracing::debug!(raw, size = file.size, "refused: unsatisfiable range");
                return (StatusCode::RANGE_NOT_SATISFIABLE, out).into_response();
            }
        },
    };
    let (status, length) = match &range {
        Some(r) => {
            set(
                &mut out,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{}", r.start, r.end - 1, file.size),
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, file.size),
    };
    set(&mut out, header::CONTENT_LENGTH, &length.to_string());
    let bytes = if length == 0 {
        Body::empty()
    } else {
        match state.files.get(&file.file_id, range).await {
            Ok(stream) => Body::from_stream(stream),
            Err(e) => {
                tracing::error!(error = %e, file_id, "file bytes missing from the store");
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "file store unavailable");
            }
        }
    };
    (status, out, bytes).into_response()
}

/// `inline` for the image types the upload checked, `attachment` for everything else, with the
/// name as plain ASCII (quotes and backslashes replaced) and as RFC 5987 UTF-8.
fn disposition(file: &FileRecord) -> String {
    let kind = if matches!(
        file.content_type.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    ) {
        "inline"
    } else {
        "attachment"
    };
    let Some(name) = &file.name else {
        return kind.to_owned();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, ATTR_CHAR).to_string();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// What RFC 8187 leaves unencoded in a `filename*` value (its `attr-char`).
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[derive(Debug, PartialEq, Eq)]
enum RangeAsked {
    /// No usable range (a form not understood, or several ranges): the whole file, as RFC 9110
    /// allows.
    Whole,
    Part(files::ByteRange),
    Unsatisfiable,
}

/// One `bytes=` range of a file of `size` bytes.
fn parse_range(raw: &str, size: u64) -> RangeAsked {
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return RangeAsked::Whole;
    };
    if spec.contains(',') {
        return RangeAsked::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsked::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.is_empty(), last.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match last.parse::<u64>() {
            Ok(0) => return RangeAsked::Unsatisfiable,
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return RangeAsked::Whole,
        },
        (false, _) => {
            let Ok(start) = first.parse::<u64>() else {
                return RangeAsked::Whole;
            };
            let end = if last.is_empty() {
                size
            } else {
                match last.parse::<u64>() {
                    Ok(l) if l >= start => l.saturating_add(1).min(size),
                    _ => return RangeAsked::Whole,
                }
            };
            start..end
        }
        (true, true) => return RangeAsked::Whole,
    };
    if range.start >= size || range.is_empty() {
        RangeAsked::Unsatisfiable
    } else {
        RangeAsked::Part(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeAsked::Part(0..10));
        assert_eq!(parse_range("bytes=90-", 100), RangeAsked::Part(90..100));
        assert_eq!(parse_range("bytes=-5", 100), RangeAsked::Part(95..100));
        assert_eq!(parse_range("bytes=50-500", 100), RangeAsked::Part(50..100));
        assert_eq!(parse_range("bytes=100-", 100), RangeAsked::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeAsked::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAsked::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeAsked::Whole);
        assert_eq!(parse_range("bytes=9-3", 100), RangeAsked::Whole);
    }

    #[test]
    fn names_are_encoded() {
        let file = FileRecord {
            file_id: "f".into(),
            uploader: "u".into(),
            size: 1,
            content_type: "text/plain".into(),
            sha256: String::new(),
            name: Some("a \"b\"\r\né.txt".into()),
        };
        assert_eq!(
            disposition(&file),
            "attachment; filename=\"a _b____.txt\"; filename*=UTF-8''a%20%22b%22%0D%0A%C3%A9.txt"
        );
    }
}
