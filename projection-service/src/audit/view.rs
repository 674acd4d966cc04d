//! The shape of an audit: what the HTTP routes answer and the command line prints, the same for
//! both. Events come from the event store itself (never from a read model), upcast to the current
//! schema of their type.

use chrono::{DateTime, SecondsFormat, Utc};
use events_schema::{Position, RecordedEvent};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use infra::{AuditQuery, AuditSubject};

/// Events per page when the caller does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most events one page may hold.
pub const MAX_LIMIT: usize = 1000;

/// One event as an auditor sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub position: Position,
    pub stream: String,
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339, milliseconds, UTC.
    pub occurred_at: String,
    pub actor: Option<String>,
    pub correlation_id: String,
    /// The event's data in the current schema of its type (older versions upcast). An event this
    /// version cannot read is shown as stored.
    pub data: Value,
}

impl From<&RecordedEvent> for AuditEvent {
    fn from(event: &RecordedEvent) -> Self {
        let data =
            events_schema::events::upcast(&event.event_type, event.schema_version, &event.payload)
                .unwrap_or_else(|_| {
                    serde_json::from_str(&event.payload)
                        .unwrap_or(Value::String(event.payload.clone()))
                });
        Self {
            position: event.position,
            stream: event.stream.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            occurred_at: event
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            actor: event.actor.clone(),
            correlation_id: event.correlation_id.to_string(),
            data,
        }
    }
}

/// A page: its events and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next: Option<Position>,
}

impl AuditPage {
    /// The page of `events` read with `limit`: a full page may have more after it.
    pub fn new(events: &[RecordedEvent], limit: usize) -> Self {
        let next = if events.len() >= limit {
            events.last().map(|e| e.position)
        } else {
            None
        };
        Self {
            events: events.iter().map(AuditEvent::from).collect(),
            next,
        }
    }
}

/// Why an audit request is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuditParamError {
    #[error("`{0}` must be a non-negative integer")]
    NotANumber(&'static str),
    #[error("`limit` must be between 1 and {MAX_LIMIT}")]
    Limit,
    #[error("`{0}` must be an RFC 3339 time, e.g. 2026-11-27T10:00:00Z")]
    Time(&'static str),
    #[error("`type` must be an event type name")]
    Type,
    #[error("`since` must be before `until`")]
    Range,
}

/// The parameters of an audit request, as text (query string or command line).
#[derive(Debug, Default, Clone)]
pub struct AuditParams {
    pub after: Option<String>,
    pub limit: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub event_type: Option<String>,
}

impl AuditParams {
    /// Checks every parameter and builds the store query for `subject`.
    pub fn query(&self, subject: AuditSubject) -> Result<AuditQuery, AuditParamError> {
        let number = |name: &'static str, raw: &Option<String>| {
            raw.as_deref()
                .map(|s| {
                    s.trim()
                        .parse::<u64>()
                        .map_err(|_| AuditParamError::NotANumber(name))
                })
                .transpose()
        };
        let time = |name: &'static str, raw: &Option<String>| {
            raw.as_deref()
                .map(|s| {
                    DateTime::parse_from_rfc3339(s.trim())
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| AuditParamError::Time(name))
                })
                .transpose()
        };
        let after = number("after", &self.after)?.unwrap_or(0);
        let limit = match number("limit", &self.limit)? {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
            Some(_) => return Err(AuditParamError::Limit),
        };
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since, until) {
            if since >= until {
                return Err(AuditParamError::Range);
            }
        }
        let event_type = match self.event_type.as_deref().map(str::trim) {
            None => None,
            Some(t)
                if !t.is_empty()
                    && t.len() <= 64
                    && t.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Some(t.to_owned())
            }
            Some(_) => return Err(AuditParamError::Type),
        };
        Ok(AuditQuery {
            subject,
            after,
            limit,
            since,
            until,
            event_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> AuditParams {
        let mut p = AuditParams::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "after" => p.after = v,
                "limit" => p.limit = v,
                "since" => p.since = v,
                "until" => p.until = v,
                "type" => p.event_type = v,
                _ => unreachable!(),
            }
        }
        p
    }

    #[test]
    fn defaults_and_bounds() {
        let q = params(&[]).query(AuditSubject::Actor("u".into())).unwrap();
        assert_eq!(
            (q.after, q.limit, q.since, q.until, q.event_type),
            (0, 100, None, None, None)
        );
        let s = || AuditSubject::Stream("chat-x".into());
        assert_eq!(params(&[("limit", "1000")]).query(s()).unwrap().limit, 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert!(params(&[("limit", bad)]).query(s()).is_err(), "{bad}");
        }
        assert_eq!(
            params(&[("after", "x")]).query(s()),
            Err(AuditParamError::NotANumber("after"))
        );
        assert_eq!(
            params(&[("since", "yesterday")]).query(s()),
            Err(AuditParamError::Time("since"))
        );
        assert_eq!(
            params(&[
                ("since", "2026-11-27T10:00:00Z"),
                ("until", "2026-11-27T09:00:00+00:00")
            ])
            .query(s()),
            Err(AuditParamError::Range)
        );
        assert_eq!(
            params(&[("type", "Message Sent")]).query(s()),
            Err(AuditParamError::Type)
        );
        let q = params(&[
            ("type", "MessageSent"),
            ("since", "2026-11-27T11:00:00+01:00"),
        ])
        .query(s())
        .unwrap();
        assert_eq!(q.event_type.as_deref(), Some("MessageSent"));
        assert_eq!(q.since.unwrap().to_rfc3339(), "2026-11-27T10:00:00+00:00");
    }

    #[test]
    fn old_events_are_shown_upcast_and_pages_say_where_to_go_on() {
        let fixture = events_schema::fixtures::v1_personal_chat();
        let page = AuditPage::new(&fixture[..6], 6);
        assert_eq!(page.next, Some(fixture[5].position));
        let sent = &page.events[5];
        assert_eq!(
            (sent.event_type.as_str(), sent.data["format"].as_str()),
            ("MessageSent", Some("text"))
        );
        assert_eq!(sent.occurred_at, "2026-11-01T10:00:06.000Z");
        assert_eq!(AuditPage::new(&fixture, 100).next, None);
    }
}
