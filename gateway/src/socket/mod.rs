//! Socket.IO (docs/api.md, "Socket.IO"): the handshake and the on-connect events (`connect`), each
//! socket's requests run one at a time (`router`, `worker`), and the client events, one file
//! per feature (`users`, `self_chat`, `personal`, `groups`).
//!
//! A request is parsed into a typed request ([`requests`]), handled, and answered exactly once
//! (`reply`); what is emitted is bounded (`budget`) and never dropped silently ([`outbound`]).

#[cfg(test)]
mod asyncapi_drift;
mod attachments;
mod budget;
mod chat_view;
mod connect;
mod groups;
mod handler;
mod handshake;
mod message_changes;
pub mod outbound;
mod personal;
mod presence;
mod reply;
pub mod requests;
mod rooms;
mod router;
mod search;
mod self_chat;
mod sessions;
mod sync;
mod users;
mod worker;

pub use connect::register;
pub use reply::Failure;
pub use rooms::{session_room, user_room, SocketUser};
pub use sessions::LocalSockets;
