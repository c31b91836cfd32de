//! A cached fingerprint index over global time, so range fingerprints cost a few dozen
//! additions instead of a scan of every message in the range.
//!
//! `Store::fingerprint` is linear in the messages of the range (MemStore walks them; SQLite
//! sums an index range). Reconciliation asks for many ranges per message, the root ones
//! covering the whole community, so the node keeps one `FingerprintIndex` per community:
//!
//! - The global-time axis is cut into aligned buckets of `2^shift` global times. A bucket's
//!   fingerprint (count and wrapping digest sum of its Bloom-synced messages) is computed from
//!   the store the first time a query covers it, and cached. Nothing is built at startup.
//! - A range fingerprint is the sum of the cached buckets it covers entirely plus two store
//!   queries for the partial buckets at its edges (each at most one bucket wide).
//! - Memory is bounded: at most `max_buckets` buckets exist. When the community's global time
//!   outgrows them, the bucket width doubles and cached neighbours merge (fingerprints add).
//!   4,096 buckets take about 160 KiB.
//! - The node keeps it exact by reporting every change to Bloom-synced messages
//!   ([`FingerprintIndex::on_insert`], [`FingerprintIndex::on_remove`]) or by invalidating a
//!   range (after pruning's `delete_up_to`). A stale bucket makes reconciliation see a
//!   difference that is not there (one wasted round) or miss one (Bloom sync still finds it).

use std::collections::BTreeMap;

use super::Policies;
use crate::ids::{CommunityId, GlobalTime, MetaId};
use crate::store::{Fingerprint, Store, StoreError};

/// Default bound on cached buckets.
pub const DEFAULT_MAX_BUCKETS: usize = 4096;

fn combine(a: Fingerprint, b: Fingerprint) -> Fingerprint {
    Fingerprint {
        count: a.count.wrapping_add(b.count),
        sum: a.sum.wrapping_add(b.sum),
    }
}

/// Counters of how the index answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Range fingerprints answered.
    pub queries: u64,
    /// `Store::fingerprint` calls made (edges and bucket fills).
    pub store_calls: u64,
    /// Buckets answered from the cache.
    pub hits: u64,
}

/// Cached bucket fingerprints of one community's Bloom-synced messages.
#[derive(Debug, Clone)]
pub struct FingerprintIndex {
    community: CommunityId,
    metas: Vec<MetaId>,
    shift: u32,
    buckets: BTreeMap<u64, Fingerprint>,
    max_buckets: usize,
    stats: IndexStats,
}

impl FingerprintIndex {
    /// An empty index for the Bloom-synced metas of a community, keeping at most
    /// `max_buckets` buckets (at least 16).
    pub fn new(community: CommunityId, policies: &Policies, max_buckets: usize) -> Self {
        FingerprintIndex {
            community,
            metas: policies.ids().to_vec(),
            shift: 0,
            buckets: BTreeMap::new(),
            max_buckets: max_buckets.max(16),
            stats: IndexStats::default(),
        }
    }

    /// The community.
    pub fn community(&self) -> CommunityId {
        self.community
    }

    /// The metas it covers.
    pub fn metas(&self) -> &[MetaId] {
        &self.metas
    }

    /// Counters.
    pub fn stats(&self) -> IndexStats {
        self.stats
    }

    /// Number of cached buckets.
    pub fn cached(&self) -> usize {
        self.buckets.len()
    }

    /// Widens the buckets until `max` global times fit in `max_buckets` of them.
    fn fit(&mut self, max: GlobalTime) {
        while (max.0 >> self.shift) >= self.max_buckets as u64 && self.shift < 63 {
            self.shift += 1;
            let old = std::mem::take(&mut self.buckets);
            let mut merged: BTreeMap<u64, (Fingerprint, u8)> = BTreeMap::new();
            for (i, fp) in old {
                let e = merged.entry(i >> 1).or_default();
                e.0 = combine(e.0, fp);
                e.1 += 1;
            }
            // A merged bucket is known only when both halves were.
            self.buckets = merged
                .into_iter()
                .filter(|(_, (_, halves))| *halves == 2)
                .map(|(i, (fp, _))| (i, fp))
                .collect();
        }
    }

    fn store_fp<S: Store + ?Sized>(
        &mut self,
        store: &S,
        low: u64,
        high: u64,
    ) -> Result<Fingerprint, StoreError> {
        self.stats.store_calls += 1;
        store.fingerprint(
            &self.community,
            Some(&self.metas),
            GlobalTime(low),
            GlobalTime(high),
        )
    }

    fn bucket<S: Store + ?Sized>(&mut self, store: &S, i: u64) -> Result<Fingerprint, StoreError> {
        if let Some(fp) = self.buckets.get(&i) {
            self.stats.hits += 1;
            return Ok(*fp);
        }
        let lo = i << self.shift;
        let fp = self.store_fp(store, lo, lo.saturating_add((1u64 << self.shift) - 1))?;
        if self.buckets.len() < self.max_buckets {
            self.buckets.insert(i, fp);
        }
        Ok(fp)
    }

    /// Fingerprint of the Bloom-synced messages in `low..=high`.
    pub fn fingerprint<S: Store + ?Sized>(
        &mut self,
        store: &S,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<Fingerprint, StoreError> {
        self.stats.queries += 1;
        let max = store.max_global_time(&self.community)?;
        let high = high.min(max);
        if low > high {
            return Ok(Fingerprint::default());
        }
        self.fit(max);
        let Some((first, last)) = self.full_buckets(low, high) else {
            return self.store_fp(store, low.0, high.0);
        };
        let mut fp = Fingerprint::default();
        let start = u128::from(first) << self.shift;
        if u128::from(low.0) < start {
            fp = combine(fp, self.store_fp(store, low.0, (start - 1) as u64)?);
        }
        for i in first..=last {
            fp = combine(fp, self.bucket(store, i)?);
        }
        let after = (u128::from(last) + 1) << self.shift;
        if after <= u128::from(high.0) {
            fp = combine(fp, self.store_fp(store, after as u64, high.0)?);
        }
        Ok(fp)
    }

    /// The first and last bucket lying entirely inside `low..=high`, if any.
    fn full_buckets(&self, low: GlobalTime, high: GlobalTime) -> Option<(u64, u64)> {
        let w = 1u128 << self.shift;
        let first = u128::from(low.0).div_ceil(w);
        let end = (u128::from(high.0) + 1) / w;
        (end > first).then(|| (first as u64, (end - 1) as u64))
    }

    /// Cuts `low..=high` into at most `parts` consecutive ranges holding about equal numbers of
    /// messages (by whole buckets when the range spans many, else by equal global-time width).
    /// The ranges cover `low..=high` exactly; a range is never empty.
    pub fn split<S: Store + ?Sized>(
        &mut self,
        store: &S,
        low: GlobalTime,
        high: GlobalTime,
        parts: usize,
    ) -> Result<Vec<(GlobalTime, GlobalTime)>, StoreError> {
        let parts = parts.max(1) as u64;
        if low >= high || parts == 1 {
            return Ok(vec![(low, high)]);
        }
        let max = store.max_global_time(&self.community)?;
        // Our messages lie in low..=top; the last range runs on to `high`.
        let top = high.min(max).max(low);
        self.fit(max);
        let mut cuts: Vec<u64> = Vec::new();
        let full = self.full_buckets(low, top);
        if let Some((first, last)) = full.filter(|(f, l)| l - f + 1 >= 2 * parts) {
            let counts: Vec<(u64, u64)> = (first..=last)
                .map(|i| self.bucket(store, i).map(|fp| (i, fp.count)))
                .collect::<Result<_, _>>()?;
            let total: u64 = counts.iter().map(|(_, c)| c).sum();
            let mut acc = 0u64;
            let mut k = 1u64;
            for (i, c) in &counts[..counts.len() - 1] {
                acc += c;
                while total > 0
                    && k < parts
                    && u128::from(acc) * u128::from(parts) >= u128::from(k) * u128::from(total)
                {
                    let cut = (((u128::from(*i) + 1) << self.shift) - 1) as u64;
                    if cuts.last().is_none_or(|l| cut > *l) && cut >= low.0 && cut < top.0 {
                        cuts.push(cut);
                    }
                    k += 1;
                }
            }
        }
        if cuts.is_empty() {
            let span = top.0 - low.0 + 1;
            let n = parts.min(span);
            for k in 1..n {
                let cut = low.0 + (span as u128 * k as u128 / n as u128) as u64 - 1;
                if cuts.last().is_none_or(|l| cut > *l) {
                    cuts.push(cut);
                }
            }
        }
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut start = low.0;
        for cut in cuts {
            out.push((GlobalTime(start), GlobalTime(cut)));
            start = cut + 1;
        }
        out.push((GlobalTime(start), high));
        Ok(out)
    }

    /// A Bloom-synced message was stored.
    pub fn on_insert(&mut self, meta: MetaId, global_time: GlobalTime, digest: u64) {
        if !self.metas.contains(&meta) {
            return;
        }
        if let Some(fp) = self.buckets.get_mut(&(global_time.0 >> self.shift)) {
            fp.add(digest);
        }
    }

    /// A Bloom-synced message was deleted (or replaced: remove the old, insert the new).
    pub fn on_remove(&mut self, meta: MetaId, global_time: GlobalTime, digest: u64) {
        if !self.metas.contains(&meta) {
            return;
        }
        if let Some(fp) = self.buckets.get_mut(&(global_time.0 >> self.shift)) {
            fp.count = fp.count.wrapping_sub(1);
            fp.sum = fp.sum.wrapping_sub(digest);
        }
    }

    /// Forgets the buckets overlapping `low..=high` (they are recomputed when needed).
    pub fn invalidate(&mut self, low: GlobalTime, high: GlobalTime) {
        let (a, b) = (low.0 >> self.shift, high.0 >> self.shift);
        if a <= b {
            let doomed: Vec<u64> = self.buckets.range(a..=b).map(|(i, _)| *i).collect();
            for i in doomed {
                self.buckets.remove(&i);
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testkit::{self, COMMUNITY, corpus, message, store_of};
    use rand::Rng;

    #[test]
    fn matches_the_store_and_stays_exact() {
        let (mut rng, seed) = testkit::rng(31);
        let msgs = corpus(5_000, 30, 40, &mut rng);
        let mut store = store_of(&msgs);
        let p = testkit::simple_policies();
        let mut idx = FingerprintIndex::new(COMMUNITY, &p, 64);
        let max = msgs.iter().map(|m| m.global_time.0).max().unwrap();
        let check = |idx: &mut FingerprintIndex,
                     store: &crate::store::MemStore,
                     rng: &mut rand_chacha::ChaCha8Rng,
                     max: u64| {
            for _ in 0..300 {
                let a = rng.gen_range(0..max + 50);
                let b = rng.gen_range(a..max + 100);
                let want = store
                    .fingerprint(&COMMUNITY, Some(p.ids()), GlobalTime(a), GlobalTime(b))
                    .unwrap();
                let got = idx
                    .fingerprint(store, GlobalTime(a), GlobalTime(b))
                    .unwrap();
                assert_eq!(got, want, "seed {seed}: {a}..={b}");
            }
        };
        check(&mut idx, &store, &mut rng, max);
        assert!(idx.cached() <= 64 && idx.cached() > 0);
        // Updates keep it exact; global time growing past the buckets widens them.
        for i in 0..2_000u64 {
            let m = message(1, 7, max + 1 + i * 3, 40, &mut rng);
            store.insert_message(&m).unwrap();
            idx.on_insert(m.meta, m.global_time, m.digest);
        }
        let gone = &msgs[100];
        store.delete_message(&COMMUNITY, &gone.id()).unwrap();
        idx.on_remove(gone.meta, gone.global_time, gone.digest);
        check(&mut idx, &store, &mut rng, max + 6_000);
        assert!(idx.cached() <= 64);
        let full = idx
            .fingerprint(&store, GlobalTime(0), GlobalTime::MAX)
            .unwrap();
        assert_eq!(full.count, 6_999);
        idx.invalidate(GlobalTime(0), GlobalTime(100));
        assert_eq!(
            idx.fingerprint(&store, GlobalTime(0), GlobalTime::MAX)
                .unwrap(),
            full
        );
    }

    #[test]
    fn splits_cover_the_range_by_count() {
        let (mut rng, _) = testkit::rng(32);
        // Skewed: most messages in the last tenth of global time.
        let mut msgs = corpus(1_000, 10, 40, &mut rng);
        for i in 0..9_000u64 {
            msgs.push(message(
                1,
                1_000 + (i % 50) as u32,
                5_000 + i / 50,
                40,
                &mut rng,
            ));
        }
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let mut idx = FingerprintIndex::new(COMMUNITY, &p, 1024);
        let parts = idx
            .split(&store, GlobalTime(1), GlobalTime::MAX, 16)
            .unwrap();
        assert_eq!(parts.first().unwrap().0, GlobalTime(1));
        assert_eq!(parts.last().unwrap().1, GlobalTime::MAX);
        assert!(
            parts
                .windows(2)
                .all(|w| w[0].1.0 + 1 == w[1].0.0 && w[0].0 <= w[0].1)
        );
        let counts: Vec<u64> = parts
            .iter()
            .map(|(a, b)| idx.fingerprint(&store, *a, *b).unwrap().count)
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), 10_000);
        assert!(counts.iter().all(|c| *c < 1_500), "{counts:?}");
        // Small ranges split by width, single global times not at all.
        let small = idx
            .split(&store, GlobalTime(10), GlobalTime(13), 16)
            .unwrap();
        assert_eq!(small.len(), 4);
        assert_eq!(
            idx.split(&store, GlobalTime(9), GlobalTime(9), 16)
                .unwrap()
                .len(),
            1
        );
    }
}
