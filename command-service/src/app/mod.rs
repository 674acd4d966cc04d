//! Handling a command: route it to its aggregate's stream, check what needs other streams, decide
//! on the cached state, append with the version the decision saw, answer with a typed outcome.

mod batcher;
mod repository;
mod router;

use std::sync::Arc;
use std::time::Duration;

use events_schema::{
    streams, Accepted, CommandEnvelope, CommandOutcome, EventMetadata, RefusalCode, UserId,
};
use infra::EventStore;
use tracing::Instrument;

use self::repository::Repository;
use self::router::{Decide, Rules, Step};
use crate::domain::chat::Chat;
use crate::domain::self_chat::SelfChat;
use crate::domain::user::User;
use crate::domain::{Aggregate, Refusal};

/// Decides commands and appends their events.
pub struct CommandService {
    users: Repository<User>,
    self_chats: Repository<SelfChat>,
    chats: Repository<Chat>,
    rules: Rules,
}

impl CommandService {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            users: Repository::new(store.clone()),
            self_chats: Repository::new(store.clone()),
            chats: Repository::new(store),
            rules: Rules::default(),
        }
    }

    /// How long after sending a message its sender may edit it (`EDIT_WINDOW`; 48 hours unless
    /// set).
    pub fn with_edit_window(mut self, window: Duration) -> Self {
        self.rules.edit_window = window;
        self
    }

    /// Decides `command` and answers once its events are durably stored (or it is refused).
    pub async fn handle(&self, command: CommandEnvelope) -> CommandOutcome {
        let name = command.command.name();
        let span = tracing::info_span!("command", name, correlation_id = %command.correlation_id);
        infra::telemetry::traces::continue_trace(&span, command.trace_parent.as_deref());
        async move {
            let decided = self.decide_and_append(&command).await;
            let outcome = match &decided {
                Ok(_) => "ok",
                Err(refusal) => refusal.code.as_str(),
            };
            metrics::counter!(infra::telemetry::names::COMMANDS, "command" => name, "outcome" => outcome)
                .increment(1);
            match decided {
                Ok(accepted) => CommandOutcome::Accepted(accepted),
                Err(refusal) => {
                    tracing::debug!(code = refusal.code.as_str(), reason = %refusal.message, "command refused");
                    CommandOutcome::Refused { code: refusal.code, message: refusal.message }
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn decide_and_append(&self, envelope: &CommandEnvelope) -> Result<Accepted, Refusal> {
        let plan = router::route(envelope, &self.rules)?;
        for user in &plan.verified {
            self.require_verified(user).await?;
        }
        let meta = router::metadata(envelope);
        let mut answer = Err(Refusal::new(RefusalCode::Internal, "no decision was made"));
        for step in plan.steps {
            answer = Ok(match step {
                Step::User(step) => decide(&self.users, step, &meta).await?,
                Step::SelfChat(step) => decide(&self.self_chats, step, &meta).await?,
                Step::Chat(step) => decide(&self.chats, step, &meta).await?,
            });
        }
        answer
    }

    /// Refuses unless `user` exists and is verified (reads the cached user aggregate).
    async fn require_verified(&self, user: &UserId) -> Result<(), Refusal> {
        let stream = streams::user(user);
        let slot = self.users.slot(&stream);
        let mut loaded = slot.loaded.lock().await;
        // Verification is final: once seen, the stream need not be read again.
        if !loaded.state.is_verified() {
            self.users.catch_up(&stream, &mut loaded).await?;
        }
        if loaded.state.is_verified() {
            Ok(())
        } else {
            Err(Refusal::new(
                RefusalCode::NotFound,
                format!("no such user: {user}"),
            ))
        }
    }
}

/// Decides one step on its stream, alone or in the stream's batch.
async fn decide<A: Aggregate>(
    repository: &Repository<A>,
    step: Decide<A::Command>,
    meta: &EventMetadata,
) -> Result<Accepted, Refusal> {
    if step.batched {
        batcher::execute_queued(repository, &step.stream, step.command, meta.clone()).await
    } else {
        batcher::execute(repository, &step.stream, &step.command, meta).await
    }
}
