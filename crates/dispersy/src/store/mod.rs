//! Persistent state: the synchronous, domain-level [`Store`] trait and [`MemStore`].
//!
//! A store keeps what a node must not forget across restarts: member keys, the communities it
//! joined, and every synced message (full-sync and last-sync distributions) with its raw packet
//! and undo mark. It does not keep candidates, the timeline (rebuilt from stored permission
//! messages), delayed messages or request caches.
//!
//! Rules every implementation follows:
//!
//! - **Uniqueness**: at most one message per `(community, author, global time)`. Dispersy also
//!   enforced this, but inconsistently across schema versions; here it is the one rule.
//! - **Batching**: writes may be buffered; [`Store::commit`] makes everything written before it
//!   durable. The node commits once per burst of packets and after creating messages, never per
//!   message.
//! - **Reads see writes**: a read after a write (committed or not) sees it.
//! - **Hostile-input safe**: a store never panics on what it reads back; corruption is a
//!   [`StoreError`].
//! - **What callers guarantee**: the node never stores two messages of one author and
//!   meta-message with the same sequence number (the pipeline resolves such conflicts first), and
//!   never a global time above [`GlobalTime::MAX`] (the acceptable range stops below it).
//!
//! `MemStore` and `dispersy_sqlite::SqliteStore` are checked against each other by a model-based
//! test of random operations, including close and reopen.

mod mem;

pub use mem::MemStore;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::crypto::PublicKey;
use crate::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The file is not a database of ours (foreign, truncated or overwritten).
    #[error("not a dispersy database: {0}")]
    NotOurs(String),
    /// The database was written by a newer version of dispersy.
    #[error("database schema version {found} is newer than this program supports ({supported})")]
    TooNew {
        /// Version found in the file.
        found: u32,
        /// Newest version this build understands.
        supported: u32,
    },
    /// Stored data fails a consistency check.
    #[error("database is corrupt: {0}")]
    Corrupt(String),
    /// The backend failed (I/O, disk full, locked by another process, ...).
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// Whether, and why, a stored message is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Undone {
    /// Live content.
    #[default]
    No,
    /// Undone by an undo-own or undo-other message (named by its id).
    ByMessage(MessageId),
    /// Undone because a revoke or a dynamic-settings change no longer allows it; a later change
    /// may allow it again.
    ByPolicy,
}

/// A synced message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The community.
    pub community: CommunityId,
    /// The meta-message (its message byte).
    pub meta: MetaId,
    /// The author (first author of a double-signed message).
    pub member: MemberId,
    /// The global time the author claimed.
    pub global_time: GlobalTime,
    /// Sequence number, for full-sync meta-messages that have them.
    pub sequence: Option<SequenceNumber>,
    /// The second author of a double-signed message.
    pub second_member: Option<MemberId>,
    /// The complete packet, signatures included.
    pub packet: Bytes,
    /// [`digest`] of the packet, kept for range fingerprints.
    pub digest: u64,
    /// Undo mark.
    pub undone: Undone,
}

impl StoredMessage {
    /// The message's id within its community.
    pub fn id(&self) -> MessageId {
        MessageId {
            member: self.member,
            global_time: self.global_time,
        }
    }
}

/// A 64-bit digest of a packet: the first 8 bytes of its SHA-256, little-endian.
///
/// Range fingerprints sum these (wrapping). Collisions only cost a reconciliation fast path its
/// shortcut; Bloom-filter sync still converges.
pub fn digest(packet: &[u8]) -> u64 {
    let d = Sha256::digest(packet);
    u64::from_le_bytes(d[..8].try_into().expect("invariant: SHA-256 has 32 bytes"))
}

/// What a node remembers about a community it joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityRecord {
    /// The community id (the master key's member id).
    pub id: CommunityId,
    /// The master key, once known.
    pub master: Option<PublicKey>,
    /// The community's declarative description (TOML), for communities not defined in code.
    pub spec: Option<String>,
    /// Free-form classification (the community type's name).
    pub kind: String,
}

/// Order of a range query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest global time first (ties: author id ascending).
    #[default]
    Ascending,
    /// Newest global time first (ties: author id descending).
    Descending,
}

/// Which messages a range query returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeQuery {
    /// Only these meta-messages (`None`: all).
    pub metas: Option<Vec<MetaId>>,
    /// Only this author.
    pub member: Option<MemberId>,
    /// Lowest global time, inclusive.
    pub low: GlobalTime,
    /// Highest global time, inclusive.
    pub high: GlobalTime,
    /// Only messages with `(global_time + offset) % modulo == 0`; modulo 1 takes everything.
    pub modulo: u16,
    /// See `modulo`.
    pub offset: u16,
    /// Result order.
    pub order: Order,
    /// At most this many messages.
    pub limit: usize,
}

impl RangeQuery {
    /// Everything between `low` and `high`, ascending, at most `limit`.
    pub fn between(low: GlobalTime, high: GlobalTime, limit: usize) -> RangeQuery {
        RangeQuery {
            metas: None,
            member: None,
            low,
            high,
            modulo: 1,
            offset: 0,
            order: Order::Ascending,
            limit,
        }
    }

    /// Whether a message matches (everything but `limit` and `order`).
    pub fn matches(&self, m: &StoredMessage) -> bool {
        m.global_time >= self.low
            && m.global_time <= self.high
            && self.metas.as_ref().is_none_or(|ms| ms.contains(&m.meta))
            && self.member.is_none_or(|member| member == m.member)
            && (self.modulo <= 1
                || (m.global_time.0.wrapping_add(u64::from(self.offset))) % u64::from(self.modulo)
                    == 0)
    }
}

/// Count and wrapping sum of [`digest`]s over a set of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Fingerprint {
    /// Number of messages.
    pub count: u64,
    /// Wrapping sum of their digests.
    pub sum: u64,
}

impl Fingerprint {
    /// Adds one message's digest.
    pub fn add(&mut self, digest: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(digest);
    }
}

/// The node's persistent state. Synchronous and domain-level; see the module docs for the rules.
pub trait Store: Send {
    /// Remembers a member's public key (idempotent).
    fn put_member(&mut self, key: &PublicKey) -> Result<(), StoreError>;
    /// The key of a member, if known.
    fn member(&self, id: &MemberId) -> Result<Option<PublicKey>, StoreError>;

    /// Adds or replaces a community record.
    fn put_community(&mut self, record: &CommunityRecord) -> Result<(), StoreError>;
    /// One community record.
    fn community(&self, id: &CommunityId) -> Result<Option<CommunityRecord>, StoreError>;
    /// Every community record, ordered by id.
    fn communities(&self) -> Result<Vec<CommunityRecord>, StoreError>;
    /// Forgets a community and every message of it.
    fn remove_community(&mut self, id: &CommunityId) -> Result<(), StoreError>;

    /// Stores a message. Returns `false` (and changes nothing) when a message with the same
    /// `(community, author, global time)` is already stored.
    fn insert_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError>;
    /// Replaces the stored message with the same id (duplicate resolution picked a winner).
    /// Returns `false` when there was none.
    fn replace_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError>;
    /// One message by id.
    fn message(
        &self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError>;
    /// Deletes one message; `false` when absent.
    fn delete_message(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<bool, StoreError>;
    /// Sets a message's undo mark; `false` when absent.
    fn set_undone(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
        undone: Undone,
    ) -> Result<bool, StoreError>;

    /// Highest global time of any stored message of the community (zero when none). Must not
    /// scan the community's messages.
    fn max_global_time(&self, community: &CommunityId) -> Result<GlobalTime, StoreError>;
    /// Highest stored sequence number of an author's messages of a meta-message, with that
    /// message's global time.
    fn last_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
    ) -> Result<Option<(SequenceNumber, GlobalTime)>, StoreError>;
    /// An author's messages of a meta-message with sequence numbers in `low..=high`, ascending,
    /// at most `limit`.
    fn by_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
        low: SequenceNumber,
        high: SequenceNumber,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Messages matching a range query.
    fn range(
        &self,
        community: &CommunityId,
        query: &RangeQuery,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Number of messages of the given meta-messages (`None`: all) in `low..=high`.
    fn count(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<u64, StoreError>;
    /// Fingerprint of the messages of the given meta-messages (`None`: all) in `low..=high`.
    fn fingerprint(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<Fingerprint, StoreError>;
    /// Deletes the messages of a meta-message with global time at most `up_to` (pruning).
    /// Returns how many were deleted.
    fn delete_up_to(
        &mut self,
        community: &CommunityId,
        meta: MetaId,
        up_to: GlobalTime,
    ) -> Result<u64, StoreError>;

    /// Makes every write so far durable. Called once per burst; cheap when nothing changed.
    fn commit(&mut self) -> Result<(), StoreError>;
}
