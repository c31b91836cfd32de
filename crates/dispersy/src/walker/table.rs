//! The candidate table of one community: lookup, bounded insertion, cleanup, duplicate merging,
//! choosing the next walk target and choosing whom to introduce (Dispersy §9.1–9.3, 9.5).
//!
//! Candidates are kept in insertion order (an `IndexMap`), so every decision that scans the
//! table is reproducible from the RNG seed alone.

use std::net::SocketAddr;

use indexmap::IndexMap;
use rand::Rng;
use serde::Serialize;

use super::address::{AddressEstimator, Family, is_valid};
use super::candidate::{Candidate, Category};
use super::{Config, Pace, Probabilities};
use crate::time::Instant;
use crate::wire::builtin::ConnectionType;

/// How [`Candidates::introduce`] picks among walk and stumble candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntroduceMode {
    /// A coin flip decides whether walk or stumble candidates are tried first (a normal node).
    CoinFlip,
    /// One round robin over walk and stumble candidates together (a tracker: no preference).
    RoundRobin,
}

/// Counters of one candidate table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    /// Candidates dropped to make room for a more useful one.
    pub evictions: u64,
    /// New candidates refused because the table was full of more useful ones.
    pub refused: u64,
    /// Duplicates merged into another candidate (§9.5).
    pub merged: u64,
    /// Obsolete candidates removed by cleanup.
    pub obsolete: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cursor(Option<(SocketAddr, usize)>);

const WALK: usize = 0;
const STUMBLE: usize = 1;
const BOTH: usize = 2;

/// The candidates of one community, keyed by socket address; at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct Candidates {
    map: IndexMap<SocketAddr, Candidate>,
    capacity: usize,
    cursors: [Cursor; 3],
    stats: TableStats,
}

impl Candidates {
    /// An empty table holding at most `capacity` candidates (at least one).
    pub fn new(capacity: usize) -> Candidates {
        Candidates {
            map: IndexMap::new(),
            capacity: capacity.max(1),
            cursors: [Cursor::default(); 3],
            stats: TableStats::default(),
        }
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether the table is at its capacity.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.capacity
    }

    /// Counters.
    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// The candidate at `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<&Candidate> {
        self.map.get(&addr)
    }

    /// The candidate at `addr`, mutably.
    pub fn get_mut(&mut self, addr: SocketAddr) -> Option<&mut Candidate> {
        self.map.get_mut(&addr)
    }

    /// All candidates in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Candidate> {
        self.map.values()
    }

    /// Candidates of the given categories at `now`, in insertion order. Dispersy's "verified"
    /// candidates are walk and stumble; its "yield" candidates add intro.
    pub fn in_categories<'a>(
        &'a self,
        now: Instant,
        config: &'a Config,
        categories: &'a [Category],
    ) -> impl Iterator<Item = &'a Candidate> + 'a {
        self.map
            .values()
            .filter(move |c| categories.contains(&c.category(now, config)))
    }

    /// The candidate at `addr`, created if absent and there is room, or room can be made by
    /// evicting a candidate no more useful than one of category `intended`. `None` when the table
    /// is full of more useful candidates (counted as refused).
    pub fn entry(
        &mut self,
        now: Instant,
        config: &Config,
        addr: SocketAddr,
        intended: Category,
    ) -> Option<&mut Candidate> {
        if !self.map.contains_key(&addr) {
            if self.is_full() {
                let victim = self
                    .map
                    .values()
                    .map(|c| (usefulness(c, now, config), c.address))
                    .min()?;
                if victim.0.0 > intended {
                    self.stats.refused += 1;
                    return None;
                }
                self.map.shift_remove(&victim.1);
                self.stats.evictions += 1;
            }
            self.map.insert(addr, Candidate::new(addr));
        }
        self.map.get_mut(&addr)
    }

    /// Adds (or refreshes) a candidate named by a tracker or the discovery community.
    pub fn add_discovered(
        &mut self,
        now: Instant,
        config: &Config,
        addr: SocketAddr,
        tracker: bool,
    ) -> bool {
        match self.entry(now, config, addr, Category::Discovered) {
            Some(c) => {
                c.last_discovered = Some(now);
                c.tracker |= tracker;
                true
            }
            None => false,
        }
    }

    /// Removes the candidate at `addr`.
    pub fn remove(&mut self, addr: SocketAddr) -> Option<Candidate> {
        self.map.shift_remove(&addr)
    }

    /// Dispersy's lookup of an unknown address (§9.5): an existing symmetric-NAT candidate with
    /// the same IP whose LAN address matches `lan` (or is unknown) is the same peer on a new NAT
    /// port; it is moved to `addr`. Returns the old address when that happened.
    pub fn adopt_symmetric(&mut self, addr: SocketAddr, lan: SocketAddr) -> Option<SocketAddr> {
        if self.map.contains_key(&addr) {
            return None;
        }
        let old = self
            .map
            .values()
            .find(|c| {
                c.connection_type == ConnectionType::SymmetricNat
                    && c.address.ip() == addr.ip()
                    && (!is_valid(c.lan) || !is_valid(lan) || c.lan == lan)
            })?
            .address;
        let (index, _, mut candidate) = self.map.shift_remove_full(&old)?;
        candidate.address = addr;
        self.map.shift_insert(index, addr, candidate);
        Some(old)
    }

    /// Merges every other candidate with the same WAN IP and the same LAN address as the one at
    /// `addr` into it (the same peer behind a symmetric NAT, seen on several ports; §9.5).
    /// Candidates associated with a different member are left alone. Returns the removed
    /// addresses, whose WAN votes the caller withdraws.
    pub fn merge_duplicates(&mut self, addr: SocketAddr) -> Vec<SocketAddr> {
        let Some(keep) = self.map.get(&addr) else {
            return Vec::new();
        };
        if !keep.has_both_addresses() {
            return Vec::new();
        }
        let (lan, wan_ip, member) = (keep.lan, keep.wan.ip(), keep.member);
        let duplicates: Vec<SocketAddr> = self
            .map
            .values()
            .filter(|c| {
                c.address != addr
                    && c.lan == lan
                    && is_valid(c.wan)
                    && c.wan.ip() == wan_ip
                    && (member.is_none() || c.member.is_none() || c.member == member)
            })
            .map(|c| c.address)
            .collect();
        for dup in &duplicates {
            if let Some(other) = self.map.shift_remove(dup) {
                if let Some(keep) = self.map.get_mut(&addr) {
                    keep.absorb(&other);
                }
                self.stats.merged += 1;
            }
        }
        duplicates
    }

    /// Removes obsolete candidates (category none) and any that turned out to be our own
    /// address. Returns the removed addresses, whose WAN votes the caller withdraws.
    pub fn cleanup(
        &mut self,
        now: Instant,
        config: &Config,
        local: &AddressEstimator,
    ) -> Vec<SocketAddr> {
        let mut removed = Vec::new();
        self.map.retain(|addr, c| {
            let keep = c.category(now, config) != Category::None && !local.is_ours(*addr);
            if !keep {
                removed.push(*addr);
            }
            keep
        });
        self.stats.obsolete += removed.len() as u64;
        removed
    }

    /// The next walk target (§9.2): per category the eligible candidate with the oldest relevant
    /// timestamp, then a category drawn with the configured probabilities, falling back to the
    /// other categories when the drawn one is empty.
    pub fn walk_target<R: Rng + ?Sized>(
        &self,
        now: Instant,
        config: &Config,
        pace: &Pace,
        local: &AddressEstimator,
        rng: &mut R,
    ) -> Option<SocketAddr> {
        // walk, stumble, intro, discovered
        let mut oldest: [Option<(Option<Instant>, SocketAddr)>; 4] = [None; 4];
        for c in self.map.values() {
            if !c.is_eligible(now, config, pace)
                || local.is_ours(c.address)
                || !local.reachable(c.address)
            {
                continue;
            }
            let category = c.category(now, config);
            let slot = match category {
                Category::Walk => 0,
                Category::Stumble => 1,
                Category::Intro => 2,
                Category::Discovered => 3,
                Category::None => continue,
            };
            let key = (c.category_time(category), c.address);
            // `None` (never) sorts first: it is the oldest. Ties keep insertion order.
            if oldest[slot].is_none_or(|best| key.0 < best.0) {
                oldest[slot] = Some(key);
            }
        }
        let [walk, stumble, intro, discovered] = oldest.map(|o| o.map(|(_, a)| a));
        choose(walk, stumble, intro, discovered, &config.probabilities, rng)
    }

    /// Whom to introduce to `requester` (§9.3): round robin over walk and stumble candidates
    /// (see [`IntroduceMode`]), skipping the requester itself (by address or member), trackers
    /// (every peer already has its bootstrap trackers; introducing one wastes the introduction,
    /// which early in a walk is often the only way to a new peer), candidates
    /// without both a LAN and a WAN address, candidates of another address family, our own
    /// addresses, and pairs that cannot puncture: two symmetric-NAT peers behind different WAN IPs.
    pub fn introduce<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        config: &Config,
        local: &AddressEstimator,
        requester: &Candidate,
        mode: IntroduceMode,
        rng: &mut R,
    ) -> Option<SocketAddr> {
        let requester_wan_ip = if is_valid(requester.wan) {
            requester.wan.ip()
        } else {
            requester.address.ip()
        };
        let acceptable = |c: &Candidate| {
            c.address != requester.address
                && !c.tracker
                && (c.member.is_none() || c.member != requester.member)
                && c.has_both_addresses()
                && Family::of(c.address) == Family::of(requester.address)
                && !local.is_ours(c.address)
                && !(c.connection_type == ConnectionType::SymmetricNat
                    && requester.connection_type == ConnectionType::SymmetricNat
                    && c.wan.ip() != requester_wan_ip)
        };
        match mode {
            IntroduceMode::RoundRobin => self.round_robin(BOTH, |c| {
                matches!(c.category(now, config), Category::Walk | Category::Stumble)
                    && acceptable(c)
            }),
            IntroduceMode::CoinFlip => {
                let order = if rng.gen_bool(0.5) {
                    [WALK, STUMBLE]
                } else {
                    [STUMBLE, WALK]
                };
                order.into_iter().find_map(|which| {
                    let category = if which == WALK {
                        Category::Walk
                    } else {
                        Category::Stumble
                    };
                    self.round_robin(which, |c| {
                        c.category(now, config) == category && acceptable(c)
                    })
                })
            }
        }
    }

    /// Scans once around the table from just after the cursor; the first match moves the cursor.
    fn round_robin(
        &mut self,
        which: usize,
        pred: impl Fn(&Candidate) -> bool,
    ) -> Option<SocketAddr> {
        let n = self.map.len();
        if n == 0 {
            return None;
        }
        let start = match self.cursors[which].0 {
            // The cursor's candidate may be gone; the one that took its place comes next.
            Some((addr, index)) => self.map.get_index_of(&addr).map_or(index, |i| i + 1),
            None => 0,
        };
        for k in 0..n {
            let i = (start + k) % n;
            if let Some((addr, c)) = self.map.get_index(i)
                && pred(c)
            {
                let addr = *addr;
                self.cursors[which] = Cursor(Some((addr, i)));
                return Some(addr);
            }
        }
        None
    }
}

/// Orders candidates for eviction: lowest category first, trackers after others within a
/// category, then least recently seen.
fn usefulness(c: &Candidate, now: Instant, config: &Config) -> (Category, bool, Option<Instant>) {
    (c.category(now, config), c.tracker, c.last_seen())
}

/// Dispersy's category draw, with the probabilities as parameters.
fn choose<R: Rng + ?Sized>(
    walk: Option<SocketAddr>,
    stumble: Option<SocketAddr>,
    intro: Option<SocketAddr>,
    discovered: Option<SocketAddr>,
    p: &Probabilities,
    rng: &mut R,
) -> Option<SocketAddr> {
    // Nothing eligible at all: no step.
    walk.or(stumble).or(intro).or(discovered)?;
    let both = p.stumble + p.intro;
    let stumble_or_intro = |rng: &mut R| {
        let stumble_first = both > 0.0 && rng.r#gen::<f64>() * both < p.stumble;
        if stumble_first {
            stumble.or(intro)
        } else {
            intro.or(stumble)
        }
    };
    let r1 = rng.r#gen::<f64>();
    if r1 < p.walk {
        return walk.or_else(|| stumble_or_intro(rng)).or(discovered);
    }
    if r1 < p.walk + both {
        return stumble_or_intro(rng).or(walk).or(discovered);
    }
    if discovered.is_some() {
        return discovered;
    }
    // Dispersy redraws when the discovered category is empty: the same as drawing again among
    // the other two branches.
    let redraw = rng.r#gen::<f64>() * (p.walk + both);
    if redraw < p.walk {
        walk.or_else(|| stumble_or_intro(rng))
    } else {
        stumble_or_intro(rng).or(walk)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::super::testutil::seeded;
    use super::super::testutil::v4;
    use super::*;

    fn secs(s: f64) -> Instant {
        Instant::from_micros((s * 1e6) as u64)
    }

    fn local() -> AddressEstimator {
        AddressEstimator::new(std::time::Duration::from_secs(300), 64)
    }

    /// Dispersy's test flags: w walked, r walked and answered, e walked 27.5 s ago + response,
    /// s stumbled, i introduced, d discovered.
    fn flagged(table: &mut Candidates, config: &Config, now: Instant, port: u16, flags: &str) {
        let addr = v4(1, 0, 0, 1, port);
        let c = table.entry(now, config, addr, Category::Walk).unwrap();
        c.lan = addr;
        c.wan = addr;
        for f in flags.chars() {
            match f {
                'w' => c.last_walk = Some(now),
                'r' => {
                    c.last_walk = Some(now);
                    c.last_walk_reply = Some(now);
                }
                'e' => {
                    c.last_walk = Some(now.saturating_sub(config.eligible_delay));
                    c.last_walk_reply = Some(now);
                }
                's' => c.last_stumble = Some(now),
                'i' => c.last_intro = Some(now),
                'd' => c.last_discovered = Some(now),
                _ => unreachable!(),
            }
        }
    }

    fn intro(
        t: &mut Candidates,
        now: Instant,
        requester: &Candidate,
        mode: IntroduceMode,
        rng: &mut ChaCha8Rng,
    ) -> Option<SocketAddr> {
        t.introduce(now, &Config::default(), &local(), requester, mode, rng)
    }

    fn set(addrs: impl IntoIterator<Item = SocketAddr>) -> Vec<u16> {
        let mut v: Vec<u16> = addrs.into_iter().map(|a| a.port()).collect();
        v.sort();
        v
    }

    #[test]
    fn yield_verified_introduce_and_walk_sets() {
        let config = Config::default();
        let now = secs(100.0);
        let flags = ["", "w", "r", "e", "s", "i", "d", "ws", "wi", "wd", "ri"];
        let mut t = Candidates::new(64);
        for (i, f) in flags.iter().enumerate() {
            flagged(&mut t, &config, now, i as u16 + 1, f);
        }
        let port = |f: &str| flags.iter().position(|x| *x == f).unwrap() as u16 + 1;
        let yielded = set(t
            .in_categories(
                now,
                &config,
                &[Category::Walk, Category::Stumble, Category::Intro],
            )
            .map(|c| c.address));
        let mut expect = vec![
            port("r"),
            port("e"),
            port("s"),
            port("i"),
            port("ws"),
            port("wi"),
            port("ri"),
        ];
        expect.sort();
        assert_eq!(yielded, expect);
        let verified = set(t
            .in_categories(now, &config, &[Category::Walk, Category::Stumble])
            .map(|c| c.address));
        let mut expect = vec![port("r"), port("e"), port("s"), port("ws"), port("ri")];
        expect.sort();
        assert_eq!(verified, expect);

        // Introduce: every verified candidate comes up in turn, never the requester.
        let (seed, mut rng) = seeded("yield_verified_introduce_and_walk_sets");
        let requester = Candidate::new(v4(1, 0, 0, 1, port("r")));
        let mut seen = Vec::new();
        for _ in 0..40 {
            let got = intro(&mut t, now, &requester, IntroduceMode::CoinFlip, &mut rng).unwrap();
            assert_ne!(got, requester.address, "seed {seed}");
            seen.push(got);
        }
        let mut expect_intro = verified.clone();
        expect_intro.retain(|p| *p != port("r"));
        let mut seen = set(seen);
        seen.dedup();
        assert_eq!(seen, expect_intro, "seed {seed}");

        // Walk targets: e, or s/i/d that were not walked recently. Walk each once: none remain.
        let mut walked = Vec::new();
        while let Some(addr) =
            t.walk_target(now, &config, &config.normal_pace(), &local(), &mut rng)
        {
            t.get_mut(addr).unwrap().last_walk = Some(now);
            walked.push(addr);
        }
        let mut expect = vec![port("e"), port("s"), port("i"), port("d")];
        expect.sort();
        assert_eq!(set(walked), expect, "seed {seed}");
    }

    #[test]
    fn introduce_is_none_when_nobody_fits() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(8);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let nobody = Candidate::new(v4(9, 9, 9, 9, 9));
        assert_eq!(
            intro(&mut t, now, &nobody, IntroduceMode::CoinFlip, &mut rng),
            None
        );
        flagged(&mut t, &config, now, 1, "i");
        flagged(&mut t, &config, now, 2, "d");
        assert_eq!(
            intro(&mut t, now, &nobody, IntroduceMode::CoinFlip, &mut rng),
            None
        );
    }

    #[test]
    fn introduce_round_robin_none_1_2_3_4() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(8);
        let (seed, mut rng) = seeded("introduce_round_robin_none_1_2_3_4");
        for port in 1..=5 {
            flagged(&mut t, &config, now, port, "");
        }
        let mut got = Vec::new();
        for port in 1..=5 {
            let addr = v4(1, 0, 0, 1, port);
            t.get_mut(addr).unwrap().last_stumble = Some(now);
            let requester = t.get(addr).unwrap().clone();
            got.push(
                intro(&mut t, now, &requester, IntroduceMode::CoinFlip, &mut rng).map(|a| a.port()),
            );
        }
        assert_eq!(
            got,
            [None, Some(1), Some(2), Some(3), Some(4)],
            "seed {seed}"
        );
    }

    #[test]
    fn trackers_are_not_introduced() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(8);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        flagged(&mut t, &config, now, 1, "r");
        flagged(&mut t, &config, now, 2, "s");
        t.get_mut(v4(1, 0, 0, 1, 1)).unwrap().tracker = true;
        let requester = Candidate::new(v4(9, 9, 9, 9, 9));
        for _ in 0..8 {
            assert_eq!(
                intro(&mut t, now, &requester, IntroduceMode::CoinFlip, &mut rng),
                Some(v4(1, 0, 0, 1, 2))
            );
        }
    }

    #[test]
    fn tracker_round_robin_has_no_preference() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(8);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for port in 1..=5 {
            flagged(
                &mut t,
                &config,
                now,
                port,
                if port % 2 == 0 { "r" } else { "s" },
            );
        }
        let requester = t.get(v4(1, 0, 0, 1, 3)).unwrap().clone();
        let got: Vec<u16> = (0..8)
            .map(|_| {
                intro(&mut t, now, &requester, IntroduceMode::RoundRobin, &mut rng)
                    .unwrap()
                    .port()
            })
            .collect();
        assert_eq!(got, [1, 2, 4, 5, 1, 2, 4, 5]);
    }

    #[test]
    fn introduction_walk_vs_stumble_is_even() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(8);
        let (seed, mut rng) = seeded("introduction_walk_vs_stumble_is_even");
        flagged(&mut t, &config, now, 1, "r");
        flagged(&mut t, &config, now, 2, "s");
        let requester = Candidate::new(v4(9, 9, 9, 9, 9));
        let rounds = 2000;
        let walks = (0..rounds)
            .filter(|_| {
                intro(&mut t, now, &requester, IntroduceMode::CoinFlip, &mut rng)
                    == Some(v4(1, 0, 0, 1, 1))
            })
            .count();
        let share = walks as f64 / rounds as f64;
        assert!(
            (0.45..=0.55).contains(&share),
            "walk share {share}, seed {seed}"
        );
    }

    #[test]
    fn walk_probabilities() {
        let config = Config::default();
        let now = secs(100.0);
        let mut t = Candidates::new(8);
        let (seed, mut rng) = seeded("walk_probabilities");
        for (port, f) in [(1, "e"), (2, "s"), (3, "i"), (4, "d")] {
            flagged(&mut t, &config, now, port, f);
        }
        let rounds = 100_000;
        let mut counts = [0usize; 4];
        for _ in 0..rounds {
            let a = t
                .walk_target(now, &config, &config.normal_pace(), &local(), &mut rng)
                .unwrap();
            counts[usize::from(a.port()) - 1] += 1;
        }
        for (got, expect) in counts.iter().zip([0.475, 0.2375, 0.2375, 0.05]) {
            let share = *got as f64 / rounds as f64;
            assert!(
                (share - expect).abs() <= expect * 0.1,
                "share {share} vs {expect}, counts {counts:?}, seed {seed}"
            );
        }
    }

    #[test]
    fn oldest_per_category_is_walked_first() {
        let config = Config::default();
        let mut t = Candidates::new(8);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        flagged(&mut t, &config, secs(20.0), 1, "s");
        flagged(&mut t, &config, secs(10.0), 2, "s");
        flagged(&mut t, &config, secs(30.0), 3, "s");
        assert_eq!(
            t.walk_target(
                secs(31.0),
                &config,
                &config.normal_pace(),
                &local(),
                &mut rng
            ),
            Some(v4(1, 0, 0, 1, 2))
        );
    }

    #[test]
    fn merge_four_candidates_behind_one_nat() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(8);
        let lan = v4(192, 168, 1, 5, 7000);
        for port in 1..=4 {
            let addr = v4(2, 2, 2, 2, port);
            let c = t.entry(now, &config, addr, Category::Stumble).unwrap();
            c.lan = lan;
            c.wan = addr;
            c.last_stumble = Some(secs(f64::from(port)));
        }
        // Another peer behind the same NAT with another LAN address stays.
        let other = t
            .entry(now, &config, v4(2, 2, 2, 2, 9), Category::Stumble)
            .unwrap();
        other.lan = v4(192, 168, 1, 6, 7000);
        other.wan = v4(2, 2, 2, 2, 9);
        other.last_stumble = Some(now);
        let removed = t.merge_duplicates(v4(2, 2, 2, 2, 4));
        assert_eq!(removed.len(), 3);
        assert_eq!(t.len(), 2);
        assert_eq!(t.stats().merged, 3);
        assert_eq!(
            t.get(v4(2, 2, 2, 2, 4)).unwrap().last_stumble,
            Some(secs(4.0))
        );
    }

    #[test]
    fn symmetric_nat_candidate_moves_to_its_new_port() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(8);
        let old = v4(3, 3, 3, 3, 1000);
        let c = t.entry(now, &config, old, Category::Stumble).unwrap();
        c.connection_type = ConnectionType::SymmetricNat;
        c.lan = v4(10, 0, 0, 2, 7000);
        let new = v4(3, 3, 3, 3, 1001);
        assert_eq!(
            t.adopt_symmetric(new, v4(10, 0, 0, 3, 7000)),
            None,
            "other LAN"
        );
        assert_eq!(t.adopt_symmetric(new, v4(10, 0, 0, 2, 7000)), Some(old));
        assert!(t.get(old).is_none());
        assert_eq!(t.get(new).unwrap().address, new);
    }

    #[test]
    fn bounded_table_keeps_the_most_useful() {
        let config = Config::default();
        let now = secs(10.0);
        let mut t = Candidates::new(3);
        assert!(t.add_discovered(now, &config, v4(1, 0, 0, 1, 1), true));
        for port in 2..=3 {
            let c = t
                .entry(now, &config, v4(1, 0, 0, 1, port), Category::Walk)
                .unwrap();
            c.last_walk_reply = Some(now);
        }
        // A newly introduced peer replaces the discovered tracker.
        let c = t
            .entry(now, &config, v4(1, 0, 0, 1, 4), Category::Intro)
            .unwrap();
        c.last_intro = Some(now);
        assert!(t.get(v4(1, 0, 0, 1, 1)).is_none());
        assert_eq!(t.stats().evictions, 1);
        // Another intro replaces the older intro, not the walk candidates.
        let later = secs(11.0);
        t.entry(later, &config, v4(1, 0, 0, 1, 5), Category::Intro)
            .unwrap()
            .last_intro = Some(later);
        assert!(t.get(v4(1, 0, 0, 1, 4)).is_none());
        // A discovered address cannot push out anything more useful.
        assert!(!t.add_discovered(later, &config, v4(1, 0, 0, 1, 6), false));
        assert_eq!(t.stats().refused, 1);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn cleanup_removes_obsolete_and_own() {
        let config = Config::default();
        let mut t = Candidates::new(8);
        flagged(&mut t, &config, secs(0.0), 1, "s");
        flagged(&mut t, &config, secs(50.0), 2, "s");
        flagged(&mut t, &config, secs(50.0), 3, "s");
        let mut me = local();
        me.set_interfaces(super::super::address::LocalInterfaces {
            bound: v4(1, 0, 0, 1, 3),
            interfaces: vec![],
        });
        let removed = t.cleanup(secs(60.0), &config, &me);
        assert_eq!(set(removed), [1, 3]);
        assert_eq!(t.len(), 1);
    }
}
