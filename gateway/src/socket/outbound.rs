//! Sending to sockets without losing packets silently.
//!
//! Every socket has a bounded buffer of [`SEND_BUFFER`] packets between the gateway and its
//! WebSocket writer. A socket whose buffer is full when a packet is due reads more slowly than its
//! traffic arrives (a stalled client, or one on a link too slow for its chats). Dropping the packet
//! would leave that client believing it is up to date, so such a socket is a slow consumer and is
//! disconnected instead: nothing after the packet that did not fit is queued for it, it gets
//! socket.io's DISCONNECT as soon as that fits in its buffer, its client sees `disconnect` (reason
//! "io server disconnect"), and on connecting again it gets fresh lists (docs/api.md, "Handshake").
//! A client that reads nothing at all is closed by engine.io's heartbeat, whose ping cannot be
//! queued either.

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};

/// Packets a socket may have waiting for its WebSocket writer. The buffer grows in blocks as
/// packets wait, so an idle socket costs the same whatever the bound; a client that reads promptly
/// stays far below it even when its chats burst. Every packet the gateway builds is bounded (one
/// message, or a page cut to `budget::PAGE_BYTES`), so this bounds the bytes a socket that stops
/// reading can pin: about 512 × 70 KiB in the worst case, until the heartbeat closes it.
pub const SEND_BUFFER: usize = 512;

/// How often a slow consumer's DISCONNECT is tried again while its buffer stays full.
const EVICTION_RETRY: Duration = Duration::from_millis(20);

/// Marks a socket already being disconnected as a slow consumer.
#[derive(Clone, Copy)]
struct Evicted;

/// Emits `event` to `socket`; see [`send_with`].
pub fn emit<T: ?Sized + Serialize>(socket: &SocketRef, event: &'static str, payload: &T) {
    send_with(socket, event, || socket.emit(event, payload));
}

/// Queues one packet (`send`) for `socket`, unless the socket is already being disconnected as a
/// slow consumer: once a packet did not fit, nothing after it is queued either, so the client's
/// view ends where the gap begins rather than going on past it. A full buffer disconnects the
/// socket.
pub fn send_with(socket: &SocketRef, what: &str, send: impl FnOnce() -> Result<(), SendError>) {
    if socket.extensions.get::<Evicted>().is_some() {
        tracing::debug!(sid = %socket.id, what, "not sent: the socket is being disconnected as a slow consumer");
        return;
    }
    sent(socket, what, send());
}

/// A payload serialized once, to be emitted to many sockets at the cost of a copy each.
pub fn encode<T: ?Sized + Serialize>(payload: &T) -> Option<Box<RawValue>> {
    match serde_json::value::to_raw_value(payload) {
        Ok(raw) => Some(raw),
        Err(e) => {
            tracing::error!(error = %e, "payload not serializable");
            None
        }
    }
}

/// Handles the outcome of queueing `what` for `socket`: a full buffer disconnects the socket.
fn sent(socket: &SocketRef, what: &str, result: Result<(), SendError>) {
    match result {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => evict(socket, what),
        Err(SendError::Socket(SocketError::Closed)) => {
            tracing::debug!(sid = %socket.id, what, "not sent: socket closed");
        }
        Err(e) => tracing::error!(sid = %socket.id, what, error = %e, "not sent"),
    }
}

fn evict(socket: &SocketRef, what: &str) {
    // Two sends may find the buffer full at once; one of them disconnects.
    if socket.extensions.get::<Evicted>().is_some() {
        return;
    }
    socket.extensions.insert(Evicted);
    metrics::counter!(infra::telemetry::names::SLOW_CONSUMER_DISCONNECTS).increment(1);
    tracing::warn!(
        sid = %socket.id,
        what,
        buffer = SEND_BUFFER,
        "slow consumer: send buffer full, disconnecting the socket"
    );
    let socket = socket.clone();
    tokio::spawn(async move {
        // Ends when the DISCONNECT is queued or the socket closed otherwise (the heartbeat closes a
        // socket whose ping cannot be queued).
        while socket.connected() {
            match socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => tokio::time::sleep(EVICTION_RETRY).await,
                _ => return,
            }
        }
    });
}
