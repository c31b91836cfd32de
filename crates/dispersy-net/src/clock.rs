//! Real time to node time.
//!
//! The node counts time in [`dispersy::time::Instant`]s (microseconds from an epoch the driver
//! picks). The driver's epoch is its own start, shifted by `origin`: a node restarted under a new
//! driver continues from the `now` it stopped at instead of going back in time. The source is
//! tokio's monotonic clock, so `now` never decreases, whatever happens to the wall clock.

use dispersy::time::Instant;

/// Maps tokio's monotonic clock to node time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: tokio::time::Instant,
    origin: Instant,
}

impl Clock {
    /// A clock that reads `origin` now.
    pub(crate) fn new(origin: Instant) -> Clock {
        Clock {
            start: tokio::time::Instant::now(),
            origin,
        }
    }

    /// The current node time.
    pub(crate) fn now(&self) -> Instant {
        self.origin + self.start.elapsed()
    }

    /// The tokio instant at which node time reaches `at`; `None` when that is too far away to
    /// represent (the node uses [`Instant::FAR_FUTURE`] for "never").
    pub(crate) fn deadline(&self, at: Instant) -> Option<tokio::time::Instant> {
        self.start
            .checked_add(at.saturating_duration_since(self.origin))
            .filter(|_| at != Instant::FAR_FUTURE)
    }

    /// Node time of a tokio instant (the epoch for instants before the driver started).
    #[cfg(test)]
    pub(crate) fn at(&self, t: tokio::time::Instant) -> Instant {
        self.origin + t.saturating_duration_since(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_map_back_to_node_time() {
        let clock = Clock::new(Instant::from_secs(100));
        let at = Instant::from_secs(103);
        let deadline = clock.deadline(at).expect("representable");
        assert_eq!(clock.at(deadline), at);
        assert!(clock.now() >= Instant::from_secs(100));
        // Before the origin: due at once.
        let past = clock
            .deadline(Instant::from_secs(1))
            .expect("representable");
        assert_eq!(clock.at(past), Instant::from_secs(100));
        assert_eq!(clock.deadline(Instant::FAR_FUTURE), None);
    }
}
