//! Events from JetStream: what the relay published to `<PREFIX>_EVENTS`, read back in log order.
//!
//! - [`DurableFeed`] is a projection's durable pull consumer. The projection's checkpoint (stored
//!   with its read models, in the same transaction) is the truth of where it is: every time the
//!   feed is opened, the durable consumer is re-pointed at the first stream message after that
//!   checkpoint, and the projection acknowledges a batch only after committing it. A message that
//!   arrives out of stream order (a lost delivery being redelivered later) ends the feed with an
//!   error, so the projection reopens it from its checkpoint instead of skipping an event. A first
//!   event after the checkpoint that does not follow it ends the feed with a [`StreamGap`]: the
//!   stream no longer holds what lies between (its retention dropped it), and the projection reads
//!   that from the event store (docs/design.md, "Retention").
//! - [`Applied`] is what a projection publishes on core NATS after each commit: the events it
//!   applied, between two checkpoints. Gateways deliver from it, so that an event reaches sockets
//!   once the read models reflect it, with one NATS message per batch rather than one per event
//!   and gateway. A gateway that finds a gap between two of them (it missed one while NATS
//!   reconnected, or the projection died between its commit and the announcement) reads the
//!   missing events back from JetStream with [`events_between`], which also refuses with a
//!   [`StreamGap`] rather than return events with a hole.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use events_schema::{Position, RecordedEvent};
use futures::{FutureExt as _, StreamExt as _};
use serde::Deserialize;

use crate::relay::{ensure_events_stream, stream_state, POSITION_HEADER, PREVIOUS_HEADER};

/// How long JetStream waits for an acknowledgement before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// A pull request's heartbeat: a dead connection is noticed within two of them.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The position a message carries in its header.
fn position_of(headers: Option<&async_nats::HeaderMap>) -> Option<Position> {
    headers?.get(POSITION_HEADER)?.as_str().parse().ok()
}

/// The position of the event before a message's, when it carries it (relays of this version do).
fn previous_of(headers: Option<&async_nats::HeaderMap>) -> Option<Position> {
    headers?.get(PREVIOUS_HEADER)?.as_str().parse().ok()
}

/// The JetStream stream no longer holds the events after `after` up to and including `upto`: its
/// retention (`NATS_STREAM_MAX_EVENTS`) dropped them, or it was purged or replaced. They are still
/// in the event store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamGap {
    pub after: Position,
    pub upto: Position,
}

impl std::fmt::Display for StreamGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the events after position {} up to {} are no longer on the JetStream stream \
             (its retention dropped them, or it was purged or replaced)",
            self.after, self.upto
        )
    }
}

impl std::error::Error for StreamGap {}

/// Whether an event follows position `follows` with nothing missing between: the position of the
/// event before it, which the relay puts in a header, must be `follows` (a message without the
/// header, from an older relay, is taken on trust).
fn check_follows(
    follows: Position,
    headers: Option<&async_nats::HeaderMap>,
) -> Result<(), StreamGap> {
    match previous_of(headers) {
        Some(previous) if previous != follows => Err(StreamGap {
            after: follows,
            upto: previous,
        }),
        _ => Ok(()),
    }
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
    /// Each event as JetStream carried it (its JSON), to pass on without encoding it again.
    pub raw: Vec<Bytes>,
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
    /// Events the consumer has yet to deliver (its `projector` label is the consumer's name).
    lag: metrics::Gauge,
    expected: u64,
    /// The position the next event must follow: the checkpoint, then each event taken.
    follows: Position,
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
            lag: metrics::gauge!(
                crate::telemetry::names::PROJECTION_LAG_EVENTS,
                "projector" => name.to_owned()
            ),
            expected: start,
            follows: after,
        })
    }

    /// Waits for the next event, then takes whatever else is ready, up to `max`, in log order.
    /// An error (NATS away, a message out of order, an unreadable event) ends the feed: reopen it
    /// from the checkpoint.
    pub async fn next_batch(&mut self, max: usize) -> anyhow::Result<Batch> {
        let mut batch = Batch {
            events: Vec::new(),
            raw: Vec::new(),
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
            let info = message
                .info()
                .map_err(|e| anyhow::anyhow!("JetStream message without metadata: {e}"))?;
            let sequence = info.stream_sequence;
            self.lag.set(info.pending as f64);
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
                // An event at or before the checkpoint changes nothing (the relay may be
                // publishing the log again from its start); the first one after it must follow it.
                if event.position > self.follows {
                    check_follows(self.follows, message.headers.as_ref())?;
                    self.follows = event.position;
                }
                batch.events.push(event);
                batch.raw.push(message.payload.clone());
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

/// An ordered consumer of the stream from sequence `start` on.
async fn ordered_from(
    stream: &stream::Stream,
    start: u64,
) -> anyhow::Result<consumer::pull::Ordered> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create an ordered JetStream consumer: {e}"))?;
    consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("cannot pull from JetStream: {e}"))
}

/// What a projection committed: the events after checkpoint `after` up to checkpoint `position`,
/// in log order. With no events it only announces the checkpoint (as at the projection's start).
#[derive(Debug, Deserialize)]
pub struct Applied {
    pub after: Position,
    pub position: Position,
    pub events: Vec<RecordedEvent>,
}

/// Encodes a committed batch as [`Applied`] messages of at most `max_payload` bytes each (one
/// event more than that still travels alone), in order and each continuing the one before:
/// `events` are the events' JSON as JetStream carried them, `positions` their positions.
pub fn applied_messages(
    after: Position,
    position: Position,
    events: &[Bytes],
    positions: &[Position],
    max_payload: usize,
) -> Vec<Bytes> {
    fn encode(after: Position, position: Position, events: &[Bytes]) -> Bytes {
        let mut body =
            format!(r#"{{"after":{after},"position":{position},"events":["#).into_bytes();
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(event);
        }
        body.extend_from_slice(b"]}");
        body.into()
    }
    // The envelope's own bytes: two positions of up to 20 digits and the field names.
    const ENVELOPE: usize = 80;
    let mut messages = Vec::new();
    let (mut from, mut size, mut chunk_after) = (0, ENVELOPE, after);
    for (i, event) in events.iter().enumerate() {
        if i > from && size + event.len() + 1 > max_payload {
            let last = positions[i - 1];
            messages.push(encode(chunk_after, last, &events[from..i]));
            (from, size, chunk_after) = (i, ENVELOPE, last);
        }
        size += event.len() + 1;
    }
    messages.push(encode(chunk_after, position, &events[from..]));
    messages
}

/// The events after `after` up to and including `upto`, read back from the JetStream stream (what
/// a gateway missed of the [`Applied`] announcements). Fails when they are not all there within
/// `wait`, and with a [`StreamGap`] when the stream no longer holds the first of them.
pub async fn events_between(
    js: &jetstream::Context,
    prefix: &str,
    after: Position,
    upto: Position,
    wait: Duration,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let mut events = Vec::new();
    if upto <= after {
        return Ok(events);
    }
    let mut stream = ensure_events_stream(js, prefix).await?;
    let start = first_sequence_after(&mut stream, after).await?;
    let mut messages = ordered_from(&stream, start).await?;
    let read = async {
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("JetStream: {e}"))?;
            let event: RecordedEvent = serde_json::from_slice(&message.payload)
                .context("not an event on the events stream")?;
            let position = event.position;
            if position > after && events.is_empty() {
                check_follows(after, message.headers.as_ref())?;
            }
            if position > after && position <= upto {
                events.push(event);
            }
            if position >= upto {
                return Ok(());
            }
        }
        anyhow::bail!("the JetStream consumer ended")
    };
    tokio::time::timeout(wait, read).await.map_err(|_| {
        anyhow::anyhow!("events {after}..={upto} not read from JetStream in time")
    })??;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: Position, size: usize) -> (Bytes, Position) {
        let body = format!(r#"{{"position":{position},"pad":"{}"}}"#, "x".repeat(size));
        (Bytes::from(body), position)
    }

    fn decode(message: &Bytes) -> serde_json::Value {
        serde_json::from_slice(message).expect("an Applied message is JSON")
    }

    #[test]
    fn a_small_batch_is_one_message_with_every_event() {
        let (raw, positions): (Vec<_>, Vec<_>) = (11..=13).map(|p| event(p, 10)).unzip();
        let messages = applied_messages(10, 13, &raw, &positions, 1 << 20);
        assert_eq!(messages.len(), 1);
        let m = decode(&messages[0]);
        assert_eq!(
            (m["after"].as_u64(), m["position"].as_u64()),
            (Some(10), Some(13))
        );
        let got: Vec<_> = m["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(got, vec![11, 12, 13]);
    }

    #[test]
    fn a_large_batch_is_split_into_messages_that_continue_each_other() {
        let (raw, positions): (Vec<_>, Vec<_>) = (1..=40).map(|p| event(p, 300)).unzip();
        let limit = 2_000;
        let messages = applied_messages(0, 40, &raw, &positions, limit);
        assert!(messages.len() > 1);
        let mut after = 0;
        let mut seen = Vec::new();
        for message in &messages {
            assert!(message.len() <= limit, "{} bytes", message.len());
            let m = decode(message);
            assert_eq!(m["after"].as_u64(), Some(after));
            for e in m["events"].as_array().unwrap() {
                seen.push(e["position"].as_u64().unwrap());
            }
            after = m["position"].as_u64().unwrap();
            assert_eq!(Some(&after), seen.last(), "each ends at its last event");
        }
        assert_eq!(after, 40);
        assert_eq!(seen, (1..=40).collect::<Vec<_>>());
    }

    #[test]
    fn an_announcement_without_events_carries_the_checkpoint() {
        let messages = applied_messages(7, 7, &[], &[], 1 << 20);
        assert_eq!(messages.len(), 1);
        let m = decode(&messages[0]);
        assert_eq!(
            (m["after"].as_u64(), m["position"].as_u64()),
            (Some(7), Some(7))
        );
        assert_eq!(m["events"].as_array().map(Vec::len), Some(0));
    }
}
