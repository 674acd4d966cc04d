//! The validated values and ids of events-schema (values.rs, ids.rs) on any text: each parser keeps
//! exactly what its rule admits, refuses with the reason that applies, parses its own output back
//! to itself and survives a JSON round trip. Input: text; up to its first NUL it also serves as the
//! first of two user ids for `ChatId::personal_between`.

#![no_main]

use events_schema::values::is_refused_control;
use events_schema::{
    ChatId, ClientId, Content, Description, GroupName, MessageId, UserId, UserName, ValueError,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_text(&text);
    check_ids(&text);
    if let Some((a, b)) = text.split_once('\0') {
        check_ids(a);
        check_ids(b);
        check_pair(a, b);
    }
});

/// Serialised as JSON and read back, a value is itself.
fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("a value serialises");
    let back: T = serde_json::from_str(&json).expect("its JSON reads back");
    assert_eq!(&back, value);
}

fn check_text(raw: &str) {
    let chars = raw.chars().count();
    let trimmed = raw.trim();
    let trimmed_chars = trimmed.chars().count();

    match Content::parse(raw) {
        Ok(content) => {
            // Stored as sent, not trimmed.
            assert_eq!(content.as_str(), raw);
            assert!(!trimmed.is_empty() && chars <= Content::MAX_CHARS);
            assert!(!raw.chars().any(is_refused_control));
            assert_eq!(Content::parse(content.as_str()).as_ref(), Ok(&content));
            round_trips(&content);
        }
        Err(ValueError::EmptyContent) => assert!(trimmed.is_empty()),
        Err(ValueError::ContentTooLong { max }) => {
            assert_eq!(max, Content::MAX_CHARS);
            assert!(chars > max);
        }
        Err(ValueError::ControlCharacters { .. }) => {
            assert!(raw.chars().any(is_refused_control))
        }
        Err(other) => panic!("content refused with {other:?}"),
    }

    match UserName::parse(raw) {
        Ok(name) => {
            assert_eq!(name.as_str(), trimmed);
            assert!((1..=UserName::MAX_CHARS).contains(&trimmed_chars));
            assert!(!trimmed.chars().any(char::is_control));
            assert_eq!(UserName::parse(name.as_str()).as_ref(), Ok(&name));
            round_trips(&name);
        }
        Err(ValueError::BadName) => {
            assert!(!(1..=UserName::MAX_CHARS).contains(&trimmed_chars))
        }
        Err(ValueError::ControlCharacters { .. }) => {
            assert!(trimmed.chars().any(char::is_control))
        }
        Err(other) => panic!("name refused with {other:?}"),
    }

    match GroupName::parse(raw) {
        Ok(name) => {
            assert_eq!(name.as_str(), trimmed);
            assert!((1..=GroupName::MAX_CHARS).contains(&trimmed_chars));
            assert!(!trimmed.chars().any(char::is_control));
            assert_eq!(GroupName::parse(name.as_str()).as_ref(), Ok(&name));
            round_trips(&name);
        }
        Err(ValueError::BadGroupName) => {
            assert!(!(1..=GroupName::MAX_CHARS).contains(&trimmed_chars))
        }
        Err(ValueError::ControlCharacters { .. }) => {
            assert!(trimmed.chars().any(char::is_control))
        }
        Err(other) => panic!("group name refused with {other:?}"),
    }

    match Description::parse(raw) {
        Ok(description) => {
            assert_eq!(description.as_str(), trimmed);
            assert!(trimmed_chars <= Description::MAX_CHARS);
            assert!(!trimmed.chars().any(is_refused_control));
            assert_eq!(
                Description::parse(description.as_str()).as_ref(),
                Ok(&description)
            );
            round_trips(&description);
        }
        Err(ValueError::BadDescription) => assert!(trimmed_chars > Description::MAX_CHARS),
        Err(ValueError::ControlCharacters { .. }) => {
            assert!(trimmed.chars().any(is_refused_control))
        }
        Err(other) => panic!("description refused with {other:?}"),
    }

    match ClientId::parse(raw) {
        Ok(id) => {
            assert_eq!(id.as_str(), raw);
            assert!((1..=ClientId::MAX_CHARS).contains(&chars));
            assert_eq!(ClientId::parse(id.as_str()).as_ref(), Ok(&id));
            round_trips(&id);
        }
        Err(ValueError::BadClientId) => assert!(!(1..=ClientId::MAX_CHARS).contains(&chars)),
        Err(other) => panic!("client id refused with {other:?}"),
    }
}

fn id_shape(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

macro_rules! check_id {
    ($ty:ty, $raw:expr) => {
        match <$ty>::parse($raw) {
            Ok(id) => {
                assert!(id_shape($raw));
                assert_eq!(id.as_str(), $raw);
                assert_eq!(id.to_string(), $raw);
                assert_eq!(<$ty>::parse(id.as_str()).as_ref(), Ok(&id));
                round_trips(&id);
            }
            Err(error) => {
                assert_eq!(error, ValueError::MalformedId);
                assert!(!id_shape($raw));
            }
        }
    };
}

fn check_ids(raw: &str) {
    check_id!(UserId, raw);
    check_id!(ChatId, raw);
    check_id!(MessageId, raw);
}

/// A personal chat's id is the pair's, in either order, a valid chat id, one per pair.
fn check_pair(a: &str, b: &str) {
    let (Ok(a), Ok(b)) = (UserId::parse(a), UserId::parse(b)) else {
        return;
    };
    let chat = ChatId::personal_between(&a, &b);
    assert_eq!(chat, ChatId::personal_between(&b, &a));
    assert_eq!(ChatId::parse(chat.as_str()).as_ref(), Ok(&chat));
    assert_eq!(chat.as_str().len(), 33);
    if a != b {
        assert_ne!(chat, ChatId::personal_between(&a, &a));
    }
}
