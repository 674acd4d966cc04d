//! Answers to a request: the acknowledgement (success or failure), `request-failed` when the
//! client asked for no acknowledgement, and the original's own failure events.

use serde::Serialize;

/// The acknowledgement of a request that succeeded: `{success: 1}` with the answer's fields.
#[derive(Debug, Serialize)]
pub struct Success<F> {
    #[serde(flatten)]
    pub fields: F,
    pub success: i32,
}

impl<F> Success<F> {
    pub fn new(fields: F) -> Self {
        Self { fields, success: 1 }
    }
}

/// The acknowledgement of a request that failed: `success` -1 for a bad request or a server error,
/// 0 for a refusal.
#[derive(Debug, Serialize)]
pub struct FailureAck<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub success: i32,
}

/// `request-failed`: a failure of a request sent without an acknowledgement callback, or of the
/// connection itself (`Event: "connect"`).
#[derive(Debug, Serialize)]
pub struct RequestFailed<'a> {
    #[serde(rename = "Event")]
    pub event: &'a str,
    pub code: &'a str,
    pub message: &'a str,
}

/// The original's own failure events (`add-member-fail`, `group-left-fail`).
#[derive(Debug, Serialize)]
pub struct LegacyFailure<'a> {
    #[serde(rename = "Message")]
    pub message: &'a str,
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::wire::assert_wire;

    #[test]
    fn a_success_is_the_answer_with_success_1() {
        let mut fields = Map::new();
        fields.insert("ChatId".into(), json!("c1"));
        fields.insert("Timestamp".into(), Value::Null);
        assert_wire(
            &Success::new(fields),
            json!({"ChatId": "c1", "Timestamp": null, "success": 1}),
        );
    }

    #[test]
    fn failures_carry_code_and_message() {
        assert_wire(
            &FailureAck {
                code: "forbidden",
                message: "not a member of this chat",
                success: 0,
            },
            json!({"code": "forbidden", "message": "not a member of this chat", "success": 0}),
        );
        assert_wire(
            &RequestFailed {
                event: "kickout",
                code: "bad_request",
                message: "GroupId is required",
            },
            json!({"Event": "kickout", "code": "bad_request", "message": "GroupId is required"}),
        );
        assert_wire(
            &LegacyFailure {
                message: "Already in Group",
            },
            json!({"Message": "Already in Group"}),
        );
    }
}
