//! Catch-up after a disconnect (docs/api.md, "Catch-up"): `sync {Since, Limit?}` answers the
//! deliveries the user's sockets got or would have got after `Since`; `sync {}` answers where now
//! is. The work is in `crate::delivery::catch_up`.

use serde_json::Value;

use super::handler::{internal, Answer, Ctx};
use super::reply::Failure;
use crate::delivery::{catch_up, last_seq_of, CatchUpError};
use crate::wire::{Synced, SyncedEvent};

/// Deliveries a page holds unless `Limit` says otherwise.
const DEFAULT_LIMIT: usize = 500;
/// The most a page holds.
const MAX_LIMIT: usize = 1_000;

/// What a `sync` asks.
#[derive(Debug, PartialEq, Eq)]
struct SyncRequest {
    since: Option<u64>,
    limit: usize,
}

fn parse(payload: &Value) -> Result<SyncRequest, Failure> {
    let empty = serde_json::Map::new();
    let fields = match payload {
        Value::Object(fields) => fields,
        Value::Null => &empty,
        _ => return Err(Failure::bad_request("sync takes an object")),
    };
    // A `Seq` is an opaque string of the server's; a client that kept it as a number is understood.
    let since = match fields.get("Since") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Some(
            s.parse::<u64>()
                .map_err(|_| Failure::bad_request("Since is not a Seq of this server"))?,
        ),
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => return Err(Failure::bad_request("Since is not a Seq of this server")),
    };
    let limit = match fields.get("Limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n @ 1..) if n <= MAX_LIMIT as u64 => n as usize,
            _ => {
                return Err(Failure::bad_request(
                    "Limit is a whole number from 1 to 1000",
                ))
            }
        },
        Some(_) => {
            return Err(Failure::bad_request(
                "Limit is a whole number from 1 to 1000",
            ))
        }
    };
    Ok(SyncRequest { since, limit })
}

/// `sync {Since?, Limit?}`.
pub async fn sync(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = parse(&payload)?;
    let state = &ctx.state;
    let Some(since) = request.since else {
        // Where now is: every later delivery reaches a socket connected now.
        let now = last_seq_of(state.consistency.delivered_up_to());
        return Answer::ack_only(&Synced {
            events: Vec::new(),
            has_more: false,
            seq: now.to_string(),
        });
    };
    // Members and names must be known at every event the page reads.
    state.consistency.caught_up_to_head(&*state.store).await;
    let page = match catch_up(state, &ctx.user.user_id, since, request.limit).await {
        Ok(page) => page,
        Err(CatchUpError::Gone) => {
            tracing::debug!(user = %ctx.user.user_id, since, "sync refused: Since is ahead of the log");
            return Err(Failure::gone(
                "Since is not a point this server knows; reload the chat lists",
            ));
        }
        Err(e) => return Err(internal(e)),
    };
    let events = page
        .caught
        .iter()
        .map(|c| SyncedEvent {
            data: &c.data,
            event: c.event,
        })
        .collect();
    Answer::ack_only(&Synced {
        events,
        has_more: page.has_more,
        seq: page.seq.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn since_and_limit() {
        assert_eq!(
            parse(&json!({})),
            Ok(SyncRequest {
                since: None,
                limit: 500
            })
        );
        assert_eq!(
            parse(&json!({"Since": "42", "Limit": 1000})),
            Ok(SyncRequest {
                since: Some(42),
                limit: 1000
            })
        );
        assert_eq!(parse(&json!({"Since": 42})).map(|r| r.since), Ok(Some(42)));
    }

    #[test]
    fn malformed_is_a_bad_request() {
        for bad in [
            json!({"Since": "abc"}),
            json!({"Since": "-1"}),
            json!({"Since": ""}),
            json!({"Since": "99999999999999999999999"}),
            json!({"Since": -3}),
            json!({"Since": 1.5}),
            json!({"Limit": 0}),
            json!({"Limit": 1001}),
            json!({"Limit": "5"}),
            json!([1]),
        ] {
            assert_eq!(parse(&bad).map_err(|f| f.code), Err("bad_request"), "{bad}");
        }
    }
}
