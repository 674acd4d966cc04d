//! Access tokens (JWT, HS256 only, `exp` required) and opaque refresh tokens and codes, which are
//! stored only as keyed hashes.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session_id::SessionId;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

impl AccessClaims {
    pub fn session_id(&self) -> SessionId {
        SessionId::from_stored(self.sid.clone())
    }

    /// Time left before it expires (zero when past).
    pub fn remaining(&self) -> Duration {
        let left = self.exp - Utc::now().timestamp();
        Duration::from_secs(left.max(0) as u64)
    }
}

/// Why an access token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessProblem {
    /// Signed by us, but past `exp`.
    Expired,
    /// Anything else: bad signature, other algorithm, malformed, no `exp`.
    Invalid,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Key for hashing refresh tokens and codes (derived from the secret, distinct from the JWT key).
    hash_key: [u8; 32],
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        // Every token is signed or checked through keys made here, so the provider is in place.
        super::jwt_hmac::install();
        let mut hasher = Sha256::new();
        hasher.update(b"expresschat token hashing v1");
        hasher.update(secret);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            hash_key: hasher.finalize().into(),
        }
    }

    pub fn sign_access(
        &self,
        user_id: &str,
        session: &SessionId,
        ttl: Duration,
    ) -> Result<String, String> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            sid: session.as_str().to_owned(),
            iat: now,
            exp: now + ttl.as_secs().max(1) as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    fn validation(check_exp: bool) -> Validation {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = check_exp;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation
    }

    /// Checks signature, algorithm and expiry.
    pub fn check_access(&self, token: &str) -> Result<AccessClaims, AccessProblem> {
        match jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &Self::validation(true)) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(AccessProblem::Expired)
            }
            Err(_) => Err(AccessProblem::Invalid),
        }
    }

    /// The claims of a token we signed, expired or not (to tie an expired token to its session).
    pub fn signed_claims(&self, token: &str) -> Option<AccessClaims> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &Self::validation(false))
            .ok()
            .map(|d| d.claims)
    }

    /// A keyed hash (hex) of a refresh token or a verification code.
    pub fn hash_secret(&self, purpose: &str, value: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.hash_key);
        hasher.update(purpose.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// A fresh opaque refresh token: 256 random bits, URL-safe base64.
pub fn new_refresh_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh 6-digit verification code.
pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32])
    }

    #[test]
    fn a_signed_token_checks_and_carries_its_session() {
        let keys = keys();
        let sid = SessionId::generate();
        let token = keys
            .sign_access("u1", &sid, Duration::from_secs(60))
            .unwrap();
        let claims = keys.check_access(&token).unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.session_id(), sid);
        assert!(claims.remaining() <= Duration::from_secs(60));
    }

    #[test]
    fn other_keys_algorithms_and_expired_tokens_are_refused() {
        let keys = keys();
        let sid = SessionId::generate();
        let token = keys
            .sign_access("u1", &sid, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            TokenKeys::new(&[8u8; 32]).check_access(&token).err(),
            Some(AccessProblem::Invalid)
        );

        // HS512 with the same secret: refused, only HS256 is accepted.
        let claims = AccessClaims {
            sub: "u1".into(),
            sid: sid.to_string(),
            iat: 0,
            exp: Utc::now().timestamp() + 60,
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(
            keys.check_access(&hs512).err(),
            Some(AccessProblem::Invalid)
        );

        // alg=none, hand-made.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(serde_json::to_string(&claims).unwrap())
        );
        assert_eq!(keys.check_access(&none).err(), Some(AccessProblem::Invalid));

        // No exp.
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "u1", "sid": sid.to_string(), "iat": 0}),
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(
            keys.check_access(&no_exp).err(),
            Some(AccessProblem::Invalid)
        );

        let expired = AccessClaims {
            exp: Utc::now().timestamp() - 5,
            ..claims
        };
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(
            keys.check_access(&expired).err(),
            Some(AccessProblem::Expired)
        );
        assert_eq!(keys.signed_claims(&expired).unwrap().sid, sid.to_string());
    }

    #[test]
    fn secrets_hash_by_purpose_and_codes_have_six_digits() {
        let keys = keys();
        assert_ne!(
            keys.hash_secret("refresh", "x"),
            keys.hash_secret("code", "x")
        );
        assert_eq!(keys.hash_secret("code", "x"), keys.hash_secret("code", "x"));
        for _ in 0..100 {
            let code = new_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_ne!(new_refresh_token(), new_refresh_token());
    }
}
