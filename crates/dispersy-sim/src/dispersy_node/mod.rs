//! The real dispersy node in the simulator: scenario files with `kind = "dispersy"`.
//!
//! Every host runs a [`dispersy::node::Node`] on the simulator's virtual clock, joined to one
//! community ([`definition`]): `post` (full sync, sequence numbers, text, pushed on creation to
//! `push` peers) and `profile` (last sync, `profile_history` per member, text). Trackers are
//! nodes in tracker mode ([`Node::new_tracker`]: they answer every community's
//! introduction-requests and never walk or store), or ordinary peers with `tracker_mode =
//! false`. Peers are told their address and get the trackers as bootstrap addresses, then walk
//! (a step every `step_interval`). Each injected item is a post; its message id (author, global
//! time) is the item's name, so a node's `Event::Message` for that post means it holds the item.
//!
//! Keys come from the node's seed: a node keeps its key across restarts that keep its store,
//! and gets a new one (a fresh install) when the store is lost. Stores are in memory, shared
//! with the next incarnation ([`SharedStore`]); with the `sqlite` feature a scenario may ask for
//! SQLite files in a temporary directory instead.
//!
//! `[nodes.config]` keys ([`DispersyConfig`]):
//!
//! ```toml
//! push = 10                 # peers a new post is sent to on creation (its node_count)
//! walk = true               # the community's walker runs
//! step_interval = "5s"      # time between walk steps
//! fast_walk = true          # a step a second while verified candidates are few (false:
//!                           # Dispersy's pace always, walker::FastWalk::off)
//! sync_skip = true          # classic sync skips filters after quiet ones (Dispersy's curve)
//! sync_extensions = true    # fast catch-up and range reconciliation besides classic sync
//! bootstrap = true          # trackers are bootstrap addresses (add_bootstrap)
//! tracker_mode = true       # trackers run Node::new_tracker; false: ordinary peers
//! peers = "none"            # add_peer at start: "none" or "all" (at most 64 are kept)
//! random_peers = 0          # plus this many random other nodes (add_peer)
//! store = "memory"          # or "sqlite" (feature `sqlite`)
//! verified_cache = true     # share signature verdicts between nodes (see below)
//! verified_cache_capacity = 1048576
//! bloom_memo = true         # share Bloom-filter digests between nodes (see below)
//! bloom_memo_capacity = 65536
//! profile_updates = false   # each injection also updates the author's last-sync profile
//! profile_history = 1
//! check_packets = 1         # stored packets re-verified per node at each check
//! check_members = 2         # members whose sequence numbers and history are checked
//! ```
//!
//! # Speed
//!
//! Nodes share message bodies: a datagram is one [`bytes::Bytes`] from the sender's transmit
//! to every store that keeps it. With `verified_cache`, the nodes share one
//! [`VerifiedCache`]: a packet a thousand nodes receive is verified once. The cache only keeps
//! valid signatures and does not change a node's random draws, so a run gives the same event
//! log with or without it (a test checks this).
//!
//! With `bloom_memo`, the nodes share one [`BloomMemo`]: each sync filter hashes every packet
//! it holds or tests with its own prefix byte, and the memo keeps those digests by packet content
//! and prefix, so a thousand nodes hash a packet once per prefix rather than once per filter. A
//! hit returns the very digest a miss computes, so the event log is the same with or without it
//! (a test checks this too).
//!
//! # Invariants (at every sample when `metrics.invariants`)
//!
//! - no store failure;
//! - re-verifying a sample of stored packets (without the cache): they parse, their
//!   signatures hold, and their author, global time, sequence number and digest match the row;
//! - for a sample of members: stored post sequence numbers are exactly `1..=last`, with global
//!   times increasing; at most `profile_history` profiles are kept;
//! - the delay queue within its bound.
//!
//! [`DispersyAdapter::state_digest`](crate::Adapter::state_digest) is the store's fingerprint
//! over every meta-message, which `metrics.heal_bound` compares across peers after partitions.

mod check;
mod node;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use dispersy::bloom::BloomMemo;
use dispersy::community::payload::Layout;
use dispersy::community::policy::Destination;
use dispersy::community::{Definition, MetaMessage, Settings};
use dispersy::crypto::PrivateKey;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId};
use dispersy::node::{Config, Counters, Event, Node, Traffic, VerifiedCache};
use dispersy::store::Store;
use dispersy::time::Instant;
use dispersy::walker::{self, Interface, LocalInterfaces};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

pub use self::node::{DispersyNode, StoreHandle};
pub use self::store::SharedStore;
use crate::adapter::{Adapter, AdapterError, ItemId, NodeSpec, Role};
use crate::dist::{Span, derive_seed};
use crate::node::NodeId;

/// The `nodes.kind` that selects the real node in scenario files.
pub const KIND: &str = "dispersy";

/// The workload's meta-message: a full-sync, sequence-numbered text post.
pub const POST: MetaId = MetaId(1);
/// A last-sync text profile (see `profile_updates`).
pub const PROFILE: MetaId = MetaId(2);

/// Most members remembered for the checks (one per key ever used).
const MAX_MEMBERS: usize = 1 << 20;

/// Which addresses nodes are given with `add_peer` when they start (besides the trackers,
/// which are bootstrap addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerSeeding {
    /// None: peers are found by walking from the trackers.
    None,
    /// Every other node's local address (only meaningful without NATs; the node keeps the
    /// first 64).
    All,
}

/// Where stores live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// [`dispersy::store::MemStore`].
    Memory,
    /// SQLite files in a temporary directory (feature `sqlite`).
    Sqlite,
}

/// Settings, from the scenario's `[nodes.config]`; see the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispersyConfig {
    /// Peers a new post is sent to on creation.
    pub push: usize,
    /// Whether the community's walker runs.
    pub walk: bool,
    /// Time between walk steps.
    pub step_interval: Span,
    /// The walker's faster pace while verified candidates are few
    /// ([`dispersy::walker::Config::fast`]); off: Dispersy's pace always.
    pub fast_walk: bool,
    /// Classic Bloom sync skips sync blocks after filters that brought nothing
    /// ([`dispersy::sync::requester::RequesterConfig::skip`]).
    pub sync_skip: bool,
    /// Our sync extensions: fast catch-up and range reconciliation
    /// ([`dispersy::node::SyncConfig::extensions`]).
    pub sync_extensions: bool,
    /// Trackers are given as bootstrap addresses.
    pub bootstrap: bool,
    /// Trackers run in tracker mode (else they are ordinary peers).
    pub tracker_mode: bool,
    /// Addresses given with `add_peer` at start.
    pub peers: PeerSeeding,
    /// Extra random peers given at start.
    pub random_peers: usize,
    /// Where stores live.
    pub store: StoreKind,
    /// Share signature verdicts between nodes.
    pub verified_cache: bool,
    /// Signatures the shared cache holds.
    pub verified_cache_capacity: usize,
    /// Share Bloom-filter digests between nodes.
    pub bloom_memo: bool,
    /// Packets the shared Bloom memo holds (it clears when full).
    pub bloom_memo_capacity: usize,
    /// Each injection also updates the author's profile.
    pub profile_updates: bool,
    /// Profiles kept per member.
    pub profile_history: u16,
    /// Stored packets re-verified per node at each check.
    pub check_packets: usize,
    /// Members whose sequence numbers and profile history are checked per node at each check.
    pub check_members: usize,
}

impl Default for DispersyConfig {
    fn default() -> Self {
        DispersyConfig {
            push: 10,
            walk: true,
            step_interval: Span::secs(5),
            fast_walk: true,
            sync_skip: true,
            sync_extensions: true,
            bootstrap: true,
            tracker_mode: true,
            peers: PeerSeeding::None,
            random_peers: 0,
            store: StoreKind::Memory,
            verified_cache: true,
            verified_cache_capacity: 1 << 20,
            bloom_memo: true,
            bloom_memo_capacity: 1 << 16,
            profile_updates: false,
            profile_history: 1,
            check_packets: 1,
            check_members: 2,
        }
    }
}

impl DispersyConfig {
    /// Reads the settings from a scenario's opaque table.
    pub fn from_table(table: &toml::Table) -> Result<DispersyConfig, AdapterError> {
        let bad =
            |e: &dyn std::fmt::Display| AdapterError(format!("[nodes.config] for {KIND}: {e}"));
        let cfg: DispersyConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| bad(&e))?;
        if cfg.push > 1 << 16
            || cfg.random_peers > 1024
            || !(1..=1 << 24).contains(&cfg.verified_cache_capacity)
            || !(1..=1 << 20).contains(&cfg.bloom_memo_capacity)
            || cfg.profile_history == 0
            || cfg.check_packets > 1000
            || cfg.check_members > 1000
            || cfg.step_interval < Span::millis(10)
        {
            return Err(bad(
                &"push at most 65536, random_peers at most 1024, verified_cache_capacity in 1..=2^24, bloom_memo_capacity in 1..=2^20, profile_history positive, check_packets and check_members at most 1000, step_interval at least 10ms",
            ));
        }
        if cfg.store == StoreKind::Sqlite && !cfg!(feature = "sqlite") {
            return Err(bad(
                &"store = \"sqlite\" needs dispersy-sim built with the `sqlite` feature",
            ));
        }
        Ok(cfg)
    }
}

/// The master key of the simulated community: the same in every run.
fn master_key() -> PrivateKey {
    PrivateKey::generate(&mut ChaCha20Rng::from_seed(derive_seed(0, "community", 0)))
}

/// The simulated community: `post` and `profile` (see the module docs).
pub fn definition(cfg: &DispersyConfig) -> Result<Definition, AdapterError> {
    let text: Arc<Layout> = Arc::new(Layout::Text);
    Definition::builder(master_key().public().clone())
        .kind("sim")
        .settings(Settings {
            walker: cfg.walk,
            ..Settings::default()
        })
        .meta(
            MetaMessage::new(POST.0, "post")
                .sequenced()
                .destination(Destination::Community {
                    node_count: cfg.push,
                })
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(PROFILE.0, "profile")
                .last_sync(cfg.profile_history)
                .destination(Destination::Community {
                    node_count: cfg.push,
                })
                .payload_schema(text),
        )
        .build()
        .map_err(|e| AdapterError(format!("simulated community: {e}")))
}

/// Text of about `size` bytes naming an item.
fn item_text(kind: &str, item: ItemId, size: u32) -> String {
    let mut text = format!("{kind} {} ", item.0);
    let size = (size as usize).min(60_000);
    if text.len() < size {
        text.extend(std::iter::repeat_n('x', size - text.len()));
    }
    text
}

/// Builds and observes [`DispersyNode`]s.
#[derive(Debug)]
pub struct DispersyAdapter {
    cfg: DispersyConfig,
    def: Definition,
    community: CommunityId,
    cache: Option<Arc<VerifiedCache>>,
    bloom: Option<Arc<BloomMemo>>,
    /// Injected posts by message id.
    items: BTreeMap<MessageId, ItemId>,
    /// Every member that ever ran, in order, for the checks.
    members: Vec<MemberId>,
    member_set: BTreeSet<MemberId>,
    /// Checks run so far: the checks' sampling cursor.
    checks: u64,
    /// Injections refused by a node.
    refused: u64,
    #[cfg(feature = "sqlite")]
    dir: Option<tempfile::TempDir>,
}

impl DispersyAdapter {
    /// An adapter with the scenario's `[nodes.config]`.
    pub fn new(table: &toml::Table) -> Result<DispersyAdapter, AdapterError> {
        let cfg = DispersyConfig::from_table(table)?;
        let def = definition(&cfg)?;
        let cache = cfg
            .verified_cache
            .then(|| Arc::new(VerifiedCache::new(cfg.verified_cache_capacity)));
        let bloom = cfg
            .bloom_memo
            .then(|| Arc::new(BloomMemo::new(cfg.bloom_memo_capacity)));
        Ok(DispersyAdapter {
            community: def.id(),
            def,
            cache,
            bloom,
            items: BTreeMap::new(),
            members: Vec::new(),
            member_set: BTreeSet::new(),
            checks: 0,
            refused: 0,
            #[cfg(feature = "sqlite")]
            dir: None,
            cfg,
        })
    }

    /// The settings.
    pub fn config(&self) -> &DispersyConfig {
        &self.cfg
    }

    /// The simulated community's id.
    pub fn community(&self) -> CommunityId {
        self.community
    }

    /// The shared verification cache, if used.
    pub fn verified_cache(&self) -> Option<&Arc<VerifiedCache>> {
        self.cache.as_ref()
    }

    fn remember(&mut self, member: MemberId) {
        if self.members.len() < MAX_MEMBERS && self.member_set.insert(member) {
            self.members.push(member);
        }
    }

    fn new_store(&mut self, spec: &NodeSpec<'_>) -> Result<StoreHandle, AdapterError> {
        match self.cfg.store {
            StoreKind::Memory => Ok(StoreHandle::Memory(SharedStore::new())),
            #[cfg(feature = "sqlite")]
            StoreKind::Sqlite => {
                if self.dir.is_none() {
                    let dir = tempfile::tempdir()
                        .map_err(|e| AdapterError(format!("temporary directory: {e}")))?;
                    self.dir = Some(dir);
                }
                let dir = self
                    .dir
                    .as_ref()
                    .ok_or_else(|| AdapterError("no temporary directory".into()))?;
                let path = dir.path().join(format!(
                    "n{}-{}.sqlite",
                    spec.ctx.id.0, spec.ctx.incarnation
                ));
                Ok(StoreHandle::Sqlite(path))
            }
            #[cfg(not(feature = "sqlite"))]
            StoreKind::Sqlite => {
                let _ = spec;
                Err(AdapterError("built without the `sqlite` feature".into()))
            }
        }
    }

    fn open(handle: &StoreHandle) -> Result<Box<dyn Store>, String> {
        match handle {
            StoreHandle::Memory(s) => Ok(Box::new(s.clone())),
            #[cfg(feature = "sqlite")]
            StoreHandle::Sqlite(path) => dispersy_sqlite::SqliteStore::open(path)
                .map(|s| Box::new(s) as Box<dyn Store>)
                .map_err(|e| format!("opening {}: {e}", path.display())),
        }
    }

    /// A node with `key` and `store`: told its address, given the trackers, joined to the
    /// community (unless a tracker in tracker mode), given its first peers.
    fn make(&mut self, spec: &NodeSpec<'_>, key: PrivateKey, store: StoreHandle) -> DispersyNode {
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&spec.ctx.seed[..8]);
        let mut config = Config {
            seed: u64::from_le_bytes(seed),
            walker: walker::Config {
                step_interval: self.cfg.step_interval.0,
                ..walker::Config::default()
            },
            ..Config::default()
        };
        if !self.cfg.fast_walk {
            config.walker.fast = walker::FastWalk::off();
        }
        config.sync.requester.skip = self.cfg.sync_skip;
        config.sync.extensions = self.cfg.sync_extensions;
        self.remember(key.member_id());
        let tracker = spec.role == Role::Tracker && self.cfg.tracker_mode;
        let (opened, error) = match Self::open(&store) {
            Ok(s) => (s, None),
            Err(e) => (
                Box::new(dispersy::store::MemStore::new()) as Box<dyn Store>,
                Some(e),
            ),
        };
        let inner = if tracker {
            Node::new_tracker(config, key.clone())
        } else {
            Node::new(config, key.clone(), opened)
        };
        let mut node = DispersyNode {
            node: inner,
            key,
            store,
            role: spec.role,
            store_errors: 0,
            last_error: None,
            bloom: self.bloom.clone(),
        };
        if let Some(e) = error {
            node.failed(e);
        }
        let n = &mut node.node;
        n.set_verified_cache(self.cache.clone());
        // One host per address in the simulator: nobody else is on our subnet.
        n.set_interfaces(LocalInterfaces {
            bound: spec.ctx.local_addr,
            interfaces: vec![Interface::new(spec.ctx.local_addr.ip(), 32)],
        });
        if tracker {
            return node;
        }
        if self.cfg.bootstrap {
            for t in spec.trackers.iter().filter(|t| **t != spec.ctx.local_addr) {
                if let Err(e) = n.add_bootstrap(spec.now, *t) {
                    tracing::debug!(error = %e, "bootstrap address refused");
                }
            }
        }
        if let Err(e) = n.join(spec.now, self.def.clone()) {
            node.failed(format!("joining the community: {e}"));
            return node;
        }
        for peer in self.first_peers(spec) {
            // Beyond the node's bound on bootstrap addresses peers are refused: that is fine.
            if let Err(e) = node.node.add_peer(spec.now, self.community, peer) {
                tracing::debug!(error = %e, "peer refused");
            }
        }
        node
    }

    fn first_peers(&self, spec: &NodeSpec<'_>) -> Vec<SocketAddr> {
        let me = spec.ctx.local_addr;
        let mut peers: Vec<SocketAddr> = match self.cfg.peers {
            PeerSeeding::None => Vec::new(),
            PeerSeeding::All => spec.addresses.to_vec(),
        };
        let others = spec.addresses.len();
        if self.cfg.random_peers > 0 && others > 1 {
            let mut rng = ChaCha20Rng::from_seed(spec.ctx.seed);
            let n = self.cfg.random_peers.min(others);
            peers.extend(
                sample(&mut rng, others, n)
                    .into_iter()
                    .map(|i| spec.addresses[i]),
            );
        }
        peers.retain(|p| *p != me);
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    /// Sum of every node's counters, by role: traffic and drops of the whole node, accepted,
    /// created and delayed messages of the community.
    fn counters<'a>(
        &self,
        nodes: impl Iterator<Item = &'a DispersyNode>,
    ) -> BTreeMap<Role, Counters> {
        fn add<K: Ord + Copy>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
            for (k, v) in from {
                *into.entry(*k).or_default() += v;
            }
        }
        fn traffic<K: Ord + Copy>(into: &mut BTreeMap<K, Traffic>, from: &BTreeMap<K, Traffic>) {
            for (k, v) in from {
                let t = into.entry(*k).or_default();
                t.packets += v.packets;
                t.bytes += v.bytes;
            }
        }
        let mut out: BTreeMap<Role, Counters> = BTreeMap::new();
        for n in nodes {
            let c = out.entry(n.role).or_default();
            let s = n.node.stats();
            c.received.packets += s.received.packets;
            c.received.bytes += s.received.bytes;
            c.sent.packets += s.sent.packets;
            c.sent.bytes += s.sent.bytes;
            traffic(&mut c.received_by_type, &s.received_by_type);
            traffic(&mut c.sent_by_type, &s.sent_by_type);
            add(&mut c.drops, &s.drops);
            if let Some(s) = n.node.community_stats(&self.community) {
                add(&mut c.accepted, &s.accepted);
                add(&mut c.created, &s.created);
                add(&mut c.delayed, &s.delayed);
            }
        }
        out
    }

    /// Sum over peers of the community's synchronization counters ([`dispersy::node::SyncStats`]
    /// and the classic requester's): what Bloom-filter sync, catch-up and reconciliation did,
    /// beside what pushing on creation did.
    fn sync_totals<'a>(&self, nodes: impl Iterator<Item = &'a DispersyNode>) -> serde_json::Value {
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for n in nodes.filter(|n| n.role == Role::Peer) {
            let Some(status) = n.node.sync_status(&self.community) else {
                continue;
            };
            for part in [
                serde_json::to_value(status.stats),
                serde_json::to_value(status.requester),
            ] {
                let Ok(serde_json::Value::Object(map)) = part else {
                    continue;
                };
                for (k, v) in map {
                    if let Some(v) = v.as_u64() {
                        *totals.entry(k).or_default() += v;
                    }
                }
            }
        }
        serde_json::json!(totals)
    }
}

impl Adapter for DispersyAdapter {
    type Node = DispersyNode;

    fn build(&mut self, spec: &NodeSpec<'_>) -> Result<DispersyNode, AdapterError> {
        let key = PrivateKey::generate(&mut ChaCha20Rng::from_seed(spec.ctx.seed));
        let store = self.new_store(spec)?;
        let node = self.make(spec, key, store);
        match &node.last_error {
            Some(e) => Err(AdapterError(format!("node {}: {e}", spec.ctx.id))),
            None => Ok(node),
        }
    }

    fn restart(&mut self, spec: &NodeSpec<'_>, old: DispersyNode, keep: bool) -> DispersyNode {
        if keep {
            // Close the old node (and its store) before the new one opens it.
            let DispersyNode {
                node, key, store, ..
            } = old;
            drop(node);
            return self.make(spec, key, store);
        }
        drop(old);
        let key = PrivateKey::generate(&mut ChaCha20Rng::from_seed(spec.ctx.seed));
        match self.new_store(spec) {
            Ok(store) => self.make(spec, key, store),
            Err(e) => {
                let mut node = self.make(spec, key, StoreHandle::Memory(SharedStore::new()));
                node.failed(e);
                node
            }
        }
    }

    fn inject(
        &mut self,
        now: Instant,
        _: NodeId,
        node: &mut DispersyNode,
        item: ItemId,
        size: u32,
    ) -> bool {
        let text = item_text("post", item, size);
        let Ok(payload) = Layout::Text.encode(text.as_bytes()) else {
            return false;
        };
        let created = match node
            .node
            .create_message(now, self.community, POST, &payload, &[])
        {
            Ok(d) => d,
            Err(e) => {
                self.refused += 1;
                tracing::debug!(error = %e, "injection refused");
                if matches!(e, dispersy::node::CommandError::Store(_)) {
                    node.failed(e);
                }
                return false;
            }
        };
        let Some(id) = created.id() else {
            return false;
        };
        self.items.insert(id, item);
        if self.cfg.profile_updates {
            let text = item_text("profile", item, 32);
            let profile = Layout::Text.encode(text.as_bytes()).unwrap_or_default();
            if let Err(e) = node
                .node
                .create_message(now, self.community, PROFILE, &profile, &[])
            {
                tracing::debug!(error = %e, "profile update refused");
            }
        }
        true
    }

    fn on_event(&mut self, _: Instant, _: NodeId, event: Event) -> Option<ItemId> {
        match event {
            Event::Message(m) if m.meta == POST && m.community == self.community => {
                self.items.get(&m.id()?).copied()
            }
            _ => None,
        }
    }

    fn check(&mut self, now: Instant, id: NodeId, node: &DispersyNode) -> Result<(), String> {
        self.checks = self.checks.wrapping_add(1);
        self.check_node(now, id, node)
    }

    fn state_digest(&self, node: &DispersyNode) -> Option<String> {
        let f =
            node.node
                .store()
                .fingerprint(&self.community, None, GlobalTime(1), GlobalTime::MAX);
        Some(match f {
            Ok(f) => format!("{}:{:016x}", f.count, f.sum),
            Err(e) => format!("error: {e}"),
        })
    }

    fn summary(&self, nodes: &mut dyn Iterator<Item = &DispersyNode>) -> serde_json::Value {
        let nodes: Vec<&DispersyNode> = nodes.collect();
        let stored: Vec<u64> = nodes
            .iter()
            .filter(|n| n.role == Role::Peer)
            .map(|n| {
                n.node
                    .store()
                    .count(
                        &self.community,
                        Some(&[POST]),
                        GlobalTime(1),
                        GlobalTime::MAX,
                    )
                    .unwrap_or(0)
            })
            .collect();
        let posts = serde_json::json!({
            "min": stored.iter().min(),
            "max": stored.iter().max(),
            "mean": if stored.is_empty() { 0.0 } else {
                stored.iter().sum::<u64>() as f64 / stored.len() as f64
            },
        });
        serde_json::json!({
            "config": self.cfg,
            "community": self.community.to_string(),
            "members": self.members.len(),
            "items_created": self.items.len(),
            "injections_refused": self.refused,
            "store_errors": nodes.iter().map(|n| n.store_errors).sum::<u64>(),
            "stored_posts_per_peer": posts,
            "verified_cache": self.cache.as_ref().map(|c| c.stats()),
            "bloom_memo": self.bloom.as_ref().map(|c| c.stats()),
            "sync": self.sync_totals(nodes.iter().copied()),
            "counters": self.counters(nodes.into_iter()),
        })
    }
}
