//! Accounts, verification codes and sessions: ordinary tables (never events), because they hold
//! secrets. The chat history only learns that a user registered, was renamed or was verified.
//!
//! - Passwords: argon2id ([`passwords`]); an unknown e-mail is verified against a dummy hash.
//! - Codes: 6 digits, stored as keyed hashes, 10 minutes, void after 5 wrong tries, replaced on resend.
//! - Sessions: one per login; an opaque refresh token (stored hashed) that rotates on `/refresh`;
//!   presenting a spent one revokes the session. Access tokens are JWTs naming their session, and a
//!   revoked session's access tokens stop working at once.

mod passwords;
mod tokens;
mod values;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events_schema::{UserId, UserName};
use infra::db::{Database, DbKind};
use sqlx::migrate::Migrator;
use subtle::ConstantTimeEq;
use thiserror::Error;

pub use passwords::PasswordHasherPool;
pub use tokens::{AccessClaims, AccessProblem};
pub use values::{Email, Password, SessionId};

use tokens::TokenKeys;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/accounts/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/accounts/postgres");

/// How long a verification code lives.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong codes after which the code is void.
pub const MAX_CODE_FAILURES: i64 = 5;

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("{0}")]
    InvalidInput(&'static str),
    #[error("user already exists")]
    AlreadyExists,
    #[error("wrong, used or expired verification code")]
    InvalidCode,
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    #[error("account not verified")]
    NotVerified,
    #[error("invalid refresh token")]
    InvalidRefresh,
    #[error("spent refresh token presented again")]
    RefreshReused { session_id: SessionId },
    #[error("invalid access token")]
    InvalidAccess,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Internal(format!("accounts database: {e}"))
    }
}

/// A fresh access and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

pub enum SignupOutcome {
    /// A new account; the caller records `UserRegistered` and mails the code.
    Created { user_id: UserId, code: String },
    /// An unverified account signed up again: new password and code; `renamed` when the name changed.
    Replaced {
        user_id: UserId,
        code: String,
        renamed: Option<UserName>,
        ended_sessions: Vec<SessionId>,
    },
}

/// A successful verification or login.
pub struct SignedIn {
    pub user_id: UserId,
    pub name: UserName,
    pub tokens: TokenPair,
    pub session_id: SessionId,
}

pub struct Resent {
    pub user_id: UserId,
    pub name: UserName,
    pub code: String,
}

/// Who a handshake's credentials belong to.
pub struct Authenticated {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub name: String,
    /// Set when the access token had expired and the refresh token was used to mint a new one.
    pub fresh_access: Option<String>,
}

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct AuthService {
    db: Database,
    keys: TokenKeys,
    hasher: PasswordHasherPool,
    access_ttl: Duration,
    refresh_ttl: Duration,
    clock: Clock,
}

struct AccountRow {
    user_id: String,
    name: String,
    password_hash: String,
    verified: bool,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn stored_user(id: String) -> Result<UserId, AuthError> {
    UserId::parse(&id).map_err(|_| AuthError::Internal("malformed stored user id".into()))
}

fn signed_in(
    account: AccountRow,
    session_id: SessionId,
    tokens: TokenPair,
) -> Result<SignedIn, AuthError> {
    Ok(SignedIn {
        user_id: stored_user(account.user_id)?,
        name: stored_name(account.name)?,
        tokens,
        session_id,
    })
}

fn stored_name(name: String) -> Result<UserName, AuthError> {
    UserName::parse(&name).map_err(|_| AuthError::Internal("malformed stored name".into()))
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
            clock: Arc::new(Utc::now),
        })
    }

    /// Replaces the clock (tests of code expiry).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> i64 {
        millis((self.clock)())
    }

    async fn account(&self, email: &Email) -> Result<Option<AccountRow>, AuthError> {
        let row: Option<(String, String, String, i64)> = self
            .db
            .read(|| {
                sqlx::query_as(
                    "SELECT user_id, name, password_hash, verified FROM accounts WHERE email = $1",
                )
                .bind(email.as_str())
                .fetch_optional(&self.db.pool)
            })
            .await?;
        Ok(
            row.map(|(user_id, name, password_hash, verified)| AccountRow {
                user_id,
                name,
                password_hash,
                verified: verified != 0,
            }),
        )
    }

    /// Writes a new code for `user_id`, replacing (and so voiding) any earlier one.
    async fn store_code<'c, E>(&self, executor: E, user_id: &str) -> Result<String, AuthError>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let code = tokens::new_code();
        let hash = self.keys.hash_secret("code", &code);
        sqlx::query(
            "INSERT INTO verification_codes (user_id, code_hash, expires_at, failures) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (user_id) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, failures = 0",
        )
        .bind(user_id)
        .bind(hash)
        .bind(self.now() + CODE_TTL.as_millis() as i64)
        .execute(executor)
        .await?;
        Ok(code)
    }

    /// `POST /signup`.
    pub async fn signup(
        &self,
        name: &UserName,
        email: &Email,
        password: &Password,
    ) -> Result<SignupOutcome, AuthError> {
        if let Some(existing) = self.account(email).await? {
            if existing.verified {
                return Err(AuthError::AlreadyExists);
            }
        }
        let hash = self.hasher.hash(password.expose()).await?;
        let mut tx = self.db.begin_write().await?;
        let existing: Option<(String, String, i64)> =
            sqlx::query_as("SELECT user_id, name, verified FROM accounts WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let outcome = match existing {
            Some((_, _, verified)) if verified != 0 => return Err(AuthError::AlreadyExists),
            Some((user_id, old_name, _)) => {
                sqlx::query("UPDATE accounts SET password_hash = $1, name = $2 WHERE user_id = $3")
                    .bind(&hash)
                    .bind(name.as_str())
                    .bind(&user_id)
                    .execute(&mut *tx)
                    .await?;
                let ended: Vec<(String,)> = sqlx::query_as(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING session_id",
                )
                .bind(self.now())
                .bind(&user_id)
                .fetch_all(&mut *tx)
                .await?;
                let code = self.store_code(&mut *tx, &user_id).await?;
                SignupOutcome::Replaced {
                    user_id: stored_user(user_id)?,
                    code,
                    renamed: (old_name != name.as_str()).then(|| name.clone()),
                    ended_sessions: ended
                        .into_iter()
                        .map(|(s,)| SessionId::from_stored(s))
                        .collect(),
                }
            }
            None => {
                let user_id = UserId::generate();
                let inserted = sqlx::query(
                    "INSERT INTO accounts (user_id, email, name, password_hash, verified, created_at) VALUES ($1, $2, $3, $4, 0, $5) \
                     ON CONFLICT (email) DO NOTHING",
                )
                .bind(user_id.as_str())
                .bind(email.as_str())
                .bind(name.as_str())
                .bind(&hash)
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    // A concurrent sign-up with the same address won; this one is answered as a
                    // repeat, which is what it is.
                    return Err(AuthError::AlreadyExists);
                }
                let code = self.store_code(&mut *tx, user_id.as_str()).await?;
                SignupOutcome::Created { user_id, code }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// `POST /resend`: a new code for an existing unverified account, else nothing.
    pub async fn resend(&self, email: &Email) -> Result<Option<Resent>, AuthError> {
        let Some(account) = self.account(email).await? else {
            return Ok(None);
        };
        if account.verified {
            return Ok(None);
        }
        let code = self.store_code(&self.db.pool, &account.user_id).await?;
        Ok(Some(Resent {
            user_id: stored_user(account.user_id)?,
            name: stored_name(account.name)?,
            code,
        }))
    }

    /// `GET /verify`: checks the code; on success the account is verified and a session opened.
    pub async fn verify(&self, email: &Email, code: &str) -> Result<SignedIn, AuthError> {
        let Some(account) = self.account(email).await? else {
            return Err(AuthError::InvalidCode);
        };
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT code_hash, expires_at, failures FROM verification_codes WHERE user_id = $1",
        )
        .bind(&account.user_id)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some((stored_hash, expires_at, failures)) = row else {
            return Err(AuthError::InvalidCode);
        };
        if failures >= MAX_CODE_FAILURES || expires_at <= self.now() {
            return Err(AuthError::InvalidCode);
        }
        let offered = self.keys.hash_secret("code", code.trim());
        let matches: bool = offered.as_bytes().ct_eq(stored_hash.as_bytes()).into();
        if !matches {
            sqlx::query("UPDATE verification_codes SET failures = failures + 1 WHERE user_id = $1")
                .bind(&account.user_id)
                .execute(&self.db.pool)
                .await?;
            return Err(AuthError::InvalidCode);
        }
        let mut tx = self.db.begin_write().await?;
        // Spend the code exactly once, even against a concurrent verification with the same code.
        let spent =
            sqlx::query("DELETE FROM verification_codes WHERE user_id = $1 AND code_hash = $2")
                .bind(&account.user_id)
                .bind(&stored_hash)
                .execute(&mut *tx)
                .await?;
        if spent.rows_affected() == 0 {
            return Err(AuthError::InvalidCode);
        }
        sqlx::query("UPDATE accounts SET verified = 1 WHERE user_id = $1")
            .bind(&account.user_id)
            .execute(&mut *tx)
            .await?;
        let (session_id, tokens) = self.open_session(&mut tx, &account.user_id).await?;
        tx.commit().await?;
        signed_in(account, session_id, tokens)
    }

    /// `POST /login`. An unknown e-mail costs the same hashing as a wrong password.
    pub async fn login(&self, email: &Email, password: &str) -> Result<SignedIn, AuthError> {
        let account = self.account(email).await?;
        let matched = self
            .hasher
            .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
            .await?;
        let Some(account) = account.filter(|_| matched) else {
            return Err(AuthError::InvalidCredentials);
        };
        if !account.verified {
            return Err(AuthError::NotVerified);
        }
        let mut tx = self.db.begin_write().await?;
        let (session_id, tokens) = self.open_session(&mut tx, &account.user_id).await?;
        tx.commit().await?;
        signed_in(account, session_id, tokens)
    }

    async fn open_session(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user_id: &str,
    ) -> Result<(SessionId, TokenPair), AuthError> {
        let session = SessionId::generate();
        let refresh = tokens::new_refresh_token();
        let now = self.now();
        sqlx::query(
            "INSERT INTO sessions (session_id, user_id, refresh_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.as_str())
        .bind(user_id)
        .bind(self.keys.hash_secret("refresh", &refresh))
        .bind(now)
        .bind(now + self.refresh_ttl.as_millis() as i64)
        .execute(&mut **tx)
        .await?;
        let access = self
            .keys
            .sign_access(user_id, &session, self.access_ttl)
            .map_err(AuthError::Internal)?;
        Ok((session, TokenPair { access, refresh }))
    }

    /// `POST /refresh`: spends the refresh token and issues a new pair for the same session.
    /// A token spent before revokes the whole session.
    pub async fn refresh(&self, refresh: &str) -> Result<TokenPair, AuthError> {
        let hash = self.keys.hash_secret("refresh", refresh);
        let now = self.now();
        let live = self.session_by_refresh(&hash).await?;
        let Some((session_id, user_id, expires_at, revoked_at)) = live else {
            let spent: Option<(String,)> =
                sqlx::query_as("SELECT session_id FROM spent_refresh_tokens WHERE token_hash = $1")
                    .bind(&hash)
                    .fetch_optional(&self.db.pool)
                    .await?;
            return match spent {
                Some((session_id,)) => {
                    let session_id = SessionId::from_stored(session_id);
                    self.revoke(&session_id).await?;
                    Err(AuthError::RefreshReused { session_id })
                }
                None => Err(AuthError::InvalidRefresh),
            };
        };
        if revoked_at.is_some() || expires_at <= now {
            return Err(AuthError::InvalidRefresh);
        }
        let next = tokens::new_refresh_token();
        let next_hash = self.keys.hash_secret("refresh", &next);
        let mut tx = self.db.begin_write().await?;
        let rotated = sqlx::query(
            "UPDATE sessions SET refresh_hash = $1, expires_at = $2 WHERE session_id = $3 AND refresh_hash = $4 AND revoked_at IS NULL",
        )
        .bind(&next_hash)
        .bind(now + self.refresh_ttl.as_millis() as i64)
        .bind(&session_id)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        let session_id = SessionId::from_stored(session_id);
        if rotated.rows_affected() == 0 {
            // Someone spent this token between our read and write: the same token twice.
            drop(tx);
            self.revoke(&session_id).await?;
            return Err(AuthError::RefreshReused { session_id });
        }
        sqlx::query("INSERT INTO spent_refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
            .bind(&hash)
            .bind(session_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let access = self
            .keys
            .sign_access(&user_id, &session_id, self.access_ttl)
            .map_err(AuthError::Internal)?;
        Ok(TokenPair {
            access,
            refresh: next,
        })
    }

    /// `(session_id, user_id, expires_at, revoked_at)` of the session whose current refresh token
    /// has this hash.
    async fn session_by_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<(String, String, i64, Option<i64>)>, AuthError> {
        Ok(self
            .db
            .read(|| {
                sqlx::query_as(
                    "SELECT session_id, user_id, expires_at, revoked_at FROM sessions WHERE refresh_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.db.pool)
            })
            .await?)
    }

    async fn revoke(&self, session: &SessionId) -> Result<(), AuthError> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(session.as_str())
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// `POST /logout`: revokes the session of a current or spent refresh token. Never fails the
    /// request: an unknown token is simply nothing to revoke.
    pub async fn logout(&self, refresh: &str) -> Option<SessionId> {
        let hash = self.keys.hash_secret("refresh", refresh);
        let found: Result<Option<(String,)>, sqlx::Error> = sqlx::query_as(
            "SELECT session_id FROM sessions WHERE refresh_hash = $1 \
             UNION SELECT session_id FROM spent_refresh_tokens WHERE token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.db.pool)
        .await;
        let session = match found {
            Ok(Some((s,))) => SessionId::from_stored(s),
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, "logout: cannot look up the session");
                return None;
            }
        };
        if let Err(e) = self.revoke(&session).await {
            tracing::error!(error = %e, "logout: cannot revoke the session");
        }
        Some(session)
    }

    /// Whether a session is open (not revoked, not past its refresh lifetime).
    pub async fn session_active(&self, session: &SessionId) -> Result<bool, AuthError> {
        let row: Option<(i64, Option<i64>)> = self
            .db
            .read(|| {
                sqlx::query_as("SELECT expires_at, revoked_at FROM sessions WHERE session_id = $1")
                    .bind(session.as_str())
                    .fetch_optional(&self.db.pool)
            })
            .await?;
        Ok(matches!(row, Some((expires_at, None)) if expires_at > self.now()))
    }

    /// Checks an access token's signature, algorithm and expiry (not its session).
    pub fn check_access_signature(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.keys
            .check_access(token)
            .map_err(|_| AuthError::InvalidAccess)
    }

    /// Authenticates a Socket.IO handshake. A valid access token of an open session is enough; an
    /// expired one (or none) with a valid refresh token of an open session mints a fresh access
    /// token without spending the refresh token. A tampered access token is refused outright.
    pub async fn authenticate(
        &self,
        access: Option<&str>,
        refresh: Option<&str>,
    ) -> Result<Authenticated, AuthError> {
        let mut expired_session: Option<String> = None;
        if let Some(access) = access {
            match self.keys.check_access(access) {
                Ok(claims) => {
                    let session = claims.session_id();
                    if !self.session_active(&session).await? {
                        return Err(AuthError::InvalidAccess);
                    }
                    let name = self.name_of(&claims.sub).await?;
                    return Ok(Authenticated {
                        user_id: stored_user(claims.sub)?,
                        session_id: session,
                        name,
                        fresh_access: None,
                    });
                }
                Err(AccessProblem::Expired) => {
                    expired_session = self.keys.signed_claims(access).map(|c| c.sid);
                }
                Err(AccessProblem::Invalid) => return Err(AuthError::InvalidAccess),
            }
        }
        let refresh = refresh.ok_or(AuthError::InvalidAccess)?;
        let hash = self.keys.hash_secret("refresh", refresh);
        let row = self.session_by_refresh(&hash).await?;
        let Some((session_id, user_id, expires_at, None)) = row else {
            return Err(AuthError::InvalidRefresh);
        };
        if expires_at <= self.now() {
            return Err(AuthError::InvalidRefresh);
        }
        if expired_session
            .as_deref()
            .is_some_and(|sid| sid != session_id)
        {
            // An expired token of one session with the refresh token of another: not a pair.
            return Err(AuthError::InvalidAccess);
        }
        let session_id = SessionId::from_stored(session_id);
        let fresh = self
            .keys
            .sign_access(&user_id, &session_id, self.access_ttl)
            .map_err(AuthError::Internal)?;
        let name = self.name_of(&user_id).await?;
        Ok(Authenticated {
            user_id: stored_user(user_id)?,
            session_id,
            name,
            fresh_access: Some(fresh),
        })
    }

    async fn name_of(&self, user_id: &str) -> Result<String, AuthError> {
        let row: Option<(String,)> = self
            .db
            .read(|| {
                sqlx::query_as("SELECT name FROM accounts WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.db.pool)
            })
            .await?;
        row.map(|(n,)| n).ok_or(AuthError::InvalidAccess)
    }

    /// The e-mail addresses of `users` (for `user-details` and search results).
    pub async fn email_of(&self, users: &[UserId]) -> Result<HashMap<UserId, String>, AuthError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT user_id, email FROM accounts WHERE user_id IN {}",
            infra::db::value_rows(1, users.len())
        );
        let rows = self
            .db
            .read(|| {
                let mut query = sqlx::query_as::<_, (String, String)>(&sql);
                for user in users {
                    query = query.bind(user.as_str());
                }
                query.fetch_all(&self.db.pool)
            })
            .await?;
        rows.into_iter()
            .map(|(id, email)| Ok((stored_user(id)?, email)))
            .collect()
    }
}

#[cfg(test)]
mod tests;
