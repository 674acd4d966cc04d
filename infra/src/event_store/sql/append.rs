//! Appends go through one writer per store that commits in groups (this task on PostgreSQL; on
//! SQLite the thread of [`super::sqlite_writer`], with the same [`BatchPlan`]): it takes every append
//! waiting (up to [`MAX_BATCH`]), checks each against its expected version in order (versions the
//! writer itself wrote are remembered while no other process appends), writes all accepted events
//! with multi-row INSERTs and commits them in one transaction: one fsync and a handful of
//! statements for many appends. Should an insert fail (a reused event id), the batch is redone with
//! each append under its own savepoint, so one failing append leaves nothing and spoils nothing
//! else. Positions are assigned inside the transaction as `max(position) + 1`; on PostgreSQL the
//! transaction first takes an advisory lock, so writers in several processes still produce
//! positions in commit order.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use events_schema::{NewEvent, Position, RecordedEvent};
use futures::future::BoxFuture;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::schema::{bind_row, recorded, NewRow, INSERT, ROW_VALUES};
use super::settle::{answer_settled, settle_on_new_connection};
use super::{connect_writer, Committed, SETTLE_WITHIN};
use crate::db::{connection_lost, DbKind};
use crate::event_store::{AppendResult, ExpectedVersion, StoreError};

/// The most appends committed in one transaction.
pub(super) const MAX_BATCH: usize = 512;
/// The advisory lock that serializes appends on PostgreSQL.
const APPEND_LOCK: i64 = 0x6576_656e_7473; // "events"
/// How long one attempt to connect may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);
/// Rows per multi-row INSERT ([`ROW_VALUES`] parameters each). Small on purpose: binding looks
/// each parameter up by name in a list as long as the statement's (sqlx calls
/// `sqlite3_bind_parameter_name`), so the cost per row grows with the statement; 16 rows keep that
/// small and still save most statements.
const INSERT_CHUNK: usize = 16;

pub(super) struct AppendRequest {
    /// When the append was made: a write that lost its connection is retried only for so long.
    pub since: Instant,
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// Each append's result, the last position written, and the events written.
pub(super) type BatchOutcome = (
    Vec<Result<AppendResult, StoreError>>,
    Option<Position>,
    Vec<RecordedEvent>,
);

/// Takes appends off the channel and commits them in groups, until every sender is gone.
pub(super) async fn write_loop(
    mut conn: AnyConnection,
    options: AnyConnectOptions,
    kind: DbKind,
    mut requests: mpsc::Receiver<AppendRequest>,
    head: watch::Sender<Committed>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut known = KnownVersions::default();
    while let Some(first) = requests.recv().await {
        // The channel is first in, first out: the first append is the oldest.
        let settle_by = first.since + SETTLE_WITHIN;
        take_waiting(&mut batch, first, &mut requests);
        loop {
            let started = Instant::now();
            let written = write_once(&mut conn, kind, &batch, &mut known).await;
            let appended = written.as_ref().ok().map(|(_, _, events)| events.len());
            measure_write(started.elapsed(), batch.len(), appended);
            let e = match written {
                Ok(outcome) => {
                    answer(&mut batch, outcome, &head);
                    break;
                }
                Err(e) => e,
            };
            known.forget();
            if connection_lost(&e) && Instant::now() < settle_by {
                // The commit may or may not have happened: ask a new connection which appends
                // are stored, answer those, and write the others again.
                tracing::warn!(error = %e, appends = batch.len(), "event store write lost its connection; settling it on a new one");
                let settled =
                    settle_on_new_connection(&mut conn, &options, kind, &batch, settle_by);
                if let Some(settled) = settled.await {
                    answer_settled(&mut batch, settled, &head);
                    if batch.is_empty() {
                        break;
                    }
                    continue;
                }
            }
            fail(&mut batch, &e);
            // The connection may be gone (database restarted): open a new one for the next batch.
            match tokio::time::timeout(CONNECT_WITHIN, connect_writer(&options, kind)).await {
                Ok(Ok(fresh)) => conn = fresh,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "event store writer cannot reconnect yet")
                }
                Err(_) => tracing::error!("event store writer cannot reconnect yet: no answer"),
            }
            break;
        }
    }
}

/// `first` and every append waiting behind it, up to [`MAX_BATCH`].
pub(super) fn take_waiting(
    batch: &mut Vec<AppendRequest>,
    first: AppendRequest,
    requests: &mut mpsc::Receiver<AppendRequest>,
) {
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match requests.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
}

/// After a commit: hands its events to this process's followers, then answers every append of
/// `batch`.
pub(super) fn answer(
    batch: &mut Vec<AppendRequest>,
    (results, last, events): BatchOutcome,
    head: &watch::Sender<Committed>,
) {
    if let Some(last) = last {
        head.send_replace(Committed {
            head: last,
            events: events.into(),
        });
    }
    for (request, result) in batch.drain(..).zip(results) {
        let _ = request.reply.send(result);
    }
}

/// Counts one write of `appends` appends: the time it `took`, its size, and the events it stored (`None`: it
/// failed).
pub(super) fn measure_write(took: Duration, appends: usize, appended: Option<usize>) {
    use crate::telemetry::names;
    metrics::histogram!(names::APPEND_SECONDS).record(took.as_secs_f64());
    metrics::histogram!(names::APPEND_BATCH_SIZE).record(appends as f64);
    match appended {
        Some(events) => metrics::counter!(names::EVENTS_APPENDED).increment(events as u64),
        None => metrics::counter!(names::EVENT_STORE_ERRORS).increment(1),
    }
}

/// Answers every append of `batch` with the write's failure.
pub(super) fn fail(batch: &mut Vec<AppendRequest>, e: &dyn std::fmt::Display) {
    tracing::error!(error = %e, appends = batch.len(), "event store write failed");
    for request in batch.drain(..) {
        let _ = request.reply.send(Err(StoreError::Backend(e.to_string())));
    }
}

/// How the accepted appends of a batch reach the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    /// Every accepted event in multi-row INSERTs once all appends are checked: the fewest
    /// statements. An insert that fails (a reused event id) undoes the whole batch.
    Together,
    /// Each append under its own savepoint, so one that reuses an event id is refused alone.
    EachAppend,
}

/// What one pass over a batch did.
pub(super) enum Written {
    Committed(BatchOutcome),
    /// An insert failed and nothing was written: the batch must be written
    /// [`Isolation::EachAppend`].
    Redo,
}

/// One attempt at a batch: all of it in one transaction, or (after a reused event id) each append
/// isolated within it.
async fn write_once(
    conn: &mut AnyConnection,
    kind: DbKind,
    batch: &[AppendRequest],
    known: &mut KnownVersions,
) -> Result<BatchOutcome, sqlx::Error> {
    let mut isolation = Isolation::Together;
    loop {
        match write_batch(conn, kind, batch, known, isolation).await? {
            Written::Committed(outcome) => return Ok(outcome),
            // Only `Together` redoes; `EachAppend` refuses the failing append alone.
            Written::Redo => {
                known.forget();
                isolation = Isolation::EachAppend;
            }
        }
    }
}

/// Stream versions the writer knows, valid while the log's head is where the writer left it (no
/// other process appended since); checked at the start of every batch.
#[derive(Default)]
pub(super) struct KnownVersions {
    pub(super) head: Option<i64>,
    versions: HashMap<String, Option<i64>>,
}

impl KnownVersions {
    const CAPACITY: usize = 100_000;

    pub(super) fn forget(&mut self) {
        self.head = None;
        self.versions.clear();
    }
}

/// Opens a batch's transaction (on PostgreSQL holding the append lock, so writers in several
/// processes take turns) and reads the log's head inside it.
async fn begin_batch(
    conn: &mut AnyConnection,
    kind: DbKind,
) -> Result<(sqlx::Transaction<'_, sqlx::Any>, i64), sqlx::Error> {
    // SQLite: take the write lock at once, so a second writer (another process on the same file)
    // waits for it instead of failing between this read and the first write.
    // PostgreSQL: open the transaction and take the append lock in one round trip.
    let mut tx = match kind {
        DbKind::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        DbKind::Postgres => {
            conn.begin_with(format!(
                "BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
            ))
            .await?
        }
    };
    // Its own statement, so that on PostgreSQL its snapshot is taken once the lock is held.
    let max: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(position), 0) AS BIGINT) FROM events")
            .fetch_one(&mut *tx)
            .await?;
    Ok((tx, max))
}

/// A stream's current version (`None`: no such stream), inside a batch's transaction.
async fn stream_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    stream: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT CAST(MAX(version) AS BIGINT) FROM events WHERE stream = $1",
    )
    .bind(stream)
    .fetch_one(&mut **tx)
    .await
}

// Boxed with an explicit `Send` so the writer task's future is provably `Send` (rustc cannot see
// through sqlx's higher-ranked executor bounds otherwise).
fn write_batch<'a>(
    conn: &'a mut AnyConnection,
    kind: DbKind,
    batch: &'a [AppendRequest],
    known: &'a mut KnownVersions,
    isolation: Isolation,
) -> BoxFuture<'a, Result<Written, sqlx::Error>> {
    Box::pin(write_batch_inner(conn, kind, batch, known, isolation))
}

/// Checks every append of the batch in order against its stream's version (known, or read once
/// per stream), writes the accepted ones as `isolation` says, and commits.
async fn write_batch_inner(
    conn: &mut AnyConnection,
    kind: DbKind,
    batch: &[AppendRequest],
    known: &mut KnownVersions,
    isolation: Isolation,
) -> Result<Written, sqlx::Error> {
    let (mut tx, max) = begin_batch(conn, kind).await?;
    let mut plan = BatchPlan::new(max, isolation, known);
    for request in batch {
        let current = match plan.version_in_hand(known, &request.stream) {
            Some(v) => v,
            None => stream_version(&mut tx, &request.stream).await?,
        };
        let Some(start) = plan.admit(request, current) else {
            continue;
        };
        if isolation == Isolation::EachAppend {
            if let Err(refusal) = insert_alone(&mut tx, &plan.rows[start..]).await? {
                plan.refuse(request, current, start, refusal);
                continue;
            }
        }
        plan.accept(request, current);
    }
    if isolation == Isolation::Together {
        match insert(&mut tx, &plan.rows).await {
            Ok(()) => {}
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Ok(Written::Redo);
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit().await?;
    Ok(Written::Committed(plan.finish(known)))
}

/// The decisions of one pass over a batch, the same for every backend's writer: which appends
/// match their expected version, the versions and positions of their events, and each answer.
/// The writer reads what the plan does not have in hand and writes its rows.
pub(super) struct BatchPlan<'a> {
    isolation: Isolation,
    /// The log's head when the pass began.
    max: i64,
    /// The position of the next event.
    next: i64,
    /// Stream versions read or written in this pass.
    versions: HashMap<String, Option<i64>>,
    /// Event ids of the accepted appends (checked when they go in together).
    event_ids: HashSet<uuid::Uuid>,
    /// The accepted events, in position order.
    pub rows: Vec<NewRow<'a>>,
    results: Vec<Result<AppendResult, StoreError>>,
    last: Option<Position>,
}

impl<'a> BatchPlan<'a> {
    /// A pass over a batch in a transaction that found the log's head at `max`; `known` is dropped
    /// when another process moved the head since the writer's last commit.
    pub fn new(max: i64, isolation: Isolation, known: &mut KnownVersions) -> Self {
        if known.head != Some(max) || known.versions.len() > KnownVersions::CAPACITY {
            known.versions.clear();
        }
        Self {
            isolation,
            max,
            next: max + 1,
            versions: HashMap::new(),
            event_ids: HashSet::new(),
            rows: Vec::new(),
            results: Vec::new(),
            last: None,
        }
    }

    /// The stream's version when this pass or the writer already knows it; `None` when the writer
    /// must read it.
    pub fn version_in_hand(&self, known: &KnownVersions, stream: &str) -> Option<Option<i64>> {
        self.versions
            .get(stream)
            .or_else(|| known.versions.get(stream))
            .copied()
    }

    /// Checks `request` against its stream's `current` version. Refused, its answer is recorded and
    /// `None` returned; accepted, its rows are added and the index of its first row returned.
    pub fn admit(&mut self, request: &'a AppendRequest, current: Option<i64>) -> Option<usize> {
        let refused = if request.events.is_empty() {
            Some(StoreError::EmptyAppend)
        } else if !expected_matches(request.expected, current) {
            Some(wrong_version(request, current))
        } else if self.isolation == Isolation::Together
            && !request
                .events
                .iter()
                .all(|e| self.event_ids.insert(e.event_id))
        {
            Some(StoreError::Backend(format!(
                "append to {} refused: an event id is repeated",
                request.stream
            )))
        } else {
            None
        };
        if let Some(refusal) = refused {
            if !request.events.is_empty() {
                self.versions.insert(request.stream.clone(), current);
            }
            self.results.push(Err(refusal));
            return None;
        }
        let first_version = current.map_or(0, |v| v + 1);
        let start = self.rows.len();
        let next = self.next;
        self.rows
            .extend(request.events.iter().enumerate().map(|(i, event)| NewRow {
                stream: &request.stream,
                event,
                version: first_version + i as i64,
                position: next + i as i64,
            }));
        Some(start)
    }

    /// Takes back the rows of an admitted append that the database refused (an isolated insert).
    pub fn refuse(
        &mut self,
        request: &AppendRequest,
        current: Option<i64>,
        start: usize,
        reason: impl std::fmt::Display,
    ) {
        self.rows.truncate(start);
        self.versions.insert(request.stream.clone(), current);
        self.results.push(Err(StoreError::Backend(format!(
            "append to {} refused: {reason}",
            request.stream
        ))));
    }

    /// Records an admitted append as written.
    pub fn accept(&mut self, request: &AppendRequest, current: Option<i64>) {
        let n = request.events.len() as i64;
        let version = current.map_or(0, |v| v + 1) + n - 1;
        let position = self.next + n - 1;
        self.next += n;
        self.versions.insert(request.stream.clone(), Some(version));
        self.last = Some(position as Position);
        self.results.push(Ok(AppendResult {
            version: version as u64,
            position: position as Position,
        }));
    }

    /// After the commit: the writer remembers the versions, and the pass's outcome.
    pub fn finish(self, known: &mut KnownVersions) -> BatchOutcome {
        known.head = Some(self.last.map_or(self.max, |p| p as i64));
        known.versions.extend(self.versions);
        let written = self.rows.iter().map(recorded).collect();
        (self.results, self.last, written)
    }
}

/// Inserts `rows` in multi-row INSERTs of [`INSERT_CHUNK`] rows.
async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[NewRow<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let sql = format!("{INSERT}{}", crate::db::value_rows(chunk.len(), ROW_VALUES));
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = bind_row(query, row);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts one append's rows under a savepoint: `Ok(Err(_))` when the database refused them as a
/// duplicate (they are undone, the transaction goes on), `Err` when the write failed otherwise.
async fn insert_alone(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[NewRow<'_>],
) -> Result<Result<(), sqlx::Error>, sqlx::Error> {
    sqlx::query("SAVEPOINT append").execute(&mut **tx).await?;
    match insert(tx, rows).await {
        Ok(()) => {
            sqlx::query("RELEASE SAVEPOINT append")
                .execute(&mut **tx)
                .await?;
            Ok(Ok(()))
        }
        Err(e) if is_unique_violation(&e) => {
            sqlx::query("ROLLBACK TO SAVEPOINT append")
                .execute(&mut **tx)
                .await?;
            sqlx::query("RELEASE SAVEPOINT append")
                .execute(&mut **tx)
                .await?;
            Ok(Err(e))
        }
        Err(e) => Err(e),
    }
}

fn wrong_version(request: &AppendRequest, current: Option<i64>) -> StoreError {
    StoreError::WrongExpectedVersion {
        stream: request.stream.clone(),
        expected: request.expected,
        actual: current.map(|v| v as u64),
    }
}

fn expected_matches(expected: ExpectedVersion, current: Option<i64>) -> bool {
    match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => current.is_none(),
        ExpectedVersion::Exact(v) => current == Some(v as i64),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An append of `events` to `stream`, expecting any version, whose answer nobody awaits.
    pub(in crate::event_store::sql) fn request(
        stream: &str,
        events: &[&NewEvent],
    ) -> AppendRequest {
        AppendRequest {
            since: Instant::now(),
            stream: stream.into(),
            expected: ExpectedVersion::Any,
            events: events.iter().map(|e| (*e).clone()).collect(),
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn only_the_expected_version_matches() {
        assert!(expected_matches(ExpectedVersion::Any, None));
        assert!(expected_matches(ExpectedVersion::Any, Some(4)));
        assert!(expected_matches(ExpectedVersion::NoStream, None));
        assert!(!expected_matches(ExpectedVersion::NoStream, Some(0)));
        assert!(expected_matches(ExpectedVersion::Exact(3), Some(3)));
        assert!(!expected_matches(ExpectedVersion::Exact(3), Some(2)));
        assert!(!expected_matches(ExpectedVersion::Exact(0), None));
    }
}
