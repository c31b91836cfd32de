//! Range-based set reconciliation of nearly equal stores, carried in the `RECONCILE`
//! extension (see `docs/sync.md` for the design and the measured figures).
//!
//! Two nodes that share 100,000 messages and differ by a handful should not trade a Bloom
//! filter for each of ~120 ranges. Instead they compare fingerprints (count and digest sum) of
//! global-time ranges, split the ranges that differ, and swap key lists once a range is small:
//!
//! 1. The initiator sends fingerprints of its whole global-time span cut into equal-count
//!    ranges, plus an empty fingerprint for everything above its newest message ([`start`]).
//! 2. Each side answers a message with [`process`], the same function on both sides: for every
//!    entry it compares, and
//!    - equal fingerprints: nothing;
//!    - one side holds nothing there: the other sends what it has (within its byte budget);
//!    - counts differ by one and the digest-sum difference names exactly one of our messages:
//!      we send it; counts differ by one the other way: we ask for it by key (`Need`);
//!    - a small range (at most `ids_threshold` of ours, or a single global time): our key list
//!      (`Ids`), which the other side answers with packets and a `Need` list;
//!    - otherwise the range is split in `branch` parts, each with our fingerprint.
//! 3. The session ends when a message has no entries; the round counter bounds its length.
//!
//! The responder is stateless: everything it needs is in the message, and it answers from its
//! store and [`FingerprintIndex`]. Work per message is bounded (entries, keys listed, reply
//! bytes, packet budget). Whatever does not fit is deferred (the range's fingerprint goes back
//! so the other side carries on next round) or left to the next session and to Bloom sync, which
//! remains the safety net for digest collisions and lost datagrams.

pub mod wire;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

pub use wire::{Entry, Message, Mode};

use super::FingerprintIndex;
use crate::bloom::BloomFilter;
use crate::ids::GlobalTime;
use crate::store::{Fingerprint, Order, Store, StoreError, StoredMessage};

/// Reconciliation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Parts a differing range is split into.
    pub branch: usize,
    /// A differing range where we hold at most this many messages is answered with our keys.
    pub ids_threshold: u64,
    /// Keys listed for a single global time (which cannot be split) at most.
    pub max_ids: u64,
    /// Stored messages listed per message processed (key lists, single-difference searches).
    pub max_scan: usize,
    /// Entries of an incoming message processed at most (the rest are dropped).
    pub max_entries: usize,
    /// A session ends at this round.
    pub max_round: u8,
    /// Ranges in the first message at most.
    pub start_parts: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            branch: 16,
            ids_threshold: 64,
            max_ids: 1024,
            max_scan: 16 * 1024,
            max_entries: 512,
            max_round: 24,
            start_parts: 128,
        }
    }
}

/// What processing one message did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ranges found equal.
    pub equal: u32,
    /// Ranges found different.
    pub differing: u32,
    /// Single differences resolved by the digest sum.
    pub single: u32,
    /// Ranges split.
    pub split: u32,
    /// Key lists sent.
    pub ids: u32,
    /// Keys asked for.
    pub needed: u32,
    /// Bloom filters sent (for ranges whose keys do not fit).
    pub blooms: u32,
    /// Ranges handed back unresolved for lack of budget or scan allowance.
    pub deferred: u32,
    /// Ranges given up (reply full, unsplittable, or past the round limit).
    pub dropped: u32,
}

/// The answer to a message: the reply (empty ends the session) and the packets to send.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The reply message.
    pub reply: Message,
    /// Packets the other side lacks, each its own datagram.
    pub packets: Vec<Bytes>,
    /// Their total size.
    pub bytes: usize,
    /// What happened.
    pub stats: Stats,
    /// The fingerprint ranges found different, in order.
    pub differing: Vec<(GlobalTime, GlobalTime)>,
    /// Sum over compared fingerprint ranges of the larger of the two counts.
    pub compared: u64,
    /// Sum over differing ranges of the count differences: a lower bound on the number of
    /// messages one side lacks.
    pub delta: u64,
}

/// At least this many messages known to differ before Bloom sync is preferred.
const BLOOM_MIN_DELTA: u64 = 1_000;

impl Outcome {
    /// Whether the sets provably differ by at least 1,000 messages and 5 % of those compared.
    /// Reconciliation spends about 100 bytes and a fraction of a round trip per difference;
    /// Bloom-filter sync about 1.2 bytes per message *held* in the range plus parallel round
    /// trips, which wins only for differences this large. The node should then end the session
    /// and fetch [`Outcome::differing`] with Bloom-filter sync ([`crate::sync::Catchup::fetch`]);
    /// the other side does the same when it initiates.
    pub fn prefer_bloom(&self) -> bool {
        self.delta >= BLOOM_MIN_DELTA && self.delta.saturating_mul(20) >= self.compared
    }
}

/// Estimated bytes of one fingerprint entry (gap, width, mode, count, sum).
const ENTRY_ESTIMATE: usize = 12;

fn key(m: &StoredMessage) -> u32 {
    m.digest as u32
}

fn entry(low: GlobalTime, high: GlobalTime, mode: Mode) -> Entry {
    Entry { low, high, mode }
}

fn fp_mode(fp: Fingerprint) -> Mode {
    Mode::Fingerprint {
        count: fp.count,
        sum: fp.sum as u32,
    }
}

/// A 1 % Bloom filter of `items` (salted by the round and the range's digest sum, so the next
/// session hides other false positives once anything changed), as an entry mode.
fn bloom_of(items: &[StoredMessage], fp: Fingerprint, round: u8, answer: bool) -> Option<Mode> {
    let prefix = (fp.sum as u8) ^ round;
    let mut b = BloomFilter::with_capacity(0.01, (items.len() as u64).max(1), Some(prefix)).ok()?;
    for m in items {
        b.add(&m.packet);
    }
    Some(Mode::Bloom {
        functions: u8::try_from(b.functions()).ok()?,
        prefix,
        answer,
        bits: b.as_bytes().to_vec(),
    })
}

/// The first message of a session: our fingerprints over our whole span, in as many
/// equal-count ranges as fit `max_len` bytes.
pub fn start<S: Store + ?Sized>(
    store: &S,
    index: &mut FingerprintIndex,
    config: &Config,
    max_len: usize,
) -> Result<Message, StoreError> {
    let max = store.max_global_time(&index.community())?;
    let mut parts = (max_len.saturating_sub(wire::HEADER_LEN + ENTRY_ESTIMATE) / ENTRY_ESTIMATE)
        .clamp(1, config.start_parts.max(1));
    loop {
        let mut m = Message::new(0);
        let mut ranges = if max >= GlobalTime(1) {
            index.split(store, GlobalTime(1), max, parts)?
        } else {
            Vec::new()
        };
        if max < GlobalTime::MAX {
            ranges.push((max.next().max(GlobalTime(1)), GlobalTime::MAX));
        }
        let mut fits = true;
        for (lo, hi) in ranges {
            let fp = index.fingerprint(store, lo, hi)?;
            fits &= m.push(entry(lo, hi, fp_mode(fp)), max_len);
        }
        if fits || parts == 1 {
            return Ok(m);
        }
        parts = parts * 3 / 4;
    }
}

struct Step<'a, S: Store + ?Sized> {
    store: &'a S,
    index: &'a mut FingerprintIndex,
    config: &'a Config,
    max_len: usize,
    budget: usize,
    scan_left: usize,
    round: u8,
    /// Which of our messages may be sent.
    servable: &'a dyn Fn(&StoredMessage) -> bool,
    /// Set when the reply or the packet budget ran out: everything from here on goes back as
    /// one fingerprint, so the other side carries on next round instead of losing it.
    tail: Option<GlobalTime>,
    out: Outcome,
}

/// Room kept in every reply for the tail entry (the largest fingerprint entry).
const TAIL_RESERVE: usize = 35;

impl<S: Store + ?Sized> Step<'_, S> {
    fn limit(&self) -> usize {
        self.max_len.saturating_sub(TAIL_RESERVE)
    }

    /// Stops answering in detail from `from` on.
    fn overflow(&mut self, from: GlobalTime) {
        if self.tail.is_none() {
            self.tail = Some(from);
        }
    }

    fn fingerprint(&mut self, lo: GlobalTime, hi: GlobalTime) -> Result<Fingerprint, StoreError> {
        self.index.fingerprint(self.store, lo, hi)
    }

    /// Our messages in the range, ascending, if listing `count` of them fits the allowance.
    fn list(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        count: u64,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let Ok(n) = usize::try_from(count) else {
            return Ok(None);
        };
        if n > self.scan_left {
            return Ok(None);
        }
        let items = self.prefix(lo, hi, n)?;
        Ok(Some(items))
    }

    /// Up to `n` of our messages from the bottom of the range.
    fn prefix(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        n: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let n = n.min(self.scan_left);
        let items = self.store.range(
            &self.index.community(),
            &super::query(self.index.metas(), lo, hi, Order::Ascending, n),
        )?;
        self.scan_left -= items.len();
        Ok(items)
    }

    /// Queues a packet for the other side; `false` when the budget is spent. A message the
    /// caller's test refuses is skipped (the range stays different; Bloom sync does the same).
    fn send(&mut self, m: &StoredMessage) -> bool {
        if !(self.servable)(m) {
            return true;
        }
        let len = m.packet.len();
        if self.out.bytes + len > self.budget {
            return false;
        }
        self.out.bytes += len;
        self.out.packets.push(m.packet.clone());
        true
    }

    /// Appends a reply entry; when it does not fit, the rest of the message from its range on
    /// becomes the tail.
    fn reply(&mut self, e: Entry) -> bool {
        if self.tail.is_some() {
            return false;
        }
        let low = e.low;
        let ok = self.out.reply.push(e, self.limit());
        if !ok {
            self.overflow(low);
        }
        ok
    }

    /// Hands a range back unresolved, with our fingerprint, for the next round.
    fn defer(&mut self, lo: GlobalTime, hi: GlobalTime, fp: Fingerprint) {
        self.out.stats.deferred += 1;
        self.reply(entry(lo, hi, fp_mode(fp)));
    }

    /// Children fingerprints of a differing range (or the range's own when they do not fit).
    fn split(&mut self, lo: GlobalTime, hi: GlobalTime, fp: Fingerprint) -> Result<(), StoreError> {
        let parts = if lo < hi {
            self.index.split(self.store, lo, hi, self.config.branch)?
        } else {
            Vec::new()
        };
        if parts.len() < 2 {
            // All our messages in the range share one global time: only keys can settle it.
            return self.keys(lo, hi, fp, self.config.max_ids);
        }
        let mut children = Vec::with_capacity(parts.len());
        for (a, b) in parts {
            let f = self.fingerprint(a, b)?;
            children.push(entry(a, b, fp_mode(f)));
        }
        let mut probe = self.out.reply.clone();
        let limit = self.limit();
        if children.into_iter().all(|c| probe.push(c, limit)) {
            self.out.reply = probe;
            self.out.stats.split += 1;
        } else {
            self.defer(lo, hi, fp);
        }
        Ok(())
    }

    /// Our keys of the range, when we hold at most `max` there; a Bloom filter of them when the
    /// keys do not fit the reply (a crowded global time), so the range still settles.
    fn keys(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        fp: Fingerprint,
        max: u64,
    ) -> Result<(), StoreError> {
        if fp.count > max {
            self.out.stats.dropped += 1;
            return Ok(());
        }
        let Some(items) = self.list(lo, hi, fp.count)? else {
            self.defer(lo, hi, fp);
            return Ok(());
        };
        let ids = entry(lo, hi, Mode::Ids(items.iter().map(key).collect()));
        if self.fits(&ids) {
            self.reply(ids);
            self.out.stats.ids += 1;
            return Ok(());
        }
        match bloom_of(&items, fp, self.round, true) {
            Some(b) if self.fits(&entry(lo, hi, b.clone())) => {
                self.reply(entry(lo, hi, b));
                self.out.stats.blooms += 1;
            }
            // Not even a filter fits an empty reply: leave it to Bloom-filter sync.
            _ if self.out.reply.is_empty() => self.out.stats.dropped += 1,
            _ => self.overflow(lo),
        }
        Ok(())
    }

    fn fits(&self, e: &Entry) -> bool {
        self.tail.is_none()
            && self
                .out
                .reply
                .cost(e)
                .is_some_and(|c| self.out.reply.encoded_len() + c <= self.limit())
    }

    /// The other side's filter of a range: send what it lacks, and our filter back if asked.
    fn on_bloom(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        filter: &BloomFilter,
        answer: bool,
    ) -> Result<(), StoreError> {
        let mine = self.fingerprint(lo, hi)?;
        let Some(items) = self.list(lo, hi, mine.count)? else {
            return self.split(lo, hi, mine);
        };
        for m in items.iter().filter(|m| !filter.contains(&m.packet)) {
            if !self.send(m) {
                self.overflow(lo);
                return Ok(());
            }
        }
        if answer {
            match bloom_of(&items, mine, self.round, false) {
                Some(b) if self.fits(&entry(lo, hi, b.clone())) => {
                    self.reply(entry(lo, hi, b));
                    self.out.stats.blooms += 1;
                }
                _ => self.out.stats.dropped += 1,
            }
        }
        Ok(())
    }

    /// A range that differs in more than one message: keys when small, else split.
    fn general(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        fp: Fingerprint,
    ) -> Result<(), StoreError> {
        if fp.count <= self.config.ids_threshold {
            self.keys(lo, hi, fp, self.config.ids_threshold)
        } else {
            self.split(lo, hi, fp)
        }
    }

    /// Sends our messages of a range the other side holds none of, from the bottom up; what the
    /// budget or the scan allowance leaves over becomes the tail, so the other side asks again.
    fn send_all(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        fp: Fingerprint,
    ) -> Result<(), StoreError> {
        let want = usize::try_from(fp.count).unwrap_or(usize::MAX);
        let items = self.prefix(lo, hi, want)?;
        for m in &items {
            if !self.send(m) {
                self.overflow(m.global_time);
                return Ok(());
            }
        }
        if items.len() < want {
            // Cut short by the scan allowance, perhaps inside a global time: resume at it.
            self.overflow(items.last().map_or(lo, |m| m.global_time));
        }
        Ok(())
    }

    /// Compares a fingerprint with ours; `true` when they differ.
    fn compare(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        count: u64,
        sum: u32,
    ) -> Result<(bool, Fingerprint), StoreError> {
        let mine = self.fingerprint(lo, hi)?;
        self.out.compared = self.out.compared.saturating_add(mine.count.max(count));
        if mine.count == count && mine.sum as u32 == sum {
            self.out.stats.equal += 1;
            return Ok((false, mine));
        }
        self.out.stats.differing += 1;
        self.out.differing.push((lo, hi));
        self.out.delta = self.out.delta.saturating_add(mine.count.abs_diff(count));
        Ok((true, mine))
    }

    fn on_fingerprint(
        &mut self,
        lo: GlobalTime,
        hi: GlobalTime,
        count: u64,
        sum: u32,
    ) -> Result<(), StoreError> {
        let (differ, mine) = self.compare(lo, hi, count, sum)?;
        if !differ {
            return Ok(());
        }
        let my_sum = mine.sum as u32;
        if count == 0 {
            return self.send_all(lo, hi, mine);
        }
        if mine.count == 0 {
            self.reply(entry(lo, hi, Mode::Ids(Vec::new())));
            self.out.stats.ids += 1;
            return Ok(());
        }
        let one_extra = mine.count == count.wrapping_add(1);
        if let Some(items) = one_extra
            .then(|| self.list(lo, hi, mine.count))
            .transpose()?
            .flatten()
        {
            let want = my_sum.wrapping_sub(sum);
            let mut hits = items.iter().filter(|m| key(m) == want);
            if let (Some(m), None) = (hits.next(), hits.next()) {
                if self.send(m) {
                    self.out.stats.single += 1;
                } else {
                    self.overflow(lo);
                }
                return Ok(());
            }
        }
        if count == mine.count.wrapping_add(1) {
            if self.reply(entry(lo, hi, Mode::Need(vec![sum.wrapping_sub(my_sum)]))) {
                self.out.stats.needed += 1;
            }
            return Ok(());
        }
        self.general(lo, hi, mine)
    }

    fn on_ids(&mut self, lo: GlobalTime, hi: GlobalTime, theirs: &[u32]) -> Result<(), StoreError> {
        let mine = self.fingerprint(lo, hi)?;
        let Some(items) = self.list(lo, hi, mine.count)? else {
            return self.split(lo, hi, mine);
        };
        let theirs: BTreeSet<u32> = theirs.iter().copied().collect();
        for m in items.iter().filter(|m| !theirs.contains(&key(m))) {
            if !self.send(m) {
                self.overflow(lo);
                return Ok(());
            }
        }
        let ours: BTreeSet<u32> = items.iter().map(key).collect();
        let mut need: Vec<u32> = theirs.difference(&ours).copied().collect();
        if need.is_empty() {
            return Ok(());
        }
        // Ask for as many as fit; the rest shows up again as a difference next round.
        while !need.is_empty() {
            let e = entry(lo, hi, Mode::Need(need.clone()));
            if self
                .out
                .reply
                .cost(&e)
                .is_some_and(|c| self.out.reply.encoded_len() + c <= self.limit())
            {
                self.out.stats.needed += need.len() as u32;
                self.reply(e);
                return Ok(());
            }
            need.truncate(need.len() / 2);
        }
        self.overflow(lo);
        Ok(())
    }

    fn on_need(&mut self, lo: GlobalTime, hi: GlobalTime, keys: &[u32]) -> Result<(), StoreError> {
        let mine = self.fingerprint(lo, hi)?;
        let Some(items) = self.list(lo, hi, mine.count)? else {
            return self.split(lo, hi, mine);
        };
        let mut by_key: BTreeMap<u32, Vec<&StoredMessage>> = BTreeMap::new();
        for m in &items {
            by_key.entry(key(m)).or_default().push(m);
        }
        let mut missing = false;
        for k in keys {
            match by_key.get(k) {
                Some(ms) => {
                    for m in ms {
                        if !self.send(m) {
                            self.overflow(lo);
                            return Ok(());
                        }
                    }
                }
                None => missing = true,
            }
        }
        // A key we do not have: the single-difference guess was wrong, keep narrowing.
        if missing {
            self.general(lo, hi, mine)?;
        }
        Ok(())
    }
}

/// Answers a reconciliation message from `store`: the reply (at most `max_len` bytes) and the
/// packets the other side lacks (at most `budget` bytes: pass the walker's allowance).
pub fn process<S: Store + ?Sized>(
    store: &S,
    index: &mut FingerprintIndex,
    config: &Config,
    incoming: &Message,
    max_len: usize,
    budget: usize,
) -> Result<Outcome, StoreError> {
    process_with(store, index, config, incoming, max_len, budget, &|_| true)
}

/// [`process`], sending only the messages `servable` accepts.
pub fn process_with<S: Store + ?Sized>(
    store: &S,
    index: &mut FingerprintIndex,
    config: &Config,
    incoming: &Message,
    max_len: usize,
    budget: usize,
    servable: &dyn Fn(&StoredMessage) -> bool,
) -> Result<Outcome, StoreError> {
    let mut step = Step {
        servable,
        store,
        index,
        config,
        max_len,
        budget,
        scan_left: config.max_scan,
        round: incoming.round,
        tail: None,
        out: Outcome {
            reply: Message::new(incoming.round.saturating_add(1)),
            ..Outcome::default()
        },
    };
    if incoming.round >= config.max_round {
        step.out.stats.dropped = incoming.entries().len() as u32;
        return Ok(step.out);
    }
    let entries = incoming.entries();
    for (i, e) in entries.iter().enumerate() {
        if i >= config.max_entries {
            step.overflow(e.low);
            break;
        }
        if step.tail.is_some() {
            // Past the tail only compare, so `differing` tells the node how dense the
            // differences are.
            if let Mode::Fingerprint { count, sum } = e.mode {
                step.compare(e.low, e.high, count, sum)?;
            }
            continue;
        }
        match &e.mode {
            Mode::Fingerprint { count, sum } => step.on_fingerprint(e.low, e.high, *count, *sum)?,
            Mode::Ids(keys) => step.on_ids(e.low, e.high, keys)?,
            Mode::Need(keys) => step.on_need(e.low, e.high, keys)?,
            Mode::Bloom {
                functions,
                prefix,
                answer,
                bits,
            } => match BloomFilter::from_bytes(bits, u32::from(*functions), Some(*prefix)) {
                Ok(filter) => step.on_bloom(e.low, e.high, &filter, *answer)?,
                // A filter no one can build (hostile functions count): ignore the entry.
                Err(_) => step.out.stats.dropped += 1,
            },
        }
    }
    if let (Some(from), Some(last)) = (step.tail, entries.last()) {
        // Everything not answered in detail, as one range: the other side splits it again.
        let fp = step.fingerprint(from, last.high)?;
        step.out.stats.deferred += 1;
        if !step
            .out
            .reply
            .push(entry(from, last.high, fp_mode(fp)), max_len)
        {
            step.out.stats.dropped += 1;
        }
    }
    Ok(step.out)
}

#[cfg(test)]
mod tests;
