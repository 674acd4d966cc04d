//! Catch-up: `sync`'s acknowledgement.

use serde::Serialize;
use serde_json::value::RawValue;

/// `sync`'s ack: `{Events:[{Event, Data}], HasMore, Seq}` (with `success`).
#[derive(Serialize)]
pub struct Synced<'a> {
    #[serde(rename = "Events")]
    pub events: Vec<SyncedEvent<'a>>,
    #[serde(rename = "HasMore")]
    pub has_more: bool,
    #[serde(rename = "Seq")]
    pub seq: String,
}

/// One delivery, as the user's sockets got it.
#[derive(Serialize)]
pub struct SyncedEvent<'a> {
    #[serde(rename = "Data")]
    pub data: &'a RawValue,
    #[serde(rename = "Event")]
    pub event: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_in_order_and_data_verbatim() {
        let data = RawValue::from_string(r#"{"ChatId":"c","Seq":"9"}"#.into()).unwrap();
        let synced = Synced {
            events: vec![SyncedEvent {
                data: &data,
                event: "message-deleted",
            }],
            has_more: false,
            seq: "9".into(),
        };
        assert_eq!(
            serde_json::to_string(&synced).unwrap(),
            r#"{"Events":[{"Data":{"ChatId":"c","Seq":"9"},"Event":"message-deleted"}],"HasMore":false,"Seq":"9"}"#
        );
    }
}
