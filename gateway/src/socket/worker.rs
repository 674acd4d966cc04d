//! The per-socket serial queue: a socket's requests are handled one at a time, in the order they
//! arrived, by one worker per socket. A client that sends A then B sees A stored before B, and one
//! socket cannot occupy more than one request's worth of the server at a time. The worker is a
//! task only while there is work: an idle socket costs what it holds, once.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use socketioxide::extract::SocketRef;

use super::budget;
use super::handler::{Answer, Ctx};
use super::outbound;
use super::reply::{Failure, Reply};
use super::rooms::SocketUser;
use crate::limits::SocketSlot;
use crate::state::AppState;

/// No request may hang: past this, the client gets an `internal` failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests of one socket waiting for its worker; past this many, new ones are refused.
const QUEUE_DEPTH: usize = 256;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A socket's waiting requests, run one at a time in arrival order by a worker that exists only
/// while there is work: the first job queued while none runs asks its caller to start one, and
/// the worker stops when it finds the queue empty.
struct Serial<T> {
    queue: Mutex<Queue<T>>,
}

struct Queue<T> {
    /// Each job with what it holds (see [`budget::approx_heap`]).
    jobs: VecDeque<(T, usize)>,
    /// What the waiting jobs hold, together.
    bytes: usize,
    /// A worker is running and will take every job queued before it finds the queue empty.
    working: bool,
    /// The greeting failed: the session is over and nothing more is queued.
    closed: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Too many requests, or too many bytes of them, wait already.
    Full,
    /// This one request alone is larger than a socket's whole queue may hold.
    TooLarge,
    Closed,
}

impl<T> Serial<T> {
    /// A queue whose first worker (the greeting's) is already running.
    fn working() -> Self {
        Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                bytes: 0,
                working: true,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        // No job runs under the lock, so a poisoned lock still holds a consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether one more job holding `bytes` may be queued.
    fn admit(&self, bytes: usize) -> Result<(), Refusal> {
        let queue = self.lock();
        if queue.closed {
            Err(Refusal::Closed)
        } else if bytes > budget::QUEUE_BYTES {
            Err(Refusal::TooLarge)
        } else if queue.jobs.len() >= QUEUE_DEPTH || queue.bytes + bytes > budget::QUEUE_BYTES {
            Err(Refusal::Full)
        } else {
            Ok(())
        }
    }

    /// Queues `job`, which holds `bytes`; `true` when no worker runs, so the caller must start one.
    fn push(&self, job: T, bytes: usize) -> bool {
        let mut queue = self.lock();
        if queue.closed {
            return false;
        }
        queue.jobs.push_back((job, bytes));
        queue.bytes += bytes;
        !std::mem::replace(&mut queue.working, true)
    }

    /// The worker's next job; `None` ends the worker.
    fn next(&self) -> Option<T> {
        let mut queue = self.lock();
        match queue.jobs.pop_front() {
            Some((job, bytes)) => {
                queue.bytes -= bytes;
                Some(job)
            }
            None => {
                queue.working = false;
                // Give back what a burst grew.
                queue.jobs = VecDeque::new();
                None
            }
        }
    }

    /// Ends the queue: what waits is dropped, nothing more is taken.
    fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.working = false;
        queue.jobs = VecDeque::new();
        queue.bytes = 0;
    }
}

/// What a socket keeps while idle. The state is not among it: socketioxide hands it to every
/// request, and a copy per socket would be a few hundred bytes of every idle socket.
pub struct Worker {
    queue: Serial<Job>,
    user: SocketUser,
    /// The socket's place in the per-user and per-address counts, given back with the socket.
    _slot: SocketSlot,
}

impl Worker {
    /// The worker of a socket whose greeting is running: requests wait for it.
    pub fn new(user: SocketUser, slot: SocketSlot) -> Self {
        Self {
            queue: Serial::working(),
            user,
            _slot: slot,
        }
    }

    /// Runs `first` (the greeting), then the requests queued meanwhile; when `first` answers
    /// `false`, nothing is ever run.
    pub async fn start(self: Arc<Self>, first: Pin<Box<dyn Future<Output = bool> + Send>>) {
        if first.await {
            self.work().await;
        } else {
            // The session ended during the handshake: nothing this socket sent is acted on.
            self.queue.close();
        }
    }

    /// Runs queued jobs in order until the queue is empty.
    async fn work(self: Arc<Self>) {
        while let Some(job) = self.queue.next() {
            job.await;
        }
    }

    /// Queues `handler` for `event`, answering it exactly once (ack or `request-failed`); a full
    /// queue is answered `rate_limited` at once.
    pub fn enqueue<F, Fut>(
        self: &Arc<Self>,
        state: AppState,
        socket: &SocketRef,
        event: &'static str,
        handler: F,
        payload: Value,
        reply: Reply,
    ) where
        F: FnOnce(Ctx, Value) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Answer, Failure>> + Send + 'static,
    {
        let arrived = Instant::now();
        let bytes = budget::approx_heap(&payload);
        match self.queue.admit(bytes) {
            Ok(()) => {}
            Err(Refusal::Closed) => {
                tracing::debug!(event, "a request after the session ended: ignored");
                return;
            }
            Err(Refusal::Full) => {
                tracing::debug!(event, bytes, "the socket's request queue is full: refused");
                let failure = Failure::rate_limited();
                answered(event, failure.code, arrived);
                reply.fail(event, &failure);
                return;
            }
            Err(Refusal::TooLarge) => {
                tracing::debug!(
                    event,
                    bytes,
                    "a request payload too large to queue: refused"
                );
                let failure = Failure::bad_request("the payload is too large");
                answered(event, failure.code, arrived);
                reply.fail(event, &failure);
                return;
            }
        }
        let Some(taken) = state.requests.take() else {
            tracing::debug!(event, "a request while the gateway is stopping: refused");
            let failure = Failure::stopping();
            answered(event, failure.code, arrived);
            reply.fail(event, &failure);
            return;
        };
        let ctx = Ctx {
            state,
            user: self.user.clone(),
            socket: socket.clone(),
        };
        let socket = socket.clone();
        // From the moment it is queued: the wait for the socket's earlier requests counts.
        let span = tracing::info_span!("socket request", event, outcome = tracing::field::Empty);
        let job = async move {
            // Given back once answered (or if the job is dropped with its socket).
            let _taken = taken;
            let result = tokio::time::timeout(REQUEST_TIMEOUT, handler(ctx, payload))
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!(event, "request timed out");
                    Err(Failure::internal())
                });
            let outcome = result.as_ref().map_or_else(|f| f.code, |_| "ok");
            tracing::Span::current().record("outcome", outcome);
            match result {
                Ok(answer) => {
                    answered(event, "ok", arrived);
                    if let Some((name, payload)) = &answer.emit {
                        outbound::emit(&socket, name, payload);
                    }
                    reply.ok(answer.ack);
                }
                Err(failure) => {
                    answered(event, failure.code, arrived);
                    reply.fail(event, &failure)
                }
            }
        };
        let job: Job = Box::pin(tracing::Instrument::instrument(job, span));
        if self.queue.push(job, bytes) {
            tokio::spawn(self.clone().work());
        }
    }
}

/// Counts a request of `event` answered with `outcome` (`ok` or a refusal code), and the time
/// since it `arrived`.
fn answered(event: &'static str, outcome: &'static str, arrived: Instant) {
    use infra::telemetry::names;
    metrics::counter!(names::SOCKET_REQUESTS, "event" => event, "outcome" => outcome).increment(1);
    metrics::histogram!(names::SOCKET_REQUEST_SECONDS, "event" => event)
        .record(arrived.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_started_only_when_none_runs_and_stops_on_an_empty_queue() {
        let serial = Serial::working();
        // The greeting's worker runs: requests queue behind it.
        assert!(!serial.push(1, 1));
        assert!(!serial.push(2, 1));
        assert_eq!(serial.next(), Some(1));
        assert_eq!(serial.next(), Some(2));
        assert_eq!(serial.next(), None);
        // That worker has stopped: the next request starts one, and only one.
        assert!(serial.push(3, 1));
        assert!(!serial.push(4, 1));
        assert_eq!(serial.next(), Some(3));
        assert_eq!(serial.next(), Some(4));
        assert_eq!(serial.next(), None);
        assert!(serial.push(5, 1));
    }

    #[test]
    fn past_the_depth_requests_are_refused_until_one_is_taken() {
        let serial = Serial::working();
        for i in 0..QUEUE_DEPTH {
            assert_eq!(serial.admit(1), Ok(()));
            serial.push(i, 1);
        }
        assert_eq!(serial.admit(1), Err(Refusal::Full));
        assert_eq!(serial.next(), Some(0));
        assert_eq!(serial.admit(1), Ok(()));
    }

    #[test]
    fn past_the_byte_budget_requests_are_refused_until_one_is_taken() {
        let serial = Serial::working();
        let half = budget::QUEUE_BYTES / 2;
        serial.push(1, half);
        serial.push(2, half);
        assert_eq!(serial.admit(1), Err(Refusal::Full));
        assert_eq!(
            serial.admit(budget::QUEUE_BYTES + 1),
            Err(Refusal::TooLarge)
        );
        assert_eq!(serial.next(), Some(1));
        assert_eq!(serial.admit(half), Ok(()));
        assert_eq!(serial.admit(half + 1), Err(Refusal::Full));
    }

    #[test]
    fn a_closed_queue_drops_what_waits_and_takes_nothing() {
        let serial = Serial::working();
        serial.push(1, 1);
        serial.close();
        assert_eq!(serial.admit(1), Err(Refusal::Closed));
        assert!(!serial.push(2, 1));
        assert_eq!(serial.next(), None);
    }
}
