//! Test helpers: synthetic communities, messages and stores.

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Policies;
use crate::community::policy::{Direction, Distribution, Pruning};
use crate::ids::{CommunityId, GlobalTime, MemberId, MetaId};
use crate::store::{MemStore, Store, StoredMessage, Undone, digest};

pub const COMMUNITY: CommunityId = CommunityId([0xc0; 20]);

/// A seeded RNG; the seed comes from `DISPERSY_TEST_SEED` when set, and is printed.
pub fn rng(default: u64) -> (ChaCha8Rng, u64) {
    let seed = std::env::var("DISPERSY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (set DISPERSY_TEST_SEED={seed} to reproduce)");
    (ChaCha8Rng::seed_from_u64(seed), seed)
}

pub fn member(i: u32) -> MemberId {
    let mut m = [0u8; 20];
    m[..4].copy_from_slice(&i.to_be_bytes());
    m[19] = 0x11;
    MemberId(m)
}

pub fn full(priority: u8, direction: Direction) -> Distribution {
    Distribution::FullSync {
        sequence_numbers: false,
        direction,
        priority,
        pruning: None,
    }
}

/// One meta (1), priority 128, ascending.
pub fn simple_policies() -> Policies {
    Policies::new([(MetaId(1), &full(128, Direction::Ascending))])
}

pub fn pruned(inactive: u64, prune: u64) -> Distribution {
    Distribution::FullSync {
        sequence_numbers: false,
        direction: Direction::Ascending,
        priority: 128,
        pruning: Some(Pruning { inactive, prune }),
    }
}

/// A message whose packet is `len` bytes (at least 32), unique per (member, gt, meta).
pub fn message<R: Rng + ?Sized>(
    meta: u8,
    author: u32,
    gt: u64,
    len: usize,
    rng: &mut R,
) -> StoredMessage {
    let mut packet = vec![0u8; len.max(32)];
    rng.fill(&mut packet[..]);
    packet[..4].copy_from_slice(&author.to_be_bytes());
    packet[4..12].copy_from_slice(&gt.to_be_bytes());
    packet[12] = meta;
    let packet = Bytes::from(packet);
    StoredMessage {
        community: COMMUNITY,
        meta: MetaId(meta),
        member: member(author),
        global_time: GlobalTime(gt),
        sequence: None,
        second_member: None,
        digest: digest(&packet),
        packet,
        undone: Undone::No,
    }
}

/// `n` messages of meta 1 by `authors` authors, `len` bytes each, global times growing by
/// about one per `authors / 2` messages (so authors share global times, as with a Lamport clock
/// that many members advance together).
pub fn corpus<R: Rng + ?Sized>(
    n: usize,
    authors: u32,
    len: usize,
    rng: &mut R,
) -> Vec<StoredMessage> {
    let mut out = Vec::with_capacity(n);
    let mut seen = std::collections::BTreeSet::new();
    let per_gt = (authors / 2).max(1) as u64;
    let mut i = 0u64;
    while out.len() < n {
        let gt = 1 + i / per_gt;
        let author = rng.gen_range(0..authors);
        i += 1;
        if seen.insert((author, gt)) {
            out.push(message(1, author, gt, len, rng));
        }
    }
    out
}

pub fn store_of<'a>(messages: impl IntoIterator<Item = &'a StoredMessage>) -> MemStore {
    let mut s = MemStore::new();
    for m in messages {
        s.insert_message(m).expect("memstore insert");
    }
    s
}

/// Every (member, gt) of the community, sorted.
pub fn ids(store: &MemStore) -> Vec<(GlobalTime, MemberId)> {
    store
        .range(
            &COMMUNITY,
            &crate::store::RangeQuery::between(GlobalTime::ZERO, GlobalTime::MAX, usize::MAX),
        )
        .expect("memstore range")
        .iter()
        .map(|m| (m.global_time, m.member))
        .collect()
}
