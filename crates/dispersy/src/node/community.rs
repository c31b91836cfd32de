//! The running state of one joined community.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use super::Config;
use super::delay::DelayQueue;
use super::permission::PermissionState;
use super::stats::Counters;
use super::sync_state::SyncState;
use crate::community::Definition;
use crate::crypto::PrivateKey;
use crate::ids::{GlobalTime, MemberId};
use crate::time::Instant;
use crate::walker::{Category, Walker};

/// One community's clock, queues, walker and counters. Communities share no mutable state (the
/// address estimate and anti-amplification are the socket's, in the node).
#[derive(Debug)]
pub(crate) struct CommunityState {
    pub(crate) def: Arc<Definition>,
    /// Lamport clock: the highest global time stored or created here.
    pub(crate) global_time: GlobalTime,
    pub(crate) delayed: DelayQueue,
    pub(crate) stats: Counters,
    /// The random walker: candidates, outstanding introduction-requests, the step timer.
    pub(crate) walker: Walker,
    /// Bootstrap addresses of this community only (the node's apply to every community).
    pub(crate) bootstrap: BTreeSet<SocketAddr>,
    /// When bootstrap addresses were last handed to the walker.
    pub(crate) bootstrapped: Option<Instant>,
    /// The candidates as last reported in `Event::PeerChanged` (category none is absent).
    pub(crate) reported: BTreeMap<SocketAddr, (Category, Option<MemberId>)>,
    /// Median of the verified candidates' global-time opinions (zero with five or fewer).
    pub(crate) median_opinion: GlobalTime,
    /// The master's private key, when this node founded the community.
    pub(crate) master_private: Option<PrivateKey>,
    /// When we last asked a peer for the master key.
    pub(crate) master_requested: Option<Instant>,
    /// Bloom-filter sync, catch-up, reconciliation and progress.
    pub(crate) sync: SyncState,
    /// The permission timeline and the destruction acted upon.
    pub(crate) permission: PermissionState,
}

impl CommunityState {
    pub(crate) fn new(
        def: Arc<Definition>,
        global_time: GlobalTime,
        walker: Walker,
        config: &Config,
    ) -> Self {
        // Catch-up keeps a window of responses in flight that may arrive out of order.
        let delay_capacity = config
            .delay_capacity
            .max(config.sync.catchup_delay_capacity());
        let sync = SyncState::new(&def, &config.sync);
        let permission = PermissionState::new(&def, config);
        CommunityState {
            def,
            global_time,
            delayed: DelayQueue::new(delay_capacity, config.delay_timeout),
            sync,
            stats: Counters::default(),
            walker,
            bootstrap: BTreeSet::new(),
            bootstrapped: None,
            reported: BTreeMap::new(),
            median_opinion: GlobalTime::ZERO,
            master_private: None,
            master_requested: None,
            permission,
        }
    }

    /// Addresses of the verified candidates (walk and stumble) at `now`, in table order.
    pub(crate) fn verified(&self, now: Instant) -> Vec<SocketAddr> {
        self.walker
            .candidates()
            .in_categories(
                now,
                self.walker.config(),
                &[Category::Walk, Category::Stumble],
            )
            .map(|c| c.address)
            .collect()
    }

    /// Recomputes the median clock opinion: the global times (above zero) the verified
    /// candidates claimed, when more than five do (Dispersy's rule; the upper median, so half
    /// the candidates lying cannot lower the bound, and a minority cannot raise it).
    pub(crate) fn refresh_median_opinion(&mut self, now: Instant) {
        let mut opinions: Vec<GlobalTime> = self
            .walker
            .candidates()
            .in_categories(
                now,
                self.walker.config(),
                &[Category::Walk, Category::Stumble],
            )
            .map(|c| c.global_time)
            .filter(|g| g.0 > 0)
            .collect();
        self.median_opinion = if opinions.len() > 5 {
            opinions.sort_unstable();
            opinions[opinions.len() / 2]
        } else {
            GlobalTime::ZERO
        };
    }

    /// The highest global time a synced message may carry: our clock or the median of what
    /// verified candidates report (when more than five do), plus the community's acceptable
    /// range.
    pub(crate) fn acceptable_global_time(&self) -> GlobalTime {
        self.global_time
            .max(self.median_opinion)
            .saturating_add(self.def.settings().acceptable_global_time_range)
    }

    /// The earliest timer of this community: delayed messages, the walk step, request timeouts.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        [
            self.delayed.next_deadline(),
            self.walker.next_timeout(),
            self.sync.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use rand::SeedableRng;

    fn state() -> CommunityState {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let master = PrivateKey::generate(&mut rng);
        let def = Definition::builder(master.public().clone())
            .build()
            .unwrap();
        let walker = Walker::new(
            crate::walker::Config::default(),
            MemberId([1; 20]),
            Instant::ZERO,
        );
        CommunityState::new(Arc::new(def), GlobalTime(100), walker, &Config::default())
    }

    fn candidate(s: &mut CommunityState, now: Instant, port: u16, gt: u64, verified: bool) {
        let addr: SocketAddr = format!("10.0.0.1:{port}").parse().unwrap();
        let c = s
            .walker
            .candidates_mut()
            .entry(
                now,
                &crate::walker::Config::default(),
                addr,
                Category::Stumble,
            )
            .unwrap();
        if verified {
            c.last_stumble = Some(now);
        } else {
            c.last_intro = Some(now);
        }
        c.global_time = GlobalTime(gt);
    }

    #[test]
    fn median_of_more_than_five_verified_opinions() {
        let now = Instant::from_secs(10);
        let mut s = state();
        let range = s.def.settings().acceptable_global_time_range;
        for (port, gt) in [
            (1, 50_000),
            (2, 50_000),
            (3, 50_000),
            (4, 50_000),
            (5, 50_000),
        ] {
            candidate(&mut s, now, port, gt, true);
        }
        // Unverified opinions do not count, nor do zero ones.
        candidate(&mut s, now, 6, 90_000, false);
        candidate(&mut s, now, 7, 0, true);
        s.refresh_median_opinion(now);
        assert_eq!(s.acceptable_global_time(), GlobalTime(100 + range), "five");
        candidate(&mut s, now, 8, 200, true);
        s.refresh_median_opinion(now);
        assert_eq!(s.median_opinion, GlobalTime(50_000));
        assert_eq!(s.acceptable_global_time(), GlobalTime(50_000 + range));
        // A minority of liars cannot raise the bound.
        for port in 9..11 {
            candidate(&mut s, now, port, u64::MAX, true);
        }
        s.refresh_median_opinion(now);
        assert_eq!(s.median_opinion, GlobalTime(50_000));
    }
}
