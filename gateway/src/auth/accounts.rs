//! Sign-up, the e-mail's verification code, and login.

use std::collections::HashMap;
use std::time::Duration;

use events_schema::{UserId, UserName};
use subtle::ConstantTimeEq;

use super::error::AuthError;
use super::service::{stored_name, stored_user, AuthService};
use super::session_id::SessionId;
use super::sessions::TokenPair;
use super::store::{self, AccountRow, Codes};
use super::tokens;
use super::values::{Email, Password};

/// How long a verification code lives.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong codes after which the code is void.
pub const MAX_CODE_FAILURES: i64 = 5;

pub enum SignupOutcome {
    /// A new account; the caller records `UserRegistered` and mails the code.
    Created { user_id: UserId, code: String },
    /// An unverified account signed up again: new password and code; `renamed` when the name changed.
    Replaced {
        user_id: UserId,
        code: String,
        renamed: Option<UserName>,
        ended_sessions: Vec<SessionId>,
        /// Whether `UserRegistered` is known to be in the log: if not, the caller records it
        /// (under the current name) before anything else, as an earlier attempt failed to.
        registered: bool,
    },
}

/// A successful verification or login.
pub struct SignedIn {
    pub user_id: UserId,
    pub name: UserName,
    pub tokens: TokenPair,
    pub session_id: SessionId,
    /// Whether `UserRegistered` is known to be in the log (see [`SignupOutcome::Replaced`]).
    pub registered: bool,
}

impl SignedIn {
    fn new(
        account: AccountRow,
        session_id: SessionId,
        tokens: TokenPair,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            registered: account.is_registered(),
            user_id: stored_user(account.user_id)?,
            name: stored_name(account.name)?,
            tokens,
            session_id,
        })
    }
}

pub struct Resent {
    pub user_id: UserId,
    pub name: UserName,
    pub code: String,
}

impl AuthService {
    async fn account(&self, email: &Email) -> Result<Option<AccountRow>, AuthError> {
        Ok(self
            .db
            .read(|| store::account(&self.db.pool, email))
            .await?)
    }

    /// Writes a new code for `user_id`, replacing (and so voiding) any earlier one.
    async fn new_code<'c>(
        &self,
        db: impl sqlx::Executor<'c, Database = sqlx::Any>,
        user_id: &str,
    ) -> Result<String, AuthError> {
        let code = tokens::new_code();
        let hash = self.keys.hash_secret("code", &code);
        let expires_at = self.now() + CODE_TTL.as_millis() as i64;
        store::put_code(db, Codes::Verification, user_id, &hash, expires_at).await?;
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
            if existing.is_verified() {
                return Err(AuthError::AlreadyExists);
            }
        }
        let hash = self.hasher.hash(password.expose()).await?;
        let mut tx = self.db.begin_write().await?;
        let outcome = match store::account(&mut *tx, email).await? {
            Some(existing) if existing.is_verified() => return Err(AuthError::AlreadyExists),
            Some(existing) => {
                let user_id = &existing.user_id;
                store::replace_password(&mut *tx, user_id, &hash, name.as_str()).await?;
                let ended_sessions =
                    store::revoke_sessions_of(&mut *tx, user_id, self.now()).await?;
                let code = self.new_code(&mut *tx, user_id).await?;
                SignupOutcome::Replaced {
                    renamed: (existing.name != name.as_str()).then(|| name.clone()),
                    registered: existing.is_registered(),
                    user_id: stored_user(existing.user_id)?,
                    code,
                    ended_sessions,
                }
            }
            None => {
                let user_id = UserId::generate();
                let inserted = store::insert_account(
                    &mut *tx,
                    &user_id,
                    email,
                    name.as_str(),
                    &hash,
                    self.now(),
                )
                .await?;
                if !inserted {
                    // A concurrent sign-up with the same address won; this one is answered as a
                    // repeat, which is what it is.
                    return Err(AuthError::AlreadyExists);
                }
                let code = self.new_code(&mut *tx, user_id.as_str()).await?;
                SignupOutcome::Created { user_id, code }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records that the account's `UserRegistered` is in the log, so it is not recorded again.
    pub async fn registration_recorded(&self, user_id: &UserId) -> Result<(), AuthError> {
        store::mark_registered(&self.db.pool, user_id).await?;
        Ok(())
    }

    /// `POST /resend`: a new code for an existing unverified account, else nothing.
    pub async fn resend(&self, email: &Email) -> Result<Option<Resent>, AuthError> {
        let Some(account) = self.account(email).await? else {
            return Ok(None);
        };
        if account.is_verified() {
            return Ok(None);
        }
        let code = self.new_code(&self.db.pool, &account.user_id).await?;
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
        // Every try is counted before its code is compared, in one statement: concurrent guesses
        // each take one of the tries, and once they are spent no guess is compared at all. The
        // right code then deletes the row, so only wrong ones stay counted.
        let live = store::take_code_try(
            &self.db.pool,
            Codes::Verification,
            &account.user_id,
            MAX_CODE_FAILURES,
            self.now(),
        )
        .await?;
        let Some(stored_hash) = live else {
            tracing::debug!("verification refused: no live code, expired or out of tries");
            return Err(AuthError::InvalidCode);
        };
        let offered = self.keys.hash_secret("code", code.trim());
        let matches: bool = offered.as_bytes().ct_eq(stored_hash.as_bytes()).into();
        if !matches {
            tracing::debug!("verification refused: wrong code");
            return Err(AuthError::InvalidCode);
        }
        let mut tx = self.db.begin_write().await?;
        // Spend the code exactly once, even against a concurrent verification with the same code.
        if !store::spend_code(
            &mut *tx,
            Codes::Verification,
            &account.user_id,
            &stored_hash,
        )
        .await?
        {
            return Err(AuthError::InvalidCode);
        }
        store::mark_verified(&mut *tx, &account.user_id).await?;
        let (session_id, tokens) = self.open_session(&mut tx, &account.user_id).await?;
        tx.commit().await?;
        SignedIn::new(account, session_id, tokens)
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
        if !account.is_verified() {
            return Err(AuthError::NotVerified);
        }
        let mut tx = self.db.begin_write().await?;
        let (session_id, tokens) = self.open_session(&mut tx, &account.user_id).await?;
        tx.commit().await?;
        SignedIn::new(account, session_id, tokens)
    }

    /// The e-mail addresses of `users` (for `user-details` and search results).
    pub async fn email_of(&self, users: &[UserId]) -> Result<HashMap<UserId, String>, AuthError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .db
            .read(|| store::emails_of(&self.db.pool, users))
            .await?;
        rows.into_iter()
            .map(|row| Ok((stored_user(row.user_id)?, row.email)))
            .collect()
    }
}
