//! Accounts for the load, made through the server's real signup flow: `POST /signup`, the code read
//! from the verification mail (an SMTP sink this process runs, or the server's outbox directory),
//! `GET /verify?…&source=app` for the tokens. Signup hashes a password on the server, so making
//! many accounts takes time; `--accounts FILE` keeps them for the next run against the same server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::progress;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub email: String,
    pub password: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "accessToken")]
    pub access_token: String,
    #[serde(rename = "refreshToken")]
    pub refresh_token: String,
}

impl Account {
    /// The handshake `auth` payload (docs/api.md, "Handshake").
    pub fn auth(&self) -> Value {
        json!({"accessToken": self.access_token, "refreshToken": self.refresh_token})
    }
}

/// Verification codes by recipient, filled by the SMTP sink or read from an outbox directory.
#[derive(Clone)]
pub enum Mailbox {
    Sink(Arc<SinkState>),
    Outbox(PathBuf),
}

#[derive(Default)]
pub struct SinkState {
    codes: Mutex<HashMap<String, String>>,
    arrived: Notify,
}

/// The six-digit code of a verification mail: the `token=` of its link, in plain or
/// quoted-printable text.
pub fn code_in(mail: &str) -> Option<String> {
    let unfolded = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let at = unfolded.find("token=")? + "token=".len();
    let code: String = unfolded[at..].chars().take(6).collect();
    (code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())).then_some(code)
}

impl Mailbox {
    /// Runs an SMTP sink on `addr` (point the server's `SMTP_URL` at `smtp://ADDR`).
    pub async fn sink(addr: &str) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("SMTP sink on {addr}"))?;
        let state = Arc::new(SinkState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = smtp_session(conn, &state).await;
                });
            }
        });
        Ok(Mailbox::Sink(state))
    }

    async fn code_for(&self, email: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self {
                Mailbox::Sink(state) => {
                    let notified = state.arrived.notified();
                    if let Some(code) = state
                        .codes
                        .lock()
                        .map_err(|_| anyhow!("mailbox poisoned"))?
                        .remove(email)
                    {
                        return Ok(code);
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        bail!("no verification mail for {email} within {timeout:?}");
                    }
                }
                Mailbox::Outbox(dir) => {
                    if let Some(code) = outbox_code(dir, email).await? {
                        return Ok(code);
                    }
                    if tokio::time::Instant::now() > deadline {
                        bail!("no verification mail for {email} in {}", dir.display());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

async fn outbox_code(dir: &Path, email: &str) -> Result<Option<String>> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .with_context(|| format!("reading the outbox {}", dir.display()))?;
    while let Some(entry) = entries.next_entry().await? {
        let text = tokio::fs::read_to_string(entry.path())
            .await
            .unwrap_or_default();
        let to_line = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("to:"))
            .unwrap_or("");
        if to_line.contains(email) {
            if let Some(code) = code_in(&text) {
                return Ok(Some(code));
            }
        }
    }
    Ok(None)
}

/// Just enough SMTP to take a message: every command answered 250, DATA up to the lone dot.
async fn smtp_session(conn: tokio::net::TcpStream, state: &SinkState) -> Result<()> {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 loadgen SMTP sink\r\n").await?;
    let mut recipients: Vec<String> = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write.write_all(b"250-loadgen\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let addr = line[8..].trim().trim_start_matches('<');
            let addr = addr.split('>').next().unwrap_or("").to_string();
            recipients.push(addr);
            write.write_all(b"250 ok\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go on\r\n").await?;
            let mut body = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                body.push_str(&l);
                body.push_str("\r\n");
            }
            if let Some(code) = code_in(&body) {
                let mut codes = state.codes.lock().map_err(|_| anyhow!("poisoned"))?;
                for r in recipients.drain(..) {
                    codes.insert(r, code.clone());
                }
            }
            state.arrived.notify_waiters();
            write.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            break;
        } else if upper.starts_with("RSET") {
            recipients.clear();
            write.write_all(b"250 ok\r\n").await?;
        } else {
            write.write_all(b"250 ok\r\n").await?;
        }
    }
    Ok(())
}

/// Makes accounts over HTTP against the servers in `bases` (taken in turn).
pub struct Signup {
    pub http: reqwest::Client,
    pub bases: Vec<String>,
    pub mailbox: Mailbox,
    pub concurrency: usize,
    pub run_tag: String,
}

impl Signup {
    async fn one(&self, i: usize) -> Result<Account> {
        let base = &self.bases[i % self.bases.len()];
        let name = format!("lg{}u{i}", self.run_tag);
        let email = format!("{name}@loadgen.test");
        let password = format!("loadgen-{}-{i}", self.run_tag);
        let r = self
            .http
            .post(format!("{base}/signup"))
            .json(&json!({"name": name, "email": email, "password": password}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "signup of {email}: HTTP {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let code = self
            .mailbox
            .code_for(&email, Duration::from_secs(60))
            .await?;
        let r = self
            .http
            .get(format!("{base}/verify"))
            .query(&[
                ("email", email.as_str()),
                ("token", code.as_str()),
                ("source", "app"),
            ])
            .header("Accept", "application/json")
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("verify of {email}: HTTP {status} {body}");
        }
        let field = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| anyhow!("verify of {email} answered without {k}: {body}"))
        };
        Ok(Account {
            user_id: field("userId")?,
            access_token: field("accessToken")?,
            refresh_token: field("refreshToken")?,
            name,
            email,
            password,
        })
    }

    /// `n` accounts: those in `cache` (a JSON-lines file from an earlier run against the same
    /// server) first, the rest signed up now and appended to it.
    pub async fn accounts(&self, n: usize, cache: Option<&Path>) -> Result<Vec<Account>> {
        let mut have: Vec<Account> = Vec::new();
        if let Some(path) = cache {
            if let Ok(text) = tokio::fs::read_to_string(path).await {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    have.push(serde_json::from_str(line).context("reading the accounts file")?);
                }
            }
        }
        have.truncate(n);
        let missing = n - have.len();
        if missing == 0 {
            return Ok(have);
        }
        let bar = progress::bar(missing as u64, "signing up");
        let offset = have.len();
        let made: Vec<Account> = stream::iter(0..missing)
            .map(|i| {
                let bar = bar.clone();
                async move {
                    let a = self.one(offset + i).await;
                    bar.inc(1);
                    a
                }
            })
            .buffer_unordered(self.concurrency.max(1))
            .try_collect()
            .await?;
        bar.finish_and_clear();
        if let Some(path) = cache {
            let mut lines = String::new();
            for a in &made {
                lines.push_str(&serde_json::to_string(a)?);
                lines.push('\n');
            }
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await?;
            f.write_all(lines.as_bytes()).await?;
        }
        have.extend(made);
        Ok(have)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_in_plain_and_quoted_printable_mail() {
        assert_eq!(
            code_in("see http://x/verify?email=a&token=123456&source=web").as_deref(),
            Some("123456")
        );
        assert_eq!(
            code_in("http://x/verify?email=3Da&token=3D65=\r\n4321").as_deref(),
            Some("654321")
        );
        assert_eq!(code_in("token=12ab56"), None);
        assert_eq!(code_in("no link"), None);
    }
}
