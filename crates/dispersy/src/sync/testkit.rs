//! Test helpers: synthetic communities, messages and stores.

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use std::collections::BTreeMap;

use super::reconcile::{self, Config, Message};
use super::{FingerprintIndex, Policies};
use crate::community::policy::{Direction, Distribution, Pruning};
use crate::ids::{CommunityId, GlobalTime, MemberId, MetaId};
use crate::store::{MemStore, Store, StoredMessage, Undone, digest};
use crate::sync::index::DEFAULT_MAX_BUCKETS;

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

// Reconciliation between two in-memory stores.

/// Bytes of room for the extension in a request without a sync block, and in a response.
pub const MAX_LEN: usize = 960;
/// Packet budget per message.
pub const BUDGET: usize = 64 * 1024;
/// Extension entry header: kind and length.
pub const EXT_HEADER: usize = 3;

pub struct Side {
    pub store: MemStore,
    pub index: FingerprintIndex,
}

impl Side {
    pub fn new(messages: &[&StoredMessage]) -> Side {
        Side {
            store: store_of(messages.iter().copied()),
            index: FingerprintIndex::new(COMMUNITY, &simple_policies(), DEFAULT_MAX_BUCKETS),
        }
    }

    pub fn deliver(
        &mut self,
        packets: &[Bytes],
        universe: &BTreeMap<Bytes, StoredMessage>,
    ) -> usize {
        let mut new = 0;
        for p in packets {
            let m = &universe[p];
            if self.store.insert_message(m).unwrap() {
                self.index.on_insert(m.meta, m.global_time, m.digest);
                new += 1;
            }
        }
        new
    }
}

#[derive(Debug, Default)]
pub struct Session {
    pub round_trips: usize,
    pub reconcile_bytes: usize,
    pub packets: usize,
    pub packet_bytes: usize,
    pub duplicates: usize,
}

/// One session: `a` starts, `b` answers; a reply is processed before the packets that follow
/// it are stored, and packets pushed with a request are stored before it is processed.
pub fn session(
    a: &mut Side,
    b: &mut Side,
    config: &Config,
    universe: &BTreeMap<Bytes, StoredMessage>,
) -> Session {
    let mut s = Session::default();
    let mut msg = reconcile::start(&a.store, &mut a.index, config, MAX_LEN).unwrap();
    loop {
        s.round_trips += 1;
        s.reconcile_bytes += msg.encoded_len() + EXT_HEADER;
        assert!(msg.encoded_len() <= MAX_LEN);
        let back = reconcile::process(
            &b.store,
            &mut b.index,
            config,
            &Message::decode(&msg.encode()).unwrap(),
            MAX_LEN,
            BUDGET,
        )
        .unwrap();
        if std::env::var("RECON_TRACE").is_ok() {
            eprintln!(
                "  in {} entries -> B {:?} reply {} entries {} bytes",
                msg.entries().len(),
                back.stats,
                back.reply.entries().len(),
                back.reply.encoded_len()
            );
        }
        assert!(back.bytes <= BUDGET && back.reply.encoded_len() <= MAX_LEN);
        if !back.reply.is_empty() {
            s.reconcile_bytes += back.reply.encoded_len() + EXT_HEADER;
        }
        let out = if back.reply.is_empty() {
            None
        } else {
            let o =
                reconcile::process(&a.store, &mut a.index, config, &back.reply, MAX_LEN, BUDGET)
                    .unwrap();
            if std::env::var("RECON_TRACE").is_ok() {
                eprintln!(
                    "  A {:?} reply {} entries {} bytes",
                    o.stats,
                    o.reply.entries().len(),
                    o.reply.encoded_len()
                );
            }
            Some(o)
        };
        s.packets += back.packets.len();
        s.packet_bytes += back.bytes;
        s.duplicates += back.packets.len() - a.deliver(&back.packets, universe);
        let Some(out) = out else { break };
        s.packets += out.packets.len();
        s.packet_bytes += out.bytes;
        s.duplicates += out.packets.len() - b.deliver(&out.packets, universe);
        if out.reply.is_empty() {
            break;
        }
        msg = out.reply;
    }
    s
}

pub fn universe(messages: &[StoredMessage]) -> BTreeMap<Bytes, StoredMessage> {
    messages
        .iter()
        .map(|m| (m.packet.clone(), m.clone()))
        .collect()
}

/// Two stores of `common + a_only` and `common + b_only` messages.
pub fn pair<R: Rng>(
    common: usize,
    a_only: usize,
    b_only: usize,
    authors: u32,
    rng: &mut R,
) -> (Side, Side, Vec<StoredMessage>) {
    let all = corpus(common + a_only + b_only, authors, 200, rng);
    let mut idx: Vec<usize> = (0..all.len()).collect();
    for i in (1..idx.len()).rev() {
        idx.swap(i, rng.gen_range(0..=i));
    }
    let (a_side, rest) = idx.split_at(a_only);
    let (b_side, _) = rest.split_at(b_only);
    let a: Vec<&StoredMessage> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !b_side.contains(i))
        .map(|(_, m)| m)
        .collect();
    let b: Vec<&StoredMessage> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !a_side.contains(i))
        .map(|(_, m)| m)
        .collect();
    (Side::new(&a), Side::new(&b), all)
}
