//! Configuration: one struct, read once from the environment (and `.env`), validated at start with
//! a one-line error naming the bad setting (docs/operations.md, "Settings").

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use lettre::message::Mailbox;
use rand::RngCore;
use thiserror::Error;

/// A bad setting: `Display` is one line naming the variable.
#[derive(Debug, Error)]
#[error("{variable}: {problem}")]
pub struct SettingError {
    pub variable: &'static str,
    pub problem: String,
}

fn bad(variable: &'static str, problem: impl Into<String>) -> SettingError {
    SettingError {
        variable,
        problem: problem.into(),
    }
}

/// `AUTH_RATE_LIMIT`: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

/// `NATS_STREAM_MAX_EVENTS` when unset. The stream is a transport, not the log: a projection
/// further behind than this reads the difference from the event store, and a gateway that missed
/// that much disconnects its sockets so that their clients fetch again.
pub const DEFAULT_STREAM_MAX_EVENTS: u64 = 1_000_000;

// The defaults of the settings that have a fixed one, as `--help` shows them.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: &str = "3000";
const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_NATS_PREFIX: &str = "chat";
const DEFAULT_STREAM_MAX_EVENTS_TEXT: &str = "1000000";
const DEFAULT_MAIL_FROM: &str = "ExpressChat <no-reply@localhost>";
const DEFAULT_ACCESS_TOKEN_TTL: &str = "15m";
const DEFAULT_REFRESH_TOKEN_TTL: &str = "30d";
const DEFAULT_EDIT_WINDOW_TEXT: &str = "48h";
/// 25 MiB.
const DEFAULT_FILE_MAX_BYTES: &str = "26214400";
/// How long after sending a message its sender may edit it, unless `EDIT_WINDOW` says otherwise.
pub const DEFAULT_EDIT_WINDOW: Duration = Duration::from_secs(48 * 3600);
const DEFAULT_AUTH_RATE_LIMIT: &str = "10/min";
const DEFAULT_SOCKETS_PER_USER: &str = "64";
const DEFAULT_SOCKETS_PER_ADDRESS: &str = "1024";
const DEFAULT_CREATE_RATE_LIMIT: &str = "60/min";
const DEFAULT_SEARCH_RATE_LIMIT: &str = "60/min";
const DEFAULT_ADD_MEMBER_RATE_LIMIT: &str = "1200/min";
const DEFAULT_TRUST_PROXY: &str = "false";
const DEFAULT_WEB_CLIENT: &str = "on";
const DEFAULT_METRICS: &str = "on";
const DEFAULT_LOG_FORMAT: &str = "text";

/// Said after every binary's settings in `--help`.
pub const AFTER_HELP: &str = "Each setting is taken from its flag, else from its environment \
variable (a .env file in the working directory is read too; the environment wins over it), else \
from its default; none is required. An empty value counts as unset. RUST_LOG (default: info) \
filters the log, which goes to stderr; it may be set in .env too.";

// Every setting as given, unchecked: a flag, else its environment variable, else its default.
// `Settings::from_args` checks them. Every value is text here, so that a bad one is refused by
// that check with its variable's name, not by clap. (Not a doc comment: clap would make it the
// description of every binary that takes these settings.)
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Settings")]
pub struct SettingsArgs {
    /// Address to bind.
    #[arg(long, env = "HOST", hide_env_values = true, default_value = DEFAULT_HOST)]
    pub host: String,
    /// Port to bind (0: any free port; the log line says which).
    #[arg(long, env = "PORT", hide_env_values = true, default_value = DEFAULT_PORT)]
    pub port: String,
    /// Where the command-service and the projection-service answer /health and /ready (on HOST);
    /// unset: they serve no HTTP. The gateway answers both on PORT.
    #[arg(long, env = "HEALTH_PORT", hide_env_values = true)]
    pub health_port: Option<String>,
    /// Base of links in e-mails; https:// turns on the Secure cookie flag
    /// [default: http://localhost:$PORT]
    #[arg(long, env = "PUBLIC_URL", hide_env_values = true)]
    pub public_url: Option<String>,
    /// Where embedded storage, the generated secret and the mail outbox live.
    #[arg(long, env = "DATA_DIR", hide_env_values = true, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: String,
    /// The event log, sqlite://… or postgres://… [default: sqlite://$DATA_DIR/events.db]
    #[arg(long, env = "EVENT_STORE_URL", hide_env_values = true)]
    pub event_store_url: Option<String>,
    /// Read models and accounts, sqlite://… or postgres://…
    /// [default: sqlite://$DATA_DIR/chat.db]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// nats://host:port: run as part of the production topology; unset: all-in-one.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// Names the deployment on NATS: subjects <prefix>.…, JetStream stream <prefix>_EVENTS
    /// (letters, digits, '_' and '-').
    #[arg(long, env = "NATS_PREFIX", hide_env_values = true, default_value = DEFAULT_NATS_PREFIX)]
    pub nats_prefix: String,
    /// How many of the newest events the JetStream stream keeps (0: all).
    #[arg(long, env = "NATS_STREAM_MAX_EVENTS", hide_env_values = true, default_value = DEFAULT_STREAM_MAX_EVENTS_TEXT)]
    pub nats_stream_max_events: String,
    /// smtp://user:pass@host:port (add ?tls=required for STARTTLS) or smtps://…; unset: mail goes
    /// to $DATA_DIR/outbox.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of verification mail.
    #[arg(long, env = "MAIL_FROM", hide_env_values = true, default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,
    /// Token signing key (at least 32 bytes), equal on every node; unset: generated once into
    /// $DATA_DIR/auth_secret. Prefer the environment: a flag shows in the process list.
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    /// Bearer token of the /audit routes (at least 16 bytes); unset: no audit routes. Prefer the
    /// environment: a flag shows in the process list.
    #[arg(long, env = "AUDIT_TOKEN", hide_env_values = true)]
    pub audit_token: Option<String>,
    /// Lifetime of an access token (humantime syntax).
    #[arg(long, env = "ACCESS_TOKEN_TTL", hide_env_values = true, default_value = DEFAULT_ACCESS_TOKEN_TTL)]
    pub access_token_ttl: String,
    /// Lifetime of a refresh token (humantime syntax).
    #[arg(long, env = "REFRESH_TOKEN_TTL", hide_env_values = true, default_value = DEFAULT_REFRESH_TOKEN_TTL)]
    pub refresh_token_ttl: String,
    /// How long after sending a message its sender may edit it (humantime syntax); read by the
    /// command-service.
    #[arg(long, env = "EDIT_WINDOW", hide_env_values = true, default_value = DEFAULT_EDIT_WINDOW_TEXT)]
    pub edit_window: String,
    /// Where uploaded files are kept: a folder (a path or file://…) or S3-compatible object
    /// storage, s3://bucket/prefix (endpoint, keys and region from the AWS_* variables)
    /// [default: $DATA_DIR/files]
    #[arg(long, env = "FILES_URL", hide_env_values = true)]
    pub files_url: Option<String>,
    /// Largest file upload, in bytes.
    #[arg(long, env = "FILE_MAX_BYTES", hide_env_values = true, default_value = DEFAULT_FILE_MAX_BYTES)]
    pub file_max_bytes: String,
    /// Comma-separated origins allowed for CORS and cookie-authenticated Socket.IO handshakes
    /// [default: PUBLIC_URL's origin]
    #[arg(long, env = "ALLOWED_ORIGINS", hide_env_values = true)]
    pub allowed_origins: Option<String>,
    /// Requests per client address to each of /signup, /login, /resend, /verify, /refresh
    /// (N/sec, N/min or N/hour).
    #[arg(long, env = "AUTH_RATE_LIMIT", hide_env_values = true, default_value = DEFAULT_AUTH_RATE_LIMIT)]
    pub auth_rate_limit: String,
    /// Socket.IO connections one account may hold at once, per gateway (0: no limit).
    #[arg(long, env = "SOCKETS_PER_USER", hide_env_values = true, default_value = DEFAULT_SOCKETS_PER_USER)]
    pub sockets_per_user: String,
    /// Socket.IO connections one client address may hold at once, per gateway (0: no limit).
    #[arg(long, env = "SOCKETS_PER_ADDRESS", hide_env_values = true, default_value = DEFAULT_SOCKETS_PER_ADDRESS)]
    pub sockets_per_address: String,
    /// Chats (personal and group) one user may create.
    #[arg(long, env = "CREATE_RATE_LIMIT", hide_env_values = true, default_value = DEFAULT_CREATE_RATE_LIMIT)]
    pub create_rate_limit: String,
    /// search-user requests of one user.
    #[arg(long, env = "SEARCH_RATE_LIMIT", hide_env_values = true, default_value = DEFAULT_SEARCH_RATE_LIMIT)]
    pub search_rate_limit: String,
    /// Members one user may add to groups.
    #[arg(long, env = "ADD_MEMBER_RATE_LIMIT", hide_env_values = true, default_value = DEFAULT_ADD_MEMBER_RATE_LIMIT)]
    pub add_member_rate_limit: String,
    /// on: the gateway serves its web client at / (every path no other route takes); off: it
    /// serves only the API.
    #[arg(long, env = "WEB_CLIENT", hide_env_values = true, default_value = DEFAULT_WEB_CLIENT)]
    pub web_client: String,
    /// true: the client address is the last hop of X-Forwarded-For (behind a reverse proxy);
    /// false: the TCP peer.
    #[arg(long, env = "TRUST_PROXY", hide_env_values = true, default_value = DEFAULT_TRUST_PROXY)]
    pub trust_proxy: String,
    /// on: Prometheus metrics at /metrics (the gateway on PORT or METRICS_PORT, the services on
    /// HEALTH_PORT); off: none are kept.
    #[arg(long, env = "METRICS", hide_env_values = true, default_value = DEFAULT_METRICS)]
    pub metrics: String,
    /// A gateway's separate port for /metrics (on HOST), which then leaves PORT; unset: PORT.
    #[arg(long, env = "METRICS_PORT", hide_env_values = true)]
    pub metrics_port: Option<String>,
    /// text: human-readable log lines; json: one JSON object a line.
    #[arg(long, env = "LOG_FORMAT", hide_env_values = true, default_value = DEFAULT_LOG_FORMAT)]
    pub log_format: String,
}

/// Every setting of the server.
#[derive(Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub event_store_url: String,
    pub database_url: String,
    pub nats_url: Option<String>,
    pub nats_prefix: String,
    /// How many of the newest events the JetStream events stream keeps (`None`: every event).
    /// Projections reach back past it to the event store; see docs/design.md, "Retention".
    pub nats_stream_max_events: Option<u64>,
    pub smtp_url: Option<String>,
    pub mail_from: Mailbox,
    pub auth_secret: Option<Vec<u8>>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// `EDIT_WINDOW`: how long a message's sender may edit it.
    pub edit_window: Duration,
    /// `FILES_URL`: a folder path, or `s3://bucket[/prefix]`.
    pub files_url: String,
    /// `FILE_MAX_BYTES`: the largest upload.
    pub file_max_bytes: u64,
    /// Normalized origins (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    pub auth_rate_limit: RateLimit,
    pub trust_proxy: bool,
    /// `WEB_CLIENT`: whether the gateway serves its web client.
    pub web_client: bool,
    /// The bearer token of the audit routes; `None`: the routes do not exist.
    pub audit_token: Option<String>,
    /// Where the command-service and the projection-service answer `/health` and `/ready` (on
    /// `HOST`); `None`: they serve no HTTP. The gateway answers both on `PORT`.
    pub health_port: Option<u16>,
    /// What one user or one client address may hold or ask of a gateway (docs/security.md).
    pub abuse: AbuseLimits,
    /// Metrics and the log format.
    pub telemetry: Telemetry,
}

/// What a process tells its operator, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Telemetry {
    /// `METRICS`: whether metrics are kept and served.
    pub metrics: bool,
    /// `METRICS_PORT`: a gateway's separate port for `/metrics`.
    pub metrics_port: Option<u16>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people: one line an event, coloured on a terminal.
    #[default]
    Text,
    /// For log collectors: one JSON object a line, with the span fields.
    Json,
}

/// Per-user and per-address limits of a gateway process; each counts per process (`None`: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseLimits {
    /// `SOCKETS_PER_USER`: sockets one user may have connected at once.
    pub sockets_per_user: Option<u32>,
    /// `SOCKETS_PER_ADDRESS`: Socket.IO connections one client address may have open at once.
    pub sockets_per_address: Option<u32>,
    /// `CREATE_RATE_LIMIT`: chats (personal and group) one user may create.
    pub creations: RateLimit,
    /// `SEARCH_RATE_LIMIT`: `search-user` and `search-messages` requests of one user.
    pub searches: RateLimit,
    /// `ADD_MEMBER_RATE_LIMIT`: members one user may add to groups.
    pub additions: RateLimit,
}

/// Why a binary does not start from its command line.
#[derive(Debug, Error)]
pub enum CommandLineError {
    /// Not a command line of this binary, or one asking for `--help` or `--version`:
    /// [`clap::Error::exit`] prints it and exits (0 for help and version, 2 otherwise).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// A setting is bad.
    #[error(transparent)]
    Setting(#[from] SettingError),
}

/// Reads `.env` in the working directory, if there is one, into the process environment; a
/// variable already set keeps its value. Call it first, before logging starts (for `RUST_LOG`)
/// and before a command line is built (clap reads the environment then).
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// A binary's command line before the settings join it: its name, version and what it is, for
/// `--help` and `--version`.
pub fn program(name: &'static str, version: &'static str, about: &'static str) -> clap::Command {
    clap::Command::new(name).version(version).about(about)
}

/// `command` with every setting as a flag falling back to its environment variable, and
/// [`AFTER_HELP`].
pub fn with_settings(command: clap::Command) -> clap::Command {
    use clap::Args;
    SettingsArgs::augment_args(command).after_help(AFTER_HELP)
}

impl Settings {
    /// What a service binary does at start: reads `.env`, then its command line (`command`, from
    /// [`program`], gets every setting; see [`with_settings`]) with the environment, and checks
    /// the settings.
    pub fn from_command_line(command: clap::Command) -> Result<Self, CommandLineError> {
        load_dotenv();
        Self::from_command_line_args(command, std::env::args_os())
    }

    /// [`Settings::from_command_line`] with the given arguments (the first is the program's name),
    /// without reading `.env`.
    pub fn from_command_line_args<I, T>(
        command: clap::Command,
        argv: I,
    ) -> Result<Self, CommandLineError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::FromArgMatches;
        let matches = with_settings(command).try_get_matches_from(argv)?;
        let args = SettingsArgs::from_arg_matches(&matches)?;
        Ok(Self::from_args(&args)?)
    }

    /// Reads the given variables only, as if they were the whole environment (for tests and for
    /// checking a deployment's environment).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingError> {
        use clap::FromArgMatches;
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let command = with_settings(clap::Command::new("settings"));
        let mut argv = vec!["settings".to_owned()];
        for arg in command.get_arguments() {
            let (Some(variable), Some(flag)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            if let Some(value) = variable.to_str().and_then(|v| vars.get(v)) {
                // `--flag=value`, so that a value starting with '-' is a value.
                argv.push(format!("--{flag}={value}"));
            }
        }
        // Not the process environment, which clap would fall back to.
        let matches = command
            .mut_args(|arg| arg.env(None::<&'static str>))
            .try_get_matches_from(argv)
            .and_then(|matches| SettingsArgs::from_arg_matches(&matches))
            .map_err(|e| bad("settings", e.kind().to_string()))?;
        Self::from_args(&matches)
    }

    /// Checks every setting, with a one-line error naming the variable of the first bad one.
    /// An empty (or blank) value counts as unset.
    pub fn from_args(args: &SettingsArgs) -> Result<Self, SettingError> {
        let or = |value: &str, default: &'static str| -> String {
            match value.trim() {
                "" => default.to_owned(),
                given => given.to_owned(),
            }
        };
        let given = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };

        let host = or(&args.host, DEFAULT_HOST);
        let port_text = or(&args.port, DEFAULT_PORT);
        let port = port_text
            .parse()
            .map_err(|_| bad("PORT", format!("expected a port number, got {port_text:?}")))?;
        let health_port =
            match given(&args.health_port) {
                None => None,
                Some(p) => Some(p.parse().map_err(|_| {
                    bad("HEALTH_PORT", format!("expected a port number, got {p:?}"))
                })?),
            };
        let public_url = match given(&args.public_url) {
            None => format!("http://localhost:{port}"),
            Some(url) => url.trim_end_matches('/').to_owned(),
        };
        let public_origin = origin_of(&public_url).ok_or_else(|| {
            bad(
                "PUBLIC_URL",
                format!("expected an http(s) URL, got {public_url:?}"),
            )
        })?;
        let data_dir = PathBuf::from(or(&args.data_dir, DEFAULT_DATA_DIR));
        let event_store_url =
            given(&args.event_store_url).unwrap_or_else(|| sqlite_in(&data_dir, "events.db"));
        check_store_url("EVENT_STORE_URL", &event_store_url, true)?;
        let database_url =
            given(&args.database_url).unwrap_or_else(|| sqlite_in(&data_dir, "chat.db"));
        check_store_url("DATABASE_URL", &database_url, false)?;
        let nats_url = given(&args.nats_url);
        if let Some(url) = &nats_url {
            if !url.starts_with("nats://") && !url.starts_with("tls://") {
                return Err(bad("NATS_URL", format!("expected nats://…, got {url:?}")));
            }
        }
        let nats_prefix = or(&args.nats_prefix, DEFAULT_NATS_PREFIX);
        if !nats_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("NATS_PREFIX", "use letters, digits, '_' and '-' only"));
        }
        let keep = or(&args.nats_stream_max_events, DEFAULT_STREAM_MAX_EVENTS_TEXT);
        let nats_stream_max_events = match keep.parse::<u64>() {
            Ok(0) => None,
            Ok(n) if n <= i64::MAX as u64 => Some(n),
            _ => {
                return Err(bad(
                    "NATS_STREAM_MAX_EVENTS",
                    format!("expected a number of events (0: keep every event), got {keep:?}"),
                ))
            }
        };
        let smtp_url = given(&args.smtp_url);
        if let Some(url) = &smtp_url {
            if !url.starts_with("smtp://") && !url.starts_with("smtps://") {
                return Err(bad("SMTP_URL", "expected smtp://… or smtps://…"));
            }
        }
        let mail_from = or(&args.mail_from, DEFAULT_MAIL_FROM)
            .parse::<Mailbox>()
            .map_err(|e| bad("MAIL_FROM", format!("not a mailbox: {e}")))?;
        let auth_secret = match given(&args.auth_secret) {
            None => None,
            Some(s) if s.len() < 32 => return Err(bad("AUTH_SECRET", "must be at least 32 bytes")),
            Some(s) => Some(s.into_bytes()),
        };
        let audit_token = match given(&args.audit_token) {
            None => None,
            Some(t) if t.len() < 16 => return Err(bad("AUDIT_TOKEN", "must be at least 16 bytes")),
            Some(t) => Some(t),
        };
        let access_token_ttl = duration(
            "ACCESS_TOKEN_TTL",
            &or(&args.access_token_ttl, DEFAULT_ACCESS_TOKEN_TTL),
        )?;
        let refresh_token_ttl = duration(
            "REFRESH_TOKEN_TTL",
            &or(&args.refresh_token_ttl, DEFAULT_REFRESH_TOKEN_TTL),
        )?;
        let edit_window = duration(
            "EDIT_WINDOW",
            &or(&args.edit_window, DEFAULT_EDIT_WINDOW_TEXT),
        )?;
        let files_url = match given(&args.files_url) {
            None => data_dir.join("files").display().to_string(),
            Some(url) => url,
        };
        if let Some(rest) = files_url.strip_prefix("s3://") {
            if rest.split('/').next().unwrap_or_default().is_empty() {
                return Err(bad("FILES_URL", "expected s3://bucket[/prefix]"));
            }
        } else if files_url.contains("://") && !files_url.starts_with("file://") {
            return Err(bad(
                "FILES_URL",
                "expected a folder, file://… or s3://bucket[/prefix]",
            ));
        }
        let max = or(&args.file_max_bytes, DEFAULT_FILE_MAX_BYTES);
        let file_max_bytes = match max.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(bad(
                    "FILE_MAX_BYTES",
                    format!("expected a positive number of bytes, got {max:?}"),
                ))
            }
        };
        let allowed_origins = match given(&args.allowed_origins) {
            None => vec![public_origin],
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| {
                    origin_of(o)
                        .ok_or_else(|| bad("ALLOWED_ORIGINS", format!("not an origin: {o:?}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let auth_rate_limit = rate_limit(
            "AUTH_RATE_LIMIT",
            &or(&args.auth_rate_limit, DEFAULT_AUTH_RATE_LIMIT),
        )?;
        let abuse = AbuseLimits {
            sockets_per_user: count_limit(
                "SOCKETS_PER_USER",
                &or(&args.sockets_per_user, DEFAULT_SOCKETS_PER_USER),
            )?,
            sockets_per_address: count_limit(
                "SOCKETS_PER_ADDRESS",
                &or(&args.sockets_per_address, DEFAULT_SOCKETS_PER_ADDRESS),
            )?,
            creations: rate_limit(
                "CREATE_RATE_LIMIT",
                &or(&args.create_rate_limit, DEFAULT_CREATE_RATE_LIMIT),
            )?,
            searches: rate_limit(
                "SEARCH_RATE_LIMIT",
                &or(&args.search_rate_limit, DEFAULT_SEARCH_RATE_LIMIT),
            )?,
            additions: rate_limit(
                "ADD_MEMBER_RATE_LIMIT",
                &or(&args.add_member_rate_limit, DEFAULT_ADD_MEMBER_RATE_LIMIT),
            )?,
        };
        let web_client = match or(&args.web_client, DEFAULT_WEB_CLIENT).as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            other => {
                return Err(bad(
                    "WEB_CLIENT",
                    format!("expected on or off, got {other:?}"),
                ))
            }
        };
        let trust_proxy = match or(&args.trust_proxy, DEFAULT_TRUST_PROXY).as_str() {
            "false" | "0" => false,
            "true" | "1" => true,
            other => {
                return Err(bad(
                    "TRUST_PROXY",
                    format!("expected true or false, got {other:?}"),
                ))
            }
        };
        let metrics = match or(&args.metrics, DEFAULT_METRICS).as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            other => return Err(bad("METRICS", format!("expected on or off, got {other:?}"))),
        };
        let metrics_port =
            match given(&args.metrics_port) {
                None => None,
                Some(p) => Some(p.parse().map_err(|_| {
                    bad("METRICS_PORT", format!("expected a port number, got {p:?}"))
                })?),
            };
        let log_format = match or(&args.log_format, DEFAULT_LOG_FORMAT).as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ))
            }
        };
        let telemetry = Telemetry {
            metrics,
            metrics_port,
            log_format,
        };
        Ok(Self {
            host,
            port,
            public_url,
            data_dir,
            event_store_url,
            database_url,
            nats_url,
            nats_prefix,
            nats_stream_max_events,
            smtp_url,
            mail_from,
            auth_secret,
            access_token_ttl,
            refresh_token_ttl,
            edit_window,
            files_url,
            file_max_bytes,
            allowed_origins,
            auth_rate_limit,
            trust_proxy,
            web_client,
            audit_token,
            health_port,
            abuse,
            telemetry,
        })
    }

    /// Whether cookies get the `Secure` flag.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Whether a request's `Origin` header value is allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        origin_of(origin).is_some_and(|o| self.allowed_origins.contains(&o))
    }

    /// A gateway's settings beyond what every process needs: with `NATS_URL` set (several
    /// gateways), `AUTH_SECRET` is required, since a gateway that invented its own key would refuse
    /// every other gateway's tokens.
    pub fn check_gateway(&self) -> Result<(), SettingError> {
        if self.nats_url.is_some() && self.auth_secret.is_none() {
            return Err(bad(
                "AUTH_SECRET",
                "must be set when NATS_URL is: every gateway must sign tokens with the same key",
            ));
        }
        Ok(())
    }

    /// The token signing key: `AUTH_SECRET`, or 32 random bytes generated once into
    /// `DATA_DIR/auth_secret` (mode 0600) and reused on every start.
    pub fn load_or_create_auth_secret(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(secret) = &self.auth_secret {
            return Ok(secret.clone());
        }
        let path = self.data_dir.join("auth_secret");
        let engine = base64::engine::general_purpose::STANDARD;
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let secret = engine
                .decode(text.trim())
                .with_context(|| format!("{} is not base64", path.display()))?;
            anyhow::ensure!(
                secret.len() >= 32,
                "{} holds fewer than 32 bytes",
                path.display()
            );
            return Ok(secret);
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        write_private(&path, engine.encode(&secret).as_bytes())?;
        tracing::info!(path = %path.display(), "generated a new token signing secret");
        Ok(secret)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot create {}", path.display()))
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("public_url", &self.public_url)
            .field("data_dir", &self.data_dir)
            .field("event_store_url", &redact_url(&self.event_store_url))
            .field("database_url", &redact_url(&self.database_url))
            .field("nats_url", &self.nats_url.as_deref().map(redact_url))
            .field("nats_prefix", &self.nats_prefix)
            .field("nats_stream_max_events", &self.nats_stream_max_events)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field(
                "auth_secret",
                &self.auth_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("edit_window", &self.edit_window)
            .field("files_url", &self.files_url)
            .field("file_max_bytes", &self.file_max_bytes)
            .field("allowed_origins", &self.allowed_origins)
            .field("auth_rate_limit", &self.auth_rate_limit)
            .field("trust_proxy", &self.trust_proxy)
            .field("web_client", &self.web_client)
            .field(
                "audit_token",
                &self.audit_token.as_ref().map(|_| "<redacted>"),
            )
            .field("health_port", &self.health_port)
            .field("abuse", &self.abuse)
            .field("telemetry", &self.telemetry)
            .finish()
    }
}

/// `scheme://user:password@host…` → `scheme://user:<redacted>@host…`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<redacted>@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn sqlite_in(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

fn check_store_url(
    variable: &'static str,
    url: &str,
    event_store: bool,
) -> Result<(), SettingError> {
    let known = url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://");
    let esdb = event_store
        && (url.starts_with("esdb://")
            || url.starts_with("kurrentdb://")
            || url.starts_with("esdb+discover://"));
    if known || esdb {
        Ok(())
    } else {
        Err(bad(variable, "expected sqlite://… or postgres://…"))
    }
}

fn duration(variable: &'static str, text: &str) -> Result<Duration, SettingError> {
    let parsed = humantime::parse_duration(text).map_err(|_| {
        bad(
            variable,
            format!("expected a duration like 15m, got {text:?}"),
        )
    })?;
    if parsed.is_zero() {
        return Err(bad(variable, "must be longer than zero"));
    }
    Ok(parsed)
}

/// A count limit: a whole number, `0` for none.
fn count_limit(variable: &'static str, text: &str) -> Result<Option<u32>, SettingError> {
    match text.parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(bad(
            variable,
            format!("expected a whole number (0: no limit), got {text:?}"),
        )),
    }
}

fn rate_limit(variable: &'static str, text: &str) -> Result<RateLimit, SettingError> {
    let problem = || {
        bad(
            variable,
            format!("expected N/sec, N/min or N/hour, got {text:?}"),
        )
    };
    let (count, unit) = text.split_once('/').ok_or_else(problem)?;
    let count: u32 = count.trim().parse().map_err(|_| problem())?;
    if count == 0 {
        return Err(problem());
    }
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(problem()),
    };
    Ok(RateLimit { count, per })
}

/// `scheme://host[:port]` of an http(s) URL, lowercased, without path or trailing slash.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
        ("http", Some((host, "80"))) | ("https", Some((host, "443"))) => host.to_owned(),
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingError> {
        Settings::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn defaults_need_no_settings() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 3000));
        assert_eq!(s.public_url, "http://localhost:3000");
        assert_eq!(s.event_store_url, "sqlite://./data/events.db");
        assert_eq!(s.database_url, "sqlite://./data/chat.db");
        assert_eq!(s.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.refresh_token_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(s.edit_window, DEFAULT_EDIT_WINDOW);
        assert_eq!(
            settings(&[("EDIT_WINDOW", "15m")]).unwrap().edit_window,
            Duration::from_secs(900)
        );
        assert!(settings(&[("EDIT_WINDOW", "soon")]).is_err());
        assert_eq!(s.allowed_origins, vec!["http://localhost:3000".to_owned()]);
        assert_eq!(
            s.auth_rate_limit,
            RateLimit {
                count: 10,
                per: Duration::from_secs(60)
            }
        );
        assert!(!s.secure_cookies());
        assert!(!s.trust_proxy);
        assert!(s.web_client);
        assert!(!settings(&[("WEB_CLIENT", "off")]).unwrap().web_client);
        assert!(settings(&[("WEB_CLIENT", "maybe")]).is_err());
        assert_eq!(
            s.telemetry,
            Telemetry {
                metrics: true,
                metrics_port: None,
                log_format: LogFormat::Text
            }
        );
        assert_eq!(s.nats_stream_max_events, Some(DEFAULT_STREAM_MAX_EVENTS));
        for (value, keeps) in [("0", None), ("25", Some(25))] {
            let s = settings(&[("NATS_STREAM_MAX_EVENTS", value)]).unwrap();
            assert_eq!(s.nats_stream_max_events, keeps, "{value}");
        }
        assert_eq!(
            s.health_port, None,
            "no HTTP from the services unless asked"
        );
        assert_eq!(
            settings(&[("HEALTH_PORT", "0")]).unwrap().health_port,
            Some(0)
        );
    }

    /// Every variable the server reads, as the README's settings table lists them.
    const VARIABLES: [&str; 31] = [
        "HOST",
        "PORT",
        "HEALTH_PORT",
        "PUBLIC_URL",
        "DATA_DIR",
        "EVENT_STORE_URL",
        "DATABASE_URL",
        "NATS_URL",
        "NATS_PREFIX",
        "NATS_STREAM_MAX_EVENTS",
        "SMTP_URL",
        "MAIL_FROM",
        "AUTH_SECRET",
        "AUDIT_TOKEN",
        "ACCESS_TOKEN_TTL",
        "REFRESH_TOKEN_TTL",
        "EDIT_WINDOW",
        "ALLOWED_ORIGINS",
        "AUTH_RATE_LIMIT",
        "SOCKETS_PER_USER",
        "SOCKETS_PER_ADDRESS",
        "CREATE_RATE_LIMIT",
        "SEARCH_RATE_LIMIT",
        "ADD_MEMBER_RATE_LIMIT",
        "TRUST_PROXY",
        "WEB_CLIENT",
        "METRICS",
        "METRICS_PORT",
        "LOG_FORMAT",
        "FILES_URL",
        "FILE_MAX_BYTES",
    ];

    /// A binary's own command, before the settings join it.
    fn bare() -> clap::Command {
        clap::Command::new("server").version("1.2.3")
    }

    fn command() -> clap::Command {
        with_settings(bare())
    }

    #[test]
    fn help_lists_every_setting_with_its_variable_and_default() {
        let help = command().render_help().to_string();
        for variable in VARIABLES {
            assert!(
                help.contains(&format!("[env: {variable}")),
                "{variable}: {help}"
            );
        }
        for shown in [
            "--port <PORT>",
            "[default: 3000]",
            "[default: 1000000]",
            "[default: 1200/min]",
            "[default: http://localhost:$PORT]",
            "RUST_LOG",
        ] {
            assert!(help.contains(shown), "{shown}: {help}");
        }
        let args = command()
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .count();
        assert_eq!(
            args,
            VARIABLES.len(),
            "a setting missing from the list above"
        );
    }

    #[test]
    fn the_settings_leave_the_description_to_the_binary() {
        let help = with_settings(bare().about("What this binary is."))
            .render_help()
            .to_string();
        assert!(help.starts_with("What this binary is."), "{help}");
    }

    #[test]
    fn help_never_shows_a_value() {
        // What `[env: NAME=value]` would show when set: every setting's value is hidden.
        for arg in command().get_arguments() {
            if arg.get_env().is_some() {
                assert!(arg.is_hide_env_values_set(), "{:?}", arg.get_id());
            }
        }
    }

    #[test]
    fn the_fixed_defaults_are_the_constants() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            DEFAULT_STREAM_MAX_EVENTS_TEXT.parse::<u64>().ok(),
            Some(DEFAULT_STREAM_MAX_EVENTS)
        );
        let from_clap = Settings::from_command_line_args(bare(), ["server"]);
        // The process environment may set some; compare only when the command line alone decides.
        if VARIABLES.iter().all(|v| std::env::var_os(v).is_none()) {
            assert_eq!(format!("{:?}", from_clap.unwrap()), format!("{s:?}"));
        }
    }

    #[test]
    fn blank_values_count_as_unset() {
        let s = settings(&[("PORT", "  "), ("SOCKETS_PER_USER", ""), ("NATS_URL", " ")]).unwrap();
        assert_eq!(s.port, 3000);
        assert_eq!(s.abuse.sockets_per_user, Some(64));
        assert_eq!(s.nats_url, None);
        assert_eq!(settings(&[("PORT", " 8080 ")]).unwrap().port, 8080);
    }

    #[test]
    fn the_command_line_takes_flags_and_refuses_what_it_does_not_know() {
        let parse = |argv: &[&str]| Settings::from_command_line_args(bare(), argv.to_vec());
        let s = parse(&["server", "--port", "4000", "--sockets-per-user=0"]).unwrap();
        assert_eq!((s.port, s.abuse.sockets_per_user), (4000, None));
        let usage = |argv: &[&str]| match parse(argv) {
            Err(CommandLineError::Usage(e)) => e.kind(),
            other => panic!("{argv:?}: {other:?}"),
        };
        use clap::error::ErrorKind;
        assert_eq!(usage(&["server", "--help"]), ErrorKind::DisplayHelp);
        assert_eq!(usage(&["server", "--version"]), ErrorKind::DisplayVersion);
        assert_eq!(
            usage(&["server", "--no-such-setting"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(usage(&["server", "serve"]), ErrorKind::UnknownArgument);
        match parse(&["server", "--port", "http"]) {
            Err(CommandLineError::Setting(e)) => assert!(e.to_string().starts_with("PORT: ")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bad_value_names_its_variable_in_one_line() {
        for (var, value) in [
            ("PORT", "http"),
            ("ACCESS_TOKEN_TTL", "abc"),
            ("REFRESH_TOKEN_TTL", "0s"),
            ("AUTH_RATE_LIMIT", "ten"),
            ("AUTH_RATE_LIMIT", "0/min"),
            ("AUTH_SECRET", "short"),
            ("TRUST_PROXY", "maybe"),
            ("PUBLIC_URL", "ftp://x"),
            ("ALLOWED_ORIGINS", "nope"),
            ("EVENT_STORE_URL", "mysql://x"),
            ("DATABASE_URL", "esdb://x"),
            ("SMTP_URL", "mail.example.com"),
            ("MAIL_FROM", "not a mailbox"),
            ("NATS_URL", "http://x"),
            ("HEALTH_PORT", "8080x"),
            ("NATS_STREAM_MAX_EVENTS", "-1"),
            ("NATS_STREAM_MAX_EVENTS", "1e6"),
            ("NATS_STREAM_MAX_EVENTS", "18446744073709551615"),
            ("SOCKETS_PER_USER", "-3"),
            ("SOCKETS_PER_ADDRESS", "many"),
            ("CREATE_RATE_LIMIT", "5"),
            ("SEARCH_RATE_LIMIT", "0/sec"),
            ("ADD_MEMBER_RATE_LIMIT", "3/week"),
            ("METRICS", "maybe"),
            ("METRICS_PORT", "x"),
            ("LOG_FORMAT", "xml"),
        ] {
            let message = settings(&[(var, value)]).unwrap_err().to_string();
            assert!(message.starts_with(&format!("{var}: ")), "{message}");
            assert!(!message.contains('\n'));
        }
    }

    #[test]
    fn abuse_limits_have_defaults_and_zero_lifts_a_count() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.abuse.sockets_per_user, Some(64));
        assert_eq!(s.abuse.sockets_per_address, Some(1024));
        assert_eq!(s.abuse.searches.count, 60);
        let s = settings(&[
            ("SOCKETS_PER_USER", "2"),
            ("SOCKETS_PER_ADDRESS", "0"),
            ("CREATE_RATE_LIMIT", "3/sec"),
        ])
        .unwrap();
        assert_eq!(s.abuse.sockets_per_user, Some(2));
        assert_eq!(s.abuse.sockets_per_address, None);
        assert_eq!(
            s.abuse.creations,
            RateLimit {
                count: 3,
                per: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn a_gateway_of_several_needs_the_shared_secret() {
        let nats = ("NATS_URL", "nats://127.0.0.1:4222");
        let message = settings(&[nats])
            .unwrap()
            .check_gateway()
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("AUTH_SECRET: "), "{message}");
        let secret = ("AUTH_SECRET", "0123456789abcdef0123456789abcdef");
        assert!(settings(&[nats, secret]).unwrap().check_gateway().is_ok());
        assert!(settings(&[]).unwrap().check_gateway().is_ok(), "all-in-one");
    }

    #[test]
    fn origins_are_normalized() {
        let s = settings(&[(
            "ALLOWED_ORIGINS",
            "https://Chat.Example.com/, http://localhost:5173",
        )])
        .unwrap();
        assert!(s.origin_allowed("https://chat.example.com"));
        assert!(s.origin_allowed("https://chat.example.com:443"));
        assert!(s.origin_allowed("http://localhost:5173"));
        assert!(!s.origin_allowed("http://evil.test"));
        assert!(!s.origin_allowed("null"));
    }

    #[test]
    fn https_public_url_turns_on_secure_cookies() {
        assert!(settings(&[("PUBLIC_URL", "https://chat.example.com")])
            .unwrap()
            .secure_cookies());
    }

    #[test]
    fn the_secret_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&[("DATA_DIR", dir.path().to_str().unwrap())]).unwrap();
        let first = s.load_or_create_auth_secret().unwrap();
        let second = s.load_or_create_auth_secret().unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("auth_secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = settings(&[
            ("AUTH_SECRET", "0123456789abcdef0123456789abcdef-secret"),
            ("DATABASE_URL", "postgres://app:hunter2@db/chat"),
            ("SMTP_URL", "smtp://mailer:pa55@smtp.example.com:587"),
        ])
        .unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2") && !text.contains("pa55") && !text.contains("-secret"));
    }
}
