//! Values that can only be built valid ("parse, don't validate").

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a value was refused. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("content must not be empty")]
    EmptyContent,
    #[error("content is longer than {max} characters")]
    ContentTooLong { max: usize },
    #[error("name must be 1 to 64 characters")]
    BadName,
    #[error("group name must be 1 to 100 characters")]
    BadGroupName,
    #[error("description must be at most 1000 characters")]
    BadDescription,
    #[error("client id must be 1 to 64 characters")]
    BadClientId,
    #[error("malformed id")]
    MalformedId,
}

/// Message content: at most [`Content::MAX_CHARS`] characters and not blank after trimming.
/// The text is stored as sent (not trimmed); only the check trims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Content(String);

impl Content {
    /// The longest content accepted, in Unicode scalar values.
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        if raw.trim().is_empty() {
            return Err(ValueError::EmptyContent);
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ValueError::ContentTooLong {
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user's display name: 1 to 64 characters after trimming; stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(ValueError::BadName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's name: 1 to 100 characters after trimming; stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(ValueError::BadGroupName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A group's description: at most 1,000 characters, may be empty; stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(ValueError::BadDescription);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A client-chosen idempotency key for sends: 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let len = raw.chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(ValueError::BadClientId);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_limits() {
        assert_eq!(Content::parse("   \n\t"), Err(ValueError::EmptyContent));
        assert_eq!(Content::parse(""), Err(ValueError::EmptyContent));
        assert!(Content::parse(&"é".repeat(4000)).is_ok());
        assert_eq!(
            Content::parse(&"x".repeat(4001)),
            Err(ValueError::ContentTooLong { max: 4000 })
        );
        assert_eq!(Content::parse("  hi ").unwrap().as_str(), "  hi ");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"n".repeat(65)).is_err());
        assert!(UserName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn group_names_and_descriptions_are_bounded() {
        assert_eq!(GroupName::parse(" Team ").unwrap().as_str(), "Team");
        assert!(GroupName::parse("  ").is_err());
        assert!(GroupName::parse(&"g".repeat(101)).is_err());
        assert_eq!(Description::parse("").unwrap().as_str(), "");
        assert!(Description::parse(&"d".repeat(1001)).is_err());
    }

    #[test]
    fn client_ids_are_bounded() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"c".repeat(64)).is_ok());
        assert!(ClientId::parse(&"c".repeat(65)).is_err());
    }
}
