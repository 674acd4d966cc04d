//! Who gets an event, the `Seq` each delivery carries, and where deliveries go: to this node's
//! sockets, or into one user's catch-up (`sync`), which renders past events with the same code.

use events_schema::{ChatId, Position, UserId};
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::socket::Sid;

use super::memo::Member;
use crate::socket::{outbound, user_room};
use crate::state::AppState;

/// How many deliveries one event may make; `Seq` is `position × SEQ_PER_EVENT + n` for the event's
/// n-th delivery, so it grows in log order and, within an event, in the order they are made.
pub const SEQ_PER_EVENT: u64 = 8;

/// The `Seq` of the last delivery any event up to `position` can make.
pub fn last_seq_of(position: Position) -> u64 {
    position
        .saturating_mul(SEQ_PER_EVENT)
        .saturating_add(SEQ_PER_EVENT - 1)
}

/// The log position of the event that made the delivery `seq`.
pub fn position_of(seq: u64) -> Position {
    seq / SEQ_PER_EVENT
}

/// Who gets an event: every socket of `users`, except the requesting socket.
pub(super) struct Audience {
    users: Vec<UserId>,
    except: Option<Sid>,
}

impl Audience {
    pub(super) fn users(users: impl IntoIterator<Item = UserId>) -> Self {
        Self {
            users: users.into_iter().collect(),
            except: None,
        }
    }

    pub(super) fn but_origin(mut self, origin: Option<Sid>) -> Self {
        self.except = origin;
        self
    }
}

/// One delivery a catch-up returns: what the user's sockets got, byte for byte.
pub struct Caught {
    pub event: &'static str,
    pub data: Box<RawValue>,
    pub seq: u64,
    /// For a `receipt`: whose pointers in which chat (a catch-up keeps the last of each).
    pub receipt_of: Option<(ChatId, UserId)>,
}

/// Where one event's deliveries go.
pub enum Out<'a> {
    /// This node's sockets.
    Sockets,
    /// The deliveries addressed to `user`, for a catch-up.
    Collect {
        user: &'a UserId,
        caught: &'a mut Vec<Caught>,
    },
}

/// The deliveries of the event at `position`: each takes the next `Seq`.
pub struct Delivery<'a> {
    position: Position,
    made: u64,
    out: Out<'a>,
}

impl<'a> Delivery<'a> {
    pub fn new(position: Position, out: Out<'a>) -> Self {
        Self {
            position,
            made: 0,
            out,
        }
    }

    pub(super) fn position(&self) -> Position {
        self.position
    }

    pub(super) fn is_live(&self) -> bool {
        matches!(self.out, Out::Sockets)
    }

    /// The `Seq` of the next delivery, whether or not anyone is addressed by it (so the numbering
    /// is the same on every node and in a catch-up).
    pub(super) fn next_seq(&mut self) -> u64 {
        let n = self.made.min(SEQ_PER_EVENT - 1);
        self.made += 1;
        if self.made > SEQ_PER_EVENT {
            tracing::error!(
                position = self.position,
                "an event made more deliveries than Seq numbers it has"
            );
        }
        self.position
            .saturating_mul(SEQ_PER_EVENT)
            .saturating_add(n)
    }
}

/// A delivery's payload with its `Seq`.
#[derive(Serialize)]
struct WithSeq<'a, T: ?Sized> {
    #[serde(flatten)]
    payload: &'a T,
    #[serde(rename = "Seq")]
    seq: String,
}

/// Emits `event` with `payload` (a `crate::wire` struct) and the next `Seq` to every socket of the
/// audience, or keeps it for a catch-up when it is addressed to the catch-up's user.
pub(super) fn emit<T: Serialize>(
    state: &AppState,
    delivery: &mut Delivery<'_>,
    audience: Audience,
    event: &'static str,
    payload: &T,
) {
    let seq = delivery.next_seq();
    emit_as(
        state,
        &mut delivery.out,
        seq,
        audience,
        event,
        payload,
        None,
    );
}

/// [`emit`] of a `receipt` whose `Seq` was taken with [`Delivery::next_seq`].
pub(super) fn emit_receipt<T: Serialize>(
    state: &AppState,
    delivery: &mut Delivery<'_>,
    seq: u64,
    audience: Audience,
    payload: &T,
    receipt_of: (ChatId, UserId),
) {
    let out = &mut delivery.out;
    emit_as(
        state,
        out,
        seq,
        audience,
        "receipt",
        payload,
        Some(receipt_of),
    );
}

/// [`emit`] with a `Seq` taken earlier, for a delivery that was held back (a coalesced receipt).
#[allow(clippy::too_many_arguments)]
pub(super) fn emit_as<T: Serialize>(
    state: &AppState,
    out: &mut Out<'_>,
    seq: u64,
    audience: Audience,
    event: &'static str,
    payload: &T,
    receipt_of: Option<(ChatId, UserId)>,
) {
    if audience.users.is_empty() {
        return;
    }
    let with_seq = WithSeq {
        payload,
        seq: seq.to_string(),
    };
    match out {
        Out::Collect { user, caught } => {
            if !audience.users.contains(user) {
                return;
            }
            if let Some(data) = outbound::encode(&with_seq) {
                caught.push(Caught {
                    event,
                    data,
                    seq,
                    receipt_of,
                });
            }
        }
        Out::Sockets => {
            let Some(io) = state.io() else { return };
            let rooms: Vec<String> = audience.users.iter().map(user_room).collect();
            // One socket at a time rather than one broadcast, so that a socket whose buffer is
            // full is known and disconnected (outbound.rs); the payload is serialized once. The
            // origin is skipped here rather than through a room of its own, which every socket
            // would have to keep.
            let Some(payload) = outbound::encode(&with_seq) else {
                return;
            };
            let mut sent = 0;
            for socket in io.to(rooms).sockets() {
                if Some(socket.id) != audience.except {
                    outbound::emit(&socket, event, &payload);
                    sent += 1;
                }
            }
            metrics::counter!(infra::telemetry::names::DELIVERIES, "event" => event)
                .increment(sent);
        }
    }
}

/// The members but one.
pub(super) fn others(members: &[Member], but: &UserId) -> Vec<UserId> {
    members
        .iter()
        .filter(|m| &m.id != but)
        .map(|m| m.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_grows_with_the_log_and_within_an_event() {
        let mut first = Delivery::new(7, Out::Sockets);
        let a = first.next_seq();
        let b = first.next_seq();
        let mut later = Delivery::new(8, Out::Sockets);
        let c = later.next_seq();
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(position_of(a), 7);
        assert_eq!(position_of(b), 7);
        assert!(b <= last_seq_of(7) && last_seq_of(7) < c);
    }

    #[test]
    fn more_deliveries_than_numbers_keep_the_last_number() {
        let mut d = Delivery::new(3, Out::Sockets);
        let seqs: Vec<u64> = (0..SEQ_PER_EVENT + 2).map(|_| d.next_seq()).collect();
        assert_eq!(seqs.last(), Some(&last_seq_of(3)));
        assert!(seqs.iter().all(|s| position_of(*s) == 3));
    }
}
