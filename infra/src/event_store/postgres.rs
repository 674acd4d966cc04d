//! The PostgreSQL backend: appends from any number of processes serialize on an advisory lock so
//! the log's positions follow commit order.

use std::sync::Arc;

use super::sql::{migrate, SqlEventStore};
use super::{EventStore, StoreError};
use crate::db::DbKind;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/events/postgres");

/// Opens the PostgreSQL event store at `url` (`postgres://…`), running its migrations.
pub async fn open(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    // Fail within seconds (not the pool's default 30 s) when the server is not there.
    let setup = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await?;
    migrate(setup, &MIGRATOR).await?;
    Ok(Arc::new(
        SqlEventStore::connect(url, DbKind::Postgres).await?,
    ))
}
