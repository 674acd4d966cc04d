//! The scenarios, one per subcommand. Each returns the parts of its report.

use hdrhistogram::Histogram;
use serde_json::Value;

pub mod fanout;
pub mod history;
pub mod idle;
pub mod one_to_one;
pub mod reconnect;

pub struct Outcome {
    pub params: Value,
    pub results: Value,
    pub server: Value,
    pub latencies: Vec<(String, Histogram<u64>)>,
}

/// The payload's `success` field is 1 (docs/api.md, "Requests").
pub fn succeeded(ack: &str) -> bool {
    serde_json::from_str::<Value>(ack)
        .ok()
        .and_then(|v| v.get("success")?.as_i64())
        == Some(1)
}

/// A string field of a JSON text.
pub fn field(json: &str, key: &str) -> Option<String> {
    serde_json::from_str::<Value>(json)
        .ok()?
        .get(key)?
        .as_str()
        .map(str::to_string)
}
