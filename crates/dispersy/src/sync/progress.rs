//! Progress: how many Bloom-synced messages we hold versus an estimate of what our peers
//! hold, for the UI during catch-up and for the node's "am I behind?" decision.
//!
//! Peers announce their count in `SYNC_HELLO` (every walker message of a peer that speaks the
//! extension) and, implicitly, in the first message of a reconciliation session (the sum of its
//! fingerprint counts). The estimate is the largest fresh claim, never below our own count.
//! Claims are unauthenticated: a peer that lies high only makes us look behind (the catch-up it
//! may trigger is bounded and finds nothing); the table is bounded and stale claims expire.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::hello::SyncHello;
use super::reconcile::{Message, Mode};
use crate::ids::GlobalTime;
use crate::time::Instant;

/// Progress settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Peers remembered; the stalest is forgotten first.
    pub max_peers: usize,
    /// Claims older than this are ignored.
    pub stale_after: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_peers: 32,
            stale_after: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Claim {
    held: u64,
    global_time: GlobalTime,
    at: Instant,
}

/// A progress figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Messages we hold.
    pub held: u64,
    /// Estimate of what there is to hold (at least `held`).
    pub estimate: u64,
    /// Peers whose fresh claims went into the estimate.
    pub peers: usize,
    /// The highest global time a fresh peer claimed.
    pub global_time: GlobalTime,
}

impl Report {
    /// `held / estimate`, 1 when there is nothing to hold.
    pub fn fraction(&self) -> f64 {
        if self.estimate == 0 {
            1.0
        } else {
            self.held as f64 / self.estimate as f64
        }
    }
}

/// The progress tracker of one community.
#[derive(Debug, Clone)]
pub struct Progress {
    config: Config,
    held: u64,
    peers: BTreeMap<SocketAddr, Claim>,
}

impl Progress {
    /// A tracker that holds `held` messages (the store's count of Bloom-synced messages).
    pub fn new(config: Config, held: u64) -> Progress {
        Progress {
            config,
            held,
            peers: BTreeMap::new(),
        }
    }

    /// Resets our count (after pruning, or from a fresh `Store::count`).
    pub fn set_held(&mut self, held: u64) {
        self.held = held;
    }

    /// We stored `n` more Bloom-synced messages.
    pub fn on_stored(&mut self, n: u64) {
        self.held = self.held.saturating_add(n);
    }

    /// We deleted `n` Bloom-synced messages.
    pub fn on_removed(&mut self, n: u64) {
        self.held = self.held.saturating_sub(n);
    }

    /// Our count.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// A peer says how much it holds.
    pub fn on_claim(&mut self, peer: SocketAddr, held: u64, global_time: GlobalTime, now: Instant) {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.config.max_peers.max(1) {
            let stalest = self
                .peers
                .iter()
                .min_by_key(|(addr, c)| (c.at, **addr))
                .map(|(addr, _)| *addr);
            if let Some(addr) = stalest {
                self.peers.remove(&addr);
            }
        }
        self.peers.insert(
            peer,
            Claim {
                held,
                global_time,
                at: now,
            },
        );
    }

    /// A peer's `SYNC_HELLO`.
    pub fn on_hello(&mut self, peer: SocketAddr, hello: &SyncHello, now: Instant) {
        self.on_claim(peer, hello.held, hello.global_time, now);
    }

    /// The first message of a peer's reconciliation session covers everything it holds: its
    /// fingerprint counts add up to its count.
    pub fn on_reconcile_start(&mut self, peer: SocketAddr, message: &Message, now: Instant) {
        if message.round != 0 {
            return;
        }
        let mut held = 0u64;
        let mut top = GlobalTime::ZERO;
        for e in message.entries() {
            let Mode::Fingerprint { count, .. } = e.mode else {
                return;
            };
            held = held.saturating_add(count);
            if count > 0 {
                top = e.high;
            }
        }
        let known = self
            .peers
            .get(&peer)
            .map_or(GlobalTime::ZERO, |c| c.global_time);
        // The last range with messages ends at the sender's newest global time.
        self.on_claim(peer, held, known.max(top), now);
    }

    /// The current figure.
    pub fn report(&self, now: Instant) -> Report {
        let fresh = self
            .peers
            .values()
            .filter(|c| now.saturating_duration_since(c.at) <= self.config.stale_after);
        let mut r = Report {
            held: self.held,
            estimate: self.held,
            ..Report::default()
        };
        for c in fresh {
            r.peers += 1;
            r.estimate = r.estimate.max(c.held);
            r.global_time = r.global_time.max(c.global_time);
        }
        r
    }

    /// Whether a fresh peer holds more than `ratio` times what we hold plus `slack`: worth a
    /// catch-up rather than waiting for classic sync.
    pub fn behind(&self, now: Instant, ratio: f64, slack: u64) -> bool {
        let r = self.report(now);
        r.estimate as f64 > r.held as f64 * ratio + slack as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::reconcile::{Entry, Message, Mode};

    fn peer(i: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, i], 1))
    }

    #[test]
    fn estimate_from_fresh_claims() {
        let mut p = Progress::new(
            Config {
                max_peers: 2,
                stale_after: Duration::from_secs(60),
            },
            10,
        );
        let t = Instant::from_secs(100);
        assert_eq!(p.report(t).fraction(), 1.0);
        let hello = SyncHello {
            held: 1_000,
            global_time: GlobalTime(5_000),
            ..SyncHello::default()
        };
        p.on_hello(peer(1), &hello, t);
        p.on_claim(peer(2), 400, GlobalTime(2_000), t + Duration::from_secs(1));
        let r = p.report(t + Duration::from_secs(2));
        assert_eq!(
            (r.held, r.estimate, r.peers, r.global_time),
            (10, 1_000, 2, GlobalTime(5_000))
        );
        assert!(p.behind(t, 1.1, 50));
        p.on_stored(990);
        assert!((p.report(t).fraction() - 1.0).abs() < 1e-9);
        assert!(!p.behind(t, 1.1, 50));
        // A third peer evicts the stalest; claims expire.
        p.on_claim(peer(3), 7, GlobalTime(1), t + Duration::from_secs(3));
        assert_eq!(p.report(t + Duration::from_secs(3)).peers, 2);
        assert_eq!(p.report(t + Duration::from_secs(62)).peers, 1);
        assert_eq!(p.report(t + Duration::from_secs(70)).estimate, 1_000);
        p.on_removed(5_000);
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn reconcile_start_counts() {
        let mut m = Message::new(0);
        for (lo, hi, count) in [(1u64, 10u64, 5u64), (11, 20, 7), (21, GlobalTime::MAX.0, 0)] {
            m.push(
                Entry {
                    low: GlobalTime(lo),
                    high: GlobalTime(hi),
                    mode: Mode::Fingerprint { count, sum: 0 },
                },
                1000,
            );
        }
        let mut p = Progress::new(Config::default(), 0);
        p.on_reconcile_start(peer(1), &m, Instant::ZERO);
        let r = p.report(Instant::ZERO);
        assert_eq!((r.estimate, r.global_time), (12, GlobalTime(20)));
    }
}
