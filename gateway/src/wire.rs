//! Small pieces of the wire format shared by answers and deliveries.

use chrono::{DateTime, SecondsFormat, Utc};

/// ISO 8601 UTC with milliseconds (`2026-11-24T09:30:00.000Z`), as the protocol writes every time.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        assert_eq!(timestamp(at), "2026-11-18T11:06:40.000Z");
    }
}
