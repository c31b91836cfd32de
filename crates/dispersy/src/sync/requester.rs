//! The requester's filter cache and skip state machine (Dispersy's `SyncCache`, spec 7.2).
//!
//! A filter that brought responses is sent again (up to 100 times) instead of building a new
//! one, with every message we store in its range added to it. A filter that brought nothing
//! raises a skip counter; with probability `[0, 0, .1, .2, …, .9][counter − 1]` the next
//! request goes without a sync block at all, so a node whose peers have nothing new stops
//! spending bytes on filters. Any response resets the counter.

use std::net::SocketAddr;

use rand::Rng;

use super::strategy::{self, Claim, ClaimInput, Strategy};
use super::{Policies, SyncError};
use crate::ids::{GlobalTime, MetaId};
use crate::store::Store;
use crate::wire::builtin::SyncBlock;

/// The skip probability after `n` filters without response is `SKIP_CURVE[n - 1]`.
pub const SKIP_CURVE: [f64; 11] = [0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Requester settings (Dispersy's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequesterConfig {
    /// Range strategy.
    pub strategy: Strategy,
    /// Target false-positive rate of new filters.
    pub error_rate: f64,
    /// Reuse a filter that brought responses.
    pub reuse: bool,
    /// Skip sync blocks after filters that brought nothing.
    pub skip: bool,
    /// A filter is reused at most this many times.
    pub max_reuse: u32,
}

impl Default for RequesterConfig {
    fn default() -> Self {
        RequesterConfig {
            strategy: Strategy::Largest,
            error_rate: 0.01,
            reuse: true,
            skip: true,
            max_reuse: 100,
        }
    }
}

/// Counters of what the requester did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequesterStats {
    /// Filters built.
    pub built: u64,
    /// Filters sent again.
    pub reused: u64,
    /// Requests sent without a sync block because of the skip curve.
    pub skipped: u64,
}

#[derive(Debug, Clone)]
struct SyncCache {
    claim: Claim,
    times_used: u32,
    responses_received: u32,
    peer: Option<SocketAddr>,
}

/// The requester state of one community.
#[derive(Debug, Clone)]
pub struct Requester {
    config: RequesterConfig,
    cache: Option<SyncCache>,
    skip_count: usize,
    known: u64,
    stats: RequesterStats,
}

impl Requester {
    /// A requester with no cached filter.
    pub fn new(config: RequesterConfig) -> Requester {
        Requester {
            config,
            cache: None,
            skip_count: 0,
            known: 0,
            stats: RequesterStats::default(),
        }
    }

    /// The sync block for an introduction-request to `peer`, or `None` to send it without one
    /// (nothing is Bloom-synced, or the skip curve says so).
    pub fn claim<S: Store + ?Sized, R: Rng + ?Sized>(
        &mut self,
        store: &S,
        input: &ClaimInput<'_>,
        peer: SocketAddr,
        rng: &mut R,
    ) -> Result<Option<SyncBlock>, SyncError> {
        if input.policies.is_empty() {
            return Ok(None);
        }
        if let Some(cache) = &mut self.cache {
            if cache.responses_received > 0 {
                if self.config.skip {
                    self.skip_count = 0;
                }
                // A filter built for a roomier request (before an extension grew) no longer fits.
                let fits = cache.claim.bloom.size_bits() <= u64::from(input.bits);
                if self.config.reuse && cache.times_used < self.config.max_reuse && fits {
                    cache.times_used += 1;
                    cache.responses_received = 0;
                    cache.peer = Some(peer);
                    self.stats.reused += 1;
                    return cache.claim.block().map(Some);
                }
            } else if cache.times_used == 0 {
                self.skip_count = (self.skip_count + 1).min(SKIP_CURVE.len());
            }
        }
        if self.config.skip
            && self.skip_count > 0
            && rng.r#gen::<f64>() < SKIP_CURVE[self.skip_count - 1]
        {
            self.stats.skipped += 1;
            self.cache = None;
            return Ok(None);
        }
        let claim = match self.config.strategy {
            Strategy::Largest => strategy::largest(store, input, &mut self.known, rng)?,
            Strategy::Modulo => strategy::modulo(store, input, &mut self.known, rng)?,
        };
        let block = claim.block()?;
        self.stats.built += 1;
        self.cache = Some(SyncCache {
            claim,
            times_used: 0,
            responses_received: 0,
            peer: Some(peer),
        });
        Ok(Some(block))
    }

    /// Tells the requester we stored a message (from `from`, or created it when `None`): a
    /// Bloom-synced message in the cached range joins the cached filter, and one from the
    /// peer the filter was sent to counts as a response.
    pub fn on_stored(
        &mut self,
        policies: &Policies,
        meta: MetaId,
        global_time: GlobalTime,
        packet: &[u8],
        from: Option<SocketAddr>,
    ) {
        let Some(cache) = &mut self.cache else {
            return;
        };
        if policies.get(meta).is_none() || !cache.claim.covers(global_time) {
            return;
        }
        cache.claim.bloom.add(packet);
        if from.is_some() && from == cache.peer {
            cache.responses_received = cache.responses_received.saturating_add(1);
        }
    }

    /// Drops the cached filter (after pruning or anything else that removed messages).
    pub fn forget(&mut self) {
        self.cache = None;
    }

    /// The current skip counter (0 to 11).
    pub fn skip_count(&self) -> usize {
        self.skip_count
    }

    /// The cached claim, if any.
    pub fn cached(&self) -> Option<&Claim> {
        self.cache.as_ref().map(|c| &c.claim)
    }

    /// Counters.
    pub fn stats(&self) -> RequesterStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testkit::{self, COMMUNITY, corpus, store_of};
    use rand::RngCore;

    /// An RNG that always draws zero: the skip test never misses a skip with probability > 0.
    struct Zero;
    impl RngCore for Zero {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            dest.fill(0);
            Ok(())
        }
    }

    fn input(policies: &Policies, bits: u16) -> ClaimInput<'_> {
        ClaimInput {
            community: COMMUNITY,
            policies,
            global_time: GlobalTime(300),
            acceptable: GlobalTime(10_300),
            bits,
            error_rate: 0.01,
        }
    }

    /// An RNG that always draws its maximum: no skip probability below 1 ever fires.
    struct Max;
    impl RngCore for Max {
        fn next_u32(&mut self) -> u32 {
            u32::MAX
        }
        fn next_u64(&mut self) -> u64 {
            u64::MAX
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0xff);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            dest.fill(0xff);
            Ok(())
        }
    }

    #[test]
    fn reuse_and_skip_state_machine() {
        let (mut rng, _) = testkit::rng(21);
        let msgs = corpus(300, 4, 64, &mut rng);
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let peer: SocketAddr = "192.0.2.7:1".parse().unwrap();
        let other: SocketAddr = "192.0.2.8:1".parse().unwrap();
        let mut r = Requester::new(RequesterConfig::default());
        let claim = |r: &mut Requester, rng: &mut dyn RngCore, bits| {
            r.claim(&store, &input(&p, bits), peer, rng).unwrap()
        };

        // No responses: the counter climbs one notch per unanswered new filter; notches 1 and
        // 2 never skip, notch 3 skips when the draw is below 0.1 (always, for Zero).
        assert!(claim(&mut r, &mut Zero, 8128).is_some());
        assert_eq!(r.skip_count(), 0);
        assert!(claim(&mut r, &mut Zero, 8128).is_some());
        assert_eq!(r.skip_count(), 1);
        assert!(claim(&mut r, &mut Zero, 8128).is_some());
        assert_eq!(r.skip_count(), 2);
        assert!(claim(&mut r, &mut Zero, 8128).is_none());
        assert_eq!(
            (r.skip_count(), r.stats().skipped, r.stats().built),
            (3, 1, 3)
        );
        assert!(r.cached().is_none());
        // No cache, so no new notch; a high draw does not skip.
        assert!(claim(&mut r, &mut Max, 8128).is_some());
        assert_eq!((r.skip_count(), r.stats().built), (3, 4));

        // A message from another peer is added to the filter but is no response.
        let lo = r.cached().unwrap().time_low.0;
        let m = testkit::message(1, 99, lo, 64, &mut rng);
        r.on_stored(&p, m.meta, m.global_time, &m.packet, Some(other));
        assert!(claim(&mut r, &mut Max, 8128).is_some());
        assert_eq!(
            (r.skip_count(), r.stats().built, r.stats().reused),
            (4, 5, 0)
        );

        // A response from the peer it went to: reused, counter reset, the message is in it.
        let lo = r.cached().unwrap().time_low.0;
        let m = testkit::message(1, 98, lo, 64, &mut rng);
        r.on_stored(&p, m.meta, m.global_time, &m.packet, Some(peer));
        let again = claim(&mut r, &mut Zero, 8128).unwrap();
        assert_eq!(
            (r.skip_count(), r.stats().built, r.stats().reused),
            (0, 5, 1)
        );
        assert!(
            crate::bloom::BloomFilter::from_sync_block(&again)
                .unwrap()
                .contains(&m.packet)
        );

        // The request shrank (a larger extension): the cached filter no longer fits.
        r.on_stored(&p, m.meta, m.global_time, &m.packet, Some(peer));
        let small = claim(&mut r, &mut Zero, 4096).unwrap();
        assert_eq!(small.bits.len(), 512);
        assert_eq!((r.stats().built, r.stats().reused), (6, 1));
    }

    #[test]
    fn reuse_stops_after_max() {
        let (mut rng, _) = testkit::rng(22);
        let msgs = corpus(100, 4, 64, &mut rng);
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let peer: SocketAddr = "192.0.2.7:1".parse().unwrap();
        let mut r = Requester::new(RequesterConfig {
            max_reuse: 3,
            ..RequesterConfig::default()
        });
        for i in 0..9u64 {
            assert!(
                r.claim(&store, &input(&p, 8128), peer, &mut rng)
                    .unwrap()
                    .is_some()
            );
            let m = testkit::message(1, 50, 1 + i, 64, &mut rng);
            r.on_stored(&p, m.meta, m.global_time, &m.packet, Some(peer));
        }
        // Built, reused 3 times, built, reused 3 times, built.
        assert_eq!((r.stats().built, r.stats().reused), (3, 6));
        // Messages of metas that are not Bloom-synced do not count.
        let mut r = Requester::new(RequesterConfig::default());
        r.claim(&store, &input(&p, 8128), peer, &mut rng).unwrap();
        r.on_stored(&p, crate::ids::MetaId(9), GlobalTime(1), &[0], Some(peer));
        r.claim(&store, &input(&p, 8128), peer, &mut rng).unwrap();
        assert_eq!((r.stats().built, r.stats().reused), (2, 0));
    }
}
