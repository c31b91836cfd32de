//! How a scenario's nodes are built and observed: the [`Adapter`] trait.
//!
//! The scenario runner knows nothing of what a node is. An adapter builds one per host (a
//! tracker or a peer), rebuilds it after churn keeping or discarding its state, injects the
//! workload's messages, and tells the runner which injected item a node event means it now
//! holds. The real dispersy node and [`crate::toy`] each have one.

use std::net::SocketAddr;

use dispersy::time::Instant;
use serde::{Deserialize, Serialize};

use crate::node::{NodeContext, NodeId, SimNode};

/// What part a node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A bootstrap node on a public address; never churns unless the scenario says so.
    Tracker,
    /// An ordinary node.
    Peer,
}

/// Index of an injected item (a message of the workload), in injection order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ItemId(pub u32);

/// Everything an adapter is told when it builds or rebuilds a node.
#[derive(Clone, Debug)]
pub struct NodeSpec<'a> {
    /// Id, socket address, seed, incarnation.
    pub ctx: NodeContext,
    /// Tracker or peer.
    pub role: Role,
    /// The trackers' addresses (public), in node order.
    pub trackers: &'a [SocketAddr],
    /// Every node's local address, in node order (private for nodes behind a NAT).
    pub addresses: &'a [SocketAddr],
    /// The virtual time of the (re)build.
    pub now: Instant,
}

/// An adapter failed to build a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

/// Builds and observes the nodes of one kind.
pub trait Adapter {
    /// The node type.
    type Node: SimNode;

    /// A fresh node.
    fn build(&mut self, spec: &NodeSpec<'_>) -> Result<Self::Node, AdapterError>;

    /// The node that replaces `old` after a downtime, with `old`'s state (its store) when
    /// `keep_state`, or empty.
    fn restart(&mut self, spec: &NodeSpec<'_>, old: Self::Node, keep_state: bool) -> Self::Node;

    /// Makes `node` author item `item` with about `size` payload bytes; false if it could not.
    fn inject(
        &mut self,
        now: Instant,
        id: NodeId,
        node: &mut Self::Node,
        item: ItemId,
        size: u32,
    ) -> bool;

    /// Interprets a node event: the item the node now holds, if that is what it says.
    fn on_event(
        &mut self,
        now: Instant,
        id: NodeId,
        event: <Self::Node as SimNode>::Event,
    ) -> Option<ItemId>;

    /// Checks a node's invariants at a sampling tick.
    fn check(&mut self, now: Instant, id: NodeId, node: &Self::Node) -> Result<(), String> {
        let _ = (now, id, node);
        Ok(())
    }

    /// A digest of the node's replicated state (its store), compared across nodes after a
    /// partition heals: equal digests mean equal stores. `None` when the kind has none.
    fn state_digest(&self, node: &Self::Node) -> Option<String> {
        let _ = node;
        None
    }

    /// Adapter-specific figures for the results file (node counters, caches), from the nodes
    /// that exist at the end of the run.
    fn summary(&self, nodes: &mut dyn Iterator<Item = &Self::Node>) -> serde_json::Value {
        let _ = nodes;
        serde_json::Value::Null
    }
}
