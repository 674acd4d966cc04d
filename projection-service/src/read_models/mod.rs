//! The read models: the one owner of their tables (schema in `migrations/`), of how events change
//! them ([`Projector`]), of their checkpoint, and of the queries the gateway answers with.

mod batched_messages;
pub mod checkpoint;
pub mod dead_letters;
pub mod memberships;
mod message_changes;
pub mod presence;
mod projector;
pub mod queries;
pub mod search;

pub use projector::{Projector, BATCH};
