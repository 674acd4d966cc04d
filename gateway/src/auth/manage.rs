//! What a signed-in user (or one who forgot their password) manages of their account: a password
//! reset by mailed code, their open sessions, and their name as the account keeps it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use events_schema::{UserId, UserName};
use subtle::ConstantTimeEq;

use super::accounts::{CODE_TTL, MAX_CODE_FAILURES};
use super::error::AuthError;
use super::service::{stored_name, stored_user, AuthService};
use super::session_id::SessionId;
use super::store::{self, Codes};
use super::tokens;
use super::values::{Email, Password};

/// A session's last use is written at most this often (milliseconds).
pub const LAST_USE_GAP_MS: i64 = 60_000;
/// The longest user agent kept of a session, in characters.
const USER_AGENT_MAX_CHARS: usize = 256;
/// Remembered last uses beyond which the oldest are forgotten.
const TOUCHED_MAX: usize = 100_000;

/// A reset code for an existing verified account, to be mailed.
pub struct ResetRequested {
    pub user_id: UserId,
    pub name: UserName,
    pub code: String,
}

/// One open session, as its user sees it. `id` is public: a keyed hash of the session's own id,
/// which no one can turn back into it or derive another's from.
pub struct SessionView {
    pub id: String,
    pub current: bool,
    pub created_at: i64,
    pub last_used_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// When each session's last use was last written, so most uses write nothing.
#[derive(Default)]
pub struct Touched(Mutex<HashMap<SessionId, i64>>);

impl Touched {
    /// Whether a use at `now` is to be written (and then remembers it).
    fn due(&self, session: &SessionId, now: i64) -> bool {
        let mut touched = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if touched
            .get(session)
            .is_some_and(|at| now - *at < LAST_USE_GAP_MS)
        {
            return false;
        }
        if touched.len() >= TOUCHED_MAX {
            touched.retain(|_, at| now - *at < LAST_USE_GAP_MS);
        }
        touched.insert(session.clone(), now);
        true
    }
}

impl AuthService {
    /// `POST /password/forgot`: a new reset code (voiding any earlier one) for an existing verified
    /// account, else nothing.
    pub async fn forgot_password(
        &self,
        email: &Email,
    ) -> Result<Option<ResetRequested>, AuthError> {
        let account = self
            .db
            .read(|| store::account(&self.db.pool, email))
            .await?;
        let Some(account) = account.filter(|a| a.is_verified()) else {
            return Ok(None);
        };
        let code = tokens::new_code();
        let hash = self.keys.hash_secret("reset", &code);
        let expires_at = self.now() + CODE_TTL.as_millis() as i64;
        store::put_code(
            &self.db.pool,
            Codes::PasswordReset,
            &account.user_id,
            &hash,
            expires_at,
        )
        .await?;
        Ok(Some(ResetRequested {
            user_id: stored_user(account.user_id)?,
            name: stored_name(account.name)?,
            code,
        }))
    }

    /// `POST /password/reset`: with the live reset code, replaces the password and ends every
    /// session of the account (returned, for their sockets to be ended). A wrong code and an
    /// unknown address are the same [`AuthError::InvalidCode`]; every try is counted before it is
    /// compared, as for verification.
    pub async fn reset_password(
        &self,
        email: &Email,
        code: &str,
        password: &Password,
    ) -> Result<(UserId, Vec<SessionId>), AuthError> {
        let account = self
            .db
            .read(|| store::account(&self.db.pool, email))
            .await?;
        // An unknown address takes a try at no one's code, so it costs what a wrong code does.
        let user_id = account.as_ref().map(|a| a.user_id.as_str()).unwrap_or("");
        let live = store::take_code_try(
            &self.db.pool,
            Codes::PasswordReset,
            user_id,
            MAX_CODE_FAILURES,
            self.now(),
        )
        .await?;
        let (Some(account), Some(stored_hash)) = (account, live) else {
            tracing::debug!("password reset refused: unknown address, or no live code");
            return Err(AuthError::InvalidCode);
        };
        let offered = self.keys.hash_secret("reset", code.trim());
        let matches: bool = offered.as_bytes().ct_eq(stored_hash.as_bytes()).into();
        if !matches {
            tracing::debug!("password reset refused: wrong code");
            return Err(AuthError::InvalidCode);
        }
        let hash = self.hasher.hash(password.expose()).await?;
        let mut tx = self.db.begin_write().await?;
        if !store::spend_code(
            &mut *tx,
            Codes::PasswordReset,
            &account.user_id,
            &stored_hash,
        )
        .await?
        {
            return Err(AuthError::InvalidCode);
        }
        store::set_password(&mut *tx, &account.user_id, &hash).await?;
        let ended = store::revoke_sessions_of(&mut *tx, &account.user_id, self.now()).await?;
        tx.commit().await?;
        Ok((stored_user(account.user_id)?, ended))
    }

    /// The user and session of an access token that is valid and whose session is open.
    pub async fn access_session(&self, token: &str) -> Result<(UserId, SessionId), AuthError> {
        let claims = self.check_access_signature(token)?;
        let session = claims.session_id();
        if !self.session_active(&session).await? {
            return Err(AuthError::InvalidAccess);
        }
        self.touch(&session).await;
        Ok((stored_user(claims.sub)?, session))
    }

    fn public_session_id(&self, session: &str) -> String {
        let mut id = self.keys.hash_secret("session-id", session);
        id.truncate(32);
        id
    }

    /// `GET /sessions`: the user's open sessions, the newest first.
    pub async fn sessions_of(
        &self,
        user: &UserId,
        current: &SessionId,
    ) -> Result<Vec<SessionView>, AuthError> {
        let now = self.now();
        let rows = self
            .db
            .read(|| store::open_sessions_of(&self.db.pool, user.as_str(), now))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| SessionView {
                id: self.public_session_id(&row.session_id),
                current: row.session_id == current.as_str(),
                created_at: row.created_at,
                last_used_at: row.last_used_at.unwrap_or(row.created_at),
                user_agent: row.user_agent,
                ip: row.ip,
            })
            .collect())
    }

    /// `DELETE /sessions/{id}`: ends the user's open session with that public id; `None` when the
    /// user has none (another user's id is none of theirs).
    pub async fn end_own_session(
        &self,
        user: &UserId,
        public_id: &str,
    ) -> Result<Option<SessionId>, AuthError> {
        let rows = store::open_sessions_of(&self.db.pool, user.as_str(), self.now()).await?;
        let found = rows.into_iter().find(|row| {
            self.public_session_id(&row.session_id)
                .as_bytes()
                .ct_eq(public_id.as_bytes())
                .into()
        });
        let Some(row) = found else {
            return Ok(None);
        };
        let session = SessionId::from_stored(row.session_id);
        store::revoke_session(&self.db.pool, &session, self.now()).await?;
        Ok(Some(session))
    }

    /// How many sessions of the user are open (`fetch-user-details`).
    pub async fn session_count(&self, user: &UserId) -> Result<i64, AuthError> {
        let now = self.now();
        Ok(self
            .db
            .read(|| store::count_open_sessions(&self.db.pool, user.as_str(), now))
            .await?)
    }

    /// Notes the client a new session was opened from (its user agent, cut short, and address).
    pub async fn note_client(&self, session: &SessionId, user_agent: Option<&str>, ip: &str) {
        let agent: Option<String> =
            user_agent.map(|a| a.chars().take(USER_AGENT_MAX_CHARS).collect());
        if let Err(e) =
            store::set_session_client(&self.db.pool, session, agent.as_deref(), ip).await
        {
            tracing::warn!(error = %e, "the session's client was not noted");
        }
    }

    /// Records a use of the session: written at most once a minute per session.
    pub(super) async fn touch(&self, session: &SessionId) {
        let now = self.now();
        if !self.touched.due(session, now) {
            return;
        }
        if let Err(e) = store::touch_session(&self.db.pool, session, now, LAST_USE_GAP_MS).await {
            tracing::debug!(error = %e, "the session's last use was not written");
        }
    }

    /// The name the account answers at login and handshake, after a rename.
    pub async fn set_name(&self, user: &UserId, name: &UserName) -> Result<(), AuthError> {
        store::set_name(&self.db.pool, user.as_str(), name.as_str()).await?;
        Ok(())
    }
}
