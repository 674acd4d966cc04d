//! The HTTP API (docs/api.md, "HTTP").

pub mod body;
pub mod cookies;
pub mod error;
pub mod openapi;

mod account_manage;
mod accounts;
mod audit;
mod files;
mod health;
mod registration;
mod sessions;
mod web;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

/// The routes, with the body limit. Paths are lowercase here; [`lowercase_path`] makes matching
/// case-insensitive, as Express does. Each one is described in [`openapi::ApiDoc`] (a test checks).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(accounts::signup))
        .route(
            "/verify",
            get(accounts::verify).layer(map_response(no_store)),
        )
        .route("/resend", post(accounts::resend))
        .route(
            "/login",
            post(sessions::login).layer(map_response(no_store)),
        )
        .route(
            "/logout",
            post(sessions::logout).layer(map_response(no_store)),
        )
        .route(
            "/refresh",
            post(sessions::refresh).layer(map_response(no_store)),
        )
        .route(
            "/update-access-token",
            post(sessions::update_access_token).layer(map_response(no_store)),
        )
        .route("/password/forgot", post(account_manage::forgot_password))
        .route("/password/reset", post(account_manage::reset_password))
        .route(
            "/sessions",
            get(account_manage::list_sessions).layer(map_response(no_store)),
        )
        .route("/sessions/{id}", delete(account_manage::end_session))
        .route(
            "/files",
            post(files::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/files/{file_id}", get(files::download))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/audit/chats/{chat_id}/events", get(audit::chat_events))
        .route("/audit/users/{user_id}/events", get(audit::user_events))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(web::serve)
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(measured))
}

/// Counts each request by its route (the pattern, not the path, so ids do not multiply the
/// series) and status, with its time.
async fn measured(request: Request<axum::body::Body>, next: axum::middleware::Next) -> Response {
    use infra::telemetry::names;
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "http request",
        method = %request.method(),
        route = route.as_str(),
        status = tracing::field::Empty
    );
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.record("status", response.status().as_u16());
    let status = response.status().as_u16().to_string();
    metrics::histogram!(names::HTTP_REQUEST_SECONDS, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(names::HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    response
}

/// Marks a response of a route that returns or sets tokens (or clears them) as never to be kept by
/// a browser or proxy cache, whatever its status.
async fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Gives the request its own copy of the URI and the header values; of a Socket.IO request that may
/// open a session, only the headers read later.
///
/// hyper parses both as slices of the connection's read buffer (8 KiB, grown to 16 KiB), and
/// engine.io keeps a session's request parts for as long as the socket is connected, so without
/// this copy every connected socket would pin that whole buffer after the WebSocket upgrade: about
/// half of what an idle socket costs. The copy is a few hundred bytes, once per request, and for a
/// session's request (`GET /socket.io/…`) it leaves out every header nothing reads after routing
/// (`User-Agent`, `Accept-*`, `Sec-WebSocket-Extensions`, …), which the socket would otherwise
/// keep for its life: about 100 bytes each, besides the values.
pub fn own_head<B>(req: Request<B>) -> Request<B> {
    let (mut parts, body) = req.into_parts();
    // `Uri: TryFrom<String>` takes the string's own allocation.
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    let session = may_open_session(&parts.method, &parts.uri);
    let kept = |name: &HeaderName| !session || SESSION_HEADERS.contains(name);
    let mut headers = HeaderMap::with_capacity(parts.headers.keys().filter(|n| kept(n)).count());
    for (name, value) in parts.headers.iter().filter(|(n, _)| kept(n)) {
        // `from_bytes` copies; a value it would refuse (hyper accepted it) is kept as it was.
        let owned = match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(mut owned) => {
                owned.set_sensitive(value.is_sensitive());
                owned
            }
            Err(_) => value.clone(),
        };
        headers.append(name.clone(), owned);
    }
    parts.headers = headers;
    Request::from_parts(parts, body)
}

/// What is read of a session's request after routing: engine.io's `Sec-WebSocket-Key` (the
/// upgrade) and `Content-Type` (polling bodies); the handshake's `Cookie` and `Origin` (also the
/// CORS layer's), and `X-Forwarded-For` (the client's address behind a trusted proxy, for the
/// per-address socket limit).
const SESSION_HEADERS: [HeaderName; 5] = [
    header::SEC_WEBSOCKET_KEY,
    header::CONTENT_TYPE,
    header::COOKIE,
    header::ORIGIN,
    HeaderName::from_static("x-forwarded-for"),
];

/// A `GET` under `/socket.io` (matched as routing will: the path is lowercased after this): a
/// WebSocket or a polling open, whose parts engine.io keeps with the session. Preflights and polling
/// `POST`s are left whole.
fn may_open_session(method: &Method, uri: &Uri) -> bool {
    const PREFIX: &str = "/socket.io";
    method == Method::GET
        && uri
            .path()
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
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

    #[test]
    fn the_head_no_longer_points_into_the_connection_buffer() {
        // As hyper builds a request: the URI and the header values are slices of one read buffer.
        let buffer =
            axum::body::Bytes::from_static(b"/socket.io/?EIO=4&transport=websocketsecret-key");
        let within = |p: *const u8| {
            let start = buffer.as_ptr() as usize;
            (start..start + buffer.len()).contains(&(p as usize))
        };
        let path_end = "/socket.io/?EIO=4&transport=websocket".len();
        let uri = Uri::from_maybe_shared(buffer.slice(..path_end)).unwrap();
        let mut key = HeaderValue::from_maybe_shared(buffer.slice(path_end..)).unwrap();
        key.set_sensitive(true);
        let req = Request::builder()
            .uri(uri)
            .header("sec-websocket-key", key)
            .body(())
            .unwrap();
        assert!(
            within(req.uri().path().as_ptr()),
            "the fixture shares the buffer"
        );

        let owned = own_head(req);

        assert_eq!(owned.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert!(!within(owned.uri().path().as_ptr()));
        assert!(!within(owned.uri().query().unwrap_or_default().as_ptr()));
        let key = &owned.headers()["sec-websocket-key"];
        assert_eq!(key, "secret-key");
        assert!(key.is_sensitive());
        assert!(!within(key.as_bytes().as_ptr()));
    }

    #[test]
    fn a_session_request_keeps_only_the_headers_read_later() {
        let request = |method: Method, uri: &str| {
            Request::builder()
                .method(method)
                .uri(uri)
                .header("sec-websocket-key", "k")
                .header("cookie", "a=1")
                .header("cookie", "b=2")
                .header("origin", "http://o.test")
                .header("user-agent", "ua")
                .header("x-custom", "a")
                .header("x-custom", "b")
                .body(())
                .unwrap()
        };
        let names = |req: &Request<()>| -> Vec<String> {
            req.headers()
                .iter()
                .map(|(name, _)| name.to_string())
                .collect()
        };

        let session = own_head(request(
            Method::GET,
            "/Socket.IO/?EIO=4&transport=websocket",
        ));
        assert_eq!(
            names(&session),
            ["sec-websocket-key", "cookie", "cookie", "origin"]
        );
        let cookies: Vec<_> = session.headers().get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);

        for (method, uri) in [
            (Method::GET, "/verify?email=a@b.c"),
            (Method::POST, "/socket.io/?EIO=4&transport=polling&sid=s"),
            (Method::OPTIONS, "/socket.io/?EIO=4&transport=polling"),
        ] {
            let whole = own_head(request(method.clone(), uri));
            assert_eq!(names(&whole).len(), 7, "{method} {uri} keeps every header");
            let custom: Vec<_> = whole.headers().get_all("x-custom").iter().collect();
            assert_eq!(custom, ["a", "b"]);
        }
    }
}
