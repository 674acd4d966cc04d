//! HTTP request bodies (gateway/src/http/body.rs) and the account values read from them
//! (gateway/src/auth/values.rs, events-schema's UserName). The body decoder must accept exactly a
//! blank body or a JSON object, refuse anything else as a bad request, and its field accessors
//! must agree with the object; the value parsers must keep only what they promise. Input that is
//! not a JSON object is also fed to the value parsers as text.

#![no_main]

use events_schema::UserName;
use gateway::auth::{Email, Password};
use gateway::http::body::JsonObject;
use gateway::http::error::ApiError;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every field a handler reads from a body.
const FIELDS: [&str; 6] = [
    "email",
    "password",
    "name",
    "code",
    "acessToken",
    "refreshToken",
];

fuzz_target!(|data: &[u8]| {
    let blank = data.iter().all(u8::is_ascii_whitespace);
    let expected = serde_json::from_slice::<Value>(data).ok();
    match JsonObject::from_bytes(data) {
        Ok(body) => {
            match &expected {
                Some(Value::Object(map)) => assert_eq!(&body.0, map),
                _ => assert!(blank && body.0.is_empty()),
            }
            check_fields(&body);
        }
        Err(error) => {
            assert!(!blank && !matches!(expected, Some(Value::Object(_))));
            assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
            if let Ok(text) = std::str::from_utf8(data) {
                check_values(text);
            }
        }
    }
});

fn check_fields(body: &JsonObject) {
    for field in FIELDS {
        let raw = body.0.get(field);
        match body.string(field) {
            Ok(text) => {
                assert_eq!(raw.and_then(Value::as_str), Some(text));
                check_values(text);
            }
            Err(error) => {
                assert!(!matches!(raw, Some(Value::String(_))));
                assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
            }
        }
        match body.optional_string(field) {
            Ok(Some(text)) => assert_eq!(raw.and_then(Value::as_str), Some(text)),
            Ok(None) => assert!(matches!(raw, None | Some(Value::Null))),
            Err(error) => {
                assert!(!matches!(
                    raw,
                    None | Some(Value::Null) | Some(Value::String(_))
                ));
                assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
            }
        }
    }
}

fn check_values(raw: &str) {
    if let Ok(email) = Email::parse(raw) {
        let text = email.as_str();
        assert_eq!(text, raw.trim().to_lowercase());
        assert!(!text.is_empty() && text.len() <= 254);
        assert!(!text.chars().any(|c| c.is_whitespace() || c.is_control()));
        let (local, domain) = text.split_once('@').expect("an accepted address has an @");
        assert!(!local.is_empty() && local.len() <= 64);
        assert!(!domain.contains('@') && domain.contains('.'));
        assert!(!domain.starts_with('.') && !domain.ends_with('.') && !domain.contains(".."));
        // Normalising is idempotent: the stored form is accepted as itself.
        assert_eq!(Email::parse(text).ok().as_ref(), Some(&email));
    }

    let chars = raw.chars().count();
    match Password::parse(raw) {
        Ok(password) => {
            assert!((Password::MIN_CHARS..=Password::MAX_CHARS).contains(&chars));
            assert_eq!(password.expose(), raw);
            assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        }
        Err(_) => assert!(!(Password::MIN_CHARS..=Password::MAX_CHARS).contains(&chars)),
    }

    if let Ok(name) = UserName::parse(raw) {
        assert_eq!(name.as_str(), raw.trim());
        let n = name.as_str().chars().count();
        assert!((1..=UserName::MAX_CHARS).contains(&n));
        assert!(!name.as_str().chars().any(char::is_control));
        assert_eq!(UserName::parse(name.as_str()).as_ref(), Ok(&name));
    }
}
