//! Anti-amplification: never let a spoofed source address turn us into a traffic reflector.
//!
//! UDP source addresses are not authenticated. Until a remote address has *proven* that it
//! receives what we send to it, we send it at most [`super::Config::amplification_factor`]
//! (3, as QUIC) times the bytes we received from it, and no bulk answers (sync responses) at all.
//!
//! An address is proven when
//!
//! 1. it answered one of our introduction-requests with the right identifier (only the receiver
//!    of our request can know the random identifier), or
//! 2. it echoed an *address-validation cookie* we gave it.
//!
//! Proof lasts [`super::Config::proof_lifetime`] and is renewed by every new proof.
//!
//! ## Cookies
//!
//! A responder puts a cookie in the [`COOKIE`](crate::wire::extension::kind::COOKIE) extension of
//! its introduction-response to an unproven requester. The requester stores it with the
//! responder's candidate and echoes it in the
//! [`COOKIE_ECHO`](crate::wire::extension::kind::COOKIE_ECHO) extension of its next
//! introduction-request to that responder, which then knows the requester's address is real.
//! Peers that do not know the extension (py-ipv8) ignore it and are proven by answering our walks.
//!
//! A cookie is 20 bytes: `epoch:u32` then the first 16 bytes of
//! `SHA-256("dispersy-cookie-v1" ‖ secret ‖ epoch ‖ family ‖ ip ‖ port)`. The 32-byte secret comes
//! from the node's RNG and is replaced every [`super::Config::cookie_rotation`]; the previous
//! secret is kept, and a secret is honoured until twice the rotation period after it was made, so
//! a cookie stays valid for between one and two periods. Nothing per-address is stored to issue
//! a cookie. A secret-prefix hash is a sound MAC here: the tag is truncated (so the hash state is
//! never revealed, which rules out length extension) and the secret never leaves the node.
//!
//! ## Bounds
//!
//! At most [`super::Config::max_addresses`] addresses are tracked. Each entry lives until it has
//! been idle for [`super::Config::address_idle`] and its proof (if any) has expired; when the
//! table is full, the entry that would expire first goes (unproven entries go first in practice,
//! since proofs outlive idleness). Forgetting an entry is always safe: it only loses credit or
//! proof.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::address::canonical;
use crate::time::Instant;

/// Length of a cookie in bytes.
pub const COOKIE_LEN: usize = 20;

/// A send refused by the amplification limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("anti-amplification: {len} bytes to {to} exceed the unproven budget of {budget} bytes")]
pub struct Refused {
    /// The destination.
    pub to: SocketAddr,
    /// The bytes we wanted to send.
    pub len: usize,
    /// The bytes still allowed.
    pub budget: u64,
}

/// Counters of the amplification guard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AmplificationStats {
    /// Sends refused because they exceeded an unproven address's budget.
    pub refused_sends: u64,
    /// Bytes of those refused sends.
    pub refused_bytes: u64,
    /// Bulk answers refused because the address was not proven.
    pub refused_bulk: u64,
    /// Addresses proven (including renewals).
    pub proofs: u64,
    /// Cookies handed out.
    pub cookies_issued: u64,
    /// Cookie echoes that proved an address.
    pub cookies_accepted: u64,
    /// Cookie echoes that were wrong, for another address, or too old.
    pub cookies_rejected: u64,
    /// Entries dropped because the table was full.
    pub evictions: u64,
    /// Entries dropped because they went idle.
    pub expired: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    received: u64,
    sent: u64,
    last_active: Instant,
    proven_until: Option<Instant>,
    deadline: Instant,
}

#[derive(Clone)]
struct Secret {
    epoch: u32,
    key: [u8; 32],
    created: Instant,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret(epoch {}, created {:?})",
            self.epoch, self.created
        )
    }
}

impl Secret {
    fn tag(&self, addr: SocketAddr) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"dispersy-cookie-v1");
        h.update(self.key);
        h.update(self.epoch.to_be_bytes());
        match addr.ip() {
            IpAddr::V4(ip) => {
                h.update([4]);
                h.update(ip.octets());
            }
            IpAddr::V6(ip) => {
                h.update([6]);
                h.update(ip.octets());
            }
        }
        h.update(addr.port().to_be_bytes());
        let digest = h.finalize();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&digest[..16]);
        tag
    }
}

/// Per-address send budgets, proofs and cookies (node-level).
#[derive(Debug, Clone)]
pub struct AntiAmplification {
    factor: u64,
    capacity: usize,
    idle: Duration,
    proof_lifetime: Duration,
    rotation: Duration,
    entries: BTreeMap<SocketAddr, Entry>,
    by_deadline: BTreeSet<(Instant, SocketAddr)>,
    current: Secret,
    previous: Option<Secret>,
    stats: AmplificationStats,
}

/// The settings of [`AntiAmplification`] (taken from [`super::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct AmplificationLimits {
    /// Bytes we may send per byte received from an unproven address.
    pub factor: u64,
    /// Addresses tracked at most.
    pub capacity: usize,
    /// How long an entry lives without traffic.
    pub idle: Duration,
    /// How long a proof lasts.
    pub proof_lifetime: Duration,
    /// How often the cookie secret changes.
    pub rotation: Duration,
}

impl AntiAmplification {
    /// A guard with a fresh cookie secret drawn from `rng`.
    pub fn new<R: RngCore + ?Sized>(
        limits: AmplificationLimits,
        now: Instant,
        rng: &mut R,
    ) -> AntiAmplification {
        AntiAmplification {
            factor: limits.factor,
            capacity: limits.capacity.max(1),
            idle: limits.idle,
            proof_lifetime: limits.proof_lifetime,
            rotation: limits.rotation.max(Duration::from_secs(1)),
            entries: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
            current: new_secret(0, now, rng),
            previous: None,
            stats: AmplificationStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> AmplificationStats {
        self.stats
    }

    /// Number of addresses tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Credits `len` bytes received from `from`. Call it for every datagram, before handling it.
    pub fn on_received(&mut self, now: Instant, from: SocketAddr, len: usize) {
        let from = canonical(from);
        self.update(now, from, |e| {
            e.received = e.received.saturating_add(len as u64);
            e.last_active = now;
        });
    }

    /// Whether `addr` is currently proven.
    pub fn is_proven(&self, now: Instant, addr: SocketAddr) -> bool {
        self.entries
            .get(&canonical(addr))
            .and_then(|e| e.proven_until)
            .is_some_and(|until| until > now)
    }

    /// Marks `addr` as receiving our packets (it answered one of our requests correctly).
    pub fn prove(&mut self, now: Instant, addr: SocketAddr) {
        let until = now + self.proof_lifetime;
        self.update(now, canonical(addr), |e| {
            e.proven_until = Some(until);
            e.last_active = now;
        });
        self.stats.proofs += 1;
    }

    /// The bytes we may still send to `to` (`u64::MAX` when proven).
    pub fn budget(&self, now: Instant, to: SocketAddr) -> u64 {
        if self.is_proven(now, to) {
            return u64::MAX;
        }
        self.entries.get(&canonical(to)).map_or(0, |e| {
            e.received
                .saturating_mul(self.factor)
                .saturating_sub(e.sent)
        })
    }

    /// Checks and records a reactive send of `len` bytes caused by a packet from `cause` (usually
    /// the destination itself; for a puncture, the introducer that asked for it). Our own
    /// introduction-requests are not reactive and need no check.
    pub fn try_send(&mut self, now: Instant, cause: SocketAddr, len: usize) -> Result<(), Refused> {
        let cause = canonical(cause);
        let budget = self.budget(now, cause);
        if budget == u64::MAX {
            return Ok(());
        }
        if (len as u64) > budget {
            self.stats.refused_sends += 1;
            self.stats.refused_bytes = self.stats.refused_bytes.saturating_add(len as u64);
            return Err(Refused {
                to: cause,
                len,
                budget,
            });
        }
        if let Some(e) = self.entries.get_mut(&cause) {
            e.sent = e.sent.saturating_add(len as u64);
        }
        Ok(())
    }

    /// Whether a bulk answer (a sync response) may go to `to`: only to proven addresses. A refusal
    /// is counted.
    pub fn allows_bulk(&mut self, now: Instant, to: SocketAddr) -> bool {
        let ok = self.is_proven(now, to);
        if !ok {
            self.stats.refused_bulk += 1;
        }
        ok
    }

    /// A cookie for `to`, to put in the `COOKIE` extension of our introduction-response.
    pub fn issue_cookie<R: RngCore + ?Sized>(
        &mut self,
        now: Instant,
        to: SocketAddr,
        rng: &mut R,
    ) -> Bytes {
        self.rotate_if_due(now, rng);
        self.stats.cookies_issued += 1;
        let mut out = Vec::with_capacity(COOKIE_LEN);
        out.extend_from_slice(&self.current.epoch.to_be_bytes());
        out.extend_from_slice(&self.current.tag(canonical(to)));
        Bytes::from(out)
    }

    /// Checks a `COOKIE_ECHO` received from `from`; a good one proves `from`.
    pub fn check_cookie_echo(&mut self, now: Instant, from: SocketAddr, echo: &[u8]) -> bool {
        let from = canonical(from);
        let ok = self.cookie_valid(now, from, echo);
        if ok {
            self.stats.cookies_accepted += 1;
            self.prove(now, from);
        } else {
            self.stats.cookies_rejected += 1;
        }
        ok
    }

    fn cookie_valid(&self, now: Instant, from: SocketAddr, echo: &[u8]) -> bool {
        let Ok(cookie) = <[u8; COOKIE_LEN]>::try_from(echo) else {
            return false;
        };
        let epoch = u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
        let secret = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|s| s.epoch == epoch);
        let Some(secret) = secret else {
            return false;
        };
        if now >= secret.created + 2 * self.rotation {
            return false;
        }
        let tag = secret.tag(from);
        // Constant-time comparison: an attacker learns nothing from timing about the tag.
        tag.iter()
            .zip(&cookie[4..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Rotates the cookie secret when due and drops idle entries.
    pub fn handle_timeout<R: RngCore + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        self.rotate_if_due(now, rng);
        while let Some(&(deadline, addr)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.remove(&(deadline, addr));
            self.entries.remove(&addr);
            self.stats.expired += 1;
        }
    }

    /// When [`AntiAmplification::handle_timeout`] has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        let rotate = self.current.created + self.rotation;
        Some(
            self.by_deadline
                .first()
                .map_or(rotate, |(t, _)| (*t).min(rotate)),
        )
    }

    fn rotate_if_due<R: RngCore + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        if now < self.current.created + self.rotation {
            return;
        }
        let next = new_secret(self.current.epoch.wrapping_add(1), now, rng);
        self.previous = Some(std::mem::replace(&mut self.current, next));
    }

    fn update(&mut self, now: Instant, addr: SocketAddr, f: impl FnOnce(&mut Entry)) {
        if !self.entries.contains_key(&addr)
            && self.entries.len() >= self.capacity
            && let Some((_, victim)) = self.by_deadline.pop_first()
        {
            self.entries.remove(&victim);
            self.stats.evictions += 1;
        }
        let entry = self.entries.entry(addr).or_insert(Entry {
            received: 0,
            sent: 0,
            last_active: now,
            proven_until: None,
            deadline: now,
        });
        let old = entry.deadline;
        f(entry);
        let idle_end = entry.last_active + self.idle;
        entry.deadline = entry.proven_until.map_or(idle_end, |p| p.max(idle_end));
        let new = entry.deadline;
        self.by_deadline.remove(&(old, addr));
        self.by_deadline.insert((new, addr));
    }
}

fn new_secret<R: RngCore + ?Sized>(epoch: u32, now: Instant, rng: &mut R) -> Secret {
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    Secret {
        epoch,
        key,
        created: now,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::super::testutil::v4;
    use super::*;

    fn limits() -> AmplificationLimits {
        AmplificationLimits {
            factor: 3,
            capacity: 4,
            idle: Duration::from_secs(120),
            proof_lifetime: Duration::from_secs(600),
            rotation: Duration::from_secs(60),
        }
    }

    fn t(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    fn guard() -> (AntiAmplification, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (AntiAmplification::new(limits(), t(0), &mut rng), rng)
    }

    #[test]
    fn three_times_what_we_received() {
        let (mut g, _) = guard();
        let a = v4(8, 8, 8, 8, 1);
        assert!(
            g.try_send(t(0), a, 1).is_err(),
            "nothing received, nothing sent"
        );
        g.on_received(t(0), a, 100);
        assert_eq!(g.budget(t(0), a), 300);
        assert!(g.try_send(t(0), a, 200).is_ok());
        assert!(g.try_send(t(0), a, 100).is_ok());
        let refused = g.try_send(t(0), a, 1).unwrap_err();
        assert_eq!(refused.budget, 0);
        assert_eq!(g.stats().refused_sends, 2);
        g.on_received(t(1), a, 10);
        assert!(g.try_send(t(1), a, 30).is_ok());
        assert!(!g.allows_bulk(t(1), a));
        assert_eq!(g.stats().refused_bulk, 1);
        g.prove(t(2), a);
        assert!(g.try_send(t(2), a, 1_000_000).is_ok());
        assert!(g.allows_bulk(t(2), a));
        // Proof expires.
        assert!(!g.is_proven(t(602), a));
    }

    #[test]
    fn cookie_proves_only_its_address() {
        let (mut g, mut rng) = guard();
        let a = v4(8, 8, 8, 8, 1);
        let b = v4(8, 8, 8, 8, 2);
        let cookie = g.issue_cookie(t(0), a, &mut rng);
        assert_eq!(cookie.len(), COOKIE_LEN);
        assert!(!g.check_cookie_echo(t(1), b, &cookie));
        let mut forged = cookie.to_vec();
        forged[10] ^= 1;
        assert!(!g.check_cookie_echo(t(1), a, &forged));
        assert!(!g.check_cookie_echo(t(1), a, &cookie[..19]));
        assert!(!g.is_proven(t(1), a));
        assert!(g.check_cookie_echo(t(1), a, &cookie));
        assert!(g.is_proven(t(1), a));
        assert_eq!(g.stats().cookies_rejected, 3);
        assert_eq!(g.stats().cookies_accepted, 1);
    }

    #[test]
    fn cookies_survive_one_rotation_not_two() {
        let (mut g, mut rng) = guard();
        let a = v4(8, 8, 8, 8, 1);
        let cookie = g.issue_cookie(t(0), a, &mut rng);
        g.handle_timeout(t(60), &mut rng);
        assert!(
            g.cookie_valid(t(60), a, &cookie),
            "previous secret still honoured"
        );
        let fresh = g.issue_cookie(t(61), a, &mut rng);
        assert_ne!(fresh, cookie);
        assert!(!g.cookie_valid(t(120), a, &cookie), "two periods old");
        g.handle_timeout(t(120), &mut rng);
        assert!(!g.cookie_valid(t(121), a, &cookie), "secret rotated away");
        assert!(g.cookie_valid(t(121), a, &fresh));
        // Different seeds give different secrets.
        let mut other_rng = ChaCha8Rng::seed_from_u64(8);
        let mut other = AntiAmplification::new(limits(), t(0), &mut other_rng);
        assert!(!other.check_cookie_echo(t(1), a, &fresh));
    }

    #[test]
    fn table_is_bounded_and_expires() {
        let (mut g, mut rng) = guard();
        let p = v4(1, 1, 1, 1, 1);
        g.on_received(t(0), p, 10);
        g.prove(t(0), p);
        for i in 0..10 {
            g.on_received(t(1), v4(9, 9, 9, i, 1), 10);
        }
        assert_eq!(g.len(), 4);
        assert_eq!(g.stats().evictions, 7);
        assert!(
            g.is_proven(t(1), p),
            "proven entries outlive spoofed floods"
        );
        g.handle_timeout(t(200), &mut rng);
        assert_eq!(g.len(), 1, "idle unproven entries expire");
        g.handle_timeout(t(700), &mut rng);
        assert!(g.is_empty());
        assert_eq!(g.budget(t(700), p), 0);
    }
}
