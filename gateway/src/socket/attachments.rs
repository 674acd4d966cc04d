//! `Attachments: [FileId]` on the three sends: at most ten of the sender's own uploads, checked
//! (and shielded from the sweep of unsent uploads) before the command is sent.

use events_schema::events::AttachmentShared;
use serde_json::Value;

use crate::files::{self, MAX_ATTACHMENTS};
use crate::socket::handler::{internal, Ctx};
use crate::socket::reply::Failure;

/// The request's `Attachments` as the sender's files, or the refusal: `bad_request` for a field
/// that is not a list of at most ten distinct ids, `not_found` when any id is not an upload of
/// the sender's (nothing is sent then).
pub async fn of_request(ctx: &Ctx, payload: &Value) -> Result<Vec<AttachmentShared>, Failure> {
    let ids = ids(payload)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match files::claim_for_send(&ctx.state.reads, &ctx.user.user_id, &ids).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => {
            tracing::debug!(user = %ctx.user.user_id, "refused: an attachment is not the sender's upload");
            Err(Failure::not_found("no such file"))
        }
        Err(e) => Err(internal(e)),
    }
}

/// The ids, in order (absent or null: none).
fn ids(payload: &Value) -> Result<Vec<String>, Failure> {
    let refuse = |why: &str| {
        tracing::debug!(reason = why, "refused: Attachments");
        Err(Failure::bad_request(format!("Attachments: {why}")))
    };
    let list = match payload.get("Attachments") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return refuse("expected a list of file ids"),
    };
    if list.len() > MAX_ATTACHMENTS {
        return refuse("at most 10 files a message");
    }
    let mut ids: Vec<String> = Vec::with_capacity(list.len());
    for id in list {
        let Some(id) = id.as_str() else {
            return refuse("expected a list of file ids");
        };
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Failure::not_found("no such file"));
        }
        if ids.iter().any(|seen| seen == id) {
            return refuse("the same file twice");
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_field_is_a_short_list_of_distinct_ids() {
        assert!(ids(&json!({})).unwrap().is_empty());
        assert!(ids(&json!({"Attachments": null})).unwrap().is_empty());
        assert_eq!(
            ids(&json!({"Attachments": ["a1", "b2"]})).unwrap(),
            ["a1", "b2"]
        );
        assert_eq!(
            ids(&json!({"Attachments": "a1"})).unwrap_err().code,
            "bad_request"
        );
        assert_eq!(
            ids(&json!({"Attachments": [1]})).unwrap_err().code,
            "bad_request"
        );
        assert_eq!(
            ids(&json!({"Attachments": ["a", "a"]})).unwrap_err().code,
            "bad_request"
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
        assert_eq!(
            ids(&json!({ "Attachments": eleven })).unwrap_err().code,
            "bad_request"
        );
        assert_eq!(
            ids(&json!({"Attachments": ["../x"]})).unwrap_err().code,
            "not_found"
        );
    }
}
