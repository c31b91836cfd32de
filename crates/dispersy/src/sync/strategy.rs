//! Which global-time range a requester advertises: Dispersy's "largest" and "modulo"
//! strategies (spec 7.2).
//!
//! A filter holds about `C` messages at the configured error rate (847 at 1 % in a default
//! request). "Largest" advertises a window of at most `C` of our messages around a pivot drawn
//! from an exponential distribution biased towards recent global times, whichever side of the
//! pivot covers the wider span. "Modulo" advertises one residue class `(gt + offset) % modulo`
//! over the whole range, with `modulo = ⌈n / C⌉`.
//!
//! A window never splits a global time: selections fetch `C + 1` rows and, when truncated,
//! drop the last row and every row sharing its global time, so every message of ours inside the
//! advertised range is in the filter (a message outside the filter but inside the range would be
//! sent back to us again and again).
//!
//! Undone messages are advertised and served like any other: every node must learn them, and
//! their undo status follows from the undo messages, which sync too.

use bytes::Bytes;
use rand::Rng;

use super::{Policies, SyncError};
use crate::bloom::BloomFilter;
use crate::ids::{CommunityId, GlobalTime};
use crate::store::{Order, RangeQuery, Store, StoreError, StoredMessage};
use crate::wire::builtin::SyncBlock;

/// How the requester picks the range it advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Dispersy's default: a window of at most `C` messages around a random pivot.
    #[default]
    Largest,
    /// One residue class of global times over the whole range.
    Modulo,
}

/// The community as the requester sees it when it builds a filter.
#[derive(Debug, Clone, Copy)]
pub struct ClaimInput<'a> {
    /// The community.
    pub community: CommunityId,
    /// Its Bloom-synced meta-messages.
    pub policies: &'a Policies,
    /// Our community global time.
    pub global_time: GlobalTime,
    /// The highest global time we accept (the advertised range never goes beyond).
    pub acceptable: GlobalTime,
    /// Filter size in bits, from [`super::size::RequestShape::filter_bits`].
    pub bits: u16,
    /// Target false-positive rate (Dispersy: 0.01).
    pub error_rate: f64,
}

/// A filter and the range it covers.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Lowest global time covered.
    pub time_low: GlobalTime,
    /// Highest global time covered.
    pub time_high: GlobalTime,
    /// Residue class modulus.
    pub modulo: u16,
    /// Residue class offset.
    pub offset: u16,
    /// Our messages in that range and class.
    pub bloom: BloomFilter,
}

impl Claim {
    /// The wire form.
    pub fn block(&self) -> Result<SyncBlock, SyncError> {
        Ok(self
            .bloom
            .to_sync_block(self.time_low, self.time_high, self.modulo, self.offset)?)
    }

    /// Whether a message at `gt` falls in the advertised range and class.
    pub fn covers(&self, gt: GlobalTime) -> bool {
        gt >= self.time_low
            && gt <= self.time_high
            && (self.modulo <= 1
                || gt.0.wrapping_add(u64::from(self.offset)) % u64::from(self.modulo) == 0)
    }

    /// Dispersy's "nothing to offer" claim: the whole range and an empty 8-bit filter, which
    /// asks for anything.
    pub fn empty(acceptable: GlobalTime) -> Result<Claim, SyncError> {
        Ok(Claim {
            time_low: GlobalTime(1),
            time_high: acceptable.max(GlobalTime(1)),
            modulo: 1,
            offset: 0,
            bloom: BloomFilter::with_error_rate(8, 0.1, Some(0))?,
        })
    }
}

/// At most this many messages beyond capacity are put in a modulo filter (a residue class can
/// be crowded when many authors share global times); the rest are served to us again, which
/// costs bytes but not correctness.
const MODULO_OVERFILL: usize = 4;
/// A window short of capacity is extended the other way only when this many are missing.
const EXTEND_THRESHOLD: usize = 25;

fn new_filter<R: Rng + ?Sized>(
    input: &ClaimInput<'_>,
    rng: &mut R,
) -> Result<(BloomFilter, usize), SyncError> {
    let bloom =
        BloomFilter::with_error_rate(u64::from(input.bits), input.error_rate, Some(rng.r#gen()))?;
    let capacity = usize::try_from(bloom.capacity(input.error_rate)).unwrap_or(usize::MAX);
    Ok((bloom, capacity.max(1)))
}

/// Messages beyond `after` (above it when `higher`, below it otherwise), at most `n`, never
/// splitting a global time; returned ascending, with whether the selection was truncated.
fn select_and_fix<S: Store + ?Sized>(
    store: &S,
    input: &ClaimInput<'_>,
    after: GlobalTime,
    higher: bool,
    n: usize,
) -> Result<(Vec<StoredMessage>, bool), StoreError> {
    let (low, high, order) = if higher {
        if after >= GlobalTime::MAX {
            return Ok((Vec::new(), false));
        }
        (after.next(), GlobalTime::MAX, Order::Ascending)
    } else {
        if after.0 <= 1 {
            return Ok((Vec::new(), false));
        }
        (GlobalTime(1), after.saturating_sub(1), Order::Descending)
    };
    let mut data = store.range(
        &input.community,
        &super::query(input.policies.ids(), low, high, order, n.saturating_add(1)),
    )?;
    let fixed = data.len() > n;
    if let Some(last) = data.last().map(|m| m.global_time).filter(|_| fixed) {
        while data.last().is_some_and(|m| m.global_time == last) {
            data.pop();
        }
    }
    if !higher {
        data.reverse();
    }
    Ok((data, fixed))
}

/// A candidate range and our messages in it.
struct Window {
    lo: GlobalTime,
    hi: GlobalTime,
    data: Vec<StoredMessage>,
    /// The selection in the window's own direction was cut short (there is more beyond).
    truncated: bool,
}

impl Window {
    fn span(&self) -> u64 {
        self.hi.0.saturating_sub(self.lo.0)
    }
}

/// A window of at most `n` messages starting at `pivot` and going up (`higher`) or down,
/// extended the other way when it comes up short.
fn window<S: Store + ?Sized>(
    store: &S,
    input: &ClaimInput<'_>,
    pivot: GlobalTime,
    n: usize,
    higher: bool,
) -> Result<Option<Window>, StoreError> {
    let start = if higher {
        pivot.saturating_sub(1)
    } else {
        pivot.next()
    };
    let (mut data, fixed) = select_and_fix(store, input, start, higher, n)?;
    let mut other_fixed = true;
    let missing = n - data.len().min(n);
    if missing > EXTEND_THRESHOLD {
        let (more, f) = select_and_fix(store, input, pivot, !higher, missing)?;
        other_fixed = f;
        if higher {
            data.splice(0..0, more);
        } else {
            data.extend(more);
        }
    }
    let (Some(first), Some(last)) = (data.first(), data.last()) else {
        return Ok(None);
    };
    let (mut lo, mut hi) = (first.global_time, last.global_time);
    if higher {
        lo = lo.min(pivot);
        if !fixed {
            hi = input.acceptable;
        }
        if !other_fixed {
            lo = GlobalTime(1);
        }
    } else {
        hi = hi.max(pivot);
        if !fixed {
            lo = GlobalTime(1);
        }
        if !other_fixed {
            hi = input.acceptable;
        }
    }
    Ok(Some(Window {
        lo,
        hi,
        data,
        truncated: fixed,
    }))
}

fn finish(
    mut bloom: BloomFilter,
    lo: GlobalTime,
    hi: GlobalTime,
    data: &[StoredMessage],
    acceptable: GlobalTime,
) -> Claim {
    for m in data {
        bloom.add(&m.packet);
    }
    let hi = hi.min(acceptable).max(GlobalTime(1));
    Claim {
        time_low: lo.min(hi).max(GlobalTime(1)),
        time_high: hi,
        modulo: 1,
        offset: 0,
        bloom,
    }
}

/// Dispersy's "largest" strategy. `known` is the remembered count of syncable messages: the
/// pivot is used only once we are known to hold more than a filter's capacity.
///
/// Deviation: the left window is considered when the right one was truncated (Dispersy
/// compared the post-truncation length with the capacity, which misses truncations that drop
/// several rows sharing a global time).
pub fn largest<S: Store + ?Sized, R: Rng + ?Sized>(
    store: &S,
    input: &ClaimInput<'_>,
    known: &mut u64,
    rng: &mut R,
) -> Result<Claim, SyncError> {
    let (bloom, capacity) = new_filter(input, rng)?;
    let now = input.global_time.max(GlobalTime(1));
    let mean = now.0 as f64 / 2.0;
    // Expovariate with the given mean: -ln(1 - u) * mean for u in [0, 1).
    let draw = (-(1.0 - rng.r#gen::<f64>()).ln() * mean) as u64;
    let mut pivot = now.0.saturating_sub(draw);
    if pivot < 1 {
        pivot = (rng.r#gen::<f64>() * now.0 as f64) as u64;
    }
    let pivot = GlobalTime(pivot);

    if pivot > GlobalTime(1) && *known >= capacity as u64 {
        let right = window(store, input, pivot, capacity, true)?;
        let chosen = match right {
            Some(r) if r.truncated => match window(store, input, pivot, capacity, false)? {
                Some(l) if l.span() > r.span() => Some(l),
                _ => Some(r),
            },
            Some(r) => Some(r),
            None => window(store, input, pivot, capacity, false)?,
        };
        return match chosen {
            Some(w) => Ok(finish(bloom, w.lo, w.hi, &w.data, input.acceptable)),
            None => Claim::empty(input.acceptable),
        };
    }

    let (data, fixed) = select_and_fix(store, input, GlobalTime::ZERO, true, capacity)?;
    let Some(last) = data.last().map(|m| m.global_time) else {
        return Claim::empty(input.acceptable);
    };
    let hi = if fixed {
        *known = (*known).max(capacity as u64 + 1);
        last
    } else {
        input.acceptable
    };
    Ok(finish(bloom, GlobalTime(1), hi, &data, input.acceptable))
}

/// Dispersy's "modulo" strategy: `modulo = ⌈n / C⌉` and a random offset.
pub fn modulo<S: Store + ?Sized, R: Rng + ?Sized>(
    store: &S,
    input: &ClaimInput<'_>,
    known: &mut u64,
    rng: &mut R,
) -> Result<Claim, SyncError> {
    let (mut bloom, capacity) = new_filter(input, rng)?;
    let n = store.count(
        &input.community,
        Some(input.policies.ids()),
        GlobalTime(1),
        GlobalTime::MAX,
    )?;
    *known = n;
    let m = n.div_ceil(capacity as u64).clamp(1, u64::from(u16::MAX)) as u16;
    let offset = if m > 1 { rng.gen_range(0..m) } else { 0 };
    let data = store.range(
        &input.community,
        &RangeQuery {
            modulo: m,
            offset,
            ..super::query(
                input.policies.ids(),
                GlobalTime(1),
                GlobalTime::MAX,
                Order::Ascending,
                capacity.saturating_mul(MODULO_OVERFILL),
            )
        },
    )?;
    for msg in &data {
        bloom.add(&msg.packet);
    }
    Ok(Claim {
        time_low: GlobalTime(1),
        time_high: input.acceptable.max(GlobalTime(1)),
        modulo: m,
        offset,
        bloom,
    })
}

/// The packets of a claim's range and class in our store, for checks and debugging (the
/// debug check Dispersy removed in W16: with `Store` reads seeing writes it holds again).
pub fn claimed_packets<S: Store + ?Sized>(
    store: &S,
    community: &CommunityId,
    policies: &Policies,
    claim: &Claim,
    limit: usize,
) -> Result<Vec<Bytes>, StoreError> {
    Ok(store
        .range(
            community,
            &RangeQuery {
                modulo: claim.modulo,
                offset: claim.offset,
                ..super::query(
                    policies.ids(),
                    claim.time_low,
                    claim.time_high,
                    Order::Ascending,
                    limit,
                )
            },
        )?
        .into_iter()
        .map(|m| m.packet)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testkit::{self, COMMUNITY, corpus, store_of};

    fn input(policies: &Policies, global_time: u64) -> ClaimInput<'_> {
        ClaimInput {
            community: COMMUNITY,
            policies,
            global_time: GlobalTime(global_time),
            acceptable: GlobalTime(global_time + 10_000),
            bits: 8128,
            error_rate: 0.01,
        }
    }

    /// The claim's filter holds exactly our messages of its range and class: rebuilding it from
    /// the store gives the same bits.
    fn assert_exact<S: Store>(store: &S, p: &Policies, c: &Claim) -> usize {
        let packets = claimed_packets(store, &COMMUNITY, p, c, usize::MAX).unwrap();
        let mut f =
            BloomFilter::with_functions(c.bloom.size_bits(), c.bloom.functions(), c.bloom.prefix())
                .unwrap();
        for pk in &packets {
            f.add(pk);
        }
        assert_eq!(
            f.as_bytes(),
            c.bloom.as_bytes(),
            "filter is not exactly the range {c:?}"
        );
        packets.len()
    }

    #[test]
    fn largest_small_store_covers_everything() {
        let (mut rng, _) = testkit::rng(11);
        let msgs = corpus(500, 10, 100, &mut rng);
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let gt = msgs.iter().map(|m| m.global_time.0).max().unwrap();
        let mut known = 0;
        let c = largest(&store, &input(&p, gt), &mut known, &mut rng).unwrap();
        assert_eq!(
            (c.time_low, c.time_high),
            (GlobalTime(1), GlobalTime(gt + 10_000))
        );
        assert_eq!(assert_exact(&store, &p, &c), 500);
        assert_eq!(known, 0);
    }

    #[test]
    fn largest_windows_never_split_a_global_time() {
        let (mut rng, seed) = testkit::rng(12);
        // 40 authors, about 20 messages per global time: truncation must drop whole times.
        let msgs = corpus(20_000, 40, 80, &mut rng);
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let gt = msgs.iter().map(|m| m.global_time.0).max().unwrap();
        let mut known = 0;
        let first = largest(&store, &input(&p, gt), &mut known, &mut rng).unwrap();
        assert_eq!(first.time_low, GlobalTime(1));
        assert!(first.time_high.0 < gt, "the first claim is truncated");
        assert_eq!(known, 848);
        let n = assert_exact(&store, &p, &first);
        assert!(n <= 847 && n > 800, "{n}");
        let mut spans = Vec::new();
        for _ in 0..200 {
            let c = largest(&store, &input(&p, gt), &mut known, &mut rng).unwrap();
            let n = assert_exact(&store, &p, &c);
            assert!(n <= 847, "seed {seed}: {n} messages in {c:?}");
            assert!(
                n > 800 || c.time_high.0 >= gt,
                "seed {seed}: window of {n} {c:?}"
            );
            spans.push((c.time_low.0, c.time_high.0));
        }
        // Biased towards recent global times, but not only there.
        let recent = spans.iter().filter(|(_, hi)| *hi >= gt).count();
        assert!(
            recent > 5 && recent < 100,
            "{recent} of 200 windows reach the top"
        );
    }

    #[test]
    fn modulo_strategy_takes_one_class() {
        let (mut rng, _) = testkit::rng(13);
        let msgs = corpus(5_000, 20, 80, &mut rng);
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let gt = msgs.iter().map(|m| m.global_time.0).max().unwrap();
        let mut known = 0;
        let c = modulo(&store, &input(&p, gt), &mut known, &mut rng).unwrap();
        assert_eq!(known, 5_000);
        assert_eq!(c.modulo, 6);
        assert!(c.offset < 6);
        let n = assert_exact(&store, &p, &c);
        assert!((700..=1_000).contains(&n), "{n}");
    }

    #[test]
    fn nothing_stored_asks_for_anything() {
        let (mut rng, _) = testkit::rng(14);
        let store = crate::store::MemStore::new();
        let p = testkit::simple_policies();
        let c = largest(&store, &input(&p, 0), &mut 0, &mut rng).unwrap();
        assert_eq!(
            (c.time_low, c.time_high, c.bloom.size_bits()),
            (GlobalTime(1), GlobalTime(10_000), 8)
        );
        assert_eq!(c.bloom.bits_set(), 0);
    }
}
