//! The account tables: every statement the accounts run, each row read into a named struct.
//! Times are Unix milliseconds; flags are 0 or 1 (SQLite has no booleans).

use events_schema::UserId;
use sqlx::{Any, Executor};

use super::session_id::SessionId;
use super::values::Email;

/// An account, found by its e-mail address.
#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    pub user_id: String,
    pub name: String,
    pub password_hash: String,
    verified: i64,
    registered: i64,
}

impl AccountRow {
    pub fn is_verified(&self) -> bool {
        self.verified != 0
    }

    /// Whether the account's `UserRegistered` is known to be in the log.
    pub fn is_registered(&self) -> bool {
        self.registered != 0
    }
}

/// How long a session lives, and whether it was ended.
#[derive(sqlx::FromRow)]
pub(super) struct SessionLife {
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl SessionLife {
    /// Not revoked and not past its refresh lifetime at `now`.
    pub fn open_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// The session whose current refresh token has a given hash.
#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    pub session_id: String,
    pub user_id: String,
    #[sqlx(flatten)]
    pub life: SessionLife,
}

#[derive(sqlx::FromRow)]
struct SessionIdRow {
    session_id: String,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    code_hash: String,
}

#[derive(sqlx::FromRow)]
struct NameRow {
    name: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct EmailRow {
    pub user_id: String,
    pub email: String,
}

pub(super) async fn account<'c>(
    db: impl Executor<'c, Database = Any>,
    email: &Email,
) -> sqlx::Result<Option<AccountRow>> {
    sqlx::query_as(
        "SELECT user_id, name, password_hash, verified, registered FROM accounts WHERE email = $1",
    )
    .bind(email.as_str())
    .fetch_optional(db)
    .await
}

/// A new unverified account; `false` when the address already has one.
pub(super) async fn insert_account<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &UserId,
    email: &Email,
    name: &str,
    password_hash: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO accounts (user_id, email, name, password_hash, verified, registered, created_at) \
         VALUES ($1, $2, $3, $4, 0, 0, $5) ON CONFLICT (email) DO NOTHING",
    )
    .bind(user_id.as_str())
    .bind(email.as_str())
    .bind(name)
    .bind(password_hash)
    .bind(now)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

pub(super) async fn replace_password<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
    password_hash: &str,
    name: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET password_hash = $1, name = $2 WHERE user_id = $3")
        .bind(password_hash)
        .bind(name)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

pub(super) async fn mark_verified<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET verified = 1 WHERE user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

pub(super) async fn mark_registered<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &UserId,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET registered = 1 WHERE user_id = $1")
        .bind(user_id.as_str())
        .execute(db)
        .await?;
    Ok(())
}

pub(super) async fn name_of<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
) -> sqlx::Result<Option<String>> {
    let row: Option<NameRow> = sqlx::query_as("SELECT name FROM accounts WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| r.name))
}

/// The addresses of the accounts among `users`.
pub(super) async fn emails_of<'c>(
    db: impl Executor<'c, Database = Any>,
    users: &[UserId],
) -> sqlx::Result<Vec<EmailRow>> {
    let sql = format!(
        "SELECT user_id, email FROM accounts WHERE user_id IN {}",
        infra::db::value_rows(1, users.len())
    );
    let mut query = sqlx::query_as(&sql);
    for user in users {
        query = query.bind(user.as_str());
    }
    query.fetch_all(db).await
}

/// The two kinds of mailed code: one table each, the same shape, so neither works for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codes {
    /// Proves an e-mail address at sign-up.
    Verification,
    /// Lets a forgotten password be replaced.
    PasswordReset,
}

impl Codes {
    fn table(self) -> &'static str {
        match self {
            Codes::Verification => "verification_codes",
            Codes::PasswordReset => "password_reset_codes",
        }
    }
}

/// Writes a code, replacing (and so voiding) any earlier one of its kind, with no try spent.
pub(super) async fn put_code<'c>(
    db: impl Executor<'c, Database = Any>,
    codes: Codes,
    user_id: &str,
    code_hash: &str,
    expires_at: i64,
) -> sqlx::Result<()> {
    let sql = format!(
        "INSERT INTO {} (user_id, code_hash, expires_at, failures) VALUES ($1, $2, $3, 0) \
         ON CONFLICT (user_id) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, failures = 0",
        codes.table()
    );
    sqlx::query(&sql)
        .bind(user_id)
        .bind(code_hash)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// Counts one try at the account's live code of this kind and returns its hash; `None` when there
/// is no live code, or its tries are spent.
pub(super) async fn take_code_try<'c>(
    db: impl Executor<'c, Database = Any>,
    codes: Codes,
    user_id: &str,
    max_failures: i64,
    now: i64,
) -> sqlx::Result<Option<String>> {
    let sql = format!(
        "UPDATE {} SET failures = failures + 1 \
         WHERE user_id = $1 AND failures < $2 AND expires_at > $3 RETURNING code_hash",
        codes.table()
    );
    let row: Option<CodeRow> = sqlx::query_as(&sql)
        .bind(user_id)
        .bind(max_failures)
        .bind(now)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| r.code_hash))
}

/// Deletes the code; `false` when someone else spent it first.
pub(super) async fn spend_code<'c>(
    db: impl Executor<'c, Database = Any>,
    codes: Codes,
    user_id: &str,
    code_hash: &str,
) -> sqlx::Result<bool> {
    let sql = format!(
        "DELETE FROM {} WHERE user_id = $1 AND code_hash = $2",
        codes.table()
    );
    let spent = sqlx::query(&sql)
        .bind(user_id)
        .bind(code_hash)
        .execute(db)
        .await?;
    Ok(spent.rows_affected() > 0)
}

pub(super) async fn insert_session<'c>(
    db: impl Executor<'c, Database = Any>,
    session: &SessionId,
    user_id: &str,
    refresh_hash: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (session_id, user_id, refresh_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session.as_str())
    .bind(user_id)
    .bind(refresh_hash)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn session_by_refresh<'c>(
    db: impl Executor<'c, Database = Any>,
    refresh_hash: &str,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "SELECT session_id, user_id, expires_at, revoked_at FROM sessions WHERE refresh_hash = $1",
    )
    .bind(refresh_hash)
    .fetch_optional(db)
    .await
}

pub(super) async fn session_life<'c>(
    db: impl Executor<'c, Database = Any>,
    session: &SessionId,
) -> sqlx::Result<Option<SessionLife>> {
    sqlx::query_as("SELECT expires_at, revoked_at FROM sessions WHERE session_id = $1")
        .bind(session.as_str())
        .fetch_optional(db)
        .await
}

/// Replaces the session's refresh token, if `old_hash` is still its current one and the session
/// is not revoked; `false` otherwise.
pub(super) async fn rotate_refresh<'c>(
    db: impl Executor<'c, Database = Any>,
    session: &str,
    old_hash: &str,
    new_hash: &str,
    expires_at: i64,
) -> sqlx::Result<bool> {
    let rotated = sqlx::query(
        "UPDATE sessions SET refresh_hash = $1, expires_at = $2 WHERE session_id = $3 AND refresh_hash = $4 AND revoked_at IS NULL",
    )
    .bind(new_hash)
    .bind(expires_at)
    .bind(session)
    .bind(old_hash)
    .execute(db)
    .await?;
    Ok(rotated.rows_affected() > 0)
}

/// Remembers a refresh token rotated away, so that presenting it again is recognised.
pub(super) async fn record_spent<'c>(
    db: impl Executor<'c, Database = Any>,
    refresh_hash: &str,
    session: &SessionId,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO spent_refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
        .bind(refresh_hash)
        .bind(session.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// The session of a refresh token already rotated away.
pub(super) async fn spent_session<'c>(
    db: impl Executor<'c, Database = Any>,
    refresh_hash: &str,
) -> sqlx::Result<Option<SessionId>> {
    let row: Option<SessionIdRow> =
        sqlx::query_as("SELECT session_id FROM spent_refresh_tokens WHERE token_hash = $1")
            .bind(refresh_hash)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|r| SessionId::from_stored(r.session_id)))
}

/// The session of a refresh token, current or spent.
pub(super) async fn session_of_refresh<'c>(
    db: impl Executor<'c, Database = Any>,
    refresh_hash: &str,
) -> sqlx::Result<Option<SessionId>> {
    let row: Option<SessionIdRow> = sqlx::query_as(
        "SELECT session_id FROM sessions WHERE refresh_hash = $1 \
         UNION SELECT session_id FROM spent_refresh_tokens WHERE token_hash = $1",
    )
    .bind(refresh_hash)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| SessionId::from_stored(r.session_id)))
}

pub(super) async fn revoke_session<'c>(
    db: impl Executor<'c, Database = Any>,
    session: &SessionId,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(session.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// Revokes every open session of the account; returns them.
pub(super) async fn revoke_sessions_of<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
    now: i64,
) -> sqlx::Result<Vec<SessionId>> {
    let ended: Vec<SessionIdRow> = sqlx::query_as(
        "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING session_id",
    )
    .bind(now)
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(ended
        .into_iter()
        .map(|r| SessionId::from_stored(r.session_id))
        .collect())
}

pub(super) async fn set_password<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
    password_hash: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET password_hash = $1 WHERE user_id = $2")
        .bind(password_hash)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

pub(super) async fn set_name<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
    name: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET name = $1 WHERE user_id = $2")
        .bind(name)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

/// One open session, as its user sees it.
#[derive(sqlx::FromRow)]
pub(super) struct OpenSessionRow {
    pub session_id: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// The user's sessions open at `now`, the newest first.
pub(super) async fn open_sessions_of<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
    now: i64,
) -> sqlx::Result<Vec<OpenSessionRow>> {
    sqlx::query_as(
        "SELECT session_id, created_at, last_used_at, user_agent, ip FROM sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         ORDER BY created_at DESC, session_id DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(db)
    .await
}

#[derive(sqlx::FromRow)]
struct CountRow {
    n: i64,
}

pub(super) async fn count_open_sessions<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
    now: i64,
) -> sqlx::Result<i64> {
    let row: CountRow = sqlx::query_as(
        "SELECT COUNT(*) AS n FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(db)
    .await?;
    Ok(row.n)
}

/// Notes the client a session was opened from.
pub(super) async fn set_session_client<'c>(
    db: impl Executor<'c, Database = Any>,
    session: &SessionId,
    user_agent: Option<&str>,
    ip: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET user_agent = $1, ip = $2 WHERE session_id = $3")
        .bind(user_agent)
        .bind(ip)
        .bind(session.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// Moves the session's last use to `now`, unless it moved within `min_gap` milliseconds.
pub(super) async fn touch_session<'c>(
    db: impl Executor<'c, Database = Any>,
    session: &SessionId,
    now: i64,
    min_gap: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sessions SET last_used_at = $1 WHERE session_id = $2 \
         AND (last_used_at IS NULL OR last_used_at <= $3)",
    )
    .bind(now)
    .bind(session.as_str())
    .bind(now - min_gap)
    .execute(db)
    .await?;
    Ok(())
}
