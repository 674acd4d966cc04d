//! The web client as the real server serves it: the page and its hashed assets with their cache,
//! security and encoding headers, every API route still answering as before, and `WEB_CLIENT=off`.

mod support;

use reqwest::header::HeaderMap;
use support::{spawn, TestApp};

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let mut request = app.http.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The script and style sheet the page loads.
fn assets_of(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_a_strict_policy_and_revalidated() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;

    let (status, headers, body) = get(&app, "/", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    let csp = header(&headers, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "img-src 'self' data: blob:",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let connect = csp.split("connect-src").nth(1).unwrap_or_default();
    assert_eq!(
        connect.trim(),
        format!("'self' ws://{0} wss://{0}", app.addr),
        "connections only to this origin"
    );

    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains("<div id=\"app\">"),
        "the built client, not the page saying it was built without Node: {page}"
    );
    assert!(!page.contains("<script>"), "no inline script: {page}");
    let assets = assets_of(&page);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{page}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{page}");

    // Revalidation: the same version is not sent again.
    let etag = header(&headers, "etag").to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    let (status, _, body) = get(&app, "/", &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, _) = get(&app, "/index.html", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_sent_in_the_encoding_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let (_, _, page) = get(&app, "/", &[]).await;
    let page = String::from_utf8(page).unwrap();
    let script = assets_of(&page)
        .into_iter()
        .find(|a| a.ends_with(".js"))
        .expect("a script");

    let (status, headers, raw) = get(&app, &script, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        header(&headers, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(header(&headers, "vary"), "accept-encoding");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");

    let (_, headers, gzip) = get(&app, &script, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(gzip.get(..2), Some(&[0x1f, 0x8b][..]), "gzip magic");
    assert!(gzip.len() < raw.len() / 2);

    let (_, headers, brotli) =
        get(&app, &script, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(header(&headers, "content-encoding"), "br");
    assert!(brotli.len() < gzip.len());

    let (_, headers, body) = get(&app, &script, &[("accept-encoding", "br;q=0, gzip;q=0")]).await;
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(body, raw);

    let head = app.http.head(app.url(&script)).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(
        header(head.headers(), "content-length"),
        raw.len().to_string(),
        "HEAD: the headers of GET"
    );
    assert!(head.bytes().await.unwrap().is_empty());

    // Paths are matched case-insensitively, as every route is.
    let (status, _, _) = get(&app, &script.to_ascii_uppercase(), &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = get(&app, "/assets/missing-0000.js", &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_api_routes_keep_their_answers() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;

    let (status, headers, body) = get(&app, "/ready", &[]).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("application/json"));
    assert!(String::from_utf8(body).unwrap().contains("success"));

    let (status, headers, _) = get(&app, "/verify?email=a@b.test&token=000000", &[]).await;
    assert_eq!(status, 400, "the verification route, not the page");
    assert!(header(&headers, "content-security-policy").is_empty());

    let (status, _, body) = get(&app, "/socket.io/?EIO=4&transport=polling", &[]).await;
    assert_eq!(status, 200, "the engine.io handshake");
    assert!(String::from_utf8(body).unwrap().contains("\"sid\""));

    let (status, _, _) = get(&app, "/signup", &[]).await;
    assert_eq!(status, 405, "a known route with the wrong method");
    let (status, _, _) = get(&app, "/audit/chats/x/events", &[]).await;
    assert_eq!(status, 404, "the audit routes without AUDIT_TOKEN");

    let response = app.http.post(app.url("/")).send().await.unwrap();
    assert_eq!(
        response.status().as_u16(),
        404,
        "only GET and HEAD are files"
    );
    let (status, _, _) = get(&app, "/no-such-page", &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn web_client_off_serves_only_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[("WEB_CLIENT", "off")]).await;
    let (status, headers, _) = get(&app, "/", &[]).await;
    assert_eq!(status, 404);
    assert!(header(&headers, "content-security-policy").is_empty());
    let (status, _, _) = get(&app, "/index.html", &[]).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&app, "/ready", &[]).await;
    assert_eq!(status, 200);
}
