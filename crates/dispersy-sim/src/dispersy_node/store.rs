//! The store a simulated node keeps across restarts.
//!
//! A [`dispersy::node::Node`] owns its store as a `Box<dyn Store>`; to rebuild a node after
//! churn with the same messages, the simulator hands the new node another handle to the same
//! store. [`SharedStore`] is that handle for the in-memory store; the SQLite store is reopened
//! from its file instead.

use std::sync::{Arc, Mutex, MutexGuard};

use dispersy::crypto::PublicKey;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use dispersy::store::{
    CommunityRecord, Fingerprint, MemStore, RangeQuery, Store, StoreError, StoredMessage, Undone,
};

/// A [`MemStore`] several node incarnations use in turn (only one at a time).
#[derive(Debug, Clone, Default)]
pub struct SharedStore(Arc<Mutex<MemStore>>);

impl SharedStore {
    /// An empty store.
    pub fn new() -> SharedStore {
        SharedStore::default()
    }

    fn get(&self) -> Result<MutexGuard<'_, MemStore>, StoreError> {
        self.0
            .lock()
            .map_err(|_| StoreError::Backend("a previous user of this store panicked".into()))
    }
}

impl Store for SharedStore {
    fn put_member(&mut self, key: &PublicKey) -> Result<(), StoreError> {
        self.get()?.put_member(key)
    }

    fn member(&self, id: &MemberId) -> Result<Option<PublicKey>, StoreError> {
        self.get()?.member(id)
    }

    fn put_community(&mut self, record: &CommunityRecord) -> Result<(), StoreError> {
        self.get()?.put_community(record)
    }

    fn community(&self, id: &CommunityId) -> Result<Option<CommunityRecord>, StoreError> {
        self.get()?.community(id)
    }

    fn communities(&self) -> Result<Vec<CommunityRecord>, StoreError> {
        self.get()?.communities()
    }

    fn remove_community(&mut self, id: &CommunityId) -> Result<(), StoreError> {
        self.get()?.remove_community(id)
    }

    fn insert_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        self.get()?.insert_message(message)
    }

    fn replace_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        self.get()?.replace_message(message)
    }

    fn message(
        &self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.get()?.message(community, id)
    }

    fn delete_message(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<bool, StoreError> {
        self.get()?.delete_message(community, id)
    }

    fn set_undone(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
        undone: Undone,
    ) -> Result<bool, StoreError> {
        self.get()?.set_undone(community, id, undone)
    }

    fn max_global_time(&self, community: &CommunityId) -> Result<GlobalTime, StoreError> {
        self.get()?.max_global_time(community)
    }

    fn last_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
    ) -> Result<Option<(SequenceNumber, GlobalTime)>, StoreError> {
        self.get()?.last_sequence(community, member, meta)
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
        self.get()?
            .by_sequence(community, member, meta, low, high, limit)
    }

    fn range(
        &self,
        community: &CommunityId,
        query: &RangeQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.get()?.range(community, query)
    }

    fn count(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<u64, StoreError> {
        self.get()?.count(community, metas, low, high)
    }

    fn fingerprint(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<Fingerprint, StoreError> {
        self.get()?.fingerprint(community, metas, low, high)
    }

    fn delete_up_to(
        &mut self,
        community: &CommunityId,
        meta: MetaId,
        up_to: GlobalTime,
    ) -> Result<u64, StoreError> {
        self.get()?.delete_up_to(community, meta, up_to)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.get()?.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_share_one_store() {
        let mut a = SharedStore::new();
        let b = a.clone();
        let record = CommunityRecord {
            id: CommunityId([7; 20]),
            master: None,
            spec: None,
            kind: "t".into(),
        };
        a.put_community(&record).unwrap();
        drop(a);
        assert_eq!(b.communities().unwrap(), vec![record]);
    }
}
