//! Every scenario of the generator, at a tiny size, against the real all-in-one server (the gateway
//! binary on a free port, its mail to the generator's SMTP sink): each run must succeed and its JSON
//! report must show the work done (nothing lost, every socket back, every page full).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The gateway binary of this workspace, built (debug) if it is not there yet.
fn gateway_binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "gateway"])
        .current_dir(workspace_root())
        .status()
        .unwrap();
    assert!(status.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug/gateway")
}

struct Server {
    child: Child,
    port: u16,
    sink: u16,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let data = tempfile::tempdir().unwrap();
    let (port, sink) = (free_port(), free_port());
    let child = Command::new(gateway_binary())
        .env("DATA_DIR", data.path())
        .env("PORT", port.to_string())
        .env("SMTP_URL", format!("smtp://127.0.0.1:{sink}"))
        .env("AUTH_RATE_LIMIT", "100000/min")
        .env("SOCKETS_PER_ADDRESS", "0")
        .env("SOCKETS_PER_USER", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        port,
        sink,
        _data: data,
    }
}

/// Runs one scenario; returns its JSON report.
fn run(server: &Server, out: &Path, name: &str, scenario: &[&str]) -> Value {
    let accounts = out.join("accounts.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--url")
        .arg(format!("http://127.0.0.1:{}", server.port))
        .arg("--smtp-sink")
        .arg(format!("127.0.0.1:{}", server.sink))
        .arg("--accounts")
        .arg(&accounts)
        .arg("--server-pid")
        .arg(format!("gateway={}", server.child.id()))
        .arg("--out")
        .arg(out)
        .args(["--name", name])
        .args(scenario)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap();
    assert!(out.join(format!("{name}.md")).exists() && out.join(format!("{name}.svg")).exists());
    serde_json::from_str(&report).unwrap()
}

#[test]
fn every_scenario_runs_against_the_all_in_one_server() {
    let server = start_server();
    let out = tempfile::tempdir().unwrap();
    let out = out.path();

    let idle = run(
        &server,
        out,
        "idle",
        &[
            "--sockets-per-source",
            "10",
            "idle",
            "--sockets",
            "30",
            "--users",
            "5",
            "--hold",
            "1",
        ],
    );
    assert_eq!(idle["results"]["connected"], 30, "{idle}");
    // 10 sockets from the kernel's choice (127.0.0.1), then 10 from 127.0.0.2 and 10 from .3: the
    // path that lets one generator hold more sockets than one address has ports.
    assert_eq!(idle["results"]["source_addresses"], 3, "{idle}");
    assert_eq!(idle["latency_ms"]["connect and resync"]["count"], 30);
    // The growth over all sockets and over the second half alone, for the one server process.
    for key in [
        "server_rss_per_socket_kib",
        "server_rss_per_socket_kib_marginal",
    ] {
        let per_process = idle["results"][key].as_object();
        assert!(
            per_process.is_some_and(|p| p.len() == 1 && p.values().all(|v| v.is_number())),
            "{key}: {idle}"
        );
    }
    assert!(
        idle["server"]["processes"][0]["rss_after_kib"]
            .as_u64()
            .unwrap()
            > 0
    );

    let one = run(
        &server,
        out,
        "one-to-one",
        &[
            "one-to-one",
            "--pairs",
            "5",
            "--rates",
            "40,80",
            "--seconds",
            "2",
            "--p99-limit-ms",
            "5000",
        ],
    );
    for step in one["results"]["steps"].as_array().unwrap() {
        assert_eq!(step["acked"], step["sent"], "{step}");
        assert_eq!(step["lost"], 0, "{step}");
        assert_eq!(step["failed"], 0, "{step}");
    }
    assert_eq!(one["results"]["highest_passing_rate"], 80, "{one}");

    let fan = run(
        &server,
        out,
        "fanout",
        &[
            "fanout",
            "--members",
            "12",
            "--messages",
            "2",
            "--rate",
            "5",
            "--seconds",
            "1",
        ],
    );
    for m in fan["results"]["single_messages"].as_array().unwrap() {
        assert_eq!(m["delivered"], 11, "{m}");
    }
    assert_eq!(fan["results"]["steady"]["drops"], 0, "{fan}");
    assert_eq!(fan["results"]["steady"]["delivered"], 55);

    let history = run(
        &server,
        out,
        "history",
        &[
            "history",
            "--messages",
            "300",
            "--samples",
            "5",
            "--fill-sockets",
            "3",
        ],
    );
    assert_eq!(
        history["latency_ms"]["first page of 50"]["count"], 5,
        "{history}"
    );
    assert_eq!(history["latency_ms"]["deep page of 50"]["count"], 5);

    let storm = run(
        &server,
        out,
        "reconnect",
        &[
            "reconnect",
            "--sockets",
            "30",
            "--users",
            "5",
            "--jitter-ms",
            "300",
        ],
    );
    assert_eq!(storm["results"]["back_and_resynced"], 30, "{storm}");
    assert_eq!(storm["results"]["gave_up"], 0);
}
