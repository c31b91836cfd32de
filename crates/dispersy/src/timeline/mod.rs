//! The permission Timeline: who may create which message at which global time.
//!
//! A [`Timeline`] holds the permission messages of one community (authorize, revoke,
//! dynamic-settings, destroy-community; never content) and answers, for any global time, whether
//! a member holds a permission, which resolution policy a dynamic meta-message has, and which
//! messages prove it. It is a pure data structure: no I/O, no clock, no randomness, and every
//! answer is a function of the SET of messages it holds, whatever order they were inserted in.
//! `docs/permissions.md` explains the model in prose, with the differences from Dispersy.
//!
//! # Rules
//!
//! * The community's master member holds every permission on every meta-message, with no proof.
//!   Nothing revokes it.
//! * Each member holds, per meta-message, four permission bits ([`Permissions`]): `permit`
//!   (create messages of a linear meta-message), `authorize`, `revoke`, `undo` (undo-other).
//! * An authorize or revoke message at global time `t` is **effective** iff its author holds
//!   `authorize` (resp. `revoke`) on EVERY meta-message it names, as of `t - 1`. An effective
//!   authorize sets the bits it names from `t` on; an effective revoke clears them from `t` on.
//!   Ineffective messages have no effect at all.
//! * A member holds a bit at `t` iff the latest effective authorize or revoke naming it with
//!   global time `<= t` is an authorize. At one global time, a revoke beats an authorize.
//! * Dynamic-settings and destroy-community are linear: effective iff the author holds `permit`
//!   on `dispersy-dynamic-settings` (resp. `dispersy-destroy-community`) at their own `t`.
//! * Linear meta-message: a message by `X` at `t` is allowed iff `X` holds `permit` at `t`.
//!   Public: always. Dynamic: the policy index at `t` is the one set by the latest effective
//!   dynamic-settings with global time strictly below `t` (the greatest `(tiebreak, id)` among
//!   several at that global time, see [`Tiebreak`]), index 0 if there is none.
//! * Undo-other of a target of meta-message `M` at `t` by `X` needs `undo` on `M` at `t`.
//! * The community is destroyed once an effective destroy-community is held; when several are,
//!   [`Timeline::destruction`] reports a hard one before a soft one, then the lowest
//!   `(global time, tiebreak)`.
//!
//! Judging authorize and revoke by holdings strictly before their own global time (Dispersy
//! looks up `<= t`) means messages at the same global time never empower one another, so there
//! are no cycles and no self-empowering messages, and no tiebreak is needed to decide
//! effectiveness. An honest author never needs more: a member creates a message at a global time
//! above every message it has seen, including the authorize that empowered it.
//!
//! # Use in the message pipeline
//!
//! ```text
//! on a stored-distribution message (after signature and distribution checks):
//!   authorize / revoke / dynamic-settings / destroy-community:
//!       m = PermissionMessage::from_builtin(id, Tiebreak::of_packet(packet), &payload)
//!       verdict = timeline.judge(&m)?            // Err: malformed, drop and count
//!       if !verdict.allowed: delay by proof, send missing-proof(author, t); do not store
//!       else: store the packet; delta = timeline.insert(m)?; re-check (below)
//!   undo-other of a target of meta M:  timeline.check_undo_other(author, M, t)
//!   any other message of meta M:        timeline.check_message(author, M, t)?
//!       (double-signed: every signer must pass)
//!       not allowed: delay by proof (send missing-proof, and for a dynamic meta push
//!       verdict.proof chain to the sender)
//!
//! after insert/remove, with delta:
//!   delta.effective or delta.became_effective non-empty
//!                            -> retry messages delayed by proof
//!   delta.became_ineffective -> mark stored permission messages ineffective (see below)
//!   delta.recheck_messages() -> per meta M, re-check stored messages of M in the range:
//!                               newly denied ones are undone, allowed-but-undone ones whose
//!                               undo came from this re-check are redone (never those undone by
//!                               an undo message: Dispersy's W4)
//!   delta.recheck_undo_other() -> per target meta, re-check stored undo-other messages
//!   delta.destruction_changed -> consult timeline.destruction()
//!
//! on missing-proof(member, t) for a stored message P:
//!   permission message: timeline.proof_chain([P's id]) minus P itself
//!   other message:      timeline.proof_chain(verdict.proof) of its check
//! on a hard destroy-community D:  keep timeline.proof_chain([D]) and their authors' identities
//! on start-up: insert every stored permission message, in any order
//! ```
//!
//! **Stored permission messages that are not effective.** The acceptance rule is the effect
//! rule ([`Timeline::judge`] is exactly what [`Timeline::insert`] applies): a message that is not
//! effective on arrival is not stored (it waits for its proof). A stored message that stops
//! being effective later (a late revoke with a lower global time arrived) stays stored and stays
//! in the timeline, inert; it becomes effective again by itself if the revoke is ever undone
//! (for instance because the revoke's own author turns out to have lost `revoke`). While
//! ineffective it should not be offered in sync or proofs, since its receivers would refuse it.
//!
//! # Order independence
//!
//! Every query reads indexes built only from the effective messages, and effectiveness is the
//! unique solution of the [rules](self#rules), evaluated in `(global time, stratum)` order. Ties
//! are broken only by data carried in the messages: revoke beats authorize at the same global
//! time; among dynamic-settings at the same global time the greatest `(tiebreak, message id)`
//! wins; proofs list every deciding message, sorted by `(global time, member)`. The property
//! tests insert random sets in random orders, remove some again, and compare every answer with
//! a timeline built from the remaining set and with a naive reference that recomputes
//! everything.
//!
//! # Cost and bounds
//!
//! Queries are `O(b · log n)` (`b` permission bits asked, `n` messages held); `proof_chain` is
//! linear in the chain. Insert and remove re-evaluate only the messages woken by a holding
//! change (see [`Timeline::insert`]): usually none, and for a late revoke that cuts a chain of
//! `k` delegated authorizes, `O(k · e · log n)`. Measured (release build, 10,100 messages: 100
//! moderators each delegating `permit` to 100 members): 5-10 µs per insert in either order,
//! under 1 µs per `check_message`, about 0.3 ms for a late revoke that disables 100 messages.
//!
//! Memory is bounded by [`Config::max_messages`] messages, [`Config::max_entries`] entries per
//! message and [`Config::max_total_entries`] entries in all; past a cap [`Timeline::insert`]
//! refuses with [`Error::Full`]. Measured: about 0.6 KiB per single-grant message and 0.3 KiB
//! per further entry, so a few hundred permission messages take a few hundred KiB and the
//! default caps allow about 25 MiB.

mod delta;
mod engine;
mod index;
mod message;
mod query;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use delta::{Delta, GtRange, HoldingChange, PolicyChange};
pub use message::{Grant, Kind, PermissionMessage, Tiebreak};
pub use query::{ActivePolicy, Destruction, Stats, Verdict};

use index::{HoldKey, Holdings, Policies};

use crate::community::policy::{Resolution, ResolutionPolicy};
use crate::ids::{GlobalTime, MemberId, MessageId, MetaId};
use crate::wire::builtin::{DestroyKind, byte};

#[cfg(doc)]
use crate::wire::builtin::Permissions;

/// Why the timeline refused a message or a meta-message table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A message with this id is already held.
    #[error("message {0:?} is already in the timeline")]
    Duplicate(MessageId),
    /// Stored messages never carry global time 0.
    #[error("permission message at global time 0")]
    ZeroGlobalTime,
    /// An authorize, revoke or dynamic-settings without entries.
    #[error("permission message without entries")]
    Empty,
    /// Permission bits outside `0x0f`, or none.
    #[error("permission bits {0:#04x} are not a non-empty subset of 0x0f")]
    BadPermissions(u8),
    /// The community has no such meta-message (or permissions on it mean nothing).
    #[error("unknown meta-message {0}")]
    UnknownMeta(MetaId),
    /// A dynamic-settings names a meta-message without dynamic resolution.
    #[error("meta-message {0} has no dynamic resolution")]
    NotDynamic(MetaId),
    /// A dynamic-settings names a policy the meta-message does not have.
    #[error("policy index {index} out of range for meta-message {meta} ({count} policies)")]
    PolicyIndex {
        /// The meta-message.
        meta: MetaId,
        /// The index asked for.
        index: u8,
        /// How many policies it has.
        count: usize,
    },
    /// A dynamic-settings sets two different policies for one meta-message.
    #[error("contradictory settings for meta-message {0}")]
    ContradictorySettings(MetaId),
    /// More entries in one message than [`Config::max_entries`].
    #[error("{entries} entries in one message, at most {max} allowed")]
    TooManyEntries {
        /// Entries in the message.
        entries: usize,
        /// The cap.
        max: usize,
    },
    /// Holding the message would pass [`Config::max_messages`] or
    /// [`Config::max_total_entries`].
    #[error("timeline full (at most {max_messages} messages, {max_total_entries} entries)")]
    Full {
        /// The message cap.
        max_messages: usize,
        /// The entry cap.
        max_total_entries: usize,
    },
    /// A community meta-message uses the byte of a built-in message.
    #[error("meta-message {0} is a built-in message byte")]
    ReservedMeta(MetaId),
    /// A dynamic resolution without policies, or with more than 255.
    #[error("meta-message {0} has a dynamic resolution with no policies or more than 255")]
    BadResolution(MetaId),
}

/// Bounds of one timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most permission messages held; more are refused with [`Error::Full`].
    pub max_messages: usize,
    /// Most entries (grants or settings) over all messages held; more are refused with
    /// [`Error::Full`]. Memory grows with entries, not messages.
    pub max_total_entries: usize,
    /// Most entries (grants or settings) in one message; more are refused with
    /// [`Error::TooManyEntries`]. A 1,500-byte authorize carries at most about 700.
    pub max_entries: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_messages: 16_384,
            max_total_entries: 65_536,
            max_entries: 1_024,
        }
    }
}

/// A held message and whether it is effective.
#[derive(Debug, Clone)]
struct Stored {
    message: PermissionMessage,
    effective: bool,
}

/// An effective destroy-community, ordered as [`Timeline::destruction`] prefers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DestroyEntry {
    soft: bool,
    global_time: GlobalTime,
    tiebreak: Tiebreak,
    id: MessageId,
}

impl DestroyEntry {
    fn new(kind: DestroyKind, global_time: GlobalTime, tiebreak: Tiebreak, id: MessageId) -> Self {
        DestroyEntry {
            soft: kind == DestroyKind::Soft,
            global_time,
            tiebreak,
            id,
        }
    }
}

/// The permission timeline of one community. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Timeline {
    master: MemberId,
    config: Config,
    /// Community meta-messages plus the two linear built-ins.
    metas: BTreeMap<MetaId, Resolution>,
    messages: BTreeMap<MessageId, Stored>,
    /// (holding, judged-at global time, message) for every non-master message whose
    /// effectiveness depends on that holding.
    dependents: BTreeSet<(HoldKey, GlobalTime, MessageId)>,
    holdings: Holdings,
    policies: Policies,
    destroys: BTreeSet<DestroyEntry>,
    effective: usize,
    /// Entries over all messages held.
    entries: usize,
}

impl Timeline {
    /// An empty timeline for a community with this master member and these meta-messages (the
    /// community's own, not the built-ins; dynamic-settings and destroy-community are added as
    /// linear meta-messages).
    pub fn new(
        master: MemberId,
        metas: impl IntoIterator<Item = (MetaId, Resolution)>,
        config: Config,
    ) -> Result<Timeline, Error> {
        let mut table = BTreeMap::new();
        for (meta, resolution) in metas {
            if crate::wire::builtin::name(meta.0).is_some() {
                return Err(Error::ReservedMeta(meta));
            }
            if let Resolution::Dynamic { policies } = &resolution
                && (policies.is_empty() || policies.len() > usize::from(u8::MAX))
            {
                return Err(Error::BadResolution(meta));
            }
            table.insert(meta, resolution);
        }
        table.insert(MetaId(byte::DYNAMIC_SETTINGS), Resolution::Linear);
        table.insert(MetaId(byte::DESTROY_COMMUNITY), Resolution::Linear);
        Ok(Timeline {
            master,
            config,
            metas: table,
            messages: BTreeMap::new(),
            dependents: BTreeSet::new(),
            holdings: Holdings::default(),
            policies: Policies::default(),
            destroys: BTreeSet::new(),
            effective: 0,
            entries: 0,
        })
    }

    /// The community's master member.
    pub fn master(&self) -> MemberId {
        self.master
    }

    /// The bounds.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The resolution of a meta-message the timeline knows.
    pub fn resolution(&self, meta: MetaId) -> Option<&Resolution> {
        self.metas.get(&meta)
    }

    /// Number of messages held, effective or not.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// A held message (in canonical form) and whether it is effective.
    pub fn get(&self, id: &MessageId) -> Option<(&PermissionMessage, bool)> {
        self.messages.get(id).map(|s| (&s.message, s.effective))
    }

    /// Whether a held message is effective; `None` when it is not held.
    pub fn is_effective(&self, id: &MessageId) -> Option<bool> {
        self.messages.get(id).map(|s| s.effective)
    }

    /// Every held message with its effectiveness, by message id.
    pub fn messages(&self) -> impl Iterator<Item = (&PermissionMessage, bool)> + '_ {
        self.messages.values().map(|s| (&s.message, s.effective))
    }

    /// `None`: unknown; `Some(0)`: not dynamic; `Some(n)`: `n` dynamic policies.
    fn resolution_count(&self, meta: MetaId) -> Option<usize> {
        self.metas.get(&meta).map(|r| match r {
            Resolution::Dynamic { policies } => policies.len(),
            Resolution::Public | Resolution::Linear => 0,
        })
    }

    fn dynamic_policy(&self, meta: MetaId, index: u8) -> Option<ResolutionPolicy> {
        match self.metas.get(&meta)? {
            Resolution::Dynamic { policies } => policies.get(usize::from(index)).copied(),
            Resolution::Public | Resolution::Linear => None,
        }
    }
}
