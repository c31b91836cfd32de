//! The real [`dispersy::node::Node`] as a [`SimNode`]: a thin wrapper that turns store failures
//! into counters the invariant checks report.

use std::net::SocketAddr;

use std::sync::Arc;

use bytes::Bytes;
use dispersy::bloom::{BloomMemo, with_memo};
use dispersy::crypto::PrivateKey;
use dispersy::node::{Event, Node, NodeError};
use dispersy::time::Instant;

use super::store::SharedStore;
use crate::adapter::Role;
use crate::node::{SimNode, Transmit};

/// Where a node's store lives, so a restart can keep it.
#[derive(Debug, Clone)]
pub enum StoreHandle {
    /// In memory, shared with the node's next incarnation.
    Memory(SharedStore),
    /// A SQLite file, reopened by the next incarnation.
    #[cfg(feature = "sqlite")]
    Sqlite(std::path::PathBuf),
}

impl StoreHandle {
    /// The in-memory store, if that is where this one lives.
    pub fn memory(&self) -> Option<&SharedStore> {
        match self {
            StoreHandle::Memory(s) => Some(s),
            #[cfg(feature = "sqlite")]
            StoreHandle::Sqlite(_) => None,
        }
    }
}

/// A dispersy node in the simulator.
#[derive(Debug)]
pub struct DispersyNode {
    pub(super) node: Node,
    pub(super) key: PrivateKey,
    pub(super) store: StoreHandle,
    pub(super) role: Role,
    /// Inputs the node could not process because its store failed.
    pub(super) store_errors: u64,
    pub(super) last_error: Option<String>,
    /// The Bloom memo shared by the adapter's nodes, in use during each input.
    pub(super) bloom: Option<Arc<BloomMemo>>,
}

impl DispersyNode {
    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node, to give it commands; the simulator drains it after an action.
    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// Tracker or peer.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where its store lives.
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// Inputs refused because the store failed.
    pub fn store_errors(&self) -> u64 {
        self.store_errors
    }

    pub(super) fn failed(&mut self, e: impl std::fmt::Display) {
        self.store_errors += 1;
        if self.last_error.is_none() {
            self.last_error = Some(e.to_string());
        }
    }

    fn outcome(&mut self, r: Result<(), NodeError>) {
        if let Err(e) = r {
            self.failed(e);
        }
    }
}

impl SimNode for DispersyNode {
    type Event = Event;

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, contents: Bytes) {
        let node = &mut self.node;
        let r = with_memo(self.bloom.as_ref(), || {
            node.handle_datagram(now, from, contents)
        });
        self.outcome(r);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let node = &mut self.node;
        let r = with_memo(self.bloom.as_ref(), || node.handle_timeout(now));
        self.outcome(r);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.node.poll_transmit().map(|t| Transmit {
            destination: t.destination,
            contents: t.contents,
        })
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.node.poll_event()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.node.poll_timeout()
    }
}
