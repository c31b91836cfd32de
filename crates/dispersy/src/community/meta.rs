//! Meta-messages: the kinds of message a community exchanges, each with its policies.

use std::fmt;
use std::sync::Arc;

use super::payload::{Layout as PayloadLayout, Payload, PayloadSchema, Typed};
use super::policy::{
    Authentication, Destination, Direction, Distribution, Pruning, Resolution, ResolutionPolicy,
};
use crate::ids::MetaId;
use crate::wire::builtin::{self, byte};
use crate::wire::{self, KeyEncoding};

/// Highest message byte an application may use (231-255 belong to Dispersy and py-ipv8).
pub const MAX_APPLICATION_BYTE: u8 = 230;

/// One kind of message: a name, a message byte, its four policies and its payload.
#[derive(Clone)]
pub struct MetaMessage {
    /// Unique name within the community (`dispersy-` names are reserved).
    pub name: String,
    /// The message byte.
    pub id: MetaId,
    /// Who signs it.
    pub authentication: Authentication,
    /// Who may create it.
    pub resolution: Resolution,
    /// How it spreads and is kept.
    pub distribution: Distribution,
    /// Where it goes on creation.
    pub destination: Destination,
    /// What its payload looks like.
    pub payload: Arc<dyn PayloadSchema>,
    /// Whether its messages can be undone (Dispersy's "undo callback").
    pub undoable: bool,
}

impl fmt::Debug for MetaMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaMessage")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("authentication", &self.authentication)
            .field("resolution", &self.resolution)
            .field("distribution", &self.distribution)
            .field("destination", &self.destination)
            .field("payload", &self.payload)
            .field("undoable", &self.undoable)
            .finish()
    }
}

/// Why a meta-message (or a community definition) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// A policy combination Dispersy does not allow.
    #[error("message {name:?}: {reason}")]
    Policy {
        /// The meta-message.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two meta-messages share a byte or a name.
    #[error("message {name:?}: {reason}")]
    Duplicate {
        /// The meta-message.
        name: String,
        /// Which of byte or name is taken.
        reason: &'static str,
    },
    /// A byte reserved for built-in messages.
    #[error("message {name:?}: byte {byte} is reserved (applications use 0-230)")]
    ReservedByte {
        /// The meta-message.
        name: String,
        /// The byte.
        byte: u8,
    },
    /// A name starting with `dispersy-`.
    #[error("message {0:?}: names starting with \"dispersy-\" are reserved")]
    ReservedName(String),
    /// Something else in a declarative description.
    #[error("{0}")]
    Spec(String),
}

impl MetaMessage {
    /// A meta-message with defaults: member authentication by full key, public resolution, full
    /// sync (ascending, priority 128, no sequence numbers), sent to 10 peers on creation, raw
    /// payload, not undoable. Adjust with the builder methods.
    pub fn new(id: u8, name: impl Into<String>) -> MetaMessage {
        MetaMessage {
            name: name.into(),
            id: MetaId(id),
            authentication: Authentication::Member {
                encoding: KeyEncoding::PublicKey,
            },
            resolution: Resolution::Public,
            distribution: Distribution::FullSync {
                sequence_numbers: false,
                direction: Direction::Ascending,
                priority: 128,
                pruning: None,
            },
            destination: Destination::Community { node_count: 10 },
            payload: Arc::new(PayloadLayout::Raw),
            undoable: false,
        }
    }

    /// Sets the authentication policy.
    #[must_use]
    pub fn authentication(mut self, a: Authentication) -> Self {
        self.authentication = a;
        self
    }

    /// Sets the resolution policy.
    #[must_use]
    pub fn resolution(mut self, r: Resolution) -> Self {
        self.resolution = r;
        self
    }

    /// Linear resolution: only members holding `permit` may create it.
    #[must_use]
    pub fn linear(self) -> Self {
        self.resolution(Resolution::Linear)
    }

    /// Dynamic resolution between public (the default) and linear.
    #[must_use]
    pub fn dynamic(self) -> Self {
        self.resolution(Resolution::Dynamic {
            policies: vec![ResolutionPolicy::Public, ResolutionPolicy::Linear],
        })
    }

    /// Sets the distribution policy.
    #[must_use]
    pub fn distribution(mut self, d: Distribution) -> Self {
        self.distribution = d;
        self
    }

    /// Direct distribution to the given peers only (candidate destination).
    #[must_use]
    pub fn direct(mut self) -> Self {
        self.distribution = Distribution::Direct;
        self.destination = Destination::Candidate;
        self
    }

    /// Full sync with sequence numbers.
    #[must_use]
    pub fn sequenced(mut self) -> Self {
        if let Distribution::FullSync {
            sequence_numbers, ..
        } = &mut self.distribution
        {
            *sequence_numbers = true;
        }
        self
    }

    /// Full sync with global-time pruning.
    #[must_use]
    pub fn pruned(mut self, inactive: u64, prune: u64) -> Self {
        if let Distribution::FullSync { pruning, .. } = &mut self.distribution {
            *pruning = Some(Pruning { inactive, prune });
        }
        self
    }

    /// Last sync keeping each author's newest `history` messages.
    #[must_use]
    pub fn last_sync(mut self, history: u16) -> Self {
        let (direction, priority) = (
            self.distribution.direction().unwrap_or_default(),
            self.distribution.priority().unwrap_or(128),
        );
        self.distribution = Distribution::LastSync {
            history,
            direction,
            priority,
        };
        self
    }

    /// Sets the sync priority (synced distributions).
    #[must_use]
    pub fn priority(mut self, p: u8) -> Self {
        match &mut self.distribution {
            Distribution::FullSync { priority, .. } | Distribution::LastSync { priority, .. } => {
                *priority = p;
            }
            Distribution::Direct => {}
        }
        self
    }

    /// Sets the sync direction (synced distributions).
    #[must_use]
    pub fn direction(mut self, d: Direction) -> Self {
        match &mut self.distribution {
            Distribution::FullSync { direction, .. } | Distribution::LastSync { direction, .. } => {
                *direction = d;
            }
            Distribution::Direct => {}
        }
        self
    }

    /// Sets the destination policy.
    #[must_use]
    pub fn destination(mut self, d: Destination) -> Self {
        self.destination = d;
        self
    }

    /// Sets a typed payload.
    #[must_use]
    pub fn payload<P: Payload>(mut self) -> Self {
        self.payload = Arc::new(Typed::<P>::new());
        self
    }

    /// Sets any payload schema (for example a declarative [`PayloadLayout`]).
    #[must_use]
    pub fn payload_schema(mut self, schema: Arc<dyn PayloadSchema>) -> Self {
        self.payload = schema;
        self
    }

    /// Lets messages of this kind be undone.
    #[must_use]
    pub fn undoable(mut self) -> Self {
        self.undoable = true;
        self
    }

    /// The packet layout of this meta-message.
    pub fn layout(&self) -> wire::Layout {
        super::policy::layout(self.authentication, &self.resolution, &self.distribution)
    }

    /// Whether messages are stored and synced.
    pub fn is_synced(&self) -> bool {
        self.distribution.is_synced()
    }

    /// Checks the policy combination (see [`super::policy`]).
    pub fn validate(&self) -> Result<(), DefinitionError> {
        let bad = |reason| {
            Err(DefinitionError::Policy {
                name: self.name.clone(),
                reason,
            })
        };
        let signed = self.authentication.is_signed();
        if !signed && !matches!(self.resolution, Resolution::Public) {
            return bad("linear and dynamic resolution need an author");
        }
        if !signed && self.distribution.is_synced() {
            return bad("synced distributions need an author");
        }
        if matches!(self.authentication, Authentication::DoubleMember { .. })
            && self.distribution.has_sequence_numbers()
        {
            return bad("double-member messages cannot have sequence numbers");
        }
        match (&self.distribution, &self.destination) {
            (Distribution::Direct, _) => {}
            (_, Destination::Community { .. }) => {}
            _ => return bad("synced distributions need the community destination"),
        }
        if let Distribution::LastSync { history: 0, .. } = self.distribution {
            return bad("last sync needs a history of at least 1");
        }
        if let Distribution::FullSync {
            pruning: Some(p), ..
        } = self.distribution
            && (p.inactive == 0 || p.prune <= p.inactive)
        {
            return bad("pruning needs 0 < inactive < prune");
        }
        if let Resolution::Dynamic { policies } = &self.resolution {
            if policies.is_empty() || policies.len() > 255 {
                return bad("dynamic resolution needs 1 to 255 policies");
            }
            if !self.undoable {
                return bad("dynamic resolution needs undoable messages (a change may undo them)");
            }
        }
        Ok(())
    }
}

/// The built-in synced meta-messages every community has (spec section 2.3), with the key
/// encoding the community version implies.
pub fn builtin_metas(community_version: u8) -> Vec<MetaMessage> {
    let member = Authentication::Member {
        encoding: KeyEncoding::default_for(community_version),
    };
    let full = |priority, direction, seq| Distribution::FullSync {
        sequence_numbers: seq,
        direction,
        priority,
        pruning: None,
    };
    let named = |b: u8| builtin::name(b).unwrap_or("dispersy-unknown").to_owned();
    let schema: Arc<dyn PayloadSchema> = Arc::new(BuiltinPayload);
    let meta = |b: u8, auth, resolution, distribution, node_count| MetaMessage {
        name: named(b),
        id: MetaId(b),
        authentication: auth,
        resolution,
        distribution,
        destination: Destination::Community { node_count },
        payload: schema.clone(),
        undoable: false,
    };
    vec![
        meta(
            byte::IDENTITY,
            Authentication::Member {
                encoding: KeyEncoding::PublicKey,
            },
            Resolution::Public,
            Distribution::LastSync {
                history: 1,
                direction: Direction::Ascending,
                priority: 16,
            },
            0,
        ),
        meta(
            byte::DESTROY_COMMUNITY,
            member,
            Resolution::Linear,
            full(192, Direction::Ascending, false),
            50,
        ),
        meta(
            byte::AUTHORIZE,
            member,
            Resolution::Public,
            full(128, Direction::Ascending, true),
            10,
        ),
        meta(
            byte::REVOKE,
            member,
            Resolution::Public,
            full(128, Direction::Ascending, true),
            10,
        ),
        meta(
            byte::UNDO_OWN,
            member,
            Resolution::Public,
            full(128, Direction::Ascending, true),
            10,
        ),
        meta(
            byte::UNDO_OTHER,
            member,
            Resolution::Linear,
            full(128, Direction::Ascending, true),
            10,
        ),
        meta(
            byte::DYNAMIC_SETTINGS,
            member,
            Resolution::Linear,
            full(191, Direction::Descending, true),
            10,
        ),
    ]
}

/// Validates built-in payloads by decoding them.
#[derive(Debug, Clone, Copy)]
struct BuiltinPayload;

impl PayloadSchema for BuiltinPayload {
    fn validate(&self, _payload: &[u8]) -> Result<(), wire::DecodeError> {
        // Built-in payloads are decoded (and so validated) by the node before any policy check,
        // because it needs their content; nothing is left to check here.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_combinations() {
        MetaMessage::new(1, "post").validate().unwrap();
        MetaMessage::new(1, "ping").direct().validate().unwrap();
        let none = Authentication::None;
        assert!(
            MetaMessage::new(1, "x")
                .authentication(none)
                .validate()
                .is_err()
        );
        assert!(
            MetaMessage::new(1, "x")
                .authentication(none)
                .direct()
                .linear()
                .validate()
                .is_err()
        );
        MetaMessage::new(1, "x")
            .authentication(none)
            .direct()
            .validate()
            .unwrap();
        let double = Authentication::DoubleMember {
            encoding: KeyEncoding::PublicKey,
        };
        assert!(
            MetaMessage::new(1, "x")
                .authentication(double)
                .sequenced()
                .validate()
                .is_err()
        );
        MetaMessage::new(1, "x")
            .authentication(double)
            .last_sync(1)
            .validate()
            .unwrap();
        assert!(
            MetaMessage::new(1, "x")
                .destination(Destination::Candidate)
                .validate()
                .is_err()
        );
        assert!(MetaMessage::new(1, "x").last_sync(0).validate().is_err());
        assert!(MetaMessage::new(1, "x").pruned(20, 10).validate().is_err());
        assert!(MetaMessage::new(1, "x").dynamic().validate().is_err());
        MetaMessage::new(1, "x")
            .dynamic()
            .undoable()
            .validate()
            .unwrap();
        for m in builtin_metas(2) {
            m.validate().unwrap();
        }
    }
}
