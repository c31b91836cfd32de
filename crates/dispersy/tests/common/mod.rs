//! Shared support for the permission tests: a founded community on an in-process network, and
//! ways to hand packets to nodes in a chosen order.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dispersy::community::payload::Layout;
use dispersy::community::policy::Authentication;
use dispersy::community::{Definition, DefinitionError, MetaMessage, Settings};
use dispersy::crypto::{PrivateKey, PublicKey};
use dispersy::ids::{CommunityId, GlobalTime, MessageId, MetaId, SequenceNumber};
use dispersy::node::{Config, Event, MessageState, Node, Transmit};
use dispersy::store::{MemStore, RangeQuery, StoredMessage};
use dispersy::testing::Network;
use dispersy::wire::builtin::{Builtin, Permissions, byte};
use dispersy::wire::{Authors, Draft, KeyEncoding};
use rand::SeedableRng;

/// Linear, undoable: only members holding `permit` post.
pub const POST: MetaId = MetaId(1);
/// Dynamic (public, linear), undoable.
pub const COMMENT: MetaId = MetaId(2);
/// Public, undoable.
pub const NOTE: MetaId = MetaId(3);
/// Public, sequence numbers.
pub const TEXT: MetaId = MetaId(4);
/// Public, last sync keeping one per author.
pub const PROFILE: MetaId = MetaId(5);
/// Double-member, linear.
pub const CONTRACT: MetaId = MetaId(6);
/// Public, last sync keeping nine per author.
pub const STATUS: MetaId = MetaId(7);
/// Public, author named by member id (needs the author's identity).
pub const TAG: MetaId = MetaId(8);

pub const AUTHORIZE_META: MetaId = MetaId(byte::AUTHORIZE);
pub const REVOKE_META: MetaId = MetaId(byte::REVOKE);
pub const SETTINGS: MetaId = MetaId(byte::DYNAMIC_SETTINGS);
pub const DESTROY: MetaId = MetaId(byte::DESTROY_COMMUNITY);
pub const UNDO_OWN: MetaId = MetaId(byte::UNDO_OWN);
pub const UNDO_OTHER: MetaId = MetaId(byte::UNDO_OTHER);

pub const PERMIT: Permissions = Permissions::PERMIT;
pub const AUTHORIZE: Permissions = Permissions::AUTHORIZE;
pub const REVOKE: Permissions = Permissions::REVOKE;
pub const UNDO: Permissions = Permissions::UNDO;

/// The key of node `i` (node keys are fixed so tests can sign packets as any node).
pub fn node_key(i: usize) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(i as u64 + 1))
}

/// A key nobody runs a node with.
pub fn outsider(n: u64) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(10_000 + n))
}

/// The microblog of the permission docs, plus a few metas for the pipeline tests.
pub fn define(master: PublicKey) -> Result<Definition, DefinitionError> {
    // Packets move only where the tests move them: no Bloom-filter sync.
    define_with(master, false)
}

/// [`define`] with Bloom-filter sync on (the node answers sync blocks and reconciliation).
pub fn define_syncing(master: PublicKey) -> Result<Definition, DefinitionError> {
    define_with(master, true)
}

fn define_with(master: PublicKey, bloom_sync: bool) -> Result<Definition, DefinitionError> {
    let text: Arc<Layout> = Arc::new(Layout::Text);
    Definition::builder(master)
        .kind("microblog")
        .settings(Settings {
            bloom_sync,
            ..Settings::default()
        })
        .meta(
            MetaMessage::new(POST.0, "post")
                .linear()
                .undoable()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(COMMENT.0, "comment")
                .dynamic()
                .undoable()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(NOTE.0, "note")
                .undoable()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(TEXT.0, "text")
                .sequenced()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(PROFILE.0, "profile")
                .last_sync(1)
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(CONTRACT.0, "contract")
                .authentication(Authentication::DoubleMember {
                    encoding: KeyEncoding::PublicKey,
                })
                .linear()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(STATUS.0, "status")
                .last_sync(9)
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(TAG.0, "tag")
                .authentication(Authentication::Member {
                    encoding: KeyEncoding::MemberId,
                })
                .payload_schema(text),
        )
        .build()
}

/// A founded community: node 0 founded it, nodes 1.. joined. No node knows any peer unless a
/// test adds it, so every packet moves because the test moves it.
pub struct Blog {
    pub net: Network,
    pub id: CommunityId,
    pub def: Definition,
    pub master: PrivateKey,
}

pub fn text(s: &str) -> Vec<u8> {
    Layout::Text.encode(s.as_bytes()).unwrap()
}

/// Node configuration of these tests. They hand packets to nodes directly (as Dispersy's test
/// suite did) rather than walking first, so answers to unproven addresses (proofs, identities)
/// get a generous anti-amplification allowance; tests/walker.rs checks the real bound.
pub fn config(seed: u64, i: usize) -> Config {
    let mut config = Config {
        seed: seed * 1000 + i as u64,
        ..Config::default()
    };
    config.walker.amplification_factor = 1_000;
    config
}

impl Blog {
    pub fn new(n: usize, seed: u64) -> Blog {
        Blog::with_stores(n, seed).0
    }

    /// A blog whose nodes answer Bloom-filter sync and reconciliation (nobody walks unless a
    /// test adds peers).
    pub fn syncing(n: usize, seed: u64) -> Blog {
        Blog::founded(n, seed, define_syncing).0
    }

    /// A blog whose nodes' stores the test can keep (to restart a node on its store).
    pub fn with_stores(n: usize, seed: u64) -> (Blog, Vec<SharedStore>) {
        Blog::founded(n, seed, define)
    }

    fn founded(
        n: usize,
        seed: u64,
        define: fn(PublicKey) -> Result<Definition, DefinitionError>,
    ) -> (Blog, Vec<SharedStore>) {
        let stores: Vec<SharedStore> = (0..n).map(|_| SharedStore::default()).collect();
        let mut net = Network::new(seed);
        for (i, store) in stores.iter().enumerate() {
            net.add(Node::new(
                config(seed, i),
                node_key(i),
                Box::new(store.clone()),
            ));
        }
        let founded = net.with(0, |node, now| node.found(now, define).unwrap());
        let def = (**net.node(0).community(&founded.community).unwrap()).clone();
        for i in 1..n {
            net.with(i, |node, now| node.join(now, def.clone()).unwrap());
        }
        let blog = Blog {
            net,
            id: founded.community,
            def,
            master: founded.master,
        };
        (blog, stores)
    }

    /// Stops node `i` and starts a new node with the same key on `store`, joined again.
    pub fn restart(&mut self, i: usize, store: &SharedStore) {
        drop(self.net.stop(i));
        let mut node = Node::new(config(999, i), node_key(i), Box::new(store.clone()));
        node.join(self.net.now(), self.def.clone()).unwrap();
        self.net.restart(i, node);
    }

    pub fn now(&self) -> dispersy::time::Instant {
        self.net.now()
    }

    pub fn node(&self, i: usize) -> &Node {
        self.net.node(i)
    }

    pub fn member(&self, i: usize) -> PublicKey {
        self.net.node(i).public_key().clone()
    }

    /// Makes every node a peer of every other (messages created from now on spread).
    pub fn connect_all(&mut self) {
        let n = self.net.len();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    self.connect(i, j);
                }
            }
        }
    }

    /// Makes `j` a peer of `i`.
    /// Bootstraps node `i` to node `j` and walks until each has the other as a verified peer
    /// (the walker decides who receives new messages).
    pub fn connect(&mut self, i: usize, j: usize) {
        let id = self.id;
        self.net.with(i, |node, now| {
            node.add_peer(now, id, Network::address(j)).unwrap();
            node.walk_to(now, id, Network::address(j)).unwrap();
        });
        for _ in 0..240 {
            let ij = self.net.node(i).peers(&id).contains(&Network::address(j));
            let ji = self.net.node(j).peers(&id).contains(&Network::address(i));
            if ij && ji {
                return;
            }
            self.net.run_for(Duration::from_millis(250));
        }
        panic!("nodes {i} and {j} did not verify each other within 60 s");
    }

    /// Hands `packet` to node `to` as if `from` had sent it; its answers go into the network.
    pub fn give(&mut self, from: usize, to: usize, packet: &Bytes) {
        self.net.with(to, |node, now| {
            node.handle_datagram(now, Network::address(from), packet.clone())
                .unwrap()
        });
    }

    /// Hands `packet` to node `to` as if sent from `from`, and returns what `to` sends back
    /// (which is NOT put into the network).
    pub fn ask(&mut self, from: SocketAddr, to: usize, packet: &Bytes) -> Vec<Transmit> {
        let now = self.net.now();
        let node = self.net.node_mut(to);
        node.handle_datagram(now, from, packet.clone()).unwrap();
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        // Moves the events to the network's log (nothing is left to send).
        self.net.flush(to);
        out
    }

    /// Every stored message of node `i`, ascending.
    pub fn stored(&self, i: usize) -> Vec<StoredMessage> {
        let q = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, usize::MAX);
        self.node(i).store().range(&self.id, &q).unwrap()
    }

    /// Stored messages of one meta-message at node `i`.
    pub fn stored_of(&self, i: usize, meta: MetaId) -> Vec<StoredMessage> {
        let mut q = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, usize::MAX);
        q.metas = Some(vec![meta]);
        self.node(i).store().range(&self.id, &q).unwrap()
    }

    /// The master's founding authorize, as node `i` stores it.
    pub fn founding(&self, i: usize) -> StoredMessage {
        self.stored_of(i, AUTHORIZE_META)
            .into_iter()
            .find(|m| m.member == self.master.member_id())
            .unwrap()
    }

    pub fn is_stored(&self, i: usize, id: &MessageId) -> bool {
        self.node(i)
            .store()
            .message(&self.id, id)
            .unwrap()
            .is_some()
    }

    pub fn packet(&self, i: usize, id: &MessageId) -> Bytes {
        self.node(i)
            .store()
            .message(&self.id, id)
            .unwrap()
            .unwrap_or_else(|| panic!("node {i} stores {id:?}"))
            .packet
    }

    pub fn state(&self, i: usize, id: &MessageId) -> Option<MessageState> {
        self.node(i).message_state(&self.id, id).unwrap()
    }

    /// Delivers every packet node `from` stores to node `to`, oldest first, then lets the
    /// network settle (missing-* requests and their answers).
    pub fn share(&mut self, from: usize, to: usize) {
        for m in self.stored(from) {
            self.give(from, to, &m.packet);
        }
        self.settle();
    }

    /// Runs the network for a second of virtual time.
    pub fn settle(&mut self) {
        self.net.run_for(Duration::from_secs(1));
    }

    /// Creates a message at node `i` through the node's command.
    pub fn create(&mut self, i: usize, meta: MetaId, body: &str) -> MessageId {
        let id = self.id;
        let d = self
            .net
            .with(i, |n, now| {
                n.create_message(now, id, meta, &text(body), &[])
            })
            .unwrap();
        d.id().unwrap()
    }

    pub fn authorize(
        &mut self,
        i: usize,
        member: &PublicKey,
        grants: &[(MetaId, Permissions)],
    ) -> MessageId {
        let id = self.id;
        self.net
            .with(i, |n, now| n.authorize(now, id, member, grants))
            .unwrap()
    }

    pub fn revoke(
        &mut self,
        i: usize,
        member: &PublicKey,
        grants: &[(MetaId, Permissions)],
    ) -> MessageId {
        let id = self.id;
        self.net
            .with(i, |n, now| n.revoke(now, id, member, grants))
            .unwrap()
    }

    pub fn undo(&mut self, i: usize, target: MessageId) -> MessageId {
        let id = self.id;
        self.net.with(i, |n, now| n.undo(now, id, target)).unwrap()
    }

    pub fn events(&mut self, i: usize) -> Vec<Event> {
        self.net.take_events(i)
    }

    /// A signed packet of this community, crafted with any key, global time and sequence
    /// number (to build histories no honest node would, or out of order).
    pub fn craft(
        &self,
        author: &PrivateKey,
        meta: MetaId,
        global_time: u64,
        sequence: Option<u32>,
        payload: &[u8],
    ) -> Bytes {
        let m = self.def.meta(meta).unwrap();
        let resolution = m.resolution.is_dynamic().then_some(0);
        craft_with(
            &self.def,
            author,
            meta,
            resolution,
            global_time,
            sequence,
            payload,
        )
    }

    /// A built-in packet (authorize, undo, ...) signed by `author`.
    pub fn craft_builtin(
        &self,
        author: &PrivateKey,
        payload: &Builtin,
        global_time: u64,
        sequence: Option<u32>,
    ) -> Bytes {
        let meta = MetaId(payload.message_byte());
        self.craft(
            author,
            meta,
            global_time,
            sequence,
            &payload.to_bytes().unwrap(),
        )
    }

    /// An unsigned direct request (missing-proof, missing-message, ...).
    pub fn request(&self, payload: &Builtin) -> Bytes {
        let bytes = payload.to_bytes().unwrap();
        Draft {
            prefix: self.def.prefix(),
            message_byte: payload.message_byte(),
            authors: Authors::None,
            resolution: None,
            global_time: GlobalTime(1),
            sequence: None,
            payload: &bytes,
        }
        .encode(&[])
        .unwrap()
    }
}

pub fn craft_with(
    def: &Definition,
    author: &PrivateKey,
    meta: MetaId,
    resolution: Option<u8>,
    global_time: u64,
    sequence: Option<u32>,
    payload: &[u8],
) -> Bytes {
    let m = def.meta(meta).unwrap();
    let encoding = match m.authentication {
        Authentication::Member { encoding } => encoding,
        _ => KeyEncoding::PublicKey,
    };
    Draft {
        prefix: def.prefix(),
        message_byte: meta.0,
        authors: Authors::Member(author.public(), encoding),
        resolution,
        global_time: GlobalTime(global_time),
        sequence: sequence.map(SequenceNumber),
        payload,
    }
    .encode(&[Some(author)])
    .unwrap()
}

/// The message id of a packet crafted by `author` at `global_time`.
pub fn mid(author: &PrivateKey, global_time: u64) -> MessageId {
    MessageId {
        member: author.member_id(),
        global_time: GlobalTime(global_time),
    }
}

/// The payload of an unsigned direct built-in (a request we captured).
pub fn decode_request(def: &Definition, datagram: &Bytes) -> Builtin {
    let message_byte = datagram[22];
    let layout = dispersy::wire::builtin::layout(message_byte, def.version()).unwrap();
    let packet =
        dispersy::wire::Packet::parse(datagram.clone(), &layout, &dispersy::wire::NoKeys).unwrap();
    Builtin::decode(message_byte, packet.payload()).unwrap()
}

/// Datagrams of one message byte among transmits.
pub fn of_type(transmits: &[Transmit], message_byte: u8) -> Vec<Bytes> {
    transmits
        .iter()
        .filter(|t| t.contents.get(22) == Some(&message_byte))
        .map(|t| t.contents.clone())
        .collect()
}

/// Undone and redone events, as (message, by) and message lists.
pub fn undone_events(events: &[Event]) -> Vec<(MessageId, Option<MessageId>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Undone { message, by, .. } => Some((*message, *by)),
            _ => None,
        })
        .collect()
}

pub fn redone_events(events: &[Event]) -> Vec<MessageId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Redone { message, .. } => Some(*message),
            _ => None,
        })
        .collect()
}

/// A drop counter of node `i` in the community.
pub fn drops(node: &Node, id: &CommunityId, reason: &str) -> u64 {
    node.community_stats(id)
        .and_then(|s| s.drops.get(reason).copied())
        .unwrap_or(0)
}

/// A [`MemStore`] shared between a node and the test, so a node can be "restarted" on the
/// same store.
#[derive(Clone, Default)]
pub struct SharedStore(pub std::sync::Arc<std::sync::Mutex<MemStore>>);

use dispersy::ids::{MemberId, SequenceNumber as Seq};
use dispersy::store::{CommunityRecord, Fingerprint, Store, StoreError};

impl Store for SharedStore {
    fn put_member(&mut self, key: &PublicKey) -> Result<(), StoreError> {
        self.0.lock().unwrap().put_member(key)
    }
    fn member(&self, id: &MemberId) -> Result<Option<PublicKey>, StoreError> {
        self.0.lock().unwrap().member(id)
    }
    fn put_community(&mut self, record: &CommunityRecord) -> Result<(), StoreError> {
        self.0.lock().unwrap().put_community(record)
    }
    fn community(&self, id: &CommunityId) -> Result<Option<CommunityRecord>, StoreError> {
        self.0.lock().unwrap().community(id)
    }
    fn communities(&self) -> Result<Vec<CommunityRecord>, StoreError> {
        self.0.lock().unwrap().communities()
    }
    fn remove_community(&mut self, id: &CommunityId) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove_community(id)
    }
    fn insert_message(&mut self, m: &StoredMessage) -> Result<bool, StoreError> {
        self.0.lock().unwrap().insert_message(m)
    }
    fn replace_message(&mut self, m: &StoredMessage) -> Result<bool, StoreError> {
        self.0.lock().unwrap().replace_message(m)
    }
    fn message(
        &self,
        c: &CommunityId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.0.lock().unwrap().message(c, id)
    }
    fn delete_message(&mut self, c: &CommunityId, id: &MessageId) -> Result<bool, StoreError> {
        self.0.lock().unwrap().delete_message(c, id)
    }
    fn set_undone(
        &mut self,
        c: &CommunityId,
        id: &MessageId,
        undone: dispersy::store::Undone,
    ) -> Result<bool, StoreError> {
        self.0.lock().unwrap().set_undone(c, id, undone)
    }
    fn max_global_time(&self, c: &CommunityId) -> Result<GlobalTime, StoreError> {
        self.0.lock().unwrap().max_global_time(c)
    }
    fn last_sequence(
        &self,
        c: &CommunityId,
        member: &MemberId,
        meta: MetaId,
    ) -> Result<Option<(Seq, GlobalTime)>, StoreError> {
        self.0.lock().unwrap().last_sequence(c, member, meta)
    }
    fn by_sequence(
        &self,
        c: &CommunityId,
        member: &MemberId,
        meta: MetaId,
        low: Seq,
        high: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.0
            .lock()
            .unwrap()
            .by_sequence(c, member, meta, low, high, limit)
    }
    fn range(&self, c: &CommunityId, q: &RangeQuery) -> Result<Vec<StoredMessage>, StoreError> {
        self.0.lock().unwrap().range(c, q)
    }
    fn count(
        &self,
        c: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<u64, StoreError> {
        self.0.lock().unwrap().count(c, metas, low, high)
    }
    fn fingerprint(
        &self,
        c: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<Fingerprint, StoreError> {
        self.0.lock().unwrap().fingerprint(c, metas, low, high)
    }
    fn delete_up_to(
        &mut self,
        c: &CommunityId,
        meta: MetaId,
        up_to: GlobalTime,
    ) -> Result<u64, StoreError> {
        self.0.lock().unwrap().delete_up_to(c, meta, up_to)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.0.lock().unwrap().commit()
    }
}
