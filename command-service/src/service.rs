//! Handling a command: load the aggregate (cached, caught up), decide, append with the version the
//! decision saw, retry on a conflict, answer with a typed outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use events_schema::{
    streams, Accepted, ChatId, Command, CommandEnvelope, CommandOutcome, DomainEvent,
    EventMetadata, MessageId, RefusalCode, UserId,
};
use infra::{EventStore, ExpectedVersion, StoreError};
use tokio::sync::{oneshot, Mutex as AsyncMutex};
use tracing::Instrument;

use crate::aggregates::chat::Chat;
use crate::aggregates::self_chat::SelfChat;
use crate::aggregates::user::User;
use crate::aggregates::{Aggregate, Decision, Refusal};

/// How often a decision is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 5;
/// Events read per page when catching a cached state up.
const CATCH_UP_PAGE: usize = 1000;
/// Commands of one stream decided together and appended in one write, at most.
const MAX_BATCH: usize = 256;
/// Streams kept in each cache before idle ones are dropped.
const CACHE_CAPACITY: usize = 100_000;

/// An aggregate's state and the version of the last event applied to it.
struct Loaded<A> {
    state: A,
    version: Option<u64>,
    /// Whether the state was ever caught up from the store. After that, this service applies its
    /// own appends to it directly, so an accepted command costs no read.
    synced: bool,
}

/// A command's decision on a stream's state.
type Decide<'a, A> = dyn Fn(&A) -> Result<Decision, Refusal> + Send + Sync + 'a;
/// A decision that can wait in a stream's queue and be decided by whichever command holds the
/// stream's lock (owned, so it outlives the borrow of the command that made it).
type QueuedDecision<A> = Box<Decide<'static, A>>;

/// A command waiting in a stream's queue, and where its answer goes.
struct Job<A> {
    decide: QueuedDecision<A>,
    meta: EventMetadata,
    reply: oneshot::Sender<Result<Accepted, Refusal>>,
}

/// One stream's cached state behind its async lock, and the commands queued for it.
struct Slot<A> {
    loaded: AsyncMutex<Loaded<A>>,
    queue: Mutex<Vec<Job<A>>>,
}

impl<A: Aggregate> Slot<A> {
    fn new() -> Self {
        Self {
            loaded: AsyncMutex::new(Loaded {
                state: A::default(),
                version: None,
                synced: false,
            }),
            queue: Mutex::new(Vec::new()),
        }
    }
}

/// Cached states, one async lock per stream: commands on one stream take turns, commands on
/// different streams run in parallel.
struct Cache<A> {
    streams: Mutex<HashMap<String, Arc<Slot<A>>>>,
}

impl<A: Aggregate> Cache<A> {
    fn new() -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, stream: &str) -> Arc<Slot<A>> {
        let Ok(mut streams) = self.streams.lock() else {
            // A poisoned map only means a panic elsewhere; a private entry is still correct.
            return Arc::new(Slot::new());
        };
        if streams.len() >= CACHE_CAPACITY {
            streams.retain(|_, entry| Arc::strong_count(entry) > 1);
        }
        streams
            .entry(stream.to_owned())
            .or_insert_with(|| Arc::new(Slot::new()))
            .clone()
    }
}

/// Decides commands and appends their events.
pub struct CommandService {
    store: Arc<dyn EventStore>,
    users: Cache<User>,
    self_chats: Cache<SelfChat>,
    chats: Cache<Chat>,
}

impl CommandService {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            users: Cache::new(),
            self_chats: Cache::new(),
            chats: Cache::new(),
        }
    }

    /// Decides `command` and answers once its events are durably stored (or it is refused).
    pub async fn handle(&self, command: CommandEnvelope) -> CommandOutcome {
        let span = tracing::info_span!("command", name = command.command.name(), correlation_id = %command.correlation_id);
        async move {
            match self.decide_and_append(&command).await {
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
        let meta = EventMetadata {
            actor: envelope.actor.as_ref().map(|a| a.as_str().to_owned()),
            correlation_id: envelope.correlation_id,
            causation_id: None,
        };
        match &envelope.command {
            Command::RegisterUser { user_id, name } => {
                self.execute(&self.users, &streams::user(user_id), &meta, |u| {
                    u.register(user_id, name)
                })
                .await
            }
            Command::RenameUser { user_id, name } => {
                self.execute(&self.users, &streams::user(user_id), &meta, |u| {
                    u.rename(user_id, name)
                })
                .await
            }
            Command::VerifyUser { user_id } => self.verify(user_id, &meta).await,
            Command::SendSelfMessage { content, client_id } => {
                let sender = envelope.actor.as_ref().ok_or_else(|| {
                    Refusal::new(RefusalCode::Forbidden, "sending needs a signed-in user")
                })?;
                let stream = streams::chat(&ChatId::self_chat_of(sender));
                let (sender, content, client_id) =
                    (sender.clone(), content.clone(), client_id.clone());
                self.execute_queued(
                    &self.self_chats,
                    &stream,
                    meta,
                    Box::new(move |chat| {
                        chat.send(&sender, &content, client_id.as_ref(), MessageId::generate())
                    }),
                )
                .await
            }
            Command::CreatePersonalChat { partner } => {
                let creator = actor(envelope)?;
                if creator == partner {
                    return Err(Refusal::new(
                        RefusalCode::BadRequest,
                        "a personal chat needs another user",
                    ));
                }
                self.require_verified(creator).await?;
                self.require_verified(partner).await?;
                let chat_id = ChatId::personal_between(creator, partner);
                self.execute(&self.chats, &streams::chat(&chat_id), &meta, |chat| {
                    chat.create_personal(&chat_id, creator, partner)
                })
                .await
            }
            Command::CreateGroup {
                group_id,
                name,
                description,
                participants,
            } => {
                let admin = actor(envelope)?;
                // Who may be named is the group's rule (the aggregate's); that they exist is the
                // users' streams' fact, read here.
                for participant in participants.iter().filter(|p| *p != admin) {
                    self.require_verified(participant).await?;
                }
                self.execute(&self.chats, &streams::chat(group_id), &meta, |chat| {
                    chat.create_group(group_id, admin, name, description, participants)
                })
                .await
            }
            Command::SendMessage {
                chat_id,
                kind,
                content,
                client_id,
            } => {
                let sender = actor(envelope)?.clone();
                let (kind, content, client_id) = (*kind, content.clone(), client_id.clone());
                self.execute_queued(
                    &self.chats,
                    &streams::chat(chat_id),
                    meta,
                    Box::new(move |chat| {
                        chat.send(
                            kind,
                            &sender,
                            &content,
                            client_id.as_ref(),
                            MessageId::generate(),
                        )
                    }),
                )
                .await
            }
            Command::MarkRead { chat_id, kind } => {
                let reader = actor(envelope)?;
                self.execute(&self.chats, &streams::chat(chat_id), &meta, |chat| {
                    chat.mark_read(*kind, reader)
                })
                .await
            }
            Command::AddMember { chat_id, member } => {
                let admin = actor(envelope)?;
                self.require_verified(member).await?;
                self.execute(&self.chats, &streams::chat(chat_id), &meta, |chat| {
                    chat.add_member(admin, member)
                })
                .await
            }
            Command::KickMember { chat_id, member } => {
                let admin = actor(envelope)?;
                self.execute(&self.chats, &streams::chat(chat_id), &meta, |chat| {
                    chat.kick(admin, member)
                })
                .await
            }
            Command::ChangeAdmin { chat_id, member } => {
                let admin = actor(envelope)?;
                self.execute(&self.chats, &streams::chat(chat_id), &meta, |chat| {
                    chat.change_admin(admin, member)
                })
                .await
            }
            Command::LeaveGroup { chat_id } => {
                let member = actor(envelope)?;
                self.execute(&self.chats, &streams::chat(chat_id), &meta, |chat| {
                    chat.leave(member)
                })
                .await
            }
            Command::DeleteGroup { chat_id } => {
                let admin = actor(envelope)?;
                self.execute(&self.chats, &streams::chat(chat_id), &meta, |chat| {
                    chat.delete(admin)
                })
                .await
            }
        }
    }

    /// Refuses unless `user` exists and is verified (reads the cached user aggregate).
    async fn require_verified(&self, user: &UserId) -> Result<(), Refusal> {
        let stream = streams::user(user);
        let entry = self.users.entry(&stream);
        let mut loaded = entry.loaded.lock().await;
        // Verification is final: once seen, the stream need not be read again.
        if !loaded.state.verified {
            self.catch_up(&stream, &mut loaded).await?;
        }
        if loaded.state.verified {
            Ok(())
        } else {
            Err(Refusal::new(
                RefusalCode::NotFound,
                format!("no such user: {user}"),
            ))
        }
    }

    /// Verification touches two streams, each step idempotent, so a retry after a crash between
    /// them completes the work.
    async fn verify(&self, user_id: &UserId, meta: &EventMetadata) -> Result<Accepted, Refusal> {
        self.execute(&self.users, &streams::user(user_id), meta, |u| {
            u.verify(user_id)
        })
        .await?;
        let chat = ChatId::self_chat_of(user_id);
        self.execute(&self.self_chats, &streams::chat(&chat), meta, |c| {
            c.create(user_id)
        })
        .await
    }

    /// Loads, decides, appends; on a version conflict catches up and decides again.
    ///
    /// A stream's state is read from the store once; afterwards commands are decided on the cached
    /// state and the events this service appends are applied to it directly. If another writer
    /// moved the stream on, the append fails its expected-version check and the state is caught
    /// up; a refusal or a "nothing to do" decided on the cached state alone is re-checked after
    /// catching up, so no stale state refuses a command or skips a write.
    async fn execute<A: Aggregate + Clone>(
        &self,
        cache: &Cache<A>,
        stream: &str,
        meta: &EventMetadata,
        decide: impl Fn(&A) -> Result<Decision, Refusal> + Send + Sync,
    ) -> Result<Accepted, Refusal> {
        let entry = cache.entry(stream);
        let mut loaded = entry.loaded.lock().await;
        self.decide_batch(stream, &mut loaded, &[(&decide, meta)])
            .await
            .pop()
            .unwrap_or_else(|| Err(Refusal::new(RefusalCode::Internal, "no decision was made")))
    }

    /// Like [`Self::execute`], for the commands that come in floods on one stream (messages): the
    /// command joins the stream's queue; whoever holds the stream's lock next decides every queued
    /// command in order, each on the state the ones before it leave, and appends all their events
    /// in one write. A busy chat then costs one append per batch instead of one per message, while
    /// each command still gets its own answer (a refusal refuses only its own command).
    async fn execute_queued<A: Aggregate + Clone>(
        &self,
        cache: &Cache<A>,
        stream: &str,
        meta: EventMetadata,
        decide: QueuedDecision<A>,
    ) -> Result<Accepted, Refusal> {
        let slot = cache.entry(stream);
        let (reply, mut answer) = oneshot::channel();
        if let Ok(mut queue) = slot.queue.lock() {
            queue.push(Job {
                decide,
                meta,
                reply,
            });
        }
        let lost = || Refusal::new(RefusalCode::Internal, "the command was lost; try again");
        let mut loaded = slot.loaded.lock().await;
        loop {
            // Decided by the previous holder of the lock?
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Closed) => return Err(lost()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let jobs: Vec<Job<A>> = match slot.queue.lock() {
                Ok(mut queue) => {
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                }
                Err(_) => return Err(lost()),
            };
            if jobs.is_empty() {
                return Err(lost());
            }
            let decisions: Vec<(&Decide<'_, A>, &EventMetadata)> = jobs
                .iter()
                .map(|j| (&*j.decide as &Decide<'_, A>, &j.meta))
                .collect();
            let results = self.decide_batch(stream, &mut loaded, &decisions).await;
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
    }

    /// Decides `jobs` in order, each on the state the ones before it leave, and appends their
    /// events in one write (retrying the whole batch on a version conflict); one answer per job.
    async fn decide_batch<A: Aggregate + Clone>(
        &self,
        stream: &str,
        loaded: &mut Loaded<A>,
        jobs: &[(&Decide<'_, A>, &EventMetadata)],
    ) -> Vec<Result<Accepted, Refusal>> {
        enum Outcome {
            Done(Result<Accepted, Refusal>),
            /// Its events are `events[range]` of the batch's append.
            Append(std::ops::Range<usize>, Accepted),
        }
        let answer_all = |refusal: Refusal| vec![Err(refusal); jobs.len()];
        let mut fresh = false;
        if !loaded.synced {
            if let Err(refusal) = self.catch_up(stream, loaded).await {
                return answer_all(refusal);
            }
            loaded.synced = true;
            fresh = true;
        }
        'attempt: for _ in 0..MAX_ATTEMPTS {
            // Later jobs decide on a copy holding the earlier jobs' events, so that a failed append
            // leaves the cached state as it was. The copy is made only when a later job needs it:
            // a batch of one (most commands) costs no clone of the state, which for a large group
            // holds every member.
            let mut scratch: Option<A> = None;
            let mut version = loaded.version;
            let mut events: Vec<DomainEvent> = Vec::new();
            let mut new_events = Vec::new();
            let mut outcomes = Vec::with_capacity(jobs.len());
            for (i, (decide, meta)) in jobs.iter().enumerate() {
                let decision = decide(scratch.as_ref().unwrap_or(&loaded.state));
                let later = i + 1 < jobs.len();
                match decision {
                    Err(_) | Ok(Decision::AlreadyDone(_)) if !fresh => {
                        if let Err(refusal) = self.catch_up(stream, loaded).await {
                            return answer_all(refusal);
                        }
                        fresh = true;
                        continue 'attempt;
                    }
                    Err(refusal) => outcomes.push(Outcome::Done(Err(refusal))),
                    Ok(Decision::AlreadyDone(accepted)) => {
                        outcomes.push(Outcome::Done(Ok(accepted)))
                    }
                    Ok(Decision::Append(mine)) => {
                        let start = events.len();
                        for event in &mine {
                            let new = event.clone().into_new_event((*meta).clone());
                            // Provisional version and position, for the jobs after this one.
                            let v = version.map_or(0, |v| v + 1);
                            if later {
                                scratch
                                    .get_or_insert_with(|| loaded.state.clone())
                                    .apply(event, &recorded_as(stream, &new, v, 0));
                            }
                            version = Some(v);
                            new_events.push(new);
                        }
                        let accepted = accepted_for(&mine);
                        events.extend(mine);
                        outcomes.push(Outcome::Append(start..events.len(), accepted));
                    }
                }
            }
            let mut position = None;
            if !events.is_empty() {
                let expected = loaded
                    .version
                    .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                match self
                    .store
                    .append(stream, expected, new_events.clone())
                    .await
                {
                    Ok(result) => {
                        apply_own(
                            stream,
                            loaded,
                            &events,
                            &new_events,
                            result.version,
                            result.position,
                        );
                        position = Some(result.position);
                    }
                    Err(StoreError::WrongExpectedVersion { .. }) => {
                        tracing::debug!(stream, "another writer appended first; deciding again");
                        if let Err(refusal) = self.catch_up(stream, loaded).await {
                            return answer_all(refusal);
                        }
                        fresh = true;
                        continue 'attempt;
                    }
                    Err(e) => {
                        tracing::error!(stream, error = %e, "append failed");
                        loaded.synced = false;
                        return answer_all(Refusal::new(
                            RefusalCode::Internal,
                            "the event store is unavailable",
                        ));
                    }
                }
            }
            return outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    Outcome::Done(Ok(mut accepted)) => {
                        // A repeat of a send made earlier in this same batch points at this write.
                        if let (0, Some(p)) = (accepted.position, position) {
                            accepted.position = p;
                        }
                        Ok(accepted)
                    }
                    Outcome::Done(Err(refusal)) => Err(refusal),
                    Outcome::Append(range, accepted) => Ok(Accepted {
                        position: position.unwrap_or_default(),
                        occurred_at: accepted.message_id.as_ref().and(
                            new_events
                                .get(range.end.saturating_sub(1))
                                .map(|e| e.occurred_at),
                        ),
                        ..accepted
                    }),
                })
                .collect();
        }
        answer_all(Refusal::new(
            RefusalCode::Conflict,
            "too many concurrent changes; try again",
        ))
    }

    /// Applies the events of `stream` written since `loaded.version`.
    async fn catch_up<A: Aggregate>(
        &self,
        stream: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<(), Refusal> {
        loop {
            let from = loaded.version.map_or(0, |v| v + 1);
            let events = self
                .store
                .read_stream(stream, from, CATCH_UP_PAGE)
                .await
                .map_err(|e| {
                    tracing::error!(stream, error = %e, "cannot read stream");
                    Refusal::new(RefusalCode::Internal, "the event store is unavailable")
                })?;
            let done = events.len() < CATCH_UP_PAGE;
            for recorded in &events {
                match DomainEvent::from_recorded(recorded) {
                    Ok(event) => loaded.state.apply(&event, recorded),
                    Err(e) => {
                        tracing::warn!(stream, version = recorded.version, error = %e, "event skipped: cannot decode")
                    }
                }
                loaded.version = Some(recorded.version);
            }
            if done {
                return Ok(());
            }
        }
    }
}

/// Applies events this service just appended (ending at `last_version`/`last_position`) to the
/// cached state, as a catch-up would. Every event of the append is given the append's last
/// position: positions need not be contiguous, and a later position only makes read-your-writes
/// wait for the whole append, which it must anyway.
fn apply_own<A: Aggregate>(
    stream: &str,
    loaded: &mut Loaded<A>,
    events: &[DomainEvent],
    new_events: &[events_schema::NewEvent],
    last_version: u64,
    last_position: events_schema::Position,
) {
    let first_version = last_version + 1 - events.len() as u64;
    for (i, (event, new)) in events.iter().zip(new_events).enumerate() {
        let recorded = recorded_as(stream, new, first_version + i as u64, last_position);
        loaded.state.apply(event, &recorded);
    }
    loaded.version = Some(last_version);
}

/// An event this service appends (or is about to: a decision after it in the same batch sees it
/// with its version and position 0) as the store will hold it.
fn recorded_as(
    stream: &str,
    new: &events_schema::NewEvent,
    version: u64,
    position: events_schema::Position,
) -> events_schema::RecordedEvent {
    events_schema::RecordedEvent {
        event_id: new.event_id,
        stream: stream.to_owned(),
        version,
        position,
        event_type: new.event_type.clone(),
        schema_version: new.schema_version,
        occurred_at: new.occurred_at,
        actor: new.metadata.actor.clone(),
        correlation_id: new.metadata.correlation_id,
        causation_id: new.metadata.causation_id,
        payload: new.payload.clone(),
    }
}

/// The acting user of a command that needs one.
fn actor(envelope: &CommandEnvelope) -> Result<&UserId, Refusal> {
    envelope
        .actor
        .as_ref()
        .ok_or_else(|| Refusal::new(RefusalCode::Forbidden, "this needs a signed-in user"))
}

/// The ids an acknowledgement reports for the events about to be written.
fn accepted_for(events: &[DomainEvent]) -> Accepted {
    let mut accepted = Accepted::default();
    for event in events {
        match event {
            DomainEvent::MessageSent(e) => {
                accepted.chat_id = Some(e.chat_id.clone());
                accepted.message_id = Some(e.message_id.clone());
            }
            other => {
                if let Some(chat) = other.chat_id() {
                    accepted.chat_id = Some(chat.clone());
                }
            }
        }
    }
    accepted
}
