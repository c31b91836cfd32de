//! One candidate: a peer we may walk to, with what we know of its addresses and when we last
//! heard from it (Dispersy's `WalkCandidate`, §9.1).

use std::net::SocketAddr;

use bytes::Bytes;
use serde::Serialize;

use super::address::{Family, is_valid};
use super::{Config, Pace};
use crate::ids::{GlobalTime, MemberId};
use crate::time::Instant;
use crate::wire::builtin::ConnectionType;

/// What a candidate is to us right now, by the most recent kind of contact (first match wins,
/// in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Nothing recent: obsolete, removed at the next cleanup.
    None,
    /// Named by a tracker or the discovery community.
    Discovered,
    /// Introduced to us (or it punctured towards us).
    Intro,
    /// It walked to us: we received an introduction-request.
    Stumble,
    /// We walked to it and it answered.
    Walk,
}

impl Category {
    /// Dispersy's name for the category.
    pub fn name(self) -> &'static str {
        match self {
            Category::Walk => "walk",
            Category::Stumble => "stumble",
            Category::Intro => "intro",
            Category::Discovered => "discovered",
            Category::None => "none",
        }
    }
}

/// A peer of one community, keyed by the socket address we talk to it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The address we send to (Dispersy's `sock_addr`).
    pub address: SocketAddr,
    /// Its LAN address (the family's "no address" when unknown).
    pub lan: SocketAddr,
    /// Its WAN address (the family's "no address" when unknown).
    pub wan: SocketAddr,
    /// Its NAT situation, as it reports it.
    pub connection_type: ConnectionType,
    /// The member that signed its walker messages, once known.
    pub member: Option<MemberId>,
    /// It speaks new-style walker messages (234/233/232/231).
    pub supports_new_style: bool,
    /// It is a bootstrap tracker (walked less often: see [`Config::tracker_eligible_delay`]).
    pub tracker: bool,
    /// When we last sent it an introduction-request.
    #[serde(serialize_with = "micros")]
    pub last_walk: Option<Instant>,
    /// When it last answered one (reset when a request to it times out).
    #[serde(serialize_with = "micros")]
    pub last_walk_reply: Option<Instant>,
    /// When it last sent us an introduction-request.
    #[serde(serialize_with = "micros")]
    pub last_stumble: Option<Instant>,
    /// When it was last introduced to us or punctured towards us.
    #[serde(serialize_with = "micros")]
    pub last_intro: Option<Instant>,
    /// When a tracker or the discovery community last named it.
    #[serde(serialize_with = "micros")]
    pub last_discovered: Option<Instant>,
    /// The highest global time it claimed in this community (its clock opinion).
    pub global_time: GlobalTime,
    /// The address-validation cookie it gave us, to echo in our next request to it.
    #[serde(skip)]
    pub cookie: Option<Bytes>,
}

/// Timestamps serialise as microseconds since the driver's epoch (or null).
fn micros<S: serde::Serializer>(t: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&t.as_micros()),
        None => s.serialize_none(),
    }
}

impl Candidate {
    /// A candidate we know nothing about yet but its address.
    pub fn new(address: SocketAddr) -> Candidate {
        let none = Family::of(address).no_address();
        Candidate {
            address,
            lan: none,
            wan: none,
            connection_type: ConnectionType::Unknown,
            member: None,
            supports_new_style: false,
            tracker: false,
            last_walk: None,
            last_walk_reply: None,
            last_stumble: None,
            last_intro: None,
            last_discovered: None,
            global_time: GlobalTime::ZERO,
            cookie: None,
        }
    }

    /// The category at `now` (walk, stumble, intro, discovered, else none).
    pub fn category(&self, now: Instant, config: &Config) -> Category {
        let live = |t: Option<Instant>, lifetime| t.is_some_and(|t| now < t + lifetime);
        if live(self.last_walk_reply, config.walk_lifetime) {
            Category::Walk
        } else if live(self.last_stumble, config.stumble_lifetime) {
            Category::Stumble
        } else if live(self.last_intro, config.intro_lifetime) {
            Category::Intro
        } else if live(self.last_discovered, config.discovered_lifetime) {
            Category::Discovered
        } else {
            Category::None
        }
    }

    /// Whether we may walk to it at `now`: it is not obsolete (Dispersy meant to check this but
    /// compared against a string that never matched, W8) and we did not walk to it within the
    /// eligibility delay.
    pub fn is_eligible_for_walk(&self, now: Instant, config: &Config) -> bool {
        self.is_eligible(now, config, &config.normal_pace())
    }

    /// The same at a given pace (the fast pace has shorter delays).
    pub fn is_eligible(&self, now: Instant, config: &Config, pace: &Pace) -> bool {
        let delay = if self.tracker {
            pace.tracker_eligible_delay
        } else {
            pace.eligible_delay
        };
        self.category(now, config) != Category::None
            && self.last_walk.is_none_or(|t| t + delay <= now)
    }

    /// The timestamp that orders candidates within a category (oldest is walked first).
    pub fn category_time(&self, category: Category) -> Option<Instant> {
        match category {
            Category::Walk => self.last_walk,
            Category::Stumble => self.last_stumble,
            Category::Intro => self.last_intro,
            Category::Discovered => self.last_discovered,
            Category::None => None,
        }
    }

    /// The most recent contact of any kind.
    pub fn last_seen(&self) -> Option<Instant> {
        [
            self.last_walk_reply,
            self.last_stumble,
            self.last_intro,
            self.last_discovered,
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// Whether both its LAN and WAN addresses are known, so it can be introduced to others.
    pub fn has_both_addresses(&self) -> bool {
        is_valid(self.lan) && is_valid(self.wan)
    }

    /// Updates the addresses with fresh estimates. A valid new value replaces the old one; an
    /// unknown one keeps what we had (Dispersy had this inverted and only overwrote addresses
    /// that were already set, W8).
    pub fn update_addresses(&mut self, lan: SocketAddr, wan: SocketAddr) {
        if is_valid(lan) {
            self.lan = lan;
        }
        if is_valid(wan) {
            self.wan = wan;
        }
    }

    /// Updates the connection type it reports; one reporting unknown whose LAN address equals
    /// its WAN address is public.
    pub fn update_connection_type(&mut self, reported: ConnectionType) {
        self.connection_type =
            if reported == ConnectionType::Unknown && is_valid(self.lan) && self.lan == self.wan {
                ConnectionType::Public
            } else {
                reported
            };
    }

    /// Takes the newest of every timestamp of `other` (merging a duplicate into this one).
    pub fn absorb(&mut self, other: &Candidate) {
        let newest = |a: Option<Instant>, b: Option<Instant>| a.max(b);
        self.last_walk = newest(self.last_walk, other.last_walk);
        self.last_walk_reply = newest(self.last_walk_reply, other.last_walk_reply);
        self.last_stumble = newest(self.last_stumble, other.last_stumble);
        self.last_intro = newest(self.last_intro, other.last_intro);
        self.last_discovered = newest(self.last_discovered, other.last_discovered);
        self.global_time = self.global_time.max(other.global_time);
        self.member = self.member.or(other.member);
        self.supports_new_style |= other.supports_new_style;
        self.tracker |= other.tracker;
        if self.cookie.is_none() {
            self.cookie.clone_from(&other.cookie);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testutil::v4;
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn categories_by_lifetime_first_match_wins() {
        let c = Config::default();
        let mut k = Candidate::new(v4(1, 2, 3, 4, 5));
        assert_eq!(k.category(at(0), &c), Category::None);
        k.last_discovered = Some(at(0));
        assert_eq!(k.category(at(57_499), &c), Category::Discovered);
        assert_eq!(k.category(at(57_500), &c), Category::None);
        k.last_intro = Some(at(0));
        assert_eq!(k.category(at(27_499), &c), Category::Intro);
        assert_eq!(k.category(at(27_500), &c), Category::Discovered);
        k.last_stumble = Some(at(10_000));
        assert_eq!(k.category(at(20_000), &c), Category::Stumble);
        k.last_walk_reply = Some(at(10_000));
        assert_eq!(k.category(at(20_000), &c), Category::Walk);
        assert_eq!(k.category(at(67_499), &c), Category::Walk);
        assert_eq!(k.category(at(67_500), &c), Category::None);
    }

    #[test]
    fn eligibility() {
        let c = Config::default();
        let mut k = Candidate::new(v4(1, 2, 3, 4, 5));
        assert!(
            !k.is_eligible_for_walk(at(0), &c),
            "obsolete is never eligible"
        );
        k.last_stumble = Some(at(0));
        assert!(k.is_eligible_for_walk(at(0), &c));
        k.last_walk = Some(at(0));
        assert!(!k.is_eligible_for_walk(at(27_499), &c));
        assert!(k.is_eligible_for_walk(at(27_500), &c));
        k.tracker = true;
        k.last_stumble = Some(at(50_000));
        assert!(!k.is_eligible_for_walk(at(57_499), &c));
        assert!(k.is_eligible_for_walk(at(57_500), &c));
        let quick = Config {
            eligible_delay: Duration::from_secs(1),
            ..Config::default()
        };
        k.tracker = false;
        assert!(k.is_eligible_for_walk(at(1_000), &quick));
    }

    #[test]
    fn w8_addresses_update_when_new_value_is_known() {
        let mut k = Candidate::new(v4(1, 2, 3, 4, 5));
        k.update_addresses(v4(10, 0, 0, 1, 5), v4(1, 2, 3, 4, 5));
        assert_eq!(k.lan, v4(10, 0, 0, 1, 5));
        k.update_addresses(v4(10, 0, 0, 2, 5), Family::V4.no_address());
        assert_eq!(
            k.lan,
            v4(10, 0, 0, 2, 5),
            "a new LAN address replaces the old one"
        );
        assert_eq!(k.wan, v4(1, 2, 3, 4, 5), "an unknown WAN keeps the old one");
        k.update_connection_type(ConnectionType::Unknown);
        assert_eq!(k.connection_type, ConnectionType::Unknown);
        k.update_addresses(v4(1, 2, 3, 4, 5), v4(1, 2, 3, 4, 5));
        k.update_connection_type(ConnectionType::Unknown);
        assert_eq!(k.connection_type, ConnectionType::Public);
    }
}
