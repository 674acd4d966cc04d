//! Deciding a stream's commands and appending their events: with the version the decisions saw,
//! deciding again on a version conflict, and, for the commands that come in floods on one stream
//! (messages), many commands in one append.

use std::ops::Range;
use tracing::Instrument as _;

use events_schema::{Accepted, DomainEvent, EventMetadata, NewEvent, Position, RefusalCode};
use tokio::sync::oneshot;

use super::repository::{recorded_as, Appended, Loaded, Repository, Slot};
use crate::domain::{Aggregate, Decision, Refusal};

/// How often a decision is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 5;
/// Commands of one stream decided together and appended in one write, at most.
const MAX_BATCH: usize = 256;

/// A command waiting in a stream's queue, and where its answer goes.
pub(crate) struct Job<A: Aggregate> {
    command: A::Command,
    meta: EventMetadata,
    reply: oneshot::Sender<Result<Accepted, Refusal>>,
}

/// A command with the metadata its events will carry.
type Pending<'a, C> = (&'a C, &'a EventMetadata);

/// Decides `command` alone, holding the stream's lock; see [`decide_batch`].
pub(crate) async fn execute<A: Aggregate>(
    repository: &Repository<A>,
    stream: &str,
    command: &A::Command,
    meta: &EventMetadata,
) -> Result<Accepted, Refusal> {
    let slot = repository.slot(stream);
    let mut loaded = slot.loaded.lock().await;
    decide_batch(repository, stream, &mut loaded, &[(command, meta)])
        .await
        .pop()
        .unwrap_or_else(|| Err(Refusal::new(RefusalCode::Internal, "no decision was made")))
}

/// Like [`execute`], for the commands that come in floods on one stream: the command joins the
/// stream's queue; whoever holds the stream's lock next decides every queued command in order,
/// each on the state the ones before it leave, and appends all their events in one write. A busy
/// chat then costs one append per batch instead of one per message, while each command still gets
/// its own answer (a refusal refuses only its own command).
pub(crate) async fn execute_queued<A: Aggregate>(
    repository: &Repository<A>,
    stream: &str,
    command: A::Command,
    meta: EventMetadata,
) -> Result<Accepted, Refusal> {
    let slot = repository.slot(stream);
    let (reply, mut answer) = oneshot::channel();
    if let Ok(mut queue) = slot.queue.lock() {
        queue.push(Job {
            command,
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
        let jobs = next_batch(&slot).ok_or_else(lost)?;
        let pending: Vec<Pending<'_, A::Command>> =
            jobs.iter().map(|job| (&job.command, &job.meta)).collect();
        let results = decide_batch(repository, stream, &mut loaded, &pending).await;
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// Up to [`MAX_BATCH`] queued jobs, oldest first; none if the queue is empty or unusable.
fn next_batch<A: Aggregate>(slot: &Slot<A>) -> Option<Vec<Job<A>>> {
    let mut queue = slot.queue.lock().ok()?;
    let n = queue.len().min(MAX_BATCH);
    let jobs: Vec<Job<A>> = queue.drain(..n).collect();
    (!jobs.is_empty()).then_some(jobs)
}

/// Decides `jobs` in order, each on the state the ones before it leave, and appends their events
/// in one write; one answer per job.
///
/// A stream's state is read from the store once; afterwards commands are decided on the cached
/// state and the events appended here are applied to it directly. If another writer moved the
/// stream on, the append fails its expected-version check, the state is caught up and the whole
/// batch decided again; a refusal or a "nothing to do" decided on the cached state alone is
/// re-checked after catching up, so no stale state refuses a command or skips a write.
async fn decide_batch<A: Aggregate>(
    repository: &Repository<A>,
    stream: &str,
    loaded: &mut Loaded<A>,
    jobs: &[Pending<'_, A::Command>],
) -> Vec<Result<Accepted, Refusal>> {
    match attempt(repository, stream, loaded, jobs).await {
        Ok(answers) => answers,
        Err(refusal) => vec![Err(refusal); jobs.len()],
    }
}

/// [`decide_batch`]'s attempts; a refusal here answers every job.
async fn attempt<A: Aggregate>(
    repository: &Repository<A>,
    stream: &str,
    loaded: &mut Loaded<A>,
    jobs: &[Pending<'_, A::Command>],
) -> Result<Vec<Result<Accepted, Refusal>>, Refusal> {
    let mut fresh = repository.sync(stream, loaded).await?;
    for _ in 0..MAX_ATTEMPTS {
        let decided = {
            let _span = tracing::info_span!("decide", stream, commands = jobs.len()).entered();
            Draft::decide(stream, loaded, jobs, fresh)
        };
        let Some(draft) = decided else {
            repository.catch_up(stream, loaded).await?;
            fresh = true;
            continue;
        };
        if draft.events.is_empty() {
            return Ok(draft.answers(None));
        }
        let appended = repository
            .append(stream, loaded, &draft.events, &draft.new_events)
            .instrument(tracing::info_span!(
                "append",
                stream,
                events = draft.new_events.len()
            ))
            .await?;
        match appended {
            Appended::Stored(position) => return Ok(draft.answers(Some(position))),
            Appended::Raced => {
                tracing::debug!(stream, "another writer appended first; deciding again");
                repository.catch_up(stream, loaded).await?;
                fresh = true;
            }
        }
    }
    Err(Refusal::new(
        RefusalCode::Conflict,
        "too many concurrent changes; try again",
    ))
}

/// What one job's decision comes to in a batch.
enum Outcome {
    /// Answered without writing (a refusal, or already done).
    Done(Result<Accepted, Refusal>),
    /// Its events are `events[range]` of the batch's append.
    Append(Range<usize>, Accepted),
}

/// A batch decided, before its append.
#[derive(Default)]
struct Draft {
    events: Vec<DomainEvent>,
    /// `events` as they will be stored, with their ids, times and metadata.
    new_events: Vec<NewEvent>,
    outcomes: Vec<Outcome>,
}

impl Draft {
    /// Decides `jobs` in order; `None` when one was refused or found already done on a state that
    /// may be stale (`fresh` is false), to be decided again once caught up.
    fn decide<A: Aggregate>(
        stream: &str,
        loaded: &Loaded<A>,
        jobs: &[Pending<'_, A::Command>],
        fresh: bool,
    ) -> Option<Self> {
        let mut draft = Draft::default();
        // Later jobs decide on a copy holding the earlier jobs' events, so that a failed append
        // leaves the cached state as it was. The copy is made only when a later job needs it: a
        // batch of one (most commands) costs no clone of the state, which for a large group holds
        // every member.
        let mut scratch: Option<A> = None;
        let mut version = loaded.version;
        for (i, (command, meta)) in jobs.iter().enumerate() {
            match scratch.as_ref().unwrap_or(&loaded.state).decide(command) {
                Err(_) | Ok(Decision::AlreadyDone(_)) if !fresh => return None,
                Err(refusal) => draft.outcomes.push(Outcome::Done(Err(refusal))),
                Ok(Decision::AlreadyDone(accepted)) => {
                    draft.outcomes.push(Outcome::Done(Ok(accepted)))
                }
                Ok(Decision::Append(events)) => {
                    let later = (i + 1 < jobs.len())
                        .then(|| scratch.get_or_insert_with(|| loaded.state.clone()));
                    draft.push(stream, events, meta, &mut version, later);
                }
            }
        }
        Some(draft)
    }

    /// Adds one job's events after `version` (the provisional version of the batch so far), and
    /// applies them to `scratch` for the jobs after it.
    fn push<A: Aggregate>(
        &mut self,
        stream: &str,
        events: Vec<DomainEvent>,
        meta: &EventMetadata,
        version: &mut Option<u64>,
        mut scratch: Option<&mut A>,
    ) {
        let start = self.events.len();
        for event in &events {
            let new = event.clone().into_new_event(meta.clone());
            let v = version.map_or(0, |v| v + 1);
            if let Some(state) = scratch.as_deref_mut() {
                // Provisional version and position 0: the store has not placed it yet.
                state.apply(event, &recorded_as(stream, &new, v, 0));
            }
            *version = Some(v);
            self.new_events.push(new);
        }
        let accepted = accepted_for(&events);
        self.events.extend(events);
        self.outcomes
            .push(Outcome::Append(start..self.events.len(), accepted));
    }

    /// One answer per job, once the batch's events are stored at `position` (none if there were
    /// none to store).
    fn answers(self, position: Option<Position>) -> Vec<Result<Accepted, Refusal>> {
        let new_events = self.new_events;
        self.outcomes
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
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use events_schema::events::{MessageFormat, MessageSent, SelfChatCreated};
    use events_schema::{ChatId, ClientId, Content, MessageId, UserId};

    use super::*;
    use crate::domain::self_chat::{SelfChat, SelfChatCommand};

    fn me() -> UserId {
        UserId::parse("u1").unwrap()
    }

    fn created() -> Loaded<SelfChat> {
        let mut state = SelfChat::default();
        let event: DomainEvent = SelfChatCreated {
            chat_id: ChatId::self_chat_of(&me()),
            owner: me(),
        }
        .into();
        let new = event.clone().into_new_event(meta());
        state.apply(&event, &recorded_as("chat-u1", &new, 0, 1));
        Loaded {
            state,
            version: Some(0),
            synced: true,
        }
    }

    fn meta() -> EventMetadata {
        EventMetadata {
            actor: Some("u1".into()),
            correlation_id: uuid::Uuid::nil(),
            causation_id: None,
            trace_parent: None,
        }
    }

    fn send(sender: &UserId, client_id: Option<&str>, id: &str) -> SelfChatCommand {
        SelfChatCommand::Send {
            sender: sender.clone(),
            content: Content::parse("hi").unwrap(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            message_id: MessageId::parse(id).unwrap(),
            attachments: Vec::new(),
        }
    }

    fn sent(id: &str, client_id: Option<&str>) -> DomainEvent {
        MessageSent {
            chat_id: ChatId::self_chat_of(&me()),
            message_id: MessageId::parse(id).unwrap(),
            sender_id: me(),
            content: Content::parse("hi").unwrap(),
            format: MessageFormat::Text,
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            reply_to: None,
            attachments: Vec::new(),
        }
        .into()
    }

    #[test]
    fn each_job_is_decided_on_what_the_ones_before_it_leave() {
        let loaded = created();
        let before = loaded.state.clone();
        let (meta, stranger) = (meta(), UserId::parse("u2").unwrap());
        let commands = [
            send(&me(), Some("k1"), "m1"),
            send(&stranger, None, "m2"),
            send(&me(), Some("k1"), "m3"),
            send(&me(), None, "m4"),
        ];
        let jobs: Vec<Pending<'_, SelfChatCommand>> = commands.iter().map(|c| (c, &meta)).collect();
        let draft = Draft::decide("chat-u1", &loaded, &jobs, true).expect("decided");
        assert_eq!(draft.events, [sent("m1", Some("k1")), sent("m4", None)]);
        assert_eq!(draft.new_events.len(), 2);
        assert_eq!(
            loaded.state, before,
            "the cached state waits for the append"
        );
        let first_at = draft.new_events[0].occurred_at;
        let last_at = draft.new_events[1].occurred_at;
        let answers = draft.answers(Some(9));
        let chat_id = Some(ChatId::self_chat_of(&me()));
        let first = Accepted {
            position: 9,
            chat_id: chat_id.clone(),
            message_id: Some(MessageId::parse("m1").unwrap()),
            occurred_at: Some(first_at),
        };
        assert_eq!(answers[0], Ok(first.clone()));
        assert_eq!(
            answers[1].as_ref().map_err(|r| r.code),
            Err(RefusalCode::Forbidden)
        );
        assert_eq!(
            answers[2],
            Ok(first),
            "a repeat in the batch answers the first send"
        );
        assert_eq!(
            answers[3],
            Ok(Accepted {
                position: 9,
                chat_id,
                message_id: Some(MessageId::parse("m4").unwrap()),
                occurred_at: Some(last_at),
            })
        );
    }

    #[test]
    fn a_refusal_or_a_repeat_on_a_state_that_may_be_stale_is_decided_again() {
        let loaded = created();
        let meta = meta();
        let stranger = send(&UserId::parse("u2").unwrap(), None, "m1");
        assert!(Draft::decide("chat-u1", &loaded, &[(&stranger, &meta)], false).is_none());
        let fresh = Draft::decide("chat-u1", &loaded, &[(&stranger, &meta)], true);
        assert!(fresh.is_some_and(|draft| draft.events.is_empty()));
        let new = send(&me(), None, "m1");
        let stale = Draft::decide("chat-u1", &loaded, &[(&new, &meta)], false);
        assert!(stale.is_some_and(|draft| draft.events == [sent("m1", None)]));
    }
}
