//! The gateway: HTTP (accounts and tokens) and Socket.IO in front of the command-service and the
//! read models. Socket events are parsed into commands and queries here; chat rules live in the
//! command-service. With no `NATS_URL` the gateway runs all-in-one: the command-service and the
//! projector run in the same process; with it, they are separate processes reached over NATS
//! ([`cluster`]).

pub mod app;
pub mod auth;
pub mod cluster;
pub mod delivery;
pub mod http;
pub mod socket;
pub mod state;
pub mod wire;

pub use app::Application;
