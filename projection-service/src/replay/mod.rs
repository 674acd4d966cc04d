//! Replay: rebuild a projection from position 0 into fresh tables while the live ones keep
//! serving, check the rebuilt tables against the live ones at the same position, then swap them
//! in atomically.
//!
//! - The fresh tables live beside the live ones: in a schema `replay_<projection>` of the same
//!   PostgreSQL database, or in a SQLite file next to the live one (`<file>-replay-<projection>`).
//!   They are written by the projector's own code, with their own checkpoint, so an interrupted
//!   replay resumes where it stopped, and an event it cannot apply is parked there as it is live
//!   (`projection_dead_letters`, compared by which events, swapped in with the rest).
//! - The swap is one transaction on the live database that holds off the live projector (an
//!   EXCLUSIVE table lock on PostgreSQL, which readers pass; an IMMEDIATE transaction on SQLite,
//!   whose readers keep their snapshot), finds the live checkpoint equal to the rebuilt one (else
//!   it lets go, catches up and tries again), compares a SHA-256 of every table's rows in key
//!   order, and only when they agree (or with `force`) replaces the live rows with the rebuilt
//!   ones. Readers see the old rows until the commit and the new ones after it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use events_schema::Position;
use futures::TryStreamExt as _;
use infra::db::{Database, DbKind};
use infra::EventStore;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyConnection, Connection as _, Executor as _, Row as _};

use crate::read_models::checkpoint::{self, NAME as CHECKPOINT};
use crate::read_models::Projector;

/// The projections a replay can rebuild.
pub const PROJECTIONS: &[&str] = &[CHECKPOINT];

/// Events read from the log per batch (one read-model transaction each).
const BATCH: usize = 4096;
/// How long the replay waits for the live projection to reach the replay's position.
const LIVE_WAIT: Duration = Duration::from_secs(60);
/// How many times the swap lets go to catch up with a live projection that moved meanwhile.
const SWAP_ATTEMPTS: usize = 50;

/// The tables of the `read_models` projection, in the order rows are inserted (parents first),
/// with each table's columns and key.
const TABLES: &[Table] = &[
    Table {
        name: "projection_checkpoints",
        columns: &["name", "position"],
        key: "name",
        unchecked: &[],
        filled_by_upgrade: false,
    },
    // The events the read models lack: the rebuilt ones must lack the same events (which, not
    // when or in what words they were parked), and replace the live list with the tables.
    Table {
        name: "projection_dead_letters",
        columns: &["position", "event_id", "event_type", "error", "parked_at"],
        key: "position",
        unchecked: &["error", "parked_at"],
        filled_by_upgrade: false,
    },
    Table {
        name: "users",
        columns: &[
            "user_id",
            "name",
            "name_folded",
            "verified",
            "presence_visible",
        ],
        key: "user_id",
        unchecked: &[],
        filled_by_upgrade: false,
    },
    Table {
        name: "chats",
        columns: &[
            "chat_id",
            "kind",
            "name",
            "description",
            "admin",
            "deleted",
            "created_at",
            "last_version",
            "last_chat",
        ],
        key: "chat_id",
        unchecked: &[],
        filled_by_upgrade: false,
    },
    Table {
        name: "chat_members",
        columns: &["chat_id", "user_id", "read_version", "delivered_version"],
        key: "chat_id, user_id",
        unchecked: &[],
        filled_by_upgrade: false,
    },
    Table {
        name: "messages",
        columns: &[
            "chat_id",
            "version",
            "message_id",
            "sender_id",
            "content",
            "sent_at",
            "reply_to",
            "edited_at",
            "deleted",
        ],
        key: "chat_id, version",
        unchecked: &[],
        filled_by_upgrade: false,
    },
    Table {
        name: "message_reactions",
        columns: &["chat_id", "message_id", "emoji", "user_id", "position"],
        key: "message_id, emoji, user_id",
        unchecked: &[],
        filled_by_upgrade: false,
    },
    // Added after read models existed: an upgraded database has it empty until a replay fills it.
    Table {
        name: "message_attachments",
        columns: &[
            "chat_id",
            "message_id",
            "ordinal",
            "file_id",
            "name",
            "size",
            "content_type",
        ],
        key: "message_id, ordinal",
        unchecked: &[],
        filled_by_upgrade: true,
    },
    Table {
        name: "chat_memberships",
        columns: &["chat_id", "user_id", "since_position", "until_position"],
        key: "chat_id, user_id, since_position",
        unchecked: &[],
        filled_by_upgrade: true,
    },
];

struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    key: &'static str,
    /// Columns swapped in but left out of the comparison.
    unchecked: &'static [&'static str],
    /// A table an upgrade added empty beside read models that already had data: the live one
    /// lacks what happened before the upgrade until a replay fills it, so the rebuilt one replaces
    /// it without its difference refusing the swap.
    filled_by_upgrade: bool,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The rebuilt tables replaced the live ones at `position`.
    Swapped {
        position: Position,
        events: u64,
        /// Tables whose rows differed (swapped anyway, with `force`).
        differed: Vec<String>,
    },
    /// The rebuilt tables differ from the live ones at `position`; nothing was swapped and the
    /// rebuilt tables were kept for inspection.
    Differs {
        position: Position,
        tables: Vec<String>,
        kept: String,
    },
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The projection to rebuild (one of [`PROJECTIONS`]).
    pub projection: String,
    /// Swap even when the rebuilt tables differ from the live ones.
    pub force: bool,
    /// Stop after this many events of rebuilding (as if interrupted), leaving the fresh tables
    /// and their checkpoint for the next run. For tests and for replaying in slices.
    pub stop_after: Option<u64>,
}

/// Where the fresh tables of a replay live.
struct Shadow {
    db: Database,
    /// How the live database's connection names the fresh tables' namespace.
    namespace: String,
    /// The SQLite file (to attach and, after the swap, remove).
    file: Option<PathBuf>,
}

async fn open_shadow(live_url: &str, live: &Database, projection: &str) -> anyhow::Result<Shadow> {
    match live.kind {
        DbKind::Postgres => {
            let schema = format!("replay_{projection}");
            live.pool
                .execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await
                .context("creating the replay schema")?;
            let db = Database::connect_with_schema(live_url, Some(&schema)).await?;
            Ok(Shadow {
                db,
                namespace: schema,
                file: None,
            })
        }
        DbKind::Sqlite => {
            let path = sqlite_path(live_url)?;
            let file = PathBuf::from(format!("{}-replay-{projection}", path.display()));
            let db = Database::connect(&format!("sqlite://{}", file.display())).await?;
            Ok(Shadow {
                db,
                namespace: "replay".into(),
                file: Some(file),
            })
        }
    }
}

fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a sqlite URL")?;
    let path = rest.split('?').next().unwrap_or(rest);
    anyhow::ensure!(
        !path.is_empty() && path != ":memory:",
        "a replay needs a SQLite file"
    );
    Ok(PathBuf::from(path))
}

/// Reports progress: a bar on a terminal, a log line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
    events: u64,
}

impl Progress {
    fn new(from: Position, head: Position) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(head);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} positions  {msg}  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_position(from);
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            events: 0,
        }
    }

    fn advance(&mut self, position: Position, events: usize, head: Position) {
        self.events += events as u64;
        let rate = self.events as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        match &self.bar {
            Some(bar) => {
                bar.set_length(head.max(position));
                bar.set_position(position);
                bar.set_message(format!("{} events, {rate:.0}/s", self.events));
            }
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                let left = head.saturating_sub(position) as f64 / rate.max(1.0);
                tracing::info!(
                    position,
                    head,
                    events = self.events,
                    per_second = rate as u64,
                    seconds_left = left as u64,
                    "replaying"
                );
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Applies the log to `projector` from its checkpoint up to `until` (inclusive; `None`: the head
/// when it starts), at most `budget` events. Reading the next batch overlaps with applying the
/// current one (two batches in hand at most, so memory stays flat). Returns the checkpoint reached
/// and the events applied.
async fn rebuild(
    store: &Arc<dyn EventStore>,
    projector: &Projector,
    until: Option<Position>,
    budget: Option<u64>,
    progress: &mut Progress,
) -> anyhow::Result<(Position, u64)> {
    let start = projector.checkpoint().await?;
    let target = match until {
        Some(p) => p,
        None => store.head().await?,
    };
    let (batches, mut ready) = tokio::sync::mpsc::channel::<Vec<events_schema::RecordedEvent>>(1);
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut after, mut read) = (start, 0u64);
            loop {
                let room = budget.map_or(BATCH as u64, |b| (b - read).min(BATCH as u64)) as usize;
                if after >= target || room == 0 {
                    return Ok::<(), infra::StoreError>(());
                }
                let mut batch = store.read_all(after, room).await?;
                batch.retain(|e| e.position <= target);
                let Some(last) = batch.last() else {
                    return Ok(());
                };
                after = last.position;
                read += batch.len() as u64;
                if batches.send(batch).await.is_err() {
                    return Ok(());
                }
            }
        })
    };
    let (mut position, mut applied) = (start, 0u64);
    while let Some(batch) = ready.recv().await {
        position = projector.apply(&batch).await?;
        applied += batch.len() as u64;
        progress.advance(position, batch.len(), target);
    }
    reader.await.context("the log reader failed")??;
    Ok((position, applied))
}

/// Rebuilds `options.projection` from the log in `store` beside the live tables of `live_url`,
/// checks and swaps (see the module's documentation).
pub async fn replay(
    store: Arc<dyn EventStore>,
    live_url: &str,
    options: &ReplayOptions,
) -> anyhow::Result<Option<ReplayOutcome>> {
    anyhow::ensure!(
        PROJECTIONS.contains(&options.projection.as_str()),
        "no projection named {:?}; there is: {}",
        options.projection,
        PROJECTIONS.join(", ")
    );
    let live_db = Database::connect(live_url)
        .await
        .context("database (DATABASE_URL) unavailable")?;
    let live = Projector::new(live_db.clone()).await?;
    let shadow = open_shadow(live_url, &live_db, &options.projection).await?;
    let rebuilt = Projector::new(shadow.db.clone()).await?;

    let from = rebuilt.checkpoint().await?;
    let head = store.head().await?;
    tracing::info!(from, head, projection = %options.projection, "rebuilding into fresh tables");
    let mut progress = Progress::new(from, head);
    let rebuilding = Instant::now();
    let (mut position, mut events) =
        rebuild(&store, &rebuilt, None, options.stop_after, &mut progress).await?;
    progress.finish();
    let seconds = rebuilding.elapsed().as_secs_f64();
    tracing::info!(
        events,
        position,
        seconds,
        per_second = (events as f64 / seconds.max(1e-6)) as u64,
        "rebuilt"
    );
    if options.stop_after.is_some_and(|limit| events >= limit) && position < store.head().await? {
        tracing::info!(position, events, "stopped as asked; run again to resume");
        return Ok(None);
    }

    // The live projection must have reached the rebuilt one before they can be compared.
    let deadline = Instant::now() + LIVE_WAIT;
    while live.checkpoint().await? < position {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the live projection is at {} and the replay at {position}; is the projector running?",
            live.checkpoint().await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut conn = AnyConnection::connect(live_url).await?;
    if let Some(file) = &shadow.file {
        let attach = format!(
            "ATTACH DATABASE '{}' AS {}",
            file.display().to_string().replace('\'', "''"),
            shadow.namespace
        );
        conn.execute(attach.as_str()).await?;
        conn.execute("PRAGMA busy_timeout = 5000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
    }
    for _ in 0..SWAP_ATTEMPTS {
        let mut tx = begin_swap(&mut conn, live_db.kind).await?;
        let live_position = checkpoint::read(&mut *tx).await?;
        if live_position != position {
            // The live projection moved on: let it go, catch up to it, and try again.
            tx.rollback().await?;
            let mut quiet = Progress::new(position, live_position);
            let (reached, more) =
                rebuild(&store, &rebuilt, Some(live_position), None, &mut quiet).await?;
            position = reached;
            events += more;
            continue;
        }
        let mut differed = Vec::new();
        for table in TABLES {
            let live_sum = checksum(&mut tx, "", table).await?;
            let rebuilt_sum = checksum(&mut tx, &format!("{}.", shadow.namespace), table).await?;
            if live_sum != rebuilt_sum && table.filled_by_upgrade {
                tracing::info!(
                    table = table.name,
                    live_rows = live_sum.0,
                    rebuilt_rows = rebuilt_sum.0,
                    "the rebuilt table fills what the live one lacked from before the upgrade"
                );
            } else if live_sum != rebuilt_sum {
                tracing::warn!(
                    table = table.name,
                    live_rows = live_sum.0,
                    rebuilt_rows = rebuilt_sum.0,
                    "the rebuilt table differs from the live one"
                );
                differed.push(table.name.to_owned());
            }
        }
        if !differed.is_empty() && !options.force {
            tx.rollback().await?;
            let kept = match &shadow.file {
                Some(file) => file.display().to_string(),
                None => format!("schema {}", shadow.namespace),
            };
            return Ok(Some(ReplayOutcome::Differs {
                position,
                tables: differed,
                kept,
            }));
        }
        for table in TABLES.iter().rev() {
            tx.execute(format!("DELETE FROM {}", table.name).as_str())
                .await?;
        }
        for table in TABLES {
            let columns = table.columns.join(", ");
            let copy = format!(
                "INSERT INTO {name} ({columns}) SELECT {columns} FROM {ns}.{name}",
                name = table.name,
                ns = shadow.namespace
            );
            tx.execute(copy.as_str()).await?;
        }
        tx.commit().await?;
        drop_shadow(conn, shadow).await;
        return Ok(Some(ReplayOutcome::Swapped {
            position,
            events,
            differed,
        }));
    }
    anyhow::bail!(
        "the live projection kept moving; {SWAP_ATTEMPTS} attempts to swap did not catch it"
    )
}

/// Opens the swap's transaction, holding off the live projector but not the readers.
async fn begin_swap(
    conn: &mut AnyConnection,
    kind: DbKind,
) -> anyhow::Result<sqlx::Transaction<'_, Any>> {
    match kind {
        DbKind::Postgres => {
            let mut tx = conn.begin().await?;
            let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
            tx.execute(format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", ")).as_str())
                .await?;
            Ok(tx)
        }
        DbKind::Sqlite => Ok(conn.begin_with("BEGIN IMMEDIATE").await?),
    }
}

/// The number of rows and a SHA-256 of every row (each column as text, NULL distinguished) in key
/// order; streamed, so memory does not grow with the table.
async fn checksum(
    tx: &mut sqlx::Transaction<'_, Any>,
    namespace: &str,
    table: &Table,
) -> anyhow::Result<(u64, String)> {
    let row_text = table
        .columns
        .iter()
        .filter(|c| !table.unchecked.contains(c))
        .map(|c| format!("COALESCE(CAST({c} AS TEXT), '\u{1}')"))
        .collect::<Vec<_>>()
        .join(" || '\u{2}' || ");
    let sql = format!(
        "SELECT {row_text} FROM {namespace}{name} ORDER BY {key}",
        name = table.name,
        key = table.key
    );
    let mut rows = sqlx::query(&sql).fetch(&mut **tx);
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await? {
        let text: String = row.try_get(0)?;
        hasher.update(text.as_bytes());
        hasher.update([0u8]);
        count += 1;
    }
    Ok((count, hex::encode(hasher.finalize())))
}

/// Removes the fresh tables once they are swapped in.
async fn drop_shadow(mut conn: AnyConnection, shadow: Shadow) {
    shadow.db.pool.close().await;
    let result = match &shadow.file {
        Some(file) => {
            let _ = conn
                .execute(format!("DETACH DATABASE {}", shadow.namespace).as_str())
                .await;
            let mut result = Ok(());
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{}{suffix}", file.display());
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        result = Err(anyhow::anyhow!("removing {path}: {e}"));
                    }
                }
            }
            result
        }
        None => conn
            .execute(format!("DROP SCHEMA {} CASCADE", shadow.namespace).as_str())
            .await
            .map(|_| ())
            .map_err(Into::into),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "the replayed tables are swapped in, but their leftovers could not be removed");
    }
    let _ = conn.close().await;
}
