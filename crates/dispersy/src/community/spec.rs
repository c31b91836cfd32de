//! Declarative communities: a community described in TOML, for applications that do not write
//! Rust and drive the daemon over its REST API.
//!
//! ```toml
//! name = "microblog"              # the community type's name
//! master-key = "4c69624e..."      # the master's public key blob (hex), or instead:
//! # community = "9e1c...40 hex"   # only the id; the key is fetched from peers when needed
//! version = 2                     # 2 = py-ipv8 (default); 1 = original Dispersy
//!
//! [[message]]
//! name = "post"
//! byte = 1
//! authentication = "member"       # none | member | member-id | double-member | double-member-id
//! resolution = "public"           # public | linear | dynamic
//! distribution = "full-sync"      # direct | full-sync | last-sync
//! sequence-numbers = true         # full-sync only
//! direction = "ascending"         # ascending | descending | random
//! priority = 128
//! destination = "community"       # candidate | community
//! node-count = 10
//! payload = "text"                # raw | raw-text | bytes | text | empty
//! undoable = true
//! ```
//!
//! `last-sync` takes `history = N`; full sync takes `pruning = { inactive = 10, prune = 20 }`;
//! dynamic resolution switches between public (default) and linear.
//!
//! With byte 1, `member` authentication, `direct` or synced distribution and `bytes`/`text`
//! payload, a declared community exchanges messages with a py-ipv8 community whose message is
//! `GlobalTimeDistributionPayload` + `varlenH`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::payload::Layout;
use super::policy::{
    Authentication, Destination, Direction, Distribution, Pruning, Resolution, ResolutionPolicy,
};
use super::{Definition, DefinitionBuilder, DefinitionError, MetaMessage, Settings};
use crate::crypto::PublicKey;
use crate::ids::CommunityId;
use crate::wire::KeyEncoding;

/// A community description as written in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CommunitySpec {
    /// The community type's name.
    pub name: String,
    /// The master's public key blob, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key: Option<String>,
    /// The community id, hex (when the master key is not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// Community version byte.
    #[serde(default = "default_version")]
    pub version: u8,
    /// Acceptable global-time lead (default 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptable_global_time_range: Option<u64>,
    /// Meta-messages.
    #[serde(default, rename = "message")]
    pub messages: Vec<MessageSpec>,
}

fn default_version() -> u8 {
    super::DEFAULT_VERSION
}

/// One meta-message in a [`CommunitySpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MessageSpec {
    /// Unique name.
    pub name: String,
    /// Message byte (0-230).
    pub byte: u8,
    /// `none`, `member`, `member-id`, `double-member`, `double-member-id`.
    #[serde(default = "default_authentication")]
    pub authentication: String,
    /// `public`, `linear`, `dynamic`.
    #[serde(default = "default_resolution")]
    pub resolution: String,
    /// `direct`, `full-sync`, `last-sync`.
    #[serde(default = "default_distribution")]
    pub distribution: String,
    /// Full sync: number each author's messages.
    #[serde(default)]
    pub sequence_numbers: bool,
    /// Sync direction.
    #[serde(default)]
    pub direction: Direction,
    /// Sync priority.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Last sync: messages kept per author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<u16>,
    /// Full sync: global-time pruning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<Pruning>,
    /// `candidate` or `community`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Community destination: peers that get a new message at once.
    #[serde(default = "default_node_count")]
    pub node_count: usize,
    /// Payload layout.
    #[serde(default = "default_payload")]
    pub payload: Layout,
    /// Whether messages can be undone.
    #[serde(default)]
    pub undoable: bool,
}

fn default_authentication() -> String {
    "member".into()
}
fn default_resolution() -> String {
    "public".into()
}
fn default_distribution() -> String {
    "full-sync".into()
}
fn default_priority() -> u8 {
    128
}
fn default_node_count() -> usize {
    10
}
fn default_payload() -> Layout {
    Layout::Text
}

fn spec_err(msg: impl Into<String>) -> DefinitionError {
    DefinitionError::Spec(msg.into())
}

impl CommunitySpec {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<CommunitySpec, DefinitionError> {
        toml::from_str(text).map_err(|e| spec_err(format!("invalid community description: {e}")))
    }

    /// Renders as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The community id this spec names.
    pub fn community_id(&self) -> Result<CommunityId, DefinitionError> {
        Ok(self.builder()?.master.community_id())
    }

    fn builder(&self) -> Result<DefinitionBuilder, DefinitionError> {
        let builder = match (&self.master_key, &self.community) {
            (Some(k), id) => {
                let bin =
                    hex::decode(k.trim()).map_err(|_| spec_err("master-key: not hexadecimal"))?;
                let key =
                    PublicKey::from_bin(&bin).map_err(|e| spec_err(format!("master-key: {e}")))?;
                if let Some(id) = id
                    && id.trim() != key.community_id().to_hex()
                {
                    return Err(spec_err("community id does not match the master key"));
                }
                Definition::builder(key)
            }
            (None, Some(id)) => {
                let id: CommunityId = id
                    .parse()
                    .map_err(|e| spec_err(format!("community: {e}")))?;
                Definition::builder_for_id(id)
            }
            (None, None) => return Err(spec_err("give master-key or community")),
        };
        let mut settings = Settings::default();
        if let Some(r) = self.acceptable_global_time_range {
            settings.acceptable_global_time_range = r;
        }
        Ok(builder
            .version(self.version)
            .kind(self.name.clone())
            .settings(settings))
    }

    /// Builds the community definition.
    pub fn to_definition(&self) -> Result<Definition, DefinitionError> {
        let mut builder = self.builder()?;
        for m in &self.messages {
            builder = builder.meta(m.to_meta()?);
        }
        builder.build()
    }
}

impl MessageSpec {
    fn to_meta(&self) -> Result<MetaMessage, DefinitionError> {
        let err = |field: &str, value: &str| {
            spec_err(format!(
                "message {:?}: unknown {field} {value:?}",
                self.name
            ))
        };
        let authentication = match self.authentication.as_str() {
            "none" => Authentication::None,
            "member" => Authentication::Member {
                encoding: KeyEncoding::PublicKey,
            },
            "member-id" => Authentication::Member {
                encoding: KeyEncoding::MemberId,
            },
            "double-member" => Authentication::DoubleMember {
                encoding: KeyEncoding::PublicKey,
            },
            "double-member-id" => Authentication::DoubleMember {
                encoding: KeyEncoding::MemberId,
            },
            other => return Err(err("authentication", other)),
        };
        let resolution = match self.resolution.as_str() {
            "public" => Resolution::Public,
            "linear" => Resolution::Linear,
            "dynamic" => Resolution::Dynamic {
                policies: vec![ResolutionPolicy::Public, ResolutionPolicy::Linear],
            },
            other => return Err(err("resolution", other)),
        };
        let distribution = match self.distribution.as_str() {
            "direct" => Distribution::Direct,
            "full-sync" => Distribution::FullSync {
                sequence_numbers: self.sequence_numbers,
                direction: self.direction,
                priority: self.priority,
                pruning: self.pruning,
            },
            "last-sync" => Distribution::LastSync {
                history: self.history.ok_or_else(|| {
                    spec_err(format!("message {:?}: last-sync needs history", self.name))
                })?,
                direction: self.direction,
                priority: self.priority,
            },
            other => return Err(err("distribution", other)),
        };
        let destination = match self.destination.as_deref() {
            None if distribution == Distribution::Direct => Destination::Candidate,
            None | Some("community") => Destination::Community {
                node_count: self.node_count,
            },
            Some("candidate") => Destination::Candidate,
            Some(other) => return Err(err("destination", other)),
        };
        let meta = MetaMessage {
            name: self.name.clone(),
            id: crate::ids::MetaId(self.byte),
            authentication,
            resolution,
            distribution,
            destination,
            payload: Arc::new(self.payload),
            undoable: self.undoable,
        };
        meta.validate()?;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use crate::ids::MetaId;
    use rand::SeedableRng;

    #[test]
    fn parses_and_builds() {
        let key = PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(3));
        let text = format!(
            r#"
name = "microblog"
master-key = "{}"

[[message]]
name = "post"
byte = 1
sequence-numbers = true
undoable = true

[[message]]
name = "profile"
byte = 2
distribution = "last-sync"
history = 1
payload = "bytes"

[[message]]
name = "chat"
byte = 3
distribution = "direct"
"#,
            hex::encode(key.public().to_bin())
        );
        let spec = CommunitySpec::from_toml(&text).unwrap();
        let def = spec.to_definition().unwrap();
        assert_eq!(def.id(), key.public().community_id());
        assert_eq!(def.kind(), "microblog");
        assert!(
            def.meta(MetaId(1))
                .unwrap()
                .distribution
                .has_sequence_numbers()
        );
        assert_eq!(
            def.meta(MetaId(3)).unwrap().destination,
            Destination::Candidate
        );
        let again = CommunitySpec::from_toml(&spec.to_toml()).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn clear_errors() {
        let id_only = "name = \"x\"\ncommunity = \"00112233445566778899aabbccddeeff00112233\"";
        let def = CommunitySpec::from_toml(id_only)
            .unwrap()
            .to_definition()
            .unwrap();
        assert!(def.master().key().is_none());
        for (text, needle) in [
            ("name = \"x\"", "master-key or community"),
            ("name = \"x\"\ncommunity = \"zz\"", "community"),
            (
                "name = \"x\"\ncommunity = \"00112233445566778899aabbccddeeff00112233\"\n[[message]]\nname=\"a\"\nbyte=1\ndistribution=\"weird\"",
                "unknown distribution",
            ),
            (
                "name = \"x\"\ncommunity = \"00112233445566778899aabbccddeeff00112233\"\n[[message]]\nname=\"a\"\nbyte=1\ndistribution=\"last-sync\"",
                "needs history",
            ),
            ("name = 5", "invalid community description"),
            ("name = \"x\"\nbogus = 1", "invalid community description"),
        ] {
            let err = CommunitySpec::from_toml(text)
                .and_then(|s| s.to_definition())
                .unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }
}
