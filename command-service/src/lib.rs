//! The command-service: commands in, decisions out.
//!
//! A command is decided by a pure function against its aggregate's state ([`aggregates`]); the
//! resulting events are appended with the version the decision saw ([`service`]). State is cached
//! per stream and caught up from its last version, so deciding never replays a chat's history.

pub mod aggregates;
pub mod nats;
pub mod service;

pub use service::CommandService;
