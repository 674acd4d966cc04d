//! The command-service: commands in, decisions out.
//!
//! A command is decided by a pure function against its aggregate's state ([`domain`]); the
//! resulting events are appended with the version the decision saw ([`app`]). State is cached per
//! stream and caught up from its last version, so deciding never replays a chat's history. Other
//! processes send commands over NATS ([`transport`]); the all-in-one server calls
//! [`CommandService::handle`] in-process.

pub mod app;
pub mod domain;
pub mod transport;

pub use app::CommandService;
