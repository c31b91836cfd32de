//! Communities: a master key, a version, and the meta-messages its members exchange.
//!
//! A [`Definition`] is what a community *is*; the node keeps the running state (clock,
//! candidates, timeline, sync) separately. Defining a community type takes a page of code:
//!
//! ```
//! use dispersy::community::{Definition, MetaMessage};
//! use dispersy::community::payload::Layout;
//! use dispersy::crypto::PrivateKey;
//! use std::sync::Arc;
//!
//! # let mut rng = rand::thread_rng();
//! let master = PrivateKey::generate(&mut rng);
//! let def = Definition::builder(master.public().clone())
//!     .kind("chat")
//!     .meta(MetaMessage::new(1, "text").sequenced().payload_schema(Arc::new(Layout::Text)))
//!     .build()
//!     .unwrap();
//! assert_eq!(def.id(), master.public().community_id());
//! ```
//!
//! Communities can also be described in TOML ([`spec`]), which is how the daemon hosts
//! communities for applications that do not link the library.

pub mod meta;
pub mod payload;
pub mod policy;
pub mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use meta::{DefinitionError, MAX_APPLICATION_BYTE, MetaMessage, builtin_metas};

use crate::crypto::PublicKey;
use crate::ids::{CommunityId, MetaId};
use crate::wire::{Prefix, builtin};

/// The community version py-ipv8 uses; our default.
pub const DEFAULT_VERSION: u8 = 2;

/// How a community's master is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// The master's public key (its member id is the community id).
    Key(PublicKey),
    /// Only the community id; the node fetches the master's key from peers when it needs it.
    Id(CommunityId),
}

impl Master {
    /// The community id.
    pub fn community_id(&self) -> CommunityId {
        match self {
            Master::Key(k) => k.community_id(),
            Master::Id(id) => *id,
        }
    }

    /// The key, if known.
    pub fn key(&self) -> Option<&PublicKey> {
        match self {
            Master::Key(k) => Some(k),
            Master::Id(_) => None,
        }
    }
}

/// Tunables of one community, with Dispersy's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How far ahead of the median peer global time a message may be (Dispersy: 10,000).
    pub acceptable_global_time_range: u64,
    /// Whether Bloom-filter sync runs in this community.
    pub bloom_sync: bool,
    /// Whether this node walks in this community (trackers answer but do not walk).
    pub walker: bool,
    /// Byte budget of one sync response (Dispersy: 5 KiB).
    pub sync_response_limit: usize,
    /// Byte budget of one missing-sequence response (Dispersy: 10 KiB).
    pub missing_sequence_response_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            acceptable_global_time_range: 10_000,
            bloom_sync: true,
            walker: true,
            sync_response_limit: 5 * 1024,
            missing_sequence_response_limit: 10 * 1024,
        }
    }
}

/// A community type: master, version, meta-messages (built-ins included) and settings.
#[derive(Debug, Clone)]
pub struct Definition {
    master: Master,
    version: u8,
    kind: String,
    metas: BTreeMap<MetaId, Arc<MetaMessage>>,
    settings: Settings,
}

impl Definition {
    /// Starts a definition for the community of this master key.
    pub fn builder(master: PublicKey) -> DefinitionBuilder {
        DefinitionBuilder::new(Master::Key(master))
    }

    /// Starts a definition for a community known only by id.
    pub fn builder_for_id(id: CommunityId) -> DefinitionBuilder {
        DefinitionBuilder::new(Master::Id(id))
    }

    /// The community id.
    pub fn id(&self) -> CommunityId {
        self.master.community_id()
    }

    /// The master.
    pub fn master(&self) -> &Master {
        &self.master
    }

    /// A copy with the master key filled in (after fetching it from a peer). The key must match
    /// the community id.
    pub fn with_master_key(&self, key: PublicKey) -> Option<Definition> {
        (key.community_id() == self.id()).then(|| Definition {
            master: Master::Key(key),
            ..self.clone()
        })
    }

    /// The community version byte.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The community type's name.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The 22-byte routing prefix.
    pub fn prefix(&self) -> Prefix {
        Prefix {
            community_version: self.version,
            community: self.id(),
        }
    }

    /// A meta-message by byte (application or built-in synced ones).
    pub fn meta(&self, id: MetaId) -> Option<&Arc<MetaMessage>> {
        self.metas.get(&id)
    }

    /// A meta-message by name.
    pub fn meta_by_name(&self, name: &str) -> Option<&Arc<MetaMessage>> {
        self.metas.values().find(|m| m.name == name)
    }

    /// Every meta-message, by byte.
    pub fn metas(&self) -> impl Iterator<Item = &Arc<MetaMessage>> {
        self.metas.values()
    }

    /// The application's own meta-messages (bytes 0-230).
    pub fn application_metas(&self) -> impl Iterator<Item = &Arc<MetaMessage>> {
        self.metas
            .values()
            .filter(|m| m.id.0 <= MAX_APPLICATION_BYTE)
    }

    /// Meta-messages offered in Bloom-filter sync (synced, priority above the threshold).
    pub fn bloom_synced_metas(&self) -> Vec<MetaId> {
        self.metas
            .values()
            .filter(|m| m.distribution.is_bloom_synced())
            .map(|m| m.id)
            .collect()
    }
}

/// Builds a [`Definition`]; see the module example.
#[derive(Debug)]
pub struct DefinitionBuilder {
    master: Master,
    version: u8,
    kind: String,
    metas: Vec<MetaMessage>,
    settings: Settings,
}

impl DefinitionBuilder {
    fn new(master: Master) -> DefinitionBuilder {
        DefinitionBuilder {
            master,
            version: DEFAULT_VERSION,
            kind: "community".into(),
            metas: Vec::new(),
            settings: Settings::default(),
        }
    }

    /// The community version byte (default 2, py-ipv8's; Dispersy used 1).
    #[must_use]
    pub fn version(mut self, v: u8) -> Self {
        self.version = v;
        self
    }

    /// The community type's name.
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Adds a meta-message.
    #[must_use]
    pub fn meta(mut self, meta: MetaMessage) -> Self {
        self.metas.push(meta);
        self
    }

    /// Replaces the settings.
    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Definition, DefinitionError> {
        let mut metas = BTreeMap::new();
        let mut names = std::collections::BTreeSet::new();
        for m in self.metas {
            if m.id.0 > MAX_APPLICATION_BYTE {
                return Err(DefinitionError::ReservedByte {
                    name: m.name,
                    byte: m.id.0,
                });
            }
            if m.name.starts_with("dispersy-") {
                return Err(DefinitionError::ReservedName(m.name));
            }
            m.validate()?;
            if !names.insert(m.name.clone()) {
                return Err(DefinitionError::Duplicate {
                    name: m.name,
                    reason: "name taken",
                });
            }
            let (id, name) = (m.id, m.name.clone());
            if metas.insert(id, Arc::new(m)).is_some() {
                return Err(DefinitionError::Duplicate {
                    name,
                    reason: "byte taken",
                });
            }
        }
        for m in builtin_metas(self.version) {
            debug_assert!(builtin::name(m.id.0).is_some());
            metas.insert(m.id, Arc::new(m));
        }
        Ok(Definition {
            master: self.master,
            version: self.version,
            kind: self.kind,
            metas,
            settings: self.settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use rand::SeedableRng;

    fn key() -> PublicKey {
        PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1))
            .public()
            .clone()
    }

    #[test]
    fn builder_validates() {
        let def = Definition::builder(key())
            .meta(MetaMessage::new(1, "a"))
            .build()
            .unwrap();
        assert!(def.meta(MetaId(1)).is_some());
        assert!(def.meta(MetaId(builtin::byte::AUTHORIZE)).is_some());
        assert!(def.bloom_synced_metas().contains(&MetaId(1)));
        assert!(
            !def.bloom_synced_metas()
                .contains(&MetaId(builtin::byte::IDENTITY))
        );
        let dup = Definition::builder(key())
            .meta(MetaMessage::new(1, "a"))
            .meta(MetaMessage::new(1, "b"))
            .build();
        assert!(matches!(dup, Err(DefinitionError::Duplicate { .. })));
        let reserved = Definition::builder(key())
            .meta(MetaMessage::new(240, "x"))
            .build();
        assert!(matches!(
            reserved,
            Err(DefinitionError::ReservedByte { .. })
        ));
        assert!(
            Definition::builder(key())
                .meta(MetaMessage::new(2, "dispersy-x"))
                .build()
                .is_err()
        );
    }
}
