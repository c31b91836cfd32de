//! Fast catch-up and range reconciliation in the node (`docs/sync.md` sections 4, 5 and 8).
//!
//! Both run only with peers whose `SYNC_HELLO` announced them, and only when
//! [`super::SyncConfig::extensions`] is on; classic sync keeps running on walker steps
//! regardless. Both travel in ordinary introduction-requests with the advice bit cleared (the
//! responder introduces nobody), sent through the walker (`Walker::walk_to`), so the responses
//! are matched, prove the responder's address, and carry the walker's cookie echo.
//!
//! After every input the node calls [`Node::drive_sync`], which, per community:
//!
//! 1. starts catch-up when `Progress` says a peer holds much more than we do (and the last
//!    catch-up is not too recent), with every peer that announced `FAST` and proved its
//!    address (we never send requests of our own to an address a spoofer may have named);
//! 2. sends the catch-up requests the controller allows (a window over ranges and peers), never
//!    above our acceptable global time, each asking for the peer's current budget;
//! 3. otherwise, every [`super::SyncConfig::reconcile_interval`], starts a reconciliation
//!    session with a peer that announced `RECONCILE`: our fingerprints in a request without a
//!    sync block; each reply is processed at once, its packets sent, and the next message goes
//!    out while replies are not empty. When the differences are large
//!    ([`crate::sync::reconcile::Outcome::prefer_bloom`]) the session stops and catch-up fetches
//!    the differing ranges instead.

use std::net::SocketAddr;

use bytes::Bytes;

use super::sync_state::{Purpose, Session};
use super::{CommunityId, Gate, Node, NodeError};
use crate::bloom::BloomFilter;
use crate::sync::SyncError;
use crate::sync::catchup::{self, Catchup};
use crate::sync::reconcile::{self, Message};
use crate::sync::size::RequestShape;
use crate::time::Instant;
use crate::walker;
use crate::wire::builtin::{Builtin, SyncBlock, WalkerStyle};
use crate::wire::extension::kind;
use crate::wire::{KeyEncoding, address};

/// Extension bytes a sync request of ours carries at most besides `RECONCILE`: the block
/// header, a `SYNC_HELLO` at its longest, and a cookie echo.
const EXTENSIONS_RESERVE: usize = 3 + (3 + 31) + (3 + walker::COOKIE_LEN);

impl Node {
    /// Runs catch-up and reconciliation after an input (see the module docs).
    pub(crate) fn drive_sync(&mut self, now: Instant) -> Result<(), NodeError> {
        if !self.config.sync.extensions {
            return Ok(());
        }
        let ids: Vec<CommunityId> = self.communities.keys().copied().collect();
        for id in ids {
            self.maybe_start_catchup(now, id);
            self.poll_catchup(now, id)?;
            self.maybe_start_reconcile(now, id)?;
        }
        Ok(())
    }

    /// A community's sync timers: catch-up deadlines, the reconciliation reply deadline,
    /// forgotten requests.
    pub(crate) fn sync_timeout(&mut self, now: Instant, community: CommunityId) {
        let max_age = self.config.walker.request_timeout;
        let delay_timeout = self.config.delay_timeout;
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let s = &mut c.sync;
        s.expire_waiting(now, delay_timeout);
        if s.catching_up() {
            s.catchup.handle_timeout(now);
        }
        if s.session.is_some_and(|x| x.deadline <= now) {
            s.session = None;
        }
        s.expire_inflight(now, max_age);
    }

    /// A request shape no sync request of ours exceeds: new style (our peers speak it), the
    /// addresses of the widest family among `peers`, our key, `extension_len` bytes of
    /// extensions.
    fn conservative_shape(
        &self,
        version: u8,
        peers: impl IntoIterator<Item = SocketAddr>,
        extension_len: usize,
    ) -> RequestShape {
        let widest = peers
            .into_iter()
            .map(address::tagged_len)
            .max()
            .unwrap_or(address::tagged_len(walker::NO_ADDRESS_V6));
        let mut shape = RequestShape::new(
            self.key.public(),
            KeyEncoding::default_for(version),
            WalkerStyle::New,
            [walker::NO_ADDRESS_V6; 3],
            extension_len,
        );
        shape.addresses_len = 3 * widest.max(address::IPV4_LEN);
        shape
    }

    /// The filter bits of catch-up requests to `peers` and the catch-up settings for them.
    fn catchup_setup(
        &self,
        version: u8,
        peers: impl IntoIterator<Item = SocketAddr>,
    ) -> Option<(u16, catchup::Config)> {
        let shape = self.conservative_shape(version, peers, EXTENSIONS_RESERVE);
        let bits = shape.filter_bits(self.config.sync.datagram_budget)?;
        let config = catchup::Config {
            range_capacity: catchup::Config::for_bits(bits).range_capacity,
            ..self.config.sync.catchup
        };
        Some((bits, config))
    }

    fn maybe_start_catchup(&mut self, now: Instant, community: CommunityId) {
        let config = &self.config.sync;
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let acceptable = c.acceptable_global_time();
        let s = &mut c.sync;
        if s.catching_up() {
            s.catchup.set_limit(acceptable);
            if s.catchup.is_settled() {
                s.catchup_started = None;
                s.waiting.clear();
                s.catchup_finished = Some(now);
            }
            return;
        }
        if !c.def.settings().bloom_sync || s.policies.is_empty() {
            return;
        }
        if s.catchup_finished
            .is_some_and(|at| now < at + config.catchup_cooldown)
        {
            return;
        }
        if !s
            .progress
            .behind(now, config.behind_ratio, config.behind_slack)
        {
            return;
        }
        let report = s.progress.report(now);
        let (target, expected) = (
            report.global_time,
            report.estimate - report.held.min(report.estimate),
        );
        let amplification = &self.shared.amplification;
        let fast: Vec<SocketAddr> = fast_peers(s, now, config.progress.stale_after)
            .into_iter()
            .filter(|p| amplification.is_proven(now, *p))
            .collect();
        if fast.is_empty() {
            return;
        }
        let version = c.def.version();
        let Some((bits, catchup_config)) = self.catchup_setup(version, fast.iter().copied()) else {
            return;
        };
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let s = &mut c.sync;
        s.catchup = Catchup::new(catchup_config);
        s.catchup.start_sized(target, expected);
        s.catchup.set_limit(acceptable);
        for peer in fast {
            s.catchup.add_peer(peer, now);
        }
        s.catchup_bits = Some(bits);
        s.catchup_started = Some(now);
        s.stats.catchups += 1;
        tracing::debug!(%community, ?target, "catch-up started");
    }

    /// Sends the catch-up requests the window allows.
    fn poll_catchup(&mut self, now: Instant, community: CommunityId) -> Result<(), NodeError> {
        let delay_timeout = self.config.delay_timeout;
        loop {
            let Some(c) = self.communities.get_mut(&community) else {
                return Ok(());
            };
            let s = &mut c.sync;
            let Some(bits) = s.catchup_bits.filter(|_| s.catching_up()) else {
                return Ok(());
            };
            let polled = s.catchup.poll_request(
                now,
                &*self.store,
                &community,
                &s.policies,
                bits,
                &mut self.rng,
            );
            let mut request = match polled {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(SyncError::Store(e)) => return Err(e.into()),
                Err(SyncError::Bloom(e)) => {
                    tracing::debug!(error = %e, "catch-up filter");
                    return Ok(());
                }
            };
            let (low, high) = (request.block.time_low, request.block.time_high);
            let waiting = s.waiting_in(low, high, now, delay_timeout);
            if !waiting.is_empty()
                && let Ok(mut bloom) = BloomFilter::from_sync_block(&request.block)
            {
                for p in &waiting {
                    bloom.add(p);
                }
                if let Ok(block) = bloom.to_sync_block(low, high, 1, 0) {
                    request.block = block;
                }
            }
            let hello = self
                .sync_hello(community, request.budget)
                .map(|h| Bytes::from(h.encode()));
            let entries: Vec<(u8, Bytes)> =
                hello.map(|h| (kind::SYNC_HELLO, h)).into_iter().collect();
            let sent =
                self.send_sync_request(now, community, request.peer, Some(request.block), entries);
            let Some(c) = self.communities.get_mut(&community) else {
                return Ok(());
            };
            let s = &mut c.sync;
            match sent {
                Some((identifier, _)) => {
                    s.track(request.peer, identifier, Purpose::Catchup(request.id), now);
                    s.stats.catchup_requests += 1;
                }
                // The walker would not send (request table full, address no longer usable):
                // its ranges go back to the queue for the other peers.
                None => s.catchup.remove_peer(&request.peer),
            }
        }
    }

    /// An introduction-request of ours to `peer` without advice, carrying `block` and the
    /// extension `entries`. Returns its identifier and length, or `None` when the walker
    /// refused.
    fn send_sync_request(
        &mut self,
        now: Instant,
        community: CommunityId,
        peer: SocketAddr,
        block: Option<SyncBlock>,
        entries: Vec<(u8, Bytes)>,
    ) -> Option<(u16, usize)> {
        let c = self.communities.get_mut(&community)?;
        let mut t = c.walker.walk_to(now, &self.shared, peer, &mut self.rng)?;
        let prefix = c.def.prefix();
        t.payload.advice = false;
        for (k, v) in entries {
            // Our entries are sized to fit; a failure only loses this entry.
            let _ = t.extensions.push(k, v);
        }
        let identifier = t.payload.identifier;
        let mut payload = t.into_payload();
        payload.sync = block;
        let packet = self.walker_packet(prefix, &Builtin::IntroductionRequest(payload), true)?;
        let len = packet.len();
        self.send(now, Some(community), peer, packet, Gate::Own);
        Some((identifier, len))
    }

    /// The room for a `RECONCILE` value in a request of ours to `peer`.
    fn reconcile_room(&self, community: CommunityId, peer: SocketAddr) -> usize {
        let version = self
            .communities
            .get(&community)
            .map_or(2, |c| c.def.version());
        let shape = self.conservative_shape(version, [peer], EXTENSIONS_RESERVE);
        // The entry's own kind and length.
        shape
            .room(self.config.sync.datagram_budget, None)
            .saturating_sub(3)
    }

    fn maybe_start_reconcile(
        &mut self,
        now: Instant,
        community: CommunityId,
    ) -> Result<(), NodeError> {
        let config = &self.config.sync;
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let s = &mut c.sync;
        if s.session.is_some()
            || s.catching_up()
            || !c.def.settings().bloom_sync
            || s.policies.is_empty()
            || s.last_session
                .is_some_and(|at| now < at + config.reconcile_interval)
            || s.progress
                .behind(now, config.behind_ratio, config.behind_slack)
        {
            return Ok(());
        }
        let stale = config.progress.stale_after;
        let verified = c.verified(now);
        let s = &c.sync;
        let capable: Vec<SocketAddr> = s
            .peers
            .iter()
            .filter(|(addr, p)| {
                p.hello.is_some_and(|h| h.reconcile)
                    && now.saturating_duration_since(p.seen) <= stale
                    && p.reconciled_by
                        .is_none_or(|at| now >= at + config.reconcile_interval)
                    && verified.contains(addr)
                    && self.shared.amplification.is_proven(now, **addr)
            })
            .map(|(addr, _)| *addr)
            .collect();
        if capable.is_empty() {
            return Ok(());
        }
        let peer = capable[rand::Rng::gen_range(&mut self.rng, 0..capable.len())];
        let room = self.reconcile_room(community, peer);
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let s = &mut c.sync;
        s.last_session = Some(now);
        let message = reconcile::start(&*self.store, &mut s.index, &config.reconcile, room)?;
        if self
            .send_reconcile(now, community, peer, &message)
            .is_some()
            && let Some(c) = self.communities.get_mut(&community)
        {
            c.sync.stats.reconcile_sessions += 1;
        }
        Ok(())
    }

    /// Sends a reconciliation message of our session to `peer`; the session follows it.
    fn send_reconcile(
        &mut self,
        now: Instant,
        community: CommunityId,
        peer: SocketAddr,
        message: &Message,
    ) -> Option<u16> {
        let value = Bytes::from(message.encode());
        let len = value.len() as u64;
        let mut entries = Vec::with_capacity(2);
        if let Some(h) = self.sync_hello(community, 0) {
            entries.push((kind::SYNC_HELLO, Bytes::from(h.encode())));
        }
        entries.push((kind::RECONCILE, value));
        let identifier = self.send_sync_request(now, community, peer, None, entries);
        let timeout = self.config.sync.reconcile_timeout;
        let c = self.communities.get_mut(&community)?;
        let s = &mut c.sync;
        let Some((identifier, datagram)) = identifier else {
            s.session = None;
            return None;
        };
        s.track(peer, identifier, Purpose::Reconcile, now);
        s.stats.reconcile_messages += 1;
        s.stats.reconcile_bytes_sent += len;
        s.stats.reconcile_datagram_bytes += datagram as u64;
        let started = s.session.map_or(now, |x| x.started);
        let rounds = s.session.map_or(0, |x| x.rounds);
        s.session = Some(Session {
            peer,
            identifier,
            deadline: now + timeout,
            started,
            rounds: rounds + 1,
        });
        Some(identifier)
    }

    /// Fetches the ranges a reconciliation found far apart from `peer` with catch-up's Bloom
    /// filters (unless a catch-up is running, which covers them anyway).
    pub(crate) fn fetch_ranges(
        &mut self,
        now: Instant,
        community: CommunityId,
        peer: SocketAddr,
        ranges: &[(crate::ids::GlobalTime, crate::ids::GlobalTime)],
    ) {
        let Some(version) = self.communities.get(&community).map(|c| c.def.version()) else {
            return;
        };
        let Some((bits, config)) = self.catchup_setup(version, [peer]) else {
            return;
        };
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let acceptable = c.acceptable_global_time();
        let s = &mut c.sync;
        if s.catching_up() {
            return;
        }
        let mut catchup = Catchup::new(config);
        catchup.fetch(ranges.iter().copied());
        catchup.set_limit(acceptable);
        catchup.add_peer(peer, now);
        s.catchup = catchup;
        s.catchup_bits = Some(bits);
        s.catchup_started = Some(now);
        s.stats.catchups += 1;
    }

    /// The reply to a round of our reconciliation session.
    pub(crate) fn on_reconcile_reply(
        &mut self,
        now: Instant,
        community: CommunityId,
        peer: SocketAddr,
        identifier: u16,
        value: Option<&Bytes>,
    ) -> Result<(), NodeError> {
        let room = self.reconcile_room(community, peer);
        let budget = self.config.sync.reconcile_budget;
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let s = &mut c.sync;
        if !s
            .session
            .is_some_and(|x| x.peer == peer && x.identifier == identifier)
        {
            return Ok(());
        }
        s.stats.reconcile_rounds += 1;
        s.session = None;
        let Some(value) = value else {
            // The peer did not answer the reconciliation (an older or foreign peer).
            return Ok(());
        };
        s.stats.reconcile_bytes_received += value.len() as u64;
        let Ok(message) = Message::decode(value) else {
            s.stats.refused += 1;
            return Ok(());
        };
        if message.is_empty() {
            s.stats.reconcile_completed += 1;
            return Ok(());
        }
        let Some(outcome) = self.reconcile_servable(community, &message, room, budget)? else {
            return Ok(());
        };
        if let Some(c) = self.communities.get_mut(&community) {
            c.sync.stats.reconcile_packets += outcome.packets.len() as u64;
        }
        let fetch = outcome.prefer_bloom();
        // The other side is proven: it answered our request.
        for p in outcome.packets {
            self.send(now, Some(community), peer, p, Gate::Bulk);
        }
        if fetch {
            self.fetch_ranges(now, community, peer, &outcome.differing);
            return Ok(());
        }
        if outcome.reply.is_empty() {
            if let Some(c) = self.communities.get_mut(&community) {
                c.sync.stats.reconcile_completed += 1;
            }
            return Ok(());
        }
        let _ = self.send_reconcile(now, community, peer, &outcome.reply);
        Ok(())
    }
}

/// Peers that announced `FAST` and were heard from within `stale`.
fn fast_peers(
    s: &super::sync_state::SyncState,
    now: Instant,
    stale: std::time::Duration,
) -> Vec<SocketAddr> {
    s.peers
        .iter()
        .filter(|(_, p)| {
            p.hello.is_some_and(|h| h.fast) && now.saturating_duration_since(p.seen) <= stale
        })
        .map(|(addr, _)| *addr)
        .collect()
}
