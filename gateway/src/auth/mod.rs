//! Accounts, verification codes and sessions: ordinary tables (never events), because they hold
//! secrets. The chat history only learns that a user registered, was renamed or was verified.
//!
//! - Passwords: argon2id (`passwords`); an unknown e-mail is verified against a dummy hash.
//! - Codes: 6 digits, stored as keyed hashes, 10 minutes, void after 5 wrong tries, replaced on
//!   resend (`accounts`).
//! - Sessions: one per login; an opaque refresh token (stored hashed) that rotates on `/refresh`;
//!   presenting a spent one (to `/refresh` or at a handshake) revokes the session. Access tokens
//!   are JWTs naming their session (`tokens`), and a revoked session's access tokens stop
//!   working at once (`sessions`). Each keeps the client it was opened from and its last use
//!   (at most once a minute); its user lists and ends them by a public id (`manage`).
//! - Password reset: a 6-digit code like verification's (10 minutes, 5 tries, replaced on a new
//!   request, kept apart from verification codes); a reset ends every session (`manage`).
//! - Every statement is in `store`, each row read into a named struct.

mod accounts;
mod error;
mod jwt_hmac;
mod manage;
mod passwords;
mod service;
mod session_id;
mod sessions;
mod store;
mod tokens;
mod values;

pub use accounts::{Resent, SignedIn, SignupOutcome, CODE_TTL, MAX_CODE_FAILURES};
pub use error::AuthError;
pub use manage::{ResetRequested, SessionView, LAST_USE_GAP_MS};
pub use passwords::PasswordHasherPool;
pub use service::AuthService;
pub use session_id::SessionId;
pub use sessions::{Authenticated, TokenPair};
pub use tokens::{AccessClaims, AccessProblem};
pub use values::{Email, Password};

#[cfg(test)]
mod tests;
