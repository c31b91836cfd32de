//! Read-only views of the walk for the REST API and `dispersy status`: plain serializable
//! structs, computed as of the last input the node was given.

use std::net::SocketAddr;

use serde::Serialize;

use super::Node;
use crate::ids::{CommunityId, GlobalTime, MemberId};
use crate::walker::{
    self, AmplificationStats, Candidate, Category, Family, TrackerStats, VoteStats,
};
use crate::wire::builtin::ConnectionType;

/// One candidate of a community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateStatus {
    /// The address we talk to it on.
    pub address: SocketAddr,
    /// Its LAN address (`0.0.0.0:0` / `[::]:0` when unknown).
    pub lan: SocketAddr,
    /// Its WAN address (the same placeholder when unknown).
    pub wan: SocketAddr,
    /// Its category now (walk, stumble, intro, discovered, none).
    pub category: Category,
    /// The member that signed its walker messages, once known.
    pub member: Option<MemberId>,
    /// Its NAT situation as it reports it.
    pub connection_type: ConnectionType,
    /// A bootstrap tracker.
    pub tracker: bool,
    /// It speaks new-style walker messages.
    pub supports_new_style: bool,
    /// Its last contact of any kind, in microseconds since the driver's epoch.
    pub last_seen_us: Option<u64>,
    /// The highest global time it claimed (its clock opinion).
    pub global_time: GlobalTime,
}

impl CandidateStatus {
    fn new(c: &Candidate, category: Category) -> CandidateStatus {
        CandidateStatus {
            address: c.address,
            lan: c.lan,
            wan: c.wan,
            category,
            member: c.member,
            connection_type: c.connection_type,
            tracker: c.tracker,
            supports_new_style: c.supports_new_style,
            last_seen_us: c.last_seen().map(|t| t.as_micros()),
            global_time: c.global_time,
        }
    }
}

/// The walk in one community.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommunityWalkerStatus {
    /// The community.
    pub community: CommunityId,
    /// Whether we walk here (a community's settings may turn walking off).
    pub walking: bool,
    /// Verified candidates (walk and stumble).
    pub verified: usize,
    /// Every candidate, in table order.
    pub candidates: Vec<CandidateStatus>,
    /// Walk attempts, successes, timeouts, introductions, table counters.
    pub stats: walker::Stats,
}

/// Our addresses in one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AddressStatus {
    /// The family.
    pub family: Family,
    /// Our LAN address (the family's placeholder when unknown).
    pub lan: SocketAddr,
    /// Our WAN address: the address most peers say they see, else the LAN address.
    pub wan: SocketAddr,
    /// Our NAT situation as the votes tell it.
    pub connection_type: ConnectionType,
}

/// Tracker mode: the communities answered without joining them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrackerStatus {
    /// Communities tracked.
    pub communities: usize,
    /// Candidates over all tracked communities.
    pub candidates: usize,
    /// Communities created, forgotten and evicted.
    pub stats: TrackerStats,
}

/// The node-level walk state: addresses, votes, anti-amplification, tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalkerStatus {
    /// The time these figures are for (the last input), microseconds since the driver's epoch.
    pub at_us: u64,
    /// Our addresses, IPv4 then IPv6.
    pub addresses: Vec<AddressStatus>,
    /// WAN address votes.
    pub votes: VoteStats,
    /// Anti-amplification: refused sends, proofs, cookies.
    pub amplification: AmplificationStats,
    /// Remote addresses the amplification guard tracks now.
    pub tracked_addresses: usize,
    /// Node-wide bootstrap addresses.
    pub bootstrap: Vec<SocketAddr>,
    /// Tracker mode, when on.
    pub tracker: Option<TrackerStatus>,
}

impl Node {
    /// The node-level walk state.
    pub fn walker_status(&self) -> WalkerStatus {
        let addresses = &self.shared.addresses;
        WalkerStatus {
            at_us: self.now.as_micros(),
            addresses: [Family::V4, Family::V6]
                .into_iter()
                .map(|family| AddressStatus {
                    family,
                    lan: addresses.lan(family),
                    wan: addresses.wan(family),
                    connection_type: addresses.connection_type(family),
                })
                .collect(),
            votes: addresses.stats(),
            amplification: self.shared.amplification.stats(),
            tracked_addresses: self.shared.amplification.len(),
            bootstrap: self.bootstrap.iter().copied().collect(),
            tracker: self.tracker.as_ref().map(|t| TrackerStatus {
                communities: t.len(),
                candidates: t.iter().map(|(_, w)| w.candidates().len()).sum(),
                stats: t.stats(),
            }),
        }
    }

    /// The walk in one joined community.
    pub fn community_walker_status(
        &self,
        community: &CommunityId,
    ) -> Option<CommunityWalkerStatus> {
        let c = self.communities.get(community)?;
        let walker = &c.walker;
        Some(CommunityWalkerStatus {
            community: *community,
            walking: walker.config().walking,
            verified: walker.verified_count(self.now),
            candidates: self.candidates(community),
            stats: walker.stats(),
        })
    }

    /// A joined community's candidates (empty for an unknown community).
    pub fn candidates(&self, community: &CommunityId) -> Vec<CandidateStatus> {
        self.communities.get(community).map_or_else(Vec::new, |c| {
            let config = c.walker.config();
            c.walker
                .candidates()
                .iter()
                .map(|k| CandidateStatus::new(k, k.category(self.now, config)))
                .collect()
        })
    }

    /// Walker counters of a joined community.
    pub fn walker_stats(&self, community: &CommunityId) -> Option<walker::Stats> {
        self.communities.get(community).map(|c| c.walker.stats())
    }
}
