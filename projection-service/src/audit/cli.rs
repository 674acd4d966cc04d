//! `projection-service audit`: the history of a chat or of a user, read from the event store
//! directly (no server needs to run), printed as JSON lines (the HTTP audit's event shape) or as
//! a table.

use std::io::Write;

use super::view::{AuditEvent, AuditParams, MAX_LIMIT};
use events_schema::{streams, ChatId, UserId};
use infra::{AuditSubject, EventStore};

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Jsonl,
}

/// Whose history.
pub enum Whose {
    Chat(String),
    User(String),
}

/// Prints every event of the history (after `params.after`, filtered), at most `params.limit`
/// when given, page by page, so memory stays flat however long the history.
pub async fn print(
    store: &dyn EventStore,
    whose: Whose,
    mut params: AuditParams,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let subject = match whose {
        Whose::Chat(id) => AuditSubject::Stream(streams::chat(
            &ChatId::parse(&id).map_err(|_| anyhow::anyhow!("not a chat id: {id:?}"))?,
        )),
        Whose::User(id) => AuditSubject::Actor(
            UserId::parse(&id)
                .map_err(|_| anyhow::anyhow!("not a user id: {id:?}"))?
                .to_string(),
        ),
    };
    let wanted = params
        .limit
        .take()
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--limit must be a number"))
        })
        .transpose()?;
    let mut query = params.query(subject)?;
    let mut printed = 0;
    if format == Format::Table {
        writeln!(
            out,
            "{:>10}  {:<24}  {:<20}  {:<36}  {:>7}  data",
            "position", "occurred at", "type", "actor", "version"
        )?;
    }
    loop {
        query.limit = match wanted {
            Some(w) => (w - printed).min(MAX_LIMIT),
            None => MAX_LIMIT,
        };
        if query.limit == 0 {
            break;
        }
        let page = store.audit(&query).await?;
        for event in &page {
            let shown = AuditEvent::from(event);
            match format {
                Format::Jsonl => writeln!(out, "{}", serde_json::to_string(&shown)?)?,
                Format::Table => writeln!(
                    out,
                    "{:>10}  {:<24}  {:<20}  {:<36}  {:>7}  {}",
                    shown.position,
                    shown.occurred_at,
                    shown.event_type,
                    shown.actor.as_deref().unwrap_or("-"),
                    shown.version,
                    serde_json::to_string(&shown.data)?
                )?,
            }
        }
        printed += page.len();
        match page.last() {
            Some(last) if page.len() == query.limit => query.after = last.position,
            _ => break,
        }
    }
    out.flush()?;
    Ok(printed)
}
