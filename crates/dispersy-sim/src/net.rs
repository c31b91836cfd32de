//! The emulated network: hosts, NAT boxes, latency, loss, duplication, bandwidth, partitions.
//!
//! Addresses come from ranges that are never routed: public sites (public hosts and NAT boxes)
//! get addresses in 198.18.0.0/15 (RFC 2544, benchmarking), hosts behind NATs get addresses in
//! 10.0.0.0/8. Nothing here opens a socket; a "send" is a computation over these tables.
//!
//! A *site* is one public IPv4 address: a public host, or a NAT box with the hosts behind it.
//! A datagram sent over the WAN from site A to site B takes
//! `base_latency + access(A) + access(B) + jitter` after leaving A's uplink queue, where the
//! access latencies are drawn once per site and the jitter once per packet, so packets reorder
//! whenever jitter exceeds their spacing. Hosts behind one NAT reach each other's private
//! addresses directly in `lan_latency`, free of loss and limits.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use dispersy::time::Instant;
use serde::{Deserialize, Serialize};

use crate::dist::{Dist, SimRng, Span, chance, check_probability};
use crate::hash::FxMap;
use crate::link::{Counters, DropReason, LinkSpec, LossModel, LossScope, Pipe};
use crate::nat::{Nat, NatConfig, NatDrop, NatKind};
use crate::node::NodeId;

/// First public site address (198.18.0.0/15, reserved for benchmarking, never routed).
pub const PUBLIC_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Number of public site addresses.
pub const MAX_SITES: u32 = (1 << 17) - 2;
/// First private host address (10.0.0.0/8).
pub const PRIVATE_BASE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Number of private host addresses.
pub const MAX_PRIVATE: u32 = (1 << 24) - 2;
/// Most per-link Gilbert-Elliott chains kept; beyond it all are reset to the good state.
pub const MAX_LINK_STATES: usize = 1 << 22;

/// Network-wide parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// One-way latency every WAN datagram pays.
    pub base_latency: Span,
    /// Extra one-way latency of each site's access link, drawn once per site.
    pub access_latency: Dist,
    /// Extra latency drawn per datagram.
    pub jitter: Dist,
    /// One-way latency between hosts behind the same NAT.
    pub lan_latency: Span,
    /// Random loss on WAN paths.
    pub loss: LossModel,
    /// Which packets share a Gilbert-Elliott chain.
    pub loss_scope: LossScope,
    /// Probability a WAN datagram is delivered twice (each copy with its own jitter).
    pub duplicate: f64,
    /// Probability a WAN datagram is held back an extra `reorder_delay`.
    pub reorder: f64,
    /// Hold-back of reordered datagrams.
    pub reorder_delay: Span,
    /// IP + UDP header bytes added to each datagram for bandwidth accounting.
    pub header_overhead: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            base_latency: Span::millis(10),
            access_latency: Dist::ZERO,
            jitter: Dist::ZERO,
            lan_latency: Span(std::time::Duration::from_micros(200)),
            loss: LossModel::None,
            loss_scope: LossScope::Link,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Span::millis(10),
            header_overhead: 28,
        }
    }
}

impl NetConfig {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), String> {
        self.access_latency.validate()?;
        self.jitter.validate()?;
        self.loss.validate()?;
        check_probability("duplicate", self.duplicate)?;
        check_probability("reorder", self.reorder)
    }
}

/// Errors building a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// More sites or hosts than the simulated address ranges hold.
    #[error("simulated address space exhausted")]
    AddressSpaceExhausted,
    /// A site id that does not exist or is not a NAT.
    #[error("no NAT site {0}")]
    UnknownSite(u32),
    /// A node id that does not exist.
    #[error("no node {0}")]
    UnknownNode(NodeId),
    /// A parameter out of range.
    #[error("invalid network configuration: {0}")]
    Invalid(String),
}

/// Index of a site (one public address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(pub u32);

/// Where a new host sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On its own public address.
    Public,
    /// Behind the NAT box of a site made by [`Network::add_nat`].
    BehindNat(SiteId),
}

#[derive(Debug)]
struct Site {
    ip: Ipv4Addr,
    access_us: u64,
    nat: Option<Nat>,
    /// The host of a public site.
    host: Option<u32>,
    /// Hosts behind a NAT site: the first one, and how many.
    behind: Option<u32>,
    behind_count: u32,
}

#[derive(Debug)]
struct Host {
    local: SocketAddrV4,
    site: u32,
    up: Pipe,
    down: Pipe,
    /// Gilbert-Elliott state when the loss scope is per node.
    ge_bad: bool,
    counters: Counters,
}

#[derive(Debug)]
struct Partition {
    group_of_site: Vec<u16>,
    active: bool,
}

/// What became of a datagram at its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    Dropped(DropReason),
    /// Delivered inside a LAN, source address unchanged.
    Lan {
        to: NodeId,
        at: u64,
    },
    /// On its way across the WAN with public source `from`; one or two copies.
    Wan {
        from: SocketAddrV4,
        to: SocketAddrV4,
        first: u64,
        second: Option<u64>,
    },
}

/// What became of a datagram at the receiving site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArriveOutcome {
    Dropped(DropReason),
    Deliver { to: NodeId, at: u64 },
}

/// The whole emulated network.
#[derive(Debug)]
pub struct Network {
    cfg: NetConfig,
    sites: Vec<Site>,
    hosts: Vec<Host>,
    /// Host behind a NAT, by private address offset.
    private: Vec<u32>,
    /// Gilbert-Elliott state per (sending host, receiving site), when the scope is per link.
    link_ge: FxMap<u64, bool>,
    link_resets: u64,
    partitions: Vec<Partition>,
    active: Vec<u32>,
    rng: SimRng,
    totals: [u64; DropReason::COUNT],
}

fn offset(ip: Ipv4Addr, base: Ipv4Addr, len: usize) -> Option<usize> {
    let off = usize::try_from(u32::from(ip).checked_sub(u32::from(base))?).ok()?;
    (off < len).then_some(off)
}

fn nth(base: Ipv4Addr, n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n as u32))
}

impl Network {
    /// An empty network; `rng` drives every network decision.
    pub fn new(cfg: NetConfig, rng: SimRng) -> Result<Network, NetError> {
        cfg.validate().map_err(NetError::Invalid)?;
        Ok(Network {
            cfg,
            sites: Vec::new(),
            hosts: Vec::new(),
            private: Vec::new(),
            link_ge: FxMap::default(),
            link_resets: 0,
            partitions: Vec::new(),
            active: Vec::new(),
            rng,
            totals: [0; DropReason::COUNT],
        })
    }

    /// The parameters.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    fn add_site(&mut self, nat: Option<NatConfig>) -> Result<SiteId, NetError> {
        let n = self.sites.len();
        if n >= MAX_SITES as usize {
            return Err(NetError::AddressSpaceExhausted);
        }
        let ip = nth(PUBLIC_BASE, n);
        let nat = match nat {
            Some(cfg) => {
                cfg.validate().map_err(NetError::Invalid)?;
                Some(Nat::new(cfg, ip))
            }
            None => None,
        };
        let access_us = u64::try_from(self.cfg.access_latency.sample(&mut self.rng).as_micros())
            .unwrap_or(u64::MAX);
        self.sites.push(Site {
            ip,
            access_us,
            nat,
            host: None,
            behind: None,
            behind_count: 0,
        });
        Ok(SiteId(n as u32))
    }

    /// A new NAT box on its own public address.
    pub fn add_nat(&mut self, cfg: NatConfig) -> Result<SiteId, NetError> {
        self.add_site(Some(cfg))
    }

    /// A new host listening on `port`; its id is the next node id.
    pub fn add_host(
        &mut self,
        placement: Placement,
        port: u16,
        link: LinkSpec,
    ) -> Result<(NodeId, SocketAddrV4), NetError> {
        link.validate().map_err(NetError::Invalid)?;
        let id =
            NodeId(u32::try_from(self.hosts.len()).map_err(|_| NetError::AddressSpaceExhausted)?);
        let (site, ip) = match placement {
            Placement::Public => {
                let s = self.add_site(None)?;
                let site = &mut self.sites[s.0 as usize];
                site.host = Some(id.0);
                (s.0, site.ip)
            }
            Placement::BehindNat(SiteId(s)) => {
                if self.sites.get(s as usize).is_none_or(|x| x.nat.is_none()) {
                    return Err(NetError::UnknownSite(s));
                }
                if self.private.len() >= MAX_PRIVATE as usize {
                    return Err(NetError::AddressSpaceExhausted);
                }
                self.private.push(id.0);
                let site = &mut self.sites[s as usize];
                site.behind.get_or_insert(id.0);
                site.behind_count += 1;
                (s, nth(PRIVATE_BASE, self.private.len() - 1))
            }
        };
        let local = SocketAddrV4::new(ip, port);
        self.hosts.push(Host {
            local,
            site,
            up: Pipe::new(link.uplink_kbps, link.queue_bytes),
            down: Pipe::new(link.downlink_kbps, link.queue_bytes),
            ge_bad: false,
            counters: Counters::default(),
        });
        Ok((id, local))
    }

    /// Number of hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The address a host's socket is bound to.
    pub fn local_addr(&self, node: NodeId) -> Option<SocketAddrV4> {
        self.hosts.get(node.index()).map(|h| h.local)
    }

    /// The site a host sits at.
    pub fn site_of(&self, node: NodeId) -> Option<SiteId> {
        self.hosts.get(node.index()).map(|h| SiteId(h.site))
    }

    /// The public address of a site.
    pub fn site_ip(&self, site: SiteId) -> Option<Ipv4Addr> {
        self.sites.get(site.0 as usize).map(|s| s.ip)
    }

    /// The NAT box of a site, if it has one.
    pub fn nat(&self, site: SiteId) -> Option<&Nat> {
        self.sites.get(site.0 as usize)?.nat.as_ref()
    }

    /// The behaviour of the NAT a host sits behind; `None` for public hosts.
    pub fn nat_kind(&self, node: NodeId) -> Option<NatKind> {
        self.nat(self.site_of(node)?).map(|n| n.config().kind)
    }

    /// A host's traffic counters.
    pub fn counters(&self, node: NodeId) -> Option<&Counters> {
        self.hosts.get(node.index()).map(|h| &h.counters)
    }

    /// Times the per-link loss chains were reset for exceeding [`MAX_LINK_STATES`].
    pub fn link_state_resets(&self) -> u64 {
        self.link_resets
    }

    /// Drops in the whole network, by reason (indexed by [`DropReason::index`]).
    pub fn drop_totals(&self) -> &[u64; DropReason::COUNT] {
        &self.totals
    }

    /// Registers a partition: `group_of_node[i]` is node i's side. Nodes sharing a site must
    /// share a side; the first one listed decides. Inactive until [`Network::set_partition`].
    pub fn add_partition(&mut self, group_of_node: &[u16]) -> Result<u32, NetError> {
        if group_of_node.len() != self.hosts.len() {
            return Err(NetError::Invalid(format!(
                "partition lists {} nodes, network has {}",
                group_of_node.len(),
                self.hosts.len()
            )));
        }
        let mut group_of_site = vec![u16::MAX; self.sites.len()];
        for (h, &g) in self.hosts.iter().zip(group_of_node) {
            let slot = &mut group_of_site[h.site as usize];
            if *slot == u16::MAX {
                *slot = g;
            }
        }
        self.partitions.push(Partition {
            group_of_site,
            active: false,
        });
        Ok(self.partitions.len() as u32 - 1)
    }

    /// Starts or heals partition `id`.
    pub fn set_partition(&mut self, id: u32, active: bool) {
        if let Some(p) = self.partitions.get_mut(id as usize) {
            p.active = active;
        }
        self.active = (0..self.partitions.len() as u32)
            .filter(|&i| self.partitions[i as usize].active)
            .collect();
    }

    /// Whether sites `a` and `b` are separated by an active partition.
    fn separated(&self, a: u32, b: u32) -> bool {
        self.active.iter().any(|&p| {
            let g = &self.partitions[p as usize].group_of_site;
            g.get(a as usize) != g.get(b as usize)
        })
    }

    fn site_by_ip(&self, ip: Ipv4Addr) -> Option<u32> {
        offset(ip, PUBLIC_BASE, self.sites.len()).map(|o| o as u32)
    }

    pub(crate) fn count_sent(&mut self, node: NodeId, len: usize) {
        if let Some(h) = self.hosts.get_mut(node.index()) {
            h.counters.sent_packets += 1;
            h.counters.sent_bytes += len as u64;
        }
    }

    pub(crate) fn count_received(&mut self, node: NodeId, len: usize) {
        if let Some(h) = self.hosts.get_mut(node.index()) {
            h.counters.recv_packets += 1;
            h.counters.recv_bytes += len as u64;
        }
    }

    /// Counts a drop against the sender and, when known, the intended receiver.
    pub(crate) fn count_drop(&mut self, from: NodeId, to: Option<NodeId>, reason: DropReason) {
        let i = reason.index();
        self.totals[i] += 1;
        if let Some(h) = self.hosts.get_mut(from.index()) {
            h.counters.lost[i] += 1;
        }
        if let Some(h) = to.and_then(|t| self.hosts.get_mut(t.index())) {
            h.counters.refused[i] += 1;
        }
    }

    /// Routes a datagram of `len` bytes that `src` sends to `dst` at `now`.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        src: NodeId,
        dst: SocketAddr,
        len: usize,
    ) -> SendOutcome {
        use SendOutcome::Dropped;
        let SocketAddr::V4(dst) = dst else {
            return Dropped(DropReason::Unroutable);
        };
        let Some(host) = self.hosts.get(src.index()) else {
            return Dropped(DropReason::Unroutable);
        };
        let (local, src_site) = (host.local, host.site);
        let t = now.as_micros();
        if dst.ip().is_private() {
            return self.send_lan(t, src_site, dst);
        }
        let site = &mut self.sites[src_site as usize];
        let from = match site.nat.as_mut() {
            None => local,
            Some(nat) => {
                if *dst.ip() == site.ip && !nat.config().hairpinning {
                    return Dropped(DropReason::Hairpin);
                }
                match nat.outbound(now, local, dst, &mut self.rng) {
                    Ok(public) => public,
                    Err(_) => return Dropped(DropReason::NatTableFull),
                }
            }
        };
        let Some(dst_site) = self.site_by_ip(*dst.ip()) else {
            return Dropped(DropReason::Unroutable);
        };
        let wire = len as u64 + u64::from(self.cfg.header_overhead);
        let Some(left) = self.hosts[src.index()].up.enqueue(t, wire) else {
            return Dropped(DropReason::UplinkQueue);
        };
        if self.separated(src_site, dst_site) {
            return Dropped(DropReason::Partition);
        }
        if self.lose(src, dst_site) {
            return Dropped(DropReason::Loss);
        }
        let path = self.cfg.base_latency.as_micros()
            + self.sites[src_site as usize].access_us
            + self.sites[dst_site as usize].access_us;
        let first = left.saturating_add(path).saturating_add(self.extra_delay());
        let second = chance(&mut self.rng, self.cfg.duplicate)
            .then(|| left.saturating_add(path).saturating_add(self.extra_delay()));
        SendOutcome::Wan {
            from,
            to: dst,
            first,
            second,
        }
    }

    fn send_lan(&mut self, t: u64, src_site: u32, dst: SocketAddrV4) -> SendOutcome {
        let target = offset(*dst.ip(), PRIVATE_BASE, self.private.len())
            .map(|o| self.private[o])
            .filter(|&h| self.hosts[h as usize].site == src_site);
        match target {
            Some(h) if self.hosts[h as usize].local.port() == dst.port() => SendOutcome::Lan {
                to: NodeId(h),
                at: t.saturating_add(self.cfg.lan_latency.as_micros()),
            },
            Some(_) => SendOutcome::Dropped(DropReason::NoListener),
            None => SendOutcome::Dropped(DropReason::Unroutable),
        }
    }

    fn lose(&mut self, src: NodeId, dst_site: u32) -> bool {
        let model = self.cfg.loss;
        if !model.is_stateful() {
            let mut unused = false;
            return model.lose(&mut unused, &mut self.rng);
        }
        let state = match self.cfg.loss_scope {
            LossScope::Node => &mut self.hosts[src.index()].ge_bad,
            LossScope::Link => {
                if self.link_ge.len() >= MAX_LINK_STATES {
                    // Bounded: forget every chain (all back to good) rather than grow.
                    self.link_ge.clear();
                    self.link_resets += 1;
                }
                let key = (u64::from(src.0) << 32) | u64::from(dst_site);
                self.link_ge.entry(key).or_insert(false)
            }
        };
        model.lose(state, &mut self.rng)
    }

    fn extra_delay(&mut self) -> u64 {
        let mut d = 0u64;
        if !self.cfg.jitter.is_zero() {
            d = u64::try_from(self.cfg.jitter.sample(&mut self.rng).as_micros())
                .unwrap_or(u64::MAX);
        }
        if chance(&mut self.rng, self.cfg.reorder) {
            d = d.saturating_add(self.cfg.reorder_delay.as_micros());
        }
        d
    }

    /// A WAN datagram from public address `from` reaches the site of `to` at `now`.
    pub(crate) fn arrive(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        to: SocketAddrV4,
        len: usize,
    ) -> (Option<NodeId>, ArriveOutcome) {
        use ArriveOutcome::Dropped;
        let Some(s) = self.site_by_ip(*to.ip()) else {
            return (None, Dropped(DropReason::Unroutable));
        };
        let site = &mut self.sites[s as usize];
        let internal = match site.nat.as_mut() {
            None => to,
            Some(nat) => match nat.inbound(now, from, to.port()) {
                Ok(internal) => internal,
                Err(e) => {
                    // The NAT refused it: name the host when it is the only one behind.
                    let sole = site.behind.filter(|_| site.behind_count == 1).map(NodeId);
                    let reason = match e {
                        NatDrop::Filtered => DropReason::NatFiltered,
                        _ => DropReason::NatNoMapping,
                    };
                    return (sole, Dropped(reason));
                }
            },
        };
        let host = match site.host {
            Some(h) => Some(h),
            None => {
                offset(*internal.ip(), PRIVATE_BASE, self.private.len()).map(|o| self.private[o])
            }
        };
        let Some(h) = host else {
            return (None, Dropped(DropReason::Unroutable));
        };
        let to_node = NodeId(h);
        if self.hosts[h as usize].local.port() != internal.port() {
            return (Some(to_node), Dropped(DropReason::NoListener));
        }
        let wire = len as u64 + u64::from(self.cfg.header_overhead);
        match self.hosts[h as usize].down.enqueue(now.as_micros(), wire) {
            Some(at) => (Some(to_node), ArriveOutcome::Deliver { to: to_node, at }),
            None => (Some(to_node), Dropped(DropReason::DownlinkQueue)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::dist::stream;

    const PORT: u16 = 7759;

    fn net(cfg: NetConfig) -> Network {
        Network::new(cfg, stream(11, "net-test", 0)).unwrap()
    }

    fn public(n: &mut Network, link: LinkSpec) -> (NodeId, SocketAddr) {
        let (id, a) = n.add_host(Placement::Public, PORT, link).unwrap();
        (id, SocketAddr::V4(a))
    }

    /// Sends `count` datagrams, one per millisecond, returning the outcomes.
    fn burst(n: &mut Network, src: NodeId, dst: SocketAddr, count: u64) -> Vec<SendOutcome> {
        (0..count)
            .map(|i| n.send(Instant::from_micros(i * 1000), src, dst, 100))
            .collect()
    }

    fn lost(outcomes: &[SendOutcome], reason: DropReason) -> usize {
        outcomes
            .iter()
            .filter(|o| **o == SendOutcome::Dropped(reason))
            .count()
    }

    #[test]
    fn latency_is_base_plus_access_plus_jitter() {
        let cfg = NetConfig {
            base_latency: Span::millis(20),
            access_latency: Dist::fixed(Span::millis(5)),
            ..NetConfig::default()
        };
        let mut n = net(cfg);
        let (a, _) = public(&mut n, LinkSpec::UNLIMITED);
        let (_, b) = public(&mut n, LinkSpec::UNLIMITED);
        match n.send(Instant::from_secs(1), a, b, 10) {
            SendOutcome::Wan { first, second, .. } => {
                assert_eq!(first, 1_030_000);
                assert_eq!(second, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn jitter_reorders_and_duplicates_are_extra_copies() {
        let cfg = NetConfig {
            jitter: Dist::Uniform {
                min: Span::millis(0),
                max: Span::millis(20),
            },
            duplicate: 0.05,
            ..NetConfig::default()
        };
        let mut n = net(cfg);
        let (a, _) = public(&mut n, LinkSpec::UNLIMITED);
        let (_, b) = public(&mut n, LinkSpec::UNLIMITED);
        let out = burst(&mut n, a, b, 20_000);
        let firsts: Vec<u64> = out
            .iter()
            .map(|o| match o {
                SendOutcome::Wan { first, .. } => *first,
                other => panic!("{other:?}"),
            })
            .collect();
        let inversions = firsts.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(inversions > 1000, "only {inversions} reorderings");
        let dups = out
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    SendOutcome::Wan {
                        second: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert!(
            (dups as f64 / 20_000.0 - 0.05).abs() < 0.005,
            "{dups} duplicates"
        );
    }

    #[test]
    fn bernoulli_loss_rate_over_the_network() {
        let cfg = NetConfig {
            loss: LossModel::Bernoulli { p: 0.05 },
            ..NetConfig::default()
        };
        let mut n = net(cfg);
        let (a, _) = public(&mut n, LinkSpec::UNLIMITED);
        let (_, b) = public(&mut n, LinkSpec::UNLIMITED);
        let out = burst(&mut n, a, b, 50_000);
        let rate = lost(&out, DropReason::Loss) as f64 / 50_000.0;
        assert!((rate - 0.05).abs() < 0.005, "rate {rate}");
    }

    #[test]
    fn gilbert_elliott_chains_follow_the_scope() {
        let ge = LossModel::GilbertElliott {
            p_good_to_bad: 0.02,
            p_bad_to_good: 0.2,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        for scope in [LossScope::Link, LossScope::Node] {
            let cfg = NetConfig {
                loss: ge,
                loss_scope: scope,
                ..NetConfig::default()
            };
            let mut n = net(cfg);
            let (a, _) = public(&mut n, LinkSpec::UNLIMITED);
            let (_, b) = public(&mut n, LinkSpec::UNLIMITED);
            let (_, c) = public(&mut n, LinkSpec::UNLIMITED);
            // Alternate destinations: with per-link chains each sees its own bursts; with a
            // per-node chain a burst spans both.
            let mut losses = [Vec::new(), Vec::new()];
            for i in 0..40_000u64 {
                let dst = if i % 2 == 0 { b } else { c };
                let o = n.send(Instant::from_micros(i), a, dst, 100);
                losses[(i % 2) as usize].push(o == SendOutcome::Dropped(DropReason::Loss));
            }
            let together = losses[0]
                .iter()
                .zip(&losses[1])
                .filter(|(x, y)| **x && **y)
                .count() as f64;
            let each = losses[0].iter().filter(|x| **x).count() as f64;
            let overlap = together / each;
            match scope {
                // Independent chains: P(other lost) ~ stationary loss ~ 0.09.
                LossScope::Link => assert!(overlap < 0.2, "link overlap {overlap}"),
                // Shared chain: the next packet is lost with P(stay bad) = 0.8.
                LossScope::Node => assert!(overlap > 0.6, "node overlap {overlap}"),
            }
            assert_eq!(n.link_ge.is_empty(), scope == LossScope::Node);
        }
    }

    #[test]
    fn uplink_queues_delay_then_tail_drop() {
        let mut n = net(NetConfig::default());
        // 1 Mbit/s: a 100 + 28-byte datagram takes 1,024 µs. The queue holds 1,600 bytes:
        // twelve datagrams.
        let link = LinkSpec {
            uplink_kbps: 1_000,
            downlink_kbps: 0,
            queue_bytes: 1_600,
        };
        let (a, _) = public(&mut n, link);
        let (_, b) = public(&mut n, LinkSpec::UNLIMITED);
        let out: Vec<_> = (0..20).map(|_| n.send(Instant::ZERO, a, b, 100)).collect();
        let arrivals: Vec<u64> = out
            .iter()
            .filter_map(|o| match o {
                SendOutcome::Wan { first, .. } => Some(*first),
                _ => None,
            })
            .collect();
        assert_eq!(arrivals.len(), 12);
        for (i, t) in arrivals.iter().enumerate() {
            assert_eq!(*t, 10_000 + 1_024 * (i as u64 + 1), "datagram {i}");
        }
        assert_eq!(lost(&out, DropReason::UplinkQueue), 8);
        // Once drained the link takes traffic again.
        assert!(matches!(
            n.send(Instant::from_secs(1), a, b, 100),
            SendOutcome::Wan { .. }
        ));
    }

    #[test]
    fn downlink_queues_at_the_receiver() {
        let mut n = net(NetConfig::default());
        let (a, _) = public(&mut n, LinkSpec::UNLIMITED);
        let link = LinkSpec {
            uplink_kbps: 0,
            downlink_kbps: 1_000,
            queue_bytes: 1_600,
        };
        let (b_id, b) = public(&mut n, link);
        let SocketAddr::V4(b4) = b else { panic!() };
        let a4 = n.local_addr(a).unwrap();
        let out: Vec<_> = (0..15)
            .map(|_| n.arrive(Instant::ZERO, a4, b4, 100))
            .collect();
        let delivered: Vec<u64> = out
            .iter()
            .filter_map(|(_, o)| match o {
                ArriveOutcome::Deliver { to, at } if *to == b_id => Some(*at),
                _ => None,
            })
            .collect();
        assert_eq!(delivered, (1..=12).map(|i| 1_024 * i).collect::<Vec<_>>());
        assert_eq!(
            out.iter()
                .filter(|(to, o)| *to == Some(b_id)
                    && *o == ArriveOutcome::Dropped(DropReason::DownlinkQueue))
                .count(),
            3
        );
    }

    #[test]
    fn partitions_drop_across_groups_and_heal() {
        let mut n = net(NetConfig::default());
        let ids: Vec<_> = (0..4)
            .map(|_| public(&mut n, LinkSpec::UNLIMITED))
            .collect();
        let p = n.add_partition(&[0, 0, 1, 1]).unwrap();
        let t = Instant::ZERO;
        let across = |n: &mut Network| n.send(t, ids[0].0, ids[2].1, 10);
        let within = |n: &mut Network| n.send(t, ids[0].0, ids[1].1, 10);
        assert!(matches!(across(&mut n), SendOutcome::Wan { .. }));
        n.set_partition(p, true);
        assert_eq!(across(&mut n), SendOutcome::Dropped(DropReason::Partition));
        assert!(matches!(within(&mut n), SendOutcome::Wan { .. }));
        n.set_partition(p, false);
        assert!(matches!(across(&mut n), SendOutcome::Wan { .. }));
        assert!(n.add_partition(&[0, 1]).is_err());
    }

    #[test]
    fn nat_hosts_route_through_their_box() {
        let mut n = net(NetConfig::default());
        let (pub_id, pub_addr) = public(&mut n, LinkSpec::UNLIMITED);
        let SocketAddr::V4(pub4) = pub_addr else {
            panic!()
        };
        let site = n
            .add_nat(NatConfig::new(NatKind::PortRestrictedCone))
            .unwrap();
        let (h1, l1) = n
            .add_host(Placement::BehindNat(site), PORT, LinkSpec::UNLIMITED)
            .unwrap();
        let (h2, l2) = n
            .add_host(Placement::BehindNat(site), PORT, LinkSpec::UNLIMITED)
            .unwrap();
        assert!(l1.ip().is_private() && l2.ip().is_private());
        assert_eq!(n.nat_kind(h1), Some(NatKind::PortRestrictedCone));
        assert_eq!(n.nat_kind(pub_id), None);
        let t = Instant::ZERO;
        // Unsolicited inbound: no mapping.
        let nat_ip = n.site_ip(site).unwrap();
        let guess = SocketAddrV4::new(nat_ip, PORT);
        assert_eq!(
            n.arrive(t, pub4, guess, 10).1,
            ArriveOutcome::Dropped(DropReason::NatNoMapping)
        );
        // Outbound opens a mapping; the reply comes in, translated.
        let SendOutcome::Wan { from, .. } = n.send(t, h1, pub_addr, 10) else {
            panic!()
        };
        assert_eq!(*from.ip(), nat_ip);
        assert_eq!(
            n.arrive(t, pub4, from, 10).1,
            ArriveOutcome::Deliver { to: h1, at: 0 }
        );
        // Same address, other port: filtered.
        let other = SocketAddrV4::new(*pub4.ip(), 1);
        assert_eq!(
            n.arrive(t, other, from, 10).1,
            ArriveOutcome::Dropped(DropReason::NatFiltered)
        );
        // LAN neighbours talk directly; other LANs and IPv6 are unroutable.
        assert_eq!(
            n.send(t, h1, SocketAddr::V4(l2), 10),
            SendOutcome::Lan { to: h2, at: 200 }
        );
        assert_eq!(
            n.send(t, pub_id, SocketAddr::V4(l2), 10),
            SendOutcome::Dropped(DropReason::Unroutable)
        );
        let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), PORT);
        assert_eq!(
            n.send(t, h1, v6, 10),
            SendOutcome::Dropped(DropReason::Unroutable)
        );
        let nowhere = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 19, 255, 1), PORT));
        assert_eq!(
            n.send(t, h1, nowhere, 10),
            SendOutcome::Dropped(DropReason::Unroutable)
        );
        // Hairpinning is off by default.
        assert_eq!(
            n.send(t, h2, SocketAddr::V4(from), 10),
            SendOutcome::Dropped(DropReason::Hairpin)
        );
        // A public host only listens on its port.
        let wrong_port = SocketAddrV4::new(*pub4.ip(), PORT + 1);
        assert_eq!(
            n.arrive(t, from, wrong_port, 10),
            (Some(pub_id), ArriveOutcome::Dropped(DropReason::NoListener))
        );
    }

    #[test]
    fn hairpinning_when_enabled() {
        let mut n = net(NetConfig::default());
        let mut cfg = NatConfig::new(NatKind::FullCone);
        cfg.hairpinning = true;
        let site = n.add_nat(cfg).unwrap();
        let (h1, _) = n
            .add_host(Placement::BehindNat(site), PORT, LinkSpec::UNLIMITED)
            .unwrap();
        let (h2, _) = n
            .add_host(Placement::BehindNat(site), PORT, LinkSpec::UNLIMITED)
            .unwrap();
        let (_, remote) = public(&mut n, LinkSpec::UNLIMITED);
        let SendOutcome::Wan { from: m1, .. } = n.send(Instant::ZERO, h1, remote, 1) else {
            panic!()
        };
        let SendOutcome::Wan { from: m2, to, .. } =
            n.send(Instant::ZERO, h2, SocketAddr::V4(m1), 1)
        else {
            panic!()
        };
        assert_eq!(to, m1);
        assert_eq!(
            n.arrive(Instant::ZERO, m2, m1, 1).1,
            ArriveOutcome::Deliver { to: h1, at: 0 }
        );
    }
}
