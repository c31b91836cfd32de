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
//!
//! # Peers: the random walk
//!
//! Each joined community runs a [`walker::Walker`]: every
//! [`walker::Config::step_interval`] (5 s; 1 s while it has few verified candidates, see
//! [`walker::FastWalk`]) it sends an introduction-request to one candidate, answers the requests it receives with an
//! introduction-response and a puncture-request to the peer it introduces, and punctures NATs
//! when asked (module `walk`). The candidates that proved themselves (walk and stumble
//! categories) are the community's verified peers: new messages are pushed to them and their
//! clock opinions bound the acceptable global time. The driver tells the node its addresses with
//! [`Node::set_interfaces`] and where to start with [`Node::add_bootstrap`] (every community,
//! joined now or later) or [`Node::add_peer`] (one community). [`Node::new_tracker`] builds a
//! node that also answers introduction-requests of communities it never joined.
//!
//! # Anti-amplification
//!
//! Every datagram received is credited to its source address before it is parsed, and every
//! datagram sent passes one gate (`Node::send`): an answer to a packet goes out only while the
//! address that caused it has received at most three times what it sent us, until it proves it
//! receives our packets (it answered one of our requests, or echoed our cookie); bulk answers
//! (missing-sequence and missing-message answers, sync responses) go only to proven addresses.
//! Sends on our own initiative are not limited: introduction-requests, and pushes of messages we
//! create to verified candidates, which either answered our request (proven) or walked to us
//! with a signed request (they initiated contact, and we send each of them at most one copy of
//! each message we create, so a spoofer cannot make us send more than we would anyway). Refused
//! sends are counted as [`DropReason::Amplification`].

mod command;
mod community;
mod create;
mod delay;
mod destroy;
mod event;
mod fast_sync;
mod keys;
mod missing;
mod permission;
mod pipeline;
mod signature;
mod stats;
mod status;
mod sync;
mod sync_state;
mod undo;
mod verified;
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
pub use status::{
    AddressStatus, CandidateStatus, CommunityWalkerStatus, TrackerStatus, WalkerStatus,
};
pub use sync_state::{RequesterCounters, SyncConfig, SyncStats, SyncStatus};
pub use verified::{VerifiedCache, VerifiedStats};

use self::community::CommunityState;
use self::delay::Wake;
use self::keys::{KeyCache, Lookup};
use crate::community::spec::CommunitySpec;
use crate::community::{Definition, Master};
use crate::crypto::{PrivateKey, PublicKey};
use crate::ids::{CommunityId, GlobalTime, MemberId};
use crate::store::{CommunityRecord, MemStore, Store, StoreError};
use crate::time::Instant;
use crate::walker;
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
    /// The random walker: step interval, lifetimes, table bounds, anti-amplification. Walking in
    /// a community also needs its [`Settings::walker`](crate::community::Settings::walker).
    pub walker: walker::Config,
    /// Tracker mode: also answer introduction-requests of communities this node never joined
    /// (see [`Node::new_tracker`]).
    pub tracker: bool,
    /// The per-community walker settings of tracker mode (walking is always off there).
    pub tracker_walker: walker::Config,
    /// How often bootstrap addresses are handed to every community's walker again (Dispersy:
    /// 300 s). A community without verified candidates gets them again after 30 s.
    pub bootstrap_interval: Duration,
    /// Bootstrap addresses kept, node-wide and per community.
    pub max_bootstrap: usize,
    /// Bloom-filter synchronization, fast catch-up and reconciliation.
    pub sync: SyncConfig,
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
            walker: walker::Config::default(),
            tracker: false,
            tracker_walker: walker::Config::tracker(),
            bootstrap_interval: Duration::from_secs(300),
            max_bootstrap: 64,
            sync: SyncConfig::default(),
            timeline: crate::timeline::Config::default(),
        }
    }
}

impl Config {
    /// Checks the walker settings (the node assumes a valid configuration).
    pub fn validate(&self) -> Result<(), walker::ConfigError> {
        self.walker.validate()?;
        self.tracker_walker.validate()
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

/// Why a datagram is sent: decides what anti-amplification allows (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Our own initiative: introduction-requests, requests for what we miss, pushes of messages
    /// we create. Not limited.
    Own,
    /// An answer caused by a packet from this address (usually the destination; for a puncture,
    /// the introducer that asked for it). Until the address is proven, all such answers together
    /// stay within `amplification_factor` times the bytes it sent us.
    Answer(SocketAddr),
    /// A bulk answer (missing-sequence, missing-message, sync responses): only to a proven
    /// destination.
    Bulk,
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
    /// Our address estimate and the anti-amplification guard, shared by every community.
    shared: walker::Shared,
    /// Tracker mode: walkers of the communities we answer without having joined them.
    tracker: Option<walker::Tracker>,
    /// Bootstrap addresses for every community (trackers).
    bootstrap: std::collections::BTreeSet<SocketAddr>,
    /// The latest `now` any input carried: read-only views describe the node as of then.
    now: Instant,
    /// Signatures other nodes of this process already found valid (a simulator's).
    verified: Option<Arc<VerifiedCache>>,
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
    /// A node with our key and a store. Join communities with [`Node::join`]; give it its
    /// addresses with [`Node::set_interfaces`] and a place to start with [`Node::add_bootstrap`].
    ///
    /// The configuration should pass [`Config::validate`].
    pub fn new(config: Config, key: PrivateKey, store: Box<dyn Store>) -> Node {
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let mut keys = KeyCache::new(config.key_cache);
        keys.insert(key.public());
        // The cookie secret is dated at the epoch; the first timeout after one rotation period
        // replaces it, whatever epoch the driver picked.
        let shared = walker::Shared::new(&config.walker, Instant::ZERO, &mut rng);
        let tracker = config
            .tracker
            .then(|| walker::Tracker::new(config.tracker_walker.clone(), key.member_id()));
        Node {
            shared,
            tracker,
            bootstrap: std::collections::BTreeSet::new(),
            now: Instant::ZERO,
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
            verified: None,
            config,
        }
    }

    /// A tracker: a node in tracker mode with an in-memory store. It answers
    /// introduction-requests of any community (verifying their signatures, which Dispersy's
    /// trackers did not), introduces the peers of each community to one another, never walks in
    /// those communities, and keeps only a bounded [`walker::Tracker`] for them. It may still join
    /// communities like any node.
    pub fn new_tracker(config: Config, key: PrivateKey) -> Node {
        Node::new(
            Config {
                tracker: true,
                ..config
            },
            key,
            Box::new(MemStore::new()),
        )
    }

    /// Whether this node answers introduction-requests of communities it did not join.
    pub fn is_tracker(&self) -> bool {
        self.tracker.is_some()
    }

    /// Shares a cache of valid signatures with other nodes of this process (a simulator's), so
    /// a packet that reaches many of them is verified once; `None` stops using one. See
    /// [`VerifiedCache`].
    pub fn set_verified_cache(&mut self, cache: Option<Arc<VerifiedCache>>) {
        self.verified = cache;
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
        self.dirty = true;
        if let Some(master) = def.master().key() {
            self.keys.insert(master);
            self.store.put_member(master)?;
        }
        self.store.put_member(self.key.public())?;
        let global_time = self.store.max_global_time(&id)?;
        self.tick(now);
        let walker = self.new_walker(now, &def);
        let state = CommunityState::new(Arc::new(def), global_time, walker, &self.config);
        self.communities.insert(id, state);
        self.sync_joined(id)?;
        self.load_timeline(id)?;
        self.ensure_identity(now, id)?;
        self.inject_bootstrap(now, id, true);
        self.report_peer_changes(now, id);
        self.commit()?;
        Ok(())
    }

    /// Leaves a community: stops routing its packets. Its stored messages stay unless `forget`.
    pub fn leave(&mut self, community: &CommunityId, forget: bool) -> Result<bool, CommandError> {
        let was = self.communities.remove(community).is_some();
        if forget {
            self.store.remove_community(community)?;
            self.dirty = true;
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
        self.tick(now);
        let amplification = &mut self.shared.amplification;
        let batch: Vec<pipeline::Raw> = datagrams
            .into_iter()
            .map(|(source, datagram)| {
                // Credit first: even a datagram we drop unparsed lets us answer its source.
                amplification.on_received(now, source, datagram.len());
                pipeline::Raw {
                    source,
                    datagram,
                    verified: false,
                    deadline: None,
                }
            })
            .collect();
        if let Err(e) = self.process(now, batch).and_then(|()| self.drive_sync(now)) {
            self.withdraw_uncommitted();
            return Err(e);
        }
        self.commit()
    }

    /// Handles timers: delayed-message expiry, walker steps, request timeouts.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), NodeError> {
        self.tick(now);
        self.expire_signatures(now);
        self.shared.handle_timeout(now, &mut self.rng);
        if let Some(tracker) = &mut self.tracker {
            tracker.handle_timeout(now, &mut self.shared, &mut self.rng);
        }
        let ids: Vec<CommunityId> = self.communities.keys().copied().collect();
        for id in ids {
            self.expire_delayed(now, id);
            self.fetch_master_if_needed(now, id);
            self.sync_timeout(now, id);
            // Only walkers whose step or request timeout is due: with many communities, timers
            // fire often, and each walker pass compares the whole candidate table.
            let due = self
                .communities
                .get(&id)
                .and_then(|c| c.walker.next_timeout())
                .is_some_and(|at| at <= now);
            if due {
                self.walk_timeout(now, id)?;
            }
        }
        self.drive_sync(now)?;
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
        let tracker = self
            .tracker
            .as_ref()
            .and_then(walker::Tracker::next_timeout);
        communities
            .chain(self.signatures.next_deadline())
            .chain(self.shared.next_timeout())
            .chain(tracker)
            .min()
    }

    /// Remembers the latest time an input carried (the driver's clock never runs backwards, but
    /// a late timer call must not move our view back either).
    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Commits the store unconditionally (for shutdown); inputs commit on their own.
    pub fn flush(&mut self) -> Result<(), NodeError> {
        self.dirty = false;
        self.store.commit().map_err(|e| {
            self.withdraw_uncommitted();
            NodeError::from(e)
        })
    }

    fn commit(&mut self) -> Result<(), NodeError> {
        if self.dirty {
            if let Err(e) = self.store.commit() {
                self.withdraw_uncommitted();
                return Err(e.into());
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// After a store write or commit failed: the queued events that report a change of the
    /// store are dropped, because the application takes them as durable (the driver broadcasts
    /// events only after the input's commit, so a process killed after an event lost nothing it
    /// reported). The queue holds only this input's events (the run loop drains every input).
    /// What the store kept anyway is then stored without having been reported.
    fn withdraw_uncommitted(&mut self) {
        let before = self.events.len();
        self.events.retain(|e| match e {
            Event::Message(m) => !m.distribution.is_synced(),
            Event::Undone { .. } | Event::Redone { .. } | Event::Destroyed { .. } => false,
            Event::PeerChanged { .. }
            | Event::SignatureRequested { .. }
            | Event::SignatureCompleted { .. } => true,
        });
        let withdrawn = before - self.events.len();
        if withdrawn > 0 {
            tracing::warn!(
                withdrawn,
                "the store failed: events of changes it may not have kept are not reported"
            );
        }
    }

    fn lookup(&self) -> Lookup<'_> {
        Lookup {
            cache: &self.keys,
            store: &*self.store,
        }
    }

    /// Queues a datagram if anti-amplification allows it (see the module docs), counting it
    /// under the community and message byte. Returns whether it was queued; a refusal is counted
    /// as [`DropReason::Amplification`].
    fn send(
        &mut self,
        now: Instant,
        community: Option<CommunityId>,
        destination: SocketAddr,
        contents: Bytes,
        gate: Gate,
    ) -> bool {
        let allowed = match gate {
            Gate::Own => true,
            Gate::Answer(cause) => self
                .shared
                .amplification
                .try_send(now, cause, contents.len())
                .is_ok(),
            Gate::Bulk => self.shared.amplification.allows_bulk(now, destination),
        };
        if !allowed {
            self.count_drop(community, DropReason::Amplification);
            return false;
        }
        let message_byte = contents.get(crate::wire::MESSAGE_BYTE_OFFSET).copied();
        self.stats.sent(message_byte, contents.len());
        if let Some(c) = community.and_then(|c| self.communities.get_mut(&c)) {
            c.stats.sent(message_byte, contents.len());
        }
        self.transmits.push_back(Transmit {
            destination,
            contents,
        });
        true
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
