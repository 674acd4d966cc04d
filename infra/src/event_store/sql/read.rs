//! Reads: a stream, the log after a position, an audit page, the head, and the followers of
//! `subscribe_all`.
//!
//! Followers take the events this process just committed from the writer, not from the database,
//! whenever they continue right where the follower is; they read the database only to catch up,
//! after a gap (another process appended in between, or they fell behind), when PostgreSQL
//! announces another process's appends ([`super::announce`]), and on a slow look for appends
//! nothing announced.

use std::collections::VecDeque;
use std::time::Duration;

use events_schema::{Position, RecordedEvent};
use sqlx::AnyPool;
use tokio::sync::watch;

use super::schema::{decode, COLUMNS};
use super::{Committed, SETTLE_WITHIN};
use crate::db::read_again_if_lost;
use crate::event_store::{AuditQuery, AuditSubject, StoreError};

/// How soon after its last event a follower first looks for events written by other processes.
pub(super) const POLL: Duration = Duration::from_millis(200);
/// The longest a follower waits between looks while nothing happens. This process's commits wake
/// its followers at once, and PostgreSQL announces other processes' appends; the look is for
/// another process on the same SQLite file and for an announcement lost with its connection, so an
/// idle server need not wake five times a second.
const POLL_IDLE: Duration = Duration::from_secs(5);
/// Events read per page while catching up.
const PAGE: usize = 512;

/// The position of the last event of the log (0 when empty).
pub(super) async fn head_of(pool: &AnyPool) -> Result<Position, StoreError> {
    let head: i64 = read_again_if_lost(SETTLE_WITHIN, || {
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(position), 0) AS BIGINT) FROM events")
            .fetch_one(pool)
    })
    .await?;
    Ok(head as Position)
}

pub(super) async fn read_stream(
    pool: &AnyPool,
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
            .fetch_all(pool)
    })
    .await?;
    rows.iter().map(decode).collect()
}

pub(super) async fn read_all_from(
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

pub(super) async fn audit(
    pool: &AnyPool,
    query: &AuditQuery,
) -> Result<Vec<RecordedEvent>, StoreError> {
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
            .fetch_all(pool)
    })
    .await?;
    rows.iter().map(decode).collect()
}

/// The state of one `subscribe_all` follower.
pub(super) struct Follower {
    pub pool: AnyPool,
    pub head: watch::Receiver<Committed>,
    pub after: Position,
    pub buffer: VecDeque<RecordedEvent>,
    /// The database may hold events after `after` that the follower has not seen.
    pub read: bool,
    pub ended: bool,
    /// How long to wait for a commit before looking; doubles while nothing happens, up to
    /// [`POLL_IDLE`], and drops back to [`POLL`] when an event arrives.
    pub poll: Duration,
    /// PostgreSQL: the highest position the database announced.
    pub announced: Option<watch::Receiver<Position>>,
}

/// What ended a follower's wait.
enum Woken {
    /// This process committed (`Err`: its writer is gone).
    Committed(Result<(), watch::error::RecvError>),
    /// The database announced appends (`Err`: the listener is gone).
    Announced(Result<(), watch::error::RecvError>),
    /// Nothing came in time.
    Timeout,
}

impl Follower {
    pub async fn next(mut self) -> Option<(Result<RecordedEvent, StoreError>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.after = event.position;
                self.poll = POLL;
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
            match self.wait().await {
                Woken::Committed(Ok(())) => self.take_committed(),
                Woken::Committed(Err(_)) => {
                    // The writer is gone; keep polling at the same pace rather than spinning.
                    tokio::time::sleep(self.poll).await;
                    self.read = true;
                }
                Woken::Announced(Ok(())) => {
                    let announced = self.announced.as_mut().map(|a| *a.borrow_and_update());
                    // This process's own appends are announced too, usually after the follower
                    // took them from the writer.
                    if announced.is_some_and(|position| position > self.after) {
                        self.read = true;
                    }
                }
                Woken::Announced(Err(_)) => self.announced = None,
                Woken::Timeout => {
                    self.read = true;
                    self.poll = (self.poll * 2).min(POLL_IDLE);
                }
            }
        }
    }

    /// Waits for this process's next commit, an announcement, or the time to look.
    async fn wait(&mut self) -> Woken {
        let announced = async {
            match self.announced.as_mut() {
                Some(announced) => announced.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            committed = self.head.changed() => Woken::Committed(committed),
            announced = announced => Woken::Announced(announced),
            () = tokio::time::sleep(self.poll) => Woken::Timeout,
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
