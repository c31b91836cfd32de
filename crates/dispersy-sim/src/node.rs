//! The node interface the simulator drives: the shape of dispersy's sans-IO `Node`.
//!
//! The real node plugs in through a thin adapter (see [`crate::Adapter`]); tests and the speed
//! measurement use [`crate::toy`].

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use dispersy::time::Instant;
use serde::{Deserialize, Serialize};

/// Index of a simulated node. Each node is one host with one address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A datagram a node wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub contents: Bytes,
}

/// A sans-IO node as the simulator sees it.
///
/// The engine calls one input method, then drains `poll_transmit` and `poll_event` until they
/// return `None`, then reads `poll_timeout`: the same rule as the real drivers follow.
pub trait SimNode {
    /// What the node reports to its application.
    type Event;

    /// A datagram arrived from `from` (the address as the node's socket would see it: after
    /// any NAT translation).
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, contents: Bytes);

    /// The deadline last returned by `poll_timeout` has passed.
    fn handle_timeout(&mut self, now: Instant);

    /// Next datagram to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// Next event for the application.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// When `handle_timeout` should next be called; `None` for never.
    fn poll_timeout(&mut self) -> Option<Instant>;
}

/// What a node is told about itself when it is built or rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeContext {
    /// Its index.
    pub id: NodeId,
    /// The address its socket is bound to (private when behind a NAT).
    pub local_addr: SocketAddr,
    /// Seed for the node's own RNG; different for every incarnation.
    pub seed: [u8; 32],
    /// 0 when first built, +1 at each restart after churn.
    pub incarnation: u32,
}
