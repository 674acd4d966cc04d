//! Adapters shared by the services. `infra` implements the ports the services need (event store,
//! databases, mail, configuration) and knows nothing of chat rules.

pub mod backoff;
pub mod bus;
pub mod config;
pub mod db;
pub mod event_store;
pub mod feed;
pub mod health;
pub mod mail;
pub mod process;
pub mod relay;
pub mod subjects;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use event_store::{
    AppendResult, AuditQuery, AuditSubject, EventStore, ExpectedVersion, StoreError,
};
