//! One community's walker: the candidate table, the step timer and the outstanding requests
//! (Dispersy §9.2). The decisions for incoming walker messages are in `exchange.rs`.

use std::net::SocketAddr;

use bytes::Bytes;
use rand::Rng;

use super::address::{Family, canonical, is_valid};
use super::cache::RequestCache;
use super::candidate::Category;
use super::table::Candidates;
use super::{Config, Pace, Shared, Stats, Transmit};
use crate::ids::{GlobalTime, MemberId};
use crate::time::Instant;
use crate::wire::builtin::{IntroductionRequest, WalkerStyle};
use crate::wire::extension::{Extensions, kind};

/// An introduction-request we sent and have not finished with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingWalk {
    /// Where we sent it.
    pub target: SocketAddr,
    /// When.
    pub sent: Instant,
    /// Its response arrived.
    pub responded: bool,
    /// A puncture for it arrived.
    pub punctured: bool,
}

/// The walker state of one community.
#[derive(Debug, Clone)]
pub struct Walker {
    pub(super) config: Config,
    pub(super) me: MemberId,
    pub(super) candidates: Candidates,
    pub(super) requests: RequestCache<PendingWalk>,
    pub(super) next_step: Instant,
    pub(super) stats: Stats,
}

pub(super) fn style_for(new_style: bool, addrs: &[SocketAddr]) -> WalkerStyle {
    if new_style || addrs.iter().any(SocketAddr::is_ipv6) {
        WalkerStyle::New
    } else {
        WalkerStyle::Old
    }
}

impl Walker {
    /// A walker for a community in which we are `me`; the first step is due at `first_step`
    /// (Dispersy staggers communities by a few seconds).
    pub fn new(config: Config, me: MemberId, first_step: Instant) -> Walker {
        Walker {
            candidates: Candidates::new(config.max_candidates),
            requests: RequestCache::new(config.max_outstanding_requests),
            next_step: first_step,
            stats: Stats::default(),
            me,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The candidate table.
    pub fn candidates(&self) -> &Candidates {
        &self.candidates
    }

    /// The candidate table, mutably (for the discovery community, tests and tools).
    pub fn candidates_mut(&mut self) -> &mut Candidates {
        &mut self.candidates
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            table: self.candidates.stats(),
            ..self.stats
        }
    }

    /// Outstanding introduction-requests by identifier.
    pub fn pending(&self) -> impl Iterator<Item = (u16, &PendingWalk)> {
        self.requests.iter()
    }

    /// Number of walk and stumble candidates at `now` (Dispersy's verified candidates).
    pub fn verified_count(&self, now: Instant) -> usize {
        self.candidates
            .in_categories(now, &self.config, &[Category::Walk, Category::Stumble])
            .count()
    }

    /// Adds a candidate named by a tracker or the discovery community. False when the address
    /// is invalid, ours, or the table is full of more useful candidates.
    pub fn add_discovered(
        &mut self,
        now: Instant,
        shared: &Shared,
        addr: SocketAddr,
        tracker: bool,
    ) -> bool {
        let addr = canonical(addr);
        let was_empty = self.candidates.is_empty();
        let added = is_valid(addr)
            && !shared.addresses.is_ours(addr)
            && self
                .candidates
                .add_discovered(now, &self.config, addr, tracker);
        self.first_candidate(now, was_empty);
        added
    }

    /// After the table gained its first candidate: the next step comes at the pace that now
    /// applies (a step scheduled at Dispersy's pace while the table was empty is brought
    /// forward).
    pub(super) fn first_candidate(&mut self, now: Instant, was_empty: bool) {
        if was_empty && !self.candidates.is_empty() {
            let soon = now + self.pace(now).step_interval;
            self.next_step = self.next_step.min(soon);
        }
    }

    /// Records the highest global time a candidate claimed.
    pub fn set_global_time(&mut self, addr: SocketAddr, global_time: GlobalTime) {
        if let Some(c) = self.candidates.get_mut(canonical(addr)) {
            c.global_time = c.global_time.max(global_time);
        }
    }

    /// When [`Walker::handle_timeout`] must run next: the next step or request timeout.
    pub fn next_timeout(&self) -> Option<Instant> {
        Some(match self.requests.next_timeout() {
            Some(t) => t.min(self.next_step),
            None => self.next_step,
        })
    }

    /// Expires timed-out requests, and when a step is due cleans up the table and (when walking)
    /// returns the introduction-request of this step.
    pub fn handle_timeout<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        rng: &mut R,
    ) -> Option<Transmit<IntroductionRequest>> {
        self.expire_requests(now);
        if now < self.next_step {
            return None;
        }
        let pace = self.pace(now);
        // Keep the rhythm, but never schedule into the past after a long pause.
        self.next_step = (self.next_step + pace.step_interval).max(now);
        if self.next_step == now {
            self.next_step = now + pace.step_interval;
        }
        if self.config.walking {
            self.take_step(now, shared, &pace, rng)
        } else {
            self.cleanup(now, shared);
            None
        }
    }

    /// Drops requests whose response did not come in time; a target that never answered loses
    /// its walk category (its walk-reply is reset). Returns those targets.
    pub fn expire_requests(&mut self, now: Instant) -> Vec<SocketAddr> {
        let mut timed_out = Vec::new();
        while let Some((_, pending)) = self.requests.pop_expired(now) {
            if pending.responded {
                continue;
            }
            self.stats.walk_timeouts += 1;
            if let Some(c) = self.candidates.get_mut(pending.target) {
                c.last_walk_reply = None;
            }
            timed_out.push(pending.target);
        }
        timed_out
    }

    /// Removes obsolete candidates and our own addresses, withdrawing their WAN votes.
    pub fn cleanup(&mut self, now: Instant, shared: &mut Shared) {
        for gone in self
            .candidates
            .cleanup(now, &self.config, &shared.addresses)
        {
            shared.addresses.unvote(gone);
        }
    }

    /// The pace now: fast while verified candidates are fewer than the fast target, but
    /// Dispersy's while the table is empty (a node alone has nobody to walk to: it need not wake
    /// every second; bootstrap addresses and peers walking to us fill the table).
    pub fn pace(&self, now: Instant) -> Pace {
        if self.candidates.is_empty() {
            self.config.normal_pace()
        } else {
            self.config.pace(self.verified_count(now))
        }
    }

    /// One walk step at `pace`: cleanup, then an introduction-request to the chosen candidate.
    pub fn take_step<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        pace: &Pace,
        rng: &mut R,
    ) -> Option<Transmit<IntroductionRequest>> {
        self.cleanup(now, shared);
        if pace.fast {
            self.stats.fast_steps += 1;
        }
        let Some(target) =
            self.candidates
                .walk_target(now, &self.config, pace, &shared.addresses, rng)
        else {
            self.stats.no_walk_target += 1;
            return None;
        };
        self.walk_to(now, shared, target, rng)
    }

    /// An introduction-request to `target` now, whether or not it is a candidate (bootstrap,
    /// py-ipv8's `walk_to`). `None` when the address is invalid, ours, unreachable from our
    /// socket, or too many requests are outstanding.
    pub fn walk_to<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        shared: &Shared,
        target: SocketAddr,
        rng: &mut R,
    ) -> Option<Transmit<IntroductionRequest>> {
        let target = canonical(target);
        let local = &shared.addresses;
        if !is_valid(target) || local.is_ours(target) || !local.reachable(target) {
            return None;
        }
        let pending = PendingWalk {
            target,
            sent: now,
            responded: false,
            punctured: false,
        };
        let Ok(identifier) = self
            .requests
            .insert(now, self.config.request_timeout, pending, rng)
        else {
            self.stats.cache_full += 1;
            return None;
        };
        let mut extensions = Extensions::new();
        let mut new_style = false;
        if let Some(c) = self.candidates.get_mut(target) {
            c.last_walk = Some(now);
            new_style = c.supports_new_style;
            if let Some(cookie) = c.cookie.take() {
                // Cookies are at most MAX_COOKIE_LEN bytes, so this cannot fail.
                let _ = extensions.push(kind::COOKIE_ECHO, cookie);
            }
        }
        self.stats.walk_attempts += 1;
        let family = Family::of(target);
        let payload = IntroductionRequest {
            style: style_for(new_style, &[target]),
            destination: target,
            source_lan: local.lan(family),
            source_wan: local.wan(family),
            advice: true,
            connection_type: local.connection_type(family),
            supports_new_style: true,
            tunnel: false,
            unused_flags: 0,
            identifier,
            sync: None,
            extra: Bytes::new(),
        };
        Some(Transmit {
            destination: target,
            payload,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::FastWalk;
    use super::super::testutil::{Peer, t, v4};
    use super::*;

    #[test]
    fn timeout_resets_walk_reply() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let req = a.walk(t(0), b.seen_as);
        let out = b.answer(t(0), &a, &req);
        a.receive(t(0), &b, &out.response).unwrap();
        assert_eq!(a.category(b.seen_as, t(30)), Some(Category::Walk));
        // B stops answering.
        let _lost = a.walk(t(30), b.seen_as);
        assert_eq!(a.walker.expire_requests(t(40)), []);
        assert_eq!(a.walker.next_timeout(), Some(t(0)), "the step is still due");
        assert_eq!(
            a.walker.expire_requests(Instant::from_micros(40_500_000)),
            [b.seen_as]
        );
        assert_eq!(a.category(b.seen_as, t(41)), Some(Category::None));
        assert_eq!(a.walker.stats().walk_timeouts, 1);
    }

    /// A peer walking at Dispersy's pace (fast walking off).
    fn dispersy_paced(tag: u8, addr: SocketAddr) -> Peer {
        let mut p = Peer::public(tag, addr);
        let config = Config {
            fast: FastWalk::off(),
            ..Config::default()
        };
        p.walker = Walker::new(config, p.me, Instant::ZERO);
        p
    }

    #[test]
    fn steps_keep_their_rhythm() {
        let mut a = dispersy_paced(1, v4(1, 0, 0, 1, 1001));
        assert!(
            a.walker
                .handle_timeout(t(0), &mut a.shared, &mut a.rng)
                .is_none()
        );
        assert_eq!(a.walker.stats().no_walk_target, 1);
        assert_eq!(a.walker.next_timeout(), Some(t(5)));
        assert!(
            a.walker
                .handle_timeout(t(4), &mut a.shared, &mut a.rng)
                .is_none()
        );
        assert_eq!(
            a.walker.stats().no_walk_target,
            1,
            "no step before it is due"
        );
        for i in 1..=3u8 {
            a.walker
                .add_discovered(t(4), &a.shared, v4(9, 0, 0, i, 1), false);
        }
        for step in 1..=3u64 {
            let at = t(5 * step);
            assert!(
                a.walker
                    .handle_timeout(at, &mut a.shared, &mut a.rng)
                    .is_some()
            );
            let early = at + Duration::from_millis(4_900);
            assert!(
                a.walker
                    .handle_timeout(early, &mut a.shared, &mut a.rng)
                    .is_none()
            );
        }
        assert_eq!(a.walker.stats().walk_attempts, 3);
        // After a long pause the next step comes one interval after the late one.
        assert!(
            a.walker
                .handle_timeout(t(100), &mut a.shared, &mut a.rng)
                .is_none()
        );
        assert_eq!(
            a.walker.stats().no_walk_target,
            2,
            "all three walked within 27.5 s... or gone"
        );
        assert!(a.walker.next_timeout().is_some_and(|n| n <= t(105)));
    }

    #[test]
    fn fast_pace_while_verified_candidates_are_few() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let config = Config {
            fast: FastWalk {
                target: 2,
                ..FastWalk::default()
            },
            ..Config::default()
        };
        a.walker = Walker::new(config, a.me, Instant::ZERO);
        let step = |a: &mut Peer, at: Instant| {
            a.walker
                .handle_timeout(at, &mut a.shared, &mut a.rng)
                .map(|r| r.destination)
        };
        // Alone with an empty table: Dispersy's 5 s, there is nobody to walk to.
        assert_eq!(step(&mut a, t(0)), None);
        assert_eq!(a.walker.next_timeout(), Some(t(5)));
        // One discovered candidate: the next step is brought forward to the fast pace...
        let b = v4(2, 0, 0, 2, 1002);
        a.walker.add_discovered(t(4), &a.shared, b, false);
        assert_eq!(a.walker.next_timeout(), Some(t(5)));
        let mut lone = Peer::public(9, v4(9, 0, 0, 9, 1009));
        lone.walker = Walker::new(a.walker.config().clone(), lone.me, Instant::ZERO);
        assert_eq!(step(&mut lone, t(0)), None);
        lone.walker.add_discovered(t(1), &lone.shared, b, false);
        assert_eq!(lone.walker.next_timeout(), Some(t(2)), "not t(5)");
        let mut stumbled = Peer::public(8, v4(8, 0, 0, 8, 1008));
        stumbled.walker = Walker::new(a.walker.config().clone(), stumbled.me, Instant::ZERO);
        assert_eq!(step(&mut stumbled, t(0)), None);
        let mut visitor = Peer::public(7, v4(7, 0, 0, 7, 1007));
        let req = visitor.walk(t(1), stumbled.seen_as);
        stumbled.answer(t(1), &visitor, &req);
        assert_eq!(
            stumbled.walker.next_timeout(),
            Some(t(2)),
            "a visitor counts too"
        );
        // ... a step every second, and it is walked again after 5 s, not 27.5 s.
        assert_eq!(step(&mut a, t(5)), Some(b));
        assert_eq!(a.walker.next_step, t(6));
        for s in 6..=9 {
            assert_eq!(step(&mut a, t(s)), None, "{s} s");
        }
        assert_eq!(step(&mut a, t(10)), Some(b));
        // A tracker after 10 s.
        let tracker = v4(3, 0, 0, 3, 6421);
        a.walker.add_discovered(t(11), &a.shared, tracker, true);
        assert_eq!(step(&mut a, t(11)), Some(tracker));
        assert_eq!(step(&mut a, t(16)), Some(b));
        assert_eq!(step(&mut a, t(20)), None, "the tracker waits 10 s");
        assert_eq!(step(&mut a, t(21)), Some(b), "discovered first");
        assert_eq!(step(&mut a, t(22)), Some(tracker));
        assert!(a.walker.stats().fast_steps >= 10);

        // Two verified candidates reach the target: Dispersy's pace again.
        for (tag, port) in [(4u8, 1004u16), (5, 1005)] {
            let mut p = Peer::public(tag, v4(tag, 0, 0, tag, port));
            let req = p.walk(t(23), a.seen_as);
            a.answer(t(23), &p, &req);
        }
        assert!(!a.walker.pace(t(23)).fast);
        let _ = step(&mut a, t(23));
        assert_eq!(a.walker.next_step, t(28), "5 s again");
    }
}
