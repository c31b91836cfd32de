//! Which pairs of nodes managed to talk: the ground truth behind NAT-traversal figures.
//!
//! When enabled ([`crate::Sim::track_pairs`]), the engine notes for every ordered pair of nodes
//! whether a datagram from one was ever addressed to the other's host (reached its NAT or its
//! access link) and whether one was ever delivered. An unordered pair *tried* when either side
//! attempted, *mutual* when both sides attempted (in the walker: one walked to the other, which
//! punctured towards it or answered), and *connected* when datagrams got through in both
//! directions (so a connected pair is mutual). `connected / mutual` is what Dispersy calls the
//! fraction of NAT firewalls punctured: a pair where only one side ever sent (a puncture nobody
//! walked to, a walk to a candidate that was never told to puncture) says nothing about NATs.
//! Bounded: beyond
//! `max_pairs` new pairs are counted but not recorded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node::NodeId;

const TRIED_UP: u8 = 1;
const GOT_UP: u8 = 2;
const TRIED_DOWN: u8 = 4;
const GOT_DOWN: u8 = 8;

/// Per unordered pair (lower id, higher id): attempts and deliveries in each direction.
#[derive(Clone, Debug, Default)]
pub struct PairTable {
    pairs: BTreeMap<(u32, u32), u8>,
    max_pairs: usize,
    /// New pairs not recorded because the table was full.
    pub overflow: u64,
}

impl PairTable {
    /// An empty table holding at most `max_pairs` pairs.
    pub fn new(max_pairs: usize) -> PairTable {
        PairTable {
            pairs: BTreeMap::new(),
            max_pairs,
            overflow: 0,
        }
    }

    fn mark(&mut self, from: NodeId, to: NodeId, delivered: bool) {
        if from == to {
            return;
        }
        let (key, up) = if from.0 < to.0 {
            ((from.0, to.0), true)
        } else {
            ((to.0, from.0), false)
        };
        let bits = match (up, delivered) {
            (true, false) => TRIED_UP,
            (true, true) => TRIED_UP | GOT_UP,
            (false, false) => TRIED_DOWN,
            (false, true) => TRIED_DOWN | GOT_DOWN,
        };
        if let Some(v) = self.pairs.get_mut(&key) {
            *v |= bits;
        } else if self.pairs.len() < self.max_pairs {
            self.pairs.insert(key, bits);
        } else {
            self.overflow += 1;
        }
    }

    /// A datagram from `from` was addressed to `to`'s host but did not arrive.
    pub fn tried(&mut self, from: NodeId, to: NodeId) {
        self.mark(from, to, false);
    }

    /// A datagram from `from` was delivered to `to`.
    pub fn delivered(&mut self, from: NodeId, to: NodeId) {
        self.mark(from, to, true);
    }

    /// Every recorded pair: (lower id, higher id, both sides tried, connected both ways).
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, NodeId, bool, bool)> + '_ {
        self.pairs.iter().map(|(&(a, b), &v)| {
            (
                NodeId(a),
                NodeId(b),
                v & TRIED_UP != 0 && v & TRIED_DOWN != 0,
                v & GOT_UP != 0 && v & GOT_DOWN != 0,
            )
        })
    }

    /// Number of recorded pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair is recorded.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Pairs that tried and that connected, for one class of pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairCount {
    /// Pairs where either side sent to the other.
    pub tried: u64,
    /// Of those, pairs where both sides sent to the other.
    #[serde(default)]
    pub mutual: u64,
    /// Of those, pairs that got datagrams through in both directions.
    pub connected: u64,
}

impl PairCount {
    /// `connected / tried`, or 0.
    pub fn fraction(&self) -> f64 {
        if self.tried == 0 {
            0.0
        } else {
            self.connected as f64 / self.tried as f64
        }
    }

    /// `connected / mutual` (the punctured fraction), or 0.
    pub fn mutual_fraction(&self) -> f64 {
        if self.mutual == 0 {
            0.0
        } else {
            self.connected as f64 / self.mutual as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_connects_when_both_directions_deliver() {
        let mut t = PairTable::new(2);
        t.delivered(NodeId(1), NodeId(3));
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            [(NodeId(1), NodeId(3), false, false)]
        );
        t.tried(NodeId(3), NodeId(1));
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            [(NodeId(1), NodeId(3), true, false)]
        );
        t.delivered(NodeId(3), NodeId(1));
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            [(NodeId(1), NodeId(3), true, true)]
        );
        t.delivered(NodeId(2), NodeId(2));
        t.tried(NodeId(5), NodeId(6));
        t.tried(NodeId(7), NodeId(6));
        assert_eq!((t.len(), t.overflow), (2, 1));
    }
}
