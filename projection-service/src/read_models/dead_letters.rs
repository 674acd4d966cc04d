//! Events the projector cannot apply: parked in `projection_dead_letters`, in the same transaction
//! as the checkpoint that passes them, so that one event never stalls every later one.
//!
//! Only a failure that is the event's own is parked: a payload that does not decode (pure, so at
//! first sight), or a statement the read models refuse for the data it carries, after
//! [`ATTEMPTS`] tries of that event alone. Everything else (a lost connection, a pool timeout, a
//! serialization failure, a missing table) is the database's or the projector's trouble, would
//! hit every event alike, and is retried from the checkpoint for as long as it lasts.

use std::time::Duration;

use events_schema::{Position, RecordedEvent};
use infra::db::{Database, DbKind};
use sqlx::{Any, Transaction};

use super::projector::storable;

/// How many times one event the read models refuse is tried, alone, before it is parked.
pub(crate) const ATTEMPTS: u32 = 3;
/// The pause before the second try (doubled before each later one).
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The longest error text kept, in characters.
const ERROR_CHARS: usize = 2000;

/// Whether the read models refused a statement for the data it carried, so that applying the same
/// event again fails again: PostgreSQL's data exceptions (class 22, such as a NUL in text),
/// integrity violations (23) and exceeded limits (54, such as an index row too large); SQLite's
/// constraint (a trigger's `RAISE` included), too-big and type-mismatch errors.
pub(crate) fn refused(kind: DbKind, e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    match kind {
        DbKind::Postgres => ["22", "23", "54"]
            .iter()
            .any(|class| code.starts_with(class)),
        // Extended result codes: the primary code is the low byte.
        DbKind::Sqlite => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 18..=20)),
    }
}

/// Records `event` as parked with `error`, inside the transaction that moves the checkpoint past
/// it. Parking an event twice keeps the first record.
pub(crate) async fn record(
    tx: &mut Transaction<'_, Any>,
    kind: DbKind,
    event: &RecordedEvent,
    error: &str,
) -> Result<(), sqlx::Error> {
    let error: String = error.chars().take(ERROR_CHARS).collect();
    sqlx::query(
        "INSERT INTO projection_dead_letters (position, event_id, event_type, error, parked_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (position) DO NOTHING",
    )
    .bind(event.position as i64)
    .bind(event.event_id.to_string())
    .bind(storable(kind, &event.event_type).into_owned())
    .bind(storable(kind, &error).into_owned())
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Logs an event just parked (committed), at error: the read models lack it from now on.
pub(crate) fn log_parked(event: &RecordedEvent, error: &str) {
    tracing::error!(
        position = event.position,
        event_id = %event.event_id,
        event_type = %event.event_type,
        error,
        "projector: event cannot be applied; parked in projection_dead_letters and passed over"
    );
}

/// A parked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub position: Position,
    pub event_id: String,
    pub event_type: String,
    pub error: String,
    /// Unix milliseconds.
    pub parked_at: i64,
}

/// Every parked event, in log order.
pub async fn list(db: &Database) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows: Vec<(i64, String, String, String, i64)> = db
        .read(|| {
            sqlx::query_as(
                "SELECT position, event_id, event_type, error, parked_at \
                 FROM projection_dead_letters ORDER BY position",
            )
            .fetch_all(&db.pool)
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(position, event_id, event_type, error, parked_at)| DeadLetter {
                position: position.max(0) as Position,
                event_id,
                event_type,
                error,
                parked_at,
            },
        )
        .collect())
}

/// How many events are parked (also kept as the gauge `chat_projection_dead_letters`).
pub async fn count(db: &Database) -> Result<u64, sqlx::Error> {
    let (n,): (i64,) = db
        .read(|| sqlx::query_as("SELECT COUNT(*) FROM projection_dead_letters").fetch_one(&db.pool))
        .await?;
    let n = n.max(0) as u64;
    metrics::gauge!(infra::telemetry::names::DEAD_LETTERS).set(n as f64);
    Ok(n)
}

/// For the health endpoint: a line naming how many events are parked, when any are. A process
/// with parked events is degraded, not down: it serves and projects on, and restarting it or
/// taking it out of service would not bring the parked events back (a replay that can apply them
/// does).
pub async fn degraded(db: &Database) -> Option<String> {
    match count(db).await {
        Ok(0) => None,
        Ok(n) => Some(format!(
            "{n} event{} parked in projection_dead_letters (the read models lack {})",
            if n == 1 { "" } else { "s" },
            if n == 1 {
                "its effect"
            } else {
                "their effects"
            }
        )),
        // An unreachable database is reported by its own check.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_that_are_the_events_own() {
        // Without a database error there is nothing to say about the event: retried.
        assert!(!refused(DbKind::Postgres, &sqlx::Error::PoolTimedOut));
        assert!(!refused(DbKind::Sqlite, &sqlx::Error::PoolClosed));
        assert!(!refused(
            DbKind::Postgres,
            &sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())
        ));
    }
}
