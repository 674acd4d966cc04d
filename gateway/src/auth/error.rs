//! The one error type of the accounts.

use thiserror::Error;

use super::session_id::SessionId;

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
