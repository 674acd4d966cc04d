//! The binary's command line: `--help` lists every setting with its variable, `--version`
//! answers, an unknown argument is refused by clap, and `.env` is read before logging starts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_projection-service");

/// Settings every binary's `--help` must list.
const LISTED: [&str; 16] = [
    "PORT",
    "HEALTH_PORT",
    "PUBLIC_URL",
    "EVENT_STORE_URL",
    "DATABASE_URL",
    "NATS_URL",
    "NATS_STREAM_MAX_EVENTS",
    "SMTP_URL",
    "AUTH_SECRET",
    "AUDIT_TOKEN",
    "SOCKETS_PER_USER",
    "SOCKETS_PER_ADDRESS",
    "CREATE_RATE_LIMIT",
    "SEARCH_RATE_LIMIT",
    "ADD_MEMBER_RATE_LIMIT",
    "RUST_LOG",
];

/// The binary with nothing of this process's environment.
fn bin() -> Command {
    let mut command = Command::new(BIN);
    command.env_clear();
    command
}

#[test]
fn help_lists_every_setting_and_the_subcommands() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    for variable in LISTED {
        assert!(help.contains(variable), "{variable} missing from:\n{help}");
    }
    for subcommand in ["serve", "audit", "replay"] {
        assert!(
            help.contains(subcommand),
            "{subcommand} missing from:\n{help}"
        );
    }
}

#[test]
fn version_and_unknown_arguments() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("projection-service {}", env!("CARGO_PKG_VERSION"))
    );
    let out = bin().arg("--no-such-setting").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument"));
    let out = bin()
        .env("NATS_STREAM_MAX_EVENTS", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "projection-service: bad setting: NATS_STREAM_MAX_EVENTS: expected a number of events \
         (0: keep every event), got \"lots\""
    );
}

/// A free port on the loopback interface, as of now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn health_answers(port: u16) -> bool {
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut answer = String::new();
    tcp.write_all(request.as_bytes()).is_ok()
        && tcp.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// `RUST_LOG` from `.env` filters the log: serving, the service says nothing at `info`.
#[test]
fn rust_log_in_dot_env_counts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join(".env"),
        format!("RUST_LOG=warn\nHEALTH_PORT={port}\nDATA_DIR=./data\n"),
    )
    .unwrap();
    let mut child = bin()
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !health_answers(port) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no /health on the HEALTH_PORT from .env"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the service stopped: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();
    assert!(
        dir.path().join("data/chat.db").exists(),
        "DATA_DIR from .env"
    );
    assert!(
        !log.contains("INFO"),
        "info lines despite RUST_LOG=warn:\n{log}"
    );
}
