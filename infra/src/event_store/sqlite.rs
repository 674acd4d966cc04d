//! The SQLite backend (embedded default): one file in WAL mode with `synchronous = FULL`, so an
//! acknowledged append survives a crash; readers never wait for the writer.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::sql::{migrate, SqlEventStore};
use super::{EventStore, StoreError};
use crate::db::DbKind;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/events/sqlite");

/// Opens (creating when missing) the SQLite event store at `url` (`sqlite://path`).
pub async fn open(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    if let Some(dir) = options.get_filename().parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
    }
    // Create the file, set WAL (persistent in the file) and migrate with a typed connection; the
    // store itself then runs on the `Any` driver shared with PostgreSQL.
    let setup = sqlx::SqlitePool::connect_with(options).await?;
    migrate(setup, &MIGRATOR).await?;
    Ok(Arc::new(SqlEventStore::connect(url, DbKind::Sqlite).await?))
}
