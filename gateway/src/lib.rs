//! The gateway: HTTP (accounts and tokens) and Socket.IO in front of the command-service and the
//! read models. Socket events are parsed into commands and queries here; chat rules live in the
//! command-service. With no `NATS_URL` the gateway runs all-in-one: the command-service and the
//! projector run in the same process; with it, they are separate processes reached over NATS
//! ([`topology`]).
//!
//! - [`app`] builds and runs the server; [`state`] is what every handler shares, with the ports it
//!   talks through ([`state::CommandBus`], [`state::SessionEnds`]), and knows nothing of the rest.
//! - [`http`]: the routes; [`auth`]: accounts, sessions and tokens in their own tables.
//! - [`socket`]: the handshake, each socket's requests in order, one file per feature.
//! - [`delivery`]: applied events become emits; [`wire`]: every payload emitted or answered.
//! - [`limits`] and [`drain`]: what a client may ask, and the requests a stop answers first.
//! - [`presence`]: who is online and who is typing, kept in memory and across gateways.

pub mod app;
pub mod auth;
pub mod delivery;
pub mod drain;
pub mod files;
pub mod http;
pub mod limits;
pub mod presence;
pub mod socket;
pub mod state;
pub mod topology;
pub mod wire;

pub use app::Application;
