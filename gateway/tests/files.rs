//! `POST /files` and `GET /files/{FileId}` over HTTP: who may read a file, the limits, the type
//! check and range requests. Membership rows are written straight into the read models, as the
//! projector would after a send, so each access rule is tested on its own.

mod support;

use infra::db::{sqlite_url, Database};
use reqwest::StatusCode;
use serde_json::Value;
use support::{spawn, TestApp};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

struct User {
    id: String,
    token: String,
}

async fn user(app: &TestApp, name: &str) -> User {
    let body = app
        .verified_user(name, &format!("{name}@example.test"), "Passw0rd!x")
        .await;
    User {
        id: body["userId"].as_str().unwrap().to_owned(),
        token: body["accessToken"].as_str().unwrap().to_owned(),
    }
}

async fn upload(
    app: &TestApp,
    who: &User,
    query: &str,
    kind: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(&format!("/files{query}")))
        .bearer_auth(&who.token)
        .header("content-type", kind)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn fetch(app: &TestApp, who: &User, id: &str) -> reqwest::RequestBuilder {
    app.http
        .get(app.url(&format!("/files/{id}")))
        .bearer_auth(&who.token)
}

/// Makes `member` a current member of a group where `file` was sent (as the projector records it).
async fn shared_in_group(app: &TestApp, file: &str, members: &[&User]) -> Database {
    let db = Database::connect(&sqlite_url(&app.data_dir.join("chat.db")))
        .await
        .unwrap();
    sqlx::query("INSERT INTO chats (chat_id, kind, name, admin, created_at) VALUES ('g1', 'group', 'g', 'x', 0)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO messages (chat_id, version, message_id, sender_id, content, sent_at) VALUES ('g1', 1, 'm1', 'x', 'see', 0)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO message_attachments (chat_id, message_id, ordinal, file_id, name, size, content_type) VALUES ('g1', 'm1', 0, $1, NULL, 1, 'text/plain')")
        .bind(file)
        .execute(&db.pool)
        .await
        .unwrap();
    for m in members {
        sqlx::query("INSERT INTO chat_members (chat_id, user_id) VALUES ('g1', $1)")
            .bind(&m.id)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    db
}

#[tokio::test]
async fn an_upload_is_read_by_its_uploader_and_current_members_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let (ann, bob, cat) = (
        user(&app, "ann").await,
        user(&app, "bob").await,
        user(&app, "cat").await,
    );

    let bytes = b"hello, file".to_vec();
    let (status, body) = upload(
        &app,
        &ann,
        "?name=notes%20%C3%A9.txt",
        "text/plain",
        bytes.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["success"], 1);
    assert_eq!(body["Size"], 11);
    assert_eq!(body["ContentType"], "text/plain");
    let sha = body["Sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);
    assert!(sha
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let id = body["FileId"].as_str().unwrap().to_owned();

    // The uploader.
    let got = fetch(&app, &ann, &id).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let h = got.headers().clone();
    assert_eq!(h["content-type"], "text/plain");
    assert_eq!(h["content-length"], "11");
    assert_eq!(h["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"notes _.txt\"; filename*=UTF-8''notes%20%C3%A9.txt"
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Others: 404 until the file is shared with a chat they are in; removal takes it away.
    assert_eq!(
        fetch(&app, &bob, &id).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let db = shared_in_group(&app, &id, &[&bob]).await;
    assert_eq!(
        fetch(&app, &bob, &id).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        fetch(&app, &cat, &id).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    sqlx::query("DELETE FROM chat_members WHERE user_id = $1")
        .bind(&bob.id)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        fetch(&app, &bob, &id).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &ann, "nosuchfile")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // An id that is not UTF-8 once decoded is no file either: the same JSON answer.
    let not_utf8 = fetch(&app, &ann, "%FF").send().await.unwrap();
    assert_eq!(not_utf8.status(), StatusCode::NOT_FOUND);
    let body: Value = not_utf8.json().await.unwrap();
    assert_eq!(body["success"], 0, "{body}");
    assert!(body["message"].is_string(), "{body}");

    // The cookie counts; no token is 401.
    let by_cookie = app
        .http
        .get(app.url(&format!("/files/{id}")))
        .header("cookie", format!("access_token={}", ann.token))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    let anonymous = app
        .http
        .get(app.url(&format!("/files/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let anonymous = app
        .http
        .post(app.url("/files"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Conditional and partial requests.
    let same = fetch(&app, &ann, &id)
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
    let part = fetch(&app, &ann, &id)
        .header("range", "bytes=7-")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 7-10/11");
    assert_eq!(part.headers()["content-length"], "4");
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"file");
    let tail = fetch(&app, &ann, &id)
        .header("range", "bytes=-4")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap().as_ref(), b"file");
    let beyond = fetch(&app, &ann, &id)
        .header("range", "bytes=11-")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()["content-range"], "bytes */11");
    app.stop().await;
}

#[tokio::test]
async fn images_must_be_what_they_say_and_size_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[("FILE_MAX_BYTES", "64")]).await;
    let ann = user(&app, "ann").await;

    let (status, body) = upload(&app, &ann, "?name=a.png", "image/png", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["ContentType"], "image/png");
    let got = fetch(&app, &ann, body["FileId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.headers()["content-disposition"],
        "inline; filename=\"a.png\"; filename*=UTF-8''a.png"
    );

    let (status, body) = upload(
        &app,
        &ann,
        "",
        "image/png",
        b"<script>alert(1)</script>".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["ContentType"], "application/octet-stream");

    let files_dir = dir.path().join("files");
    let stored = || std::fs::read_dir(&files_dir).unwrap().count();
    let before = stored();
    let (status, _) = upload(&app, &ann, "", "text/plain", vec![b'x'; 65]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Without a Content-Length: refused while streaming, nothing kept.
    let chunks = futures::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 40])));
    let streamed = app
        .http
        .post(app.url("/files"))
        .bearer_auth(&ann.token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(stored(), before, "nothing stored for a refused upload");
    let (status, body) = upload(&app, &ann, "", "text/plain", vec![b'x'; 64]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.stop().await;
}
