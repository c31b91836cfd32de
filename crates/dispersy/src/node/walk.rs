//! Peers of a community: who we send new messages to and ask for missing ones.
//!
//! This is the seam where the random walker plugs in: it decides which peers are verified
//! candidates. Until then a peer is any address that sent us a valid signed message or that
//! the application added.

use std::net::SocketAddr;

use super::community::Peer;
use super::pipeline::Incoming;
use super::stats::DropReason;
use super::{CommandError, Node, NodeError};
use crate::ids::{CommunityId, GlobalTime};
use crate::time::Instant;

/// Peers remembered per community.
const MAX_PEERS: usize = 1024;

impl Node {
    /// Adds a peer to a community (a bootstrap address, or a peer found out of band).
    pub fn add_peer(
        &mut self,
        now: Instant,
        community: CommunityId,
        address: SocketAddr,
    ) -> Result<(), CommandError> {
        let c = self
            .communities
            .get_mut(&community)
            .ok_or(CommandError::UnknownCommunity(community))?;
        if c.peers.len() < MAX_PEERS || c.peers.contains_key(&address) {
            c.peers.entry(address).or_insert(Peer {
                member: None,
                last_seen: now,
                global_time: GlobalTime::ZERO,
            });
        }
        Ok(())
    }

    /// Addresses of a community's peers.
    pub fn peers(&self, community: &CommunityId) -> Vec<SocketAddr> {
        self.verified_peers(*community)
    }

    pub(crate) fn verified_peers(&self, community: CommunityId) -> Vec<SocketAddr> {
        self.communities
            .get(&community)
            .map_or_else(Vec::new, |c| c.peers.keys().copied().collect())
    }

    /// Remembers the sender of a valid signed message as a peer.
    pub(crate) fn note_peer(&mut self, now: Instant, inc: &Incoming) {
        let Some(author) = inc.packet.author().map(|k| k.member_id()) else {
            return;
        };
        if author == self.member_id() {
            return;
        }
        let Some(c) = self.communities.get_mut(&inc.community) else {
            return;
        };
        if c.peers.len() >= MAX_PEERS && !c.peers.contains_key(&inc.source) {
            return;
        }
        let peer = c.peers.entry(inc.source).or_insert(Peer {
            member: Some(author),
            last_seen: now,
            global_time: GlobalTime::ZERO,
        });
        peer.member = Some(author);
        peer.last_seen = now;
        peer.global_time = peer.global_time.max(inc.packet.global_time());
    }

    pub(super) fn on_walker_message(
        &mut self,
        now: Instant,
        inc: Incoming,
    ) -> Result<(), NodeError> {
        self.note_peer(now, &inc);
        self.count_drop(
            Some(inc.community),
            DropReason::Invalid("walker-not-running"),
        );
        Ok(())
    }

    pub(super) fn walk_timeout(
        &mut self,
        _now: Instant,
        _community: CommunityId,
    ) -> Result<(), NodeError> {
        Ok(())
    }
}
