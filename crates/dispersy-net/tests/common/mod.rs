//! Shared pieces of the driver's integration tests: keys, a community, nodes, a store that is
//! slow to commit, and bounded waiting.

#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dispersy::community::payload::Layout;
use dispersy::community::policy::Authentication;
use dispersy::community::{Definition, MetaMessage};
use dispersy::crypto::{PrivateKey, PublicKey};
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use dispersy::node::{Config as NodeConfig, Node};
use dispersy::store::{
    CommunityRecord, Fingerprint, MemStore, RangeQuery, Store, StoreError, StoredMessage, Undone,
};
use dispersy::wire::KeyEncoding;
use dispersy_net::{Config, Driver};
use rand::SeedableRng;

/// A full-sync text message.
pub const POST: MetaId = MetaId(1);
/// A direct text message (delivered, not stored).
pub const CHAT: MetaId = MetaId(2);
/// A full-sync text message naming its author by member id only (a receiver that does not
/// know the author delays it and asks for the identity).
pub const NOTE: MetaId = MetaId(3);

pub fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

pub fn definition() -> Definition {
    let text: Arc<Layout> = Arc::new(Layout::Text);
    Definition::builder(key(1000).public().clone())
        .kind("net-test")
        .meta(MetaMessage::new(POST.0, "post").payload_schema(text.clone()))
        .meta(
            MetaMessage::new(CHAT.0, "chat")
                .direct()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(NOTE.0, "note")
                .authentication(Authentication::Member {
                    encoding: KeyEncoding::MemberId,
                })
                .payload_schema(text),
        )
        .build()
        .unwrap()
}

pub fn community() -> CommunityId {
    definition().id()
}

pub fn text(s: &str) -> Vec<u8> {
    Layout::Text.encode(s.as_bytes()).unwrap()
}

pub fn untext(payload: &[u8]) -> String {
    String::from_utf8(Layout::Text.decode(payload).unwrap().to_vec()).unwrap()
}

pub fn node(seed: u64, store: Box<dyn Store>) -> Node {
    let config = NodeConfig {
        seed,
        ..NodeConfig::default()
    };
    Node::new(config, key(seed), store)
}

/// A driver config for tests: the given listen addresses, no periodic interface scan.
pub fn config(listen: &[&str]) -> Config {
    Config {
        listen: listen.iter().map(|a| a.parse().unwrap()).collect(),
        interface_scan: None,
        ..Config::default()
    }
}

/// Starts a node that joined the test community.
pub async fn start(seed: u64, store: Box<dyn Store>, config: Config) -> Driver {
    let driver = Driver::start(node(seed, store), config).unwrap();
    driver.handle().join(definition()).await.unwrap();
    driver
}

/// Stored messages of a meta-message in the test community.
pub fn stored(node: &Node, meta: MetaId) -> Vec<StoredMessage> {
    let mut q = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, usize::MAX);
    q.metas = Some(vec![meta]);
    node.store().range(&community(), &q).unwrap()
}

/// Waits until `check` holds, polling every 10 ms; fails after 30 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(result.is_ok(), "timed out waiting for: {what}");
}

/// Waits until the node behind `handle` stores `n` posts.
pub async fn stores_posts(what: &str, handle: &dispersy_net::Handle, n: usize) {
    eventually(what, || {
        let handle = handle.clone();
        async move {
            handle
                .call(|node, _| stored(node, POST).len())
                .await
                .unwrap()
                == n
        }
    })
    .await;
}

/// The next message of `meta` a subscriber sees (other events are skipped); fails after 30 s.
pub async fn next_message(
    events: &mut tokio::sync::broadcast::Receiver<dispersy::node::Event>,
    meta: MetaId,
) -> dispersy::node::Delivered {
    let wait = async {
        loop {
            if let dispersy::node::Event::Message(m) = events.recv().await.unwrap()
                && m.meta == meta
            {
                return m;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("a message arrives")
}

/// Signed posts by `author` (made by a node that is never driven), as datagrams.
pub fn posts(author_seed: u64, n: usize, to: SocketAddr) -> Vec<Bytes> {
    messages(author_seed, POST, n, to)
}

/// Signed messages of `meta` by `author`, as datagrams.
pub fn messages(author_seed: u64, meta: MetaId, n: usize, to: SocketAddr) -> Vec<Bytes> {
    let mut author = node(author_seed, Box::new(MemStore::new()));
    author
        .join(dispersy::time::Instant::ZERO, definition())
        .unwrap();
    while author.poll_transmit().is_some() {}
    (0..n)
        .map(|i| {
            author
                .create_message(
                    dispersy::time::Instant::ZERO,
                    community(),
                    meta,
                    &text(&format!("message {i}")),
                    &[to],
                )
                .unwrap();
            let t = author.poll_transmit().unwrap();
            assert_eq!(t.destination, to);
            t.contents
        })
        .collect()
}

/// What a [`SlowStore`] reports about its commits.
#[derive(Debug, Default)]
pub struct CommitLog {
    /// Writes since the last commit.
    pub pending: AtomicU64,
    /// Commits.
    pub commits: AtomicU64,
    /// Messages stored as of the last commit.
    pub committed_messages: AtomicU64,
    /// While set, every commit fails (a full disk); the writes stay in the store.
    pub fail: AtomicBool,
}

/// A MemStore whose commits take `delay` (a disk that fsyncs slowly) and that tracks what is
/// committed.
pub struct SlowStore {
    inner: MemStore,
    delay: Duration,
    log: Arc<CommitLog>,
}

impl SlowStore {
    pub fn new(delay: Duration) -> (SlowStore, Arc<CommitLog>) {
        let log = Arc::new(CommitLog::default());
        (
            SlowStore {
                inner: MemStore::new(),
                delay,
                log: log.clone(),
            },
            log,
        )
    }

    fn wrote(&self) {
        self.log.pending.fetch_add(1, Ordering::SeqCst);
    }
}

impl Store for SlowStore {
    fn put_member(&mut self, key: &PublicKey) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_member(key)
    }
    fn member(&self, id: &MemberId) -> Result<Option<PublicKey>, StoreError> {
        self.inner.member(id)
    }
    fn put_community(&mut self, record: &CommunityRecord) -> Result<(), StoreError> {
        self.wrote();
        self.inner.put_community(record)
    }
    fn community(&self, id: &CommunityId) -> Result<Option<CommunityRecord>, StoreError> {
        self.inner.community(id)
    }
    fn communities(&self) -> Result<Vec<CommunityRecord>, StoreError> {
        self.inner.communities()
    }
    fn remove_community(&mut self, id: &CommunityId) -> Result<(), StoreError> {
        self.wrote();
        self.inner.remove_community(id)
    }
    fn insert_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.insert_message(message)
    }
    fn replace_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.replace_message(message)
    }
    fn message(
        &self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.inner.message(community, id)
    }
    fn delete_message(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.delete_message(community, id)
    }
    fn set_undone(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
        undone: Undone,
    ) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.set_undone(community, id, undone)
    }
    fn max_global_time(&self, community: &CommunityId) -> Result<GlobalTime, StoreError> {
        self.inner.max_global_time(community)
    }
    fn last_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
    ) -> Result<Option<(SequenceNumber, GlobalTime)>, StoreError> {
        self.inner.last_sequence(community, member, meta)
    }
    fn by_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
        low: SequenceNumber,
        high: SequenceNumber,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner
            .by_sequence(community, member, meta, low, high, limit)
    }
    fn range(
        &self,
        community: &CommunityId,
        query: &RangeQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner.range(community, query)
    }
    fn count(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<u64, StoreError> {
        self.inner.count(community, metas, low, high)
    }
    fn fingerprint(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<Fingerprint, StoreError> {
        self.inner.fingerprint(community, metas, low, high)
    }
    fn delete_up_to(
        &mut self,
        community: &CommunityId,
        meta: MetaId,
        up_to: GlobalTime,
    ) -> Result<u64, StoreError> {
        self.wrote();
        self.inner.delete_up_to(community, meta, up_to)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        // A disk that takes its time (blocking, as a real fsync does).
        std::thread::sleep(self.delay);
        if self.log.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("disk full (a test store)".into()));
        }
        self.inner.commit()?;
        self.log.pending.store(0, Ordering::SeqCst);
        self.log.commits.fetch_add(1, Ordering::SeqCst);
        self.log
            .committed_messages
            .store(self.inner.message_count() as u64, Ordering::SeqCst);
        Ok(())
    }
}
