//! A bounded cache of member keys in front of the store.
//!
//! Parsing an Ed25519 key decompresses a curve point; hashing its blob is far cheaper. The cache
//! lets a node that receives thousands of messages from the same hundred authors parse each key
//! once, and resolves member ids (for messages that name their author by id) without a store
//! read in the common case.

use std::collections::{BTreeMap, VecDeque};

use sha1::{Digest, Sha1};

use crate::crypto::{KeyError, PublicKey};
use crate::ids::MemberId;
use crate::store::Store;
use crate::wire::KeyLookup;

/// Bounded, first-in-first-out map of member id to key.
#[derive(Debug)]
pub(crate) struct KeyCache {
    keys: BTreeMap<MemberId, PublicKey>,
    order: VecDeque<MemberId>,
    capacity: usize,
}

impl KeyCache {
    pub(crate) fn new(capacity: usize) -> KeyCache {
        KeyCache {
            keys: BTreeMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn insert(&mut self, key: &PublicKey) {
        let id = key.member_id();
        if self.keys.insert(id, key.clone()).is_none() {
            self.order.push_back(id);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }

    pub(crate) fn get(&self, id: &MemberId) -> Option<&PublicKey> {
        self.keys.get(id)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// A [`KeyLookup`] over the cache, falling back to the store.
pub(crate) struct Lookup<'a> {
    pub(crate) cache: &'a KeyCache,
    pub(crate) store: &'a dyn Store,
}

impl KeyLookup for Lookup<'_> {
    fn by_id(&self, member: &MemberId) -> Option<PublicKey> {
        if let Some(k) = self.cache.get(member) {
            return Some(k.clone());
        }
        self.store.member(member).ok().flatten()
    }

    fn by_bin(&self, bin: &[u8]) -> Result<PublicKey, KeyError> {
        let id = MemberId(Sha1::digest(bin).into());
        match self.cache.get(&id) {
            Some(k) if k.to_bin() == bin => Ok(k.clone()),
            _ => PublicKey::from_bin(bin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use crate::store::MemStore;
    use rand::SeedableRng;

    #[test]
    fn bounded_and_falls_back_to_store() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let keys: Vec<PublicKey> = (0..5)
            .map(|_| PrivateKey::generate(&mut rng).public().clone())
            .collect();
        let mut cache = KeyCache::new(3);
        for k in &keys {
            cache.insert(k);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&keys[0].member_id()).is_none());
        let mut store = MemStore::new();
        store.put_member(&keys[0]).unwrap();
        let lookup = Lookup {
            cache: &cache,
            store: &store,
        };
        assert_eq!(lookup.by_id(&keys[0].member_id()), Some(keys[0].clone()));
        assert_eq!(lookup.by_id(&keys[4].member_id()), Some(keys[4].clone()));
        assert_eq!(lookup.by_bin(keys[4].to_bin()).unwrap(), keys[4]);
        assert!(lookup.by_bin(b"junk").is_err());
    }
}
