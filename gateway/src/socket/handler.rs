//! What a request handler gets ([`Ctx`]) and gives ([`Answer`]), and the steps handlers share:
//! sending a command, spending a budget, failing on a query.

use events_schema::{Accepted, Command, CommandOutcome};
use projection_service::queries::QueryError;
use serde::Serialize;
use serde_json::{Map, Value};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use super::reply::Failure;
use super::rooms::SocketUser;
use crate::limits::Budget;
use crate::state::AppState;

/// What a handler gets.
pub struct Ctx {
    pub state: AppState,
    pub user: SocketUser,
    pub socket: SocketRef,
}

/// What a successful request answers: an event to the requesting socket, and the ack's fields.
pub struct Answer {
    pub emit: Option<(&'static str, Value)>,
    pub ack: Map<String, Value>,
}

impl Answer {
    /// The event, with its payload (a `crate::wire` struct) also in the ack.
    pub fn event(name: &'static str, payload: &impl Serialize) -> Result<Self, Failure> {
        let fields = fields(payload)?;
        Ok(Self {
            emit: Some((name, Value::Object(fields.clone()))),
            ack: fields,
        })
    }

    /// Only the ack, with these fields (a `crate::wire` struct).
    pub fn ack_only(fields_of: &impl Serialize) -> Result<Self, Failure> {
        Ok(Self {
            emit: None,
            ack: fields(fields_of)?,
        })
    }
}

/// A payload's fields. Every `crate::wire` payload is an object; anything else is a server error.
fn fields(payload: &impl Serialize) -> Result<Map<String, Value>, Failure> {
    match serde_json::to_value(payload) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => {
            tracing::error!(?other, "an answer that is not an object");
            Err(Failure::internal())
        }
        Err(e) => {
            tracing::error!(error = %e, "an answer that cannot be serialized");
            Err(Failure::internal())
        }
    }
}

/// Sends a command for the socket's user, remembering the socket so deliveries skip it.
pub async fn command(ctx: &Ctx, command: Command) -> Result<Accepted, Failure> {
    let correlation = Uuid::now_v7();
    ctx.state.origins.remember(correlation, ctx.socket.id);
    match ctx
        .state
        .dispatch(correlation, Some(ctx.user.user_id.clone()), command)
        .await
    {
        CommandOutcome::Accepted(accepted) => Ok(accepted),
        CommandOutcome::Refused { code, message } => {
            ctx.state.origins.take(&correlation);
            Err(Failure::refused(code, message))
        }
    }
}

/// Spends one of the caller's `budget` (checked after the payload parsed, so malformed requests
/// cost nothing), or refuses `rate_limited`.
pub fn spend(ctx: &Ctx, budget: Budget) -> Result<(), Failure> {
    if ctx.state.limits.spend(budget, &ctx.user.user_id) {
        return Ok(());
    }
    tracing::debug!(user = %ctx.user.user_id, ?budget, "budget spent: refused");
    Err(Failure::rate_limited_because(match budget {
        Budget::Creation => "too many chats created; wait a while",
        Budget::Search => "too many searches; wait a while",
        Budget::Addition => "too many members added; wait a while",
    }))
}

/// A query that failed for the server's reasons: logged, and answered `internal`.
pub fn internal(e: impl std::fmt::Display) -> Failure {
    tracing::error!(error = %e, "query failed");
    Failure::internal()
}

/// A failed query: `Before` naming no message of the chat is the client's; the rest is ours.
pub fn query_failed(e: QueryError) -> Failure {
    match e {
        QueryError::UnknownMessage => Failure::not_found("Before is not a message of this chat"),
        other => internal(other),
    }
}
