//! Opaque identifiers. New ones are UUID v7 strings (time-ordered), but clients and the services
//! treat them as opaque strings; parsing only checks length and character set so that ids from other
//! implementations (e.g. 24-hex Mongo ObjectIds) remain representable.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::values::ValueError;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// Parses an id received from outside: 1 to 64 characters of `[A-Za-z0-9_-]`.
            pub fn parse(raw: &str) -> Result<Self, ValueError> {
                let ok = !raw.is_empty()
                    && raw.len() <= 64
                    && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if ok {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(ValueError::MalformedId)
                }
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// A user (an account that has an identity in the chat history).
    UserId
);
opaque_id!(
    /// A chat: a self chat (same id as its owner), a personal chat or a group.
    ChatId
);
opaque_id!(
    /// A message within a chat.
    MessageId
);

impl ChatId {
    /// The personal chat of two users has an id derived from the pair (in either order), so that
    /// "at most one personal chat per pair" is a property of the stream name: two concurrent
    /// creations race for one stream and the event store's expected-version check lets one win.
    pub fn personal_between(a: &UserId, b: &UserId) -> Self {
        use sha2::{Digest, Sha256};
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let mut hasher = Sha256::new();
        hasher.update(low.0.as_bytes());
        hasher.update([0]);
        hasher.update(high.0.as_bytes());
        let digest = hasher.finalize();
        Self(format!("p{}", hex::encode(&digest[..16])))
    }

    /// The self chat of a user has the user's own id.
    pub fn self_chat_of(user: &UserId) -> Self {
        Self(user.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn rejects_empty_long_and_odd_characters() {
        assert!(ChatId::parse("").is_err());
        assert!(ChatId::parse(&"a".repeat(65)).is_err());
        assert!(ChatId::parse("a b").is_err());
        assert!(ChatId::parse("{\"$gt\":\"\"}").is_err());
        assert!(ChatId::parse("65a1f0c2e4b0a1b2c3d4e5f6").is_ok());
    }

    #[test]
    fn a_pair_has_one_personal_chat_id_in_either_order() {
        let (a, b, c) = (UserId::generate(), UserId::generate(), UserId::generate());
        let ab = ChatId::personal_between(&a, &b);
        assert_eq!(ab, ChatId::personal_between(&b, &a));
        assert_ne!(ab, ChatId::personal_between(&a, &c));
        assert_eq!(ChatId::parse(ab.as_str()).unwrap(), ab);
        assert_eq!(ab.as_str().len(), 33);
    }

    #[test]
    fn self_chat_has_owner_id() {
        let u = UserId::generate();
        assert_eq!(ChatId::self_chat_of(&u).as_str(), u.as_str());
    }
}
