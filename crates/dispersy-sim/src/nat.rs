//! NAT boxes: endpoint-independent or -dependent mapping, three kinds of filtering, idle
//! timeouts.
//!
//! The four classic behaviours (RFC 3489 names, RFC 4787 terms):
//!
//! | kind | mapping | filtering |
//! |---|---|---|
//! | full cone | endpoint-independent | endpoint-independent |
//! | restricted cone | endpoint-independent | address-dependent |
//! | port-restricted cone | endpoint-independent | address- and port-dependent |
//! | symmetric | address- and port-dependent (fresh random port per remote) | address- and port-dependent |
//!
//! A mapping lives `mapping_timeout` after its last outbound packet (and after its last
//! accepted inbound one when `refresh_on_inbound`); the permission to receive from a remote
//! lives the same time after the last packet sent to it. Expired state is removed lazily.
//! Mappings and permissions are bounded per box; see [`NatConfig`].

use std::net::{Ipv4Addr, SocketAddrV4};

use dispersy::time::Instant;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::dist::{SimRng, Span};
use crate::hash::FxMap;

/// Lowest external port a box hands out.
const FIRST_PORT: u16 = 1024;

/// The behaviour of a NAT box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatKind {
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address- and port-dependent filtering.
    PortRestrictedCone,
    /// A fresh mapping (random port) per remote endpoint; address- and port-dependent filtering.
    Symmetric,
}

impl NatKind {
    /// All kinds, in a fixed order.
    pub const ALL: [NatKind; 4] = [
        NatKind::FullCone,
        NatKind::RestrictedCone,
        NatKind::PortRestrictedCone,
        NatKind::Symmetric,
    ];

    /// The kebab-case name used in scenario files and results.
    pub fn name(self) -> &'static str {
        match self {
            NatKind::FullCone => "full-cone",
            NatKind::RestrictedCone => "restricted-cone",
            NatKind::PortRestrictedCone => "port-restricted-cone",
            NatKind::Symmetric => "symmetric",
        }
    }
}

/// Configuration of one NAT box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    /// Mapping and filtering behaviour.
    pub kind: NatKind,
    /// Idle time after which a mapping (and a permission) is gone.
    #[serde(default = "default_timeout")]
    pub mapping_timeout: Span,
    /// Whether a host may reach another host behind the same box through its public address.
    #[serde(default)]
    pub hairpinning: bool,
    /// Whether accepted inbound packets also keep the mapping alive.
    #[serde(default)]
    pub refresh_on_inbound: bool,
    /// Most mappings at once; beyond it expired ones are purged, then new flows are refused.
    #[serde(default = "default_max_mappings")]
    pub max_mappings: usize,
    /// Most remote permissions per mapping; beyond it the oldest is evicted.
    #[serde(default = "default_max_permits")]
    pub max_permits: usize,
}

fn default_timeout() -> Span {
    Span::secs(60)
}

fn default_max_mappings() -> usize {
    4096
}

fn default_max_permits() -> usize {
    4096
}

impl NatConfig {
    /// A box of `kind` with a 60 s timeout and default bounds.
    pub fn new(kind: NatKind) -> NatConfig {
        NatConfig {
            kind,
            mapping_timeout: default_timeout(),
            hairpinning: false,
            refresh_on_inbound: false,
            max_mappings: default_max_mappings(),
            max_permits: default_max_permits(),
        }
    }

    /// Checks the bounds.
    pub fn validate(&self) -> Result<(), String> {
        let ports = usize::from(u16::MAX - FIRST_PORT) + 1;
        if self.max_mappings == 0 || self.max_mappings > ports / 2 {
            return Err(format!("max_mappings must be in 1..={}", ports / 2));
        }
        if self.max_permits == 0 {
            return Err("max_permits must be positive".into());
        }
        if self.mapping_timeout.0.is_zero() {
            return Err("mapping_timeout must be positive".into());
        }
        Ok(())
    }
}

/// Why a box refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatDrop {
    /// Inbound to a port with no live mapping.
    NoMapping,
    /// Inbound from a remote the mapping does not admit.
    Filtered,
    /// Outbound needing a new mapping while the table is full of live ones.
    TableFull,
}

/// Counters of one box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatStats {
    /// Mappings created.
    pub created: u64,
    /// Mappings found expired (and replaced or purged).
    pub expired: u64,
    /// Permissions evicted because a mapping had too many.
    pub permits_evicted: u64,
}

#[derive(Debug)]
struct Mapping {
    internal: SocketAddrV4,
    /// The remote of a symmetric mapping (part of its key).
    remote: Option<SocketAddrV4>,
    /// Last refresh, microseconds.
    last: u64,
    /// Remote key (port 0 for address-only filtering) -> last packet sent there.
    permits: FxMap<u64, u64>,
}

/// One NAT box with its public address.
#[derive(Debug)]
pub struct Nat {
    cfg: NatConfig,
    timeout_us: u64,
    public_ip: Ipv4Addr,
    by_internal: FxMap<(SocketAddrV4, Option<SocketAddrV4>), u16>,
    by_external: FxMap<u16, Mapping>,
    stats: NatStats,
}

impl Nat {
    /// A box with public address `public_ip`; the configuration must have passed
    /// [`NatConfig::validate`].
    pub fn new(cfg: NatConfig, public_ip: Ipv4Addr) -> Nat {
        Nat {
            timeout_us: cfg.mapping_timeout.as_micros(),
            cfg,
            public_ip,
            by_internal: FxMap::default(),
            by_external: FxMap::default(),
            stats: NatStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NatConfig {
        &self.cfg
    }

    /// The public address.
    pub fn public_ip(&self) -> Ipv4Addr {
        self.public_ip
    }

    /// Counters.
    pub fn stats(&self) -> NatStats {
        self.stats
    }

    /// Mappings held, live or not yet purged.
    pub fn mapping_count(&self) -> usize {
        self.by_external.len()
    }

    fn permit_key(&self, remote: SocketAddrV4) -> u64 {
        let port = match self.cfg.kind {
            NatKind::RestrictedCone => 0,
            _ => remote.port(),
        };
        (u64::from(u32::from(*remote.ip())) << 16) | u64::from(port)
    }

    fn alive(&self, last: u64, now: u64) -> bool {
        now < last.saturating_add(self.timeout_us)
    }

    /// Translates an outbound packet from `internal` to `remote`: the public source address,
    /// creating or refreshing the mapping and the permission to hear back from `remote`.
    pub fn outbound(
        &mut self,
        now: Instant,
        internal: SocketAddrV4,
        remote: SocketAddrV4,
        rng: &mut SimRng,
    ) -> Result<SocketAddrV4, NatDrop> {
        let now = now.as_micros();
        let key = (
            internal,
            (self.cfg.kind == NatKind::Symmetric).then_some(remote),
        );
        let port = match self.by_internal.get(&key) {
            Some(&port) if self.is_live(port, now) => port,
            found => {
                if let Some(&stale) = found {
                    self.remove(stale);
                    self.stats.expired += 1;
                }
                self.create(key, now, rng)?
            }
        };
        let permit = self.permit_key(remote);
        let (max_permits, timeout) = (self.cfg.max_permits, self.timeout_us);
        let m = self
            .by_external
            .get_mut(&port)
            .expect("invariant: by_internal and by_external agree");
        m.last = now;
        if m.permits.len() >= max_permits && !m.permits.contains_key(&permit) {
            m.permits
                .retain(|_, &mut t| now < t.saturating_add(timeout));
            let oldest = m
                .permits
                .iter()
                .map(|(k, t)| (*t, *k))
                .min()
                .map(|(_, k)| k);
            if let Some(oldest) = oldest.filter(|_| m.permits.len() >= max_permits) {
                m.permits.remove(&oldest);
                self.stats.permits_evicted += 1;
            }
        }
        m.permits.insert(permit, now);
        Ok(SocketAddrV4::new(self.public_ip, port))
    }

    /// Filters an inbound packet from `remote` to public port `port`: the internal address it
    /// is forwarded to, or why it is dropped.
    pub fn inbound(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        port: u16,
    ) -> Result<SocketAddrV4, NatDrop> {
        let now = now.as_micros();
        let permit = self.permit_key(remote);
        let (kind, timeout, refresh) =
            (self.cfg.kind, self.timeout_us, self.cfg.refresh_on_inbound);
        let Some(m) = self
            .by_external
            .get_mut(&port)
            .filter(|m| now < m.last.saturating_add(timeout))
        else {
            return Err(NatDrop::NoMapping);
        };
        let admitted = match kind {
            NatKind::FullCone => true,
            _ => m
                .permits
                .get(&permit)
                .is_some_and(|&t| now < t.saturating_add(timeout)),
        };
        if !admitted {
            return Err(NatDrop::Filtered);
        }
        if refresh {
            m.last = now;
            if let Some(t) = m.permits.get_mut(&permit) {
                *t = now;
            }
        }
        Ok(m.internal)
    }

    fn is_live(&self, port: u16, now: u64) -> bool {
        self.by_external
            .get(&port)
            .is_some_and(|m| self.alive(m.last, now))
    }

    fn remove(&mut self, port: u16) {
        if let Some(m) = self.by_external.remove(&port) {
            self.by_internal.remove(&(m.internal, m.remote));
        }
    }

    fn create(
        &mut self,
        key: (SocketAddrV4, Option<SocketAddrV4>),
        now: u64,
        rng: &mut SimRng,
    ) -> Result<u16, NatDrop> {
        if self.by_external.len() >= self.cfg.max_mappings {
            let expired: Vec<u16> = self
                .by_external
                .iter()
                .filter(|(_, m)| !self.alive(m.last, now))
                .map(|(p, _)| *p)
                .collect();
            self.stats.expired += expired.len() as u64;
            for port in expired {
                self.remove(port);
            }
            if self.by_external.len() >= self.cfg.max_mappings {
                return Err(NatDrop::TableFull);
            }
        }
        let port = self.free_port(rng);
        self.by_internal.insert(key, port);
        self.by_external.insert(
            port,
            Mapping {
                internal: key.0,
                remote: key.1,
                last: now,
                permits: FxMap::default(),
            },
        );
        self.stats.created += 1;
        Ok(port)
    }

    /// A random unused port. The table holds at most half the range, so a few draws suffice;
    /// a scan from a random start bounds the worst case.
    fn free_port(&self, rng: &mut SimRng) -> u16 {
        for _ in 0..16 {
            let p = rng.gen_range(FIRST_PORT..=u16::MAX);
            if !self.by_external.contains_key(&p) {
                return p;
            }
        }
        let start = rng.gen_range(FIRST_PORT..=u16::MAX);
        (start..=u16::MAX)
            .chain(FIRST_PORT..start)
            .find(|p| !self.by_external.contains_key(p))
            .unwrap_or(start)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dist::stream;

    const HOST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 7759);
    const R1: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7759);
    const R1_OTHER_PORT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 9999);
    const R2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 7759);

    fn nat(kind: NatKind) -> (Nat, SimRng) {
        let mut cfg = NatConfig::new(kind);
        cfg.mapping_timeout = Span::secs(30);
        (
            Nat::new(cfg, Ipv4Addr::new(198, 18, 1, 1)),
            stream(1, "nat-test", 0),
        )
    }

    fn t(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    /// Which of R1, R1 from another port, R2 reach the host through `port` at `now`.
    fn admits(n: &mut Nat, now: Instant, port: u16) -> [bool; 3] {
        [R1, R1_OTHER_PORT, R2].map(|r| n.inbound(now, r, port).is_ok())
    }

    #[test]
    fn nothing_enters_before_an_outbound_packet() {
        for kind in NatKind::ALL {
            let (mut n, _) = nat(kind);
            for port in [FIRST_PORT, 7759, u16::MAX] {
                assert_eq!(
                    n.inbound(t(0), R1, port),
                    Err(NatDrop::NoMapping),
                    "{kind:?}"
                );
            }
        }
    }

    #[test]
    fn full_cone_admits_anyone_once_mapped() {
        let (mut n, mut rng) = nat(NatKind::FullCone);
        let a = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        assert_eq!(*a.ip(), n.public_ip());
        assert_eq!(admits(&mut n, t(1), a.port()), [true, true, true]);
        assert_eq!(n.inbound(t(1), R2, a.port()), Ok(HOST));
        // Endpoint-independent mapping: the same port towards another remote.
        assert_eq!(n.outbound(t(2), HOST, R2, &mut rng).unwrap(), a);
        assert_eq!(n.mapping_count(), 1);
    }

    #[test]
    fn restricted_cone_filters_by_address() {
        let (mut n, mut rng) = nat(NatKind::RestrictedCone);
        let a = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        assert_eq!(admits(&mut n, t(1), a.port()), [true, true, false]);
        assert_eq!(n.inbound(t(1), R2, a.port()), Err(NatDrop::Filtered));
        assert_eq!(n.outbound(t(2), HOST, R2, &mut rng).unwrap(), a);
        assert_eq!(admits(&mut n, t(3), a.port()), [true, true, true]);
    }

    #[test]
    fn port_restricted_cone_filters_by_address_and_port() {
        let (mut n, mut rng) = nat(NatKind::PortRestrictedCone);
        let a = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        assert_eq!(admits(&mut n, t(1), a.port()), [true, false, false]);
        assert_eq!(n.outbound(t(2), HOST, R2, &mut rng).unwrap(), a);
        assert_eq!(admits(&mut n, t(3), a.port()), [true, false, true]);
    }

    #[test]
    fn symmetric_maps_each_remote_to_its_own_port() {
        let (mut n, mut rng) = nat(NatKind::Symmetric);
        let a1 = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        let a2 = n.outbound(t(0), HOST, R2, &mut rng).unwrap();
        let a3 = n.outbound(t(0), HOST, R1_OTHER_PORT, &mut rng).unwrap();
        assert_ne!(a1.port(), a2.port());
        assert_ne!(a1.port(), a3.port());
        assert_ne!(a2.port(), a3.port());
        assert_eq!(n.mapping_count(), 3);
        // Reused while alive.
        assert_eq!(n.outbound(t(1), HOST, R1, &mut rng).unwrap(), a1);
        // R2 learned of a1 (say, from R1) but cannot use it: that is why symmetric NATs
        // defeat plain hole punching.
        assert_eq!(admits(&mut n, t(2), a1.port()), [true, false, false]);
        assert_eq!(admits(&mut n, t(2), a2.port()), [false, false, true]);
    }

    #[test]
    fn idle_mappings_expire_and_outbound_refreshes_them() {
        let (mut n, mut rng) = nat(NatKind::PortRestrictedCone);
        let a = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        let just_before = Instant::from_micros(30_000_000 - 1);
        assert!(n.inbound(just_before, R1, a.port()).is_ok());
        assert_eq!(n.inbound(t(30), R1, a.port()), Err(NatDrop::NoMapping));
        // Inbound traffic does not refresh by default: a packet at 20 s does not extend it.
        let (mut n, mut rng) = nat(NatKind::PortRestrictedCone);
        let a = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        assert!(n.inbound(t(20), R1, a.port()).is_ok());
        assert!(n.inbound(t(31), R1, a.port()).is_err());
        // After expiry an outbound packet makes a fresh mapping; outbound packets refresh it.
        let a2 = n.outbound(t(40), HOST, R1, &mut rng).unwrap();
        assert_eq!(n.stats().expired, 1);
        assert_eq!(n.stats().created, 2);
        n.outbound(t(60), HOST, R1, &mut rng).unwrap();
        assert!(n.inbound(t(89), R1, a2.port()).is_ok());
        assert!(n.inbound(t(90), R1, a2.port()).is_err());
    }

    #[test]
    fn permissions_expire_separately_from_the_mapping() {
        let (mut n, mut rng) = nat(NatKind::RestrictedCone);
        let a = n.outbound(t(0), HOST, R2, &mut rng).unwrap();
        n.outbound(t(20), HOST, R1, &mut rng).unwrap();
        // The mapping lives until 50 s, R2's permission only until 30 s.
        assert_eq!(admits(&mut n, t(35), a.port()), [true, true, false]);
    }

    #[test]
    fn refresh_on_inbound_keeps_a_mapping_alive() {
        let mut cfg = NatConfig::new(NatKind::FullCone);
        cfg.mapping_timeout = Span::secs(30);
        cfg.refresh_on_inbound = true;
        let mut n = Nat::new(cfg, Ipv4Addr::new(198, 18, 1, 1));
        let mut rng = stream(1, "nat-test", 0);
        let a = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        for s in [20, 40, 60] {
            assert!(n.inbound(t(s), R2, a.port()).is_ok());
        }
        assert!(n.inbound(t(91), R2, a.port()).is_err());
    }

    #[test]
    fn tables_are_bounded() {
        let mut cfg = NatConfig::new(NatKind::Symmetric);
        cfg.max_mappings = 4;
        cfg.mapping_timeout = Span(Duration::from_secs(10));
        let mut n = Nat::new(cfg, Ipv4Addr::new(198, 18, 1, 1));
        let mut rng = stream(1, "nat-test", 0);
        let remote = |i: u16| SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 2000 + i);
        for i in 0..4 {
            n.outbound(t(0), HOST, remote(i), &mut rng).unwrap();
        }
        assert_eq!(
            n.outbound(t(5), HOST, remote(9), &mut rng),
            Err(NatDrop::TableFull)
        );
        // Once the old ones expire they are purged to make room.
        assert!(n.outbound(t(10), HOST, remote(9), &mut rng).is_ok());
        assert_eq!(n.mapping_count(), 1);

        let mut cfg = NatConfig::new(NatKind::PortRestrictedCone);
        cfg.max_permits = 2;
        let mut n = Nat::new(cfg, Ipv4Addr::new(198, 18, 1, 1));
        let a = n.outbound(t(0), HOST, R1, &mut rng).unwrap();
        n.outbound(t(1), HOST, R2, &mut rng).unwrap();
        n.outbound(t(2), HOST, R1_OTHER_PORT, &mut rng).unwrap();
        assert_eq!(n.stats().permits_evicted, 1);
        assert_eq!(admits(&mut n, t(3), a.port()), [false, true, true]);
        assert!(NatConfig::new(NatKind::FullCone).validate().is_ok());
        let mut bad = NatConfig::new(NatKind::FullCone);
        bad.max_mappings = 60_000;
        assert!(bad.validate().is_err());
    }
}
