//! Relational databases for read models and accounts: SQLite (embedded default) or PostgreSQL,
//! behind sqlx's `Any` driver so one set of queries (written with `$1` placeholders, which both
//! backends accept) serves both. Each owner of tables keeps its own migrations per backend, with
//! its own range of version numbers, and runs them through [`Database::migrate`].

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

/// A connection that sat in the pool this long is checked with a round trip before it is used.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Pool settings for every pool of the project. sqlx's default checks each connection with a round
/// trip on every acquire, on top of the one it makes on every release, so a single query cost
/// three round trips; a connection in steady use has just proven itself on its release, so only
/// one that sat idle (the database may have restarted meanwhile) is checked before use.
pub fn pool_options(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_CHECK {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// How long a read-model or accounts read that lost its connection is run again ([`Database::read`]).
pub const READ_AGAIN_WITHIN: Duration = Duration::from_secs(2);

/// Whether a statement failed because its connection went away (the server restarted or cut it),
/// rather than being refused by the database: whether a write committed is then unknown, and a
/// read may simply run again on another connection.
pub fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's "connection exception" class and its shutdown codes (57P01–57P03).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Runs `migrations` through `on` (a pool or a connection), ignoring the applied migrations they do
/// not list: those of another crate sharing the database, or a newer release's.
pub(crate) async fn run_migrations<'a, A>(
    migrations: &Migrator,
    on: A,
) -> Result<(), sqlx::migrate::MigrateError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let mut migrator = Migrator {
        migrations: migrations.migrations.clone(),
        ..Migrator::DEFAULT
    };
    migrator.set_ignore_missing(true);
    migrator.run(on).await
}

/// Runs `read` again when the connection it got turned out to be gone (the server restarted and
/// the pool had not noticed yet; sqlx drops that connection on its release, and acquiring another
/// waits for the server to accept connections again). A read changes nothing, so running it again
/// is always safe; after `within` its error is returned.
pub async fn read_again_if_lost<T, Fut>(
    within: Duration,
    mut read: impl FnMut() -> Fut,
) -> Result<T, sqlx::Error>
where
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let give_up = tokio::time::Instant::now() + within;
    loop {
        match read().await {
            Err(e) if connection_lost(&e) && tokio::time::Instant::now() < give_up => {
                tracing::debug!(error = %e, "a read lost its database connection; reading again");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            done => return done,
        }
    }
}

/// Which SQL backend a [`Database`] or the SQL event store talks to, for the few statements and
/// settings that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// The backend a URL names (`sqlite:…`, `postgres:…` or `postgresql:…`), if it is one of these.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// A short name, for logs and `/ready`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A pool on the read-model / accounts database.
#[derive(Debug, Clone)]
pub struct Database {
    pub pool: AnyPool,
    pub kind: DbKind,
    /// SQLite: one connection for the write transactions ([`Database::begin_write`]). A SQLite
    /// file takes one writer at a time anyway; on a connection of their own, the writes find the
    /// pages they changed last still in its cache, where a pooled connection finds its cache
    /// stale after another connection wrote and reads the pages again.
    writes: Option<AnyPool>,
}

impl Database {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). A SQLite file and its directory are
    /// created when missing, and put in WAL mode so readers never wait for the writer.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with_schema(url, None).await
    }

    /// [`Database::connect`], with every PostgreSQL connection's `search_path` set to `schema`
    /// (which must exist): unqualified table names then mean that schema's tables. A replay builds
    /// fresh read models this way, beside the live ones, with the projector's own statements.
    pub async fn connect_with_schema(url: &str, schema: Option<&str>) -> anyhow::Result<Self> {
        install_default_drivers();
        let search_path = schema.map(|s| format!("SET search_path TO {s}"));
        let Some(kind) = DbKind::of_url(url) else {
            anyhow::bail!("unsupported database URL scheme (use sqlite:// or postgres://)");
        };
        if kind == DbKind::Sqlite {
            prepare_sqlite_file(url).await?;
        }
        let connect = |max: u32| {
            let search_path = search_path.clone();
            pool_options(max)
                .after_connect(move |conn, _| prepare_connection(conn, kind, search_path.clone()))
                .connect(url)
        };
        let max = if kind == DbKind::Sqlite { 8 } else { 16 };
        let pool = connect(max)
            .await
            .context("cannot connect to the database")?;
        let writes = match kind {
            DbKind::Sqlite => Some(connect(1).await.context("cannot connect to the database")?),
            DbKind::Postgres => None,
        };
        Ok(Self { pool, kind, writes })
    }

    /// Runs `migrator` (chosen by the caller for [`Database::kind`]). Other owners' migrations in the
    /// same database are left alone.
    pub async fn migrate(&self, migrator: &Migrator) -> anyhow::Result<()> {
        run_migrations(migrator, &self.pool)
            .await
            .context("database migration failed")?;
        Ok(())
    }

    /// Begins a transaction that is going to write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`) and so waits its turn (busy_timeout) instead of failing with
    /// `database is locked` when another connection commits between its first read and its first
    /// write, which a deferred transaction cannot recover from.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.kind {
            DbKind::Sqlite => {
                let writes = self.writes.as_ref().unwrap_or(&self.pool);
                writes.begin_with("BEGIN IMMEDIATE").await
            }
            DbKind::Postgres => self.pool.begin().await,
        }
    }

    /// Begins a write transaction for data derived from the event log (the read models with
    /// their checkpoint), which a crash may roll back because it is rebuilt from the log: on
    /// PostgreSQL its commit does not wait for the WAL to reach the disk
    /// (`synchronous_commit = off`, for this transaction only). The transaction stays atomic and
    /// is visible to other sessions at once; a crash of the PostgreSQL server (not of a client)
    /// can lose the last commits of well under a second, and with them the checkpoint that
    /// counted them, so the projector applies those events again. SQLite read models already
    /// commit this way (`synchronous = NORMAL` in WAL mode).
    pub async fn begin_derived_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.kind {
            DbKind::Sqlite => self.begin_write().await,
            // One round trip: BEGIN and the setting travel as one simple query.
            DbKind::Postgres => {
                self.pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                    .await
            }
        }
    }

    /// Runs a read, again on another connection when the one it ran on was gone, for at most
    /// [`READ_AGAIN_WITHIN`]: a database restart or failover of a second or so delays reads
    /// instead of failing them.
    pub async fn read<T, Fut>(&self, read: impl FnMut() -> Fut) -> Result<T, sqlx::Error>
    where
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        use crate::telemetry::names;
        let started = std::time::Instant::now();
        let result = read_again_if_lost(READ_AGAIN_WITHIN, read).await;
        metrics::histogram!(names::DATABASE_SECONDS, "op" => "read")
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!(names::DATABASE_ERRORS).increment(1);
        }
        result
    }

    /// Checks the database answers (for `/ready`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// A new connection's settings: SQLite's durability, lock wait, foreign keys and temporary storage;
/// the `search_path` of [`Database::connect_with_schema`].
fn prepare_connection(
    conn: &mut AnyConnection,
    kind: DbKind,
    search_path: Option<String>,
) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        if kind == DbKind::Sqlite {
            conn.execute("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
                .await?;
        }
        if let Some(set) = search_path {
            conn.execute(set.as_str()).await?;
        }
        Ok(())
    })
}

/// Creates the SQLite file with WAL journaling before the `Any` pool opens it (the `Any` URL cannot
/// carry those options).
async fn prepare_sqlite_file(url: &str) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::from_str(url)
        .context("bad sqlite URL")?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    if let Some(dir) = options.get_filename().parent() {
        if !dir.as_os_str().is_empty() {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .context("cannot open the SQLite database")?;
    pool.close().await;
    Ok(())
}

/// A SQLite URL for a file, for defaults such as `DATA_DIR/chat.db`.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Numbered placeholders for `rows` rows of `columns` values: `($1, $2), ($3, $4)` for (2, 2).
/// Used for multi-row INSERTs, `UPDATE … FROM (VALUES …)` and `IN (…)` lists, which both backends
/// accept with `$n` placeholders.
pub fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::{sqlite_url, value_rows, Database};
    use std::time::Duration;

    /// Found by the load generator (concurrent sign-ups answered 500 "database is locked"): a
    /// transaction that reads, then writes after another connection committed, cannot go on in
    /// SQLite. Write transactions begin with the write lock, so the second one waits its turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_write_transactions_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::connect(&sqlite_url(&dir.path().join("w.db")))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x BIGINT NOT NULL)")
            .execute(&db.pool)
            .await
            .unwrap();
        let mut first = db.begin_write().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *first)
            .await
            .unwrap();
        let other = db.clone();
        let second = tokio::spawn(async move {
            let mut tx = other.begin_write().await?;
            sqlx::query("INSERT INTO t (x) VALUES (2)")
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("INSERT INTO t (x) VALUES ($1)")
            .bind(n + 1)
            .execute(&mut *first)
            .await
            .unwrap();
        first.commit().await.unwrap();
        second.await.unwrap().unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 2);
    }

    /// The server process behind the connection a read gets from the pool.
    async fn backend_pid(db: &Database) -> Result<i32, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&db.pool)
            .await
    }

    /// Ends a connection from the server's side, as a restart does; returns once it has ended.
    async fn end_backend(pid: i32) {
        let admin = sqlx::PgPool::connect(&crate::testing::admin_url())
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .execute(&admin)
            .await
            .unwrap();
    }

    /// Pooled connections are not pinged on every acquire any more; one whose server side went
    /// away while it sat idle (a PostgreSQL restart) must still be replaced before a query uses it.
    #[tokio::test]
    async fn a_connection_killed_while_idle_is_replaced_before_use() {
        let pg = crate::testing::TempPostgres::create("db_idle").await;
        let db = Database::connect(&pg.url()).await.unwrap();
        let backend = || backend_pid(&db);
        let before = backend().await.unwrap();
        end_backend(before).await;
        tokio::time::sleep(super::IDLE_CHECK + Duration::from_millis(200)).await;
        let after = backend().await.expect("the dead connection was used");
        assert_ne!(before, after);
    }

    /// A read on a pooled connection the server ended a moment ago (a restart or failover, too
    /// recent for the idle check) fails on its first try; it runs again on a new connection and
    /// answers.
    #[tokio::test]
    async fn a_read_whose_connection_was_ended_runs_again_on_another() {
        let pg = crate::testing::TempPostgres::create("db_read_again").await;
        let db = Database::connect(&pg.url()).await.unwrap();
        let backend = || backend_pid(&db);
        let before = backend().await.unwrap();
        end_backend(before).await;
        let after = db.read(backend).await.expect("the read was not run again");
        assert_ne!(before, after);
    }

    /// Transactions of derived data commit without waiting for the WAL flush, and the setting
    /// ends with them: the next transaction on the same connection commits durably again.
    #[tokio::test]
    async fn only_derived_writes_commit_without_waiting_for_the_disk() {
        let pg = crate::testing::TempPostgres::create("db_derived").await;
        let connected = Database::connect(&pg.url()).await.unwrap();
        // One connection, so both transactions run on it.
        let db = Database {
            pool: super::pool_options(1).connect(&pg.url()).await.unwrap(),
            ..connected
        };
        let setting = "SELECT current_setting('synchronous_commit') || ' ' || pg_backend_pid()";
        let mut derived = db.begin_derived_write().await.unwrap();
        let inside: String = sqlx::query_scalar(setting)
            .fetch_one(&mut *derived)
            .await
            .unwrap();
        derived.commit().await.unwrap();
        let mut durable = db.begin_write().await.unwrap();
        let after: String = sqlx::query_scalar(setting)
            .fetch_one(&mut *durable)
            .await
            .unwrap();
        durable.commit().await.unwrap();
        let (inside, backend) = inside.split_once(' ').unwrap();
        assert_eq!(
            after,
            format!("on {backend}"),
            "same connection, durable again"
        );
        assert_eq!(inside, "off");
    }

    #[test]
    fn the_backend_is_known_by_the_url_scheme() {
        use super::DbKind;
        assert_eq!(
            DbKind::of_url("sqlite://./data/chat.db"),
            Some(DbKind::Sqlite)
        );
        assert_eq!(DbKind::of_url("sqlite::memory:"), Some(DbKind::Sqlite));
        assert_eq!(DbKind::of_url("postgres://u@h/db"), Some(DbKind::Postgres));
        assert_eq!(
            DbKind::of_url("postgresql://u@h/db"),
            Some(DbKind::Postgres)
        );
        assert_eq!(DbKind::of_url("esdb://h:2113"), None);
        assert_eq!(DbKind::of_url("mysql://h/db"), None);
        assert_eq!(DbKind::Postgres.name(), "postgres");
    }

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(value_rows(1, 2), "($1, $2)");
        assert_eq!(value_rows(0, 4), "");
    }
}
