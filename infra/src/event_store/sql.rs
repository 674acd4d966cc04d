//! The event store over SQL, shared by the SQLite and PostgreSQL backends through sqlx's `Any`
//! driver (`$n` placeholders work on both). Only locking and migrations differ per dialect.
//!
//! Appends go through one writer task per store that commits in groups: it takes every append
//! waiting (up to [`MAX_BATCH`]), checks each against its expected version in order (versions the
//! writer itself wrote are remembered while no other process appends), writes all accepted events
//! with one multi-row INSERT and commits them in one transaction: one fsync and a handful of
//! statements for many appends. Should an insert fail (a reused event id), the batch is redone with
//! each append under its own savepoint, so one failing append leaves nothing and spoils nothing else. Positions are assigned inside the
//! transaction as `max(position) + 1`; on PostgreSQL the transaction first takes an advisory lock,
//! so writers in several processes still produce positions in commit order.
//!
//! A group whose connection went away mid-write (a database restart) is settled on a new
//! connection: the appends found stored are answered, the others written again, for at most
//! [`SETTLE_WITHIN`] after the oldest was made (docs/design.md).
//!
//! Followers (`subscribe_all`) take the events this process just committed from the writer, not
//! from the database, whenever they continue right where the follower is; they read the database
//! only to catch up, after a gap (another process appended in between, or they fell behind), and
//! on the poll for other processes' appends.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use events_schema::{NewEvent, Position, RecordedEvent};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use sqlx::any::{install_default_drivers, AnyConnectOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::{AppendResult, AuditQuery, AuditSubject, EventStore, ExpectedVersion, StoreError};
use crate::db::{connection_lost, read_again_if_lost};

/// The most appends committed in one transaction.
const MAX_BATCH: usize = 512;
/// How often a follower looks for events written by other processes.
const POLL: Duration = Duration::from_millis(200);
/// Events read per page while catching up.
const PAGE: usize = 512;
/// The advisory lock that serializes appends on PostgreSQL.
const APPEND_LOCK: i64 = 0x6576_656e_7473; // "events"

const COLUMNS: &str = "position, event_id, stream, version, event_type, \
     CAST(schema_version AS BIGINT) AS schema_version, occurred_at, actor, correlation_id, causation_id, payload";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

struct AppendRequest {
    /// When the append was made: a write that lost its connection is retried only for so long.
    since: Instant,
    stream: String,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// The SQL event store.
pub struct SqlEventStore {
    pool: AnyPool,
    dialect: Dialect,
    writer: mpsc::Sender<AppendRequest>,
    head: watch::Receiver<Committed>,
}

/// What the writer committed last: the log's head as this process knows it, and the events of
/// that commit when the fast path wrote them (empty otherwise: followers read them back).
#[derive(Clone)]
struct Committed {
    head: Position,
    events: Arc<[RecordedEvent]>,
}

impl SqlEventStore {
    /// Connects readers and the writer to an already migrated database.
    pub async fn connect(url: &str, dialect: Dialect) -> Result<Self, StoreError> {
        install_default_drivers();
        let pool = crate::db::pool_options(8)
            .after_connect(move |conn, _| Box::pin(async move { prepare(conn, dialect).await }))
            .connect(url)
            .await?;
        let mut writer_conn = AnyConnection::connect(url).await?;
        prepare(&mut writer_conn, dialect).await?;
        let start = head_of(&pool).await?;
        let (head_tx, head) = watch::channel(Committed {
            head: start,
            events: Arc::from([]),
        });
        let (writer, requests) = mpsc::channel(4 * MAX_BATCH);
        let options: AnyConnectOptions = url.parse()?;
        tokio::spawn(write_loop(writer_conn, options, dialect, requests, head_tx));
        Ok(Self {
            pool,
            dialect,
            writer,
            head,
        })
    }
}

/// Per-connection settings (SQLite's durability and lock wait).
fn prepare(conn: &mut AnyConnection, dialect: Dialect) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        if dialect == Dialect::Sqlite {
            conn.execute("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")
                .await?;
        }
        Ok(())
    })
}

async fn head_of(pool: &AnyPool) -> Result<Position, StoreError> {
    let head: i64 = read_again_if_lost(SETTLE_WITHIN, || {
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(position), 0) AS BIGINT) FROM events")
            .fetch_one(pool)
    })
    .await?;
    Ok(head as Position)
}

/// Takes appends off the channel and commits them in groups, until every sender is gone.
async fn write_loop(
    mut conn: AnyConnection,
    options: AnyConnectOptions,
    dialect: Dialect,
    mut requests: mpsc::Receiver<AppendRequest>,
    head: watch::Sender<Committed>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut known = KnownVersions::default();
    while let Some(first) = requests.recv().await {
        // The channel is first in, first out: the first append is the oldest.
        let settle_by = first.since + SETTLE_WITHIN;
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        loop {
            let e = match write_once(&mut conn, dialect, &batch, &mut known).await {
                Ok((results, last, events)) => {
                    if let Some(last) = last {
                        head.send_replace(Committed {
                            head: last,
                            events: events.into(),
                        });
                    }
                    for (request, result) in batch.drain(..).zip(results) {
                        let _ = request.reply.send(result);
                    }
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
                    settle_on_new_connection(&mut conn, &options, dialect, &batch, settle_by);
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
            match tokio::time::timeout(CONNECT_WITHIN, connect_writer(&options, dialect)).await {
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

/// How long after an append was made a write that lost its connection is settled and retried.
/// Commands are answered within 5 s (PROTOCOL.md); this leaves room for a command that first
/// waited for its stream's previous write, and for the answer's way back.
const SETTLE_WITHIN: Duration = Duration::from_secs(2);
/// How long one attempt to connect may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);

/// One attempt at a batch: all of it in one transaction, or (after a reused event id) each append
/// isolated within it.
async fn write_once(
    conn: &mut AnyConnection,
    dialect: Dialect,
    batch: &[AppendRequest],
    known: &mut KnownVersions,
) -> Result<BatchOutcome, sqlx::Error> {
    match write_batch_fast(conn, dialect, batch, known).await? {
        Some(outcome) => Ok(outcome),
        // An insert failed (a reused event id): redo the batch isolating each append.
        None => {
            known.forget();
            write_batch(conn, dialect, batch).await
        }
    }
}

/// A new writer connection, tried again with growing pauses until `deadline`.
async fn reconnect_until(
    options: &AnyConnectOptions,
    dialect: Dialect,
    deadline: Instant,
) -> Option<AnyConnection> {
    let mut pause = Duration::from_millis(25);
    loop {
        match tokio::time::timeout_at(deadline, connect_writer(options, dialect)).await {
            Ok(Ok(conn)) => return Some(conn),
            Ok(Err(e)) => tracing::debug!(error = %e, "event store writer cannot reconnect yet"),
            Err(_) => {}
        }
        if Instant::now() + pause >= deadline {
            tracing::error!("event store writer could not reconnect in time");
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(400));
    }
}

async fn connect_writer(
    options: &AnyConnectOptions,
    dialect: Dialect,
) -> Result<AnyConnection, sqlx::Error> {
    let mut conn = AnyConnection::connect_with(options).await?;
    prepare(&mut conn, dialect).await?;
    Ok(conn)
}

/// [`settle`] on a new connection, which replaces `conn`; tried again (a new connection, the same
/// question) if that one goes away too, until `deadline`. `None` when it could not be asked in time.
async fn settle_on_new_connection(
    conn: &mut AnyConnection,
    options: &AnyConnectOptions,
    dialect: Dialect,
    batch: &[AppendRequest],
    deadline: Instant,
) -> Option<Vec<Option<AppendResult>>> {
    loop {
        *conn = reconnect_until(options, dialect, deadline).await?;
        match settle(conn, batch).await {
            Ok(settled) => return Some(settled),
            Err(e) if connection_lost(&e) && Instant::now() < deadline => {
                tracing::debug!(error = %e, "settling lost its connection too; asking again");
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot settle the interrupted write");
                return None;
            }
        }
    }
}

/// Event ids looked up per statement while settling.
const SETTLE_CHUNK: usize = 500;

/// For each append of a batch whose write lost its connection, its result if it is stored after
/// all: every one of its events is in its stream, at consecutive versions (an append is atomic,
/// so its events are all there or none is). `None` for an append that is not stored.
async fn settle(
    conn: &mut AnyConnection,
    batch: &[AppendRequest],
) -> Result<Vec<Option<AppendResult>>, sqlx::Error> {
    let ids: Vec<String> = batch
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id.to_string()))
        .collect();
    let mut stored: HashMap<String, (String, i64, i64)> = HashMap::new();
    for chunk in ids.chunks(SETTLE_CHUNK) {
        let sql = format!(
            "SELECT event_id, stream, version, position FROM events WHERE event_id IN {}",
            crate::db::value_rows(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            stored.insert(
                row.try_get("event_id")?,
                (
                    row.try_get("stream")?,
                    row.try_get("version")?,
                    row.try_get("position")?,
                ),
            );
        }
    }
    Ok(batch
        .iter()
        .map(|request| {
            let mut last: Option<AppendResult> = None;
            for event in &request.events {
                let (stream, version, position) = stored.get(&event.event_id.to_string())?;
                let follows = last
                    .as_ref()
                    .is_none_or(|previous| *version == previous.version as i64 + 1);
                if *stream != request.stream || !follows {
                    return None;
                }
                last = Some(AppendResult {
                    version: *version as u64,
                    position: *position as Position,
                });
            }
            last
        })
        .collect())
}

/// Answers the appends `settle` found stored and keeps the others in `batch`, to be written again.
fn answer_settled(
    batch: &mut Vec<AppendRequest>,
    settled: Vec<Option<AppendResult>>,
    head: &watch::Sender<Committed>,
) {
    let mut highest = None;
    let mut rest = Vec::with_capacity(batch.len());
    for (request, result) in batch.drain(..).zip(settled) {
        match result {
            Some(result) => {
                highest = highest.max(Some(result.position));
                let _ = request.reply.send(Ok(result));
            }
            None => rest.push(request),
        }
    }
    *batch = rest;
    if let Some(highest) = highest {
        // Followers read the settled events back from the database.
        head.send_if_modified(|committed| {
            let newer = highest > committed.head;
            if newer {
                *committed = Committed {
                    head: highest,
                    events: Arc::from([]),
                };
            }
            newer
        });
    }
}

/// Answers every append of `batch` with the write's failure.
fn fail(batch: &mut Vec<AppendRequest>, e: &sqlx::Error) {
    tracing::error!(error = %e, appends = batch.len(), "event store write failed");
    for request in batch.drain(..) {
        let _ = request.reply.send(Err(StoreError::Backend(e.to_string())));
    }
}

/// Opens a batch's transaction (on PostgreSQL holding the append lock, so writers in several
/// processes take turns) and reads the log's head inside it.
async fn begin_batch(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> Result<(sqlx::Transaction<'_, sqlx::Any>, i64), sqlx::Error> {
    // SQLite: take the write lock at once, so a second writer (another process on the same file)
    // waits for it instead of failing between this read and the first write.
    // PostgreSQL: open the transaction and take the append lock in one round trip.
    let mut tx = match dialect {
        Dialect::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Dialect::Postgres => {
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

fn wrong_version(request: &AppendRequest, current: Option<i64>) -> StoreError {
    StoreError::WrongExpectedVersion {
        stream: request.stream.clone(),
        expected: request.expected,
        actual: current.map(|v| v as u64),
    }
}

/// Each append's result, the last position written, and the events written (when known).
type BatchOutcome = (
    Vec<Result<AppendResult, StoreError>>,
    Option<Position>,
    Vec<RecordedEvent>,
);

/// Stream versions the writer knows, valid while the log's head is where the writer left it (no
/// other process appended since); checked at the start of every batch.
#[derive(Default)]
struct KnownVersions {
    head: Option<i64>,
    versions: HashMap<String, Option<i64>>,
}

impl KnownVersions {
    const CAPACITY: usize = 100_000;

    fn forget(&mut self) {
        self.head = None;
        self.versions.clear();
    }
}

/// Rows per multi-row INSERT (11 parameters each). Small on purpose: binding looks each parameter
/// up by name in a list as long as the statement's (sqlx calls `sqlite3_bind_parameter_name`), so
/// the cost per row grows with the statement; 16 rows keep that small and still save most
/// statements.
const INSERT_CHUNK: usize = 16;

/// The common case in few statements: every append checked in memory against versions known or
/// read once, then all accepted events in one multi-row INSERT, one commit. `Ok(None)` when an
/// insert failed (nothing was written): the caller redoes the batch with [`write_batch`].
fn write_batch_fast<'a>(
    conn: &'a mut AnyConnection,
    dialect: Dialect,
    batch: &'a [AppendRequest],
    known: &'a mut KnownVersions,
) -> BoxFuture<'a, Result<Option<BatchOutcome>, sqlx::Error>> {
    Box::pin(write_batch_fast_inner(conn, dialect, batch, known))
}

async fn write_batch_fast_inner(
    conn: &mut AnyConnection,
    dialect: Dialect,
    batch: &[AppendRequest],
    known: &mut KnownVersions,
) -> Result<Option<BatchOutcome>, sqlx::Error> {
    let (mut tx, max) = begin_batch(conn, dialect).await?;
    if known.head != Some(max) || known.versions.len() > KnownVersions::CAPACITY {
        known.versions.clear();
    }
    let mut next = max + 1;
    let mut versions: HashMap<String, Option<i64>> = HashMap::new();
    let mut event_ids = std::collections::HashSet::new();
    let mut rows: Vec<(&AppendRequest, usize, i64, i64)> = Vec::new();
    let mut results = Vec::with_capacity(batch.len());
    let mut last = None;
    for request in batch {
        if request.events.is_empty() {
            results.push(Err(StoreError::EmptyAppend));
            continue;
        }
        let current = match versions
            .get(&request.stream)
            .or_else(|| known.versions.get(&request.stream))
        {
            Some(v) => *v,
            None => stream_version(&mut tx, &request.stream).await?,
        };
        if !expected_matches(request.expected, current) {
            versions.insert(request.stream.clone(), current);
            results.push(Err(wrong_version(request, current)));
            continue;
        }
        if !request.events.iter().all(|e| event_ids.insert(e.event_id)) {
            versions.insert(request.stream.clone(), current);
            results.push(Err(StoreError::Backend(format!(
                "append to {} refused: an event id is repeated",
                request.stream
            ))));
            continue;
        }
        let first_version = current.map_or(0, |v| v + 1);
        for i in 0..request.events.len() {
            rows.push((request, i, first_version + i as i64, next + i as i64));
        }
        let n = request.events.len() as i64;
        let version = first_version + n - 1;
        let position = next + n - 1;
        next += n;
        versions.insert(request.stream.clone(), Some(version));
        last = Some(position as Position);
        results.push(Ok(AppendResult {
            version: version as u64,
            position: position as Position,
        }));
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO events (position, event_id, stream, version, event_type, schema_version, occurred_at, \
             actor, correlation_id, causation_id, payload) VALUES {}",
            crate::db::value_rows(chunk.len(), 11)
        );
        let mut query = sqlx::query(&sql);
        for (request, i, version, position) in chunk {
            let event = &request.events[*i];
            query = query
                .bind(*position)
                .bind(event.event_id.to_string())
                .bind(&request.stream)
                .bind(*version)
                .bind(&event.event_type)
                .bind(i64::from(event.schema_version) as i32)
                .bind(event.occurred_at.timestamp_millis())
                .bind(event.metadata.actor.clone())
                .bind(event.metadata.correlation_id.to_string())
                .bind(event.metadata.causation_id.map(|id| id.to_string()))
                .bind(&event.payload);
        }
        match query.execute(&mut *tx).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit().await?;
    known.head = Some(last.map_or(max, |p| p as i64));
    known.versions.extend(versions);
    let written = rows
        .iter()
        .map(|(request, i, version, position)| {
            recorded(&request.stream, *version, *position, &request.events[*i])
        })
        .collect();
    Ok(Some((results, last, written)))
}

// Boxed with an explicit `Send` so the writer task's future is provably `Send` (rustc cannot see
// through sqlx's higher-ranked executor bounds otherwise).
fn write_batch<'a>(
    conn: &'a mut AnyConnection,
    dialect: Dialect,
    batch: &'a [AppendRequest],
) -> BoxFuture<'a, Result<BatchOutcome, sqlx::Error>> {
    Box::pin(write_batch_inner(conn, dialect, batch))
}

async fn write_batch_inner(
    conn: &mut AnyConnection,
    dialect: Dialect,
    batch: &[AppendRequest],
) -> Result<BatchOutcome, sqlx::Error> {
    let (mut tx, max) = begin_batch(conn, dialect).await?;
    let mut next = max + 1;
    let mut versions: HashMap<&str, Option<i64>> = HashMap::new();
    let mut results = Vec::with_capacity(batch.len());
    let mut last = None;
    for request in batch {
        if request.events.is_empty() {
            results.push(Err(StoreError::EmptyAppend));
            continue;
        }
        let current = match versions.get(request.stream.as_str()) {
            Some(v) => *v,
            None => stream_version(&mut tx, &request.stream).await?,
        };
        if !expected_matches(request.expected, current) {
            versions.insert(&request.stream, current);
            results.push(Err(wrong_version(request, current)));
            continue;
        }
        sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
        let first_version = current.map_or(0, |v| v + 1);
        match insert_events(&mut tx, request, first_version, next).await {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT append")
                    .execute(&mut *tx)
                    .await?;
                let n = request.events.len() as i64;
                let version = first_version + n - 1;
                let position = next + n - 1;
                next += n;
                versions.insert(&request.stream, Some(version));
                last = Some(position as Position);
                results.push(Ok(AppendResult {
                    version: version as u64,
                    position: position as Position,
                }));
            }
            Err(e) if is_unique_violation(&e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT append")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT append")
                    .execute(&mut *tx)
                    .await?;
                results.push(Err(StoreError::Backend(format!(
                    "append to {} refused: {e}",
                    request.stream
                ))));
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit().await?;
    Ok((results, last, Vec::new()))
}

/// An event as a read of its row returns it.
fn recorded(stream: &str, version: i64, position: i64, event: &NewEvent) -> RecordedEvent {
    RecordedEvent {
        event_id: event.event_id,
        stream: stream.to_owned(),
        version: version as u64,
        position: position as Position,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        // Stored as milliseconds.
        occurred_at: DateTime::from_timestamp_millis(event.occurred_at.timestamp_millis())
            .unwrap_or(event.occurred_at),
        actor: event.metadata.actor.clone(),
        correlation_id: event.metadata.correlation_id,
        causation_id: event.metadata.causation_id,
        payload: event.payload.clone(),
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

async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    request: &AppendRequest,
    first_version: i64,
    first_position: i64,
) -> Result<(), sqlx::Error> {
    for (i, event) in request.events.iter().enumerate() {
        let offset = i as i64;
        sqlx::query(
            "INSERT INTO events (position, event_id, stream, version, event_type, schema_version, occurred_at, \
             actor, correlation_id, causation_id, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(first_position + offset)
        .bind(event.event_id.to_string())
        .bind(&request.stream)
        .bind(first_version + offset)
        .bind(&event.event_type)
        .bind(i64::from(event.schema_version) as i32)
        .bind(event.occurred_at.timestamp_millis())
        .bind(event.metadata.actor.clone())
        .bind(event.metadata.correlation_id.to_string())
        .bind(event.metadata.causation_id.map(|id| id.to_string()))
        .bind(&event.payload)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn decode(row: &AnyRow) -> Result<RecordedEvent, StoreError> {
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
    })
}

async fn read_all_from(
    pool: &AnyPool,
    after: Position,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
    let rows = read_again_if_lost(SETTLE_WITHIN, || {
        sqlx::query(&sql)
            .bind(after as i64)
            .bind(max as i64)
            .fetch_all(pool)
    })
    .await?;
    rows.iter().map(decode).collect()
}

/// The state of one `subscribe_all` follower.
struct Follower {
    pool: AnyPool,
    head: watch::Receiver<Committed>,
    after: Position,
    buffer: VecDeque<RecordedEvent>,
    /// The database may hold events after `after` that the follower has not seen.
    read: bool,
    ended: bool,
}

impl Follower {
    async fn next(mut self) -> Option<(Result<RecordedEvent, StoreError>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.after = event.position;
                return Some((Ok(event), self));
            }
            if self.read {
                match read_all_from(&self.pool, self.after, PAGE).await {
                    Err(e) => {
                        self.ended = true;
                        return Some((Err(e), self));
                    }
                    Ok(events) => {
                        // A short page is the end of the log as of this read.
                        self.read = events.len() == PAGE;
                        self.buffer.extend(events);
                    }
                }
                continue;
            }
            // Woken by this process's commits, or by the poll for other processes' appends.
            match tokio::time::timeout(POLL, self.head.changed()).await {
                Ok(Ok(())) => self.take_committed(),
                Err(_) => self.read = true,
                Ok(Err(_)) => {
                    // The writer is gone; keep polling at the same pace rather than spinning.
                    tokio::time::sleep(POLL).await;
                    self.read = true;
                }
            }
        }
    }

    /// Takes this process's last commit when it continues right where the follower is. A commit
    /// further ahead means other events lie in between (another process's, or an earlier commit
    /// this follower missed): those are read from the database.
    fn take_committed(&mut self) {
        let committed = self.head.borrow_and_update();
        let after = self.after;
        // A commit's events are in position order.
        let new = &committed.events[committed.events.partition_point(|e| e.position <= after)..];
        match new.first() {
            Some(first) if first.position == after + 1 => self.buffer.extend(new.iter().cloned()),
            _ if committed.head > after => self.read = true,
            _ => {}
        }
    }
}

#[async_trait]
impl EventStore for SqlEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            since: Instant::now(),
            stream: stream.to_owned(),
            expected,
            events,
            reply,
        };
        self.writer
            .send(request)
            .await
            .map_err(|_| StoreError::Backend("the event store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the event store writer dropped the append".into()))?
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3"
        );
        let rows = read_again_if_lost(SETTLE_WITHIN, || {
            sqlx::query(&sql)
                .bind(stream)
                .bind(from_version as i64)
                .bind(max as i64)
                .fetch_all(&self.pool)
        })
        .await?;
        rows.iter().map(decode).collect()
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all_from(&self.pool, after, max).await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        head_of(&self.pool).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<RecordedEvent>, StoreError> {
        // Served by the (stream, position) and (actor, position) indexes: a deep page costs what
        // the first one does.
        let (column, subject) = match &query.subject {
            AuditSubject::Stream(stream) => ("stream", stream),
            AuditSubject::Actor(actor) => ("actor", actor),
        };
        let mut sql = format!("SELECT {COLUMNS} FROM events WHERE {column} = $1 AND position > $2");
        let mut n = 2;
        let mut filter = |clause: &str| {
            n += 1;
            sql.push_str(&format!(" AND {clause} ${n}"));
        };
        if query.since.is_some() {
            filter("occurred_at >=");
        }
        if query.until.is_some() {
            filter("occurred_at <");
        }
        if query.event_type.is_some() {
            filter("event_type =");
        }
        sql.push_str(&format!(" ORDER BY position LIMIT ${}", n + 1));
        // Not a cached prepared statement: PostgreSQL plans each page for its own values (a
        // filter's selectivity varies widely between chats and types), for a fraction of a
        // millisecond.
        let rows = read_again_if_lost(SETTLE_WITHIN, || {
            let mut statement = sqlx::query(&sql)
                .persistent(false)
                .bind(subject.as_str())
                .bind(i64::try_from(query.after).unwrap_or(i64::MAX));
            if let Some(since) = query.since {
                statement = statement.bind(since.timestamp_millis());
            }
            if let Some(until) = query.until {
                statement = statement.bind(until.timestamp_millis());
            }
            if let Some(event_type) = &query.event_type {
                statement = statement.bind(event_type.as_str());
            }
            statement
                .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
        })
        .await?;
        rows.iter().map(decode).collect()
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let follower = Follower {
            pool: self.pool.clone(),
            head: self.head.clone(),
            after,
            buffer: VecDeque::new(),
            read: true,
            ended: false,
        };
        futures::stream::unfold(follower, Follower::next).boxed()
    }

    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_event;

    fn request(stream: &str, events: &[&NewEvent]) -> AppendRequest {
        AppendRequest {
            since: Instant::now(),
            stream: stream.into(),
            expected: ExpectedVersion::Any,
            events: events.iter().map(|e| (*e).clone()).collect(),
            reply: oneshot::channel().0,
        }
    }

    /// After a write lost its connection, an append counts as stored only when all its events are,
    /// in its own stream, in its order; anything else is written again.
    #[tokio::test]
    async fn settling_finds_exactly_the_appends_that_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = super::super::open_event_store(&url).await.unwrap();
        let (e1, e2, e3) = (test_event("1"), test_event("2"), test_event("3"));
        let stored = store
            .append("a", ExpectedVersion::NoStream, vec![e1.clone(), e2.clone()])
            .await
            .unwrap();
        store
            .append("b", ExpectedVersion::NoStream, vec![e3.clone()])
            .await
            .unwrap();
        let new = test_event("new");
        let batch = [
            request("a", &[&e1, &e2]),
            request("c", &[&new]),
            request("c", &[&e3]),
            request("a", &[&e2, &e1]),
            request("a", &[&e1, &new]),
            request("a", &[&e2]),
        ];
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        let settled = settle(&mut conn, &batch).await.unwrap();
        let e2_alone = AppendResult {
            version: 1,
            position: stored.position,
        };
        assert_eq!(
            settled,
            [Some(stored), None, None, None, None, Some(e2_alone)]
        );
    }
}
