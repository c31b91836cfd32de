//! Tracker mode: answer introduction-requests for any community and introduce the peers of each
//! community to one another (Dispersy §13, py-ipv8 §9.1).
//!
//! A tracker keeps one [`Walker`] per community it has heard of, built with [`Config::tracker`]
//! (no walking, round-robin introductions, smaller tables). Communities are bounded too: one idle
//! for [`Config::tracker_idle`] is forgotten, and when the table is full the community that helps
//! least is evicted: first those with at most one verified peer (a lone peer gains nothing from
//! a tracker, and a flood of made-up community ids looks exactly like that), then the least
//! recently active.

use indexmap::IndexMap;
use rand::Rng;
use serde::Serialize;

use super::{Config, Shared, Walker};
use crate::ids::{CommunityId, MemberId};
use crate::time::Instant;

/// Counters of a tracker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TrackerStats {
    /// Communities started.
    pub communities_created: u64,
    /// Communities forgotten after going idle.
    pub communities_idle: u64,
    /// Communities evicted because the table was full.
    pub communities_evicted: u64,
}

#[derive(Debug, Clone)]
struct Tracked {
    walker: Walker,
    last_active: Instant,
}

/// The per-community walkers of a tracker.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: Config,
    me: MemberId,
    communities: IndexMap<CommunityId, Tracked>,
    stats: TrackerStats,
}

impl Tracker {
    /// A tracker signing as `me`. `config` is used for every community's walker; walking is
    /// forced off.
    pub fn new(config: Config, me: MemberId) -> Tracker {
        Tracker {
            config: Config {
                walking: false,
                ..config
            },
            me,
            communities: IndexMap::new(),
            stats: TrackerStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// Number of communities tracked.
    pub fn len(&self) -> usize {
        self.communities.len()
    }

    /// Whether no community is tracked.
    pub fn is_empty(&self) -> bool {
        self.communities.is_empty()
    }

    /// The walker of a community, if tracked.
    pub fn get(&self, community: &CommunityId) -> Option<&Walker> {
        self.communities.get(community).map(|t| &t.walker)
    }

    /// Tracked communities and their walkers.
    pub fn iter(&self) -> impl Iterator<Item = (&CommunityId, &Walker)> {
        self.communities.iter().map(|(id, t)| (id, &t.walker))
    }

    /// The walker for a community a request just arrived for, created (evicting another
    /// community if the table is full) when new. Marks the community active.
    pub fn walker_mut(&mut self, now: Instant, community: CommunityId) -> &mut Walker {
        if !self.communities.contains_key(&community)
            && self.communities.len() >= self.config.tracker_max_communities
        {
            self.evict_one(now);
        }
        let (config, me, stats) = (&self.config, self.me, &mut self.stats);
        let tracked = self.communities.entry(community).or_insert_with(|| {
            stats.communities_created += 1;
            Tracked {
                walker: Walker::new(config.clone(), me, now + config.step_interval),
                last_active: now,
            }
        });
        tracked.last_active = now;
        &mut tracked.walker
    }

    fn evict_one(&mut self, now: Instant) {
        let victim = self
            .communities
            .iter()
            .map(|(id, t)| ((t.walker.verified_count(now) > 1, t.last_active), *id))
            .min()
            .map(|(_, id)| id);
        if let Some(id) = victim {
            self.communities.shift_remove(&id);
            self.stats.communities_evicted += 1;
        }
    }

    /// Runs every community's timers (request expiry, cleanup) and forgets idle communities.
    pub fn handle_timeout<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        rng: &mut R,
    ) {
        let idle = self.config.tracker_idle;
        let before = self.communities.len();
        self.communities.retain(|_, t| t.last_active + idle > now);
        self.stats.communities_idle += (before - self.communities.len()) as u64;
        for t in self.communities.values_mut() {
            if t.walker.next_timeout().is_some_and(|at| at <= now) {
                // Walking is off, so this never produces a request.
                let _ = t.walker.handle_timeout(now, shared, rng);
            }
        }
    }

    /// When [`Tracker::handle_timeout`] has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.communities
            .values()
            .flat_map(|t| {
                [
                    t.walker.next_timeout(),
                    Some(t.last_active + self.config.tracker_idle),
                ]
            })
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::super::testutil::v4;
    use super::super::{Sender, Transmit};
    use super::*;
    use crate::ids::GlobalTime;
    use crate::wire::builtin::{ConnectionType, IntroductionRequest, WalkerStyle};
    use crate::wire::extension::Extensions;

    fn t(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    fn request(from: std::net::SocketAddr, to: std::net::SocketAddr) -> IntroductionRequest {
        IntroductionRequest {
            style: WalkerStyle::Old,
            destination: to,
            source_lan: from,
            source_wan: from,
            advice: true,
            connection_type: ConnectionType::Unknown,
            supports_new_style: false,
            tunnel: false,
            unused_flags: 0,
            identifier: 1,
            sync: None,
            extra: bytes::Bytes::new(),
        }
    }

    fn ask(
        tracker: &mut Tracker,
        shared: &mut Shared,
        rng: &mut ChaCha8Rng,
        now: Instant,
        community: u8,
        peer: u8,
    ) -> Option<std::net::SocketAddr> {
        let me = v4(6, 6, 6, 6, 6421);
        let from = v4(40, 0, community, peer, 7000);
        let sender = Sender {
            address: from,
            member: MemberId([peer; 20]),
            global_time: GlobalTime(1),
        };
        let walker = tracker.walker_mut(now, CommunityId([community; 20]));
        let out = walker
            .on_introduction_request(
                now,
                shared,
                sender,
                &request(from, me),
                &Extensions::new(),
                rng,
            )
            .unwrap();
        out.puncture_request.map(|p: Transmit<_>| p.destination)
    }

    fn setup() -> (Tracker, Shared, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let config = Config {
            tracker_max_communities: 3,
            ..Config::tracker()
        };
        let shared = Shared::new(&config, t(0), &mut rng);
        (Tracker::new(config, MemberId([0xee; 20])), shared, rng)
    }

    #[test]
    fn introduces_peers_of_the_same_community_only() {
        let (mut tr, mut shared, mut rng) = setup();
        assert_eq!(ask(&mut tr, &mut shared, &mut rng, t(0), 1, 1), None);
        assert_eq!(
            ask(&mut tr, &mut shared, &mut rng, t(0), 2, 2),
            None,
            "other community"
        );
        assert_eq!(
            ask(&mut tr, &mut shared, &mut rng, t(1), 1, 3),
            Some(v4(40, 0, 1, 1, 7000))
        );
        assert_eq!(
            ask(&mut tr, &mut shared, &mut rng, t(2), 1, 1),
            Some(v4(40, 0, 1, 3, 7000))
        );
        assert_eq!(tr.len(), 2);
        // A tracker never walks.
        let w = tr.walker_mut(t(3), CommunityId([1; 20]));
        assert!(!w.config().walking);
        assert!(w.handle_timeout(t(10), &mut shared, &mut rng).is_none());
        assert_eq!(w.stats().walk_attempts, 0);
    }

    #[test]
    fn communities_are_bounded_and_expire() {
        let (mut tr, mut shared, mut rng) = setup();
        // Community 1 has two peers; communities 2 and 3 one each.
        ask(&mut tr, &mut shared, &mut rng, t(0), 1, 1);
        ask(&mut tr, &mut shared, &mut rng, t(0), 1, 2);
        ask(&mut tr, &mut shared, &mut rng, t(1), 2, 1);
        ask(&mut tr, &mut shared, &mut rng, t(2), 3, 1);
        // A fourth evicts the oldest lone-peer community, not the busy one.
        ask(&mut tr, &mut shared, &mut rng, t(3), 4, 1);
        assert_eq!(tr.len(), 3);
        assert!(tr.get(&CommunityId([1; 20])).is_some());
        assert!(tr.get(&CommunityId([2; 20])).is_none());
        assert_eq!(tr.stats().communities_evicted, 1);
        // Idle communities are forgotten.
        assert!(tr.next_timeout().is_some_and(|n| n <= t(5)));
        ask(&mut tr, &mut shared, &mut rng, t(500), 1, 1);
        tr.handle_timeout(t(544), &mut shared, &mut rng);
        assert_eq!(tr.len(), 1);
        assert_eq!(tr.stats().communities_idle, 2);
        // Its candidates were cleaned up meanwhile: only the recent one remains.
        let w = tr.get(&CommunityId([1; 20])).unwrap();
        assert_eq!(w.candidates().len(), 1);
        assert_eq!(tr.stats().communities_created, 4);
    }
}
