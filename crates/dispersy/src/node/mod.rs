//! The node: one socket's worth of protocol state, driven from outside.
//!
//! A [`Node`] owns our member key, the [`Store`], a key cache, and the running state of every
//! community it joined. It never performs I/O and never reads a clock. The driver feeds it
//! datagrams, timeouts and commands, each with `now`, and drains what it produced:
//!
//! ```text
//! loop {
//!     wait for: a datagram, node.poll_timeout(), or a command
//!     node.handle_datagrams(now, batch)   // or handle_timeout(now), or a command method
//!     while let Some(t) = node.poll_transmit() { send t }
//!     while let Some(e) = node.poll_event()    { deliver e }
//! }
//! ```
//!
//! **Drain everything after every input before waiting again**; `poll_timeout` is only
//! meaningful after draining. Feeding a burst of datagrams in one `handle_datagrams` call lets
//! the node verify their signatures in one batch and commit the store once.
//!
//! Incoming messages go through one pipeline (module `pipeline`): route by the 22-byte prefix,
//! parse by the meta-message's layout, verify signatures (in batches), check policies (global
//! time, duplicates and conflicts, sequence numbers, last-sync history, permissions), store,
//! deliver, and wake messages that waited for this one. What cannot be checked yet waits in a
//! bounded delay queue while the node asks the sender for what is missing.

mod command;
mod community;
mod create;
mod delay;
mod destroy;
mod event;
mod keys;
mod missing;
mod permission;
mod pipeline;
mod signature;
mod stats;
mod undo;
mod walk;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub use command::{Founded, founder_permissions};
pub use event::{Delivered, Event, Transmit};
pub use permission::MessageState;
pub use signature::SignatureDecision;
pub use stats::{Counters, DropReason, Traffic};

use self::community::CommunityState;
use self::delay::Wake;
use self::keys::{KeyCache, Lookup};
use crate::community::spec::CommunitySpec;
use crate::community::{Definition, Master};
use crate::crypto::{PrivateKey, PublicKey};
use crate::ids::{CommunityId, GlobalTime, MemberId};
use crate::store::{CommunityRecord, Store, StoreError};
use crate::time::Instant;
use crate::wire::builtin::byte;

/// Node-wide configuration. Every bound has a default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of the node's RNG (walk choices, identifiers, batch verification coefficients).
    pub seed: u64,
    /// How long a message may wait for what it is missing (Dispersy: 10 s).
    pub delay_timeout: Duration,
    /// Delayed messages per community.
    pub delay_capacity: usize,
    /// Member keys kept parsed in memory.
    pub key_cache: usize,
    /// Communities this node may join.
    pub max_communities: usize,
    /// Global times answered per missing-message request.
    pub max_missing_messages: usize,
    /// How often to ask for a master key we do not know (Dispersy: 15 s).
    pub master_fetch_interval: Duration,
    /// Bounds of each community's permission timeline.
    pub timeline: crate::timeline::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            delay_timeout: Duration::from_secs(10),
            delay_capacity: 4096,
            key_cache: 8192,
            max_communities: 1024,
            max_missing_messages: 64,
            master_fetch_interval: Duration::from_secs(15),
            timeline: crate::timeline::Config::default(),
        }
    }
}

/// Why the node could not go on processing an input. Only the store can fail this way; hostile
/// input is dropped and counted, never an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No joined community has this id.
    #[error("unknown community {0}")]
    UnknownCommunity(CommunityId),
    /// The community defines no such meta-message (or it cannot be created directly).
    #[error("community has no message type {0}")]
    UnknownMeta(String),
    /// Already joined.
    #[error("already joined community {0}")]
    AlreadyJoined(CommunityId),
    /// The payload does not fit the meta-message.
    #[error("invalid payload: {0}")]
    BadPayload(String),
    /// We do not hold the permission this needs.
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// The message would not fit a datagram.
    #[error("message too large: {0}")]
    TooLarge(String),
    /// The community is destroyed.
    #[error("community {0} is destroyed")]
    Destroyed(CommunityId),
    /// Too many communities.
    #[error("cannot join more than {0} communities")]
    TooManyCommunities(usize),
    /// Something else is wrong with the request.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<NodeError> for CommandError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Store(s) => CommandError::Store(s),
        }
    }
}

/// The sans-IO dispersy node. See the module docs for the run loop.
pub struct Node {
    config: Config,
    key: PrivateKey,
    store: Box<dyn Store>,
    rng: ChaCha20Rng,
    keys: KeyCache,
    communities: BTreeMap<CommunityId, CommunityState>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Counters,
    wakes: Vec<(CommunityId, Wake)>,
    signatures: signature::Signatures,
    dirty: bool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("member", &self.key.member_id())
            .field("communities", &self.communities.len())
            .finish()
    }
}

impl Node {
    /// A node with our key and a store. Join communities with [`Node::join`].
    pub fn new(config: Config, key: PrivateKey, store: Box<dyn Store>) -> Node {
        let rng = ChaCha20Rng::seed_from_u64(config.seed);
        let mut keys = KeyCache::new(config.key_cache);
        keys.insert(key.public());
        Node {
            rng,
            keys,
            key,
            store,
            communities: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Counters::default(),
            wakes: Vec::new(),
            signatures: signature::Signatures::default(),
            dirty: false,
            config,
        }
    }

    /// Our member id.
    pub fn member_id(&self) -> MemberId {
        self.key.member_id()
    }

    /// Our public key.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public()
    }

    /// The store (for reading; the node owns all writes).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Node-wide counters.
    pub fn stats(&self) -> &Counters {
        &self.stats
    }

    /// Counters of one community.
    pub fn community_stats(&self, community: &CommunityId) -> Option<&Counters> {
        self.communities.get(community).map(|c| &c.stats)
    }

    /// The joined communities' definitions.
    pub fn communities(&self) -> impl Iterator<Item = &Arc<Definition>> {
        self.communities.values().map(|c| &c.def)
    }

    /// One joined community's definition.
    pub fn community(&self, id: &CommunityId) -> Option<&Arc<Definition>> {
        self.communities.get(id).map(|c| &c.def)
    }

    /// A community's current global time.
    pub fn global_time(&self, community: &CommunityId) -> Option<GlobalTime> {
        self.communities.get(community).map(|c| c.global_time)
    }

    /// Messages waiting in a community's delay queue.
    pub fn delayed_count(&self, community: &CommunityId) -> usize {
        self.communities
            .get(community)
            .map_or(0, |c| c.delayed.len())
    }

    /// Joins a community defined in code. Creates our identity message in it if we have none.
    pub fn join(&mut self, now: Instant, def: Definition) -> Result<(), CommandError> {
        self.join_with(now, def, None)
    }

    /// Joins a community described declaratively; the description is kept in the store so the
    /// daemon can host it again after a restart.
    pub fn join_spec(&mut self, now: Instant, spec: &CommunitySpec) -> Result<(), CommandError> {
        let def = spec
            .to_definition()
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        self.join_with(now, def, Some(spec.to_toml()))
    }

    fn join_with(
        &mut self,
        now: Instant,
        def: Definition,
        spec: Option<String>,
    ) -> Result<(), CommandError> {
        let id = def.id();
        if self.communities.contains_key(&id) {
            return Err(CommandError::AlreadyJoined(id));
        }
        if self.communities.len() >= self.config.max_communities {
            return Err(CommandError::TooManyCommunities(
                self.config.max_communities,
            ));
        }
        // A master key we learned earlier completes a definition that only named the id.
        let stored = self.store.community(&id)?;
        let def = match (def.master(), stored.as_ref().and_then(|r| r.master.clone())) {
            (Master::Id(_), Some(key)) => def.with_master_key(key.clone()).unwrap_or(def),
            _ => def,
        };
        let record = CommunityRecord {
            id,
            master: def.master().key().cloned(),
            spec: spec.or_else(|| stored.and_then(|r| r.spec)),
            kind: def.kind().to_owned(),
        };
        self.store.put_community(&record)?;
        if let Some(master) = def.master().key() {
            self.keys.insert(master);
            self.store.put_member(master)?;
        }
        self.store.put_member(self.key.public())?;
        let global_time = self.store.max_global_time(&id)?;
        let state = CommunityState::new(Arc::new(def), global_time, &self.config);
        self.communities.insert(id, state);
        self.load_timeline(id)?;
        self.ensure_identity(now, id)?;
        self.commit()?;
        Ok(())
    }

    /// Leaves a community: stops routing its packets. Its stored messages stay unless `forget`.
    pub fn leave(&mut self, community: &CommunityId, forget: bool) -> Result<bool, CommandError> {
        let was = self.communities.remove(community).is_some();
        if forget {
            self.store.remove_community(community)?;
        }
        self.commit()?;
        Ok(was)
    }

    /// Handles one datagram. Prefer [`Node::handle_datagrams`] for bursts.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: Bytes,
    ) -> Result<(), NodeError> {
        self.handle_datagrams(now, std::iter::once((source, datagram)))
    }

    /// Handles a burst of datagrams: signatures are verified together and the store is
    /// committed once.
    pub fn handle_datagrams<I>(&mut self, now: Instant, datagrams: I) -> Result<(), NodeError>
    where
        I: IntoIterator<Item = (SocketAddr, Bytes)>,
    {
        let batch: Vec<pipeline::Raw> = datagrams
            .into_iter()
            .map(|(source, datagram)| pipeline::Raw {
                source,
                datagram,
                verified: false,
                deadline: None,
            })
            .collect();
        self.process(now, batch)?;
        self.commit()
    }

    /// Handles timers: delayed-message expiry, walker steps, request timeouts.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), NodeError> {
        self.expire_signatures(now);
        let ids: Vec<CommunityId> = self.communities.keys().copied().collect();
        for id in ids {
            self.expire_delayed(now, id);
            self.fetch_master_if_needed(now, id);
            self.walk_timeout(now, id)?;
        }
        self.commit()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] should be called next (`None`: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let communities = self
            .communities
            .values()
            .filter_map(CommunityState::next_timeout);
        communities.chain(self.signatures.next_deadline()).min()
    }

    fn commit(&mut self) -> Result<(), NodeError> {
        if self.dirty {
            self.store.commit()?;
            self.dirty = false;
        }
        Ok(())
    }

    fn lookup(&self) -> Lookup<'_> {
        Lookup {
            cache: &self.keys,
            store: &*self.store,
        }
    }

    /// Queues a datagram, counting it under the community and message byte.
    fn send(&mut self, community: Option<CommunityId>, destination: SocketAddr, contents: Bytes) {
        let message_byte = contents.get(crate::wire::MESSAGE_BYTE_OFFSET).copied();
        self.stats.sent(message_byte, contents.len());
        if let Some(c) = community.and_then(|c| self.communities.get_mut(&c)) {
            c.stats.sent(message_byte, contents.len());
        }
        self.transmits.push_back(Transmit {
            destination,
            contents,
        });
    }

    fn count_drop(&mut self, community: Option<CommunityId>, reason: DropReason) {
        tracing::trace!(reason = reason.as_str(), "dropped");
        self.stats.drop(reason);
        if let Some(c) = community.and_then(|c| self.communities.get_mut(&c)) {
            c.stats.drop(reason);
        }
    }

    /// Whether a message byte is one of the direct built-ins (walker, missing-*, signatures).
    fn is_direct_builtin(message_byte: u8) -> bool {
        !matches!(
            message_byte,
            byte::IDENTITY
                | byte::AUTHORIZE
                | byte::REVOKE
                | byte::UNDO_OWN
                | byte::UNDO_OTHER
                | byte::DYNAMIC_SETTINGS
                | byte::DESTROY_COMMUNITY
        ) && crate::wire::builtin::name(message_byte).is_some()
    }
}
