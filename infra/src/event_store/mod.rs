//! The event store port: one trait, several backends, one contract suite (`tests/event_store_contract.rs`).
//!
//! Vocabulary follows EventStoreDB: a stream has a *version* (revision, 0-based); the global log
//! has *positions* that strictly increase in commit order (not necessarily contiguously). The trait is
//! shaped so that an EventStoreDB/KurrentDB backend (the `eventstore` crate) fits it unchanged:
//! `append` maps to `append_to_stream` with an `ExpectedRevision`, `read_stream` to `read_stream`,
//! `read_all`/`subscribe_all` to `read_all`/`subscribe_to_all` from a commit position.

use async_trait::async_trait;
use events_schema::{NewEvent, Position, RecordedEvent};
use futures::stream::BoxStream;
use thiserror::Error;

pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use crate::db::DbKind;

/// Opens the event store named by `EVENT_STORE_URL`, running its migrations.
pub async fn open_event_store(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    match DbKind::of_url(url) {
        Some(DbKind::Sqlite) => Ok(sqlite::open(url).await?),
        Some(DbKind::Postgres) => Ok(postgres::open(url).await?),
        None if url.starts_with("esdb") || url.starts_with("kurrentdb") => {
            anyhow::bail!("EVENT_STORE_URL: the EventStoreDB/KurrentDB backend is not built into this version; use sqlite:// or postgres://")
        }
        None => anyhow::bail!("EVENT_STORE_URL: expected sqlite://… or postgres://…"),
    }
}

/// What the writer expects the stream's current version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version.
    Exact(u64),
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Version of the last appended event.
    pub version: u64,
    /// Position of the last appended event.
    pub position: Position,
}

/// Why the store refused or failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The stream was not at the expected version; nothing was written.
    #[error("stream {stream} is at {actual:?}, expected {expected:?}")]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        /// `None` when the stream does not exist.
        actual: Option<u64>,
    },
    /// An append with no events.
    #[error("an append needs at least one event")]
    EmptyAppend,
    /// The backend failed (I/O, connection, corrupt row); nothing is known to be written.
    #[error("event store backend: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Whose history an audit reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSubject {
    /// Every event of one stream (a chat's whole life).
    Stream(String),
    /// Every event whose acting user is this one, in any stream.
    Actor(String),
}

/// A page of an audit: events after a position, optionally only within a time range and of one
/// type, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub subject: AuditSubject,
    pub after: Position,
    pub limit: usize,
    /// Only events that occurred at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events that occurred before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events of this type.
    pub event_type: Option<String>,
}

/// The event store.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically (all or none), if the stream is at `expected`.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Reads up to `max` events of `stream` with version ≥ `from_version`, in version order.
    /// A stream that does not exist reads as empty.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `max` events of the global log with position > `after`, in position order.
    async fn read_all(&self, after: Position, max: usize)
        -> Result<Vec<RecordedEvent>, StoreError>;

    /// A page of history (see [`AuditQuery`]): at most `limit` events, in position order. A page
    /// costs the same however long the history before it (EventStoreDB: a stream read, or the
    /// `$by-actor` style projection, filtered).
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last event in the log (0 when empty).
    async fn head(&self) -> Result<Position, StoreError>;

    /// Follows the global log from `after`: first every stored event after it, then each new event
    /// as it is committed, in position order, forever. An error ends the stream; the caller resumes
    /// from the last position it saw.
    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>>;

    /// A short name of the backend, for logs and `/ready`.
    fn backend(&self) -> &'static str;

    /// Checks the backend answers (for `/ready`).
    async fn ping(&self) -> Result<(), StoreError>;
}
