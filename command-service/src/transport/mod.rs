//! How commands reach this service from other processes.

pub mod nats;
