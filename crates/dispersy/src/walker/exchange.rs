//! The decisions for the four walker messages (Dispersy §9.3, py-ipv8 §3–4 for the style and
//! puncture rules): what to answer, whom to introduce, where to puncture, and what each message
//! teaches us about the peers and our own address.

use std::net::SocketAddr;

use bytes::Bytes;
use rand::Rng;

use super::address::{Family, canonical, is_private, is_valid, is_valid_from};
use super::candidate::{Candidate, Category};
use super::state::style_for;
use super::{Error, Sender, Shared, Stats, Transmit, VoteOutcome, Walker, cookie_from};
use crate::time::Instant;
use crate::wire::builtin::{
    ConnectionType, IntroductionRequest, IntroductionResponse, Puncture, PunctureRequest,
    WalkerStyle,
};
use crate::wire::extension::{Extensions, kind};

/// What to do after an introduction-request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    /// The requester's address (the response's destination).
    pub requester: SocketAddr,
    /// Whether the requester is in the candidate table (false when the table was full of more
    /// useful candidates; it is answered anyway).
    pub stored: bool,
    /// The introduction-response for the requester.
    pub response: Transmit<IntroductionResponse>,
    /// The puncture-request for the introduced peer, when we introduced one.
    pub puncture_request: Option<Transmit<PunctureRequest>>,
    /// Our WAN address changed because of this requester's vote.
    pub wan_changed: Option<SocketAddr>,
}

/// What an accepted introduction-response changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseOutcome {
    /// The responder (now a walk candidate).
    pub responder: SocketAddr,
    /// The address our request went to, now proven to receive our packets.
    pub proven: SocketAddr,
    /// The introduced peer's address, now an intro candidate.
    pub introduced: Option<SocketAddr>,
    /// Our WAN address changed because of the responder's vote.
    pub wan_changed: Option<SocketAddr>,
}

/// What every signed walker message tells us about its sender: fresh address estimates, the
/// member, whether it speaks new style, and its clock.
fn heard_from(
    c: &mut Candidate,
    sender: &Sender,
    lan: SocketAddr,
    wan: SocketAddr,
    new_style: bool,
) {
    c.update_addresses(lan, wan);
    c.member = Some(sender.member);
    c.supports_new_style |= new_style;
    c.global_time = c.global_time.max(sender.global_time);
}

impl Walker {
    /// Checks a signed message's sender: not us, a valid address that is not ours.
    fn check_sender(&mut self, shared: &Shared, sender: &Sender) -> Result<SocketAddr, Error> {
        let source = canonical(sender.address);
        let result = if sender.member == self.me {
            Err(Error::OwnMember)
        } else if !is_valid(source) || shared.addresses.is_ours(source) {
            Err(Error::InvalidSource(source))
        } else {
            Ok(source)
        };
        if result.is_err() {
            self.stats.dropped += 1;
        }
        result
    }

    /// Our estimate of a peer's LAN and WAN addresses: what it reports (when believable), with
    /// the UDP source taking the LAN slot when it is inside our LAN and the WAN slot otherwise.
    fn estimate(
        shared: &Shared,
        source: SocketAddr,
        reported_lan: SocketAddr,
        reported_wan: SocketAddr,
    ) -> (SocketAddr, SocketAddr) {
        let local = &shared.addresses;
        let none = Family::of(source).no_address();
        let believable = |a: SocketAddr| {
            let a = canonical(a);
            if is_valid_from(a, source) && Family::of(a) == Family::of(source) && !local.is_ours(a)
            {
                a
            } else {
                none
            }
        };
        let (mut lan, mut wan) = (believable(reported_lan), believable(reported_wan));
        if local.is_lan(source.ip()) {
            lan = source;
            // A public address in our subnet (a server in the same data-centre network, a flat
            // test network) has no NAT in front of it: it is its WAN address too. What it
            // reports may be its private address, which it uses as its WAN address until it
            // hears a vote, and introducing that to others would send them nowhere.
            if !is_private(source.ip()) {
                wan = source;
            }
        } else {
            wan = source;
        }
        (lan, wan)
    }

    /// Finds or creates the candidate for `source` with the category it is about to get,
    /// first moving a symmetric-NAT candidate of the same peer to its new port (§9.5).
    fn candidate_for(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        source: SocketAddr,
        lan: SocketAddr,
        category: Category,
    ) -> Option<&mut Candidate> {
        if let Some(old) = self.candidates.adopt_symmetric(source, lan) {
            shared.addresses.unvote(old);
        }
        self.candidates.entry(now, &self.config, source, category)
    }

    fn merge(&mut self, shared: &mut Shared, addr: SocketAddr) {
        for gone in self.candidates.merge_duplicates(addr) {
            shared.addresses.unvote(gone);
        }
    }

    fn vote(
        shared: &mut Shared,
        now: Instant,
        voter: SocketAddr,
        address: SocketAddr,
    ) -> Option<SocketAddr> {
        match shared.addresses.vote(now, voter, address) {
            VoteOutcome::WanChanged(wan) => Some(wan),
            VoteOutcome::Counted | VoteOutcome::Ignored => None,
        }
    }

    /// B's side: a peer walked to us. Updates (or creates) its candidate as a stumble candidate,
    /// counts its vote for our WAN address (when its address is proven), chooses whom to introduce, and returns the response
    /// and the puncture-request. `extensions` are those of the request's `extra`.
    pub fn on_introduction_request<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        sender: Sender,
        request: &IntroductionRequest,
        extensions: &Extensions,
        rng: &mut R,
    ) -> Result<RequestOutcome, Error> {
        let source = self.check_sender(shared, &sender)?;
        self.stats.requests_received += 1;
        let was_empty = self.candidates.is_empty();
        if let Some(echo) = extensions.get(kind::COOKIE_ECHO) {
            shared.amplification.check_cookie_echo(now, source, echo);
        }
        let (lan, wan) = Self::estimate(shared, source, request.source_lan, request.source_wan);
        if let Some(old) = self.candidates.adopt_symmetric(source, lan) {
            shared.addresses.unvote(old);
        }
        let mut requester = self
            .candidates
            .get(source)
            .cloned()
            .unwrap_or_else(|| Candidate::new(source));
        let new_style = request.style == WalkerStyle::New || request.supports_new_style;
        heard_from(&mut requester, &sender, lan, wan, new_style);
        requester.update_connection_type(request.connection_type);
        requester.last_stumble = Some(now);
        let stored = match self
            .candidates
            .entry(now, &self.config, source, Category::Stumble)
        {
            Some(slot) => {
                *slot = requester.clone();
                true
            }
            None => false,
        };
        let wan_changed =
            if self.config.unproven_votes || shared.amplification.is_proven(now, source) {
                Self::vote(shared, now, source, request.destination)
            } else {
                None
            };
        if stored {
            self.merge(shared, source);
        }
        self.first_candidate(now, was_empty);

        let introduced = if request.advice {
            self.candidates
                .introduce(
                    now,
                    &self.config,
                    &shared.addresses,
                    &requester,
                    self.config.introduce_mode,
                    rng,
                )
                .and_then(|addr| self.candidates.get(addr).cloned())
        } else {
            None
        };

        let local = &shared.addresses;
        let family = Family::of(source);
        let none = family.no_address();
        let mut extensions = Extensions::new();
        if !shared.amplification.is_proven(now, source) {
            let cookie = shared.amplification.issue_cookie(now, source, rng);
            // A 20-byte cookie always fits in an extension.
            let _ = extensions.push(kind::COOKIE, cookie);
        }
        let response = IntroductionResponse {
            style: style_for(requester.supports_new_style, &[source]),
            destination: source,
            source_lan: local.lan(family),
            source_wan: local.wan(family),
            lan_introduction: introduced.as_ref().map_or(none, |c| c.lan),
            wan_introduction: introduced.as_ref().map_or(none, |c| c.wan),
            connection_type: local.connection_type(family),
            supports_new_style: true,
            intro_supports_new_style: introduced.as_ref().is_some_and(|c| c.supports_new_style),
            peer_limit_reached: self.candidates.is_full(),
            unused_flags: 0,
            identifier: request.identifier,
            extra: Bytes::new(),
        };
        let puncture_request = introduced.map(|c| {
            self.stats.introductions_made += 1;
            self.stats.puncture_requests_sent += 1;
            // W9: the addresses we observed, not only what the requester claimed.
            let lan_walker = if is_valid(requester.lan) {
                requester.lan
            } else {
                source
            };
            let wan_walker = if is_valid(requester.wan) {
                requester.wan
            } else {
                lan_walker
            };
            let payload = PunctureRequest {
                style: style_for(c.supports_new_style, &[c.address, lan_walker, wan_walker]),
                lan_walker,
                wan_walker,
                identifier: request.identifier,
            };
            Transmit::plain(c.address, payload)
        });
        Ok(RequestOutcome {
            requester: source,
            stored,
            response: Transmit {
                destination: source,
                payload: response,
                extensions,
            },
            puncture_request,
            wan_changed,
        })
    }

    /// A's side: the answer to one of our requests. Checks the identifier, makes the responder a
    /// walk candidate (its address is now proven), counts its vote, and takes in the introduced
    /// peer as an intro candidate when its addresses are believable.
    pub fn on_introduction_response(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        sender: Sender,
        response: &IntroductionResponse,
        extensions: &Extensions,
    ) -> Result<ResponseOutcome, Error> {
        let source = self.check_sender(shared, &sender)?;
        let id = response.identifier;
        let pending = match self.requests.get_mut(id) {
            None => {
                self.stats.unknown_identifiers += 1;
                self.stats.dropped += 1;
                return Err(Error::UnknownIdentifier(id));
            }
            Some(p) if p.responded => {
                self.stats.dropped += 1;
                return Err(Error::DuplicateResponse(id));
            }
            Some(p) => {
                p.responded = true;
                *p
            }
        };
        self.stats.walk_successes += 1;
        shared.amplification.prove(now, pending.target);

        let (lan, wan) = Self::estimate(shared, source, response.source_lan, response.source_wan);
        if let Some(c) = self.candidate_for(now, shared, source, lan, Category::Walk) {
            let new_style = response.style == WalkerStyle::New || response.supports_new_style;
            heard_from(c, &sender, lan, wan, new_style);
            if response.style == WalkerStyle::Old {
                c.update_connection_type(response.connection_type);
            }
            c.last_walk_reply = Some(now);
            if let Some(cookie) = cookie_from(extensions) {
                c.cookie = Some(cookie);
            }
            self.merge(shared, source);
        }
        let wan_changed = Self::vote(shared, now, source, response.destination);

        let introduced = self.take_introduction(now, shared, source, response);
        if introduced.is_none() || pending.punctured {
            let _ = self.requests.pop(id);
        }
        Ok(ResponseOutcome {
            responder: source,
            proven: pending.target,
            introduced,
            wan_changed,
        })
    }

    fn take_introduction(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        responder: SocketAddr,
        response: &IntroductionResponse,
    ) -> Option<SocketAddr> {
        let (lan, wan) = (
            canonical(response.lan_introduction),
            canonical(response.wan_introduction),
        );
        let named = |a: SocketAddr| !a.ip().is_unspecified() || a.port() != 0;
        if !named(lan) && !named(wan) {
            return None;
        }
        let local = &shared.addresses;
        let usable = |a: SocketAddr| {
            is_valid_from(a, responder) && !local.is_ours(a) && local.reachable(a) && a != responder
        };
        let (lan_ok, wan_ok) = (usable(lan), usable(wan));
        if !lan_ok && !wan_ok {
            self.stats.bad_introductions += 1;
            return None;
        }
        // Dispersy: the LAN address when the introduced peer shares our WAN IP (same NAT),
        // else its WAN address; with only one usable address, that one.
        let my_wan = local.wan(Family::of(if wan_ok { wan } else { lan }));
        let target = match (lan_ok, wan_ok) {
            (true, true) if wan.ip() == my_wan.ip() => lan,
            (_, true) => wan,
            _ => lan,
        };
        let none = Family::of(target).no_address();
        let c = self.candidate_for(
            now,
            shared,
            target,
            if lan_ok { lan } else { none },
            Category::Intro,
        )?;
        c.update_addresses(
            if lan_ok { lan } else { none },
            if wan_ok { wan } else { none },
        );
        c.supports_new_style |= response.intro_supports_new_style;
        c.last_intro = Some(now);
        self.stats.introductions_received += 1;
        Some(target)
    }

    /// C's side: an introducer asks us to puncture towards a walker. Returns the puncture and
    /// its destination: py-ipv8's rule, the WAN walker address unless it shares our WAN IP (then
    /// the LAN one), falling back to the other when the first is unusable or is the introducer
    /// itself. The node charges the puncture to the introducer's amplification budget.
    pub fn on_puncture_request(
        &mut self,
        now: Instant,
        shared: &Shared,
        introducer: SocketAddr,
        request: &PunctureRequest,
    ) -> Result<Transmit<Puncture>, Error> {
        let source = canonical(introducer);
        let local = &shared.addresses;
        let refuse = |stats: &mut Stats, e: Error| {
            stats.dropped += 1;
            Err(e)
        };
        if !is_valid(source) || local.is_ours(source) {
            return refuse(&mut self.stats, Error::InvalidSource(source));
        }
        if self.config.puncture_requires_known_introducer
            && self.candidates.get(source).is_none()
            && !shared.amplification.is_proven(now, source)
        {
            return refuse(&mut self.stats, Error::UnknownIntroducer(source));
        }
        let (lan, wan) = (canonical(request.lan_walker), canonical(request.wan_walker));
        let order = if wan.ip() == local.wan(Family::of(wan)).ip() {
            [lan, wan]
        } else {
            [wan, lan]
        };
        let Some(target) = order.into_iter().find(|a| {
            is_valid_from(*a, source) && *a != source && !local.is_ours(*a) && local.reachable(*a)
        }) else {
            return refuse(&mut self.stats, Error::NoPunctureTarget);
        };
        self.stats.punctures_sent += 1;
        let family = Family::of(target);
        let style = if family == Family::V6 {
            WalkerStyle::New
        } else {
            request.style
        };
        Ok(Transmit::plain(
            target,
            Puncture {
                style,
                source_lan: local.lan(family),
                source_wan: local.wan(family),
                identifier: request.identifier,
            },
        ))
    }

    /// A's side: a peer we were introduced to punctured towards us. Accepted only for an
    /// outstanding request; the peer becomes an intro candidate. Returns its address.
    pub fn on_puncture(
        &mut self,
        now: Instant,
        shared: &mut Shared,
        sender: Sender,
        puncture: &Puncture,
    ) -> Result<SocketAddr, Error> {
        let source = self.check_sender(shared, &sender)?;
        let id = puncture.identifier;
        let Some(pending) = self.requests.get_mut(id) else {
            self.stats.unknown_identifiers += 1;
            self.stats.dropped += 1;
            return Err(Error::UnknownIdentifier(id));
        };
        pending.punctured = true;
        if pending.responded {
            let _ = self.requests.pop(id);
        }
        self.stats.punctures_received += 1;
        // py-ipv8 echoes our own address as `source_wan`; `estimate` ignores our addresses.
        let (lan, wan) = Self::estimate(shared, source, puncture.source_lan, puncture.source_wan);
        if let Some(c) = self.candidate_for(now, shared, source, lan, Category::Intro) {
            heard_from(c, &sender, lan, wan, puncture.style == WalkerStyle::New);
            c.last_intro = Some(now);
            if c.connection_type == ConnectionType::Unknown {
                c.update_connection_type(ConnectionType::Unknown);
            }
        }
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::super::testutil::{Peer, t, v4};
    use super::*;
    use crate::walker::Config;
    use crate::wire::builtin::NO_ADDRESS;

    #[test]
    fn four_messages_between_three_public_peers() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let mut c = Peer::public(3, v4(3, 0, 0, 3, 1003));

        // C walks to B first, so B knows C as a stumble candidate.
        let req = c.walk(t(0), b.seen_as);
        assert_eq!(req.payload.style, WalkerStyle::Old);
        assert!(req.payload.supports_new_style && req.payload.advice);
        let out = b.answer(t(0), &c, &req);
        assert!(out.puncture_request.is_none(), "nobody to introduce yet");
        assert_eq!(out.response.payload.lan_introduction, NO_ADDRESS);
        c.receive(t(0), &b, &out.response).unwrap();
        assert_eq!(c.category(b.seen_as, t(1)), Some(Category::Walk));

        // A walks to B; B introduces C and asks C to puncture towards A.
        assert!(a.walker.add_discovered(t(1), &a.shared, b.seen_as, true));
        let req = a
            .walker
            .handle_timeout(t(1), &mut a.shared, &mut a.rng)
            .unwrap();
        assert_eq!(req.destination, b.seen_as);
        assert_eq!(req.payload.source_lan, a.seen_as);
        let out = b.answer(t(1), &a, &req);
        let resp = &out.response.payload;
        assert_eq!(
            resp.style,
            WalkerStyle::New,
            "A advertised new style in its 246"
        );
        assert_eq!(resp.destination, a.seen_as);
        assert_eq!(resp.identifier, req.payload.identifier);
        assert_eq!(resp.lan_introduction, c.seen_as);
        assert_eq!(resp.wan_introduction, c.seen_as);
        assert!(resp.intro_supports_new_style);
        let pr = out.puncture_request.clone().unwrap();
        assert_eq!(pr.destination, c.seen_as);
        assert_eq!(pr.payload.wan_walker, a.seen_as);
        assert_eq!(pr.payload.identifier, req.payload.identifier);
        assert_eq!(b.category(a.seen_as, t(1)), Some(Category::Stumble));
        assert_eq!(b.walker.stats().introductions_made, 1);

        // C punctures towards A.
        let p = c
            .walker
            .on_puncture_request(t(1), &c.shared, b.seen_as, &pr.payload)
            .unwrap();
        assert_eq!(p.destination, a.seen_as);
        assert_eq!(p.payload.identifier, req.payload.identifier);

        // A takes the response: B is walked and proven, C is introduced.
        let got = a.receive(t(1), &b, &out.response).unwrap();
        assert_eq!(got.introduced, Some(c.seen_as));
        assert!(a.shared.amplification.is_proven(t(1), b.seen_as));
        assert_eq!(a.category(b.seen_as, t(2)), Some(Category::Walk));
        assert_eq!(a.category(c.seen_as, t(2)), Some(Category::Intro));
        // And the puncture, which closes the request.
        let sender = c.sender();
        assert_eq!(
            a.walker
                .on_puncture(t(1), &mut a.shared, sender, &p.payload),
            Ok(c.seen_as)
        );
        assert_eq!(a.walker.pending().count(), 0);
        let s = a.walker.stats();
        assert_eq!(
            (s.walk_attempts, s.walk_successes, s.punctures_received),
            (1, 1, 1)
        );
        // A public peer learns it is public from the votes.
        assert_eq!(
            a.shared.addresses.connection_type(Family::V4),
            ConnectionType::Public
        );
    }

    #[test]
    fn responses_need_the_right_identifier_once() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let req = a.walk(t(0), b.seen_as);
        let mut out = b.answer(t(0), &a, &req);
        out.response.payload.identifier = req.payload.identifier.wrapping_add(1);
        assert_eq!(
            a.receive(t(0), &b, &out.response),
            Err(Error::UnknownIdentifier(out.response.payload.identifier))
        );
        assert!(!a.shared.amplification.is_proven(t(0), b.seen_as));
        out.response.payload.identifier = req.payload.identifier;
        // No introduction in it: the request is finished at once, a replay is unknown.
        a.receive(t(0), &b, &out.response).unwrap();
        assert!(a.receive(t(0), &b, &out.response).is_err());
        assert_eq!(a.walker.stats().unknown_identifiers, 2);
    }

    #[test]
    fn duplicate_response_while_awaiting_puncture() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let c = Peer::public(3, v4(3, 0, 0, 3, 1003));
        let req = a.walk(t(0), b.seen_as);
        let mut out = b.answer(t(0), &a, &req);
        out.response.payload.lan_introduction = c.seen_as;
        out.response.payload.wan_introduction = c.seen_as;
        a.receive(t(0), &b, &out.response).unwrap();
        assert_eq!(
            a.receive(t(0), &b, &out.response),
            Err(Error::DuplicateResponse(req.payload.identifier))
        );
    }

    #[test]
    fn estimate_addresses_within_lan() {
        // B sits in 192.168.1.0/24; A, in the same LAN, has no idea of its addresses yet.
        let mut b = Peer::new(2, v4(192, 168, 1, 10, 7000), 24, v4(192, 168, 1, 10, 7000));
        let mut a = Peer::new(1, v4(192, 168, 1, 20, 7001), 24, v4(192, 168, 1, 20, 7001));
        let mut req = a.walk(t(0), b.seen_as);
        req.payload.source_lan = NO_ADDRESS;
        req.payload.source_wan = NO_ADDRESS;
        let out = b.answer(t(0), &a, &req);
        assert_eq!(out.response.payload.destination, a.seen_as);
        let stored = b.walker.candidates().get(a.seen_as).unwrap();
        assert_eq!(stored.lan, a.seen_as);
        assert_eq!(stored.wan, NO_ADDRESS);
        // A vote from inside our LAN does not count.
        assert_eq!(b.shared.addresses.tally(Family::V4).len(), 0);
    }

    #[test]
    fn a_public_peer_in_our_subnet_is_its_own_wan_address() {
        // A flat public network: B at 198.51.100.2/24, A's NAT router at 198.51.100.12 in the
        // same subnet. A reports its private address for both (it has no votes yet).
        let mut b = Peer::new(2, v4(198, 51, 100, 2, 6421), 24, v4(198, 51, 100, 2, 6421));
        let mut a = Peer::new(1, v4(10, 0, 2, 2, 7759), 24, v4(198, 51, 100, 12, 7759));
        let mut req = a.walk(t(0), b.seen_as);
        req.payload.source_lan = v4(10, 0, 2, 2, 7759);
        req.payload.source_wan = v4(10, 0, 2, 2, 7759);
        b.answer(t(0), &a, &req);
        let stored = b.walker.candidates().get(a.seen_as).unwrap();
        assert_eq!(stored.lan, a.seen_as);
        assert_eq!(stored.wan, a.seen_as, "not the private address it reported");
        // A private peer in our subnet keeps the WAN address it reports.
        let mut p = Peer::new(3, v4(10, 0, 2, 9, 7759), 24, v4(10, 0, 2, 9, 7759));
        let mut lan_b = Peer::new(4, v4(10, 0, 2, 3, 7759), 24, v4(10, 0, 2, 3, 7759));
        let mut req = p.walk(t(0), lan_b.seen_as);
        req.payload.source_wan = v4(203, 0, 113, 7, 7759);
        lan_b.answer(t(0), &p, &req);
        let stored = lan_b.walker.candidates().get(p.seen_as).unwrap();
        assert_eq!(stored.wan, v4(203, 0, 113, 7, 7759));
    }

    #[test]
    fn w9_puncture_request_names_what_we_observed() {
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let mut c = Peer::public(3, v4(3, 0, 0, 3, 1003));
        // C is known to B.
        let req = c.walk(t(0), b.seen_as);
        b.answer(t(0), &c, &req);
        // A is behind a NAT: LAN 10.0.0.5:7000, seen as 7.7.7.7:40000, and reports no WAN.
        let mut a = Peer::new(1, v4(10, 0, 0, 5, 7000), 8, v4(7, 7, 7, 7, 40000));
        let mut req = a.walk(t(1), b.seen_as);
        req.payload.source_wan = v4(6, 6, 6, 6, 1);
        let out = b.answer(t(1), &a, &req);
        let pr = out.puncture_request.unwrap().payload;
        assert_eq!(pr.lan_walker, v4(10, 0, 0, 5, 7000));
        assert_eq!(
            pr.wan_walker,
            v4(7, 7, 7, 7, 40000),
            "observed, not self-reported"
        );
        assert_eq!(b.walker.candidates().get(a.seen_as).unwrap().wan, a.seen_as);
    }

    #[test]
    fn puncture_target_follows_py_ipv8() {
        // C is behind a NAT whose public IP is 5.5.5.5.
        let mut c = Peer::new(3, v4(10, 0, 0, 3, 7000), 8, v4(5, 5, 5, 5, 7000));
        for i in 1..=2 {
            c.shared
                .addresses
                .vote(t(0), v4(8, 0, 0, i, 1), v4(5, 5, 5, 5, 7000));
        }
        let introducer = v4(2, 0, 0, 2, 1002);
        let pr = |lan, wan| PunctureRequest {
            style: WalkerStyle::Old,
            lan_walker: lan,
            wan_walker: wan,
            identifier: 9,
        };
        let unknown = c.walker.on_puncture_request(
            t(0),
            &c.shared,
            introducer,
            &pr(NO_ADDRESS, v4(7, 7, 7, 7, 1)),
        );
        assert_eq!(unknown, Err(Error::UnknownIntroducer(introducer)));
        c.walker.add_discovered(t(0), &c.shared, introducer, true);
        let target = |c: &mut Peer, lan, wan| {
            c.walker
                .on_puncture_request(t(0), &c.shared, introducer, &pr(lan, wan))
                .map(|p| p.destination)
        };
        // A walker elsewhere: its WAN address.
        assert_eq!(
            target(&mut c, v4(10, 0, 0, 9, 1), v4(7, 7, 7, 7, 1)),
            Ok(v4(7, 7, 7, 7, 1))
        );
        // A walker behind the same NAT: its LAN address.
        assert_eq!(
            target(&mut c, v4(10, 0, 0, 9, 1), v4(5, 5, 5, 5, 2)),
            Ok(v4(10, 0, 0, 9, 1))
        );
        // py-ipv8 puts the introducer in lan_walker: fall back to the WAN address.
        assert_eq!(
            target(&mut c, introducer, v4(5, 5, 5, 5, 2)),
            Ok(v4(5, 5, 5, 5, 2))
        );
        // Nothing usable.
        assert_eq!(
            target(&mut c, NO_ADDRESS, NO_ADDRESS),
            Err(Error::NoPunctureTarget)
        );
        assert_eq!(
            target(&mut c, v4(10, 0, 0, 3, 7000), NO_ADDRESS),
            Err(Error::NoPunctureTarget),
            "never ourselves"
        );
    }

    #[test]
    fn puncture_needs_an_open_request_and_ignores_our_echoed_address() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let c = Peer::public(3, v4(3, 0, 0, 3, 1003));
        let req = a.walk(t(0), v4(2, 0, 0, 2, 1002));
        let puncture = |id| Puncture {
            style: WalkerStyle::New,
            source_lan: c.seen_as,
            source_wan: a.seen_as, // py-ipv8 echoes the walker's own address here
            identifier: id,
        };
        let id = req.payload.identifier;
        assert_eq!(
            a.walker.on_puncture(
                t(0),
                &mut a.shared,
                c.sender(),
                &puncture(id.wrapping_add(1))
            ),
            Err(Error::UnknownIdentifier(id.wrapping_add(1)))
        );
        a.walker
            .on_puncture(t(0), &mut a.shared, c.sender(), &puncture(id))
            .unwrap();
        let k = a.walker.candidates().get(c.seen_as).unwrap();
        assert_eq!(k.wan, c.seen_as);
        assert!(k.supports_new_style);
        assert_eq!(k.category(t(0), a.walker.config()), Category::Intro);
        assert!(
            !a.shared.amplification.is_proven(t(0), c.seen_as),
            "a puncture proves nothing"
        );
    }

    #[test]
    fn style_negotiation() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        // An old Dispersy peer: 246 without 0x20 gets a 245.
        let mut req = a.walk(t(0), b.seen_as);
        assert_eq!(req.payload.style, WalkerStyle::Old);
        req.payload.supports_new_style = false;
        let out = b.answer(t(0), &a, &req);
        assert_eq!(out.response.payload.style, WalkerStyle::Old);
        assert!(
            out.response.payload.supports_new_style,
            "we advertise it in our 245"
        );
        // Our 245 carried 0x10: A now talks new style to B.
        a.receive(t(0), &b, &out.response).unwrap();
        assert_eq!(a.walk(t(30), b.seen_as).payload.style, WalkerStyle::New);
        // IPv6 is always new style.
        let v6: SocketAddr = "[2001:db8::7]:7".parse().unwrap();
        let mut d = Peer::public(4, "[2001:db8::1]:1".parse().unwrap());
        assert_eq!(d.walk(t(0), v6).payload.style, WalkerStyle::New);
        assert!(
            a.walker.walk_to(t(0), &a.shared, v6, &mut a.rng).is_none(),
            "IPv4 socket"
        );
    }

    #[test]
    fn cookie_round_trip_proves_the_requester() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let req = a.walk(t(0), b.seen_as);
        assert!(req.extensions.is_empty());
        let out = b.answer(t(0), &a, &req);
        assert!(out.response.extensions.get(kind::COOKIE).is_some());
        assert!(!b.shared.amplification.allows_bulk(t(0), a.seen_as));
        assert!(
            b.shared.addresses.tally(Family::V4).is_empty(),
            "an unproven requester does not vote"
        );
        a.receive(t(0), &b, &out.response).unwrap();
        // The encoded payload carries the extension block.
        let encoded = out.response.clone().into_payload();
        assert_eq!(
            Extensions::parse(&encoded.extra).unwrap().get(kind::COOKIE),
            out.response.extensions.get(kind::COOKIE)
        );
        let again = a.walk(t(30), b.seen_as);
        assert!(again.extensions.get(kind::COOKIE_ECHO).is_some());
        let out = b.answer(t(30), &a, &again);
        assert!(b.shared.amplification.allows_bulk(t(30), a.seen_as));
        assert!(
            out.response.extensions.is_empty(),
            "no cookie for a proven peer"
        );
        assert_eq!(
            b.shared.addresses.tally(Family::V4).get(&b.seen_as),
            Some(&1),
            "a requester that echoed our cookie votes"
        );
    }

    #[test]
    fn symmetric_nat_peers_behind_different_ips_are_not_introduced() {
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let mut c = Peer::new(3, v4(10, 0, 0, 3, 7000), 8, v4(5, 5, 5, 5, 4000));
        let mut req = c.walk(t(0), b.seen_as);
        req.payload.connection_type = ConnectionType::SymmetricNat;
        b.answer(t(0), &c, &req);
        let mut a = Peer::new(1, v4(10, 0, 0, 1, 7000), 8, v4(6, 6, 6, 6, 4000));
        let mut req = a.walk(t(1), b.seen_as);
        req.payload.connection_type = ConnectionType::SymmetricNat;
        assert!(b.answer(t(1), &a, &req).puncture_request.is_none());
        req.payload.connection_type = ConnectionType::Unknown;
        assert!(b.answer(t(2), &a, &req).puncture_request.is_some());
    }

    #[test]
    fn bad_introductions_are_ignored_but_the_response_counts() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        for bad in [v4(127, 0, 0, 1, 5), a.seen_as, v4(0, 0, 0, 0, 5)] {
            let req = a.walk(t(0), b.seen_as);
            let mut out = b.answer(t(0), &a, &req);
            out.response.payload.lan_introduction = bad;
            out.response.payload.wan_introduction = bad;
            let got = a.receive(t(0), &b, &out.response).unwrap();
            assert_eq!(got.introduced, None, "{bad}");
        }
        assert_eq!(a.walker.stats().bad_introductions, 3);
        assert_eq!(a.walker.stats().walk_successes, 3);
        assert_eq!(a.walker.candidates().len(), 1);
    }

    #[test]
    fn own_member_and_own_address_are_dropped() {
        let mut a = Peer::public(1, v4(1, 0, 0, 1, 1001));
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        let req = a.walk(t(0), b.seen_as);
        let me = Sender {
            member: b.me,
            ..a.sender()
        };
        let ext = Extensions::new();
        let r = b.walker.on_introduction_request(
            t(0),
            &mut b.shared,
            me,
            &req.payload,
            &ext,
            &mut b.rng,
        );
        assert_eq!(r, Err(Error::OwnMember));
        let spoofed = Sender {
            address: b.seen_as,
            ..a.sender()
        };
        let r = b.walker.on_introduction_request(
            t(0),
            &mut b.shared,
            spoofed,
            &req.payload,
            &ext,
            &mut b.rng,
        );
        assert_eq!(r, Err(Error::InvalidSource(b.seen_as)));
        assert_eq!(b.walker.stats().dropped, 2);
    }

    #[test]
    fn nat_detection_through_the_walk_and_cleanup() {
        // A behind a NAT; public peers tell it its address.
        let mut a = Peer::new(1, v4(192, 168, 1, 2, 7000), 24, v4(5, 5, 5, 5, 7000));
        let mut peers: Vec<Peer> = (2..=4)
            .map(|i| Peer::public(i, v4(20, 0, 0, i, 1000)))
            .collect();
        for p in &mut peers {
            let req = a.walk(t(0), p.seen_as);
            let out = p.answer(t(0), &a, &req);
            a.receive(t(0), p, &out.response).unwrap();
        }
        assert_eq!(a.shared.addresses.wan(Family::V4), v4(5, 5, 5, 5, 7000));
        assert_eq!(
            a.shared.addresses.connection_type(Family::V4),
            ConnectionType::Unknown
        );
        assert_eq!(
            a.walker
                .walk_to(t(1), &a.shared, v4(5, 5, 5, 5, 7000), &mut a.rng),
            None
        );
        // Every peer goes silent: cleanup drops them and withdraws their votes.
        a.walker.cleanup(t(60), &mut a.shared);
        assert!(a.walker.candidates().is_empty());
        assert!(a.shared.addresses.tally(Family::V4).is_empty());
    }

    #[test]
    fn full_table_still_answers() {
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        b.walker = Walker::new(
            Config {
                max_candidates: 2,
                ..Config::default()
            },
            b.me,
            Instant::ZERO,
        );
        let mut stored = Vec::new();
        for i in 1..=4 {
            let mut a = Peer::public(10 + i, v4(30, 0, 0, i, 1000));
            let req = a.walk(t(u64::from(i)), b.seen_as);
            let out = b.answer(t(u64::from(i)), &a, &req);
            stored.push(out.stored);
            assert!(out.response.payload.peer_limit_reached == b.walker.candidates().is_full());
        }
        assert_eq!(
            stored,
            [true, true, true, true],
            "a newer stumble replaces the oldest"
        );
        assert_eq!(b.walker.candidates().len(), 2);
        assert_eq!(b.walker.stats().table.evictions, 2);
    }
}

#[cfg(test)]
mod hostile {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};

    use rand::Rng;
    use rand_chacha::ChaCha8Rng;

    use super::super::testutil::{Peer, seeded, v4};
    use super::*;
    use crate::ids::{GlobalTime, MemberId};
    use crate::walker::Config;

    fn addr(rng: &mut ChaCha8Rng) -> SocketAddr {
        let port = if rng.gen_bool(0.05) {
            0
        } else {
            rng.gen_range(1..5)
        };
        match rng.gen_range(0..6) {
            0 => v4(0, 0, 0, 0, port),
            1 => v4(127, 0, 0, 1, port),
            2 => v4(2, 0, 0, 2, 1002), // the node itself
            3 => SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    rng.gen_range(1..4),
                )),
                port,
            ),
            4 => v4(255, 255, 255, 255, port),
            _ => v4(
                9,
                rng.gen_range(0..3),
                rng.gen_range(0..3),
                rng.gen_range(0..40),
                port,
            ),
        }
    }

    fn style(rng: &mut ChaCha8Rng) -> WalkerStyle {
        if rng.gen_bool(0.5) {
            WalkerStyle::Old
        } else {
            WalkerStyle::New
        }
    }

    /// Random walker messages from random (often invalid or spoofed) addresses never panic and
    /// never grow any table past its bound.
    #[test]
    fn random_messages_keep_every_bound() {
        let (seed, mut rng) = seeded("random_messages_keep_every_bound");
        let mut b = Peer::public(2, v4(2, 0, 0, 2, 1002));
        b.walker = Walker::new(
            Config {
                max_candidates: 16,
                max_outstanding_requests: 4,
                ..Config::default()
            },
            b.me,
            Instant::ZERO,
        );
        for step in 0..5_000u64 {
            let now = Instant::from_micros(step * 250_000);
            let sender = Sender {
                address: addr(&mut rng),
                member: MemberId([rng.gen_range(0..4); 20]),
                global_time: GlobalTime(rng.r#gen()),
            };
            let id = rng.gen_range(0..8u16);
            let mut ext = Extensions::new();
            if rng.gen_bool(0.2) {
                let len = rng.gen_range(0..80);
                let junk: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
                let _ = ext.push(
                    if rng.gen_bool(0.5) {
                        kind::COOKIE
                    } else {
                        kind::COOKIE_ECHO
                    },
                    junk,
                );
            }
            b.shared.amplification.on_received(now, sender.address, 200);
            match rng.gen_range(0..6) {
                0 => {
                    let _ = b.walker.handle_timeout(now, &mut b.shared, &mut b.rng);
                }
                1 => {
                    let to = addr(&mut rng);
                    let _ = b.walker.walk_to(now, &b.shared, to, &mut b.rng);
                }
                2 => {
                    let req = IntroductionRequest {
                        style: style(&mut rng),
                        destination: addr(&mut rng),
                        source_lan: addr(&mut rng),
                        source_wan: addr(&mut rng),
                        advice: rng.r#gen(),
                        connection_type: [
                            ConnectionType::Unknown,
                            ConnectionType::Public,
                            ConnectionType::SymmetricNat,
                        ][rng.gen_range(0..3)],
                        supports_new_style: rng.r#gen(),
                        tunnel: false,
                        unused_flags: 0,
                        identifier: id,
                        sync: None,
                        extra: Bytes::new(),
                    };
                    if let Ok(out) = b.walker.on_introduction_request(
                        now,
                        &mut b.shared,
                        sender,
                        &req,
                        &ext,
                        &mut b.rng,
                    ) {
                        let r = &out.response.payload;
                        if r.style == WalkerStyle::Old {
                            for a in [
                                r.destination,
                                r.source_lan,
                                r.source_wan,
                                r.lan_introduction,
                                r.wan_introduction,
                            ] {
                                assert!(a.is_ipv4(), "old style with {a}, seed {seed}");
                            }
                        }
                        if let Some(p) = out.puncture_request {
                            assert_ne!(p.destination, out.requester, "seed {seed}");
                        }
                    }
                }
                3 => {
                    let resp = IntroductionResponse {
                        style: style(&mut rng),
                        destination: addr(&mut rng),
                        source_lan: addr(&mut rng),
                        source_wan: addr(&mut rng),
                        lan_introduction: addr(&mut rng),
                        wan_introduction: addr(&mut rng),
                        connection_type: ConnectionType::Unknown,
                        supports_new_style: rng.r#gen(),
                        intro_supports_new_style: rng.r#gen(),
                        peer_limit_reached: false,
                        unused_flags: 0,
                        identifier: id,
                        extra: Bytes::new(),
                    };
                    let _ =
                        b.walker
                            .on_introduction_response(now, &mut b.shared, sender, &resp, &ext);
                }
                4 => {
                    let pr = PunctureRequest {
                        style: style(&mut rng),
                        lan_walker: addr(&mut rng),
                        wan_walker: addr(&mut rng),
                        identifier: id,
                    };
                    if let Ok(p) = b
                        .walker
                        .on_puncture_request(now, &b.shared, sender.address, &pr)
                    {
                        assert!(is_valid(p.destination), "seed {seed}");
                        assert!(!b.shared.addresses.is_ours(p.destination), "seed {seed}");
                    }
                }
                _ => {
                    let p = Puncture {
                        style: style(&mut rng),
                        source_lan: addr(&mut rng),
                        source_wan: addr(&mut rng),
                        identifier: id,
                    };
                    let _ = b.walker.on_puncture(now, &mut b.shared, sender, &p);
                }
            }
            assert!(b.walker.candidates().len() <= 16, "seed {seed}");
            assert!(b.walker.pending().count() <= 4, "seed {seed}");
            assert!(
                b.walker
                    .candidates()
                    .iter()
                    .all(|c| !b.shared.addresses.is_ours(c.address) && is_valid(c.address)),
                "seed {seed}"
            );
        }
        let s = b.walker.stats();
        assert!(
            s.requests_received > 0 && s.dropped > 0,
            "the test exercised both paths: {s:?}"
        );
    }
}
