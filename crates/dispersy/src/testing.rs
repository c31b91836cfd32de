//! An in-process network of nodes on a virtual clock, for multi-node protocol tests.
//!
//! Nodes get loopback addresses (`127.0.0.1`, one port each, told to the node with
//! [`Node::set_interfaces`] as a socket bound to it on a `127.0.0.0/8` interface); nothing touches
//! a socket. The
//! network delivers datagrams after a latency (with optional jitter, so packets reorder), loses
//! or duplicates them with given probabilities, and fires node timers, all in time order and
//! from one seeded RNG, so a test with a given seed always runs the same way.
//!
//! ```
//! use dispersy::testing::Network;
//! let mut net = Network::new(7);
//! assert_eq!(net.len(), 0);
//! net.run_for(std::time::Duration::from_secs(1));
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::community::Definition;
use crate::community::policy::{Authentication, Distribution};
use crate::crypto::PrivateKey;
use crate::ids::{GlobalTime, MetaId, SequenceNumber};
use crate::node::{Event, Node};
use crate::store::{self, StoredMessage, Undone};
use crate::time::Instant;
use crate::walker::{Interface, LocalInterfaces};
use crate::wire::{Authors, Draft, KeyEncoding};

/// First port handed out; node `i` listens on `BASE_PORT + i`.
pub const BASE_PORT: u16 = 20_000;

/// Link behaviour, for every pair of nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// One-way delay.
    pub latency: Duration,
    /// Extra random delay, uniform in `0..=jitter` (reorders packets).
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

struct InFlight {
    at: Instant,
    seq: u64,
    from: SocketAddr,
    to: usize,
    datagram: Bytes,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A set of nodes exchanging datagrams on a virtual clock.
pub struct Network {
    now: Instant,
    nodes: Vec<Option<Node>>,
    events: Vec<Vec<Event>>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    rng: ChaCha20Rng,
    /// The behaviour of every link.
    pub link: Link,
    delivered: u64,
    lost: u64,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("in_flight", &self.queue.len())
            .finish()
    }
}

impl Network {
    /// An empty network whose randomness comes from `seed`.
    pub fn new(seed: u64) -> Network {
        Network {
            now: Instant::ZERO,
            nodes: Vec::new(),
            events: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha20Rng::seed_from_u64(seed),
            link: Link::default(),
            delivered: 0,
            lost: 0,
        }
    }

    /// The address of node `i`.
    pub fn address(i: usize) -> SocketAddr {
        let port = BASE_PORT.saturating_add(u16::try_from(i).unwrap_or(u16::MAX - BASE_PORT));
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    fn index(addr: SocketAddr) -> Option<usize> {
        addr.port().checked_sub(BASE_PORT).map(usize::from)
    }

    /// Adds a node; returns its index. The node is told its address ([`Network::address`]).
    pub fn add(&mut self, mut node: Node) -> usize {
        let i = self.nodes.len();
        node.set_interfaces(Network::interfaces(i));
        self.nodes.push(Some(node));
        self.events.push(Vec::new());
        i
    }

    /// What node `i`'s driver would report: a socket bound to [`Network::address`] on a
    /// loopback interface.
    pub fn interfaces(i: usize) -> LocalInterfaces {
        LocalInterfaces {
            bound: Network::address(i),
            interfaces: vec![Interface::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8)],
        }
    }

    /// Number of nodes (including stopped ones).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Node `i` (panics when stopped or out of range: this is test support).
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Node `i`, mutably. Drain its output with [`Network::flush`] after commanding it.
    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node is running")
    }

    /// Runs `f` on node `i` at the current time, then collects its output.
    pub fn with<T>(&mut self, i: usize, f: impl FnOnce(&mut Node, Instant) -> T) -> T {
        let now = self.now;
        let out = f(self.node_mut(i), now);
        self.flush(i);
        out
    }

    /// Takes node `i` out (it stops receiving); returns it.
    pub fn stop(&mut self, i: usize) -> Option<Node> {
        self.nodes[i].take()
    }

    /// Puts a node back at index `i`.
    pub fn restart(&mut self, i: usize, node: Node) {
        self.nodes[i] = Some(node);
        self.flush(i);
    }

    /// Events node `i` produced so far (drained).
    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[i])
    }

    /// Datagrams delivered and lost so far.
    pub fn traffic(&self) -> (u64, u64) {
        (self.delivered, self.lost)
    }

    /// Moves node `i`'s pending datagrams into the network and its events into its log.
    pub fn flush(&mut self, i: usize) {
        let from = Network::address(i);
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        while let Some(e) = node.poll_event() {
            self.events[i].push(e);
        }
        for t in out {
            let Some(to) = Network::index(t.destination).filter(|to| *to < self.nodes.len()) else {
                self.lost += 1;
                continue;
            };
            if self.rng.gen_bool(self.link.loss.clamp(0.0, 1.0)) {
                self.lost += 1;
                continue;
            }
            let copies = if self.rng.gen_bool(self.link.duplicate.clamp(0.0, 1.0)) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let jitter = if self.link.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    let max = u64::try_from(self.link.jitter.as_micros()).unwrap_or(u64::MAX);
                    Duration::from_micros(self.rng.gen_range(0..=max))
                };
                self.seq += 1;
                self.queue.push(Reverse(InFlight {
                    at: self.now + self.link.latency + jitter,
                    seq: self.seq,
                    from,
                    to,
                    datagram: t.contents.clone(),
                }));
            }
        }
    }

    fn next_timer(&self) -> Option<(Instant, usize)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().and_then(Node::poll_timeout).map(|t| (t, i)))
            .min()
    }

    /// Processes everything scheduled up to and including `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Instant) {
        let mut steps_at_same_time = 0u32;
        let mut last = self.now;
        loop {
            let packet_at = self.queue.peek().map(|Reverse(p)| p.at);
            let timer = self.next_timer();
            let next = match (packet_at, timer) {
                (Some(p), Some((t, _))) => p.min(t),
                (Some(p), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if self.now == last {
                steps_at_same_time += 1;
                assert!(steps_at_same_time < 1_000_000, "livelock at {:?}", self.now);
            } else {
                steps_at_same_time = 0;
                last = self.now;
            }
            if packet_at == Some(next) {
                // Deliver every datagram due now to each node as one burst.
                let mut due: Vec<InFlight> = Vec::new();
                while self.queue.peek().is_some_and(|Reverse(p)| p.at == next) {
                    if let Some(Reverse(p)) = self.queue.pop() {
                        due.push(p);
                    }
                }
                let mut targets: Vec<usize> = due.iter().map(|p| p.to).collect();
                targets.sort_unstable();
                targets.dedup();
                for to in targets {
                    let burst: Vec<(SocketAddr, Bytes)> = due
                        .iter()
                        .filter(|p| p.to == to)
                        .map(|p| (p.from, p.datagram.clone()))
                        .collect();
                    let now = self.now;
                    match self.nodes[to].as_mut() {
                        Some(node) => {
                            self.delivered += burst.len() as u64;
                            node.handle_datagrams(now, burst)
                                .expect("store works in tests");
                        }
                        None => self.lost += burst.len() as u64,
                    }
                    self.flush(to);
                }
            } else if let Some((t, i)) = timer.filter(|(t, _)| *t == next) {
                let now = self.now.max(t);
                if let Some(node) = self.nodes[i].as_mut() {
                    node.handle_timeout(now).expect("store works in tests");
                }
                self.flush(i);
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for a span of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }
}

/// How [`bundles`] makes its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleShape {
    /// Messages in total; author `i % authors` writes message `i`.
    pub count: usize,
    /// Payload bytes of each (random bytes).
    pub payload_len: usize,
    /// Consecutive messages sharing one global time (1: every message its own).
    pub per_global_time: usize,
    /// Global time of the first message.
    pub first: GlobalTime,
}

/// `shape.count` signed messages of one meta-message of `def`, written in turn by `authors`, as
/// a node would store them: numbered per author when the meta-message has sequence numbers, each
/// author's global times increasing. For filling stores directly in tests and benchmarks.
///
/// Panics when the meta-message is unknown, is not member-authenticated, or a message does not
/// encode (test support).
pub fn bundles<R: Rng + ?Sized>(
    def: &Definition,
    meta: MetaId,
    authors: &[PrivateKey],
    shape: BundleShape,
    rng: &mut R,
) -> Vec<StoredMessage> {
    let m = def.meta(meta).expect("the meta-message exists");
    let encoding = match m.authentication {
        Authentication::Member { encoding } => encoding,
        _ => KeyEncoding::PublicKey,
    };
    let sequenced = matches!(
        m.distribution,
        Distribution::FullSync {
            sequence_numbers: true,
            ..
        }
    );
    let per = shape.per_global_time.clamp(1, authors.len().max(1));
    let mut payload = vec![0u8; shape.payload_len];
    (0..shape.count)
        .map(|i| {
            let author = &authors[i % authors.len()];
            let k = i / authors.len();
            let global_time = GlobalTime(shape.first.0 + (i / per) as u64);
            let sequence = sequenced.then(|| SequenceNumber(k as u32 + 1));
            rng.fill_bytes(&mut payload);
            let packet = Draft {
                prefix: def.prefix(),
                message_byte: meta.0,
                authors: Authors::Member(author.public(), encoding),
                resolution: None,
                global_time,
                sequence,
                payload: &payload,
            }
            .encode(&[Some(author)])
            .expect("a test message encodes");
            StoredMessage {
                community: def.id(),
                meta,
                member: author.member_id(),
                global_time,
                sequence,
                second_member: None,
                digest: store::digest(&packet),
                packet,
                undone: Undone::No,
            }
        })
        .collect()
}
