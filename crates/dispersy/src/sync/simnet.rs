//! A small discrete-event network for sync tests: one requester, some responders, links with
//! delay, rate, a drop-tail queue and random loss, and a CPU cost per message at the
//! requester. Everything runs on virtual time through the sync functions alone (no node).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catchup::{self, Catchup, RequestId};
use super::hello::SyncSummary;
use super::requester::{Requester, RequesterConfig};
use super::respond::{DEFAULT_MAX_BUDGET, Limits, respond};
use super::strategy::ClaimInput;
use super::testkit::{COMMUNITY, simple_policies};
use crate::ids::GlobalTime;
use crate::store::{MemStore, Store, StoredMessage};
use crate::time::Instant;
use crate::wire::builtin::SyncBlock;

/// Bytes of an introduction-request with a full filter.
pub const REQUEST_LEN: usize = 1_232;
/// Bytes of an introduction-response with a summary.
pub const RESPONSE_LEN: usize = 240;

/// One direction of a link.
#[derive(Debug, Clone)]
pub struct Wire {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Bytes per second.
    pub rate: u64,
    /// Bytes the bottleneck queue holds.
    pub queue: usize,
    /// Random loss probability.
    pub loss: f64,
    busy_until: Instant,
}

impl Wire {
    pub fn new(delay: Duration, rate: u64, queue: usize, loss: f64) -> Wire {
        Wire {
            delay,
            rate,
            queue,
            loss,
            busy_until: Instant::ZERO,
        }
    }

    /// When a datagram of `len` bytes sent now arrives, or `None` when it is lost.
    fn send(&mut self, now: Instant, len: usize, rng: &mut ChaCha8Rng) -> Option<Instant> {
        let backlog = self.busy_until.saturating_duration_since(now);
        let queued = backlog.as_secs_f64() * self.rate as f64;
        if queued + len as f64 > self.queue as f64 {
            return None;
        }
        let start = self.busy_until.max(now);
        self.busy_until = start + Duration::from_secs_f64(len as f64 / self.rate as f64);
        if rng.r#gen::<f64>() < self.loss {
            return None;
        }
        Some(self.busy_until + self.delay)
    }
}

/// A responder.
pub struct Peer {
    pub addr: SocketAddr,
    pub store: MemStore,
    pub up: Wire,
    pub down: Wire,
    cpu: Instant,
}

impl Peer {
    pub fn new(i: u8, store: MemStore, up: Wire, down: Wire) -> Peer {
        Peer {
            addr: SocketAddr::from(([192, 0, 2, i], 7000)),
            store,
            up,
            down,
            cpu: Instant::ZERO,
        }
    }
}

/// CPU costs of the model.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    /// Verifying and storing one message at the requester.
    pub ingest: Duration,
    /// Hashing one message into or against a filter.
    pub hash: Duration,
}

enum Event {
    Request {
        peer: usize,
        id: Option<RequestId>,
        block: SyncBlock,
        budget: u64,
    },
    Response {
        id: Option<RequestId>,
        summary: SyncSummary,
    },
    Packet {
        peer: usize,
        packet: Bytes,
    },
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Virtual time when the requester had stored everything it got.
    pub finished: Duration,
    /// Messages the requester stored.
    pub stored: usize,
    /// Requests sent.
    pub requests: usize,
    /// Message packets delivered (including duplicates).
    pub packets: usize,
    /// Duplicates among them.
    pub duplicates: usize,
    /// Bytes the responders sent (responses and packets).
    pub down_bytes: usize,
}

/// The network: a requester and its responders.
pub struct Net {
    pub now: Instant,
    pub store: MemStore,
    pub peers: Vec<Peer>,
    universe: BTreeMap<Bytes, StoredMessage>,
    events: BinaryHeap<Reverse<(Instant, u64)>>,
    bodies: BTreeMap<u64, Event>,
    seq: u64,
    cpu: Instant,
    costs: Costs,
    pub rng: ChaCha8Rng,
    pub report: Report,
}

impl Net {
    pub fn new(
        store: MemStore,
        peers: Vec<Peer>,
        universe: &[StoredMessage],
        costs: Costs,
        rng: ChaCha8Rng,
    ) -> Net {
        Net {
            now: Instant::ZERO,
            store,
            peers,
            universe: universe
                .iter()
                .map(|m| (m.packet.clone(), m.clone()))
                .collect(),
            events: BinaryHeap::new(),
            bodies: BTreeMap::new(),
            seq: 0,
            cpu: Instant::ZERO,
            costs,
            rng,
            report: Report::default(),
        }
    }

    fn push(&mut self, at: Instant, e: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq)));
        self.bodies.insert(self.seq, e);
    }

    fn next_at(&self) -> Option<Instant> {
        self.events.peek().map(|Reverse((t, _))| *t)
    }

    fn pop(&mut self) -> Option<Event> {
        let Reverse((t, seq)) = self.events.pop()?;
        self.now = t;
        self.bodies.remove(&seq)
    }

    fn send_request(
        &mut self,
        peer: usize,
        id: Option<RequestId>,
        block: SyncBlock,
        budget: u64,
        items: usize,
    ) {
        self.report.requests += 1;
        // Building the filter costs the requester's CPU.
        self.cpu = self.cpu.max(self.now) + self.costs.hash * items as u32;
        let at = self.cpu.max(self.now);
        if let Some(t) = self.peers[peer].up.send(at, REQUEST_LEN, &mut self.rng) {
            self.push(
                t,
                Event::Request {
                    peer,
                    id,
                    block,
                    budget,
                },
            );
        }
    }

    /// The responder side: answer with a summary and the packets, sent in that order.
    fn serve(&mut self, peer: usize, id: Option<RequestId>, block: &SyncBlock, budget: u64) {
        let p = &mut self.peers[peer];
        let limits = if id.is_some() {
            Limits::asked(budget, DEFAULT_MAX_BUDGET, usize::MAX)
        } else {
            Limits::classic(usize::MAX)
        };
        let gt = p.store.max_global_time(&COMMUNITY).expect("memstore");
        let r = respond(
            &p.store,
            &COMMUNITY,
            &simple_policies(),
            gt,
            block,
            &limits,
            &mut self.rng,
        )
        .expect("respond");
        p.cpu = p.cpu.max(self.now) + self.costs.hash * r.examined as u32;
        let start = p.cpu;
        let summary = SyncSummary::from(&r);
        let mut sends = Vec::new();
        if let Some(t) = p.down.send(start, RESPONSE_LEN, &mut self.rng) {
            sends.push((t, Event::Response { id, summary }));
        }
        self.report.down_bytes += RESPONSE_LEN + r.bytes;
        for packet in r.packets {
            if let Some(t) = p.down.send(start, packet.len(), &mut self.rng) {
                sends.push((t, Event::Packet { peer, packet }));
            }
        }
        for (t, e) in sends {
            self.push(t, e);
        }
    }

    /// Stores a packet at the requester; returns the message if it was new.
    fn ingest(&mut self, packet: &Bytes) -> Option<StoredMessage> {
        self.report.packets += 1;
        let m = self.universe.get(packet)?.clone();
        self.cpu = self.cpu.max(self.now) + self.costs.ingest;
        if self.store.insert_message(&m).expect("memstore") {
            self.report.stored += 1;
            self.report.finished = self.cpu.since_epoch();
            Some(m)
        } else {
            self.report.duplicates += 1;
            None
        }
    }

    fn bits() -> u16 {
        8_128
    }

    /// Fast catch-up until every range is finished or `limit` passes.
    pub fn run_catchup(&mut self, catchup: &mut Catchup, target: GlobalTime, limit: Duration) {
        let policies = simple_policies();
        catchup.start(target);
        for i in 0..self.peers.len() {
            catchup.add_peer(self.peers[i].addr, self.now);
        }
        let end = Instant::ZERO + limit;
        loop {
            while let Some(req) = catchup
                .poll_request(
                    self.now,
                    &self.store,
                    &COMMUNITY,
                    &policies,
                    Self::bits(),
                    &mut self.rng,
                )
                .expect("poll_request")
            {
                let peer = self
                    .peers
                    .iter()
                    .position(|p| p.addr == req.peer)
                    .expect("known peer");
                let items = self
                    .store
                    .count(&COMMUNITY, None, req.block.time_low, req.block.time_high)
                    .expect("memstore") as usize;
                self.send_request(peer, Some(req.id), req.block, req.budget, items);
            }
            if catchup.is_done() {
                break;
            }
            let wake = match (self.next_at(), catchup.poll_timeout()) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if wake > end {
                break;
            }
            if self.next_at() != Some(wake) {
                self.now = self.now.max(wake);
                catchup.handle_timeout(self.now);
                continue;
            }
            match self.pop() {
                Some(Event::Request {
                    peer,
                    id,
                    block,
                    budget,
                }) => self.serve(peer, id, &block, budget),
                Some(Event::Response {
                    id: Some(id),
                    summary,
                }) => catchup.on_response(id, Some(summary), self.now),
                Some(Event::Packet { peer, packet }) => {
                    let addr = self.peers[peer].addr;
                    let gt = GlobalTime(u64::from_be_bytes(
                        packet[4..12].try_into().expect("8 bytes"),
                    ));
                    self.ingest(&packet);
                    catchup.on_packet(addr, gt, packet.len(), self.now);
                }
                _ => {}
            }
        }
    }

    /// Classic sync: one request every `interval` to the peers in turn, for `limit`.
    pub fn run_classic(&mut self, interval: Duration, limit: Duration) {
        let policies = simple_policies();
        let mut requester = Requester::new(RequesterConfig::default());
        let end = Instant::ZERO + limit;
        let mut next_step = self.now;
        let mut turn = 0usize;
        loop {
            let wake = self.next_at().map_or(next_step, |t| t.min(next_step));
            if wake > end {
                break;
            }
            if self.next_at() != Some(wake) {
                self.now = wake;
                next_step = wake + interval;
                let peer = turn % self.peers.len();
                turn += 1;
                let gt = self.store.max_global_time(&COMMUNITY).expect("memstore");
                let input = ClaimInput {
                    community: COMMUNITY,
                    policies: &policies,
                    global_time: gt,
                    acceptable: GlobalTime(gt.0 + 10_000).max(GlobalTime(100_000_000)),
                    bits: Self::bits(),
                    error_rate: 0.01,
                };
                let addr = self.peers[peer].addr;
                if let Some(block) = requester
                    .claim(&self.store, &input, addr, &mut self.rng)
                    .expect("claim")
                {
                    self.send_request(peer, None, block, 0, 847);
                }
                continue;
            }
            match self.pop() {
                Some(Event::Request {
                    peer,
                    id,
                    block,
                    budget,
                }) => self.serve(peer, id, &block, budget),
                Some(Event::Packet { peer, packet }) => {
                    let addr = self.peers[peer].addr;
                    if let Some(m) = self.ingest(&packet) {
                        requester.on_stored(
                            &policies,
                            m.meta,
                            m.global_time,
                            &m.packet,
                            Some(addr),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// A fresh controller sized for the model's filters.
pub fn controller() -> Catchup {
    Catchup::new(catchup::Config::for_bits(Net::bits()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testkit::{self, Side, corpus, session, store_of};

    const MB: u64 = 1_000_000;

    fn costs() -> Costs {
        Costs {
            ingest: Duration::from_micros(20),
            hash: Duration::from_nanos(400),
        }
    }

    fn max_gt(msgs: &[StoredMessage]) -> GlobalTime {
        msgs.iter().map(|m| m.global_time).max().unwrap_or_default()
    }

    /// After catch-up, a reconciliation session fixes what false positives hid; the stores end
    /// equal.
    fn finish_equal(net: &Net, full: &MemStore, msgs: &[StoredMessage]) -> usize {
        let all: Vec<&StoredMessage> = msgs.iter().collect();
        let mine: Vec<&StoredMessage> = msgs
            .iter()
            .filter(|m| net.store.message(&COMMUNITY, &m.id()).unwrap().is_some())
            .collect();
        let missing = all.len() - mine.len();
        let mut a = Side::new(&mine);
        let mut b = Side::new(&all);
        let u = testkit::universe(msgs);
        session(
            &mut a,
            &mut b,
            &crate::sync::reconcile::Config::default(),
            &u,
        );
        assert_eq!(testkit::ids(&a.store), testkit::ids(full));
        missing
    }

    #[test]
    fn catchup_ends_with_equal_stores() {
        let (mut rng, seed) = testkit::rng(51);
        let msgs = corpus(20_000, 100, 300, &mut rng);
        let full = store_of(&msgs);
        let wire = || Wire::new(Duration::from_millis(1), 100 * MB, 4 << 20, 0.0);
        let peers = vec![Peer::new(1, full.clone(), wire(), wire())];
        let mut net = Net::new(MemStore::new(), peers, &msgs, costs(), rng);
        let mut c = controller();
        net.run_catchup(&mut c, max_gt(&msgs), Duration::from_secs(600));
        let floor = costs().ingest * msgs.len() as u32;
        eprintln!(
            "seed {seed}: {:?} {:?}, floor {floor:?}",
            net.report,
            c.stats()
        );
        assert!(c.is_done(), "seed {seed}");
        let missing = finish_equal(&net, &full, &msgs);
        eprintln!("left for reconciliation: {missing}");
        assert!(missing < 20, "seed {seed}: catch-up left {missing}");
        assert!(
            net.report.finished < floor * 2,
            "seed {seed}: {:?} vs floor {floor:?}",
            net.report.finished
        );
    }

    #[test]
    fn catchup_from_lossy_peers() {
        let (mut rng, seed) = testkit::rng(52);
        let msgs = corpus(20_000, 100, 300, &mut rng);
        let full = store_of(&msgs);
        let peers = (1..=3)
            .map(|i| {
                let w = || {
                    Wire::new(
                        Duration::from_millis(20 * u64::from(i)),
                        5 * MB,
                        256 << 10,
                        0.05,
                    )
                };
                Peer::new(i, full.clone(), w(), w())
            })
            .collect();
        let mut net = Net::new(MemStore::new(), peers, &msgs, costs(), rng);
        let mut c = controller();
        net.run_catchup(&mut c, max_gt(&msgs), Duration::from_secs(600));
        eprintln!("seed {seed}: {:?} {:?}", net.report, c.stats());
        assert!(c.is_done(), "seed {seed}");
        assert!(c.stats().lost > 0);
        let missing = finish_equal(&net, &full, &msgs);
        eprintln!("left for reconciliation: {missing}");
        assert!(missing < 50, "seed {seed}: catch-up left {missing}");
    }

    /// The target, in the model: 100,000 messages of 200-byte payloads (about 370-byte
    /// packets) from 100 authors, three responders on a LAN-like link, 20 µs to verify and store
    /// one message. Run with `--release -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement"]
    fn hundred_thousand_in_the_model() {
        let (mut rng, seed) = testkit::rng(54);
        let msgs = corpus(100_000, 100, 370, &mut rng);
        let full = store_of(&msgs);
        let peers = (1..=3)
            .map(|i| {
                let w = || Wire::new(Duration::from_micros(200), 100 * MB, 4 << 20, 0.0);
                Peer::new(i, full.clone(), w(), w())
            })
            .collect();
        let mut net = Net::new(MemStore::new(), peers, &msgs, costs(), rng);
        let mut c = controller();
        let t = std::time::Instant::now();
        net.run_catchup(&mut c, max_gt(&msgs), Duration::from_secs(3600));
        let wall = t.elapsed();
        let floor = costs().ingest * msgs.len() as u32;
        let missing = finish_equal(&net, &full, &msgs);
        eprintln!(
            "seed {seed}: virtual {:?} for floor {floor:?} ({:.2}x); {:?} {:?}; left for reconciliation {missing}; simulation took {wall:?}",
            net.report.finished,
            net.report.finished.as_secs_f64() / floor.as_secs_f64(),
            net.report,
            c.stats()
        );
    }

    /// 1,000 + 1,000 differences in 100,000: the first reconciliation exchange finds them dense,
    /// and each side fetches the differing ranges from the other with Bloom filters. Run with
    /// `--release -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement"]
    fn dense_differences_fall_back_to_bloom() {
        use crate::sync::reconcile;
        let (mut rng, seed) = testkit::rng(55);
        for d in [100usize, 1_000, 5_000] {
            let (mut a, mut b, all) = testkit::pair(100_000, d, d, 100, &mut rng);
            let config = reconcile::Config::default();
            let msg = reconcile::start(&a.store, &mut a.index, &config, testkit::MAX_LEN).unwrap();
            let out =
                reconcile::process(&b.store, &mut b.index, &config, &msg, testkit::MAX_LEN, 0)
                    .unwrap();
            let mut bytes = msg.encoded_len() + out.reply.encoded_len() + 2 * testkit::EXT_HEADER;
            let mut requests = 0;
            let mut packets = 0;
            let wire = || Wire::new(Duration::from_millis(1), 100 * MB, 4 << 20, 0.0);
            for (from, to) in [(&b, &a), (&a, &b)] {
                let peers = vec![Peer::new(1, from.store.clone(), wire(), wire())];
                let mut net = Net::new(to.store.clone(), peers, &all, costs(), rng.clone());
                let mut c = controller();
                c.fetch(out.differing.iter().copied());
                net.run_catchup(&mut c, GlobalTime(1), Duration::from_secs(600));
                bytes += net.report.requests * REQUEST_LEN + net.report.down_bytes;
                requests += net.report.requests;
                packets += net.report.stored;
            }
            eprintln!(
                "seed {seed}: {d}+{d}: {} of {} ranges differ, delta {} of {} (prefer Bloom: {}); \
                 {requests} Bloom requests, {packets} messages fetched, {bytes} bytes in all ({} of \
                 them message packets)",
                out.stats.differing,
                msg.entries().len(),
                out.delta,
                out.compared,
                out.prefer_bloom(),
                packets * 200,
            );
        }
    }

    /// 64 kB/s, 150 ms each way, a 32 KiB queue and 2 % loss: in the same two minutes,
    /// catch-up gets at least as much as classic sync does.
    #[test]
    fn weak_link_no_worse_than_classic() {
        let (mut rng, seed) = testkit::rng(53);
        let msgs = corpus(5_000, 20, 300, &mut rng);
        let full = store_of(&msgs);
        let wire = || Wire::new(Duration::from_millis(150), 64_000, 32 << 10, 0.02);
        let limit = Duration::from_secs(120);

        let peers = vec![Peer::new(1, full.clone(), wire(), wire())];
        let mut classic = Net::new(MemStore::new(), peers, &msgs, costs(), rng.clone());
        classic.run_classic(Duration::from_secs(5), limit);

        let peers = vec![Peer::new(1, full.clone(), wire(), wire())];
        let mut fast = Net::new(MemStore::new(), peers, &msgs, costs(), rng);
        let mut c = controller();
        fast.run_catchup(&mut c, max_gt(&msgs), limit);
        eprintln!(
            "seed {seed}: classic {:?}\nfast {:?} {:?} budget {:?}",
            classic.report,
            fast.report,
            c.stats(),
            c.budget(&fast.peers[0].addr)
        );
        assert!(fast.report.stored >= classic.report.stored, "seed {seed}");
        // And it does not flood the link with duplicates.
        assert!(
            fast.report.duplicates * 10 <= fast.report.packets.max(1),
            "seed {seed}"
        );
    }
}
