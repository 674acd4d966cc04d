//! Password hashing with argon2id (m = 19 MiB, t = 2, p = 1, OWASP's minimum), off the async runtime
//! and with bounded concurrency, so a burst of logins cannot starve the server or exhaust memory.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use super::error::AuthError;

/// Memory cost in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Iterations.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the e-mail is unknown so that such a
    /// login costs the same as a wrong password.
    dummy: Arc<String>,
}

fn argon2() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| AuthError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| AuthError::Internal(format!("salt: {e}")))?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("hashing: {e}")))
}

fn verify_now(password: &str, stored: &str) -> Result<bool, AuthError> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| AuthError::Internal(format!("stored hash: {e}")))?;
    match argon2()?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(AuthError::Internal(format!("verifying: {e}"))),
    }
}

impl PasswordHasherPool {
    /// At most `concurrency` hashes run at once (each takes 19 MiB and one core for tens of ms).
    pub async fn new(concurrency: usize) -> Result<Self, AuthError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let random_password = hex::encode(seed);
        let dummy = tokio::task::spawn_blocking(move || hash_now(&random_password))
            .await
            .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))??;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(dummy),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Internal("hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))?
    }

    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.run(move || hash_now(&password)).await
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no account,
    /// in which case the answer is always `false` after the same work.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, AuthError> {
        let password = password.to_owned();
        let known = stored.is_some();
        let stored = stored
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy.as_str().to_owned());
        let matched = self.run(move || verify_now(&password, &stored)).await?;
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_required_cost_and_verify() {
        let pool = PasswordHasherPool::new(2).await.unwrap();
        let hash = pool.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(pool.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("wrong horse", Some(&hash)).await.unwrap());
        assert_ne!(
            hash,
            pool.hash("correct horse").await.unwrap(),
            "salts must differ"
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies_even_with_the_dummy_password() {
        let pool = PasswordHasherPool::new(1).await.unwrap();
        assert!(!pool.verify("anything", None).await.unwrap());
    }
}
