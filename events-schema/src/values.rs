//! Values that can only be built valid ("parse, don't validate").
//!
//! Text rules (docs/api.md, "Text"): message content and group descriptions refuse NUL and every
//! other C0 control character except tab, line feed and carriage return, on every backend
//! (PostgreSQL text cannot hold NUL at all). DEL and the C1 controls are stored as sent there: the
//! protocol admits them and every backend holds them. Names (of users and groups) are one line of
//! display text and stay stricter: they refuse every control character (`char::is_control`: C0,
//! DEL and C1), tab and line breaks included.

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
    /// NUL or another control character the field does not allow (see [`is_refused_control`]).
    #[error("{field} must not contain control characters")]
    ControlCharacters { field: &'static str },
    #[error("malformed id")]
    MalformedId,
}

/// Whether `c` is refused in free text (content, descriptions): a C0 control character other than
/// tab, line feed and carriage return.
pub fn is_refused_control(c: char) -> bool {
    c < ' ' && !matches!(c, '\t' | '\n' | '\r')
}

/// Refuses `text` when it holds a character `refused` says no to, naming `field` in the refusal.
fn refuse_controls(
    text: &str,
    field: &'static str,
    refused: fn(char) -> bool,
) -> Result<(), ValueError> {
    if text.chars().any(refused) {
        return Err(ValueError::ControlCharacters { field });
    }
    Ok(())
}

/// Message content: at most [`Content::MAX_CHARS`] characters, not blank after trimming, and
/// free of the control characters [`is_refused_control`] names. The text is stored as sent (not
/// trimmed); only the check trims.
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
        refuse_controls(raw, "content", is_refused_control)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user's display name: 1 to 64 characters after trimming, no control character at all; stored
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(ValueError::BadName);
        }
        refuse_controls(trimmed, "name", char::is_control)?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's name: 1 to 100 characters after trimming, no control character at all; stored
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(ValueError::BadGroupName);
        }
        refuse_controls(trimmed, "group name", char::is_control)?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A group's description: at most 1,000 characters, may be empty, free of the control characters
/// [`is_refused_control`] names (it may hold several lines); stored trimmed.
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
        refuse_controls(trimmed, "description", is_refused_control)?;
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

    /// Every C0 control but tab, LF and CR, as docs/api.md ("Text") lists them.
    fn refused_c0() -> impl Iterator<Item = char> {
        ('\u{0}'..='\u{1f}').filter(|c| !matches!(c, '\t' | '\n' | '\r'))
    }

    #[test]
    fn content_refuses_c0_controls_but_tab_and_line_breaks() {
        for c in refused_c0() {
            assert_eq!(
                Content::parse(&format!("a{c}b")),
                Err(ValueError::ControlCharacters { field: "content" }),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            Content::parse("a\u{0}b").unwrap_err().to_string(),
            "content must not contain control characters"
        );
        // Blank is still reported as blank, whatever else the text holds.
        assert_eq!(Content::parse("\t\r\n"), Err(ValueError::EmptyContent));
        assert_eq!(
            Content::parse("line 1\r\n\tline 2").unwrap().as_str(),
            "line 1\r\n\tline 2"
        );
        // DEL and C1 controls are not C0: admitted, stored as sent.
        assert!(Content::parse("a\u{7f}b\u{85}c\u{9f}").is_ok());
    }

    #[test]
    fn descriptions_refuse_c0_controls_but_tab_and_line_breaks() {
        for c in refused_c0() {
            assert_eq!(
                Description::parse(&format!("a{c}b")),
                Err(ValueError::ControlCharacters {
                    field: "description"
                }),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            Description::parse(" two\nlines\t ").unwrap().as_str(),
            "two\nlines"
        );
        assert!(Description::parse("a\u{7f}b\u{80}").is_ok());
        assert_eq!(
            Description::parse("a\u{0}").unwrap_err().to_string(),
            "description must not contain control characters"
        );
    }

    #[test]
    fn names_refuse_every_control_character() {
        let controls = refused_c0().chain(['\t', '\n', '\r', '\u{7f}', '\u{80}', '\u{9f}']);
        for c in controls {
            let raw = format!("a{c}b");
            assert_eq!(
                UserName::parse(&raw),
                Err(ValueError::ControlCharacters { field: "name" }),
                "U+{:04X}",
                c as u32
            );
            assert_eq!(
                GroupName::parse(&raw),
                Err(ValueError::ControlCharacters {
                    field: "group name"
                }),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            UserName::parse("a\u{1}").unwrap_err().to_string(),
            "name must not contain control characters"
        );
        assert_eq!(
            GroupName::parse("a\u{0}").unwrap_err().to_string(),
            "group name must not contain control characters"
        );
        // Surrounding whitespace is trimmed before the check, as before.
        assert_eq!(UserName::parse("\tAda\n").unwrap().as_str(), "Ada");
        assert_eq!(GroupName::parse("\r\nTeam\t").unwrap().as_str(), "Team");
        assert!(UserName::parse("Zoë Ünal").is_ok());
    }

    #[test]
    fn client_ids_are_bounded() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"c".repeat(64)).is_ok());
        assert!(ClientId::parse(&"c".repeat(65)).is_err());
    }
}
