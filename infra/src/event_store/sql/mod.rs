//! The event store over SQL, shared by the SQLite and PostgreSQL backends through sqlx's `Any`
//! driver (`$n` placeholders work on both). Only connection settings, the append lock and
//! migrations differ per backend ([`DbKind`]).
//!
//! - [`append`]: one writer per store commits appends in groups; [`append::BatchPlan`] decides
//!   what a group writes. On PostgreSQL the writer is a task on an `Any` connection;
//! - [`sqlite_writer`]: on SQLite, a thread of its own on a plain rusqlite connection.
//! - [`settle`]: a group whose connection went away mid-write (a database restart) is settled on a
//!   new connection: the appends found stored are answered, the others written again, for at most
//!   [`SETTLE_WITHIN`] after the oldest was made (docs/design.md).
//! - [`read`]: stream and log reads, audit pages, and the followers of `subscribe_all`.
//! - [`schema`]: the `events` table's migrations and columns, one row in and out.

mod announce;
mod append;
mod read;
mod schema;
mod settle;
mod sqlite_writer;

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use events_schema::{NewEvent, Position, RecordedEvent};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use sqlx::any::{install_default_drivers, AnyConnectOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{AppendResult, AuditQuery, EventStore, ExpectedVersion, StoreError};
use crate::db::DbKind;
use append::{AppendRequest, MAX_BATCH};
pub(super) use schema::migrate;

/// How long after an append was made a write that lost its connection is settled and retried;
/// also how long a read that lost its connection is run again. Commands are answered within 5 s
/// (`bus::COMMAND_TIMEOUT`); this leaves room for a command that first waited for its stream's
/// previous write, and for the answer's way back.
const SETTLE_WITHIN: Duration = Duration::from_secs(2);

/// The SQL event store.
pub struct SqlEventStore {
    pool: AnyPool,
    kind: DbKind,
    writer: mpsc::Sender<AppendRequest>,
    head: watch::Receiver<Committed>,
    /// PostgreSQL: the highest position the database announced (any process's appends).
    announced: Option<watch::Receiver<Position>>,
}

/// What the writer committed last: the log's head as this process knows it, and the events of
/// that commit (empty when they are not in hand: followers read them back).
#[derive(Clone)]
struct Committed {
    head: Position,
    events: Arc<[RecordedEvent]>,
}

impl SqlEventStore {
    /// Connects readers and the writer to an already migrated database.
    pub async fn connect(url: &str, kind: DbKind) -> Result<Self, StoreError> {
        install_default_drivers();
        let pool = crate::db::pool_options(8)
            .after_connect(move |conn, _| Box::pin(async move { prepare(conn, kind).await }))
            .connect(url)
            .await?;
        let start = read::head_of(&pool).await?;
        let (head_tx, head) = watch::channel(Committed {
            head: start,
            events: Arc::from([]),
        });
        let (writer, requests) = mpsc::channel(4 * MAX_BATCH);
        let announced = match kind {
            DbKind::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
                sqlite_writer::spawn(options.get_filename(), requests, head_tx)?;
                None
            }
            DbKind::Postgres => {
                let options: AnyConnectOptions = url.parse()?;
                let writer_conn = connect_writer(&options, kind).await?;
                tokio::spawn(append::write_loop(
                    writer_conn,
                    options,
                    kind,
                    requests,
                    head_tx,
                ));
                Some(announce::listen(url.to_owned()))
            }
        };
        Ok(Self {
            pool,
            kind,
            writer,
            head,
            announced,
        })
    }
}

/// Per-connection settings (SQLite's durability, lock wait and temporary storage).
fn prepare(conn: &mut AnyConnection, kind: DbKind) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        if kind == DbKind::Sqlite {
            // Statement journals and sorts in memory: they are never durable state, and as files
            // they were most of the store's writes.
            let settings =
                "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;";
            conn.execute(settings).await?;
        }
        Ok(())
    })
}

/// A connection of the writer (not pooled: it holds the batch's transaction).
async fn connect_writer(
    options: &AnyConnectOptions,
    kind: DbKind,
) -> Result<AnyConnection, sqlx::Error> {
    let mut conn = AnyConnection::connect_with(options).await?;
    prepare(&mut conn, kind).await?;
    Ok(conn)
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
        read::read_stream(&self.pool, stream, from_version, max).await
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all_from(&self.pool, after, max).await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        read::head_of(&self.pool).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<RecordedEvent>, StoreError> {
        read::audit(&self.pool, query).await
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let follower = read::Follower {
            pool: self.pool.clone(),
            head: self.head.clone(),
            after,
            buffer: VecDeque::new(),
            read: true,
            ended: false,
            poll: read::POLL,
            announced: self.announced.clone(),
        };
        futures::stream::unfold(follower, read::Follower::next).boxed()
    }

    fn backend(&self) -> &'static str {
        self.kind.name()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
