//! The HTTP API's defences against the real server: bodies only as JSON, responses with tokens kept
//! out of caches, a spent refresh token ending its session wherever it shows up, verification
//! tries counted under concurrency, a sign-up that failed half-way completed by the next attempt,
//! and the audit routes authenticating before they parse.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::{set_cookies, spawn, TestApp};

/// A raw request: `content_type` (if any) and `body` exactly as given, plus a cookie.
async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: &'static str,
    cookie: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = app.http.post(app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

fn assert_unsupported(answer: &(u16, Value, reqwest::header::HeaderMap), what: &str) {
    let (status, body, headers) = answer;
    assert_eq!(
        (*status, body["success"].clone()),
        (415, json!(-1)),
        "{what}: {body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("application/json"));
    assert!(set_cookies(headers).is_empty(), "{what} set a cookie");
}

#[tokio::test]
async fn only_json_bodies_are_acted_on() {
    let dir = tempfile::tempdir().unwrap();
    // A tight budget: refusals by media type must not spend it.
    let app = spawn(dir.path(), &[("AUTH_RATE_LIMIT", "2/min")]).await;
    let user = app
        .verified_user("Ada", "ada@example.com", "password1")
        .await;
    let credentials = r#"{"email":"ada@example.com","password":"password1"}"#;

    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let answer = post_raw(&app, "/login", content_type, credentials, None).await;
        assert_unsupported(&answer, &format!("login as {content_type:?}"));
        assert_eq!(answer.2["cache-control"], "no-store");
    }
    let (status, body, _) = post_raw(
        &app,
        "/login",
        Some("Application/JSON; charset=utf-8"),
        credentials,
        None,
    )
    .await;
    assert_eq!(status, 200, "refused logins spent no budget: {body}");

    let signup = r#"{"name":"Bo","email":"bo@example.com","password":"password1"}"#;
    assert_unsupported(
        &post_raw(&app, "/signup", Some("text/plain"), signup, None).await,
        "signup",
    );
    assert!(!mailed(dir.path(), "bo@example.com"), "no account was made");
    let resend = r#"{"email":"ada@example.com"}"#;
    assert_unsupported(
        &post_raw(&app, "/resend", Some("text/plain"), resend, None).await,
        "resend",
    );
    let update = r#"{"acessToken":"x"}"#;
    assert_unsupported(
        &post_raw(
            &app,
            "/update-access-token",
            Some("text/plain"),
            update,
            None,
        )
        .await,
        "update-access-token",
    );

    // The cookie-only routes: a form or text/plain request, with or without a body, does nothing.
    let refresh = user["refreshToken"].as_str().unwrap();
    let cookie = format!("refresh_token={refresh}");
    for (content_type, body) in [
        ("text/plain", "{}"),
        ("text/plain", ""),
        ("application/x-www-form-urlencoded", "a=1"),
    ] {
        for path in ["/logout", "/refresh"] {
            let answer = post_raw(&app, path, Some(content_type), body, Some(&cookie)).await;
            assert_unsupported(&answer, &format!("{path} as {content_type} {body:?}"));
        }
    }
    // The refresh token was neither spent nor revoked; a cookie-only request still works.
    let (status, rotated, headers) = post_raw(&app, "/refresh", None, "", Some(&cookie)).await;
    assert_eq!(status, 200, "{rotated}");
    assert!(set_cookies(&headers)
        .iter()
        .any(|c| c.starts_with("refresh_token=")));
    let cookie = format!(
        "refresh_token={}",
        rotated["refreshToken"].as_str().unwrap()
    );
    let (status, _, headers) = post_raw(&app, "/logout", None, "", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(set_cookies(&headers)
        .iter()
        .any(|c| c.starts_with("refresh_token=;")));
    let (status, _, _) = post_raw(&app, "/refresh", None, "", Some(&cookie)).await;
    assert_eq!(status, 401, "the cookie-only logout ended the session");
    app.stop().await;
}

/// Whether any verification mail went to `email`.
fn mailed(data_dir: &Path, email: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(data_dir.join("outbox")) else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|text| text.contains(email))
}

#[tokio::test]
async fn responses_with_tokens_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let no_store = |headers: &reqwest::header::HeaderMap, what: &str| {
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        assert_eq!(headers["pragma"], "no-cache", "{what}");
    };

    let signup = json!({"name": "Cy", "email": "cy@example.com", "password": "password1"});
    assert_eq!(app.post("/signup", signup).await.0, 200);
    let code = app.code_for("cy@example.com");
    let response = app
        .http
        .get(app.url(&format!("/verify?email=cy%40example.com&token={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    no_store(response.headers(), "verify, the page");

    let signup = json!({"name": "Di", "email": "di@example.com", "password": "password1"});
    assert_eq!(app.post("/signup", signup).await.0, 200);
    let code = app.code_for("di@example.com");
    let (status, _, headers) = app
        .get(&format!(
            "/verify?email=di%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(status, 200);
    no_store(&headers, "verify, JSON");

    let (status, login, headers) = app
        .post(
            "/login",
            json!({"email": "di@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!(status, 200);
    no_store(&headers, "login");
    let (status, rotated, headers) = app
        .post("/refresh", json!({"refreshToken": login["refreshToken"]}))
        .await;
    assert_eq!(status, 200);
    no_store(&headers, "refresh");
    let (status, _, headers) = app
        .post(
            "/update-access-token",
            json!({"acessToken": rotated["accessToken"]}),
        )
        .await;
    assert_eq!(status, 200);
    no_store(&headers, "update-access-token");
    let (status, _, headers) = app
        .post("/logout", json!({"refreshToken": rotated["refreshToken"]}))
        .await;
    assert_eq!(status, 200);
    no_store(&headers, "logout");
    app.stop().await;
}

/// Just enough of an engine.io v4 / socket.io v5 long-polling client to see a handshake's verdict
/// and what a connected socket is sent.
struct PollingSocket<'a> {
    app: &'a TestApp,
    sid: String,
}

impl<'a> PollingSocket<'a> {
    /// Opens a session and sends the socket.io CONNECT with `auth`.
    async fn connect(app: &'a TestApp, auth: Value) -> PollingSocket<'a> {
        let open = app
            .http
            .get(app.url("/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let handshake: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
        let socket = PollingSocket {
            app,
            sid: handshake["sid"].as_str().unwrap().to_owned(),
        };
        socket.send(&format!("40{auth}")).await;
        socket
    }

    fn url(&self) -> String {
        self.app.url(&format!(
            "/socket.io/?EIO=4&transport=polling&sid={}",
            self.sid
        ))
    }

    async fn send(&self, packet: &str) {
        let response = self
            .app
            .http
            .post(self.url())
            .header("content-type", "text/plain;charset=UTF-8")
            .body(packet.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// The packets received until the socket is disconnected, or until `until` matches one.
    async fn read_until(&self, until: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let Ok(response) = self.app.http.get(self.url()).send().await else {
                break;
            };
            if response.status() != 200 {
                break; // the engine.io session is gone
            }
            let body = response.text().await.unwrap();
            for packet in body.split('\u{1e}') {
                if packet == "2" {
                    self.send("3").await;
                    continue;
                }
                seen.push(packet.to_owned());
                if packet == "41" || packet == "1" || until(packet) {
                    return seen;
                }
            }
        }
        seen
    }
}

fn auth_failure(packets: &[String]) -> Option<Value> {
    packets.iter().find_map(|p| {
        let event: Value = serde_json::from_str(p.strip_prefix("42")?).ok()?;
        (event[0] == "auth-failure").then(|| event[1].clone())
    })
}

#[tokio::test]
async fn a_spent_refresh_token_at_a_handshake_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[("ACCESS_TOKEN_TTL", "1s")]).await;
    let user = app
        .verified_user("Eve", "eve@example.com", "password1")
        .await;
    let (first_access, first_refresh) = (user["accessToken"].clone(), user["refreshToken"].clone());
    let (status, rotated, _) = app
        .post("/refresh", json!({"refreshToken": first_refresh}))
        .await;
    assert_eq!(status, 200);
    let second_refresh = rotated["refreshToken"].clone();

    // A socket of the session, connected with the current refresh token.
    let connected =
        PollingSocket::connect(&app, json!({"refreshToken": second_refresh.clone()})).await;
    let greeting = connected
        .read_until(|p| p.starts_with("42[\"user-id\""))
        .await;
    assert!(
        greeting.iter().any(|p| p.starts_with("42[\"user-id\"")),
        "{greeting:?}"
    );

    // The first access token expires; with the spent refresh token beside it, a handshake is the
    // theft signal.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let thief = PollingSocket::connect(
        &app,
        json!({"accessToken": first_access, "refreshToken": first_refresh}),
    )
    .await;
    let refused = thief.read_until(|_| false).await;
    assert!(auth_failure(&refused).is_some(), "{refused:?}");

    let ended = connected.read_until(|_| false).await;
    assert_eq!(
        auth_failure(&ended),
        Some(json!({"reason": "session revoked"})),
        "the session's socket is told and disconnected: {ended:?}"
    );
    assert!(ended.iter().any(|p| p == "41" || p == "1"), "{ended:?}");

    let (status, _, _) = app
        .post("/refresh", json!({"refreshToken": second_refresh.clone()}))
        .await;
    assert_eq!(
        status, 401,
        "the rotated refresh token died with the session"
    );
    let again = PollingSocket::connect(&app, json!({"refreshToken": second_refresh})).await;
    let refused = again.read_until(|_| false).await;
    assert!(auth_failure(&refused).is_some(), "{refused:?}");
    app.stop().await;
}

#[tokio::test]
async fn parallel_wrong_codes_void_the_code() {
    let dir = tempfile::tempdir().unwrap();
    // The default test budget (1000/min) keeps the rate limiter out of the way.
    let app = spawn(dir.path(), &[]).await;
    let signup = json!({"name": "Fay", "email": "fay@example.com", "password": "password1"});
    assert_eq!(app.post("/signup", signup).await.0, 200);
    let code = app.code_for("fay@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let guess = format!("/verify?email=fay%40example.com&token={wrong}&source=app");
    let guesses = (0..20).map(|_| app.get(&guess));
    for (status, body, _) in futures::future::join_all(guesses).await {
        assert_eq!((status, body["success"].clone()), (400, json!(0)));
    }
    let accounts =
        infra::db::Database::connect(&infra::db::sqlite_url(&dir.path().join("chat.db")))
            .await
            .unwrap();
    let (tries,): (i64,) = sqlx::query_as("SELECT failures FROM verification_codes")
        .fetch_one(&accounts.pool)
        .await
        .unwrap();
    assert_eq!(tries, 5, "five guesses were compared, no more");
    let (status, _, _) = app
        .get(&format!(
            "/verify?email=fay%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(status, 400, "the code is void");
    app.stop().await;
}

/// Makes the event store refuse every append to a user's stream, as a store that is failing would.
const REFUSE_REGISTRATIONS: &str = "CREATE TRIGGER refuse_registrations BEFORE INSERT ON events \
     WHEN NEW.stream LIKE 'user-%' BEGIN SELECT RAISE(ABORT, 'appends refused'); END";

#[tokio::test]
async fn a_sign_up_whose_registration_failed_is_completed_by_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let sqlite = |file: &str| infra::db::sqlite_url(&dir.path().join(file));
    let events = infra::db::Database::connect(&sqlite("events.db"))
        .await
        .unwrap();
    let accounts = infra::db::Database::connect(&sqlite("chat.db"))
        .await
        .unwrap();

    sqlx::query(REFUSE_REGISTRATIONS)
        .execute(&events.pool)
        .await
        .unwrap();
    for email in ["gus@example.com", "hal@example.com"] {
        let signup = json!({"name": "First", "email": email, "password": "password1"});
        let (status, body, _) = app.post("/signup", signup).await;
        assert_eq!((status, body["success"].clone()), (500, json!(-1)));
    }
    sqlx::query("DROP TRIGGER refuse_registrations")
        .execute(&events.pool)
        .await
        .unwrap();

    // Signing up again completes the registration, under the name given now.
    let signup = json!({"name": "Gus", "email": "gus@example.com", "password": "password2"});
    let (status, body, _) = app.post("/signup", signup).await;
    assert_eq!(status, 200, "{body}");
    let code = app.code_for("gus@example.com");
    let (status, body, _) = app
        .get(&format!(
            "/verify?email=gus%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let login = json!({"email": "gus@example.com", "password": "password2"});
    let (status, body, _) = app.post("/login", login).await;
    assert_eq!((status, body["userName"].clone()), (200, json!("Gus")));

    // So does verifying a code re-sent for the account.
    assert_eq!(
        app.post("/resend", json!({"email": "hal@example.com"}))
            .await
            .0,
        200
    );
    let code = app.code_for("hal@example.com");
    let (status, body, _) = app
        .get(&format!(
            "/verify?email=hal%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let login = json!({"email": "hal@example.com", "password": "password1"});
    assert_eq!(app.post("/login", login).await.0, 200);

    // A registration that reached the log without the account knowing (its answer was lost) is
    // found there, and the name brought up to date.
    let signup = json!({"name": "Ivy", "email": "ivy@example.com", "password": "password1"});
    assert_eq!(app.post("/signup", signup).await.0, 200);
    sqlx::query("UPDATE accounts SET registered = 0 WHERE email = 'ivy@example.com'")
        .execute(&accounts.pool)
        .await
        .unwrap();
    let signup = json!({"name": "Ivy L", "email": "ivy@example.com", "password": "password1"});
    let (status, body, _) = app.post("/signup", signup).await;
    assert_eq!(status, 200, "{body}");
    let code = app.code_for("ivy@example.com");
    let (status, body, _) = app
        .get(&format!(
            "/verify?email=ivy%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let (registered,): (i64,) =
        sqlx::query_as("SELECT registered FROM accounts WHERE email = 'ivy@example.com'")
            .fetch_one(&accounts.pool)
            .await
            .unwrap();
    assert_eq!(registered, 1);
    app.stop().await;
}

#[tokio::test]
async fn audit_routes_authenticate_before_they_parse() {
    let bad_requests = [
        "/audit/chats/c1/events?after=1&after=2",
        "/audit/users/u1/events?limit=1&limit=2",
        "/audit/chats/%FF/events",
    ];
    let token = "audit-token-for-the-test";
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[("AUDIT_TOKEN", token)]).await;
    for path in bad_requests {
        let (status, _, headers) = app.get(path).await;
        assert_eq!(status, 401, "{path} without the token");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} with another token");
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path} with the token");
    }
    app.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    for path in bad_requests {
        assert_eq!(app.get(path).await.0, 404, "{path} without AUDIT_TOKEN");
    }
    app.stop().await;
}
