//! A small push-pull gossip node: the simulator's test vehicle and speed benchmark.
//!
//! Every `interval` (from a random phase) a peer sends a *request* to a random known peer (half
//! the time one it has heard from directly, which its NAT and theirs let through, otherwise an
//! address it was told about, tried once; now and then, and when it knows nobody, to a
//! tracker): the ids of the items it holds, its
//! newest item in full (push) and a few addresses it knows. The receiver stores what is new,
//! remembers the sender's address, and replies with the items the sender lacks (pull), up to a
//! byte budget, and a few addresses it heard from recently. For each address it hands out it
//! also asks that node to *puncture* towards the requester, as Dispersy's introductions do, so
//! cone NATs let the requester's next packet in. Trackers answer with addresses only. Nodes
//! learn peers only from packets and forget direct contacts after `heard_lifetime`, so NAT
//! filtering and timeouts shape the overlay as they would the real walker's.
//!
//! Wire format (big-endian), first byte the kind:
//! - 1 request: `n u8` addresses of 6 bytes (IPv4, port), `n u16` item ids of 4 bytes,
//!   `n u16` items each `id u32, len u16, len bytes`;
//! - 2 reply: addresses and items as in a request, no ids;
//! - 3 puncture request: one address, to send a puncture to;
//! - 4 puncture: nothing else.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use bytes::{BufMut, Bytes, BytesMut};
use dispersy::time::Instant;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::adapter::{Adapter, AdapterError, ItemId, NodeSpec, Role};
use crate::dist::{SimRng, Span, chance};
use crate::node::{NodeId, SimNode, Transmit};

/// The `nodes.kind` that selects this node in scenario files.
pub const KIND: &str = "toy-gossip";

const REQUEST: u8 = 1;
const REPLY: u8 = 2;
const PUNCTURE_REQUEST: u8 = 3;
const PUNCTURE: u8 = 4;
/// Most items carried in one datagram.
const MAX_ITEMS: usize = 1024;
/// Most bytes of one item.
const MAX_ITEM_LEN: u32 = 1200;
/// Bound on queued outputs; beyond it new ones are dropped (counted).
const MAX_QUEUE: usize = 1024;

/// Settings, from the scenario's `[nodes.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToyConfig {
    /// Time between a peer's gossip rounds.
    pub interval: Span,
    /// Most addresses a node remembers (random replacement beyond).
    pub max_peers: usize,
    /// Addresses shared per message.
    pub share: usize,
    /// Most item ids in a request's digest (newest first).
    pub max_digest: usize,
    /// Probability a round goes to a tracker although peers are known.
    pub tracker_probability: f64,
    /// Most item bytes in one reply.
    pub reply_budget: usize,
    /// How long an address heard from directly stays usable (NATs forget after 30-60 s).
    pub heard_lifetime: Span,
}

impl Default for ToyConfig {
    fn default() -> Self {
        ToyConfig {
            interval: Span::secs(5),
            max_peers: 64,
            share: 2,
            max_digest: 256,
            tracker_probability: 0.05,
            reply_budget: 1200,
            heard_lifetime: Span::millis(55_000),
        }
    }
}

impl ToyConfig {
    /// Reads a configuration from a scenario's opaque table.
    pub fn from_table(table: &toml::Table) -> Result<ToyConfig, AdapterError> {
        let cfg: ToyConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| AdapterError(format!("[nodes.config] for {KIND}: {e}")))?;
        if cfg.interval.0.is_zero()
            || cfg.max_peers == 0
            || cfg.max_peers > 65_535
            || cfg.share > 255
            || cfg.max_digest > MAX_ITEMS
        {
            return Err(AdapterError(format!(
                "[nodes.config] for {KIND}: interval positive, max_peers in 1..=65535, share at most 255, max_digest at most {MAX_ITEMS}"
            )));
        }
        Ok(cfg)
    }
}

/// What a toy node tells its application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyEvent {
    /// The node stored a new item.
    Stored(u32),
}

/// A push-pull gossip node.
#[derive(Debug)]
pub struct ToyNode {
    cfg: ToyConfig,
    tracker: bool,
    me: SocketAddr,
    rng: SimRng,
    trackers: Vec<SocketAddr>,
    /// Addresses learned from others.
    peers: Vec<SocketAddr>,
    /// Addresses heard from directly, and when last.
    heard: Vec<(SocketAddr, Instant)>,
    /// Item id -> payload length.
    items: BTreeMap<u32, u16>,
    newest: Option<u32>,
    out: VecDeque<Transmit>,
    events: VecDeque<ToyEvent>,
    next_round: Option<Instant>,
    /// Datagrams that failed to parse.
    pub malformed: u64,
    /// Outputs dropped because a queue was full.
    pub overflow: u64,
}

impl ToyNode {
    /// A node bound to `me`, built at `now`; trackers never start rounds.
    pub fn new(
        cfg: ToyConfig,
        seed: [u8; 32],
        me: SocketAddr,
        tracker: bool,
        trackers: &[SocketAddr],
        now: Instant,
    ) -> ToyNode {
        let mut rng = SimRng::from_seed(seed);
        let phase = rng.gen_range(0..cfg.interval.as_micros().max(1));
        ToyNode {
            tracker,
            me,
            rng,
            trackers: trackers.to_vec(),
            peers: Vec::new(),
            heard: Vec::new(),
            items: BTreeMap::new(),
            newest: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_round: (!tracker).then(|| Instant::from_micros(now.as_micros() + phase)),
            malformed: 0,
            overflow: 0,
            cfg,
        }
    }

    /// Items held.
    pub fn items(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.keys().copied()
    }

    /// Whether the node holds `item`.
    pub fn holds(&self, item: u32) -> bool {
        self.items.contains_key(&item)
    }

    /// Addresses learned from others.
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// Addresses heard from directly, and when last.
    pub fn heard(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.heard.iter().map(|h| h.0)
    }

    /// Authors an item; false if already held.
    pub fn inject(&mut self, item: u32, size: u32) -> bool {
        self.store(item, size.min(MAX_ITEM_LEN) as u16)
    }

    fn store(&mut self, item: u32, len: u16) -> bool {
        if self.tracker || self.items.insert(item, len).is_some() {
            return false;
        }
        self.newest = Some(self.newest.map_or(item, |n| n.max(item)));
        if self.events.len() < MAX_QUEUE {
            self.events.push_back(ToyEvent::Stored(item));
        } else {
            self.overflow += 1;
        }
        true
    }

    /// Remembers an address someone told us about.
    fn learn(&mut self, addr: SocketAddr) {
        if addr == self.me || self.trackers.contains(&addr) || self.peers.contains(&addr) {
            return;
        }
        if self.peers.len() < self.cfg.max_peers {
            self.peers.push(addr);
        } else {
            let i = self.rng.gen_range(0..self.peers.len());
            self.peers[i] = addr;
        }
    }

    /// Remembers (or refreshes) an address we heard from.
    fn heard_from(&mut self, addr: SocketAddr, now: Instant) {
        if self.trackers.contains(&addr) {
            return;
        }
        if let Some(h) = self.heard.iter_mut().find(|h| h.0 == addr) {
            h.1 = now;
        } else if self.heard.len() < self.cfg.max_peers {
            self.heard.push((addr, now));
        } else {
            let i = self.rng.gen_range(0..self.heard.len());
            self.heard[i] = (addr, now);
        }
    }

    fn send(&mut self, destination: SocketAddr, contents: Bytes) {
        if self.out.len() < MAX_QUEUE {
            self.out.push_back(Transmit {
                destination,
                contents,
            });
        } else {
            self.overflow += 1;
        }
    }

    /// Shares a few addresses heard from recently (known alive and reachable); returns them.
    fn put_peers(&mut self, buf: &mut BytesMut, except: Option<SocketAddr>) -> Vec<SocketAddrV4> {
        let mut v4 = Vec::new();
        for _ in 0..self.cfg.share.min(self.heard.len()) {
            let pick = self.heard[self.rng.gen_range(0..self.heard.len())].0;
            if let SocketAddr::V4(a) = pick
                && Some(pick) != except
                && !v4.contains(&a)
            {
                v4.push(a);
            }
        }
        buf.put_u8(v4.len() as u8);
        for a in &v4 {
            put_addr(buf, *a);
        }
        v4
    }

    fn put_item(buf: &mut BytesMut, id: u32, len: u16) {
        buf.put_u32(id);
        buf.put_u16(len);
        // Content is a function of the id so duplicates are identical.
        buf.put_bytes(id as u8, usize::from(len));
    }

    fn round(&mut self, now: Instant) {
        let lifetime = self.cfg.heard_lifetime.0;
        self.heard
            .retain(|h| now.saturating_duration_since(h.1) < lifetime);
        let known = self.peers.len() + self.heard.len();
        let rng = &mut self.rng;
        let target = if known == 0 || chance(rng, self.cfg.tracker_probability) {
            if self.trackers.is_empty() {
                return;
            }
            self.trackers[rng.gen_range(0..self.trackers.len())]
        } else if self.peers.is_empty() || (!self.heard.is_empty() && rng.r#gen::<bool>()) {
            self.heard[rng.gen_range(0..self.heard.len())].0
        } else {
            // Tried once: if it answers it is heard from; if not, it is forgotten.
            self.peers.swap_remove(rng.gen_range(0..self.peers.len()))
        };
        let mut buf = BytesMut::with_capacity(64 + 4 * self.items.len().min(self.cfg.max_digest));
        buf.put_u8(REQUEST);
        self.put_peers(&mut buf, Some(target));
        let digest = self.items.len().min(self.cfg.max_digest);
        buf.put_u16(digest as u16);
        for id in self.items.keys().rev().take(digest) {
            buf.put_u32(*id);
        }
        match self
            .newest
            .and_then(|id| self.items.get(&id).map(|len| (id, *len)))
        {
            Some((id, len)) => {
                buf.put_u16(1);
                Self::put_item(&mut buf, id, len);
            }
            None => buf.put_u16(0),
        }
        self.send(target, buf.freeze());
    }

    fn handle(&mut self, now: Instant, from: SocketAddr, mut r: Reader<'_>) -> Option<()> {
        let kind = r.u8()?;
        match kind {
            PUNCTURE_REQUEST => {
                let target = r.addr()?;
                r.is_empty().then_some(())?;
                self.send(SocketAddr::V4(target), Bytes::from_static(&[PUNCTURE]));
                return Some(());
            }
            PUNCTURE => {
                r.is_empty().then_some(())?;
                self.heard_from(from, now);
                return Some(());
            }
            REQUEST | REPLY => {}
            _ => return None,
        }
        let mut learned = Vec::new();
        for _ in 0..r.u8()? {
            learned.push(SocketAddr::V4(r.addr()?));
        }
        let mut digest = Vec::new();
        if kind == REQUEST {
            let n = usize::from(r.u16()?);
            if n > MAX_ITEMS {
                return None;
            }
            for _ in 0..n {
                digest.push(r.u32()?);
            }
        }
        let n = usize::from(r.u16()?);
        let mut got = Vec::new();
        for _ in 0..n.min(MAX_ITEMS) {
            let id = r.u32()?;
            let len = r.u16()?;
            r.skip(usize::from(len))?;
            got.push((id, len));
        }
        if !r.is_empty() {
            return None;
        }
        for (id, len) in got {
            self.store(id, len);
        }
        for a in learned {
            self.learn(a);
        }
        self.heard_from(from, now);
        if kind == REQUEST {
            digest.sort_unstable();
            self.reply(from, &digest);
        }
        Some(())
    }

    /// Answers a request: addresses, each asked to puncture towards the requester, and the
    /// items the requester lacks.
    /// `digest` is sorted.
    fn reply(&mut self, to: SocketAddr, digest: &[u32]) {
        let mut buf = BytesMut::with_capacity(256);
        buf.put_u8(REPLY);
        let introduced = self.put_peers(&mut buf, Some(to));
        // Missing items in random order, so that old items do not always win the budget.
        let mut missing: Vec<(u32, u16)> = self
            .items
            .iter()
            .filter(|(id, _)| digest.binary_search(id).is_err())
            .map(|(&id, &len)| (id, len))
            .collect();
        missing.shuffle(&mut self.rng);
        let mut bytes = 0;
        let fits = missing
            .iter()
            .take(MAX_ITEMS)
            .take_while(|(_, len)| {
                bytes += usize::from(*len) + 6;
                bytes <= self.cfg.reply_budget
            })
            .count();
        buf.put_u16(fits as u16);
        for &(id, len) in &missing[..fits] {
            Self::put_item(&mut buf, id, len);
        }
        self.send(to, buf.freeze());
        if let SocketAddr::V4(requester) = to {
            for peer in introduced {
                let mut p = BytesMut::with_capacity(7);
                p.put_u8(PUNCTURE_REQUEST);
                put_addr(&mut p, requester);
                self.send(SocketAddr::V4(peer), p.freeze());
            }
        }
    }

    /// The node after a restart: same settings, new randomness, knows only the trackers,
    /// keeps its items if `keep_state`.
    pub fn restarted(self, seed: [u8; 32], keep_state: bool, now: Instant) -> ToyNode {
        let mut fresh = ToyNode::new(self.cfg, seed, self.me, self.tracker, &self.trackers, now);
        if keep_state {
            fresh.items = self.items;
            fresh.newest = self.newest;
        }
        fresh
    }
}

impl SimNode for ToyNode {
    type Event = ToyEvent;

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, contents: Bytes) {
        if self.handle(now, from, Reader(&contents)).is_none() {
            self.malformed += 1;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.next_round.filter(|t| *t <= now) {
            self.round(now);
            self.next_round = Some(t + self.cfg.interval.0);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<ToyEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.next_round
    }
}

fn put_addr(buf: &mut BytesMut, a: SocketAddrV4) {
    buf.put_slice(&a.ip().octets());
    buf.put_u16(a.port());
}

/// Bounds-checked big-endian reads.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    fn addr(&mut self) -> Option<SocketAddrV4> {
        let ip = Ipv4Addr::from(self.u32()?);
        Some(SocketAddrV4::new(ip, self.u16()?))
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Builds [`ToyNode`]s for scenarios with `kind = "toy-gossip"`.
#[derive(Debug)]
pub struct ToyAdapter {
    cfg: ToyConfig,
    injected: u32,
}

impl ToyAdapter {
    /// An adapter with the scenario's `[nodes.config]`.
    pub fn new(table: &toml::Table) -> Result<ToyAdapter, AdapterError> {
        Ok(ToyAdapter {
            cfg: ToyConfig::from_table(table)?,
            injected: 0,
        })
    }
}

impl Adapter for ToyAdapter {
    type Node = ToyNode;

    fn build(&mut self, spec: &NodeSpec<'_>) -> Result<ToyNode, AdapterError> {
        Ok(ToyNode::new(
            self.cfg.clone(),
            spec.ctx.seed,
            spec.ctx.local_addr,
            spec.role == Role::Tracker,
            spec.trackers,
            spec.now,
        ))
    }

    fn restart(&mut self, spec: &NodeSpec<'_>, old: ToyNode, keep_state: bool) -> ToyNode {
        old.restarted(spec.ctx.seed, keep_state, spec.now)
    }

    fn inject(
        &mut self,
        _: Instant,
        _: NodeId,
        node: &mut ToyNode,
        item: ItemId,
        size: u32,
    ) -> bool {
        self.injected = self.injected.max(item.0 + 1);
        node.inject(item.0, size)
    }

    fn on_event(&mut self, _: Instant, _: NodeId, event: ToyEvent) -> Option<ItemId> {
        match event {
            ToyEvent::Stored(id) => Some(ItemId(id)),
        }
    }

    fn check(&mut self, _: Instant, _: NodeId, node: &ToyNode) -> Result<(), String> {
        if let Some(bad) = node.items().find(|&i| i >= self.injected) {
            return Err(format!("holds item {bad} that was never injected"));
        }
        if node.peers.len().max(node.heard.len()) > self.cfg.max_peers {
            return Err("peer lists exceed their bound".into());
        }
        if node.malformed > 0 {
            return Err(format!(
                "{} malformed datagrams between toy nodes",
                node.malformed
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, i), 7759))
    }

    fn node(i: u8, tracker: bool) -> ToyNode {
        ToyNode::new(
            ToyConfig::default(),
            [i; 32],
            addr(i),
            tracker,
            &[addr(1)],
            Instant::ZERO,
        )
    }

    #[test]
    fn request_reply_exchange_items_both_ways() {
        let (mut a, mut b) = (node(2, false), node(3, false));
        a.inject(1, 10);
        b.inject(2, 10);
        b.inject(3, 10);
        a.heard.push((addr(3), Instant::ZERO));
        a.tracker_probability_off();
        let t = a.poll_timeout().unwrap();
        a.handle_timeout(t);
        let req = a.poll_transmit().unwrap();
        assert_eq!(req.destination, addr(3));
        b.handle_datagram(t, addr(2), req.contents);
        assert!(b.holds(1), "pushed");
        let rep = b.poll_transmit().unwrap();
        a.handle_datagram(t, addr(3), rep.contents);
        assert_eq!(a.items().collect::<Vec<_>>(), [1, 2, 3], "pulled");
        assert_eq!(b.heard().collect::<Vec<_>>(), [addr(2)]);
        assert_eq!(a.heard().collect::<Vec<_>>(), [addr(3)]);
        assert_eq!(a.malformed + b.malformed, 0);
    }

    #[test]
    fn trackers_only_introduce() {
        let mut t = node(1, true);
        assert_eq!(t.poll_timeout(), None);
        let mut p = node(2, false);
        p.inject(9, 5);
        let at = p.poll_timeout().unwrap();
        p.handle_timeout(at);
        let req = p.poll_transmit().unwrap();
        assert_eq!(req.destination, addr(1));
        t.handle_datagram(at, addr(2), req.contents);
        assert!(!t.holds(9));
        assert_eq!(t.heard().collect::<Vec<_>>(), [addr(2)]);
    }

    #[test]
    fn hostile_datagrams_are_counted_not_fatal() {
        let mut n = node(2, false);
        for junk in [
            &[][..],
            &[9],
            &[1, 200],
            &[1, 0, 0xff, 0xff],
            &[2, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff],
            &[2, 0, 0, 0, 7],
        ] {
            n.handle_datagram(Instant::ZERO, addr(5), Bytes::copy_from_slice(junk));
        }
        assert_eq!(n.malformed, 6);
        assert!(n.poll_transmit().is_none());
    }

    impl ToyNode {
        fn tracker_probability_off(&mut self) {
            self.cfg.tracker_probability = 0.0;
        }
    }
}
