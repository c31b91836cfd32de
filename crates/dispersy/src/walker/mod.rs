//! The random walker: candidates, NAT traversal, our own address, and the four-message step
//! (Dispersy §9), as pure decisions. Nothing here encodes, signs or sends a packet.
//!
//! # Who owns what
//!
//! The node owns, per socket, one [`Shared`] (the address estimate and the anti-amplification
//! guard), and per community one [`Walker`] (the candidate table, the outstanding
//! introduction-requests, the step timer and the counters). A tracker owns a [`Tracker`] instead
//! of individual walkers: it creates a walker for any community it hears of, with walking
//! disabled and round-robin introductions ([`Config::tracker`]).
//!
//! # The four messages
//!
//! A walks to B, B introduces C, C punctures towards A:
//!
//! ```text
//! A: walker.handle_timeout(now, &mut shared, rng)  -> Some(Transmit<IntroductionRequest>)   to B
//! B: walker.on_introduction_request(..)            -> RequestOutcome { response to A,
//!                                                                      puncture_request to C }
//! A: walker.on_introduction_response(..)           -> ResponseOutcome (B verified, C is intro)
//! C: walker.on_puncture_request(..)                -> Transmit<Puncture>                      to A
//! A: walker.on_puncture(..)                        -> C marked intro
//! ```
//!
//! Each decision returns the wire payloads ([`crate::wire::builtin`] types) with every field
//! filled, including the old/new style: new style once the peer showed it understands it (a 246
//! with flag `0x20`, a 245 with `0x10`, any 234/233) and always for IPv6; we advertise new style
//! in our 246 and 245, as py-ipv8 does. A [`Transmit`] also carries the extensions the walker
//! wants in the payload's `extra` (cookies); the node adds its own (sync) and calls
//! [`Transmit::into_payload`], then signs and sends.
//!
//! # What the node must do around these calls
//!
//! - For every datagram received: `shared.amplification.on_received(now, from, len)` first.
//! - Drop signed walker messages before calling the walker if the signature is bad; the walker
//!   drops messages signed by our own member itself ([`Error::OwnMember`]).
//! - Pass parsed extensions ([`crate::wire::extension::Extensions`]) of 246/234 and 245/233.
//! - Before sending anything that answers a packet (introduction-responses and
//!   puncture-requests answer the requester, a puncture answers the introducer), call
//!   `shared.amplification.try_send(now, cause, len)`; drop the send when it is refused. Our own
//!   introduction-requests are not answers and need no check. Send sync responses (bulk) only
//!   when `shared.amplification.allows_bulk(now, to)`.
//! - Timers: wake at the minimum of [`Shared::next_timeout`] and every walker's
//!   [`Walker::next_timeout`]; then call [`Shared::handle_timeout`] and each walker's
//!   [`Walker::handle_timeout`], which returns the step's introduction-request (if any).
//! - Bootstrap: feed tracker addresses with [`Walker::add_discovered`] (at start and every few
//!   minutes, as Dispersy does every 300 s) or walk to an address directly with
//!   [`Walker::walk_to`].
//! - When the driver (re)lists the interfaces: `shared.addresses.set_interfaces(..)`.
//!
//! # Bounds
//!
//! Every table is bounded by [`Config`]: candidates per community (the least useful candidate is
//! evicted: lowest category, then least recently seen; a newcomer less useful than everything in
//! a full table is refused), outstanding requests per community, voters, tracked addresses, and
//! a tracker's communities. Each overflow is counted.
//!
//! # Fixes over Dispersy
//!
//! - W8: a candidate's LAN/WAN address is replaced by a new valid estimate (Dispersy only
//!   overwrote addresses that were already set); obsolete candidates are never eligible.
//! - W9: the puncture-request names the requester's addresses as *we* observed them (the UDP
//!   source for a peer outside our LAN), not only what it claimed. The receiving side applies
//!   py-ipv8's rule (puncture the WAN address unless it shares our WAN IP), falling back to the
//!   other address when the first is the introducer itself (py-ipv8 puts the introducer's
//!   address in `lan_walker`).
//! - WAN votes expire, so a roaming node recovers its address, and only count from addresses
//!   that proved they receive our packets (see [`Config::unproven_votes`]); tables are bounded;
//!   the request
//!   cache never panics on an unknown identifier; a loopback address is only believed from a
//!   loopback peer.
//! - A faster pace while a community has fewer than 15 verified candidates ([`FastWalk`]: a
//!   step every second, a candidate eligible again after 5 s), as py-ipv8 walks while it has
//!   few peers: at Dispersy's pace alone, a small community took minutes to meet.
//! - A public address inside our subnet is also that peer's WAN address, whatever it reports.

mod address;
mod amplification;
mod cache;
mod candidate;
mod exchange;
mod state;
mod table;
#[cfg(test)]
mod testutil;
mod tracker;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use serde::Serialize;

pub use address::{
    AddressEstimator, Family, Interface, LocalInterfaces, NO_ADDRESS_V6, VoteOutcome, VoteStats,
    canonical, is_valid, is_valid_from,
};
pub use amplification::{
    AmplificationLimits, AmplificationStats, AntiAmplification, COOKIE_LEN, Refused,
};
pub use cache::{CacheError, RequestCache};
pub use candidate::{Candidate, Category};
pub use exchange::{RequestOutcome, ResponseOutcome};
pub use state::{PendingWalk, Walker};
pub use table::{Candidates, IntroduceMode, TableStats};
pub use tracker::{Tracker, TrackerStats};

use crate::ids::{GlobalTime, MemberId};
use crate::time::Instant;
use crate::wire::builtin::{IntroductionRequest, IntroductionResponse};
use crate::wire::extension::Extensions;

/// The longest cookie we store for echoing (ours are [`COOKIE_LEN`] bytes).
pub const MAX_COOKIE_LEN: usize = 64;

/// How the next walk target is drawn when every category has an eligible candidate. What is
/// left to 1 is the discovered category's share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Probabilities {
    /// Walk candidates (Dispersy: 0.475).
    pub walk: f64,
    /// Stumble candidates (Dispersy: 0.2375).
    pub stumble: f64,
    /// Intro candidates (Dispersy: 0.2375).
    pub intro: f64,
}

impl Probabilities {
    /// The discovered category's share.
    pub fn discovered(&self) -> f64 {
        (1.0 - self.walk - self.stumble - self.intro).max(0.0)
    }
}

impl Default for Probabilities {
    fn default() -> Probabilities {
        Probabilities {
            walk: 0.475,
            stumble: 0.2375,
            intro: 0.2375,
        }
    }
}

/// Walking faster while a community has few verified candidates, so that a node that just
/// joined (or a small community) finds its peers in seconds rather than minutes. Dispersy's
/// opt-in fast walker stepped every 2 s for its first 30 s; py-ipv8 steps every 0.5 s while it
/// has fewer than 20 peers. With Dispersy's normal pace (a step every 5 s, a candidate walked
/// at most every 27.5 s, a tracker every 57.5 s) a node that knows two or three candidates
/// mostly finds nobody eligible, and each answer introduces at most one new peer: in the NAT
/// lab, eleven nodes had not all met after 110 s. A walker with an empty candidate table keeps
/// Dispersy's pace: it has nobody to walk to, and need not wake every second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FastWalk {
    /// Walk fast while the community has fewer verified candidates (walk and stumble) than
    /// this; 0 turns fast walking off (Dispersy's pace always).
    pub target: usize,
    /// Time between two steps meanwhile.
    pub step_interval: Duration,
    /// A candidate may be walked to again this long after the last walk to it.
    pub eligible_delay: Duration,
    /// The same for trackers.
    pub tracker_eligible_delay: Duration,
}

impl FastWalk {
    /// No fast walking: Dispersy's pace at all times.
    pub fn off() -> FastWalk {
        FastWalk {
            target: 0,
            ..FastWalk::default()
        }
    }
}

impl Default for FastWalk {
    fn default() -> FastWalk {
        FastWalk {
            // Dispersy's FAST_WALKER_CANDIDATE_TARGET.
            target: 15,
            step_interval: Duration::from_secs(1),
            eligible_delay: Duration::from_secs(5),
            tracker_eligible_delay: Duration::from_secs(10),
        }
    }
}

/// How often a walker steps and how soon it may walk to the same candidate again: Dispersy's
/// pace, or the fast one while verified candidates are few ([`FastWalk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Time between two steps.
    pub step_interval: Duration,
    /// A candidate is eligible again this long after the last walk to it.
    pub eligible_delay: Duration,
    /// The same for trackers.
    pub tracker_eligible_delay: Duration,
    /// Whether this is the fast pace.
    pub fast: bool,
}

/// A configuration value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid walker configuration: {0}")]
pub struct ConfigError(&'static str);

/// Every duration, probability and bound of the walker. Defaults are Dispersy's values; the
/// bounds and the anti-amplification settings are ours.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Time between two walk steps (Dispersy: 5 s).
    pub step_interval: Duration,
    /// How long a walk candidate stays one after its last answer (57.5 s).
    pub walk_lifetime: Duration,
    /// How long a stumble candidate stays one after its last request (57.5 s).
    pub stumble_lifetime: Duration,
    /// How long an introduced candidate stays one (27.5 s).
    pub intro_lifetime: Duration,
    /// How long a discovered candidate stays one (57.5 s).
    pub discovered_lifetime: Duration,
    /// Minimum time between two walks to the same candidate (27.5 s).
    pub eligible_delay: Duration,
    /// The same for candidates flagged as trackers (57.5 s).
    pub tracker_eligible_delay: Duration,
    /// How long we wait for an introduction-response (10.5 s).
    pub request_timeout: Duration,
    /// Walk target probabilities (47.5 / 23.75 / 23.75 / 5 %).
    pub probabilities: Probabilities,
    /// The faster pace while verified candidates are few (ours; [`FastWalk::off`] for
    /// Dispersy's pace at all times).
    pub fast: FastWalk,
    /// Whether this walker walks (false for a tracker).
    pub walking: bool,
    /// How introductions are chosen (coin flip for a node, round robin for a tracker).
    pub introduce_mode: IntroduceMode,
    /// Candidates per community at most.
    pub max_candidates: usize,
    /// Outstanding introduction-requests per community at most.
    pub max_outstanding_requests: usize,
    /// Only honour puncture-requests from a candidate we know or a proven address, so a stranger
    /// cannot make us send punctures anywhere.
    pub puncture_requires_known_introducer: bool,
    /// How long a WAN vote counts (ours; Dispersy kept votes while the voter was a candidate).
    pub vote_lifetime: Duration,
    /// Count the WAN vote in an introduction-request from an address that has not proven it
    /// receives our packets. Off by default: an off-path attacker spoofing many source addresses
    /// could otherwise outvote our real observers. Responses always vote (they prove their
    /// sender), and so do requests echoing our cookie.
    pub unproven_votes: bool,
    /// Voters remembered at most.
    pub max_voters: usize,
    /// Bytes we may send per byte received from an unproven address (3, as QUIC).
    pub amplification_factor: u64,
    /// Remote addresses tracked by the amplification guard at most.
    pub max_addresses: usize,
    /// How long an address's amplification entry lives without traffic.
    pub address_idle: Duration,
    /// How long a proof of address lasts.
    pub proof_lifetime: Duration,
    /// How often the cookie secret changes (a cookie lives one to two periods).
    pub cookie_rotation: Duration,
    /// Communities a tracker follows at most.
    pub tracker_max_communities: usize,
    /// A tracker forgets a community after this long without requests (Dispersy: three strikes
    /// of 180 s without verified candidates).
    pub tracker_idle: Duration,
}

impl Default for Config {
    fn default() -> Config {
        let s = Duration::from_millis;
        Config {
            step_interval: s(5_000),
            walk_lifetime: s(57_500),
            stumble_lifetime: s(57_500),
            intro_lifetime: s(27_500),
            discovered_lifetime: s(57_500),
            eligible_delay: s(27_500),
            tracker_eligible_delay: s(57_500),
            request_timeout: s(10_500),
            probabilities: Probabilities::default(),
            fast: FastWalk::default(),
            walking: true,
            introduce_mode: IntroduceMode::CoinFlip,
            max_candidates: 512,
            max_outstanding_requests: 64,
            puncture_requires_known_introducer: true,
            vote_lifetime: s(120_000),
            unproven_votes: false,
            max_voters: 1024,
            amplification_factor: 3,
            max_addresses: 4096,
            address_idle: s(120_000),
            proof_lifetime: s(300_000),
            cookie_rotation: s(60_000),
            tracker_max_communities: 1024,
            tracker_idle: s(540_000),
        }
    }
}

impl Config {
    /// A tracker's settings: no walking, round-robin introductions, smaller tables per community.
    pub fn tracker() -> Config {
        Config {
            walking: false,
            introduce_mode: IntroduceMode::RoundRobin,
            max_candidates: 256,
            ..Config::default()
        }
    }

    /// Checks that the values make sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.probabilities;
        let ok = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        if !(ok(p.walk) && ok(p.stumble) && ok(p.intro) && p.walk + p.stumble + p.intro <= 1.0) {
            return Err(ConfigError(
                "probabilities must be in [0, 1] and sum to at most 1",
            ));
        }
        if self.step_interval.is_zero()
            || self.request_timeout.is_zero()
            || (self.fast.target > 0 && self.fast.step_interval.is_zero())
        {
            return Err(ConfigError(
                "step intervals and request timeout must be positive",
            ));
        }
        if self.max_candidates == 0
            || self.max_outstanding_requests == 0
            || self.max_voters == 0
            || self.max_addresses == 0
            || self.tracker_max_communities == 0
        {
            return Err(ConfigError("every bound must be at least 1"));
        }
        if self.cookie_rotation < Duration::from_secs(1) {
            return Err(ConfigError("cookie rotation must be at least 1 s"));
        }
        Ok(())
    }

    /// The pace of a walker with `verified` verified candidates.
    pub fn pace(&self, verified: usize) -> Pace {
        if verified < self.fast.target {
            Pace {
                step_interval: self.fast.step_interval,
                eligible_delay: self.fast.eligible_delay,
                tracker_eligible_delay: self.fast.tracker_eligible_delay,
                fast: true,
            }
        } else {
            self.normal_pace()
        }
    }

    /// Dispersy's pace.
    pub fn normal_pace(&self) -> Pace {
        Pace {
            step_interval: self.step_interval,
            eligible_delay: self.eligible_delay,
            tracker_eligible_delay: self.tracker_eligible_delay,
            fast: false,
        }
    }

    fn amplification_limits(&self) -> AmplificationLimits {
        AmplificationLimits {
            factor: self.amplification_factor,
            capacity: self.max_addresses,
            idle: self.address_idle,
            proof_lifetime: self.proof_lifetime,
            rotation: self.cookie_rotation,
        }
    }
}

/// Why the walker refused a message. Each variant is a drop reason the node counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Signed by our own member (we talked to ourselves through some address).
    #[error("message signed by our own member")]
    OwnMember,
    /// The source address is not a valid peer address, or it is one of ours.
    #[error("invalid or own source address {0}")]
    InvalidSource(SocketAddr),
    /// A response or puncture names no outstanding request.
    #[error("no outstanding introduction-request with identifier {0}")]
    UnknownIdentifier(u16),
    /// A second response to the same request.
    #[error("introduction-request {0} was already answered")]
    DuplicateResponse(u16),
    /// A puncture-request from an address we have nothing to do with.
    #[error("puncture-request from unknown introducer {0}")]
    UnknownIntroducer(SocketAddr),
    /// A puncture-request without a usable address to puncture.
    #[error("puncture-request names no address we can puncture")]
    NoPunctureTarget,
}

impl Error {
    /// A short stable name for counting drops by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::OwnMember => "own-member",
            Error::InvalidSource(_) => "invalid-source",
            Error::UnknownIdentifier(_) => "unknown-identifier",
            Error::DuplicateResponse(_) => "duplicate-response",
            Error::UnknownIntroducer(_) => "unknown-introducer",
            Error::NoPunctureTarget => "no-puncture-target",
        }
    }
}

/// Who sent a signed walker message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// The UDP source address.
    pub address: SocketAddr,
    /// The member that signed it.
    pub member: MemberId,
    /// The global time it carries (the sender's clock opinion).
    pub global_time: GlobalTime,
}

/// A payload to send, with the extensions the walker wants carried in its `extra` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<P> {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The payload, every field filled (its `extra` is empty; see `extensions`).
    pub payload: P,
    /// Extensions for `extra` (cookies); empty for punctures and puncture-requests.
    pub extensions: Extensions,
}

impl<P> Transmit<P> {
    fn plain(destination: SocketAddr, payload: P) -> Transmit<P> {
        Transmit {
            destination,
            payload,
            extensions: Extensions::new(),
        }
    }
}

impl Transmit<IntroductionRequest> {
    /// The payload with the extensions encoded into `extra`.
    pub fn into_payload(self) -> IntroductionRequest {
        IntroductionRequest {
            extra: self.extensions.to_bytes(),
            ..self.payload
        }
    }
}

impl Transmit<IntroductionResponse> {
    /// The payload with the extensions encoded into `extra`.
    pub fn into_payload(self) -> IntroductionResponse {
        IntroductionResponse {
            extra: self.extensions.to_bytes(),
            ..self.payload
        }
    }
}

/// Counters of one community's walker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Introduction-requests we sent.
    pub walk_attempts: u64,
    /// Of those, answered.
    pub walk_successes: u64,
    /// Of those, timed out.
    pub walk_timeouts: u64,
    /// Steps that found no eligible candidate.
    pub no_walk_target: u64,
    /// Steps taken at the fast pace (see [`FastWalk`]).
    pub fast_steps: u64,
    /// Steps skipped because too many requests were outstanding.
    pub cache_full: u64,
    /// Introduction-requests received.
    pub requests_received: u64,
    /// Introductions we made (responses naming a third peer).
    pub introductions_made: u64,
    /// Introductions we received and accepted.
    pub introductions_received: u64,
    /// Introductions ignored because an address was invalid or ours.
    pub bad_introductions: u64,
    /// Puncture-requests we asked for (sent to introduced peers).
    pub puncture_requests_sent: u64,
    /// Punctures we decided to send.
    pub punctures_sent: u64,
    /// Punctures received for one of our requests.
    pub punctures_received: u64,
    /// Messages refused, all reasons.
    pub dropped: u64,
    /// Responses or punctures with an unknown identifier.
    pub unknown_identifiers: u64,
    /// Candidate table counters.
    pub table: TableStats,
}

/// Node-level walker state shared by every community on one socket: our address estimate and
/// the anti-amplification guard.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Our LAN/WAN addresses, votes and connection type.
    pub addresses: AddressEstimator,
    /// Per-address send budgets, proofs and cookies.
    pub amplification: AntiAmplification,
}

impl Shared {
    /// Fresh node-level state; the cookie secret is drawn from `rng`.
    pub fn new<R: RngCore + ?Sized>(config: &Config, now: Instant, rng: &mut R) -> Shared {
        Shared {
            addresses: AddressEstimator::new(config.vote_lifetime, config.max_voters),
            amplification: AntiAmplification::new(config.amplification_limits(), now, rng),
        }
    }

    /// Expires votes and address entries and rotates the cookie secret.
    pub fn handle_timeout<R: RngCore + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        self.addresses.expire(now);
        self.amplification.handle_timeout(now, rng);
    }

    /// When [`Shared::handle_timeout`] has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        [
            self.addresses.next_timeout(),
            self.amplification.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

fn cookie_from(extensions: &Extensions) -> Option<Bytes> {
    extensions
        .get(crate::wire::extension::kind::COOKIE)
        .filter(|c| !c.is_empty() && c.len() <= MAX_COOKIE_LEN)
        .cloned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_config_is_dispersy_and_valid() {
        let c = super::Config::default();
        assert!(c.validate().is_ok());
        assert!(super::Config::tracker().validate().is_ok());
        assert!((c.probabilities.discovered() - 0.05).abs() < 1e-9);
        let bad = super::Config {
            probabilities: super::Probabilities {
                walk: 0.9,
                stumble: 0.2,
                intro: 0.0,
            },
            ..super::Config::default()
        };
        assert!(bad.validate().is_err());
    }
}
