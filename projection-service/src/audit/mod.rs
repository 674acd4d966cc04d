//! The audit: a chat's or a user's history read from the event store itself (never from a read
//! model), in one shape for the gateway's HTTP routes ([`view`]) and the operator's command line
//! ([`cli`]).

pub mod cli;
pub mod view;

pub use view::{AuditEvent, AuditPage, AuditParamError, AuditParams, DEFAULT_LIMIT, MAX_LIMIT};
