//! The random walk in the node: bootstrap addresses, walk steps, and the four walker messages
//! (Dispersy §9, py-ipv8 §3-4, 6). The decisions are the walker's ([`crate::walker`]); this module
//! routes packets to them, encodes, signs and sends what they return, and reports candidates.
//!
//! ```text
//! step timer    -> walker.handle_timeout -> introduction-request (+ sync offer)     Gate::Own
//! 246/234 in    -> walker.on_introduction_request -> introduction-response           Gate::Answer(requester)
//!                                                 -> puncture-request to the introduced peer
//!                                                                                    Gate::Answer(requester)
//!               -> sync::on_sync_offer (the request's Bloom block and extensions)
//! 245/233 in    -> walker.on_introduction_response (responder: walk; introduced: intro)
//! 250/232 in    -> walker.on_puncture_request -> puncture to the walker              Gate::Answer(introducer)
//! 249/231 in    -> walker.on_puncture (the puncturer: intro)
//! ```
//!
//! Introduced peers are not walked to at once: they become intro candidates, which the next
//! steps walk to with Dispersy's probabilities, while the puncture the introducer asked for
//! opens their NAT towards us.
//!
//! # Global time in walker messages
//!
//! Our walker messages carry the community's global time (at least 1), as Dispersy's did: that
//! is the clock opinion other nodes use to bound the acceptable global time. py-ipv8 puts
//! `claim_global_time() % 65536` there and never reads the field, so either value interoperates,
//! and ours costs no clock tick per step. The identifier is the walker's random request number
//! (py-ipv8 echoes identifiers and never checks them against the global time). A received walker
//! message's global time is only the sender candidate's opinion: it never moves our clock and is
//! never stored (walker messages are direct messages).
//!
//! # Candidates and events
//!
//! After every walker message and every timer of a community, the candidate table is compared
//! with what was last reported and an [`Event::PeerChanged`] goes out for each candidate that
//! appeared, changed category or member, or went away (category "none"). Categories also change
//! as time passes; such changes are reported at the community's next timer (a step at most
//! [`crate::walker::Config::step_interval`] later, or one fast step while the community has few
//! verified candidates).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::community::CommunityState;
use super::event::Event;
use super::pipeline::Incoming;
use super::stats::DropReason;
use super::{CommandError, Gate, Node, NodeError};
use crate::community::Definition;
use crate::ids::{CommunityId, GlobalTime};
use crate::time::Instant;
use crate::walker::{self, Category, Sender, Walker};
use crate::wire::builtin::{
    Builtin, IntroductionRequest, IntroductionResponse, PunctureRequest, WalkerStyle,
};
use crate::wire::extension::Extensions;
use crate::wire::{Authors, Draft, KeyEncoding, Prefix};

/// How soon a community without verified candidates gets its bootstrap addresses again.
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(30);

impl Node {
    /// Tells the node its socket's bound address and the host's interfaces, so it knows its LAN
    /// address, which peers share its LAN, and which addresses are its own. Call it when the
    /// socket opens and after every interface rescan.
    pub fn set_interfaces(&mut self, local: walker::LocalInterfaces) {
        self.shared.addresses.set_interfaces(local);
    }

    /// Adds a bootstrap address (a tracker) for every community, joined now or later. Each
    /// community's walker gets it as a discovered candidate flagged as a tracker (walked at most
    /// every 57.5 s), now, when joining, and again every [`super::Config::bootstrap_interval`].
    pub fn add_bootstrap(&mut self, now: Instant, address: SocketAddr) -> Result<(), CommandError> {
        self.tick(now);
        let address = self.candidate_address(address)?;
        if !self.bootstrap.contains(&address) && self.bootstrap.len() >= self.config.max_bootstrap {
            return Err(CommandError::Invalid(format!(
                "at most {} bootstrap addresses",
                self.config.max_bootstrap
            )));
        }
        self.bootstrap.insert(address);
        let ids: Vec<CommunityId> = self.communities.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.communities.get_mut(&id) {
                c.walker.add_discovered(now, &self.shared, address, true);
            }
            self.report_peer_changes(now, id);
        }
        Ok(())
    }

    /// The bootstrap addresses given with [`Node::add_bootstrap`].
    pub fn bootstrap_addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.bootstrap.iter().copied()
    }

    /// Adds a bootstrap address to one community: a peer found out of band. It becomes a
    /// discovered candidate, now and every [`super::Config::bootstrap_interval`]; the walk
    /// verifies it (it is a verified peer only once it answered an introduction-request or sent
    /// one).
    pub fn add_peer(
        &mut self,
        now: Instant,
        community: CommunityId,
        address: SocketAddr,
    ) -> Result<(), CommandError> {
        self.tick(now);
        let address = self.candidate_address(address)?;
        let max = self.config.max_bootstrap;
        let c = self
            .communities
            .get_mut(&community)
            .ok_or(CommandError::UnknownCommunity(community))?;
        if !c.bootstrap.contains(&address) && c.bootstrap.len() >= max {
            return Err(CommandError::Invalid(format!(
                "at most {max} bootstrap addresses per community"
            )));
        }
        c.bootstrap.insert(address);
        c.walker.add_discovered(now, &self.shared, address, false);
        self.report_peer_changes(now, community);
        Ok(())
    }

    /// Sends an introduction-request to `address` now, outside the walk's schedule (py-ipv8's
    /// `walk_to`). The answer makes it a verified peer at once.
    pub fn walk_to(
        &mut self,
        now: Instant,
        community: CommunityId,
        address: SocketAddr,
    ) -> Result<(), CommandError> {
        self.tick(now);
        let address = self.candidate_address(address)?;
        let c = self
            .communities
            .get_mut(&community)
            .ok_or(CommandError::UnknownCommunity(community))?;
        let request = c
            .walker
            .walk_to(now, &self.shared, address, &mut self.rng)
            .ok_or_else(|| CommandError::Invalid(format!("cannot walk to {address} now")))?;
        self.send_introduction_request(now, community, request)?;
        self.commit()?;
        Ok(())
    }

    fn candidate_address(&self, address: SocketAddr) -> Result<SocketAddr, CommandError> {
        let address = walker::canonical(address);
        if !walker::is_valid(address) || self.shared.addresses.is_ours(address) {
            return Err(CommandError::Invalid(format!(
                "{address} cannot be a peer (invalid, or our own address)"
            )));
        }
        Ok(address)
    }

    /// Addresses of a community's verified candidates (walk and stumble), as of the last input.
    pub fn peers(&self, community: &CommunityId) -> Vec<SocketAddr> {
        self.verified_peers(self.now, *community)
    }

    pub(crate) fn verified_peers(&self, now: Instant, community: CommunityId) -> Vec<SocketAddr> {
        self.communities
            .get(&community)
            .map_or_else(Vec::new, |c| c.verified(now))
    }

    /// A fresh walker for a community being joined, its first step staggered over one interval
    /// so communities joined together do not step together.
    pub(super) fn new_walker(&mut self, now: Instant, def: &Definition) -> Walker {
        let config = walker::Config {
            walking: self.config.walker.walking && def.settings().walker,
            ..self.config.walker.clone()
        };
        // A community just joined has no verified candidate: its first pace.
        let interval = u64::try_from(config.pace(0).step_interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let first = now + Duration::from_micros(self.rng.gen_range(0..interval));
        Walker::new(config, self.member_id(), first)
    }

    /// Hands the bootstrap addresses to a community's walker when due: at join (`force`), every
    /// `bootstrap_interval`, and after [`BOOTSTRAP_RETRY`] while it has no verified candidate.
    pub(super) fn inject_bootstrap(&mut self, now: Instant, community: CommunityId, force: bool) {
        let interval = self.config.bootstrap_interval;
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let due = match c.bootstrapped {
            None => true,
            Some(at) => {
                now >= at + interval
                    || (now >= at + BOOTSTRAP_RETRY && c.walker.verified_count(now) == 0)
            }
        };
        if !(due || force) {
            return;
        }
        c.bootstrapped = Some(now);
        for address in &self.bootstrap {
            c.walker.add_discovered(now, &self.shared, *address, true);
        }
        for address in &c.bootstrap {
            c.walker.add_discovered(now, &self.shared, *address, false);
        }
    }

    /// A community's walker timers: bootstrap, request timeouts, the walk step.
    pub(super) fn walk_timeout(
        &mut self,
        now: Instant,
        community: CommunityId,
    ) -> Result<(), NodeError> {
        self.inject_bootstrap(now, community, false);
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let request = c
            .walker
            .handle_timeout(now, &mut self.shared, &mut self.rng);
        if let Some(request) = request {
            self.send_introduction_request(now, community, request)?;
        }
        self.walker_changed(now, community);
        Ok(())
    }

    /// Completes the walker's introduction-request with the sync offer, signs it and sends it.
    fn send_introduction_request(
        &mut self,
        now: Instant,
        community: CommunityId,
        mut request: walker::Transmit<IntroductionRequest>,
    ) -> Result<(), NodeError> {
        let destination = request.destination;
        self.sync_offer(now, community, &mut request)?;
        let payload = request.into_payload();
        let Some(prefix) = self.communities.get(&community).map(|c| c.def.prefix()) else {
            return Ok(());
        };
        let payload = Builtin::IntroductionRequest(payload);
        if let Some(packet) = self.walker_packet(prefix, &payload, true) {
            self.send(now, Some(community), destination, packet, Gate::Own);
        }
        Ok(())
    }

    /// Remembers the clock opinion in a valid signed message from a known candidate.
    pub(crate) fn note_peer(&mut self, inc: &Incoming) {
        let Some(author) = inc.packet.author().map(|k| k.member_id()) else {
            return;
        };
        if author == self.member_id() {
            return;
        }
        if let Some(c) = self.communities.get_mut(&inc.community) {
            c.walker
                .set_global_time(inc.source, inc.packet.global_time());
        }
    }

    /// A verified walker message of a joined community, or of any community in tracker mode.
    pub(super) fn on_walker_message(
        &mut self,
        now: Instant,
        inc: Incoming,
    ) -> Result<(), NodeError> {
        let community = inc.community;
        let sender = inc.packet.author().map(|key| Sender {
            address: inc.source,
            member: key.member_id(),
            global_time: inc.packet.global_time(),
        });
        if sender.is_some_and(|s| s.member == self.member_id()) {
            self.count_drop(Some(community), DropReason::FromSelf);
            return Ok(());
        }
        match (inc.builtin.clone(), sender) {
            (Some(Builtin::IntroductionRequest(request)), Some(sender)) => {
                self.on_introduction_request(now, &inc, sender, request)?;
            }
            (Some(Builtin::IntroductionResponse(response)), Some(sender)) => {
                self.on_introduction_response(now, community, sender, &response)?;
            }
            (Some(Builtin::PunctureRequest(request)), _) => {
                self.on_puncture_request(now, &inc, &request);
            }
            (Some(Builtin::Puncture(puncture)), Some(sender)) => {
                let result = self.communities.get_mut(&community).map(|c| {
                    c.walker
                        .on_puncture(now, &mut self.shared, sender, &puncture)
                });
                self.walker_result(community, result);
            }
            _ => self.count_drop(
                Some(community),
                DropReason::Invalid("unsigned-walker-message"),
            ),
        }
        self.walker_changed(now, community);
        Ok(())
    }

    fn on_introduction_request(
        &mut self,
        now: Instant,
        inc: &Incoming,
        sender: Sender,
        request: IntroductionRequest,
    ) -> Result<(), NodeError> {
        let community = inc.community;
        let Some(extensions) = self.extensions(community, &request.extra) else {
            return Ok(());
        };
        let joined = self.communities.contains_key(&community);
        let outcome = {
            let walker = match (self.communities.get_mut(&community), &mut self.tracker) {
                (Some(c), _) => &mut c.walker,
                (None, Some(tracker)) => tracker.walker_mut(now, community),
                (None, None) => return Ok(()),
            };
            walker.on_introduction_request(
                now,
                &mut self.shared,
                sender,
                &request,
                &extensions,
                &mut self.rng,
            )
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                self.count_drop(Some(community), drop_reason(&e));
                return Ok(());
            }
        };
        let prefix = *inc.packet.prefix();
        let requester = outcome.requester;
        let new_style = request.style == WalkerStyle::New || request.supports_new_style;
        if joined {
            self.sync_heard(
                now,
                community,
                requester,
                &request.extra,
                &extensions,
                new_style,
            );
        }
        let mut response = outcome.response;
        // Original Dispersy drops a response with bytes after its last field (the cookie).
        if !self.answer_may_extend(community, prefix.community_version, requester, &request) {
            response.extensions = Extensions::new();
        }
        let puncture = outcome.puncture_request.and_then(|p| {
            let payload = Builtin::PunctureRequest(p.payload);
            self.walker_packet(prefix, &payload, false)
                .map(|packet| (p.destination, packet))
        });
        // The sync answer (Bloom filter, reconciliation) adds to the response and goes after it.
        let packets = if joined {
            let reserve = puncture.as_ref().map_or(0, |(_, p)| p.len());
            let asked = super::sync::Asked {
                requester,
                request: &request,
                extensions: &extensions,
            };
            self.sync_answer(now, community, asked, &mut response, reserve)?
        } else {
            Vec::new()
        };
        let response = Builtin::IntroductionResponse(response.into_payload());
        if let Some(packet) = self.walker_packet(prefix, &response, true) {
            self.send(
                now,
                Some(community),
                requester,
                packet,
                Gate::Answer(requester),
            );
        }
        if let Some((destination, packet)) = puncture {
            self.send(
                now,
                Some(community),
                destination,
                packet,
                Gate::Answer(requester),
            );
        }
        self.send_sync_packets(now, community, requester, packets);
        Ok(())
    }

    fn on_introduction_response(
        &mut self,
        now: Instant,
        community: CommunityId,
        sender: Sender,
        response: &IntroductionResponse,
    ) -> Result<(), NodeError> {
        let Some(extensions) = self.extensions(community, &response.extra) else {
            return Ok(());
        };
        let result = self.communities.get_mut(&community).map(|c| {
            c.walker
                .on_introduction_response(now, &mut self.shared, sender, response, &extensions)
        });
        if self.walker_result(community, result).is_none() {
            return Ok(());
        }
        let new_style = response.style == WalkerStyle::New || response.supports_new_style;
        let peer = sender.address;
        self.sync_heard(
            now,
            community,
            peer,
            &response.extra,
            &extensions,
            new_style,
        );
        self.on_sync_response(now, community, peer, response.identifier, &extensions)
    }

    fn on_puncture_request(&mut self, now: Instant, inc: &Incoming, request: &PunctureRequest) {
        let community = inc.community;
        let result = self.communities.get_mut(&community).map(|c| {
            c.walker
                .on_puncture_request(now, &self.shared, inc.source, request)
        });
        let Some(puncture) = self.walker_result(community, result) else {
            return;
        };
        let payload = Builtin::Puncture(puncture.payload);
        if let Some(packet) = self.walker_packet(*inc.packet.prefix(), &payload, true) {
            self.send(
                now,
                Some(community),
                puncture.destination,
                packet,
                Gate::Answer(inc.source),
            );
        }
    }

    /// Counts a walker refusal; `None` (a community we only track) is unsolicited: a tracker
    /// never walks, so nothing can answer it.
    fn walker_result<T>(
        &mut self,
        community: CommunityId,
        result: Option<Result<T, walker::Error>>,
    ) -> Option<T> {
        match result {
            Some(Ok(value)) => Some(value),
            Some(Err(e)) => {
                self.count_drop(Some(community), drop_reason(&e));
                None
            }
            None => {
                self.count_drop(Some(community), DropReason::Unsolicited);
                None
            }
        }
    }

    /// The extension block of a walker payload's `extra`; a malformed block drops the message.
    fn extensions(&mut self, community: CommunityId, extra: &[u8]) -> Option<Extensions> {
        match Extensions::parse(extra) {
            Ok(e) => Some(e),
            Err(e) => {
                self.count_drop(Some(community), DropReason::from(&e));
                None
            }
        }
    }

    /// Encodes a walker message for the community with this prefix, signed by us when `signed`,
    /// carrying the community's global time (see the module docs).
    pub(super) fn walker_packet(
        &self,
        prefix: Prefix,
        payload: &Builtin,
        signed: bool,
    ) -> Option<Bytes> {
        let bytes = payload.to_bytes().ok()?;
        let global_time = self
            .communities
            .get(&prefix.community)
            .map_or(GlobalTime(1), |c| c.global_time.max(GlobalTime(1)));
        let encoding = KeyEncoding::default_for(prefix.community_version);
        let draft = Draft {
            prefix,
            message_byte: payload.message_byte(),
            authors: if signed {
                Authors::Member(self.key.public(), encoding)
            } else {
                Authors::None
            },
            resolution: None,
            global_time,
            sequence: None,
            payload: &bytes,
        };
        let signers: &[Option<&crate::crypto::PrivateKey>] =
            if signed { &[Some(&self.key)] } else { &[] };
        match draft.encode(signers) {
            Ok(packet) => Some(packet),
            Err(e) => {
                tracing::debug!(error = %e, "could not encode a walker message");
                None
            }
        }
    }

    /// After the walker state of a joined community changed: refresh the clock opinion median
    /// and report candidate changes.
    fn walker_changed(&mut self, now: Instant, community: CommunityId) {
        if let Some(c) = self.communities.get_mut(&community) {
            c.refresh_median_opinion(now);
        }
        self.report_peer_changes(now, community);
    }

    /// Emits [`Event::PeerChanged`] for every candidate that appeared, changed category or
    /// member, or went away since the last report.
    pub(super) fn report_peer_changes(&mut self, now: Instant, community: CommunityId) {
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let current = current_candidates(c, now);
        for (address, (_, member)) in &c.reported {
            if !current.contains_key(address) {
                self.events.push_back(Event::PeerChanged {
                    community,
                    address: *address,
                    member: *member,
                    category: Category::None.name(),
                });
            }
        }
        for (address, now_is) in &current {
            if c.reported.get(address) != Some(now_is) {
                self.events.push_back(Event::PeerChanged {
                    community,
                    address: *address,
                    member: now_is.1,
                    category: now_is.0.name(),
                });
            }
        }
        c.reported = current;
    }
}

type Reported = std::collections::BTreeMap<SocketAddr, (Category, Option<crate::ids::MemberId>)>;

fn current_candidates(c: &CommunityState, now: Instant) -> Reported {
    let config = c.walker.config();
    c.walker
        .candidates()
        .iter()
        .map(|k| (k.address, (k.category(now, config), k.member)))
        .filter(|(_, (category, _))| *category != Category::None)
        .collect()
}

/// Whether a message byte is one of the eight walker messages (old and new style).
pub(super) fn is_walker_byte(message_byte: u8) -> bool {
    use crate::wire::builtin::byte;
    matches!(
        message_byte,
        byte::INTRODUCTION_REQUEST
            | byte::INTRODUCTION_RESPONSE
            | byte::PUNCTURE_REQUEST
            | byte::PUNCTURE
            | byte::NEW_INTRODUCTION_REQUEST
            | byte::NEW_INTRODUCTION_RESPONSE
            | byte::NEW_PUNCTURE_REQUEST
            | byte::NEW_PUNCTURE
    )
}

/// The drop reason the node counts for a walker refusal.
fn drop_reason(e: &walker::Error) -> DropReason {
    match e {
        walker::Error::OwnMember => DropReason::FromSelf,
        walker::Error::UnknownIdentifier(_)
        | walker::Error::DuplicateResponse(_)
        | walker::Error::UnknownIntroducer(_) => DropReason::Unsolicited,
        walker::Error::InvalidSource(_) | walker::Error::NoPunctureTarget => {
            DropReason::Invalid(e.reason())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use rand::SeedableRng;

    use super::*;
    use crate::crypto::PrivateKey;
    use crate::node::Config;
    use crate::store::MemStore;
    use crate::testing::Network;
    use crate::wire::builtin::{ConnectionType, WalkerStyle};

    fn key(seed: u64) -> PrivateKey {
        PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    fn def() -> Definition {
        Definition::builder(key(100).public().clone())
            .build()
            .unwrap()
    }

    fn node(tracker: bool) -> Node {
        let config = Config {
            tracker,
            ..Config::default()
        };
        let mut n = Node::new(config, key(1), Box::new(MemStore::new()));
        n.set_interfaces(Network::interfaces(0));
        n
    }

    fn request(def: &Definition, author: &PrivateKey, from: SocketAddr) -> Bytes {
        let payload = Builtin::IntroductionRequest(IntroductionRequest {
            style: WalkerStyle::Old,
            destination: Network::address(0),
            source_lan: from,
            source_wan: from,
            advice: true,
            connection_type: ConnectionType::Unknown,
            supports_new_style: true,
            tunnel: false,
            unused_flags: 0,
            identifier: 7,
            sync: None,
            extra: Bytes::new(),
        })
        .to_bytes()
        .unwrap();
        Draft {
            prefix: def.prefix(),
            message_byte: payload_byte(),
            authors: Authors::Member(author.public(), KeyEncoding::PublicKey),
            resolution: None,
            global_time: GlobalTime(5),
            sequence: None,
            payload: &payload,
        }
        .encode(&[Some(author)])
        .unwrap()
    }

    fn payload_byte() -> u8 {
        crate::wire::builtin::byte::INTRODUCTION_REQUEST
    }

    fn drops(n: &Node, reason: &str) -> u64 {
        n.stats().drops.get(reason).copied().unwrap_or(0)
    }

    #[test]
    fn requests_signed_by_ourselves_are_dropped() {
        let mut n = node(false);
        let t = Instant::from_secs(1);
        n.join(t, def()).unwrap();
        let from = Network::address(5);
        n.handle_datagram(t, from, request(&def(), &key(1), from))
            .unwrap();
        assert_eq!(drops(&n, "from-self"), 1);
        assert!(n.poll_transmit().is_none());
        assert!(n.candidates(&def().id()).is_empty());
    }

    #[test]
    fn only_a_tracker_answers_communities_it_did_not_join() {
        let t = Instant::from_secs(1);
        let from = Network::address(5);
        let mut plain = node(false);
        plain
            .handle_datagram(t, from, request(&def(), &key(2), from))
            .unwrap();
        assert_eq!(drops(&plain, "unknown-community"), 1);
        assert!(plain.poll_transmit().is_none());

        let mut tracker = node(true);
        tracker
            .handle_datagram(t, from, request(&def(), &key(2), from))
            .unwrap();
        let response = tracker.poll_transmit().expect("a response");
        assert_eq!(response.destination, from);
        assert_eq!(
            response.contents[crate::wire::MESSAGE_BYTE_OFFSET],
            crate::wire::builtin::byte::NEW_INTRODUCTION_RESPONSE,
            "the request advertised new style"
        );
        assert!(tracker.community(&def().id()).is_none());
        assert_eq!(
            tracker.walker_status().tracker.map(|s| s.communities),
            Some(1)
        );
        // Nothing of the requester is stored.
        assert_eq!(tracker.store().member(&key(2).member_id()), Ok(None));
        // A bad signature is refused before the tracker's walker sees it.
        let mut bad = request(&def(), &key(3), from).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        tracker.handle_datagram(t, from, Bytes::from(bad)).unwrap();
        assert_eq!(drops(&tracker, "bad-signature"), 1);
        assert!(tracker.poll_transmit().is_none());
    }

    #[test]
    fn bootstrap_addresses_are_checked_and_bounded() {
        let mut n = node(false);
        let t = Instant::from_secs(1);
        n.join(t, def()).unwrap();
        let id = def().id();
        assert!(n.add_bootstrap(t, Network::address(0)).is_err(), "ours");
        assert!(n.add_peer(t, id, "0.0.0.0:5".parse().unwrap()).is_err());
        assert!(matches!(
            n.add_peer(t, CommunityId([9; 20]), Network::address(1)),
            Err(CommandError::UnknownCommunity(_))
        ));
        for i in 1..=64 {
            n.add_bootstrap(t, Network::address(i)).unwrap();
        }
        assert!(n.add_bootstrap(t, Network::address(65)).is_err());
        assert!(n.add_bootstrap(t, Network::address(64)).is_ok(), "again");
        assert_eq!(n.bootstrap_addresses().count(), 64);
    }

    #[test]
    fn peer_changes_are_reported_and_expire() {
        let mut n = node(false);
        let t = Instant::from_secs(1);
        n.join(t, def()).unwrap();
        let id = def().id();
        let silent = Network::address(3);
        n.add_peer(t, id, silent).unwrap();
        let stumbler = Network::address(5);
        n.handle_datagram(t, stumbler, request(&def(), &key(2), stumbler))
            .unwrap();
        assert_eq!(n.peers(&id), [stumbler]);
        let mut events: Vec<Event> = std::iter::from_fn(|| n.poll_event()).collect();
        let mut at = t;
        while at < t + Duration::from_secs(70) {
            at = n.poll_timeout().unwrap().max(at);
            n.handle_timeout(at).unwrap();
            events.extend(std::iter::from_fn(|| n.poll_event()));
            while n.poll_transmit().is_some() {}
        }
        let of = |who: SocketAddr| -> Vec<&'static str> {
            events
                .iter()
                .filter_map(|e| match e {
                    Event::PeerChanged {
                        address, category, ..
                    } if *address == who => Some(*category),
                    _ => None,
                })
                .collect()
        };
        // The stumbler went silent: gone once its 57.5 s are over.
        assert_eq!(of(stumbler), ["stumble", "none"]);
        assert!(n.peers(&id).is_empty());
        // The bootstrap address never answered but stays (no second event): without a verified
        // candidate the node hands it to the walker again every 30 s and keeps trying.
        assert_eq!(of(silent), ["discovered"]);
        let stats = n.walker_stats(&id).unwrap();
        assert!(stats.walk_attempts >= 2, "{stats:?}");
        assert_eq!(stats.walk_successes, 0);
        assert!(stats.walk_timeouts >= 1);
    }
}
