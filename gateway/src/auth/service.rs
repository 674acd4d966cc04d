//! The accounts' service: what it holds, and the helpers its operations share. The operations are
//! in [`super::accounts`] (sign-up, verification, login) and [`super::sessions`] (tokens and
//! sessions).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events_schema::{UserId, UserName};
use infra::db::{Database, DbKind};
use sqlx::migrate::Migrator;

use super::error::AuthError;
use super::passwords::PasswordHasherPool;
use super::tokens::TokenKeys;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/accounts/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/accounts/postgres");

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct AuthService {
    pub(super) db: Database,
    pub(super) keys: TokenKeys,
    pub(super) hasher: PasswordHasherPool,
    pub(super) access_ttl: Duration,
    pub(super) refresh_ttl: Duration,
    /// When each session's last use was last written.
    pub(super) touched: super::manage::Touched,
    clock: Clock,
}

impl AuthService {
    /// Migrates the account tables and prepares the hasher (which hashes a dummy password once).
    pub async fn new(
        db: Database,
        secret: &[u8],
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> anyhow::Result<Self> {
        let migrator = match db.kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        db.migrate(migrator).await?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let hasher = PasswordHasherPool::new(cores)
            .await
            .map_err(|e| anyhow::anyhow!("password hasher: {e}"))?;
        Ok(Self {
            db,
            keys: TokenKeys::new(secret),
            hasher,
            access_ttl,
            refresh_ttl,
            touched: Default::default(),
            clock: Arc::new(Utc::now),
        })
    }

    /// Replaces the clock (tests of code expiry).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Now, in Unix milliseconds (as the tables keep times).
    pub(super) fn now(&self) -> i64 {
        (self.clock)().timestamp_millis()
    }
}

/// A user id read back from the tables, where only valid ones are written.
pub(super) fn stored_user(id: String) -> Result<UserId, AuthError> {
    UserId::parse(&id).map_err(|_| AuthError::Internal("malformed stored user id".into()))
}

/// A name read back from the tables, where only valid ones are written.
pub(super) fn stored_name(name: String) -> Result<UserName, AuthError> {
    UserName::parse(&name).map_err(|_| AuthError::Internal("malformed stored name".into()))
}
