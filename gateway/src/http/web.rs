//! The web client (gateway/web), built by `build.rs` and embedded in the binary: served at `/` for
//! every path no other route takes, unless `WEB_CLIENT=off`.
//!
//! Hashed assets (`/assets/name-<hash>.js`) are cached for a year as immutable; `index.html` (and
//! any other unhashed file) is revalidated on every load (`no-cache` with an `ETag`). Every text
//! file has its gzip and brotli forms made at build time; the one sent is chosen by
//! `Accept-Encoding`. Every answer carries a strict Content-Security-Policy: scripts, styles and
//! connections only from this origin, no inline script, no framing.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// One embedded file, with its precompressed forms where they are smaller.
pub struct Asset {
    /// The path it is served at, lowercase (the router lowercases request paths).
    pub path: &'static str,
    /// A quoted hash of the bytes.
    pub etag: &'static str,
    pub raw: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The fallback of the router: an embedded file for `GET`/`HEAD`, else what an unknown route
/// answers (404).
pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !state.settings.web_client || (method != Method::GET && method != Method::HEAD) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = match uri.path() {
        "/" => "/index.html",
        other => other,
    };
    let Some(asset) = find(path) else {
        tracing::debug!(path, "no such file of the web client");
        return StatusCode::NOT_FOUND.into_response();
    };
    respond(asset, &method, &headers)
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|asset| asset.path.cmp(path))
        .ok()
        .and_then(|i| ASSETS.get(i))
}

fn respond(asset: &'static Asset, method: &Method, request: &HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.path)),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.path.starts_with("/assets/") {
            IMMUTABLE
        } else {
            REVALIDATE
        }),
    );
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        content_security_policy(request.get(header::HOST)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.gzip.is_some() || asset.brotli.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if not_modified(request, asset.etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    let (bytes, encoding) = choose(asset, request);
    if let Some(encoding) = encoding {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if method != Method::HEAD {
        *response.body_mut() = Body::from(bytes);
    }
    response
}

/// Whether `If-None-Match` names this version.
fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// The smallest form the client accepts: brotli, then gzip, then the bytes as they are.
fn choose(asset: &'static Asset, request: &HeaderMap) -> (&'static [u8], Option<&'static str>) {
    let accepts = |coding: &str| {
        request
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| accepted(item, coding))
    };
    match (asset.brotli, asset.gzip) {
        (Some(br), _) if accepts("br") => (br, Some("br")),
        (_, Some(gz)) if accepts("gzip") => (gz, Some("gzip")),
        _ => (asset.raw, None),
    }
}

/// Whether one item of `Accept-Encoding` (`gzip`, `br;q=0.5`, `*`, `gzip;q=0`) accepts `coding`.
fn accepted(item: &str, coding: &str) -> bool {
    let mut parts = item.split(';');
    let name = parts.next().unwrap_or_default().trim();
    if !name.eq_ignore_ascii_case(coding) && name != "*" {
        return false;
    }
    for param in parts {
        if let Some((key, value)) = param.split_once('=') {
            if key.trim().eq_ignore_ascii_case("q") {
                return value.trim().parse::<f32>().is_ok_and(|q| q > 0.0);
            }
        }
    }
    true
}

/// `default-src 'self'`, no inline script, connections only to this origin (its WebSocket form
/// named as well, for browsers that do not count it as `'self'`), images also from `data:` and
/// `blob:`, never framed.
fn content_security_policy(host: Option<&HeaderValue>) -> HeaderValue {
    const BASE: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
        img-src 'self' data: blob:; font-src 'self'; media-src 'self' blob:; object-src 'none'; \
        base-uri 'none'; form-action 'self'; frame-ancestors 'none'; connect-src 'self'";
    let host = host
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_plain_host(h));
    let policy = match host {
        Some(host) => format!("{BASE} ws://{host} wss://{host}"),
        None => BASE.to_owned(),
    };
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static(BASE))
}

/// A `Host` header that is a host name or address with an optional port, and nothing that could
/// change the meaning of the policy it is written into.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_path_is_lowercase_sorted_and_the_page_is_there() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        assert!(ASSETS.iter().all(|a| a.path == a.path.to_ascii_lowercase()));
        assert!(find("/index.html").is_some());
    }

    #[test]
    fn accept_encoding_items_are_read_with_their_weights() {
        assert!(accepted("gzip", "gzip"));
        assert!(accepted(" GZIP ;q=0.5", "gzip"));
        assert!(!accepted("gzip;q=0", "gzip"));
        assert!(!accepted("deflate", "gzip"));
        assert!(accepted("*", "br"));
        assert!(!accepted("*;q=0", "br"));
    }

    #[test]
    fn a_host_header_that_could_extend_the_policy_is_left_out() {
        let policy = |host: &'static str| {
            content_security_policy(Some(&HeaderValue::from_static(host)))
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert!(policy("127.0.0.1:3000").ends_with("ws://127.0.0.1:3000 wss://127.0.0.1:3000"));
        assert!(policy("[::1]:80").ends_with("wss://[::1]:80"));
        let hostile = policy("a.test; script-src *");
        assert!(hostile.ends_with("connect-src 'self'"), "{hostile}");
    }
}
