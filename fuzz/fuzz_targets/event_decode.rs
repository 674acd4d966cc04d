//! Stored events (events-schema/src/events.rs): `DomainEvent::decode` and `upcast` with any type,
//! version and payload, as a damaged or foreign event store could hand them over. Neither may
//! panic; refusals name the right reason; a decoded event encodes and decodes back to itself, and
//! decoding an old version equals decoding its upcast payload at the current one.
//!
//! Input: byte 0 picks the event type (an index into the catalogue; past its end, the type is the
//! text up to the first newline), byte 1 is the schema version, the rest is the payload.

#![no_main]

use events_schema::events::upcast;
use events_schema::{DecodeError, DomainEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [pick, version, rest @ ..] = data else {
        return;
    };
    let rest = String::from_utf8_lossy(rest);
    let (event_type, payload): (&str, &str) = match DomainEvent::CATALOGUE.get(usize::from(*pick)) {
        Some((name, _)) => (name, &rest),
        None => rest.split_once('\n').unwrap_or((&rest, "")),
    };
    check(event_type, u32::from(*version), payload);
});

fn check(event_type: &str, version: u32, payload: &str) {
    let current = DomainEvent::current_version(event_type);
    let decoded = DomainEvent::decode(event_type, version, payload);
    let upcast_value = upcast(event_type, version, payload);

    let Ok(current) = current else {
        assert!(
            matches!(decoded, Err(DecodeError::UnknownType(_))),
            "{decoded:?}"
        );
        assert!(matches!(upcast_value, Err(DecodeError::UnknownType(_))));
        return;
    };
    if version == 0 || version > current {
        assert!(
            matches!(decoded, Err(DecodeError::UnknownVersion { .. })),
            "{decoded:?}"
        );
        assert!(matches!(
            upcast_value,
            Err(DecodeError::UnknownVersion { .. })
        ));
        return;
    }
    // A known type at a known version: only the payload can be at fault.
    if let Err(error) = &decoded {
        assert!(matches!(error, DecodeError::Malformed { .. }), "{error:?}");
    }
    let valid_json = serde_json::from_str::<serde_json::Value>(payload).is_ok();
    assert_eq!(upcast_value.is_ok(), valid_json);

    let Ok(event) = decoded else {
        return;
    };
    assert_eq!(event.event_type(), event_type);
    assert_eq!(event.schema_version(), current);
    let again = DomainEvent::decode(event.event_type(), event.schema_version(), &event.payload());
    assert_eq!(
        again.ok().as_ref(),
        Some(&event),
        "payload {}",
        event.payload()
    );

    if version < current {
        let value = upcast_value.expect("a decoded payload is JSON");
        let upcast_decoded = DomainEvent::decode(event_type, current, &value.to_string());
        assert_eq!(upcast_decoded.ok().as_ref(), Some(&event));
    }
}
