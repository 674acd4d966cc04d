//! How much one socket can make the gateway hold, in bytes: requests waiting for its worker, and
//! the answers queued for its writer (docs/security.md, "Memory per connection").
//!
//! Incoming packets are at most 64 KiB each (`app.rs`). What a socket's waiting requests hold is
//! bounded by [`QUEUE_BYTES`]. What waits for its writer is bounded by the send buffer's packet
//! count (`outbound::SEND_BUFFER`) times the largest packet the gateway builds: deliveries are at
//! most one message, and the answers that could grow with the data (message pages, chat lists)
//! are cut to [`PAGE_BYTES`] and [`CHAT_LIST_MAX`].

use std::io;

use serde::Serialize;
use serde_json::Value;

/// What the requests waiting for one socket's worker may hold, in (estimated) heap bytes; past
/// it, new requests are refused `rate_limited` until some are answered.
pub const QUEUE_BYTES: usize = 1024 * 1024;

/// A page's messages are cut where their JSON passes this many bytes (always keeping at least one
/// message); the client sees `HasMore: true` and asks for the rest with `Before`.
pub const PAGE_BYTES: usize = 64 * 1024;

/// The most chats of each kind sent on connect, newest first.
pub const CHAT_LIST_MAX: usize = 1000;

/// Roughly what a parsed payload holds on the heap: every JSON value is a `Value` (32 bytes),
/// strings and keys hold their bytes, arrays and objects their slots. An over-estimate is fine:
/// it only has to grow with what the client can make the server keep.
pub fn approx_heap(value: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => NODE,
        Value::String(s) => NODE + s.len(),
        Value::Array(items) => NODE + items.iter().map(approx_heap).sum::<usize>(),
        Value::Object(map) => {
            NODE + map
                .iter()
                .map(|(k, v)| NODE + k.len() + approx_heap(v))
                .sum::<usize>()
        }
    }
}

/// The length of `value` as JSON, without building the text.
fn json_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        // Not serializable: it will not be sent either; count it as too large.
        Err(_) => usize::MAX,
    }
}

/// Cuts a page (newest first) to the messages whose JSON fits [`PAGE_BYTES`], at least one;
/// returns whether older messages exist after the cut.
pub fn fit_page<T: Serialize>(messages: &mut Vec<T>, has_more: bool) -> bool {
    let mut used = 0usize;
    let keep = messages
        .iter()
        .position(|m| {
            used = used.saturating_add(json_len(m));
            used > PAGE_BYTES
        })
        .map_or(messages.len(), |first_over| first_over.max(1));
    let cut = keep < messages.len();
    messages.truncate(keep);
    has_more || cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_heap_estimate_grows_with_what_the_payload_holds() {
        let small = approx_heap(&json!({"Content": "hi"}));
        let long = approx_heap(&json!({"Content": "x".repeat(10_000)}));
        assert!(long >= 10_000 && long > small);
        // 64 KiB of `[0,0,…]` is 32,768 values: far more than its text.
        let zeros = Value::Array(vec![json!(0); 32 * 1024]);
        assert!(approx_heap(&zeros) >= 32 * 1024 * 32);
    }

    #[test]
    fn a_page_is_cut_where_it_passes_the_budget_and_keeps_one() {
        let message = |n: usize| json!({"_id": "m", "Content": "x".repeat(n)});
        let mut small = vec![message(10); 50];
        assert!(!fit_page(&mut small, false));
        assert_eq!(small.len(), 50);

        let mut long = vec![message(4000); 200];
        assert!(fit_page(&mut long, false), "cut: older ones remain");
        assert!(long.len() >= 15 && long.len() <= 16, "{}", long.len());
        assert!(json_len(&long) <= PAGE_BYTES + 64);

        let mut huge = vec![message(PAGE_BYTES * 2); 3];
        assert!(fit_page(&mut huge, false));
        assert_eq!(huge.len(), 1, "never an empty page while messages remain");
    }
}
