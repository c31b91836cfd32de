//! The seam between the walk and synchronization.
//!
//! Dispersy synchronizes on the walk: every introduction-request carries the requester's offer
//! (a Bloom filter over a global-time range of what it holds, and our extensions), and the node
//! that answers the request sends back what the filter says the requester misses. The walk
//! (module `walk`) calls into this module at four points:
//!
//! - [`Node::sync_offer`] completes the introduction-request of a walker step: our `SYNC_HELLO`
//!   and a sync block from the classic requester (filter reuse and skips, sized so the whole
//!   request fits [`super::SyncConfig::datagram_budget`]).
//! - [`Node::sync_heard`] for every introduction-request and -response of a joined community:
//!   the sender's capabilities (`SYNC_HELLO`), whether it reads our extension block, and its
//!   claim for the progress estimate.
//! - [`Node::sync_answer`] before the introduction-response to a request goes out: the packets
//!   the requester's filter lacks (by priority and direction, within the community's budget or
//!   the budget a fast requester asked for, and within anti-amplification), a `SYNC_SUMMARY`
//!   for fast requesters, and the answer to a `RECONCILE` message. The extensions go into the
//!   response, which is sent first; [`Node::send_sync_packets`] sends the packets after it.
//! - [`Node::on_sync_response`] after the walker accepted an introduction-response: catch-up
//!   summaries and reconciliation replies (module `fast_sync`).
//!
//! The pipeline reports every Bloom-synced packet that arrives ([`Node::sync_on_packet`]), is
//! stored ([`Node::sync_stored`]) or deleted ([`Node::sync_removed`]), so the cached filter, the
//! fingerprint index, the progress count and catch-up's accounting stay exact.
//!
//! # Anti-amplification
//!
//! The answer to a sync block or a `RECONCILE` message is bulk: to a proven address it goes
//! through `Gate::Bulk`; to an unproven one it is selected within what the walker still allows
//! that address (three times what it sent, minus the response and puncture-request already
//! counted) and sent through `Gate::Answer`, so it never exceeds the limit.
//!
//! # Version-1 communities
//!
//! Original Dispersy drops an introduction-request or -response with any byte after its last
//! field. In communities of version 1 (or lower) we send our extension block (sync extensions
//! and the walker's cookies) only to a peer that sent us one or that set the new-style flag
//! (`0x20` in a request, `0x10` in a response), which Dispersy never sets; everyone else gets
//! plain Dispersy messages and classic sync.

use std::net::SocketAddr;

use bytes::Bytes;

use super::pipeline::Incoming;
use super::stats::DropReason;
use super::sync_state::{RequesterCounters, SyncState, SyncStatus};
use super::{CommunityId, Gate, Node, NodeError};
use crate::ids::{GlobalTime, MemberId, MetaId};
use crate::store::StoredMessage;
use crate::sync::hello::{SyncHello, SyncSummary};
use crate::sync::reconcile::{self, Message};
use crate::sync::respond::{Limits, respond_with};
use crate::sync::size::RequestShape;
use crate::sync::strategy::ClaimInput;
use crate::sync::{FingerprintIndex, Policies, SyncError};
use crate::time::Instant;
use crate::walker;
use crate::wire::builtin::{Builtin, IntroductionRequest, IntroductionResponse, WalkerStyle};
use crate::wire::extension::{Extensions, MAGIC, kind};
use crate::wire::{KeyEncoding, PREFIX_LEN};

/// An introduction-request to answer: who sent it, the request, its parsed extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub(crate) requester: SocketAddr,
    pub(crate) request: &'a IntroductionRequest,
    pub(crate) extensions: &'a Extensions,
}

/// Room kept in an introduction-response for a `SYNC_SUMMARY` entry (header and three fields
/// at their longest).
const SUMMARY_RESERVE: usize = 3 + 10 + 10 + 1;

impl Node {
    /// Our `SYNC_HELLO` for a community, asking for `budget` response bytes (0: classic).
    pub(crate) fn sync_hello(&self, community: CommunityId, budget: u64) -> Option<SyncHello> {
        let c = self.communities.get(&community)?;
        Some(SyncHello {
            fast: true,
            reconcile: true,
            held: c.sync.progress.held(),
            global_time: c.global_time,
            budget,
        })
    }

    /// Bytes of a walker message of a community of `version` besides its payload: prefix,
    /// message byte, our authentication, global time, signature.
    pub(crate) fn envelope_len(&self, version: u8) -> usize {
        let key = self.key.public();
        let authentication = match KeyEncoding::default_for(version) {
            KeyEncoding::MemberId => 20,
            KeyEncoding::PublicKey => 2 + key.bin_len(),
        };
        PREFIX_LEN + 1 + authentication + 8 + key.signature_len()
    }

    /// Whether `peer` may be sent our extension block in `community` (see the module docs).
    pub(crate) fn may_extend(&self, community: CommunityId, peer: SocketAddr) -> bool {
        self.communities.get(&community).is_none_or(|c| {
            c.def.version() >= 2 || c.sync.peers.get(&peer).is_some_and(|p| p.extensions)
        })
    }

    /// Completes the introduction-request of a walker step to `request.destination`: our
    /// `SYNC_HELLO` and a sync block, or, for a version-1 peer that never showed it reads our
    /// extension block, a plain Dispersy request.
    pub(crate) fn sync_offer(
        &mut self,
        _now: Instant,
        community: CommunityId,
        request: &mut walker::Transmit<IntroductionRequest>,
    ) -> Result<(), NodeError> {
        let peer = request.destination;
        let hello = self.sync_hello(community, 0);
        let may = self.may_extend(community, peer);
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        if !may {
            if !request.extensions.is_empty() || self.config.sync.extensions {
                c.sync.stats.extensions_withheld += 1;
            }
            request.extensions = Extensions::new();
        } else if let Some(hello) = hello.filter(|_| self.config.sync.extensions) {
            // A hello is a dozen bytes: it always fits.
            let _ = request.extensions.push(kind::SYNC_HELLO, hello.encode());
        }
        let tracker = c.walker.candidates().get(peer).is_some_and(|k| k.tracker);
        if !c.def.settings().bloom_sync || c.sync.policies.is_empty() || tracker {
            c.sync.stats.requests_without_block += 1;
            return Ok(());
        }
        let version = c.def.version();
        let p = &request.payload;
        let shape = RequestShape::new(
            self.key.public(),
            KeyEncoding::default_for(version),
            p.style,
            [p.destination, p.source_lan, p.source_wan],
            request.extensions.to_bytes().len(),
        );
        let Some(bits) = shape.filter_bits(self.config.sync.datagram_budget) else {
            c.sync.stats.requests_without_block += 1;
            return Ok(());
        };
        let input = ClaimInput {
            community,
            policies: &c.sync.policies,
            global_time: c.global_time,
            acceptable: c.acceptable_global_time(),
            bits,
            error_rate: self.config.sync.requester.error_rate,
        };
        let claim = c
            .sync
            .requester
            .claim(&*self.store, &input, peer, &mut self.rng);
        match claim {
            Ok(Some(block)) => {
                c.sync.stats.requests += 1;
                request.payload.sync = Some(block);
            }
            Ok(None) => c.sync.stats.requests_without_block += 1,
            Err(SyncError::Store(e)) => return Err(e.into()),
            Err(SyncError::Bloom(e)) => {
                tracing::debug!(error = %e, "could not build a sync filter");
                c.sync.stats.requests_without_block += 1;
            }
        }
        Ok(())
    }

    /// Takes in what an introduction-request or -response of a joined community says about its
    /// sender's synchronization: whether it reads our extension block, its `SYNC_HELLO`.
    pub(crate) fn sync_heard(
        &mut self,
        now: Instant,
        community: CommunityId,
        peer: SocketAddr,
        extra: &[u8],
        extensions: &Extensions,
        new_style: bool,
    ) {
        let max = self.config.sync.max_peers;
        let enabled = self.config.sync.extensions;
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let hello = match extensions
            .get(kind::SYNC_HELLO)
            .map(|v| SyncHello::decode(v))
        {
            Some(Ok(h)) => Some(h),
            Some(Err(_)) => {
                c.sync.stats.refused += 1;
                None
            }
            None => None,
        };
        let speaks = extra.starts_with(MAGIC) || new_style;
        c.sync.heard(max, peer, now, speaks, hello);
        let Some(hello) = hello.filter(|_| enabled) else {
            return;
        };
        c.sync.progress.on_hello(peer, &hello, now);
        if hello.fast && c.sync.catching_up() && self.shared.amplification.is_proven(now, peer) {
            c.sync.catchup.add_peer(peer, now);
        }
    }

    /// Whether the answer to this request may carry our extension block.
    pub(crate) fn answer_may_extend(
        &self,
        community: CommunityId,
        version: u8,
        requester: SocketAddr,
        request: &IntroductionRequest,
    ) -> bool {
        version >= 2
            || request.extra.starts_with(MAGIC)
            || request.supports_new_style
            || request.style == WalkerStyle::New
            || (self.communities.contains_key(&community) && self.may_extend(community, requester))
    }

    /// The sync part of the answer to an introduction-request of a joined community: adds our
    /// `SYNC_HELLO`, a `SYNC_SUMMARY` and a `RECONCILE` reply to `response` as they apply, and
    /// returns the message packets to send after it. `reserve` is what the walker part sends
    /// besides the response (the puncture-request), so the whole answer stays within the
    /// requester's anti-amplification allowance.
    pub(crate) fn sync_answer(
        &mut self,
        now: Instant,
        community: CommunityId,
        asked: Asked<'_>,
        response: &mut walker::Transmit<IntroductionResponse>,
        reserve: usize,
    ) -> Result<Vec<Bytes>, NodeError> {
        let Asked {
            requester,
            request,
            extensions,
        } = asked;
        let Some(version) = self.communities.get(&community).map(|c| c.def.version()) else {
            return Ok(Vec::new());
        };
        let enabled = self.config.sync.extensions;
        let may = self.answer_may_extend(community, version, requester, request);
        let theirs = extensions
            .get(kind::SYNC_HELLO)
            .and_then(|v| SyncHello::decode(v).ok())
            .filter(|_| enabled);
        if enabled
            && may
            && let Some(ours) = self.sync_hello(community, 0)
        {
            let _ = response.extensions.push(kind::SYNC_HELLO, ours.encode());
        }
        let envelope = self.envelope_len(version);
        let response_len = |r: &walker::Transmit<IntroductionResponse>| {
            envelope
                + Builtin::IntroductionResponse(r.clone().into_payload())
                    .to_bytes()
                    .map_or(0, |b| b.len())
        };
        let allowance = self.shared.amplification.budget(now, requester);
        let allowance = usize::try_from(allowance)
            .unwrap_or(usize::MAX)
            .saturating_sub(reserve + response_len(response) + SUMMARY_RESERVE);
        let settings = match self.communities.get(&community) {
            Some(c) if c.def.settings().bloom_sync => c.def.settings().clone(),
            _ => return Ok(Vec::new()),
        };
        let mut packets = Vec::new();
        let mut used = 0usize;
        let mut fetch = None;
        if let Some(block) = &request.sync {
            let limits = match theirs {
                Some(h) if h.fast => {
                    Limits::asked(h.budget, self.config.sync.max_response_budget, allowance)
                }
                _ => Limits {
                    budget: settings.sync_response_limit,
                    ..Limits::classic(allowance)
                },
            };
            let answer = self.respond_servable(community, block, &limits);
            let Some(c) = self.communities.get_mut(&community) else {
                return Ok(Vec::new());
            };
            match answer {
                Ok(r) => {
                    let s = &mut c.sync.stats;
                    s.responses += 1;
                    s.packets_sent += r.packets.len() as u64;
                    s.bytes_sent += r.bytes as u64;
                    s.responses_full += u64::from(r.more);
                    if may && theirs.is_some_and(|h| h.fast) {
                        let summary = SyncSummary::from(&r);
                        let _ = response
                            .extensions
                            .push(kind::SYNC_SUMMARY, summary.encode());
                    }
                    used = r.bytes;
                    packets = r.packets;
                }
                Err(SyncError::Store(e)) => return Err(e.into()),
                Err(SyncError::Bloom(_)) => {
                    c.sync.stats.refused += 1;
                    c.stats.drop(DropReason::Invalid("sync-filter"));
                    self.stats.drop(DropReason::Invalid("sync-filter"));
                }
            }
        }
        let value = extensions.get(kind::RECONCILE).filter(|_| enabled && may);
        if let Some(value) = value {
            match Message::decode(value) {
                Ok(message) => {
                    let header = if response.extensions.is_empty() { 6 } else { 3 };
                    let room = self
                        .config
                        .sync
                        .datagram_budget
                        .saturating_sub(response_len(response) + header);
                    let budget = self
                        .config
                        .sync
                        .reconcile_budget
                        .min(allowance.saturating_sub(used));
                    let outcome = self.reconcile_servable(community, &message, room, budget)?;
                    let Some(c) = self.communities.get_mut(&community) else {
                        return Ok(Vec::new());
                    };
                    let Some(mut outcome) = outcome else {
                        return Ok(packets);
                    };
                    c.sync.stats.reconcile_bytes_received += value.len() as u64;
                    c.sync.progress.on_reconcile_start(requester, &message, now);
                    if let Some(p) = c.sync.peers.get_mut(&requester) {
                        p.reconciled_by = Some(now);
                    }
                    if outcome.prefer_bloom() {
                        // Far apart: end the session; whichever side is behind catches up
                        // with Bloom filters (we fetch the differing ranges from a fast peer).
                        outcome.reply = Message::new(message.round.saturating_add(1));
                        let fast = theirs.is_some_and(|h| h.fast);
                        let proven = self.shared.amplification.is_proven(now, requester);
                        if fast && proven && !c.sync.catching_up() {
                            fetch = Some(outcome.differing.clone());
                        }
                    }
                    let reply = outcome.reply.encode();
                    let s = &mut c.sync.stats;
                    s.reconcile_messages += 1;
                    s.reconcile_bytes_sent += reply.len() as u64;
                    s.reconcile_packets += outcome.packets.len() as u64;
                    let _ = response.extensions.push(kind::RECONCILE, reply);
                    s.reconcile_datagram_bytes += response_len(response) as u64;
                    packets.extend(outcome.packets);
                }
                Err(_) => {
                    if let Some(c) = self.communities.get_mut(&community) {
                        c.sync.stats.refused += 1;
                    }
                    self.count_drop(Some(community), DropReason::Invalid("reconcile"));
                }
            }
        }
        if let Some(ranges) = fetch {
            self.fetch_ranges(now, community, requester, &ranges);
        }
        Ok(packets)
    }

    /// Whether a stored message may be sent to a peer that lacks it: not when our permissions
    /// disallow it (a revoke or policy change after we stored it, an ineffective permission
    /// message, an undo of a disallowed target). The peer could only refuse such a packet, and
    /// Bloom sync would send it again every round.
    pub(crate) fn servable(&self, community: CommunityId, m: &StoredMessage) -> bool {
        self.state_of(community, m)
            .is_ok_and(|s| s != super::MessageState::Disallowed)
    }

    /// [`respond_with`] over our store, sending only what is [`Node::servable`].
    fn respond_servable(
        &mut self,
        community: CommunityId,
        block: &crate::wire::builtin::SyncBlock,
        limits: &Limits,
    ) -> Result<crate::sync::Response, SyncError> {
        let Some(c) = self.communities.get(&community) else {
            return Ok(crate::sync::Response::default());
        };
        // The RNG is borrowed apart from the node the test reads; the draws are the same.
        let mut rng = self.rng.clone();
        let this = &*self;
        let servable = |m: &StoredMessage| this.servable(community, m);
        let result = respond_with(
            &*this.store,
            &community,
            &c.sync.policies,
            c.global_time,
            block,
            limits,
            &mut rng,
            &servable,
        );
        self.rng = rng;
        result
    }

    /// [`reconcile::process_with`] over our store and fingerprint index, sending only what
    /// is [`Node::servable`]. `None` for a community we left.
    pub(crate) fn reconcile_servable(
        &mut self,
        community: CommunityId,
        message: &Message,
        room: usize,
        budget: usize,
    ) -> Result<Option<reconcile::Outcome>, NodeError> {
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(None);
        };
        // The index is lent out while the node is read; nothing writes meanwhile.
        let lent = FingerprintIndex::new(community, &Policies::default(), 16);
        let mut index = std::mem::replace(&mut c.sync.index, lent);
        let result = {
            let this = &*self;
            let servable = |m: &StoredMessage| this.servable(community, m);
            reconcile::process_with(
                &*this.store,
                &mut index,
                &this.config.sync.reconcile,
                message,
                room,
                budget,
                &servable,
            )
        };
        if let Some(c) = self.communities.get_mut(&community) {
            c.sync.index = index;
        }
        Ok(Some(result?))
    }

    /// Sends the packets of a sync answer: bulk to a proven address, else within what its
    /// anti-amplification allowance still permits.
    pub(crate) fn send_sync_packets(
        &mut self,
        now: Instant,
        community: CommunityId,
        to: SocketAddr,
        packets: Vec<Bytes>,
    ) {
        let gate = if self.shared.amplification.is_proven(now, to) {
            Gate::Bulk
        } else {
            Gate::Answer(to)
        };
        for p in packets {
            self.send(now, Some(community), to, p, gate);
        }
    }

    /// An introduction-response the walker accepted: the sync part of it (catch-up summary,
    /// reconciliation reply).
    pub(crate) fn on_sync_response(
        &mut self,
        now: Instant,
        community: CommunityId,
        peer: SocketAddr,
        identifier: u16,
        extensions: &Extensions,
    ) -> Result<(), NodeError> {
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let Some((purpose, _)) = c.sync.inflight.remove(&(peer, identifier)) else {
            return Ok(());
        };
        match purpose {
            super::sync_state::Purpose::Catchup(id) => {
                let summary = extensions
                    .get(kind::SYNC_SUMMARY)
                    .and_then(|v| SyncSummary::decode(v).ok());
                c.sync.catchup.on_response(id, summary, now);
                Ok(())
            }
            super::sync_state::Purpose::Reconcile => self.on_reconcile_reply(
                now,
                community,
                peer,
                identifier,
                extensions.get(kind::RECONCILE),
            ),
        }
    }

    /// A Bloom-synced packet arrived from a peer (before any check): catch-up accounting.
    pub(crate) fn sync_on_packet(&mut self, now: Instant, inc: &Incoming) {
        let Some(c) = self.communities.get_mut(&inc.community) else {
            return;
        };
        let Some(meta) = &inc.meta else {
            return;
        };
        if inc.deadline.is_none() && c.sync.catching_up() && c.sync.policies.get(meta.id).is_some()
        {
            let len = inc.packet.bytes().len();
            let gt = inc.packet.global_time();
            c.sync.catchup.on_packet(inc.source, gt, len, now);
        }
    }

    /// A Bloom-synced message waits in the delay queue for a lower sequence number: while
    /// catch-up runs, its filters hold it, so it is not sent to us again meanwhile.
    pub(crate) fn sync_delayed(&mut self, now: Instant, inc: &Incoming) {
        let timeout = self.config.delay_timeout;
        let Some(c) = self.communities.get_mut(&inc.community) else {
            return;
        };
        let max = c.delayed.capacity();
        let bloom_synced = inc
            .meta
            .as_ref()
            .is_some_and(|m| c.sync.policies.get(m.id).is_some());
        if !bloom_synced || !c.sync.catching_up() {
            return;
        }
        let packet = inc.packet.bytes().clone();
        let key = (inc.packet.global_time(), crate::store::digest(&packet));
        c.sync.on_waiting(key, packet, now, max, timeout);
    }

    /// A message was stored (received from `source`, or created when `None`).
    pub(crate) fn sync_stored(&mut self, message: &StoredMessage, source: Option<SocketAddr>) {
        let Some(c) = self.communities.get_mut(&message.community) else {
            return;
        };
        let s = &mut c.sync;
        if s.policies.get(message.meta).is_none() {
            return;
        }
        if !s.waiting.is_empty() {
            s.waiting.remove(&(message.global_time, message.digest));
        }
        s.requester.on_stored(
            &s.policies,
            message.meta,
            message.global_time,
            &message.packet,
            source,
        );
        s.index
            .on_insert(message.meta, message.global_time, message.digest);
        s.progress.on_stored(1);
    }

    /// A stored message was deleted (replaced, truncated, or beyond last-sync's history).
    pub(crate) fn sync_removed(&mut self, message: &StoredMessage) {
        let Some(c) = self.communities.get_mut(&message.community) else {
            return;
        };
        let s = &mut c.sync;
        if s.policies.get(message.meta).is_none() {
            return;
        }
        s.index
            .on_remove(message.meta, message.global_time, message.digest);
        s.progress.on_removed(1);
    }

    /// Whether the messages before a sequence gap of `member`'s `meta`, below `global_time`,
    /// may still arrive through catch-up: then the node waits instead of sending
    /// missing-sequence.
    pub(crate) fn sync_covers_gap(
        &mut self,
        community: CommunityId,
        member: MemberId,
        meta: MetaId,
        global_time: GlobalTime,
    ) -> Result<bool, NodeError> {
        let catching_up = self
            .communities
            .get(&community)
            .is_some_and(|c| c.sync.catching_up());
        if !catching_up {
            return Ok(false);
        }
        let previous = self
            .store
            .last_sequence(&community, &member, meta)?
            .map_or(GlobalTime::ZERO, |(_, gt)| gt);
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(false);
        };
        let covered = c
            .sync
            .catchup
            .covers_any(previous.next(), global_time.saturating_sub(1));
        if covered {
            c.sync.stats.gaps_left_to_catchup += 1;
        }
        Ok(covered)
    }

    /// Sets up the sync state of a community just joined: our count of Bloom-synced messages.
    pub(crate) fn sync_joined(&mut self, community: CommunityId) -> Result<(), NodeError> {
        self.sync_reset(community)
    }

    /// Starts the sync state over from the store (after messages were deleted behind its
    /// back): no cached filter or fingerprints, our count read again.
    pub(crate) fn sync_reset(&mut self, community: CommunityId) -> Result<(), NodeError> {
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        c.sync.requester.forget();
        c.sync.index.clear();
        let held = self.store.count(
            &community,
            Some(c.sync.policies.ids()),
            GlobalTime(1),
            GlobalTime::MAX,
        )?;
        c.sync.progress.set_held(held);
        Ok(())
    }

    /// Synchronization of one community: held versus the estimate of what peers hold,
    /// catch-up and reconciliation, counters.
    pub fn sync_status(&self, community: &CommunityId) -> Option<SyncStatus> {
        let c = self.communities.get(community)?;
        Some(status(*community, c.global_time, &c.sync, self.now))
    }

    /// [`Node::sync_status`] of every joined community, ordered by id.
    pub fn sync_statuses(&self) -> Vec<SyncStatus> {
        self.communities
            .iter()
            .map(|(id, c)| status(*id, c.global_time, &c.sync, self.now))
            .collect()
    }
}

fn status(
    community: CommunityId,
    global_time: GlobalTime,
    s: &SyncState,
    now: Instant,
) -> SyncStatus {
    let report = s.progress.report(now);
    SyncStatus {
        community,
        held: report.held,
        estimate: report.estimate,
        fraction: report.fraction(),
        peers: report.peers,
        peer_global_time: report.global_time,
        global_time,
        catching_up: s.catching_up(),
        catchup_remaining: if s.catching_up() {
            s.catchup.remaining()
        } else {
            0
        },
        catchup_in_flight: s.catchup.in_flight(),
        reconciling: s.session.is_some(),
        extension_peers: s
            .peers
            .values()
            .filter(|p| p.hello.is_some_and(|h| h.fast || h.reconcile))
            .count(),
        stats: s.stats,
        requester: RequesterCounters::from(s.requester.stats()),
    }
}
