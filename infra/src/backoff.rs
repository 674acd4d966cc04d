//! Exponential back-off: the pauses between attempts at something that may work again soon (a
//! reconnect, a retried read, a request no instance took yet).

use std::time::Duration;

use rand::Rng;

/// Pauses that start at `initial` and grow by `factor` after each, up to `cap`; with jitter, each
/// pause is shortened by a random part of up to that fraction of it, so that many clients that
/// failed together do not all come back together.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    factor: u32,
    cap: Duration,
    jitter: f64,
    next: Duration,
}

impl Backoff {
    /// Doubling pauses from `initial` up to `cap`, without jitter.
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial,
            factor: 2,
            cap,
            jitter: 0.0,
            next: initial.min(cap),
        }
    }

    /// Grows each pause by `factor` instead of 2 (1: a constant pause).
    pub fn factor(mut self, factor: u32) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// Shortens each pause by a random part of up to `fraction` (0 to 1) of it.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The pause to take now; the one after it is longer, up to the cap.
    // Not `Iterator::next`: the pauses never end, and an `Option` would only burden each caller.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Duration {
        let pause = self.next;
        self.next = pause.saturating_mul(self.factor).min(self.cap);
        if self.jitter == 0.0 {
            return pause;
        }
        let keep = 1.0 - rand::rng().random_range(0.0..=self.jitter);
        // Falls back to the whole pause where seconds as f64 round past what a Duration holds.
        Duration::try_from_secs_f64(pause.as_secs_f64() * keep).unwrap_or(pause)
    }

    /// Starts again from the initial pause (after a success).
    pub fn reset(&mut self) {
        self.next = self.initial.min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pauses_grow_by_the_factor_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(25 * MS, 400 * MS);
        let pauses: Vec<_> = (0..7).map(|_| b.next()).collect();
        assert_eq!(pauses, [25, 50, 100, 200, 400, 400, 400].map(|n| n * MS),);
        b.reset();
        assert_eq!(b.next(), 25 * MS);
        let mut b = Backoff::new(MS, Duration::from_secs(1)).factor(10);
        assert_eq!(
            [b.next(), b.next(), b.next(), b.next()],
            [1, 10, 100, 1000].map(|n| n * MS)
        );
        assert_eq!(
            Backoff::new(5 * MS, MS).next(),
            MS,
            "the cap bounds the first pause too"
        );
    }

    #[test]
    fn jitter_only_shortens_and_stays_within_its_fraction() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).jitter(0.25);
        let pauses: Vec<_> = (0..200).map(|_| b.next()).collect();
        assert!(pauses
            .iter()
            .all(|p| (750 * MS..=Duration::from_secs(1)).contains(p)));
        assert!(pauses.iter().any(|p| *p != pauses[0]), "the pauses vary");
    }

    #[test]
    fn nothing_overflows() {
        let mut b = Backoff::new(Duration::MAX / 2, Duration::MAX).factor(u32::MAX);
        b.next();
        assert_eq!(b.next(), Duration::MAX);
        let mut b = Backoff::new(Duration::MAX, Duration::MAX).jitter(1.0);
        assert!(b.next() <= Duration::MAX);
    }
}
