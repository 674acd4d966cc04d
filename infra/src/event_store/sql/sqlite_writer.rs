//! The SQLite event store's writer: a thread of its own holding one plain connection (rusqlite).
//! It takes every append waiting (up to [`MAX_BATCH`]), checks and writes them in one
//! `BEGIN IMMEDIATE` transaction with prepared statements and commits: one fsync a group, and two
//! thread hand-offs a group (the appends in, the answers out) where sqlx's SQLite driver makes two
//! for every statement. What is accepted, at which versions and positions, is [`BatchPlan`]'s
//! decision, as on PostgreSQL. Reads stay on the sqlx pool: in WAL mode they never wait for it.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{mpsc, watch};

use super::append::{
    answer, fail, measure_write, take_waiting, AppendRequest, BatchOutcome, BatchPlan, Isolation,
    KnownVersions, Written, MAX_BATCH,
};
use super::schema::{NewRow, INSERT, ROW_VALUES};
use super::Committed;
use crate::event_store::StoreError;

/// SQLite's extended result codes for a UNIQUE or PRIMARY KEY constraint refusing a row.
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// Opens the writer's connection to the (migrated) database at `path` and starts its thread,
/// which ends when every sender of `requests` is gone.
pub(super) fn spawn(
    path: &Path,
    requests: mpsc::Receiver<AppendRequest>,
    head: watch::Sender<Committed>,
) -> Result<(), StoreError> {
    let backend =
        |e: &dyn std::fmt::Display| StoreError::Backend(format!("event store writer: {e}"));
    let conn = open(path).map_err(|e| backend(&e))?;
    std::thread::Builder::new()
        .name("event-writer".into())
        .spawn(move || write_loop(conn, requests, head))
        .map_err(|e| backend(&e))?;
    Ok(())
}

/// The writer's connection: durable commits (`synchronous = FULL`; the file is in WAL mode since
/// its creation), a 5 s wait for another process's write lock, temporary storage in memory.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")?;
    Ok(conn)
}

/// Takes appends off the channel and commits them in groups, until every sender is gone.
fn write_loop(
    mut conn: Connection,
    mut requests: mpsc::Receiver<AppendRequest>,
    head: watch::Sender<Committed>,
) {
    let insert_one = format!("{INSERT}{}", crate::db::value_rows(1, ROW_VALUES));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut known = KnownVersions::default();
    while let Some(first) = requests.blocking_recv() {
        take_waiting(&mut batch, first, &mut requests);
        let started = Instant::now();
        let written = write_once(&mut conn, &insert_one, &batch, &mut known);
        let appended = written.as_ref().ok().map(|(_, _, events)| events.len());
        measure_write(started.elapsed(), batch.len(), appended);
        match written {
            Ok(outcome) => answer(&mut batch, outcome, &head),
            Err(e) => {
                // The transaction was rolled back when it was dropped; nothing of it is stored.
                known.forget();
                fail(&mut batch, &e);
            }
        }
    }
}

/// One batch: all of it in one transaction, or (after a reused event id) each append isolated
/// within it.
fn write_once(
    conn: &mut Connection,
    insert_one: &str,
    batch: &[AppendRequest],
    known: &mut KnownVersions,
) -> rusqlite::Result<BatchOutcome> {
    let mut isolation = Isolation::Together;
    loop {
        match write_batch(conn, insert_one, batch, known, isolation)? {
            Written::Committed(outcome) => return Ok(outcome),
            // Only `Together` redoes; `EachAppend` refuses the failing append alone.
            Written::Redo => {
                known.forget();
                isolation = Isolation::EachAppend;
            }
        }
    }
}

/// Checks every append of the batch in order against its stream's version (known, or read once
/// per stream), writes the accepted ones as `isolation` says, and commits.
fn write_batch(
    conn: &mut Connection,
    insert_one: &str,
    batch: &[AppendRequest],
    known: &mut KnownVersions,
    isolation: Isolation,
) -> rusqlite::Result<Written> {
    // The write lock at once: another process's writer waits for it instead of failing between
    // this read and the first write.
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let max: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
        .query_row([], |row| row.get(0))?;
    let mut plan = BatchPlan::new(max, isolation, known);
    for request in batch {
        let current = match plan.version_in_hand(known, &request.stream) {
            Some(v) => v,
            None => tx
                .prepare_cached("SELECT MAX(version) FROM events WHERE stream = ?1")?
                .query_row([&request.stream], |row| row.get::<_, Option<i64>>(0))?,
        };
        let Some(start) = plan.admit(request, current) else {
            continue;
        };
        if isolation == Isolation::EachAppend {
            // Dropped without a commit, the savepoint rolls back to where it began.
            let savepoint = tx.savepoint()?;
            match insert(&savepoint, insert_one, &plan.rows[start..]) {
                Ok(()) => savepoint.commit()?,
                Err(e) if is_unique_violation(&e) => {
                    drop(savepoint);
                    plan.refuse(request, current, start, e);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        plan.accept(request, current);
    }
    if isolation == Isolation::Together {
        match insert(&tx, insert_one, &plan.rows) {
            Ok(()) => {}
            // Dropping the transaction rolls it back.
            Err(e) if is_unique_violation(&e) => return Ok(Written::Redo),
            Err(e) => return Err(e),
        }
    }
    tx.commit()?;
    Ok(Written::Committed(plan.finish(known)))
}

/// Inserts `rows` with one prepared statement, in the column order of [`INSERT`].
fn insert(conn: &Connection, insert_one: &str, rows: &[NewRow<'_>]) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(insert_one)?;
    for row in rows {
        let event = row.event;
        let metadata = &event.metadata;
        statement.execute(params![
            row.position,
            event.event_id.to_string(),
            row.stream,
            row.version,
            event.event_type,
            i64::from(event.schema_version),
            event.occurred_at.timestamp_millis(),
            metadata.actor,
            metadata.correlation_id.to_string(),
            metadata.causation_id.map(|id| id.to_string()),
            event.payload,
            metadata.trace_parent,
        ])?;
    }
    Ok(())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.extended_code, SQLITE_CONSTRAINT_PRIMARYKEY | SQLITE_CONSTRAINT_UNIQUE)
    )
}

#[cfg(test)]
mod tests {
    use super::super::append::tests::request;
    use super::*;
    use crate::event_store::{open_event_store, ExpectedVersion};
    use crate::testing::test_event;

    /// A batch where one append reuses a stored event id: the others are written and answered,
    /// at consecutive positions, and the events handed to followers are exactly what a read of
    /// the log returns.
    #[tokio::test]
    async fn a_reused_event_id_refuses_its_append_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let store = open_event_store(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let old = test_event("old");
        store
            .append("x", ExpectedVersion::NoStream, vec![old.clone()])
            .await
            .unwrap();
        let (a1, a2, c) = (test_event("a1"), test_event("a2"), test_event("c"));
        let batch = [
            request("a", &[&a1, &a2]),
            request("b", &[&old]),
            request("c", &[&c]),
        ];
        let mut conn = open(&path).unwrap();
        let insert_one = format!("{INSERT}{}", crate::db::value_rows(1, ROW_VALUES));
        let mut known = KnownVersions::default();
        let (results, last, written) =
            write_once(&mut conn, &insert_one, &batch, &mut known).unwrap();
        let answers: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().map(|a| (a.version, a.position)).ok())
            .collect();
        assert_eq!(answers, [Some((1, 3)), None, Some((0, 4))]);
        assert_eq!(last, Some(4));
        assert_eq!(written, store.read_all(1, 10).await.unwrap());
        assert_eq!(known.head, Some(4), "what was written is remembered");
    }

    /// A write the database refuses as a whole (here: the connection may only read) stores
    /// nothing, and the same connection writes the next batch once it can.
    #[tokio::test]
    async fn a_failed_write_answers_every_append_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let store = open_event_store(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let mut conn = open(&path).unwrap();
        conn.execute_batch("PRAGMA query_only = ON").unwrap();
        let batch = [request("a", &[&test_event("1")])];
        let insert_one = format!("{INSERT}{}", crate::db::value_rows(1, ROW_VALUES));
        let mut known = KnownVersions::default();
        assert!(write_once(&mut conn, &insert_one, &batch, &mut known).is_err());
        assert!(store.read_all(0, 10).await.unwrap().is_empty());
        conn.execute_batch("PRAGMA query_only = OFF").unwrap();
        let (results, _, _) = write_once(&mut conn, &insert_one, &batch, &mut known).unwrap();
        assert!(results[0].is_ok());
    }
}
