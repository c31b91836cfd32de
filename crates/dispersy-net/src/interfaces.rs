//! Local interface addresses with their netmasks, for the walker's address estimate.
//!
//! The walker needs to know which addresses are ours (to estimate our LAN address, as py-ipv8
//! does from the host's interface list, and to tell whether a peer shares our LAN). [`scan`]
//! reads them; the driver rescans on an interval (py-ipv8: every 10 s) so a roaming node sees
//! new addresses, and publishes the result through [`crate::Handle::interfaces`] only when it
//! changed.
//!
//! [`Interfaces`] is a plain, ordered value: the node can take it as it is, or through
//! [`Interfaces::networks`] as `(address, prefix length)` pairs.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::metrics::Counters;

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LocalAddress {
    /// The interface's name (`eth0`, `lo`, ...).
    pub interface: String,
    /// The address.
    pub ip: IpAddr,
    /// Length of the network prefix (24 for a /24).
    pub prefix_len: u8,
    /// The netmask, in the address's family.
    pub netmask: IpAddr,
    /// The broadcast address (IPv4 interfaces that have one).
    pub broadcast: Option<IpAddr>,
}

impl LocalAddress {
    /// Whether `ip` is on this address's network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.ip, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = mask_bits(self.prefix_len, 32);
                u128::from(u32::from(a)) & mask == u128::from(u32::from(b)) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = mask_bits(self.prefix_len, 128);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    /// Whether this is a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.ip.is_loopback()
    }
}

/// The top `prefix_len` bits of a `width`-bit address, as a mask in the low bits of a u128.
fn mask_bits(prefix_len: u8, width: u32) -> u128 {
    let len = u32::from(prefix_len).min(width);
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if len == 0 {
        0
    } else {
        (all << (width - len)) & all
    }
}

/// The host's interface addresses, ordered (by interface name, then address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Interfaces {
    addresses: Vec<LocalAddress>,
}

impl Interfaces {
    /// Interfaces from a list (for tests and for adapters); sorted and deduplicated.
    pub fn from_addresses(mut addresses: Vec<LocalAddress>) -> Interfaces {
        addresses.sort();
        addresses.dedup();
        Interfaces { addresses }
    }

    /// Every address.
    pub fn addresses(&self) -> &[LocalAddress] {
        &self.addresses
    }

    /// `(address, prefix length)` of every address: the form the node is expected to take.
    pub fn networks(&self) -> impl Iterator<Item = (IpAddr, u8)> + '_ {
        self.addresses.iter().map(|a| (a.ip, a.prefix_len))
    }

    /// Whether `ip` is one of ours.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.ip == ip)
    }

    /// The interface address whose network contains `ip` (a peer on our LAN).
    pub fn network_of(&self, ip: IpAddr) -> Option<&LocalAddress> {
        self.addresses
            .iter()
            .filter(|a| !a.is_loopback())
            .find(|a| a.contains(ip))
    }

    /// Our LAN address for a socket bound to `bound`: the bound address itself when it names
    /// one, otherwise the first non-loopback address of its family (loopback as the last
    /// resort), with the bound port.
    pub fn lan_address(&self, bound: SocketAddr) -> Option<SocketAddr> {
        if !bound.ip().is_unspecified() {
            return Some(bound);
        }
        let family = |a: &&LocalAddress| a.ip.is_ipv4() == bound.is_ipv4();
        self.addresses
            .iter()
            .filter(family)
            .find(|a| !a.is_loopback())
            .or_else(|| self.addresses.iter().find(family))
            .map(|a| SocketAddr::new(a.ip, bound.port()))
    }
}

/// Reads the host's interface addresses (interfaces that are down are left out; so are IPv6
/// link-local addresses, which need a scope to be used).
pub fn scan() -> io::Result<Interfaces> {
    let list = if_addrs::get_if_addrs()?;
    let addresses = list
        .into_iter()
        .filter(|i| {
            !matches!(
                i.oper_status,
                if_addrs::IfOperStatus::Down
                    | if_addrs::IfOperStatus::LowerLayerDown
                    | if_addrs::IfOperStatus::NotPresent
            )
        })
        .filter_map(|i| {
            let (ip, netmask, prefix_len, broadcast) = match i.addr {
                if_addrs::IfAddr::V4(a) => (
                    IpAddr::V4(a.ip),
                    IpAddr::V4(a.netmask),
                    a.prefixlen,
                    a.broadcast.map(IpAddr::V4),
                ),
                if_addrs::IfAddr::V6(a) => {
                    if is_unicast_link_local(a.ip) {
                        return None;
                    }
                    (IpAddr::V6(a.ip), IpAddr::V6(a.netmask), a.prefixlen, None)
                }
            };
            Some(LocalAddress {
                interface: i.name,
                ip,
                prefix_len,
                netmask,
                broadcast,
            })
        })
        .collect();
    Ok(Interfaces::from_addresses(addresses))
}

fn is_unicast_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Rescans on an interval and publishes changes. Scanning is one quick system call, done in
/// place.
pub(crate) async fn rescan_loop(
    every: Duration,
    publish: watch::Sender<Interfaces>,
    metrics: Arc<Counters>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the driver scanned at start
    loop {
        tick.tick().await;
        Counters::inc(&metrics.interface_scans);
        match scan() {
            Ok(now) => {
                publish.send_if_modified(|old| {
                    if *old == now {
                        return false;
                    }
                    tracing::info!(addresses = now.addresses().len(), "local addresses changed");
                    *old = now;
                    true
                });
            }
            Err(e) => {
                Counters::inc(&metrics.interface_scan_errors);
                tracing::debug!(error = %e, "interface scan failed");
            }
        }
        if publish.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The unspecified address of a family (for tests and defaults).
    fn unspecified(v4: bool) -> IpAddr {
        if v4 {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        }
    }

    fn addr(interface: &str, ip: &str, prefix_len: u8) -> LocalAddress {
        let ip: IpAddr = ip.parse().expect("ip");
        LocalAddress {
            interface: interface.into(),
            ip,
            prefix_len,
            netmask: unspecified(ip.is_ipv4()),
            broadcast: None,
        }
    }

    #[test]
    fn networks_contain_their_hosts() {
        let a = addr("eth0", "192.0.2.2", 24);
        assert!(a.contains("192.0.2.200".parse().expect("ip")));
        assert!(!a.contains("192.0.3.1".parse().expect("ip")));
        assert!(!a.contains("::1".parse().expect("ip")));
        let v6 = addr("eth0", "fd00::2", 64);
        assert!(v6.contains("fd00::ffff".parse().expect("ip")));
        assert!(!v6.contains("fd01::1".parse().expect("ip")));
        assert!(addr("x", "10.0.0.1", 0).contains("8.8.8.8".parse().expect("ip")));
        assert!(addr("x", "10.0.0.1", 32).contains("10.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn lan_address_prefers_a_real_interface() {
        let ifs = Interfaces::from_addresses(vec![
            addr("lo", "127.0.0.1", 8),
            addr("eth0", "192.0.2.2", 24),
            addr("eth0", "fd00::2", 64),
        ]);
        let any4: SocketAddr = "0.0.0.0:7000".parse().expect("address");
        assert_eq!(
            ifs.lan_address(any4),
            Some("192.0.2.2:7000".parse().expect("address"))
        );
        let bound: SocketAddr = "127.0.0.1:7000".parse().expect("address");
        assert_eq!(ifs.lan_address(bound), Some(bound));
        let any6: SocketAddr = "[::]:7000".parse().expect("address");
        assert_eq!(
            ifs.lan_address(any6),
            Some("[fd00::2]:7000".parse().expect("address"))
        );
        assert!(ifs.is_local("192.0.2.2".parse().expect("ip")));
        assert_eq!(
            ifs.network_of("192.0.2.9".parse().expect("ip"))
                .map(|a| a.ip),
            Some("192.0.2.2".parse().expect("ip"))
        );
        assert_eq!(ifs.networks().count(), 3);
    }

    #[test]
    fn scanning_finds_loopback() {
        let ifs = scan().expect("scan");
        assert!(
            ifs.addresses().iter().any(LocalAddress::is_loopback),
            "{ifs:?}"
        );
    }
}
