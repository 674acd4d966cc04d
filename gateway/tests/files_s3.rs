//! The S3 code path of file storage against a real S3-protocol server: s3s-fs (installed by
//! infra/scripts/s3-server), started on a free port for this test. Without it on PATH the test
//! fails and says how to install it.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn uploads_and_ranges_go_through_s3() {
    // Nothing is skipped for a missing server: the test command installs it first.
    assert!(
        Command::new("s3s-fs").arg("--version").output().is_ok(),
        "s3s-fs is not installed: run infra/scripts/s3-server (infra/scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join("chat-files")).unwrap();
    let port = free_port();
    let _server = Server(
        Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "testkey", "--secret-key", "testsecret"])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "s3s-fs did not start");
    // The standard variables object_store reads; this test binary has no other test.
    for (k, v) in [
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "testkey".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testsecret".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
    ] {
        std::env::set_var(k, v);
    }
    let data = dir.path().join("data");
    let app = support::spawn(&data, &[("FILES_URL", "s3://chat-files/uploads")]).await;
    let body = app
        .verified_user("sam", "sam@example.test", "Passw0rd!x")
        .await;
    let token = body["accessToken"].as_str().unwrap().to_owned();

    // Larger than one 5 MiB part, so the multipart upload has two.
    let bytes: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let response = app
        .http
        .post(app.url("/files?name=big.bin"))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["FileId"].as_str().unwrap().to_owned();
    assert!(
        root.join("chat-files/uploads").join(&id).exists(),
        "the object is in the S3 server's bucket, under the prefix"
    );
    assert!(!data.join("files").join(&id).exists());

    let whole = app
        .http
        .get(app.url(&format!("/files/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let part = app
        .http
        .get(app.url(&format!("/files/{id}")))
        .bearer_auth(&token)
        .header("range", "bytes=5242870-5242889")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.bytes().await.unwrap().as_ref(),
        &bytes[5242870..5242890]
    );

    // Too large: refused, and nothing left in the bucket.
    let before = std::fs::read_dir(root.join("chat-files/uploads"))
        .unwrap()
        .count();
    app.stop().await;
    let app = support::spawn(
        &data,
        &[
            ("FILES_URL", "s3://chat-files/uploads"),
            ("FILE_MAX_BYTES", "1000"),
        ],
    )
    .await;
    let refused = app
        .http
        .post(app.url("/files"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(
            (0..3).map(|_| Ok::<_, std::io::Error>(vec![1u8; 600])),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let after = std::fs::read_dir(root.join("chat-files/uploads"))
        .unwrap()
        .count();
    assert_eq!(after, before);
    app.stop().await;
}
