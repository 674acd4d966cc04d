//! Where this gateway's deliveries stand: a pure bookkeeping of positions, so that every event the
//! read models applied is handed to delivery once, in order, whichever way it arrived (announced,
//! or read back from JetStream after a missed announcement).

use std::time::{Duration, Instant};

use events_schema::Position;

/// How long the checkpoint may stay ahead of what this gateway delivered before the missing events
/// are read back from JetStream (their announcement may still be on its way).
pub(super) const GAP_GRACE: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(super) struct Deliveries {
    /// Everything up to here was handed to delivery (`None`: nothing yet, the gateway just started).
    delivered: Option<Position>,
    /// Since when the read models' checkpoint has been ahead of `delivered` with no announcement.
    behind_since: Option<Instant>,
}

/// What to do with an announcement.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Already delivered (a repeat, or the projection restarting).
    Skip,
    /// First read back the events after `.0` up to `.1` (missed announcements), then deliver the
    /// announced events after `.2`.
    Deliver(Option<(Position, Position)>, Position),
}

impl Deliveries {
    /// An announcement of the events after `after` up to `position`.
    pub(super) fn on_applied(&mut self, after: Position, position: Position) -> Plan {
        let plan = match self.delivered {
            // From now: the first announcement heard.
            None => Plan::Deliver(None, 0),
            Some(done) if position <= done => return Plan::Skip,
            Some(done) if after > done => Plan::Deliver(Some((done, after)), after),
            Some(done) => Plan::Deliver(None, done),
        };
        self.delivered = Some(position);
        self.behind_since = None;
        plan
    }

    /// The checkpoint read from the database: the events after `.0` up to `.1` to read back when
    /// it has stayed ahead of what was delivered for longer than an announcement takes.
    pub(super) fn on_checkpoint(
        &mut self,
        checkpoint: Position,
        now: Instant,
    ) -> Option<(Position, Position)> {
        let Some(done) = self.delivered else {
            // Nothing heard yet: deliver from here on.
            self.delivered = Some(checkpoint);
            return None;
        };
        if checkpoint <= done {
            self.behind_since = None;
            return None;
        }
        let since = *self.behind_since.get_or_insert(now);
        if now.duration_since(since) < GAP_GRACE {
            return None;
        }
        self.delivered = Some(checkpoint);
        self.behind_since = None;
        Some((done, checkpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_announcement_is_delivered_whole_then_each_continues_the_last() {
        let mut d = Deliveries::default();
        assert_eq!(d.on_applied(10, 15), Plan::Deliver(None, 0));
        assert_eq!(d.on_applied(15, 20), Plan::Deliver(None, 15));
        assert_eq!(d.delivered, Some(20));
    }

    #[test]
    fn a_repeat_or_a_restart_announcement_is_skipped() {
        let mut d = Deliveries::default();
        d.on_applied(10, 20);
        assert_eq!(d.on_applied(10, 20), Plan::Skip);
        // The projection (re)starting announces its checkpoint with no events.
        assert_eq!(d.on_applied(20, 20), Plan::Skip);
        assert_eq!(d.on_applied(15, 18), Plan::Skip);
    }

    #[test]
    fn a_missed_announcement_is_read_back_before_the_next_is_delivered() {
        let mut d = Deliveries::default();
        d.on_applied(10, 20);
        assert_eq!(d.on_applied(30, 40), Plan::Deliver(Some((20, 30)), 30));
        assert_eq!(d.delivered, Some(40));
    }

    #[test]
    fn an_overlapping_announcement_delivers_only_what_is_new() {
        let mut d = Deliveries::default();
        d.on_applied(10, 20);
        assert_eq!(d.on_applied(15, 25), Plan::Deliver(None, 20));
    }

    #[test]
    fn a_checkpoint_ahead_for_longer_than_the_grace_is_read_back_once() {
        let mut d = Deliveries::default();
        let t0 = Instant::now();
        // Nothing heard yet: the checkpoint is where delivery starts.
        assert_eq!(d.on_checkpoint(5, t0), None);
        assert_eq!(d.delivered, Some(5));
        assert_eq!(
            d.on_checkpoint(9, t0),
            None,
            "its announcement may be on its way"
        );
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE / 2), None);
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE), Some((5, 9)));
        assert_eq!(d.delivered, Some(9));
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE * 2), None);
    }

    #[test]
    fn an_announcement_arriving_within_the_grace_cancels_the_read_back() {
        let mut d = Deliveries::default();
        let t0 = Instant::now();
        d.on_applied(0, 5);
        assert_eq!(d.on_checkpoint(9, t0), None);
        assert_eq!(d.on_applied(5, 9), Plan::Deliver(None, 5));
        assert_eq!(d.on_checkpoint(9, t0 + GAP_GRACE * 3), None);
    }
}
