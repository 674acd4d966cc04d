//! A reaction's emoji (docs/api.md, "Reactions"): one grapheme cluster of at most 32 bytes.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use unicode_segmentation::UnicodeSegmentation;

/// Why a string is not an [`Emoji`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmojiError {
    #[error("Emoji must be one grapheme")]
    NotOneGrapheme,
    #[error("Emoji is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("Emoji must be an emoji, not plain text, a space or a control character")]
    NotAnEmoji,
}

/// One extended grapheme cluster (UAX #29) of at most [`Emoji::MAX_BYTES`] bytes: a single emoji
/// with its modifiers, joiners and variation selectors (👍🏽, 👩‍👩‍👧, 🇫🇷, #️⃣). Plain ASCII text
/// (`a`, `:)`), whitespace and control characters are refused: checking the Unicode emoji
/// property itself would need its tables, and what a client shows as an emoji changes with its
/// fonts, so the rule is the grapheme, its size, and not plain text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Emoji(String);

impl Emoji {
    /// The longest emoji accepted, in UTF-8 bytes (a family of four with skin tones fits).
    pub const MAX_BYTES: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, EmojiError> {
        if raw.len() > Self::MAX_BYTES {
            return Err(EmojiError::TooLong {
                max: Self::MAX_BYTES,
            });
        }
        let mut graphemes = raw.graphemes(true);
        if graphemes.next().is_none() || graphemes.next().is_some() {
            return Err(EmojiError::NotOneGrapheme);
        }
        if raw.is_ascii() || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(EmojiError::NotAnEmoji);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Emoji {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_emoji_with_its_modifiers_is_one() {
        for ok in ["👍", "👍🏽", "👩‍👩‍👧‍👦", "🇫🇷", "#️⃣", "❤️", "é"]
        {
            assert_eq!(Emoji::parse(ok).map(|e| e.0), Ok(ok.to_owned()), "{ok}");
        }
    }

    #[test]
    fn more_or_less_than_one_grapheme_is_refused() {
        assert_eq!(Emoji::parse(""), Err(EmojiError::NotOneGrapheme));
        assert_eq!(Emoji::parse("👍👍"), Err(EmojiError::NotOneGrapheme));
        assert_eq!(Emoji::parse("👍 "), Err(EmojiError::NotOneGrapheme));
    }

    #[test]
    fn plain_text_spaces_and_controls_are_refused() {
        for refused in ["a", ":", "\u{7}", "\u{3000}", "\u{85}"] {
            assert_eq!(
                Emoji::parse(refused),
                Err(EmojiError::NotAnEmoji),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn more_than_32_bytes_is_refused_even_as_one_grapheme() {
        // One base and enough combining marks to pass 32 bytes: still one grapheme.
        let long = format!("😀{}", "\u{301}".repeat(15));
        assert_eq!(long.graphemes(true).count(), 1);
        assert_eq!(Emoji::parse(&long), Err(EmojiError::TooLong { max: 32 }));
    }
}
