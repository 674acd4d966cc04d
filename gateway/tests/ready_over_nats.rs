//! `/ready` of a gateway in the production topology names NATS while NATS is away, and the gateway
//! reconnects by itself when NATS comes back. Runs a nats-server of its own (the machine's
//! `/usr/sbin/nats-server`, or `NATS_SERVER_BIN`) on a free port, so stopping it disturbs nobody.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infra::db::Database;
use infra::testing::{unique_prefix, TempPostgres};
use projection_service::Projector;

fn nats_server(port: u16, store: &Path) -> Child {
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
    Command::new(&bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ready_names_nats_while_it_is_away_and_recovers_without_a_restart() {
    let pg = TempPostgres::create("ready_nats").await;
    // The read-model tables, as the projection-service creates them before gateways start.
    Projector::new(Database::connect(&pg.url()).await.unwrap())
        .await
        .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = tempfile::tempdir().unwrap();
    let mut nats = nats_server(port, store.path());
    until("NATS up", async || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let prefix = unique_prefix();
    let app = support::spawn(
        dir.path(),
        &[
            ("NATS_URL", &url),
            ("NATS_PREFIX", &prefix),
            ("EVENT_STORE_URL", &pg.url()),
            ("DATABASE_URL", &pg.url()),
            // Required with NATS_URL: every gateway signs tokens with the same key.
            ("AUTH_SECRET", "0123456789abcdef0123456789abcdef"),
        ],
    )
    .await;
    assert_eq!(app.get("/ready").await.0, 200);

    nats.kill().unwrap();
    nats.wait().unwrap();
    until("/ready names NATS", async || {
        let (status, body, _) = app.get("/ready").await;
        status == 503
            && body["down"]
                .as_array()
                .is_some_and(|d| d.contains(&"NATS".into()))
    })
    .await;

    let mut nats = nats_server(port, store.path());
    until("/ready again", async || app.get("/ready").await.0 == 200).await;
    app.stop().await;
    nats.kill().unwrap();
    nats.wait().unwrap();
}
