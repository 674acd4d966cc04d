//! Message search (docs/api.md, "Search"): the acknowledgement of `search-messages`.

use events_schema::{ChatId, MessageId, UserId};
use serde::Serialize;

/// The acknowledgement of `search-messages`: the results, newest first; whether older ones
/// exist; and `Next`, the `Before` that asks for them (null when there are none).
#[derive(Debug, Serialize)]
pub struct SearchResults {
    #[serde(rename = "HasMore")]
    pub has_more: bool,
    #[serde(rename = "Next")]
    pub next: Option<String>,
    #[serde(rename = "Results")]
    pub results: Vec<SearchResult>,
}

/// One message found, with its text as it is now.
#[derive(Debug, Serialize)]
pub struct SearchResult {
    #[serde(rename = "ChatId")]
    pub chat_id: ChatId,
    #[serde(rename = "Content")]
    pub content: String,
    #[serde(rename = "MessageId")]
    pub message_id: MessageId,
    #[serde(rename = "SenderId")]
    pub sender_id: UserId,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn results_with_their_cursor() {
        assert_wire(
            &SearchResults {
                has_more: true,
                next: Some("1795000000000-3-g1".into()),
                results: vec![SearchResult {
                    chat_id: ChatId::parse("g1").unwrap(),
                    content: "hello there".into(),
                    message_id: MessageId::parse("m1").unwrap(),
                    sender_id: UserId::parse("u1").unwrap(),
                    timestamp: "2026-11-18T11:06:40.000Z".into(),
                }],
            },
            json!({
                "HasMore": true,
                "Next": "1795000000000-3-g1",
                "Results": [{
                    "ChatId": "g1",
                    "Content": "hello there",
                    "MessageId": "m1",
                    "SenderId": "u1",
                    "Timestamp": "2026-11-18T11:06:40.000Z",
                }],
            }),
        );
        assert_wire(
            &SearchResults {
                has_more: false,
                next: None,
                results: Vec::new(),
            },
            json!({"HasMore": false, "Next": null, "Results": []}),
        );
    }
}
