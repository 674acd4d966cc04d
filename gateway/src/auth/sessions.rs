//! Sessions: one per login, with an opaque refresh token (stored hashed) that rotates on
//! `/refresh`, and access tokens naming the session. Presenting a spent refresh token (to
//! `/refresh` or at a handshake) revokes the session; a revoked session's access tokens stop
//! working at once.

use events_schema::UserId;

use super::error::AuthError;
use super::service::{stored_user, AuthService};
use super::session_id::SessionId;
use super::store;
use super::tokens::{self, AccessClaims, AccessProblem};

/// A fresh access and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

/// Who a handshake's credentials belong to.
pub struct Authenticated {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub name: String,
    /// Set when the access token had expired and the refresh token was used to mint a new one.
    pub fresh_access: Option<String>,
}

impl AuthService {
    /// Opens a session for `user_id` within `tx`.
    pub(super) async fn open_session(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user_id: &str,
    ) -> Result<(SessionId, TokenPair), AuthError> {
        let session = SessionId::generate();
        let refresh = tokens::new_refresh_token();
        let now = self.now();
        store::insert_session(
            &mut **tx,
            &session,
            user_id,
            &self.keys.hash_secret("refresh", &refresh),
            now,
            now + self.refresh_ttl.as_millis() as i64,
        )
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
        let Some(session) = live else {
            return Err(self.not_current(&hash).await?);
        };
        if !session.life.open_at(now) {
            return Err(AuthError::InvalidRefresh);
        }
        let next = tokens::new_refresh_token();
        let next_hash = self.keys.hash_secret("refresh", &next);
        let mut tx = self.db.begin_write().await?;
        let rotated = store::rotate_refresh(
            &mut *tx,
            &session.session_id,
            &hash,
            &next_hash,
            now + self.refresh_ttl.as_millis() as i64,
        )
        .await?;
        let session_id = SessionId::from_stored(session.session_id);
        if !rotated {
            // Someone spent this token between our read and write: the same token twice.
            drop(tx);
            self.revoke(&session_id).await?;
            return Err(AuthError::RefreshReused { session_id });
        }
        store::record_spent(&mut *tx, &hash, &session_id).await?;
        tx.commit().await?;
        self.touch(&session_id).await;
        let access = self
            .keys
            .sign_access(&session.user_id, &session_id, self.access_ttl)
            .map_err(AuthError::Internal)?;
        Ok(TokenPair {
            access,
            refresh: next,
        })
    }

    /// Why a refresh token that is no session's current one is refused: one already rotated away
    /// is the theft signal, and its whole session is revoked (the caller ends its sockets).
    async fn not_current(&self, hash: &str) -> Result<AuthError, AuthError> {
        let Some(session_id) = store::spent_session(&self.db.pool, hash).await? else {
            return Ok(AuthError::InvalidRefresh);
        };
        self.revoke(&session_id).await?;
        Ok(AuthError::RefreshReused { session_id })
    }

    /// The session whose current refresh token has this hash.
    async fn session_by_refresh(&self, hash: &str) -> Result<Option<store::SessionRow>, AuthError> {
        Ok(self
            .db
            .read(|| store::session_by_refresh(&self.db.pool, hash))
            .await?)
    }

    async fn revoke(&self, session: &SessionId) -> Result<(), AuthError> {
        store::revoke_session(&self.db.pool, session, self.now()).await?;
        Ok(())
    }

    /// `POST /logout`: revokes the session of a current or spent refresh token. Never fails the
    /// request: an unknown token is simply nothing to revoke.
    pub async fn logout(&self, refresh: &str) -> Option<SessionId> {
        let hash = self.keys.hash_secret("refresh", refresh);
        let session = match store::session_of_refresh(&self.db.pool, &hash).await {
            Ok(Some(session)) => session,
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
        let life = self
            .db
            .read(|| store::session_life(&self.db.pool, session))
            .await?;
        Ok(life.is_some_and(|life| life.open_at(self.now())))
    }

    /// Checks an access token's signature, algorithm and expiry (not its session).
    pub fn check_access_signature(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.keys
            .check_access(token)
            .map_err(|_| AuthError::InvalidAccess)
    }

    /// Authenticates a Socket.IO handshake. A valid access token of an open session is enough; an
    /// expired one (or none) with a valid refresh token of an open session mints a fresh access
    /// token without spending the refresh token. A tampered access token is refused outright. A
    /// refresh token already rotated away, when it is needed, revokes its session as at `/refresh`
    /// ([`AuthError::RefreshReused`]).
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
                    self.touch(&session).await;
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
        let Some(session) = self.session_by_refresh(&hash).await? else {
            return Err(self.not_current(&hash).await?);
        };
        if !session.life.open_at(self.now()) {
            return Err(AuthError::InvalidRefresh);
        }
        if expired_session
            .as_deref()
            .is_some_and(|sid| sid != session.session_id)
        {
            // An expired token of one session with the refresh token of another: not a pair.
            return Err(AuthError::InvalidAccess);
        }
        let session_id = SessionId::from_stored(session.session_id);
        let fresh = self
            .keys
            .sign_access(&session.user_id, &session_id, self.access_ttl)
            .map_err(AuthError::Internal)?;
        let name = self.name_of(&session.user_id).await?;
        self.touch(&session_id).await;
        Ok(Authenticated {
            user_id: stored_user(session.user_id)?,
            session_id,
            name,
            fresh_access: Some(fresh),
        })
    }

    async fn name_of(&self, user_id: &str) -> Result<String, AuthError> {
        let name = self
            .db
            .read(|| store::name_of(&self.db.pool, user_id))
            .await?;
        name.ok_or(AuthError::InvalidAccess)
    }
}
