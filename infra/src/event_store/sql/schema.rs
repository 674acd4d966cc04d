//! The `events` table (migrations/events/<backend>): how its migrations run, which columns a read
//! selects, how an event becomes a row and a row an event. Times are stored as milliseconds, ids
//! as text.

use chrono::DateTime;
use events_schema::{NewEvent, Position, RecordedEvent};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};
use uuid::Uuid;

use crate::event_store::StoreError;

/// Runs a backend's `migrations` through `setup`, a pool of that backend's own driver (the store
/// itself then runs on `Any`), then closes it.
pub(in crate::event_store) async fn migrate<DB>(
    setup: sqlx::Pool<DB>,
    migrations: &sqlx::migrate::Migrator,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
{
    let done = crate::db::run_migrations(migrations, &setup)
        .await
        .map_err(|e| StoreError::Backend(format!("migration: {e}")));
    setup.close().await;
    done
}

/// What reads select, in the shape [`decode`] takes.
pub(super) const COLUMNS: &str = "position, event_id, stream, version, event_type, \
     CAST(schema_version AS BIGINT) AS schema_version, occurred_at, actor, correlation_id, causation_id, payload, trace_parent";

/// The start of an INSERT of whole rows; the values follow, [`ROW_VALUES`] per row, bound by
/// [`bind_row`].
pub(super) const INSERT: &str = "INSERT INTO events (position, event_id, stream, version, \
     event_type, schema_version, occurred_at, actor, correlation_id, causation_id, payload, trace_parent) VALUES ";

/// Values per row of [`INSERT`].
pub(super) const ROW_VALUES: usize = 12;

/// One event about to be written: which event of which append, at which version and position.
pub(super) struct NewRow<'a> {
    pub stream: &'a str,
    pub event: &'a NewEvent,
    pub version: i64,
    pub position: i64,
}

/// Binds the [`ROW_VALUES`] values of `row`, in [`INSERT`]'s column order.
pub(super) fn bind_row<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    row: &NewRow<'q>,
) -> Query<'q, Any, AnyArguments<'q>> {
    let event = row.event;
    query
        .bind(row.position)
        .bind(event.event_id.to_string())
        .bind(row.stream)
        .bind(row.version)
        .bind(&event.event_type)
        .bind(i64::from(event.schema_version) as i32)
        .bind(event.occurred_at.timestamp_millis())
        .bind(event.metadata.actor.clone())
        .bind(event.metadata.correlation_id.to_string())
        .bind(event.metadata.causation_id.map(|id| id.to_string()))
        .bind(&event.payload)
        .bind(event.metadata.trace_parent.clone())
}

/// The event as a read of its row will return it.
pub(super) fn recorded(row: &NewRow<'_>) -> RecordedEvent {
    let event = row.event;
    RecordedEvent {
        event_id: event.event_id,
        stream: row.stream.to_owned(),
        version: row.version as u64,
        position: row.position as Position,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        // Stored as milliseconds.
        occurred_at: DateTime::from_timestamp_millis(event.occurred_at.timestamp_millis())
            .unwrap_or(event.occurred_at),
        actor: event.metadata.actor.clone(),
        correlation_id: event.metadata.correlation_id,
        causation_id: event.metadata.causation_id,
        payload: event.payload.clone(),
        trace_parent: event.metadata.trace_parent.clone(),
    }
}

/// A row selected with [`COLUMNS`], back to the event.
pub(super) fn decode(row: &AnyRow) -> Result<RecordedEvent, StoreError> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt event row: {what}"));
    let uuid = |text: String| Uuid::parse_str(&text).map_err(|_| corrupt("uuid"));
    let occurred_at: i64 = row.try_get("occurred_at")?;
    let causation: Option<String> = row.try_get("causation_id")?;
    Ok(RecordedEvent {
        event_id: uuid(row.try_get("event_id")?)?,
        stream: row.try_get("stream")?,
        version: u64::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| corrupt("version"))?,
        position: u64::try_from(row.try_get::<i64, _>("position")?)
            .map_err(|_| corrupt("position"))?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(row.try_get::<i64, _>("schema_version")?)
            .map_err(|_| corrupt("schema version"))?,
        occurred_at: DateTime::from_timestamp_millis(occurred_at).ok_or_else(|| corrupt("time"))?,
        actor: row.try_get("actor")?,
        correlation_id: uuid(row.try_get("correlation_id")?)?,
        causation_id: causation.map(uuid).transpose()?,
        payload: row.try_get("payload")?,
        trace_parent: row.try_get("trace_parent")?,
    })
}
