//! The HTTP API (docs/api.md, "HTTP") against the real server on a random port.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{set_cookies, spawn};

#[tokio::test]
async fn signup_verify_login_refresh_logout() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;

    let verified = app
        .verified_user("Ada", "ada@example.com", "correct horse")
        .await;
    assert_eq!(verified["success"], 1);
    let user_id = verified["userId"].as_str().unwrap().to_owned();

    let (status, body, headers) = app
        .post(
            "/login",
            json!({"email": "ADA@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userId"], user_id.as_str());
    assert_eq!(body["userName"], "Ada");
    let cookies = set_cookies(&headers);
    assert!(cookies.iter().any(|c| c.starts_with("access_token=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Lax")
        && c.contains("Path=/")
        && !c.contains("Secure")));
    assert!(cookies.iter().any(|c| c.starts_with("refresh_token=")));

    let refresh = body["refreshToken"].as_str().unwrap().to_owned();
    let (status, rotated, _) = app.post("/refresh", json!({"refreshToken": refresh})).await;
    assert_eq!(status, 200, "{rotated}");
    let newer = rotated["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(newer, refresh);

    let (status, body, headers) = app.post("/logout", json!({"refreshToken": newer})).await;
    assert_eq!((status, body["success"].clone()), (200, json!(1)));
    assert!(set_cookies(&headers)
        .iter()
        .any(|c| c.starts_with("access_token=;") && c.contains("Max-Age=0")));
    let (status, body, _) = app.post("/refresh", json!({"refreshToken": newer})).await;
    assert_eq!((status, body["success"].clone()), (401, json!(0)));
    app.stop().await;
}

#[tokio::test]
async fn a_spent_refresh_token_revokes_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let verified = app.verified_user("Bo", "bo@example.com", "password1").await;
    let first = verified["refreshToken"].as_str().unwrap().to_owned();
    let (_, rotated, _) = app.post("/refresh", json!({"refreshToken": first})).await;
    let second = rotated["refreshToken"].as_str().unwrap().to_owned();
    let (status, _, _) = app.post("/refresh", json!({"refreshToken": first})).await;
    assert_eq!(status, 401);
    let (status, _, _) = app.post("/refresh", json!({"refreshToken": second})).await;
    assert_eq!(status, 401, "reuse must revoke the whole session");
    app.stop().await;
}

#[tokio::test]
async fn refusals_have_the_protocol_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let cases = [
        (
            "/signup",
            json!({"name": "A", "email": "not-an-email", "password": "password1"}),
            400,
            -1,
        ),
        (
            "/signup",
            json!({"name": "", "email": "a@b.co", "password": "password1"}),
            400,
            -1,
        ),
        (
            "/signup",
            json!({"name": "A", "email": "a@b.co", "password": "short"}),
            400,
            -1,
        ),
        ("/signup", json!({"name": "A", "email": "a@b.co"}), 400, -1),
        (
            "/signup",
            json!({"name": 5, "email": "a@b.co", "password": "password1"}),
            400,
            -1,
        ),
        ("/login", json!({"email": "a@b.co"}), 400, -1),
        (
            "/login",
            json!({"email": "nobody@b.co", "password": "password1"}),
            401,
            0,
        ),
        ("/resend", json!({}), 400, -1),
        (
            "/update-access-token",
            json!({"acessToken": "garbage"}),
            400,
            -1,
        ),
        ("/refresh", json!({"refreshToken": "garbage"}), 401, 0),
    ];
    for (path, body, status, success) in cases {
        let (got, answer, _) = app.post(path, body.clone()).await;
        assert_eq!(
            (got, answer["success"].clone()),
            (status, json!(success)),
            "{path} {body}: {answer}"
        );
        assert!(answer["message"].is_string());
    }
    let (status, body, _) = app.post("/resend", json!({"email": "nobody@b.co"})).await;
    assert_eq!(
        (status, body["success"].clone()),
        (200, json!(1)),
        "no enumeration"
    );
    app.stop().await;
}

#[tokio::test]
async fn verified_again_is_a_conflict_and_unverified_again_replaces_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let signup = json!({"name": "Cy", "email": "cy@example.com", "password": "first-password"});
    assert_eq!(app.post("/signup", signup).await.0, 200);
    let again = json!({"name": "Cy", "email": "cy@example.com", "password": "second-password"});
    assert_eq!(app.post("/signup", again).await.0, 200);
    let code = app.code_for("cy@example.com");
    let (status, _, _) = app
        .get(&format!(
            "/Verify?email=cy%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(status, 200, "paths match case-insensitively");
    let (status, _, _) = app
        .post(
            "/login",
            json!({"email": "cy@example.com", "password": "first-password"}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = app
        .post(
            "/login",
            json!({"email": "cy@example.com", "password": "second-password"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body, _) = app
        .post(
            "/signup",
            json!({"name": "Cy", "email": "cy@example.com", "password": "third-password"}),
        )
        .await;
    assert_eq!(
        (status, body["success"].clone(), body["message"].clone()),
        (409, json!(0), json!("User Already Exists"))
    );
    app.stop().await;
}

#[tokio::test]
async fn unverified_login_is_minus_two_and_bad_codes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let signup = json!({"name": "Di", "email": "di@example.com", "password": "password1"});
    assert_eq!(app.post("/signup", signup).await.0, 200);
    let (status, body, _) = app
        .post(
            "/login",
            json!({"email": "di@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!((status, body["success"].clone()), (403, json!(-2)));
    let code = app.code_for("di@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, body, _) = app
            .get(&format!(
                "/verify?email=di%40example.com&token={wrong}&source=app"
            ))
            .await;
        assert_eq!((status, body["success"].clone()), (400, json!(0)));
    }
    let (status, _, _) = app
        .get(&format!(
            "/verify?email=di%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(status, 400, "five wrong codes void the code");
    assert_eq!(
        app.post("/resend", json!({"email": "di@example.com"}))
            .await
            .0,
        200
    );
    let fresh = app.code_for("di@example.com");
    let (status, _, _) = app
        .get(&format!(
            "/verify?email=di%40example.com&token={fresh}&source=app"
        ))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = app
        .get(&format!(
            "/verify?email=di%40example.com&token={fresh}&source=app"
        ))
        .await;
    assert_eq!(status, 400, "a used code is refused");
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_16_kib_are_413_and_non_json_is_400_or_415() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let big = "x".repeat(17 * 1024);
    let (status, body, _) = app
        .post("/login", json!({"email": big, "password": "p"}))
        .await;
    assert_eq!((status, body["success"].clone()), (413, json!(-1)));
    let response = app
        .http
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = app
        .http
        .post(app.url("/login"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415, "a body needs its type");
    app.stop().await;
}

#[tokio::test]
async fn auth_routes_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[("AUTH_RATE_LIMIT", "3/min")]).await;
    for _ in 0..3 {
        let (status, _, _) = app
            .post(
                "/login",
                json!({"email": "x@y.co", "password": "password1"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, body, headers) = app
        .post(
            "/login",
            json!({"email": "x@y.co", "password": "password1"}),
        )
        .await;
    assert_eq!((status, body["success"].clone()), (429, json!(-1)));
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let (status, _, _) = app.post("/resend", json!({"email": "x@y.co"})).await;
    assert_eq!(status, 200, "each route has its own budget");
    app.stop().await;
}

#[tokio::test]
async fn health_and_ready() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    assert_eq!(app.get("/health").await.0, 200);
    assert_eq!(app.get("/ready").await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn the_api_describes_itself_at_openapi_json() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let (status, document, headers) = app.get("/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("a paths object");
    for path in ["/signup", "/files/{file_id}"] {
        assert!(paths.contains_key(path), "{path} is not described");
    }
    app.stop().await;
}

#[tokio::test]
async fn accounts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    app.verified_user("Eve", "eve@example.com", "password1")
        .await;
    app.stop().await;
    let app = spawn(dir.path(), &[]).await;
    let (status, body, _) = app
        .post(
            "/login",
            json!({"email": "eve@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_failing_smtp_server_answers_minus_one_quickly_and_resend_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let smtp = format!("smtp://127.0.0.1:{closed}");
    let app = spawn(dir.path(), &[("SMTP_URL", smtp.as_str())]).await;
    let started = Instant::now();
    let (status, body, _) = app
        .post(
            "/signup",
            json!({"name": "Fay", "email": "fay@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!((status, body["success"].clone()), (500, json!(-1)));
    assert!(started.elapsed() < Duration::from_secs(10));
    app.stop().await;

    let app = spawn(dir.path(), &[]).await;
    assert_eq!(
        app.post("/resend", json!({"email": "fay@example.com"}))
            .await
            .0,
        200
    );
    let code = app.code_for("fay@example.com");
    let (status, _, _) = app
        .get(&format!(
            "/verify?email=fay%40example.com&token={code}&source=app"
        ))
        .await;
    assert_eq!(
        status, 200,
        "the account stayed, and resend delivered a new code"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_accounts_and_the_log_run_on_postgresql_too() {
    let pg = infra::testing::TempPostgres::create("gateway_test").await;
    let url = pg.url();
    let backends = [
        ("EVENT_STORE_URL", url.as_str()),
        ("DATABASE_URL", url.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &backends).await;
    let verified = app
        .verified_user("Pat", "pat@example.com", "password1")
        .await;
    let user_id = verified["userId"].as_str().unwrap().to_owned();
    let (status, body, _) = app
        .post(
            "/login",
            json!({"email": "pat@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refreshToken"].as_str().unwrap().to_owned();
    let (status, rotated, _) = app.post("/refresh", json!({"refreshToken": refresh})).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _, _) = app.post("/refresh", json!({"refreshToken": refresh})).await;
    assert_eq!(status, 401, "reuse detected on PostgreSQL too");
    let (status, _, _) = app.get("/ready").await;
    assert_eq!(status, 200);
    app.stop().await;

    // Everything is in PostgreSQL: a fresh data directory on the same databases sees the account.
    let elsewhere = tempfile::tempdir().unwrap();
    let again = spawn(elsewhere.path(), &backends).await;
    let (status, body, _) = again
        .post(
            "/login",
            json!({"email": "pat@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userId"], user_id.as_str());
    let (status, _, _) = again
        .post(
            "/signup",
            json!({"name": "Pat", "email": "pat@example.com", "password": "password2"}),
        )
        .await;
    assert_eq!(status, 409);
    again.stop().await;
}
