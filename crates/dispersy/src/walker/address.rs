//! Our own addresses: the LAN address from the interface list, the WAN address by majority vote
//! of the peers, our connection type, and the address checks every walker decision uses.
//!
//! The core cannot list network interfaces, so the driver passes them in as [`LocalInterfaces`]
//! (and again whenever it rescans). Peers tell us our WAN address: every introduction-request
//! carries the address its sender sent it to, every introduction-response the address its
//! responder saw the request come from. Each such report is a *vote*:
//!
//! - a voter has one vote; its newer vote replaces its older one;
//! - votes from voters inside our own LAN are ignored (they see our LAN address);
//! - a voted address is adopted as our WAN address only when it has **strictly more** voters than
//!   the current one (so a single liar cannot move us);
//! - votes expire after [`super::Config::vote_lifetime`], so a node that roams to another network
//!   recovers once its old voters fall silent (Dispersy's votes lived as long as the candidate);
//! - the vote table is bounded ([`super::Config::max_voters`]); when full, the oldest vote goes.
//!
//! Everything is kept per address family: IPv4 and IPv6 have separate LAN, WAN, votes and
//! connection types, since a dual-stack node has a different address in each.
//!
//! All addresses entering this module are canonicalised ([`canonical`]): an IPv4-mapped IPv6
//! address (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) becomes plain IPv4.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use serde::Serialize;

use crate::time::Instant;
use crate::wire::builtin::{ConnectionType, NO_ADDRESS};

/// The "no address" placeholder for IPv6 (`[::]:0`).
pub const NO_ADDRESS_V6: SocketAddr =
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address (after [`canonical`]).
    pub fn of(addr: SocketAddr) -> Family {
        match canonical(addr) {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }

    /// The "no address" placeholder of this family.
    pub fn no_address(self) -> SocketAddr {
        match self {
            Family::V4 => NO_ADDRESS,
            Family::V6 => NO_ADDRESS_V6,
        }
    }

    fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address turned into plain IPv4 (flow info and scope dropped).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => addr,
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => SocketAddr::new(IpAddr::V6(*a.ip()), a.port()),
        },
    }
}

/// Whether an address could be a peer at all: a unicast IP that is not unspecified, and a port
/// other than zero. (Dispersy: non-empty host, not `0.0.0.0`, port above zero; `x.x.x.0` and
/// `x.x.x.255` stay allowed since they are ordinary hosts in many subnets.)
pub fn is_valid(addr: SocketAddr) -> bool {
    let addr = canonical(addr);
    if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(ip) => !ip.is_broadcast(),
        IpAddr::V6(_) => true,
    }
}

/// Whether `addr` is acceptable as an address another peer told us about, given who told us.
///
/// On top of [`is_valid`], a loopback address is only believed from a loopback sender: a remote
/// peer introducing `127.0.0.1:port` would otherwise make us send packets to our own host's
/// services.
pub fn is_valid_from(addr: SocketAddr, reporter: SocketAddr) -> bool {
    is_valid(addr)
        && (!canonical(addr).ip().is_loopback() || canonical(reporter).ip().is_loopback())
}

/// One network interface address with its subnet, as the driver lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Interface {
    /// The interface's address.
    pub ip: IpAddr,
    /// Subnet prefix length in bits (e.g. 24 for netmask 255.255.255.0).
    pub prefix_len: u8,
}

impl Interface {
    /// An interface address with its prefix length (clamped to the family's width).
    pub fn new(ip: IpAddr, prefix_len: u8) -> Interface {
        let ip = canonical(SocketAddr::new(ip, 0)).ip();
        let max = if ip.is_ipv4() { 32 } else { 128 };
        Interface {
            ip,
            prefix_len: prefix_len.min(max),
        }
    }

    /// An interface address with a netmask; `None` when the netmask is of another family or not
    /// contiguous.
    pub fn with_netmask(ip: IpAddr, netmask: IpAddr) -> Option<Interface> {
        let (bits, width) = match (ip, netmask) {
            (IpAddr::V4(_), IpAddr::V4(m)) => (u128::from(u32::from(m)) << 96, 32),
            (IpAddr::V6(_), IpAddr::V6(m)) => (u128::from(m), 128),
            _ => return None,
        };
        let len = bits.leading_ones();
        if bits.checked_shl(len).unwrap_or(0) != 0 || len > width {
            return None;
        }
        Some(Interface::new(ip, u8::try_from(len).ok()?))
    }

    /// Whether `ip` lies in this interface's subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(SocketAddr::new(ip, 0)).ip();
        match (self.ip, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => prefix_eq(
                u128::from(u32::from(a)),
                u128::from(u32::from(b)),
                32,
                self.prefix_len,
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                prefix_eq(u128::from(a), u128::from(b), 128, self.prefix_len)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, width: u32, prefix_len: u8) -> bool {
    let len = u32::from(prefix_len).min(width);
    if len == 0 {
        return true;
    }
    let shift = width - len;
    (a >> shift) == (b >> shift)
}

/// What the driver knows about the local host: the socket's bound address and the interface
/// list. The driver passes it to [`AddressEstimator::set_interfaces`] when the socket opens and
/// after every interface rescan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalInterfaces {
    /// The address the socket is bound to (`0.0.0.0:port` / `[::]:port` when bound to all).
    pub bound: SocketAddr,
    /// Interface addresses with their subnets, in the order the OS lists them.
    pub interfaces: Vec<Interface>,
}

/// Private, loopback and link-local ranges: Dispersy's fallback "is this LAN" when the interface
/// list is not known.
pub(super) fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[derive(Debug, Clone, Copy)]
struct Vote {
    address: SocketAddr,
    at: Instant,
}

#[derive(Debug, Clone, Default)]
struct FamilyState {
    lan: Option<SocketAddr>,
    wan: Option<SocketAddr>,
    connection_type: ConnectionType,
}

/// Counters of the address estimator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VoteStats {
    /// Votes counted.
    pub votes: u64,
    /// Votes ignored: invalid address, or a voter inside our LAN.
    pub ignored: u64,
    /// Votes that expired.
    pub expired: u64,
    /// Votes dropped because the table was full (the oldest vote goes).
    pub evicted: u64,
    /// Times our WAN address changed.
    pub wan_changes: u64,
}

/// The outcome of a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Not counted (invalid address or a voter inside our LAN).
    Ignored,
    /// Counted; our WAN address did not change.
    Counted,
    /// Counted, and our WAN address for this family is now the given one.
    WanChanged(SocketAddr),
}

/// Node-level estimate of our own addresses and NAT situation (Dispersy §9.4).
#[derive(Debug, Clone)]
pub struct AddressEstimator {
    local: Option<LocalInterfaces>,
    families: [FamilyState; 2],
    votes: BTreeMap<SocketAddr, Vote>,
    vote_lifetime: Duration,
    max_voters: usize,
    stats: VoteStats,
}

impl AddressEstimator {
    /// An estimator that knows nothing yet. Votes live `vote_lifetime`; at most `max_voters` are
    /// kept (at least one).
    pub fn new(vote_lifetime: Duration, max_voters: usize) -> AddressEstimator {
        AddressEstimator {
            local: None,
            families: Default::default(),
            votes: BTreeMap::new(),
            vote_lifetime,
            max_voters: max_voters.max(1),
            stats: VoteStats::default(),
        }
    }

    /// Sets (or refreshes) the bound address and interface list and re-derives our LAN addresses:
    /// the bound IP when the socket is bound to one; otherwise the first interface of the family
    /// that is neither loopback nor link-local, else a loopback one; always with the bound port.
    pub fn set_interfaces(&mut self, local: LocalInterfaces) {
        let bound = canonical(local.bound);
        let local = LocalInterfaces {
            bound,
            interfaces: local.interfaces,
        };
        for family in [Family::V4, Family::V6] {
            let lan = if !bound.ip().is_unspecified() && Family::of(bound) == family {
                Some(bound)
            } else {
                let of_family = |i: &&Interface| Family::of(SocketAddr::new(i.ip, 0)) == family;
                local
                    .interfaces
                    .iter()
                    .filter(of_family)
                    .find(|i| !i.ip.is_loopback() && !is_link_local(i.ip))
                    .or_else(|| local.interfaces.iter().find(of_family))
                    .map(|i| SocketAddr::new(i.ip, bound.port()))
            };
            self.families[family.index()].lan = lan;
        }
        self.local = Some(local);
        self.recompute_all();
    }

    /// The interfaces last given, if any.
    pub fn interfaces(&self) -> Option<&LocalInterfaces> {
        self.local.as_ref()
    }

    /// Our LAN address in this family, or the family's "no address".
    pub fn lan(&self, family: Family) -> SocketAddr {
        self.families[family.index()]
            .lan
            .unwrap_or_else(|| family.no_address())
    }

    /// Our WAN address in this family: the adopted vote, else the LAN address (Dispersy: WAN :=
    /// LAN until votes arrive).
    pub fn wan(&self, family: Family) -> SocketAddr {
        let f = &self.families[family.index()];
        f.wan.or(f.lan).unwrap_or_else(|| family.no_address())
    }

    /// Our connection type in this family.
    pub fn connection_type(&self, family: Family) -> ConnectionType {
        self.families[family.index()].connection_type
    }

    /// Counters.
    pub fn stats(&self) -> VoteStats {
        self.stats
    }

    /// Whether we can talk to `addr` at all from the bound socket: an IPv4 socket reaches IPv4
    /// only, an IPv6 socket bound to `[::]` is taken as dual-stack, one bound to a specific IPv6
    /// address reaches IPv6 only. Without interfaces everything is allowed.
    pub fn reachable(&self, addr: SocketAddr) -> bool {
        let Some(local) = &self.local else {
            return true;
        };
        match (local.bound, Family::of(addr)) {
            (SocketAddr::V4(_), f) => f == Family::V4,
            (SocketAddr::V6(b), Family::V4) => b.ip().is_unspecified(),
            (SocketAddr::V6(_), Family::V6) => true,
        }
    }

    /// Whether `ip` is inside our LAN: in the subnet of one of our interfaces, or, when no
    /// interface list is known, in a private, loopback or link-local range.
    pub fn is_lan(&self, ip: IpAddr) -> bool {
        let ip = canonical(SocketAddr::new(ip, 0)).ip();
        match &self.local {
            Some(local) if !local.interfaces.is_empty() => {
                local.interfaces.iter().any(|i| i.contains(ip))
            }
            _ => is_private(ip),
        }
    }

    /// Whether `addr` is one of our own addresses: our LAN or WAN address, or one of our interface
    /// IPs with our bound port.
    pub fn is_ours(&self, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        let family = Family::of(addr);
        if addr == self.lan(family) || addr == self.wan(family) {
            return true;
        }
        match &self.local {
            Some(local) => {
                addr.port() == local.bound.port()
                    && (addr.ip() == local.bound.ip()
                        || local.interfaces.iter().any(|i| i.ip == addr.ip()))
            }
            None => false,
        }
    }

    /// Records `voter`'s opinion that our address is `address`.
    pub fn vote(&mut self, now: Instant, voter: SocketAddr, address: SocketAddr) -> VoteOutcome {
        let (voter, address) = (canonical(voter), canonical(address));
        if !is_valid(address) || Family::of(voter) != Family::of(address) || self.is_lan(voter.ip())
        {
            self.stats.ignored += 1;
            return VoteOutcome::Ignored;
        }
        self.expire(now);
        if !self.votes.contains_key(&voter)
            && self.votes.len() >= self.max_voters
            && let Some(oldest) = self.votes.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| *k)
        {
            self.votes.remove(&oldest);
            self.stats.evicted += 1;
        }
        self.votes.insert(voter, Vote { address, at: now });
        self.stats.votes += 1;
        let family = Family::of(address);
        match self.recompute(family) {
            Some(wan) => VoteOutcome::WanChanged(wan),
            None => VoteOutcome::Counted,
        }
    }

    /// Withdraws `voter`'s vote (its candidate was removed). Returns the address it had voted.
    pub fn unvote(&mut self, voter: SocketAddr) -> Option<SocketAddr> {
        let vote = self.votes.remove(&canonical(voter))?;
        self.recompute(Family::of(vote.address));
        Some(vote.address)
    }

    /// Drops votes older than the vote lifetime.
    pub fn expire(&mut self, now: Instant) {
        let lifetime = self.vote_lifetime;
        let before = self.votes.len();
        self.votes.retain(|_, v| v.at + lifetime > now);
        let expired = before - self.votes.len();
        if expired > 0 {
            self.stats.expired += expired as u64;
            self.recompute_all();
        }
    }

    /// When the oldest vote expires.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.votes.values().map(|v| v.at + self.vote_lifetime).min()
    }

    /// The number of voters currently behind each voted address (for the dashboard).
    pub fn tally(&self, family: Family) -> BTreeMap<SocketAddr, usize> {
        let mut tally = BTreeMap::new();
        for v in self
            .votes
            .values()
            .filter(|v| Family::of(v.address) == family)
        {
            *tally.entry(v.address).or_insert(0) += 1;
        }
        tally
    }

    fn recompute_all(&mut self) {
        self.recompute(Family::V4);
        self.recompute(Family::V6);
    }

    /// Re-evaluates adoption and connection type; returns the new WAN when it changed. One pass
    /// over the votes (bounded by `max_voters`), so a flood of votes costs little each.
    fn recompute(&mut self, family: Family) -> Option<SocketAddr> {
        #[derive(Default)]
        struct Voted {
            voters: usize,
            newest: Option<Instant>,
            ips: Vec<IpAddr>,
        }
        let mut voted: BTreeMap<SocketAddr, Voted> = BTreeMap::new();
        for (voter, v) in &self.votes {
            if Family::of(v.address) == family {
                let entry = voted.entry(v.address).or_default();
                entry.voters += 1;
                entry.newest = entry.newest.max(Some(v.at));
                entry.ips.push(voter.ip());
            }
        }
        let state = &mut self.families[family.index()];
        let current = state
            .wan
            .and_then(|w| voted.get(&w))
            .map_or(0, |v| v.voters);
        // Ties go to the most recent vote so a roaming node follows its newest observers.
        let best = voted
            .iter()
            .map(|(addr, v)| (v.voters, v.newest, *addr))
            .max();
        let mut changed = None;
        if let Some((n, _, addr)) = best
            && n > current
            && state.wan != Some(addr)
        {
            state.wan = Some(addr);
            changed = Some(addr);
            self.stats.wan_changes += 1;
        }
        let lan_is_wan = state.lan.is_some() && state.lan == state.wan;
        state.connection_type = if voted.len() == 1 && lan_is_wan {
            ConnectionType::Public
        } else if voted.len() > 1 {
            // One address seen alike by several hosts: a NAT that keeps its mapping (cone) or
            // confused voters. Every address seen by one host only: a new mapping per peer.
            let seen_by_several_hosts = voted.values_mut().any(|v| {
                v.ips.sort_unstable();
                v.ips.dedup();
                v.ips.len() > 1
            });
            if seen_by_several_hosts {
                ConnectionType::Unknown
            } else {
                ConnectionType::SymmetricNat
            }
        } else {
            ConnectionType::Unknown
        };
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::v4;
    use super::*;

    const LIFE: Duration = Duration::from_secs(300);

    fn lan_node() -> AddressEstimator {
        let mut e = AddressEstimator::new(LIFE, 64);
        e.set_interfaces(LocalInterfaces {
            bound: "0.0.0.0:7000".parse().unwrap(),
            interfaces: vec![
                Interface::new("127.0.0.1".parse().unwrap(), 8),
                Interface::new("192.168.1.10".parse().unwrap(), 24),
            ],
        });
        e
    }

    fn t(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn lan_from_interfaces_and_bound() {
        let e = lan_node();
        assert_eq!(e.lan(Family::V4), v4(192, 168, 1, 10, 7000));
        assert_eq!(e.wan(Family::V4), e.lan(Family::V4));
        assert_eq!(e.lan(Family::V6), NO_ADDRESS_V6);
        assert!(e.is_lan("192.168.1.77".parse().unwrap()));
        assert!(e.is_lan("127.0.0.5".parse().unwrap()));
        assert!(!e.is_lan("192.168.2.1".parse().unwrap()));
        assert!(!e.is_lan("8.8.8.8".parse().unwrap()));
        assert!(e.is_ours(v4(127, 0, 0, 1, 7000)));
        assert!(!e.is_ours(v4(127, 0, 0, 1, 7001)));
        assert!(!e.reachable("[2001:db8::1]:5".parse().unwrap()));

        let mut bound = AddressEstimator::new(LIFE, 8);
        bound.set_interfaces(LocalInterfaces {
            bound: "127.0.0.1:9000".parse().unwrap(),
            interfaces: vec![Interface::new("10.0.0.2".parse().unwrap(), 8)],
        });
        assert_eq!(bound.lan(Family::V4), v4(127, 0, 0, 1, 9000));
    }

    #[test]
    fn netmask_and_rfc1918_classification() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let i = Interface::with_netmask(ip("10.1.2.3"), ip("255.255.0.0")).unwrap();
        assert_eq!(i.prefix_len, 16);
        assert!(i.contains(ip("10.1.200.1")));
        assert!(!i.contains(ip("10.2.0.1")));
        assert!(Interface::with_netmask(ip("10.1.2.3"), ip("255.0.255.0")).is_none());
        assert!(Interface::with_netmask(ip("10.1.2.3"), ip("ffff::")).is_none());
        assert!(Interface::new(ip("::ffff:10.0.0.1"), 8).contains(ip("10.9.9.9")));
        // No interface list: Dispersy's private-range fallback.
        let e = AddressEstimator::new(LIFE, 8);
        for lan in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.0.1",
            "127.0.0.1",
        ] {
            assert!(e.is_lan(ip(lan)), "{lan}");
        }
        for wan in ["172.32.0.1", "8.8.8.8", "11.0.0.1", "192.169.0.1"] {
            assert!(!e.is_lan(ip(wan)), "{wan}");
        }
        assert!(e.is_lan(ip("fd00::1")));
        assert!(!e.is_lan(ip("2001:db8::1")));
    }

    #[test]
    fn validity() {
        assert!(is_valid(v4(1, 2, 3, 0, 1)));
        assert!(is_valid(v4(1, 2, 3, 255, 1)));
        assert!(!is_valid(v4(0, 0, 0, 0, 1)));
        assert!(!is_valid(v4(1, 2, 3, 4, 0)));
        assert!(!is_valid(v4(255, 255, 255, 255, 1)));
        assert!(!is_valid(v4(224, 0, 0, 1, 1)));
        assert!(!is_valid("[::]:5".parse().unwrap()));
        assert!(is_valid("[2001:db8::1]:5".parse().unwrap()));
        assert_eq!(
            canonical("[::ffff:1.2.3.4]:5".parse().unwrap()),
            v4(1, 2, 3, 4, 5)
        );
        let lo = v4(127, 0, 0, 1, 5);
        assert!(is_valid_from(lo, v4(127, 0, 0, 1, 6)));
        assert!(!is_valid_from(lo, v4(8, 8, 8, 8, 6)));
    }

    #[test]
    fn strictly_more_voters_adopts() {
        let mut e = lan_node();
        let a = v4(1, 1, 1, 1, 7000);
        let b = v4(1, 1, 1, 1, 7001);
        assert_eq!(
            e.vote(t(0), v4(8, 0, 0, 1, 1), a),
            VoteOutcome::WanChanged(a)
        );
        // One voter for b against one for a: not strictly more.
        assert_eq!(e.vote(t(1), v4(8, 0, 0, 2, 1), b), VoteOutcome::Counted);
        assert_eq!(e.wan(Family::V4), a);
        assert_eq!(
            e.vote(t(2), v4(8, 0, 0, 3, 1), b),
            VoteOutcome::WanChanged(b)
        );
        // A voter's newer vote replaces its older one.
        e.vote(t(3), v4(8, 0, 0, 2, 1), a);
        e.vote(t(3), v4(8, 0, 0, 3, 1), a);
        assert_eq!(e.wan(Family::V4), a);
        assert_eq!(e.tally(Family::V4).get(&b), None);
        // Votes from inside our LAN and for invalid addresses are ignored.
        assert_eq!(e.vote(t(4), v4(192, 168, 1, 3, 1), b), VoteOutcome::Ignored);
        assert_eq!(
            e.vote(t(4), v4(8, 0, 0, 9, 1), NO_ADDRESS),
            VoteOutcome::Ignored
        );
        assert_eq!(e.stats().ignored, 2);
    }

    #[test]
    fn connection_type_transitions() {
        // A public node: bound to its public address.
        let mut e = AddressEstimator::new(LIFE, 64);
        let me = v4(1, 2, 3, 4, 7000);
        e.set_interfaces(LocalInterfaces {
            bound: me,
            interfaces: vec![Interface::new(me.ip(), 24)],
        });
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Unknown);
        e.vote(t(0), v4(8, 0, 0, 1, 1), me);
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Public);
        // A second voted address from a different voter: each address has one voter host.
        e.vote(t(1), v4(8, 0, 0, 2, 1), v4(1, 2, 3, 4, 7001));
        assert_eq!(e.connection_type(Family::V4), ConnectionType::SymmetricNat);
        // A second host confirms the first address: a NAT seen alike by several hosts.
        e.vote(t(2), v4(8, 0, 0, 3, 1), me);
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Unknown);
        // The candidates behind the second address are cleaned up: public again.
        e.unvote(v4(8, 0, 0, 2, 1));
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Public);
        e.unvote(v4(8, 0, 0, 1, 1));
        e.unvote(v4(8, 0, 0, 3, 1));
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Unknown);
    }

    #[test]
    fn symmetric_vote_then_cleanup() {
        let mut e = lan_node();
        e.vote(t(0), v4(8, 0, 0, 1, 1), v4(1, 1, 1, 1, 1000));
        e.vote(t(0), v4(8, 0, 0, 2, 1), v4(1, 1, 1, 1, 1001));
        assert_eq!(e.connection_type(Family::V4), ConnectionType::SymmetricNat);
        e.unvote(v4(8, 0, 0, 1, 1));
        e.unvote(v4(8, 0, 0, 2, 1));
        e.vote(t(1), v4(8, 0, 0, 1, 1), v4(1, 1, 1, 1, 1000));
        e.vote(t(1), v4(8, 0, 0, 2, 1), v4(1, 1, 1, 1, 1000));
        // One voted address that is not our LAN address: behind a NAT of unknown kind.
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Unknown);
    }

    #[test]
    fn votes_expire_so_a_roaming_node_recovers() {
        let mut e = lan_node();
        let old = v4(1, 1, 1, 1, 7000);
        let new = v4(2, 2, 2, 2, 7000);
        for i in 0..5 {
            e.vote(t(0), v4(8, 0, 0, i, 1), old);
        }
        assert_eq!(e.wan(Family::V4), old);
        // After roaming, one new voter is not enough while the old votes live...
        e.vote(t(100), v4(9, 0, 0, 1, 1), new);
        assert_eq!(e.wan(Family::V4), old);
        assert_eq!(e.next_timeout(), Some(t(300)));
        // ...but once they expire, the new address wins.
        e.expire(t(300));
        assert_eq!(e.wan(Family::V4), new);
        assert_eq!(e.stats().expired, 5);
        e.expire(t(400));
        assert_eq!(
            e.wan(Family::V4),
            new,
            "the last WAN stays when every vote is gone"
        );
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Unknown);
    }

    #[test]
    fn vote_table_is_bounded() {
        let mut e = AddressEstimator::new(LIFE, 3);
        for i in 0..10u8 {
            e.vote(t(u64::from(i)), v4(8, 0, 0, i, 1), v4(1, 1, 1, 1, 1));
        }
        assert_eq!(e.tally(Family::V4).values().sum::<usize>(), 3);
        assert_eq!(e.stats().evicted, 7);
    }

    #[test]
    fn families_are_separate() {
        let mut e = AddressEstimator::new(LIFE, 8);
        e.set_interfaces(LocalInterfaces {
            bound: "[::]:7000".parse().unwrap(),
            interfaces: vec![
                Interface::new("192.168.1.2".parse().unwrap(), 24),
                Interface::new("2001:db8::2".parse().unwrap(), 64),
            ],
        });
        assert!(e.reachable(v4(8, 8, 8, 8, 1)));
        assert_eq!(e.lan(Family::V6), "[2001:db8::2]:7000".parse().unwrap());
        let w6: SocketAddr = "[2001:db8::2]:7000".parse().unwrap();
        e.vote(t(0), "[2001:db9::9]:1".parse().unwrap(), w6);
        e.vote(t(0), v4(8, 8, 8, 8, 1), v4(5, 5, 5, 5, 7000));
        assert_eq!(e.wan(Family::V6), w6);
        assert_eq!(e.connection_type(Family::V6), ConnectionType::Public);
        assert_eq!(e.wan(Family::V4), v4(5, 5, 5, 5, 7000));
        assert_eq!(e.connection_type(Family::V4), ConnectionType::Unknown);
    }
}
