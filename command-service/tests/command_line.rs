//! The binary's command line: `--help` lists every setting with its variable and exits, `--version`
//! answers, an unknown argument is refused by clap, and a bad setting by its variable's name.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_command-service");

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

/// The binary with nothing of this process's environment, in an empty directory (no `.env`).
fn bin(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(BIN);
    command.env_clear().current_dir(dir.path());
    command
}

#[test]
fn help_lists_every_setting_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(&dir).arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    for variable in LISTED {
        assert!(help.contains(variable), "{variable} missing from:\n{help}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "--help made files: it started the service"
    );
}

#[test]
fn version_unknown_arguments_and_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(&dir).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("command-service {}", env!("CARGO_PKG_VERSION"))
    );
    let out = bin(&dir).arg("--no-such-setting").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument"));
    let out = bin(&dir).env("SOCKETS_PER_USER", "many").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "command-service: bad setting: SOCKETS_PER_USER: expected a whole number (0: no limit), got \"many\""
    );
    let out = bin(&dir).args(["--port", "http"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad setting: PORT: "));
}
