//! The running state of one joined community.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::Config;
use super::delay::DelayQueue;
use super::permission::PermissionState;
use super::stats::Counters;
use crate::community::Definition;
use crate::crypto::PrivateKey;
use crate::ids::{GlobalTime, MemberId};
use crate::time::Instant;

/// What the node knows about a peer of a community until the walker owns candidates.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) member: Option<MemberId>,
    pub(crate) last_seen: Instant,
    pub(crate) global_time: GlobalTime,
}

/// One community's clock, queues, peers and counters. Communities share no mutable state.
#[derive(Debug)]
pub(crate) struct CommunityState {
    pub(crate) def: Arc<Definition>,
    /// Lamport clock: the highest global time stored or created here.
    pub(crate) global_time: GlobalTime,
    pub(crate) delayed: DelayQueue,
    pub(crate) stats: Counters,
    /// Peers we heard from or were told about (replaced by the walker's candidates).
    pub(crate) peers: BTreeMap<SocketAddr, Peer>,
    /// The master's private key, when this node founded the community.
    pub(crate) master_private: Option<PrivateKey>,
    /// When we last asked a peer for the master key.
    pub(crate) master_requested: Option<Instant>,
    /// The permission timeline and the destruction acted upon.
    pub(crate) permission: PermissionState,
}

impl CommunityState {
    pub(crate) fn new(def: Arc<Definition>, global_time: GlobalTime, config: &Config) -> Self {
        let permission = PermissionState::new(&def, config);
        CommunityState {
            def,
            global_time,
            delayed: DelayQueue::new(config.delay_capacity, config.delay_timeout),
            stats: Counters::default(),
            peers: BTreeMap::new(),
            master_private: None,
            master_requested: None,
            permission,
        }
    }

    /// The highest global time a synced message may carry: our clock or the median of what
    /// peers report (when more than five do), plus the community's acceptable range.
    pub(crate) fn acceptable_global_time(&self) -> GlobalTime {
        let mut opinions: Vec<GlobalTime> = self
            .peers
            .values()
            .map(|p| p.global_time)
            .filter(|g| g.0 > 0)
            .collect();
        let median = if opinions.len() > 5 {
            opinions.sort_unstable();
            opinions[opinions.len() / 2]
        } else {
            GlobalTime::ZERO
        };
        self.global_time
            .max(median)
            .saturating_add(self.def.settings().acceptable_global_time_range)
    }

    /// The earliest timer of this community.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.delayed.next_deadline()
    }
}
