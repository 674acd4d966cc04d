//! Configuration: one struct, read once from the environment (and `.env`), validated at start with
//! a one-line error naming the bad setting (PROTOCOL.md §1).

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
    /// Normalized origins (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    pub auth_rate_limit: RateLimit,
    pub trust_proxy: bool,
    /// The bearer token of the audit routes; `None`: the routes do not exist.
    pub audit_token: Option<String>,
    /// Where the command-service and the projection-service answer `/health` and `/ready` (on
    /// `HOST`); `None`: they serve no HTTP. The gateway answers both on `PORT`.
    pub health_port: Option<u16>,
}

impl Settings {
    /// Reads `.env` (if present) and the process environment.
    pub fn from_env() -> Result<Self, SettingError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables only (for tests).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingError> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let host = get("HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = match get("PORT") {
            None => 3000,
            Some(p) => p
                .parse()
                .map_err(|_| bad("PORT", format!("expected a port number, got {p:?}")))?,
        };
        let health_port =
            match get("HEALTH_PORT") {
                None => None,
                Some(p) => Some(p.parse().map_err(|_| {
                    bad("HEALTH_PORT", format!("expected a port number, got {p:?}"))
                })?),
            };
        let public_url = match get("PUBLIC_URL") {
            None => format!("http://localhost:{port}"),
            Some(url) => url.trim_end_matches('/').to_owned(),
        };
        let public_origin = origin_of(&public_url).ok_or_else(|| {
            bad(
                "PUBLIC_URL",
                format!("expected an http(s) URL, got {public_url:?}"),
            )
        })?;
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".to_owned()));
        let event_store_url =
            get("EVENT_STORE_URL").unwrap_or_else(|| sqlite_in(&data_dir, "events.db"));
        check_store_url("EVENT_STORE_URL", &event_store_url, true)?;
        let database_url = get("DATABASE_URL").unwrap_or_else(|| sqlite_in(&data_dir, "chat.db"));
        check_store_url("DATABASE_URL", &database_url, false)?;
        let nats_url = get("NATS_URL");
        if let Some(url) = &nats_url {
            if !url.starts_with("nats://") && !url.starts_with("tls://") {
                return Err(bad("NATS_URL", format!("expected nats://…, got {url:?}")));
            }
        }
        let nats_prefix = get("NATS_PREFIX").unwrap_or_else(|| "chat".to_owned());
        if !nats_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("NATS_PREFIX", "use letters, digits, '_' and '-' only"));
        }
        let nats_stream_max_events = match get("NATS_STREAM_MAX_EVENTS") {
            None => Some(DEFAULT_STREAM_MAX_EVENTS),
            Some(n) => match n.parse::<u64>() {
                Ok(0) => None,
                Ok(n) if n <= i64::MAX as u64 => Some(n),
                _ => {
                    return Err(bad(
                        "NATS_STREAM_MAX_EVENTS",
                        format!("expected a number of events (0: keep every event), got {n:?}"),
                    ))
                }
            },
        };
        let smtp_url = get("SMTP_URL");
        if let Some(url) = &smtp_url {
            if !url.starts_with("smtp://") && !url.starts_with("smtps://") {
                return Err(bad("SMTP_URL", "expected smtp://… or smtps://…"));
            }
        }
        let mail_from = get("MAIL_FROM")
            .unwrap_or_else(|| "ExpressChat <no-reply@localhost>".to_owned())
            .parse::<Mailbox>()
            .map_err(|e| bad("MAIL_FROM", format!("not a mailbox: {e}")))?;
        let auth_secret = match get("AUTH_SECRET") {
            None => None,
            Some(s) if s.len() < 32 => return Err(bad("AUTH_SECRET", "must be at least 32 bytes")),
            Some(s) => Some(s.into_bytes()),
        };
        let audit_token = match get("AUDIT_TOKEN") {
            None => None,
            Some(t) if t.len() < 16 => return Err(bad("AUDIT_TOKEN", "must be at least 16 bytes")),
            Some(t) => Some(t),
        };
        let access_token_ttl = duration("ACCESS_TOKEN_TTL", get("ACCESS_TOKEN_TTL"), "15m")?;
        let refresh_token_ttl = duration("REFRESH_TOKEN_TTL", get("REFRESH_TOKEN_TTL"), "30d")?;
        let allowed_origins = match get("ALLOWED_ORIGINS") {
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
        let auth_rate_limit = rate_limit(get("AUTH_RATE_LIMIT").as_deref().unwrap_or("10/min"))?;
        let trust_proxy = match get("TRUST_PROXY").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(bad(
                    "TRUST_PROXY",
                    format!("expected true or false, got {other:?}"),
                ))
            }
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
            allowed_origins,
            auth_rate_limit,
            trust_proxy,
            audit_token,
            health_port,
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
            .field("allowed_origins", &self.allowed_origins)
            .field("auth_rate_limit", &self.auth_rate_limit)
            .field("trust_proxy", &self.trust_proxy)
            .field(
                "audit_token",
                &self.audit_token.as_ref().map(|_| "<redacted>"),
            )
            .field("health_port", &self.health_port)
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

fn duration(
    variable: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<Duration, SettingError> {
    let text = value.unwrap_or_else(|| default.to_owned());
    let parsed = humantime::parse_duration(&text).map_err(|_| {
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

fn rate_limit(text: &str) -> Result<RateLimit, SettingError> {
    let problem = || {
        bad(
            "AUTH_RATE_LIMIT",
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
        ] {
            let message = settings(&[(var, value)]).unwrap_err().to_string();
            assert!(message.starts_with(&format!("{var}: ")), "{message}");
            assert!(!message.contains('\n'));
        }
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
