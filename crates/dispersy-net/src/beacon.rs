//! LAN discovery by UDP broadcast, compatible with py-ipv8's `UDPBroadcastBootstrapper`.
//!
//! A separate socket (with `SO_BROADCAST`) sends, for each joined community, the 29-byte beacon
//! `\0\0IPv8\0` followed by the community's 22-byte prefix to the broadcast address on every
//! port (py-ipv8 listens for beacons on an ephemeral port, so the sender cannot know which).
//! It does so when the set of communities changes and then on an interval.
//!
//! The same socket listens. A beacon from someone else that names one of our communities makes
//! its sender a peer of that community (`Node::add_peer` for now). The sender's address is *its*
//! beacon socket, and py-ipv8 treats that socket as a second entrance to the overlay: so does
//! this one, handing every other datagram it receives to the node. Our own beacons, which the
//! broadcast loops back to us, are ignored.
//!
//! Cost: a round is one datagram per community and port, 65,534 per community with
//! [`Ports::All`] (about 1.9 MB). It is off by default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dispersy::wire::PREFIX_LEN;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::interfaces::Interfaces;
use crate::metrics::Counters;
use crate::socket::Inbound;

/// What every beacon starts with.
pub const MAGIC: [u8; 7] = *b"\0\0IPv8\0";
/// Length of a beacon: the magic and a community prefix.
pub const BEACON_LEN: usize = MAGIC.len() + PREFIX_LEN;

/// Which ports beacons go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    /// Every port from 1 to 65534, as py-ipv8 does.
    All,
    /// Only these (a LAN of known deployments, or a test).
    List(Vec<u16>),
}

impl Ports {
    fn iter(&self) -> Box<dyn Iterator<Item = u16> + Send + '_> {
        match self {
            Ports::All => Box::new(1..=65_534),
            Ports::List(ports) => Box::new(ports.iter().copied().filter(|p| *p != 0)),
        }
    }
}

/// LAN discovery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the beacon socket binds (an ephemeral port by default).
    pub bind: SocketAddr,
    /// Where beacons go: the limited broadcast address by default.
    pub destination: IpAddr,
    /// Which ports beacons go to.
    pub ports: Ports,
    /// Time between rounds (py-ipv8 beacons on every bootstrap, at most every 30 s).
    pub interval: Duration,
    /// At most this many communities are announced per round (each costs a datagram per port).
    pub max_communities: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            destination: IpAddr::V4(Ipv4Addr::BROADCAST),
            ports: Ports::All,
            interval: Duration::from_secs(30),
            max_communities: 4,
        }
    }
}

/// The beacon announcing a community.
pub fn encode(prefix: &[u8; PREFIX_LEN]) -> [u8; BEACON_LEN] {
    let mut out = [0u8; BEACON_LEN];
    let (magic, rest) = out.split_at_mut(MAGIC.len());
    magic.copy_from_slice(&MAGIC);
    rest.copy_from_slice(prefix);
    out
}

/// The community prefix a beacon announces; `None` when the datagram is not a beacon.
pub fn decode(datagram: &[u8]) -> Option<[u8; PREFIX_LEN]> {
    if datagram.len() != BEACON_LEN {
        return None;
    }
    let (magic, prefix) = datagram.split_at(MAGIC.len());
    if magic != MAGIC {
        return None;
    }
    prefix.try_into().ok()
}

/// Sorts what the beacon socket receives.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    local: SocketAddr,
    interfaces: watch::Receiver<Interfaces>,
}

impl Filter {
    pub(crate) fn new(local: SocketAddr, interfaces: watch::Receiver<Interfaces>) -> Filter {
        Filter { local, interfaces }
    }

    /// A beacon of someone else, a datagram for the node, or nothing (our own beacon).
    pub(crate) fn classify(
        &self,
        from: SocketAddr,
        data: &[u8],
        metrics: &Counters,
    ) -> Option<Inbound> {
        match decode(data) {
            Some(_) if self.is_own(from) => None,
            Some(prefix) => {
                Counters::inc(&metrics.beacons_received);
                Some(Inbound::Beacon(from, prefix))
            }
            None => Some(Inbound::Datagram(from, Bytes::copy_from_slice(data))),
        }
    }

    fn is_own(&self, from: SocketAddr) -> bool {
        from == self.local
            || (from.port() == self.local.port()
                && (from.ip().is_loopback()
                    || (self.local.ip().is_unspecified()
                        && self.interfaces.borrow().is_local(from.ip()))))
    }
}

/// Sends a round of beacons whenever the communities change and on every interval.
pub(crate) async fn send_loop(
    socket: Arc<UdpSocket>,
    config: Config,
    mut prefixes: watch::Receiver<Vec<[u8; PREFIX_LEN]>>,
    metrics: Arc<Counters>,
) {
    let mut tick = tokio::time::interval(config.interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = prefixes.changed() => if changed.is_err() { return },
        }
        let round: Vec<[u8; PREFIX_LEN]> = prefixes
            .borrow_and_update()
            .iter()
            .take(config.max_communities)
            .copied()
            .collect();
        for prefix in round {
            let beacon = encode(&prefix);
            for port in config.ports.iter() {
                // `send_to` waits for room in the socket buffer, which paces a round.
                match socket
                    .send_to(&beacon, SocketAddr::new(config.destination, port))
                    .await
                {
                    Ok(_) => Counters::inc(&metrics.beacons_sent),
                    Err(e) => {
                        // Usually no permission to broadcast or no route; the rest of the round
                        // would fail the same way.
                        Counters::inc(&metrics.beacon_errors);
                        tracing::debug!(error = %e, "beacon not sent");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_round_trip() {
        let prefix = [7u8; PREFIX_LEN];
        let b = encode(&prefix);
        assert_eq!(&b[..7], b"\0\0IPv8\0");
        assert_eq!(decode(&b), Some(prefix));
        assert_eq!(decode(&b[..28]), None);
        let mut bad = b;
        bad[2] = b'X';
        assert_eq!(decode(&bad), None);
    }

    #[test]
    fn port_lists() {
        assert_eq!(Ports::All.iter().count(), 65_534);
        assert_eq!(
            Ports::List(vec![0, 5, 6]).iter().collect::<Vec<_>>(),
            vec![5, 6]
        );
    }

    #[test]
    fn own_beacons_are_ignored() {
        let (_tx, rx) = watch::channel(Interfaces::default());
        let local: SocketAddr = "127.0.0.1:4000".parse().expect("address");
        let filter = Filter::new(local, rx);
        let m = Counters::default();
        let beacon = encode(&[1u8; PREFIX_LEN]);
        assert!(filter.classify(local, &beacon, &m).is_none());
        let other: SocketAddr = "127.0.0.1:4001".parse().expect("address");
        assert!(matches!(
            filter.classify(other, &beacon, &m),
            Some(Inbound::Beacon(from, _)) if from == other
        ));
        assert!(matches!(
            filter.classify(other, b"hello", &m),
            Some(Inbound::Datagram(..))
        ));
        assert_eq!(m.snapshot().beacons_received, 1);
    }
}
