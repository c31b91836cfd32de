//! A cache of signatures already found valid, which several nodes in one process may share.
//!
//! In a simulation of a thousand nodes every disseminated packet is verified a thousand times,
//! once by each node, although the answer is always the same. A [`VerifiedCache`] set on the
//! nodes with [`Node::set_verified_cache`](super::Node::set_verified_cache) remembers the
//! signatures that verified, so only the first node pays for each.
//!
//! - **What is remembered**: the SHA-256 of (key, signed bytes, signature) of every signature
//!   that verified. Failures are never cached: a hit can only skip work whose answer was "valid"
//!   for exactly these bytes, so the cache cannot make a node accept anything it would refuse.
//! - **Bounded**: at most `capacity` entries; when full, the oldest entry not used since it was
//!   last passed over is evicted (second-chance), so packets still spreading stay in.
//! - **Lone signatures** are verified singly, which is about 1.5 times faster than a batch of
//!   one and gives the same verdict (ZIP 215).
//! - **Randomness**: nodes draw one seed per batch from their RNG for the batch coefficients,
//!   whatever the cache holds, so a run with the cache makes the same random choices as a run
//!   without it.
//! - **Threads**: the table sits behind a mutex, so nodes on several threads may share it; the
//!   simulator uses it from one.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest as _, Sha256};

use crate::crypto::{self, BatchItem, SignatureError};

/// SHA-256 of one signature's key, signed bytes and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Digest([u8; 32]);

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // A SHA-256 output is already uniform: eight of its bytes make a good table hash.
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// Passes a [`Digest`]'s prefix through as the hash.
#[derive(Debug, Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Hit, miss and eviction counts of a [`VerifiedCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedStats {
    /// Signatures answered from the cache.
    pub hits: u64,
    /// Signatures that had to be verified.
    pub misses: u64,
    /// Entries evicted to stay within capacity.
    pub evictions: u64,
    /// Entries held now.
    pub entries: u64,
}

#[derive(Debug, Default)]
struct Table {
    /// Digest -> used since it was last passed over by eviction.
    entries: HashMap<Digest, bool, BuildHasherDefault<PrefixHasher>>,
    /// Insertion order, for second-chance eviction.
    order: VecDeque<Digest>,
    stats: VerifiedStats,
}

/// Signatures known to be valid, shared by the nodes of one process. See the module docs.
#[derive(Debug)]
pub struct VerifiedCache {
    table: Mutex<Table>,
    capacity: usize,
}

impl VerifiedCache {
    /// An empty cache holding at most `capacity` signatures (at least one).
    pub fn new(capacity: usize) -> VerifiedCache {
        VerifiedCache {
            table: Mutex::new(Table::default()),
            capacity: capacity.max(1),
        }
    }

    /// The most signatures held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters so far.
    pub fn stats(&self) -> VerifiedStats {
        self.with(|t| t.stats).unwrap_or_default()
    }

    /// Runs `f` on the table; `None` if another thread panicked holding it (the cache is then
    /// simply not used).
    fn with<T>(&self, f: impl FnOnce(&mut Table) -> T) -> Option<T> {
        self.table.lock().ok().map(|mut t| f(&mut t))
    }

    fn digest(item: &BatchItem<'_>) -> Digest {
        let mut h = Sha256::new();
        h.update(b"dispersy verified v1");
        let key = item.key.to_bin();
        h.update((key.len() as u64).to_le_bytes());
        h.update(key);
        h.update((item.message.len() as u64).to_le_bytes());
        h.update(item.message);
        h.update(item.signature.as_bytes());
        Digest(h.finalize().into())
    }

    /// Verifies `items` like [`crypto::verify_batch`], answering from the cache where it can and
    /// remembering the signatures that verified.
    pub(crate) fn verify_batch<R: RngCore + CryptoRng>(
        &self,
        items: &[BatchItem<'_>],
        rng: &mut R,
    ) -> Vec<Result<(), SignatureError>> {
        let digests: Vec<Digest> = items.iter().map(Self::digest).collect();
        let known: Vec<bool> = self
            .with(|t| {
                let known: Vec<bool> = digests
                    .iter()
                    .map(|d| t.entries.get_mut(d).map(|used| *used = true).is_some())
                    .collect();
                let hits = known.iter().filter(|k| **k).count() as u64;
                t.stats.hits += hits;
                t.stats.misses += known.len() as u64 - hits;
                known
            })
            .unwrap_or_else(|| vec![false; items.len()]);
        let unknown: Vec<BatchItem<'_>> = items
            .iter()
            .zip(&known)
            .filter(|(_, k)| !**k)
            .map(|(i, _)| *i)
            .collect();
        let mut checked = match unknown.as_slice() {
            [] => Vec::new(),
            // A batch of one costs about 1.5 times a single verification, and under ZIP 215
            // both give the same verdict.
            [one] => vec![one.key.verify(one.message, one.signature)],
            many => crypto::verify_batch(many, rng),
        }
        .into_iter();
        let verdicts: Vec<Result<(), SignatureError>> = known
            .iter()
            .map(|k| match k {
                true => Ok(()),
                false => checked.next().unwrap_or(Err(SignatureError::Invalid)),
            })
            .collect();
        let valid = digests
            .iter()
            .zip(&known)
            .zip(&verdicts)
            .filter(|((_, k), v)| !**k && v.is_ok())
            .map(|((d, _), _)| *d);
        self.with(|t| {
            for d in valid {
                t.insert(d, self.capacity);
            }
        });
        verdicts
    }
}

impl Table {
    fn insert(&mut self, d: Digest, capacity: usize) {
        if self.entries.contains_key(&d) {
            return;
        }
        // Second chance: an entry used since it was last passed over goes to the back once.
        // Every pass clears a flag or evicts, so this ends within two rounds of the queue.
        while self.entries.len() >= capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            match self.entries.get_mut(&old) {
                Some(used) if *used => {
                    *used = false;
                    self.order.push_back(old);
                }
                Some(_) => {
                    self.entries.remove(&old);
                    self.stats.evictions += 1;
                }
                None => {}
            }
        }
        self.entries.insert(d, false);
        self.order.push_back(d);
        self.stats.entries = self.entries.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{PrivateKey, Signature};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Messages signed by the keys in turn.
    struct Signed {
        keys: Vec<PrivateKey>,
        messages: Vec<Vec<u8>>,
        signatures: Vec<Signature>,
    }

    impl Signed {
        fn new(keys: u64, messages: u8) -> Signed {
            let mut rng = ChaCha20Rng::seed_from_u64(keys);
            let keys: Vec<PrivateKey> = (0..keys).map(|_| PrivateKey::generate(&mut rng)).collect();
            let messages: Vec<Vec<u8>> = (0..messages).map(|i| vec![i; 40]).collect();
            let signatures = messages
                .iter()
                .enumerate()
                .map(|(i, m)| keys[i % keys.len()].sign(m))
                .collect();
            Signed {
                keys,
                messages,
                signatures,
            }
        }

        fn item(&self, i: usize) -> BatchItem<'_> {
            BatchItem {
                key: self.keys[i % self.keys.len()].public(),
                message: &self.messages[i],
                signature: &self.signatures[i],
            }
        }
    }

    #[test]
    fn remembers_only_valid_signatures() {
        let s = Signed::new(3, 3);
        let bad = s.keys[0].sign(b"something else");
        let forged = BatchItem {
            signature: &bad,
            ..s.item(0)
        };
        let cache = VerifiedCache::new(10);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let batch = [s.item(0), s.item(1), forged];
        let first = cache.verify_batch(&batch, &mut rng);
        assert_eq!(first, crypto::verify_batch(&batch, &mut rng));
        assert!(first[0].is_ok() && first[1].is_ok() && first[2].is_err());
        let st = cache.stats();
        assert_eq!((st.hits, st.misses, st.entries), (0, 3, 2));

        // Again: the valid ones hit, the bad one is checked (and fails) again.
        assert_eq!(cache.verify_batch(&batch, &mut rng), first);
        let st = cache.stats();
        assert_eq!((st.hits, st.misses, st.entries), (2, 4, 2));

        // A valid signature presented under another key is not a hit.
        let swapped = BatchItem {
            key: s.keys[2].public(),
            ..s.item(0)
        };
        assert!(cache.verify_batch(&[swapped], &mut rng)[0].is_err());
        assert_eq!(cache.stats().hits, 2);
    }

    #[test]
    fn stays_within_capacity_and_keeps_used_entries() {
        let s = Signed::new(1, 6);
        let cache = VerifiedCache::new(3);
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for i in 0..3 {
            cache.verify_batch(&[s.item(i)], &mut rng);
        }
        // Entry 0 is used again, so entry 1 is evicted first when entry 3 arrives.
        cache.verify_batch(&[s.item(0)], &mut rng);
        cache.verify_batch(&[s.item(3)], &mut rng);
        let st = cache.stats();
        assert_eq!((st.entries, st.evictions), (3, 1));
        cache.verify_batch(&[s.item(0)], &mut rng);
        assert_eq!(cache.stats().hits, st.hits + 1, "the used entry survived");
        cache.verify_batch(&[s.item(1)], &mut rng);
        assert_eq!(
            cache.stats().hits,
            st.hits + 1,
            "the unused one was evicted"
        );
        for i in 0..6 {
            cache.verify_batch(&[s.item(i)], &mut rng);
        }
        assert!(cache.stats().entries <= 3);
    }
}
