//! The four policies of a meta-message: who signs it (authentication), who may create it
//! (resolution), how it spreads and is kept (distribution) and where it goes (destination).
//!
//! Allowed combinations (checked by [`crate::community::MetaMessage::validate`]):
//!
//! | authentication | resolution | distribution | destination |
//! |---|---|---|---|
//! | none | public | direct | candidate, community |
//! | member | public, linear, dynamic | direct, full sync, last sync | candidate, community |
//! | double member | public, linear, dynamic | direct, full sync without sequence numbers, last sync | candidate, community |
//!
//! Synced distributions need the community destination; the candidate destination needs direct
//! distribution; linear and dynamic resolution need an author.

use serde::{Deserialize, Serialize};

use crate::wire::{AuthLayout, KeyEncoding, Layout};

/// Who signs a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Authentication {
    /// Nobody: anyone can forge or alter it. Only for direct control messages.
    None,
    /// One member signs.
    Member {
        /// Full key or member id in the packet.
        encoding: KeyEncoding,
    },
    /// Two members sign, both over the whole message (see the permission docs for the flow).
    DoubleMember {
        /// Full keys or member ids in the packet.
        encoding: KeyEncoding,
    },
}

impl Authentication {
    /// The authentication section's layout.
    pub fn layout(self) -> AuthLayout {
        match self {
            Authentication::None => AuthLayout::None,
            Authentication::Member { encoding } => AuthLayout::Member(encoding),
            Authentication::DoubleMember { encoding } => AuthLayout::DoubleMember(encoding),
        }
    }

    /// Whether the message has at least one author.
    pub fn is_signed(self) -> bool {
        !matches!(self, Authentication::None)
    }
}

/// One of the fixed policies a dynamic resolution switches between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResolutionPolicy {
    /// Anyone may create the message.
    Public,
    /// Only members holding `permit` at the message's global time.
    Linear,
}

/// Who may create a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resolution {
    /// Anyone.
    Public,
    /// Members holding `permit` for this meta-message at the message's global time.
    Linear,
    /// Switches between policies by dynamic-settings messages; the first is the default. A
    /// change made at global time `t` applies to messages from `t + 1` on.
    Dynamic {
        /// The policies (at most 255), in the order their indices name them.
        policies: Vec<ResolutionPolicy>,
    },
}

impl Resolution {
    /// Whether the packet carries a policy-index byte.
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Resolution::Dynamic { .. })
    }
}

/// Order in which a responder sends a meta-message's missing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Oldest global time first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
    /// Any order.
    Random,
}

/// Messages fade out by global-time distance: active, then inactive (kept, not served), then
/// pruned (deleted everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pruning {
    /// Messages this far behind the community's global time stop being served.
    pub inactive: u64,
    /// Messages this far behind are deleted. Greater than `inactive`.
    pub prune: u64,
}

/// Messages with a priority at or below this are never offered in Bloom-filter sync.
pub const SYNC_PRIORITY_THRESHOLD: u8 = 32;

/// How a message spreads and how long it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Distribution {
    /// Sent once to its destination, never stored or synced.
    Direct,
    /// Stored and synced forever (or until pruned).
    FullSync {
        /// Number each author's messages 1, 2, 3, ... with no gaps.
        sequence_numbers: bool,
        /// Order of sync responses.
        direction: Direction,
        /// Sync priority, 0-255; at most [`SYNC_PRIORITY_THRESHOLD`] is never synced.
        priority: u8,
        /// Optional global-time pruning.
        pruning: Option<Pruning>,
    },
    /// Only each author's newest `history` messages are kept (per pair for double-member).
    LastSync {
        /// How many messages per author to keep (at least 1).
        history: u16,
        /// Order of sync responses.
        direction: Direction,
        /// Sync priority.
        priority: u8,
    },
}

impl Distribution {
    /// Whether messages are stored and synced.
    pub fn is_synced(&self) -> bool {
        !matches!(self, Distribution::Direct)
    }

    /// Whether packets carry a sequence number.
    pub fn has_sequence_numbers(&self) -> bool {
        matches!(
            self,
            Distribution::FullSync {
                sequence_numbers: true,
                ..
            }
        )
    }

    /// Sync priority (`None` for direct messages).
    pub fn priority(&self) -> Option<u8> {
        match self {
            Distribution::Direct => None,
            Distribution::FullSync { priority, .. } | Distribution::LastSync { priority, .. } => {
                Some(*priority)
            }
        }
    }

    /// Sync direction (`None` for direct messages).
    pub fn direction(&self) -> Option<Direction> {
        match self {
            Distribution::Direct => None,
            Distribution::FullSync { direction, .. } | Distribution::LastSync { direction, .. } => {
                Some(*direction)
            }
        }
    }

    /// Whether Bloom-filter sync offers these messages (synced and above the threshold).
    pub fn is_bloom_synced(&self) -> bool {
        self.priority().is_some_and(|p| p > SYNC_PRIORITY_THRESHOLD)
    }
}

/// Where a message goes when created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Destination {
    /// To peers named when creating it.
    Candidate,
    /// To up to `node_count` random verified peers of the community (plus any named).
    Community {
        /// How many random peers receive it on creation.
        node_count: usize,
    },
}

/// Builds the wire layout from policies.
pub fn layout(
    authentication: Authentication,
    resolution: &Resolution,
    distribution: &Distribution,
) -> Layout {
    Layout {
        authentication: authentication.layout(),
        dynamic_resolution: resolution.is_dynamic(),
        sequence_number: distribution.has_sequence_numbers(),
    }
}
