//! Managing an account over HTTP (docs/api.md, "Accounts"): a password reset by mailed code, and
//! the open sessions listed and ended one by one; against the real server on a random port.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{spawn, TestApp};

/// The reset codes mailed to `email` so far, oldest first (outbox mode).
fn reset_codes(app: &TestApp, email: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(app.data_dir.join("outbox")) else {
        return Vec::new();
    };
    let mut mails: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    mails.sort();
    let marker = "password reset code: ";
    mails
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.replace("=\r\n", "").replace("=\n", ""))
        .filter(|text| text.contains(email))
        .filter_map(|text| {
            let at = text.find(marker)? + marker.len();
            let rest = &text[at..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            // A mail still being written may end inside its code.
            let whole = rest[digits.len()..].starts_with(['\r', '\n']);
            (digits.len() == 6 && whole).then_some(digits)
        })
        .collect()
}

/// Waits for the `n`th reset code mailed to `email` (1-based), and returns it.
async fn nth_reset_code(app: &TestApp, email: &str, n: usize) -> String {
    for _ in 0..400 {
        let codes = reset_codes(app, email);
        if codes.len() >= n {
            return codes[n - 1].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reset mail number {n} for {email}");
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn sessions(app: &TestApp, access: &str) -> (u16, Value) {
    send(app.http.get(app.url("/sessions")).bearer_auth(access)).await
}

async fn login_as(app: &TestApp, email: &str, password: &str, agent: &str) -> Value {
    let request = app
        .http
        .post(app.url("/login"))
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": password}));
    let (status, body) = send(request).await;
    assert_eq!(status, 200, "login: {body}");
    body
}

fn code_other_than(code: &str) -> String {
    if code == "000000" { "111111" } else { "000000" }.to_owned()
}

#[tokio::test]
async fn a_mailed_code_resets_the_password_and_ends_every_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let email = "ada@example.com";
    let verified = app.verified_user("Ada", email, "old password").await;
    let other = login_as(&app, email, "old password", "other-device").await;

    // Known or not, the answer is the same.
    let (status, unknown, _) = app
        .post("/password/forgot", json!({"email": "nobody@example.com"}))
        .await;
    let (status_known, known, _) = app.post("/password/forgot", json!({"email": email})).await;
    assert_eq!((status, status_known), (200, 200));
    assert_eq!(unknown, known);
    assert_eq!(known["success"], 1);
    let first = nth_reset_code(&app, email, 1).await;

    // A new request voids the first code.
    app.post("/password/forgot", json!({"email": email})).await;
    let second = nth_reset_code(&app, email, 2).await;
    if first != second {
        let (status, body, _) = app
            .post(
                "/password/reset",
                json!({"email": email, "token": first, "password": "new password"}),
            )
            .await;
        assert_eq!((status, body["success"].clone()), (400, json!(0)), "{body}");
    }

    // A password outside the rules is refused before any try is spent; a wrong code and an
    // unknown address are the same answer.
    let cases = [
        (
            json!({"email": email, "token": second, "password": "short"}),
            400,
            -1,
        ),
        (json!({"email": email, "password": "new password"}), 400, -1),
        (json!({"email": email, "token": second}), 400, -1),
        (
            json!({"email": email, "token": code_other_than(&second), "password": "new password"}),
            400,
            0,
        ),
        (
            json!({"email": "nobody@example.com", "token": second, "password": "new password"}),
            400,
            0,
        ),
        (
            json!({"email": "not an address", "token": second, "password": "new password"}),
            400,
            0,
        ),
    ];
    let mut answers_of_zero = Vec::new();
    for (body, status, success) in cases {
        let (got, answer, _) = app.post("/password/reset", body.clone()).await;
        assert_eq!(
            (got, answer["success"].clone()),
            (status, json!(success)),
            "{body}: {answer}"
        );
        if success == 0 {
            answers_of_zero.push(answer);
        }
    }
    assert!(answers_of_zero.windows(2).all(|w| w[0] == w[1]));

    let (status, body, _) = app
        .post(
            "/password/reset",
            json!({"email": email, "token": second, "password": "new password"}),
        )
        .await;
    assert_eq!((status, body["success"].clone()), (200, json!(1)), "{body}");

    // Every session ended: their refresh and access tokens no longer work.
    for session in [&verified, &other] {
        let refresh = session["refreshToken"].as_str().unwrap();
        let (status, _, _) = app.post("/refresh", json!({"refreshToken": refresh})).await;
        assert_eq!(status, 401);
        let (status, _) = sessions(&app, session["accessToken"].as_str().unwrap()).await;
        assert_eq!(status, 401);
    }
    // The code is spent; the old password is gone, the new one works.
    let (status, _, _) = app
        .post(
            "/password/reset",
            json!({"email": email, "token": second, "password": "third password"}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = app
        .post(
            "/login",
            json!({"email": email, "password": "old password"}),
        )
        .await;
    assert_eq!(status, 401);
    login_as(&app, email, "new password", "t").await;
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_codes_void_the_reset_code() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let email = "bo@example.com";
    app.verified_user("Bo", email, "old password").await;
    app.post("/password/forgot", json!({"email": email})).await;
    let code = nth_reset_code(&app, email, 1).await;
    let wrong = code_other_than(&code);
    for _ in 0..5 {
        let (status, _, _) = app
            .post(
                "/password/reset",
                json!({"email": email, "token": wrong, "password": "new password"}),
            )
            .await;
        assert_eq!(status, 400);
    }
    let (status, body, _) = app
        .post(
            "/password/reset",
            json!({"email": email, "token": code, "password": "new password"}),
        )
        .await;
    assert_eq!((status, body["success"].clone()), (400, json!(0)), "{body}");
    // A new code works again.
    app.post("/password/forgot", json!({"email": email})).await;
    let fresh = nth_reset_code(&app, email, 2).await;
    let (status, _, _) = app
        .post(
            "/password/reset",
            json!({"email": email, "token": fresh, "password": "new password"}),
        )
        .await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_unverified_account_gets_no_reset_code() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let (status, _, _) = app
        .post(
            "/signup",
            json!({"name": "Cy", "email": "cy@example.com", "password": "password1"}),
        )
        .await;
    assert_eq!(status, 200);
    let verification = app.code_for("cy@example.com");
    let (status, body, _) = app
        .post("/password/forgot", json!({"email": "cy@example.com"}))
        .await;
    assert_eq!((status, body["success"].clone()), (200, json!(1)));
    // Neither a guess nor the verification code resets the password.
    let (status, _, _) = app
        .post(
            "/password/reset",
            json!({"email": "cy@example.com", "token": verification, "password": "new password"}),
        )
        .await;
    assert_eq!(status, 400);
    // Missing or malformed addresses are bad requests.
    for body in [
        json!({}),
        json!({"email": 5}),
        json!({"email": "not an address"}),
    ] {
        let (status, answer, _) = app.post("/password/forgot", body.clone()).await;
        assert_eq!(
            (status, answer["success"].clone()),
            (400, json!(-1)),
            "{body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn password_routes_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[("AUTH_RATE_LIMIT", "2/min")]).await;
    for path in ["/password/forgot", "/password/reset"] {
        let body = json!({"email": "x@y.co", "token": "123456", "password": "password1"});
        for _ in 0..2 {
            let (status, _, _) = app.post(path, body.clone()).await;
            assert_ne!(status, 429, "{path}");
        }
        let (status, answer, headers) = app.post(path, body).await;
        assert_eq!(
            (status, answer["success"].clone()),
            (429, json!(-1)),
            "{path}"
        );
        assert!(headers.contains_key("retry-after"));
    }
    app.stop().await;
}

#[tokio::test]
async fn sessions_are_listed_and_ended_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let email = "di@example.com";
    app.verified_user("Di", email, "password1").await;
    let phone = login_as(&app, email, "password1", "phone/1.0").await;
    let laptop = login_as(&app, email, "password1", "laptop/2.0").await;
    let mallory = app
        .verified_user("Mal", "mal@example.com", "password1")
        .await;
    let laptop_access = laptop["accessToken"].as_str().unwrap();

    let (status, list) = sessions(&app, laptop_access).await;
    assert_eq!((status, list["success"].clone()), (200, json!(1)), "{list}");
    let listed = list["Sessions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 3, "verification, phone, laptop: {list}");
    let current: Vec<_> = listed.iter().filter(|s| s["Current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["UserAgent"], "laptop/2.0");
    assert_eq!(current[0]["Ip"], "127.0.0.1");
    let phone_entry = listed
        .iter()
        .find(|s| s["UserAgent"] == "phone/1.0")
        .expect("the phone's session is listed")
        .clone();
    for field in ["CreatedAt", "LastUsedAt"] {
        assert!(
            phone_entry[field]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{field}"
        );
    }
    let ids: Vec<&str> = listed.iter().map(|s| s["Id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.len() >= 32), "{ids:?}");
    let phone_id = phone_entry["Id"].as_str().unwrap();

    // The cookie counts as the bearer does.
    let (status, by_cookie) = send(
        app.http
            .get(app.url("/sessions"))
            .header("cookie", format!("access_token={laptop_access}")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_cookie["Sessions"].as_array().unwrap().len(), 3);

    // Without a valid access token: 401; a refresh token is not one.
    for request in [
        app.http.get(app.url("/sessions")),
        app.http.get(app.url("/sessions")).bearer_auth("garbage"),
        app.http
            .get(app.url("/sessions"))
            .bearer_auth(laptop["refreshToken"].as_str().unwrap()),
        app.http.delete(app.url(&format!("/sessions/{phone_id}"))),
    ] {
        let (status, body) = send(request).await;
        assert_eq!((status, body["success"].clone()), (401, json!(0)), "{body}");
    }

    // Another user's session and an unknown id are the same 404, and end nothing.
    let mallory_access = mallory["accessToken"].as_str().unwrap();
    for id in [phone_id, "0123456789abcdef0123456789abcdef", "x"] {
        let (status, body) = send(
            app.http
                .delete(app.url(&format!("/sessions/{id}")))
                .bearer_auth(mallory_access),
        )
        .await;
        assert_eq!((status, body["success"].clone()), (404, json!(0)), "{body}");
    }
    assert_eq!(
        sessions(&app, laptop_access).await.1["Sessions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let (status, body) = send(
        app.http
            .delete(app.url(&format!("/sessions/{phone_id}")))
            .bearer_auth(laptop_access),
    )
    .await;
    assert_eq!((status, body["success"].clone()), (200, json!(1)), "{body}");
    let (status, _, _) = app
        .post("/refresh", json!({"refreshToken": phone["refreshToken"]}))
        .await;
    assert_eq!(status, 401, "the ended session's refresh token is dead");
    let (status, _) = sessions(&app, phone["accessToken"].as_str().unwrap()).await;
    assert_eq!(status, 401, "and so is its access token");
    let (_, list) = sessions(&app, laptop_access).await;
    let left: Vec<&str> = list["Sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Id"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&phone_id));
    // Ending it again: it is no longer one of the caller's open sessions.
    let (status, _) = send(
        app.http
            .delete(app.url(&format!("/sessions/{phone_id}")))
            .bearer_auth(laptop_access),
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await;
}
