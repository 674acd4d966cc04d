//! Answering a client event: exactly one acknowledgement when the client asked for one, else
//! `request-failed` on failure (docs/api.md, "Requests").

use std::convert::Infallible;
use std::sync::Arc;

use events_schema::RefusalCode;
use serde_json::{Map, Value};
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;

use super::outbound;
use crate::wire::{FailureAck, LegacyFailure, RequestFailed, Success};

/// Why a request failed, in the protocol's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    /// The original's own failure event (e.g. `add-member-fail`), emitted to the socket as well
    /// with `{Message}`.
    pub also: Option<&'static str>,
}

impl Failure {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: "bad_request",
            message: message.into(),
            also: None,
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: "not_found",
            message: message.into(),
            also: None,
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            code: "forbidden",
            message: message.into(),
            also: None,
        }
    }
    /// What the request names is no longer (or never was) kept; the client reloads instead.
    pub fn gone(message: impl Into<String>) -> Self {
        Self {
            code: "gone",
            message: message.into(),
            also: None,
        }
    }
    pub fn rate_limited() -> Self {
        Self::rate_limited_because("too many requests in flight on this socket; wait for answers")
    }

    /// A budget of the caller's is spent (docs/security.md); nothing was done.
    pub fn rate_limited_because(message: impl Into<String>) -> Self {
        Self {
            code: "rate_limited",
            message: message.into(),
            also: None,
        }
    }

    /// A request that reached a gateway on its way down; it changed nothing.
    pub fn stopping() -> Self {
        Self {
            code: "internal",
            message: "the server is restarting; reconnect and try again".into(),
            also: None,
        }
    }

    pub fn internal() -> Self {
        Self {
            code: "internal",
            message: "internal error, try again".into(),
            also: None,
        }
    }
    pub fn refused(code: RefusalCode, message: String) -> Self {
        Self {
            code: code.as_str(),
            message,
            also: None,
        }
    }

    /// Also emits the original's failure event `event` with `{Message}`.
    pub fn with_legacy(mut self, event: &'static str) -> Self {
        self.also = Some(event);
        self
    }

    /// `success` is -1 for a bad request or a server error, 0 for a refusal.
    fn success(&self) -> i32 {
        match self.code {
            "bad_request" | "internal" | "rate_limited" => -1,
            _ => 0,
        }
    }

    /// `request-failed` for this failure of `event`.
    pub fn request_failed<'a>(&'a self, event: &'a str) -> RequestFailed<'a> {
        RequestFailed {
            event,
            code: self.code,
            message: &self.message,
        }
    }
}

/// The acknowledgement callback of a client event, if it sent one.
pub struct Reply {
    ack: AckSender,
    wants_ack: bool,
    socket: SocketRef,
}

impl FromMessageParts<LocalAdapter> for Reply {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<LocalAdapter>>,
        v: &mut socketioxide_core::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let ack = AckSender::from_message_parts(s, v, ack_id)?;
        Ok(Self {
            ack,
            wants_ack: ack_id.is_some(),
            socket: SocketRef::from(s.clone()),
        })
    }
}

impl Reply {
    /// Acknowledges success with `fields` merged into `{success: 1}`.
    pub fn ok(self, fields: Map<String, Value>) {
        let body = Success::new(fields);
        let ack = self.ack;
        outbound::send_with(&self.socket, "ack", move || ack.send(&body));
    }

    /// Answers a failure: the ack if the client asked for one, else `request-failed` to `socket`.
    pub fn fail(self, event: &str, failure: &Failure) {
        tracing::debug!(event, code = failure.code, message = %failure.message, "request refused");
        let socket = &self.socket;
        if let Some(legacy) = failure.also {
            let payload = LegacyFailure {
                message: &failure.message,
            };
            outbound::emit(socket, legacy, &payload);
        }
        if self.wants_ack {
            let answer = FailureAck {
                code: failure.code,
                message: &failure.message,
                success: failure.success(),
            };
            let ack = self.ack;
            outbound::send_with(socket, "ack", move || ack.send(&answer));
        } else {
            outbound::emit(socket, "request-failed", &failure.request_failed(event));
        }
    }
}
