//! Commands over NATS request/reply to a queue group of command-service instances.

use async_trait::async_trait;
use events_schema::{CommandEnvelope, CommandOutcome};
use infra::bus::NatsCommands;

use crate::state::CommandBus;

#[async_trait]
impl CommandBus for NatsCommands {
    async fn dispatch(&self, command: CommandEnvelope) -> CommandOutcome {
        NatsCommands::dispatch(self, &command).await
    }
}
