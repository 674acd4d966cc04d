//! Verification mail through lettre: SMTP when `SMTP_URL` is set, else an outbox directory.
//! A slow or failing SMTP server never holds a request for more than a few seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use thiserror::Error;

use crate::config::Settings;

/// How long one SMTP connection attempt may take.
const SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole send may take, whatever the server does.
const SMTP_SEND_TIMEOUT: Duration = Duration::from_secs(8);

/// Why a mail was not sent. Messages never carry credentials.
#[derive(Debug, Error)]
pub enum MailError {
    #[error("invalid address")]
    InvalidAddress,
    #[error("the mail server did not answer in time")]
    Timeout,
    #[error("mail transport: {0}")]
    Transport(String),
    #[error("mail outbox: {0}")]
    Io(String),
}

/// A mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to_email: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where mail goes.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
    /// A short name for logs (`smtp`, `outbox`).
    fn describe(&self) -> &'static str;
}

/// The verification mail: the link `PUBLIC_URL/verify?email=…&token=NNNNNN` and the code, as text
/// and as HTML.
pub struct VerificationMail;

impl VerificationMail {
    pub fn build(public_url: &str, email: &str, name: &str, code: &str) -> OutgoingMail {
        let link = format!(
            "{}/verify?email={}&token={}",
            public_url.trim_end_matches('/'),
            percent_encode(email),
            code
        );
        let text = format!(
            "Hello {name},\r\n\r\nConfirm your e-mail address by opening this link:\r\n{link}\r\n\r\n\
             or enter this code in the app: {code}\r\n\r\nThe code expires in 10 minutes. \
             If you did not sign up, ignore this mail.\r\n"
        );
        let html = format!(
            "<!doctype html><html><body><p>Hello {name},</p>\
             <p>Confirm your e-mail address: <a href=\"{href}\">verify my address</a></p>\
             <p>or enter this code in the app: <strong>{code}</strong></p>\
             <p>The code expires in 10 minutes. If you did not sign up, ignore this mail.</p>\
             <p style=\"color:#888\">{href}</p></body></html>",
            name = html_escape(name),
            href = html_escape(&link),
        );
        OutgoingMail {
            to_email: email.to_owned(),
            to_name: name.to_owned(),
            subject: format!("Your verification code: {code}"),
            text,
            html,
        }
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to = Mailbox::new(
        Some(mail.to_name.clone()),
        mail.to_email
            .parse()
            .map_err(|_| MailError::InvalidAddress)?,
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(mail.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(mail.html.clone()),
                ),
        )
        .map_err(|e| MailError::Transport(e.to_string()))
}

/// `a…@example.com`, for logs.
fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}…@{domain}", local.chars().next().unwrap_or('?')),
        None => "…".to_owned(),
    }
}

/// Sends through an SMTP server (lettre's URL syntax).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Mailbox) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("SMTP_URL: not a valid SMTP URL")?
            .timeout(Some(SMTP_CONNECT_TIMEOUT))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = message(&self.from, mail)?;
        let sent = match tokio::time::timeout(SMTP_SEND_TIMEOUT, self.transport.send(message)).await
        {
            Err(_) => Err(MailError::Timeout),
            Ok(Err(e)) => Err(MailError::Transport(e.to_string())),
            Ok(Ok(_)) => {
                tracing::info!(to = %mask(&mail.to_email), "mail sent over SMTP");
                Ok(())
            }
        };
        let outcome = if sent.is_ok() { "sent" } else { "failed" };
        metrics::counter!(crate::telemetry::names::MAILS, "outcome" => outcome).increment(1);
        sent
    }

    fn describe(&self) -> &'static str {
        "smtp"
    }
}

/// Writes each mail as an `.eml` file (development and tests without a mail server).
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> Self {
        Self { dir, from }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let formatted = message(&self.from, mail)?.formatted();
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::Io(e.to_string()))?;
        let name = format!(
            "{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            uuid::Uuid::new_v4().simple()
        );
        let path = self.dir.join(name);
        tokio::fs::write(&path, formatted)
            .await
            .map_err(|e| MailError::Io(e.to_string()))?;
        tracing::info!(to = %mask(&mail.to_email), path = %path.display(), "verification mail written to the outbox");
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "outbox"
    }
}

/// The mailer the settings ask for.
pub fn mailer_from_settings(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match &settings.smtp_url {
        Some(url) => Arc::new(SmtpMailer::new(url, settings.mail_from.clone())?),
        None => Arc::new(OutboxMailer::new(
            settings.data_dir.join("outbox"),
            settings.mail_from.clone(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_has_the_link_and_the_code_in_both_parts() {
        let mail = VerificationMail::build(
            "http://localhost:3000/",
            "a+b@example.com",
            "<Ada>",
            "012345",
        );
        let link = "http://localhost:3000/verify?email=a%2Bb%40example.com&token=012345";
        assert!(mail.text.contains(link) && mail.text.contains("012345"));
        assert!(
            mail.html.contains(&link.replace('&', "&amp;")) && mail.html.contains("&lt;Ada&gt;")
        );
        assert!(!mail.html.contains("<Ada>"));
    }

    #[test]
    fn masked_addresses_hide_the_local_part() {
        assert_eq!(mask("ada@example.com"), "a…@example.com");
    }
}
