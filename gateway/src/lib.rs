//! The gateway: HTTP (accounts and tokens) and Socket.IO in front of the command-service and the
//! read models. Socket events are parsed into commands and queries here; chat rules live in the
//! command-service.

pub mod auth;
