//! An in-memory [`Store`]: ordered maps, deterministic, used by tests and the simulator and as
//! the model the SQLite store is checked against.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{
    CommunityRecord, Fingerprint, Order, RangeQuery, Store, StoreError, StoredMessage, Undone,
};
use crate::crypto::PublicKey;
use crate::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};

type MessageKey = (CommunityId, GlobalTime, MemberId);
type SequenceKey = (CommunityId, MemberId, MetaId, SequenceNumber);

/// A [`Store`] held in ordered maps. Nothing survives the process.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    members: BTreeMap<MemberId, PublicKey>,
    communities: BTreeMap<CommunityId, CommunityRecord>,
    messages: BTreeMap<MessageKey, StoredMessage>,
    sequences: BTreeMap<SequenceKey, GlobalTime>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Number of stored messages over all communities.
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    fn key(community: &CommunityId, id: &MessageId) -> MessageKey {
        (*community, id.global_time, id.member)
    }

    fn community_messages(
        &self,
        community: &CommunityId,
        low: GlobalTime,
        high: GlobalTime,
    ) -> impl DoubleEndedIterator<Item = &StoredMessage> {
        let lo = (*community, low, MemberId([0; 20]));
        let hi = (*community, high, MemberId([0xff; 20]));
        let range = if low > high {
            // An empty range; BTreeMap::range panics when start > end.
            self.messages
                .range((Bound::Included(lo), Bound::Excluded(lo)))
        } else {
            self.messages.range(lo..=hi)
        };
        range.map(|(_, m)| m)
    }

    fn index(&mut self, m: &StoredMessage) {
        if let Some(seq) = m.sequence {
            self.sequences
                .insert((m.community, m.member, m.meta, seq), m.global_time);
        }
    }

    fn unindex(&mut self, m: &StoredMessage) {
        if let Some(seq) = m.sequence {
            let key = (m.community, m.member, m.meta, seq);
            if self.sequences.get(&key) == Some(&m.global_time) {
                self.sequences.remove(&key);
            }
        }
    }
}

impl Store for MemStore {
    fn put_member(&mut self, key: &PublicKey) -> Result<(), StoreError> {
        self.members.insert(key.member_id(), key.clone());
        Ok(())
    }

    fn member(&self, id: &MemberId) -> Result<Option<PublicKey>, StoreError> {
        Ok(self.members.get(id).cloned())
    }

    fn put_community(&mut self, record: &CommunityRecord) -> Result<(), StoreError> {
        self.communities.insert(record.id, record.clone());
        Ok(())
    }

    fn community(&self, id: &CommunityId) -> Result<Option<CommunityRecord>, StoreError> {
        Ok(self.communities.get(id).cloned())
    }

    fn communities(&self) -> Result<Vec<CommunityRecord>, StoreError> {
        Ok(self.communities.values().cloned().collect())
    }

    fn remove_community(&mut self, id: &CommunityId) -> Result<(), StoreError> {
        self.communities.remove(id);
        self.messages.retain(|(c, _, _), _| c != id);
        self.sequences.retain(|(c, _, _, _), _| c != id);
        Ok(())
    }

    fn insert_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        let key = Self::key(&message.community, &message.id());
        if self.messages.contains_key(&key) {
            return Ok(false);
        }
        self.index(message);
        self.messages.insert(key, message.clone());
        Ok(true)
    }

    fn replace_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        let key = Self::key(&message.community, &message.id());
        let Some(old) = self.messages.remove(&key) else {
            return Ok(false);
        };
        self.unindex(&old);
        self.index(message);
        self.messages.insert(key, message.clone());
        Ok(true)
    }

    fn message(
        &self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self.messages.get(&Self::key(community, id)).cloned())
    }

    fn delete_message(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<bool, StoreError> {
        match self.messages.remove(&Self::key(community, id)) {
            Some(old) => {
                self.unindex(&old);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn set_undone(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
        undone: Undone,
    ) -> Result<bool, StoreError> {
        match self.messages.get_mut(&Self::key(community, id)) {
            Some(m) => {
                m.undone = undone;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn max_global_time(&self, community: &CommunityId) -> Result<GlobalTime, StoreError> {
        Ok(self
            .community_messages(community, GlobalTime::ZERO, GlobalTime(u64::MAX))
            .next_back()
            .map_or(GlobalTime::ZERO, |m| m.global_time))
    }

    fn last_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
    ) -> Result<Option<(SequenceNumber, GlobalTime)>, StoreError> {
        let lo = (*community, *member, meta, SequenceNumber(0));
        let hi = (*community, *member, meta, SequenceNumber(u32::MAX));
        Ok(self
            .sequences
            .range(lo..=hi)
            .next_back()
            .map(|((_, _, _, s), gt)| (*s, *gt)))
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
        if low > high {
            return Ok(Vec::new());
        }
        let lo = (*community, *member, meta, low);
        let hi = (*community, *member, meta, high);
        Ok(self
            .sequences
            .range(lo..=hi)
            .filter_map(|(_, gt)| self.messages.get(&(*community, *gt, *member)))
            .take(limit)
            .cloned()
            .collect())
    }

    fn range(
        &self,
        community: &CommunityId,
        query: &RangeQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let iter = self.community_messages(community, query.low, query.high);
        let pick = |m: &&StoredMessage| query.matches(m);
        Ok(match query.order {
            Order::Ascending => iter.filter(pick).take(query.limit).cloned().collect(),
            Order::Descending => iter.rev().filter(pick).take(query.limit).cloned().collect(),
        })
    }

    fn count(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<u64, StoreError> {
        Ok(self
            .community_messages(community, low, high)
            .filter(|m| metas.is_none_or(|ms| ms.contains(&m.meta)))
            .count() as u64)
    }

    fn fingerprint(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<Fingerprint, StoreError> {
        let mut fp = Fingerprint::default();
        for m in self
            .community_messages(community, low, high)
            .filter(|m| metas.is_none_or(|ms| ms.contains(&m.meta)))
        {
            fp.add(m.digest);
        }
        Ok(fp)
    }

    fn delete_up_to(
        &mut self,
        community: &CommunityId,
        meta: MetaId,
        up_to: GlobalTime,
    ) -> Result<u64, StoreError> {
        let doomed: Vec<StoredMessage> = self
            .community_messages(community, GlobalTime::ZERO, up_to)
            .filter(|m| m.meta == meta)
            .cloned()
            .collect();
        for m in &doomed {
            self.messages.remove(&Self::key(community, &m.id()));
            self.unindex(m);
        }
        Ok(doomed.len() as u64)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::digest;
    use bytes::Bytes;

    fn msg(gt: u64, member: u8, meta: u8, seq: Option<u32>) -> StoredMessage {
        let packet = Bytes::from(vec![member, meta, gt as u8]);
        StoredMessage {
            community: CommunityId([1; 20]),
            meta: MetaId(meta),
            member: MemberId([member; 20]),
            global_time: GlobalTime(gt),
            sequence: seq.map(SequenceNumber),
            second_member: None,
            digest: digest(&packet),
            packet,
            undone: Undone::No,
        }
    }

    #[test]
    fn unique_per_author_and_time() {
        let mut s = MemStore::new();
        assert!(s.insert_message(&msg(5, 1, 1, None)).unwrap());
        assert!(!s.insert_message(&msg(5, 1, 2, None)).unwrap());
        assert!(s.insert_message(&msg(5, 2, 1, None)).unwrap());
        assert_eq!(
            s.max_global_time(&CommunityId([1; 20])).unwrap(),
            GlobalTime(5)
        );
        assert_eq!(
            s.max_global_time(&CommunityId([2; 20])).unwrap(),
            GlobalTime(0)
        );
    }

    #[test]
    fn ranges_sequences_and_fingerprints() {
        let c = CommunityId([1; 20]);
        let mut s = MemStore::new();
        for gt in 1..=20 {
            s.insert_message(&msg(gt, (gt % 3) as u8, 1, Some(gt as u32)))
                .unwrap();
        }
        let mut q = RangeQuery::between(GlobalTime(5), GlobalTime(15), 100);
        assert_eq!(s.range(&c, &q).unwrap().len(), 11);
        q.modulo = 2;
        q.offset = 1;
        assert!(
            s.range(&c, &q)
                .unwrap()
                .iter()
                .all(|m| m.global_time.0 % 2 == 1)
        );
        q.order = Order::Descending;
        q.limit = 2;
        let got: Vec<u64> = s
            .range(&c, &q)
            .unwrap()
            .iter()
            .map(|m| m.global_time.0)
            .collect();
        assert_eq!(got, vec![15, 13]);
        assert_eq!(
            s.count(&c, None, GlobalTime(1), GlobalTime(20)).unwrap(),
            20
        );
        let fp = s
            .fingerprint(&c, None, GlobalTime(1), GlobalTime(20))
            .unwrap();
        assert_eq!(fp.count, 20);
        let m1 = MemberId([1; 20]);
        assert_eq!(
            s.last_sequence(&c, &m1, MetaId(1)).unwrap(),
            Some((SequenceNumber(19), GlobalTime(19)))
        );
        let seq = s
            .by_sequence(
                &c,
                &m1,
                MetaId(1),
                SequenceNumber(1),
                SequenceNumber(10),
                10,
            )
            .unwrap();
        assert_eq!(
            seq.iter().map(|m| m.global_time.0).collect::<Vec<_>>(),
            vec![1, 4, 7, 10]
        );
        assert_eq!(s.delete_up_to(&c, MetaId(1), GlobalTime(10)).unwrap(), 10);
        assert_eq!(
            s.count(&c, None, GlobalTime(1), GlobalTime(20)).unwrap(),
            10
        );
        assert_eq!(
            s.range(&c, &RangeQuery::between(GlobalTime(9), GlobalTime(3), 10))
                .unwrap(),
            vec![]
        );
    }
}
