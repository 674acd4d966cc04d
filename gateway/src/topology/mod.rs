//! The gateway in the production topology (`NATS_URL` set): commands go to the command-service
//! queue group over request/reply (`commands`); the events to deliver come from the
//! projection-service's announcements of what the read models applied (`infra::feed::Applied`),
//! with anything missed read back from JetStream (`follower`); and what one gateway must tell the
//! others (a session ended) travels on core NATS (`sessions`). Every subject is named by
//! `infra::subjects`. No gateway knows where a user is connected: every gateway follows every
//! event and emits to the sockets it holds.
//!
//! Nothing here knows the sockets: what this gateway does with a session's end or a gap it cannot
//! fill is handed in (a [`SessionEnds`] and a [`GiveUp`]).

mod commands;
mod deliveries;
mod follower;
mod sessions;

use std::sync::Arc;

use events_schema::{Position, RecordedEvent};
use infra::db::Database;
use infra::subjects;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::state::{CommandBus, SessionEnds};

pub use follower::GiveUp;

/// This gateway's NATS connection and the deployment's subject prefix.
#[derive(Clone)]
pub struct Topology {
    pub client: async_nats::Client,
    pub prefix: String,
}

impl Topology {
    /// Connects to NATS at `url`; every subject starts with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: infra::bus::connect(url).await?,
            prefix: prefix.to_owned(),
        })
    }

    /// Commands to the command-service queue group.
    pub fn commands(&self) -> Arc<dyn CommandBus> {
        Arc::new(infra::bus::NatsCommands::new(
            self.client.clone(),
            &self.prefix,
        ))
    }

    /// Ends sessions on every gateway (this one included, through `local` once the announcement
    /// comes back); `local` at once when the announcement cannot be sent.
    pub fn session_ends(&self, local: Arc<dyn SessionEnds>) -> Arc<dyn SessionEnds> {
        Arc::new(sessions::Announced::new(&self.client, &self.prefix, local))
    }

    /// Starts following what the read models applied (handed to `applied`, their progress to
    /// `progress`) and the sessions any gateway ended (ended on this one through `local`).
    pub async fn follow(
        &self,
        reads: Database,
        local: Arc<dyn SessionEnds>,
        give_up: GiveUp,
        progress: watch::Sender<Position>,
        applied: mpsc::Sender<Vec<Arc<RecordedEvent>>>,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let announcements = self
            .client
            .subscribe(subjects::applied(&self.prefix, subjects::READ_MODELS))
            .await
            .map_err(|e| anyhow::anyhow!("NATS subscription: {e}"))?;
        let ended = self
            .client
            .subscribe(subjects::sessions_ended(&self.prefix))
            .await
            .map_err(|e| anyhow::anyhow!("NATS subscription: {e}"))?;
        let follower = follower::Follower::new(
            &self.client,
            &self.prefix,
            reads,
            give_up,
            progress,
            applied,
        );
        Ok(vec![
            tokio::spawn(follower.run(announcements)),
            tokio::spawn(sessions::end_announced(ended, local)),
        ])
    }
}
