//! The responder: which of our messages a requester lacks (spec 7.3).
//!
//! For a received [`SyncBlock`], every Bloom-synced meta-message is visited in priority order
//! (highest first, ties by message byte), and its messages in the requested range and residue
//! class are visited in the meta's direction (ascending, descending, or random). Each message
//! whose packet the requester's filter does not contain is sent, while the byte budget allows.
//!
//! Differences from Dispersy, each on purpose:
//!
//! - **No overshoot** (W6): a response never exceeds `min(budget, allowance)`; Dispersy always
//!   sent one packet past its 5 KiB. The one exception keeps every message syncable: a first
//!   packet larger than the whole budget is sent alone, if it fits the allowance.
//! - **Anti-amplification**: the caller passes the walker's allowance for the requester's
//!   address (three times what an unproven address sent us, minus what we already sent it);
//!   nothing beyond it is ever selected.
//! - **Bounded work**: at most `scan_limit` stored messages are examined per request. An honest
//!   requester advertises a range holding about one filter's capacity of its own messages, so
//!   a range in which we would examine more is one where the requester lacks far more than the
//!   budget can carry: the budget fills long before the limit binds.
//! - **Undone messages are served** (every node must learn them; the undo messages that mark
//!   them sync too). Dispersy served only `undone = 0`. The node passes a `servable` test to
//!   [`respond_with`] that leaves out what is not in effect for a reason a receiver would
//!   refuse it for (disallowed by its permissions): such a packet could only be refused and
//!   sent again every round.
//! - **Random order** does not ask the store for a random permutation of the whole range:
//!   it scans from a random global time upwards, wraps around, and shuffles what it examined.
//!
//! Messages of meta-messages with global-time pruning are served only while active: their low
//! bound is raised to `global_time − inactive + 1` (spec 4.3).

use bytes::Bytes;
use rand::Rng;
use rand::seq::SliceRandom;

use super::{MetaSync, Policies, SyncError};
use crate::bloom::BloomFilter;
use crate::community::policy::Direction;
use crate::ids::{CommunityId, GlobalTime};
use crate::store::{Order, RangeQuery, Store, StoredMessage};
use crate::wire::builtin::SyncBlock;

/// Dispersy's response budget (`dispersy_sync_response_limit`).
pub const DEFAULT_BUDGET: usize = 5 * 1024;
/// Default cap on the budget a fast-sync requester may ask for.
pub const DEFAULT_MAX_BUDGET: usize = 256 * 1024;
/// Default bound on stored messages examined per request.
pub const DEFAULT_SCAN_LIMIT: usize = 4 * 1024;

/// How much one response may hold and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of packets the response may hold.
    pub budget: usize,
    /// Hard cap from the walker's anti-amplification rule (`usize::MAX` for a proven address).
    pub allowance: usize,
    /// At most this many stored messages are examined.
    pub scan_limit: usize,
}

impl Limits {
    /// The classic limits: 5 KiB, within `allowance`.
    pub fn classic(allowance: usize) -> Limits {
        Limits {
            budget: DEFAULT_BUDGET,
            allowance,
            scan_limit: DEFAULT_SCAN_LIMIT,
        }
    }

    /// Limits for a request that asked for `asked` bytes (0: the classic default), granted up
    /// to `max` and never below the classic budget.
    pub fn asked(asked: u64, max: usize, allowance: usize) -> Limits {
        let asked = usize::try_from(asked).unwrap_or(usize::MAX);
        let budget = if asked == 0 {
            DEFAULT_BUDGET
        } else {
            asked.clamp(DEFAULT_BUDGET.min(max), max)
        };
        Limits {
            budget,
            ..Limits::classic(allowance)
        }
    }
}

/// The packets to send back, in order, each as its own datagram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The packets.
    pub packets: Vec<Bytes>,
    /// Their total size.
    pub bytes: usize,
    /// Stored messages examined.
    pub examined: usize,
    /// Stopped at the budget, the allowance or the scan limit: there is probably more the
    /// requester lacks in this range.
    pub more: bool,
}

fn meta_query(
    meta: &MetaSync,
    block: &SyncBlock,
    low: GlobalTime,
    high: GlobalTime,
    order: Order,
    limit: usize,
) -> RangeQuery {
    RangeQuery {
        modulo: block.modulo.max(1),
        offset: block.offset,
        ..super::query(&[meta.meta], low, high, order, limit)
    }
}

/// The messages of one meta in `low..=high` in its direction, at most `limit`.
fn candidates<S: Store + ?Sized, R: Rng + ?Sized>(
    store: &S,
    community: &CommunityId,
    meta: &MetaSync,
    block: &SyncBlock,
    (low, high): (GlobalTime, GlobalTime),
    limit: usize,
    rng: &mut R,
) -> Result<Vec<StoredMessage>, SyncError> {
    let q = |lo, hi, order, limit| meta_query(meta, block, lo, hi, order, limit);
    Ok(match meta.direction {
        Direction::Ascending => store.range(community, &q(low, high, Order::Ascending, limit))?,
        Direction::Descending => store.range(community, &q(low, high, Order::Descending, limit))?,
        Direction::Random => {
            let pivot = GlobalTime(rng.gen_range(low.0..=high.0));
            let mut v = store.range(community, &q(pivot, high, Order::Ascending, limit))?;
            if v.len() < limit && pivot > low {
                let rest = limit - v.len();
                v.extend(store.range(
                    community,
                    &q(low, pivot.saturating_sub(1), Order::Ascending, rest),
                )?);
            }
            v.shuffle(rng);
            v
        }
    })
}

/// Selects the packets the requester of `block` lacks. `global_time` is our community global
/// time (it bounds a `time_high` of 0 and decides which pruned messages are still active).
///
/// Fails only on store errors and on blocks whose filter cannot be built (more hash functions
/// than one digest gives): count those as drops.
pub fn respond<S: Store + ?Sized, R: Rng + ?Sized>(
    store: &S,
    community: &CommunityId,
    policies: &Policies,
    global_time: GlobalTime,
    block: &SyncBlock,
    limits: &Limits,
    rng: &mut R,
) -> Result<Response, SyncError> {
    respond_with(
        store,
        community,
        policies,
        global_time,
        block,
        limits,
        rng,
        &|_| true,
    )
}

/// [`respond`], sending only the messages `servable` accepts (the others are examined and
/// skipped like messages the filter holds).
#[allow(clippy::too_many_arguments, reason = "respond's inputs plus the test")]
pub fn respond_with<S: Store + ?Sized, R: Rng + ?Sized>(
    store: &S,
    community: &CommunityId,
    policies: &Policies,
    global_time: GlobalTime,
    block: &SyncBlock,
    limits: &Limits,
    rng: &mut R,
    servable: &dyn Fn(&StoredMessage) -> bool,
) -> Result<Response, SyncError> {
    let filter = BloomFilter::from_sync_block(block)?;
    let low = block.time_low.min(GlobalTime::MAX);
    let high = if block.time_high == GlobalTime::ZERO {
        global_time
    } else {
        block.time_high
    }
    .min(GlobalTime::MAX);
    let cap = limits.budget.min(limits.allowance);
    let mut out = Response::default();
    for meta in policies.metas() {
        let meta_low = match meta.pruning {
            // Active while global_time - gt < inactive, i.e. gt > global_time - inactive.
            Some(p) => low.max(GlobalTime(
                global_time.0.saturating_sub(p.inactive).saturating_add(1),
            )),
            None => low,
        };
        if meta_low > high {
            continue;
        }
        let room = limits.scan_limit.saturating_sub(out.examined);
        if room == 0 {
            out.more = true;
            break;
        }
        let batch = candidates(store, community, meta, block, (meta_low, high), room, rng)?;
        if batch.len() == room {
            // The scan limit cut this meta short; whatever follows was not examined.
            out.more = true;
        }
        for m in batch {
            out.examined += 1;
            if filter.contains(&m.packet) || !servable(&m) {
                continue;
            }
            let len = m.packet.len();
            if out.bytes + len <= cap {
                out.bytes += len;
                out.packets.push(m.packet);
            } else {
                // Larger than the whole budget: alone, so that it can ever be synced.
                if out.packets.is_empty() && len <= limits.allowance {
                    out.bytes = len;
                    out.packets.push(m.packet);
                }
                out.more = true;
                return Ok(out);
            }
        }
        if out.more {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::policy::Direction;
    use crate::ids::MetaId;
    use crate::store::MemStore;
    use crate::sync::testkit::{self, COMMUNITY, full, message, pruned, store_of};

    fn block_for(
        low: u64,
        high: u64,
        modulo: u16,
        offset: u16,
        have: &[&StoredMessage],
    ) -> SyncBlock {
        let mut f = BloomFilter::with_error_rate(8128, 0.01, Some(3)).unwrap();
        for m in have {
            f.add(&m.packet);
        }
        f.to_sync_block(GlobalTime(low), GlobalTime(high), modulo, offset)
            .unwrap()
    }

    /// The global times of the packets sent, in order (the test packets carry them).
    fn gts(r: &Response) -> Vec<u64> {
        r.packets
            .iter()
            .map(|p| u64::from_be_bytes(p[4..12].try_into().unwrap()))
            .collect()
    }

    fn big() -> Limits {
        Limits {
            budget: usize::MAX / 2,
            allowance: usize::MAX,
            scan_limit: usize::MAX,
        }
    }

    // test_sync: modulo (every modulo 1..9 and offset).
    #[test]
    fn modulo_and_offset() {
        let (mut rng, _) = testkit::rng(1);
        let msgs: Vec<_> = (1..=60).map(|gt| message(1, 0, gt, 64, &mut rng)).collect();
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        for modulo in 1..10u16 {
            for offset in 0..modulo {
                let b = block_for(1, 0, modulo, offset, &[]);
                let r =
                    respond(&store, &COMMUNITY, &p, GlobalTime(60), &b, &big(), &mut rng).unwrap();
                let want: Vec<u64> = (1..=60u64)
                    .filter(|gt| (gt + u64::from(offset)) % u64::from(modulo) == 0)
                    .collect();
                assert_eq!(gts(&r), want, "modulo {modulo} offset {offset}");
            }
        }
    }

    // test_sync: range, and the filter removes what the requester has.
    #[test]
    fn range_and_filter() {
        let (mut rng, _) = testkit::rng(2);
        let msgs: Vec<_> = (1..=30).map(|gt| message(1, 0, gt, 64, &mut rng)).collect();
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let have: Vec<&StoredMessage> = msgs.iter().filter(|m| m.global_time.0 % 2 == 0).collect();
        let b = block_for(5, 15, 1, 0, &have);
        let r = respond(&store, &COMMUNITY, &p, GlobalTime(30), &b, &big(), &mut rng).unwrap();
        assert_eq!(gts(&r), vec![5, 7, 9, 11, 13, 15]);
        assert!(!r.more);
        // time_high 0: up to our global time.
        let b = block_for(28, 0, 1, 0, &[]);
        let r = respond(&store, &COMMUNITY, &p, GlobalTime(29), &b, &big(), &mut rng).unwrap();
        assert_eq!(gts(&r), vec![28, 29]);
    }

    // test_sync: in_order / out_order / random_order / mixed_order / priority_order.
    #[test]
    fn priority_then_direction() {
        let (mut rng, _) = testkit::rng(3);
        let d = [
            (MetaId(1), full(100, Direction::Ascending)),
            (MetaId(2), full(200, Direction::Descending)),
            (MetaId(3), full(150, Direction::Random)),
            (MetaId(4), full(32, Direction::Ascending)),
        ];
        let p = crate::sync::Policies::new(d.iter().map(|(m, d)| (*m, d)));
        let mut msgs = Vec::new();
        for gt in 1..=40u64 {
            let meta = (gt % 4 + 1) as u8;
            msgs.push(message(meta, 0, gt, 64, &mut rng));
        }
        let store = store_of(&msgs);
        let b = block_for(1, 0, 1, 0, &[]);
        let r = respond(&store, &COMMUNITY, &p, GlobalTime(40), &b, &big(), &mut rng).unwrap();
        let order: Vec<(u8, u64)> = r
            .packets
            .iter()
            .map(|p| (p[12], u64::from_be_bytes(p[4..12].try_into().unwrap())))
            .collect();
        let metas: Vec<u8> = order.iter().map(|(m, _)| *m).collect();
        // Priority 200 first, then 150, then 100; priority 32 never.
        assert_eq!(metas, [vec![2u8; 10], vec![3; 10], vec![1; 10]].concat());
        let of = |meta| {
            order
                .iter()
                .filter(|(m, _)| *m == meta)
                .map(|(_, g)| *g)
                .collect::<Vec<_>>()
        };
        let desc = of(2);
        assert!(desc.windows(2).all(|w| w[0] > w[1]));
        let asc = of(1);
        assert!(asc.windows(2).all(|w| w[0] < w[1]));
        let random = of(3);
        let mut sorted = random.clone();
        sorted.sort_unstable();
        assert_eq!(sorted.len(), 10);
        assert!(random != sorted && random.iter().rev().copied().collect::<Vec<_>>() != sorted);
    }

    // test_sync: the response budget, without overshoot (W6), and the allowance.
    #[test]
    fn budget_and_allowance_are_hard_caps() {
        let (mut rng, _) = testkit::rng(4);
        let msgs: Vec<_> = (1..=100)
            .map(|gt| message(1, 0, gt, 300, &mut rng))
            .collect();
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let b = block_for(1, 0, 1, 0, &[]);
        let r = respond(
            &store,
            &COMMUNITY,
            &p,
            GlobalTime(100),
            &b,
            &Limits::classic(usize::MAX),
            &mut rng,
        )
        .unwrap();
        assert_eq!(r.packets.len(), 17);
        assert_eq!(r.bytes, 17 * 300);
        assert!(r.more);
        // An unproven address that sent 1,200 bytes gets at most 3,600.
        let r = respond(
            &store,
            &COMMUNITY,
            &p,
            GlobalTime(100),
            &b,
            &Limits::classic(3 * 1200),
            &mut rng,
        )
        .unwrap();
        assert_eq!((r.packets.len(), r.bytes), (12, 3600));
        let r = respond(
            &store,
            &COMMUNITY,
            &p,
            GlobalTime(100),
            &b,
            &Limits::classic(299),
            &mut rng,
        )
        .unwrap();
        assert!(r.packets.is_empty() && r.more);
        // Fast-sync asks are granted within the cap and never below the classic budget.
        assert_eq!(
            Limits::asked(1 << 30, DEFAULT_MAX_BUDGET, 1).budget,
            DEFAULT_MAX_BUDGET
        );
        assert_eq!(
            Limits::asked(100, DEFAULT_MAX_BUDGET, 1).budget,
            DEFAULT_BUDGET
        );
        assert_eq!(
            Limits::asked(0, DEFAULT_MAX_BUDGET, 1).budget,
            DEFAULT_BUDGET
        );
        // Everything fits: not "more".
        let r = respond(
            &store,
            &COMMUNITY,
            &p,
            GlobalTime(100),
            &b,
            &Limits::asked(40_000, 1 << 20, usize::MAX),
            &mut rng,
        )
        .unwrap();
        assert_eq!((r.packets.len(), r.more), (100, false));
    }

    #[test]
    fn oversize_packet_goes_alone() {
        let (mut rng, _) = testkit::rng(5);
        let msgs = vec![
            message(1, 0, 1, 6000, &mut rng),
            message(1, 0, 2, 100, &mut rng),
        ];
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let b = block_for(1, 0, 1, 0, &[]);
        let r = respond(
            &store,
            &COMMUNITY,
            &p,
            GlobalTime(2),
            &b,
            &Limits::classic(usize::MAX),
            &mut rng,
        )
        .unwrap();
        assert_eq!((r.packets.len(), r.bytes, r.more), (1, 6000, true));
        let r = respond(
            &store,
            &COMMUNITY,
            &p,
            GlobalTime(2),
            &b,
            &Limits::classic(5000),
            &mut rng,
        )
        .unwrap();
        assert!(r.packets.is_empty());
    }

    #[test]
    fn scan_limit_bounds_work() {
        let (mut rng, _) = testkit::rng(6);
        let msgs: Vec<_> = (1..=500)
            .map(|gt| message(1, 0, gt, 64, &mut rng))
            .collect();
        let store = store_of(&msgs);
        let p = testkit::simple_policies();
        let all: Vec<&StoredMessage> = msgs.iter().collect();
        let b = block_for(1, 0, 1, 0, &all);
        let limits = Limits {
            scan_limit: 100,
            ..Limits::classic(usize::MAX)
        };
        let r = respond(
            &store,
            &COMMUNITY,
            &p,
            GlobalTime(500),
            &b,
            &limits,
            &mut rng,
        )
        .unwrap();
        assert_eq!(r.examined, 100);
        assert!(r.more);
        assert!(
            r.packets.len() <= 3,
            "false positives only: {}",
            r.packets.len()
        );
    }

    // test_pruning: sync_response_response_filtering_inactive (inactive 10, prune 20).
    #[test]
    fn inactive_messages_are_not_served() {
        let (mut rng, _) = testkit::rng(7);
        let d = [(MetaId(1), pruned(10, 20))];
        let p = crate::sync::Policies::new(d.iter().map(|(m, d)| (*m, d)));
        let msgs: Vec<_> = (1..=10).map(|gt| message(1, 0, gt, 64, &mut rng)).collect();
        let store = store_of(&msgs);
        let b = block_for(1, 0, 1, 0, &[]);
        let r = respond(&store, &COMMUNITY, &p, GlobalTime(10), &b, &big(), &mut rng).unwrap();
        assert_eq!(r.packets.len(), 10);
        // Global time 15: messages 1..=5 are inactive (15 - gt >= 10).
        let r = respond(&store, &COMMUNITY, &p, GlobalTime(15), &b, &big(), &mut rng).unwrap();
        assert_eq!(gts(&r), vec![6, 7, 8, 9, 10]);
    }

    #[test]
    fn undone_messages_are_served() {
        let (mut rng, _) = testkit::rng(8);
        let mut m = message(1, 0, 3, 64, &mut rng);
        m.undone = crate::store::Undone::ByPolicy;
        let store = store_of([&m]);
        let b = block_for(1, 0, 1, 0, &[]);
        let r = respond(
            &store,
            &COMMUNITY,
            &testkit::simple_policies(),
            GlobalTime(3),
            &b,
            &big(),
            &mut rng,
        )
        .unwrap();
        assert_eq!(r.packets.len(), 1);
        // What the caller's test refuses is skipped.
        let r = respond_with(
            &store,
            &COMMUNITY,
            &testkit::simple_policies(),
            GlobalTime(3),
            &b,
            &big(),
            &mut rng,
            &|m| m.undone != crate::store::Undone::ByPolicy,
        )
        .unwrap();
        assert_eq!((r.packets.len(), r.examined), (0, 1));
    }

    #[test]
    fn hostile_filter_is_an_error() {
        let (mut rng, _) = testkit::rng(9);
        let b = SyncBlock {
            time_low: GlobalTime(1),
            time_high: GlobalTime(0),
            modulo: 1,
            offset: 0,
            functions: 255,
            prefix: 0,
            bits: Bytes::from(vec![0xff; 16]),
        };
        let store = MemStore::new();
        assert!(
            respond(
                &store,
                &COMMUNITY,
                &testkit::simple_policies(),
                GlobalTime(3),
                &b,
                &big(),
                &mut rng
            )
            .is_err()
        );
    }
}
