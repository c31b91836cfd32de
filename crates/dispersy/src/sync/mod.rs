//! Bloom-filter synchronization: pure, sans-IO algorithms the node calls.
//!
//! Dispersy spreads messages by pull: every walker step, the introduction-request carries a
//! [`SyncBlock`](crate::wire::builtin::SyncBlock) ("this is what I hold in this global-time
//! range"), and the responder sends back what the filter does not contain. This module has:
//!
//! - [`size`]: how many filter bits keep the whole introduction-request in one datagram;
//! - [`strategy`] and [`requester`]: which range to advertise ("largest" or "modulo") and
//!   Dispersy's filter reuse and skip state machine;
//! - [`mod@respond`]: the responder, ordered by priority and direction, within a byte budget
//!   and the walker's anti-amplification allowance;
//! - [`catchup`]: the requester-side controller for fast catch-up (a window of requests in
//!   flight across ranges and peers, re-asking at once while responses come back full, with
//!   the response budget adapted per peer from observed loss and delay);
//! - [`reconcile`] and [`index`]: range-based set reconciliation of nearly equal stores
//!   (fingerprints of global-time ranges, then id lists) carried in the `RECONCILE` extension;
//! - [`hello`]: the `SYNC_HELLO` and `SYNC_SUMMARY` extension payloads;
//! - [`progress`]: bundles held versus an estimate of what peers hold.
//!
//! Nothing here performs I/O, reads a clock or owns an RNG: state changes take `now` and an
//! RNG from the caller. The design, wire formats and measured figures are in `docs/sync.md`.
//!
//! Bloom sync stays the safety net: reconciliation and fast catch-up only make convergence
//! faster and cheaper; whatever they miss (digest collisions, a lost datagram, a peer that
//! does not speak an extension) the next classic sync round still finds.

pub mod catchup;
pub mod hello;
pub mod index;
pub mod progress;
pub mod reconcile;
pub mod requester;
pub mod respond;
pub mod size;
pub mod strategy;
mod varint;

#[cfg(test)]
mod simnet;
#[cfg(test)]
mod testkit;

pub use catchup::Catchup;
pub use index::FingerprintIndex;
pub use progress::Progress;
pub use requester::{Requester, RequesterConfig};
pub use respond::{Limits, Response, respond};
pub use strategy::{ClaimInput, Strategy};

use crate::bloom::BloomError;
use crate::community::policy::{Direction, Distribution, Pruning, SYNC_PRIORITY_THRESHOLD};
use crate::ids::{GlobalTime, MetaId};
use crate::store::{Order, RangeQuery, StoreError};

/// Why a sync step failed. Store errors are the node's; filter errors come from hostile sync
/// blocks and are counted as drops.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A Bloom filter could not be built (from a hostile block, or a budget too small).
    #[error(transparent)]
    Bloom(#[from] BloomError),
}

/// How one meta-message takes part in Bloom sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaSync {
    /// The meta-message.
    pub meta: MetaId,
    /// Sync priority (above [`SYNC_PRIORITY_THRESHOLD`]).
    pub priority: u8,
    /// Order of responses.
    pub direction: Direction,
    /// Global-time pruning, if any.
    pub pruning: Option<Pruning>,
}

/// The Bloom-synced meta-messages of a community (priority above the threshold), highest
/// priority first, ties by message byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    metas: Vec<MetaSync>,
    ids: Vec<MetaId>,
}

impl Policies {
    /// Collects the Bloom-synced meta-messages from `(meta, distribution)` pairs; direct
    /// messages and priorities at or below the threshold are left out.
    pub fn new<'a>(metas: impl IntoIterator<Item = (MetaId, &'a Distribution)>) -> Policies {
        let mut out: Vec<MetaSync> = metas
            .into_iter()
            .filter(|(_, d)| d.is_bloom_synced())
            .filter_map(|(meta, d)| {
                let pruning = match d {
                    Distribution::FullSync { pruning, .. } => *pruning,
                    _ => None,
                };
                Some(MetaSync {
                    meta,
                    priority: d.priority()?,
                    direction: d.direction()?,
                    pruning,
                })
            })
            .collect();
        out.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.meta.cmp(&b.meta)));
        out.dedup_by_key(|m| m.meta);
        debug_assert!(out.iter().all(|m| m.priority > SYNC_PRIORITY_THRESHOLD));
        let ids = out.iter().map(|m| m.meta).collect();
        Policies { metas: out, ids }
    }

    /// The metas, highest priority first.
    pub fn metas(&self) -> &[MetaSync] {
        &self.metas
    }

    /// Their message bytes (for [`crate::store::RangeQuery::metas`] and `Store::count`).
    pub fn ids(&self) -> &[MetaId] {
        &self.ids
    }

    /// One meta's sync policy, if it is Bloom-synced.
    pub fn get(&self, meta: MetaId) -> Option<&MetaSync> {
        self.metas.iter().find(|m| m.meta == meta)
    }

    /// Whether nothing is Bloom-synced.
    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }
}

/// The messages of `metas` in `low..=high`, in `order`, at most `limit` (every residue class).
pub(crate) fn query(
    metas: &[MetaId],
    low: GlobalTime,
    high: GlobalTime,
    order: Order,
    limit: usize,
) -> RangeQuery {
    RangeQuery {
        metas: Some(metas.to_vec()),
        order,
        ..RangeQuery::between(low, high, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_keep_synced_metas_by_priority() {
        let full = |priority, direction| Distribution::FullSync {
            sequence_numbers: false,
            direction,
            priority,
            pruning: None,
        };
        let d = [
            (MetaId(1), full(100, Direction::Ascending)),
            (MetaId(2), full(32, Direction::Ascending)),
            (MetaId(3), Distribution::Direct),
            (
                MetaId(4),
                Distribution::LastSync {
                    history: 1,
                    direction: Direction::Descending,
                    priority: 200,
                },
            ),
            (MetaId(5), full(100, Direction::Random)),
        ];
        let p = Policies::new(d.iter().map(|(m, d)| (*m, d)));
        assert_eq!(p.ids(), &[MetaId(4), MetaId(1), MetaId(5)]);
        assert_eq!(p.get(MetaId(4)).unwrap().direction, Direction::Descending);
        assert!(p.get(MetaId(2)).is_none());
    }
}
