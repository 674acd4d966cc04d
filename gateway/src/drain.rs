//! A gateway told to stop answers what its sockets already asked before it closes them: every
//! request is acknowledged exactly once (docs/api.md, "Requests"), also across a restart.
//! Requests that arrive once it is stopping are refused at once, so the wait has an end.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The socket requests this gateway has taken and not yet answered.
#[derive(Default)]
pub struct Requests {
    stopping: AtomicBool,
    taken: AtomicUsize,
}

/// One taken request; dropping it (once the request is answered, or its job dropped) gives it back.
pub struct Taken(Arc<Requests>);

impl Drop for Taken {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Requests {
    /// Takes one request; `None` once the gateway is stopping.
    pub fn take(self: &Arc<Self>) -> Option<Taken> {
        // Counted before the check: a stop that finds the count at zero has seen every request
        // that got past the check, so none is still running when the sockets close.
        self.taken.fetch_add(1, Ordering::SeqCst);
        let taken = Taken(self.clone());
        if self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        Some(taken)
    }

    /// Refuses every request from now on and waits, at most `bound`, until the taken ones are
    /// answered. Returns how many were still unanswered.
    pub async fn stop(&self, bound: Duration) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let left = self.taken.load(Ordering::SeqCst);
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            // Only on the way out; a short poll keeps the request path free of any wake-up.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_waits_for_taken_requests_and_refuses_new_ones() {
        let requests = Arc::new(Requests::default());
        let first = requests.take().expect("taken before the stop");
        let stopping = tokio::spawn({
            let requests = requests.clone();
            async move { requests.stop(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !stopping.is_finished(),
            "the stop waits for the taken request"
        );
        assert!(requests.take().is_none(), "nothing is taken once stopping");
        drop(first);
        assert_eq!(stopping.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn stop_gives_up_after_its_bound_and_says_how_many_were_left() {
        let requests = Arc::new(Requests::default());
        let _held = [requests.take(), requests.take()];
        assert_eq!(requests.stop(Duration::from_millis(30)).await, 2);
    }

    #[tokio::test]
    async fn a_refused_request_leaves_no_count_behind() {
        let requests = Arc::new(Requests::default());
        assert_eq!(requests.stop(Duration::ZERO).await, 0);
        assert!(requests.take().is_none());
        assert_eq!(requests.taken.load(Ordering::SeqCst), 0);
    }
}
