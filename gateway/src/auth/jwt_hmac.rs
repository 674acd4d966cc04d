//! The crypto provider `jsonwebtoken` signs and checks access tokens with: HMAC-SHA2 only.
//!
//! The crate's own RustCrypto provider also builds RSA, ECDSA and EdDSA (and `rsa` carries an
//! advisory with no fix, RUSTSEC-2023-0071). Access tokens are HS256, so the crate is built
//! without a provider and this one is installed instead; every other algorithm is refused.

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: no_rsa_key,
        extract_ec_public_key_coordinates: no_ec_key,
        compute_digest: digest,
    },
};

/// Makes this provider the process's, before the first token is signed or checked. Idempotent:
/// a second call finds it installed (nothing else installs one).
pub fn install() {
    let _ = PROVIDER.install_default();
}

enum Key {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

/// One keyed HMAC, both signer and verifier.
struct HmacJwt {
    algorithm: Algorithm,
    key: Key,
}

impl HmacJwt {
    fn new(algorithm: Algorithm, secret: &[u8]) -> Result<Self> {
        let bad_key = |_| ErrorKind::InvalidKeyFormat;
        let key = match algorithm {
            Algorithm::HS256 => Key::Hs256(Hmac::new_from_slice(secret).map_err(bad_key)?),
            Algorithm::HS384 => Key::Hs384(Hmac::new_from_slice(secret).map_err(bad_key)?),
            Algorithm::HS512 => Key::Hs512(Hmac::new_from_slice(secret).map_err(bad_key)?),
            _ => return Err(ErrorKind::InvalidAlgorithm.into()),
        };
        Ok(Self { algorithm, key })
    }
}

impl Signer<Vec<u8>> for HmacJwt {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(match &self.key {
            Key::Hs256(mac) => mac
                .clone()
                .chain_update(message)
                .finalize()
                .into_bytes()
                .to_vec(),
            Key::Hs384(mac) => mac
                .clone()
                .chain_update(message)
                .finalize()
                .into_bytes()
                .to_vec(),
            Key::Hs512(mac) => mac
                .clone()
                .chain_update(message)
                .finalize()
                .into_bytes()
                .to_vec(),
        })
    }
}

impl Verifier<Vec<u8>> for HmacJwt {
    /// Compares in constant time (`verify_slice`).
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let checked = match &self.key {
            Key::Hs256(mac) => mac.clone().chain_update(message).verify_slice(tag),
            Key::Hs384(mac) => mac.clone().chain_update(message).verify_slice(tag),
            Key::Hs512(mac) => mac.clone().chain_update(message).verify_slice(tag),
        };
        checked.map_err(signature::Error::from_source)
    }
}

impl JwtSigner for HmacJwt {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl JwtVerifier for HmacJwt {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(HmacJwt::new(
        *algorithm,
        key.try_get_hmac_secret()?,
    )?))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(HmacJwt::new(
        *algorithm,
        key.try_get_hmac_secret()?,
    )?))
}

// JWKs are never built from our keys; these refuse instead of the crate's panicking placeholders.
fn no_rsa_key(_: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidRsaKey("RSA keys are not supported".into()).into())
}

fn no_ec_key(_: &[u8], _: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidEcdsaKey.into())
}

fn digest(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    match hash {
        ThumbprintHash::SHA256 => Sha256::digest(data).to_vec(),
        ThumbprintHash::SHA384 => Sha384::digest(data).to_vec(),
        ThumbprintHash::SHA512 => Sha512::digest(data).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Header, Validation};
    use serde_json::Value;

    /// The HS256 example of RFC 7519-style tokens everyone checks against (jwt.io's), so this
    /// provider is known to agree with other implementations, not just with itself.
    const SECRET: &[u8] = b"your-256-bit-secret";
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
        SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    fn lenient(algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        validation
    }

    #[test]
    fn a_known_hs256_token_checks_and_signs_the_same() {
        install();
        let key = DecodingKey::from_secret(SECRET);
        let data = jsonwebtoken::decode::<Value>(TOKEN, &key, &lenient(Algorithm::HS256)).unwrap();
        assert_eq!(data.claims["name"], "John Doe");
        let (message, tag) = TOKEN.rsplit_once('.').unwrap();
        let signed = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET),
            Algorithm::HS256,
        )
        .unwrap();
        assert_eq!(signed, tag);
    }

    #[test]
    fn wrong_tags_and_other_algorithms_are_refused_without_panicking() {
        install();
        let key = DecodingKey::from_secret(SECRET);
        let tampered = format!("{}x", &TOKEN[..TOKEN.len() - 1]);
        assert!(
            jsonwebtoken::decode::<Value>(&tampered, &key, &lenient(Algorithm::HS256)).is_err()
        );
        let other_secret = DecodingKey::from_secret(b"another secret");
        assert!(
            jsonwebtoken::decode::<Value>(TOKEN, &other_secret, &lenient(Algorithm::HS256))
                .is_err()
        );
        for algorithm in [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ] {
            let refused = jsonwebtoken::encode(
                &Header::new(algorithm),
                &serde_json::json!({"sub": "u1"}),
                &EncodingKey::from_secret(SECRET),
            );
            assert!(refused.is_err(), "{algorithm:?} signed");
        }
        assert!(no_rsa_key(b"").is_err());
        assert!(no_ec_key(b"", Algorithm::ES256).is_err());
        assert_eq!(digest(b"", ThumbprintHash::SHA256).len(), 32);
    }
}
