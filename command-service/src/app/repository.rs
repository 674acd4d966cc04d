//! Where aggregates' states live between commands: one cached state per stream behind its own
//! lock, read from the store once and then caught up from its last version, with the events this
//! service appends applied to it directly, so an accepted command costs no read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use events_schema::{DomainEvent, NewEvent, Position, RecordedEvent, RefusalCode};
use infra::{EventStore, ExpectedVersion, StoreError};
use tokio::sync::Mutex as AsyncMutex;

use super::batcher::Job;
use crate::domain::{Aggregate, Refusal};

/// Events read per page when catching a cached state up.
const CATCH_UP_PAGE: usize = 1000;
/// Streams kept in each cache before idle ones are dropped.
const CACHE_CAPACITY: usize = 100_000;

/// An aggregate's state and the version of the last event applied to it.
pub(crate) struct Loaded<A> {
    pub state: A,
    pub version: Option<u64>,
    /// Whether the state was ever caught up from the store. After that, this service applies its
    /// own appends to it directly.
    pub synced: bool,
}

/// One stream's cached state behind its async lock, and the commands queued for it.
pub(crate) struct Slot<A: Aggregate> {
    pub loaded: AsyncMutex<Loaded<A>>,
    pub queue: Mutex<Vec<Job<A>>>,
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

/// How an append ended, short of a failing store.
pub(crate) enum Appended {
    /// Stored, ending at this position, and applied to the cached state.
    Stored(Position),
    /// Another writer moved the stream on first: nothing was stored.
    Raced,
}

/// The states of one aggregate's streams, one async lock per stream: commands on one stream take
/// turns, commands on different streams run in parallel.
pub(crate) struct Repository<A: Aggregate> {
    store: Arc<dyn EventStore>,
    streams: Mutex<HashMap<String, Arc<Slot<A>>>>,
}

impl<A: Aggregate> Repository<A> {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The cached slot of `stream`, made on first use.
    pub fn slot(&self, stream: &str) -> Arc<Slot<A>> {
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

    /// Catches up a state that was never read from the store; answers whether it did.
    pub async fn sync(&self, stream: &str, loaded: &mut Loaded<A>) -> Result<bool, Refusal> {
        if loaded.synced {
            return Ok(false);
        }
        self.catch_up(stream, loaded).await?;
        loaded.synced = true;
        Ok(true)
    }

    /// Applies the events of `stream` written since `loaded.version`.
    pub async fn catch_up(&self, stream: &str, loaded: &mut Loaded<A>) -> Result<(), Refusal> {
        loop {
            let from = loaded.version.map_or(0, |v| v + 1);
            let events = self
                .store
                .read_stream(stream, from, CATCH_UP_PAGE)
                .await
                .map_err(|e| {
                    tracing::error!(stream, error = %e, "cannot read stream");
                    unavailable()
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

    /// Appends `new_events` (the stored form of `events`, decided on `loaded`) expecting the
    /// version the decisions saw, and applies them to the cached state once stored.
    pub async fn append(
        &self,
        stream: &str,
        loaded: &mut Loaded<A>,
        events: &[DomainEvent],
        new_events: &[NewEvent],
    ) -> Result<Appended, Refusal> {
        let expected = loaded
            .version
            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match self
            .store
            .append(stream, expected, new_events.to_vec())
            .await
        {
            Ok(result) => {
                apply_own(
                    stream,
                    loaded,
                    events,
                    new_events,
                    result.version,
                    result.position,
                );
                Ok(Appended::Stored(result.position))
            }
            Err(StoreError::WrongExpectedVersion { .. }) => Ok(Appended::Raced),
            Err(e) => {
                tracing::error!(stream, error = %e, "append failed");
                // Whether the events were stored is unknown: read the stream again next time.
                loaded.synced = false;
                Err(unavailable())
            }
        }
    }
}

fn unavailable() -> Refusal {
    Refusal::new(RefusalCode::Internal, "the event store is unavailable")
}

/// Applies events this service just appended (ending at `last_version`/`last_position`) to the
/// cached state, as a catch-up would. Every event of the append is given the append's last
/// position: positions need not be contiguous, and a later position only makes read-your-writes
/// wait for the whole append, which it must anyway.
fn apply_own<A: Aggregate>(
    stream: &str,
    loaded: &mut Loaded<A>,
    events: &[DomainEvent],
    new_events: &[NewEvent],
    last_version: u64,
    last_position: Position,
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
pub(crate) fn recorded_as(
    stream: &str,
    new: &NewEvent,
    version: u64,
    position: Position,
) -> RecordedEvent {
    RecordedEvent {
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
        trace_parent: new.metadata.trace_parent.clone(),
    }
}
