//! Events from JetStream: what the relay published to `<PREFIX>_EVENTS`, read back in log order.
//!
//! - [`DurableFeed`] is a projection's durable pull consumer. The projection's checkpoint (stored
//!   with its read models, in the same transaction) is the truth of where it is: every time the
//!   feed is opened, the durable consumer is re-pointed at the first stream message after that
//!   checkpoint, and the projection acknowledges a batch only after committing it. A message that
//!   arrives out of stream order (a lost delivery being redelivered later) ends the feed with an
//!   error, so the projection reopens it from its checkpoint instead of skipping an event.
//! - [`live_events`] is a gateway's ordered consumer from "now": the events to deliver to sockets.
//!   The client library recreates it after a gap or a reconnect, from the last message seen.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use events_schema::{Position, RecordedEvent};
use futures::stream::BoxStream;
use futures::{FutureExt as _, StreamExt as _};

use crate::relay::{ensure_events_stream, events_stream, stream_state, POSITION_HEADER};

/// How long JetStream waits for an acknowledgement before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// A pull request's heartbeat: a dead connection is noticed within two of them.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The name of projection `projection`'s durable consumer (names allow no `.`).
pub fn durable_name(prefix: &str, projection: &str) -> String {
    format!("{}_{projection}", events_stream(prefix))
}

/// The position a message carries in its header.
fn position_of(headers: Option<&async_nats::HeaderMap>) -> Option<Position> {
    headers?.get(POSITION_HEADER)?.as_str().parse().ok()
}

/// The first stream sequence whose event lies after `after` (one past the end when none does),
/// found by bisection: the relay publishes in log order, so positions grow with the sequence.
async fn first_sequence_after(stream: &mut stream::Stream, after: Position) -> anyhow::Result<u64> {
    let state = stream_state(stream).await?;
    let (mut low, mut high) = (state.first_sequence.max(1), state.last_sequence + 1);
    if state.messages == 0 || after == 0 {
        return Ok(low.min(high));
    }
    while low < high {
        let middle = low + (high - low) / 2;
        let message = stream
            .get_raw_message(middle)
            .await
            .with_context(|| format!("JetStream message {middle}"))?;
        let position = position_of(Some(&message.headers))
            .with_context(|| format!("JetStream message {middle} has no position header"))?;
        if position > after {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Ok(low)
}

/// A batch of events taken from a [`DurableFeed`]; acknowledge it once it is committed.
pub struct Batch {
    pub events: Vec<RecordedEvent>,
    last: Option<jetstream::Message>,
}

impl Batch {
    /// Acknowledges every message of the batch (and before it: the consumer acknowledges "all").
    pub async fn ack(self) -> anyhow::Result<()> {
        if let Some(last) = self.last {
            last.ack()
                .await
                .map_err(|e| anyhow::anyhow!("acknowledging to JetStream: {e}"))?;
        }
        Ok(())
    }
}

/// A projection's durable consumer, positioned after its checkpoint.
pub struct DurableFeed {
    messages: consumer::pull::Stream,
    expected: u64,
}

impl DurableFeed {
    /// Creates the events stream if needed and (re)creates the durable consumer `name` so that it
    /// delivers every event after `after`.
    pub async fn open(
        js: &jetstream::Context,
        prefix: &str,
        name: &str,
        after: Position,
    ) -> anyhow::Result<Self> {
        let mut stream = ensure_events_stream(js, prefix).await?;
        let start = first_sequence_after(&mut stream, after).await?;
        // The start of a consumer cannot be changed: replace it (a missing one is fine).
        if let Err(e) = stream.delete_consumer(name).await {
            tracing::debug!(consumer = name, error = %e, "no consumer to replace");
        }
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.to_owned()),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ack_policy: consumer::AckPolicy::All,
                ack_wait: ACK_WAIT,
                max_ack_pending: 20_000,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the JetStream consumer {name}: {e}"))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(1024)
            .heartbeat(HEARTBEAT)
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("cannot pull from the JetStream consumer {name}: {e}"))?;
        tracing::info!(consumer = name, after, start, "following JetStream");
        Ok(Self {
            messages,
            expected: start,
        })
    }

    /// Waits for the next event, then takes whatever else is ready, up to `max`, in log order.
    /// An error (NATS away, a message out of order, an unreadable event) ends the feed: reopen it
    /// from the checkpoint.
    pub async fn next_batch(&mut self, max: usize) -> anyhow::Result<Batch> {
        let mut batch = Batch {
            events: Vec::new(),
            last: None,
        };
        loop {
            let next = if batch.events.is_empty() {
                Some(self.messages.next().await)
            } else {
                self.messages.next().now_or_never()
            };
            // Nothing more ready: the batch is what we have.
            let Some(next) = next else { break };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => anyhow::bail!("JetStream consumer: {e}"),
                None => anyhow::bail!("the JetStream consumer ended"),
            };
            let sequence = message
                .info()
                .map_err(|e| anyhow::anyhow!("JetStream message without metadata: {e}"))?
                .stream_sequence;
            if sequence > self.expected {
                anyhow::bail!(
                    "JetStream delivered message {sequence} while {} was expected",
                    self.expected
                );
            }
            // Below the expected one: delivered again after we took it, already in hand or applied.
            if sequence == self.expected {
                let event: RecordedEvent = serde_json::from_slice(&message.payload)
                    .with_context(|| format!("JetStream message {sequence} is not an event"))?;
                batch.events.push(event);
                self.expected += 1;
                batch.last = Some(message);
                if batch.events.len() >= max {
                    break;
                }
            }
        }
        Ok(batch)
    }
}

/// Every event published from now on, in log order, for delivery. Errors the client library
/// cannot recover from are logged and the consumer is made again from the last event seen.
pub fn live_events(js: jetstream::Context, prefix: String) -> BoxStream<'static, RecordedEvent> {
    futures::stream::unfold(
        (js, prefix, None::<consumer::pull::Ordered>, None::<u64>),
        |(js, prefix, mut messages, mut last)| async move {
            let mut pause = Duration::from_millis(100);
            loop {
                if messages.is_none() {
                    match ordered_from(&js, &prefix, last).await {
                        Ok(m) => messages = Some(m),
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "cannot follow JetStream for delivery; retrying");
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                }
                let Some(feed) = messages.as_mut() else { continue };
                match feed.next().await {
                    Some(Ok(message)) => {
                        if let Ok(info) = message.info() {
                            last = Some(info.stream_sequence);
                        }
                        match serde_json::from_slice::<RecordedEvent>(&message.payload) {
                            Ok(event) => return Some((event, (js, prefix, messages, last))),
                            Err(e) => tracing::warn!(error = %e, "not an event on the events stream; skipped"),
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "delivery feed interrupted; following again");
                        messages = None;
                    }
                    None => messages = None,
                }
            }
        },
    )
    .boxed()
}

async fn ordered_from(
    js: &jetstream::Context,
    prefix: &str,
    last: Option<u64>,
) -> anyhow::Result<consumer::pull::Ordered> {
    let stream = ensure_events_stream(js, prefix).await?;
    let deliver_policy = match last {
        Some(sequence) => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: sequence + 1,
        },
        None => consumer::DeliverPolicy::New,
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create an ordered JetStream consumer: {e}"))?;
    consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("cannot pull from JetStream: {e}"))
}

/// The core-NATS subject on which a projection announces the position it has committed, so that
/// gateways know when the read models reflect an event (deliveries and read-your-writes wait on it).
pub fn progress_subject(prefix: &str, projection: &str) -> String {
    format!("{prefix}.progress.{projection}")
}
