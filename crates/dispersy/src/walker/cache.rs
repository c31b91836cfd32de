//! A bounded map of outstanding requests keyed by a 16-bit identifier, with timeouts driven by
//! `now` (Dispersy's `RequestCache` with `RandomNumberCache`, §11.4).
//!
//! The walker keeps its outstanding introduction-requests here; the node can reuse the type for
//! any other request/answer pair identified by a `u16` (signature-requests, for instance).
//! Expiry is polled: after [`RequestCache::next_timeout`] the owner drains
//! [`RequestCache::pop_expired`] and reacts to each timed-out entry.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;

use crate::time::Instant;

/// Why a request could not be added or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The cache holds as many requests as it may.
    #[error("request cache full ({0} outstanding)")]
    Full(usize),
    /// The identifier is already in use.
    #[error("request identifier {0} already in use")]
    Duplicate(u16),
    /// No request with this identifier is outstanding.
    #[error("no outstanding request with identifier {0}")]
    Unknown(u16),
}

#[derive(Debug, Clone)]
struct Entry<T> {
    deadline: Instant,
    value: T,
}

/// Outstanding requests keyed by identifier; at most `capacity` at a time.
#[derive(Debug, Clone)]
pub struct RequestCache<T> {
    entries: BTreeMap<u16, Entry<T>>,
    deadlines: BTreeSet<(Instant, u16)>,
    capacity: usize,
}

impl<T> RequestCache<T> {
    /// An empty cache holding at most `capacity` requests (clamped to 1..=65536).
    pub fn new(capacity: usize) -> RequestCache<T> {
        RequestCache {
            entries: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            capacity: capacity.clamp(1, 1 << 16),
        }
    }

    /// Number of outstanding requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a request under a random identifier not in use and returns the identifier. It times
    /// out at `now + timeout`.
    pub fn insert<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        timeout: Duration,
        value: T,
        rng: &mut R,
    ) -> Result<u16, CacheError> {
        if self.entries.len() >= self.capacity {
            return Err(CacheError::Full(self.entries.len()));
        }
        // A few random draws almost always succeed; then scan from a random start, which is
        // bounded and certain to find a free number since the cache is not full.
        let mut id = rng.r#gen::<u16>();
        for _ in 0..16 {
            if !self.entries.contains_key(&id) {
                break;
            }
            id = rng.r#gen::<u16>();
        }
        while self.entries.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.insert_with(now, timeout, id, value)?;
        Ok(id)
    }

    /// Adds a request under a fixed identifier (Dispersy's `NumberCache`); refuses one in use.
    pub fn insert_with(
        &mut self,
        now: Instant,
        timeout: Duration,
        id: u16,
        value: T,
    ) -> Result<(), CacheError> {
        if self.entries.contains_key(&id) {
            return Err(CacheError::Duplicate(id));
        }
        if self.entries.len() >= self.capacity {
            return Err(CacheError::Full(self.entries.len()));
        }
        let deadline = now + timeout;
        self.entries.insert(id, Entry { deadline, value });
        self.deadlines.insert((deadline, id));
        Ok(())
    }

    /// Whether `id` is outstanding.
    pub fn contains(&self, id: u16) -> bool {
        self.entries.contains_key(&id)
    }

    /// The request under `id`.
    pub fn get(&self, id: u16) -> Option<&T> {
        self.entries.get(&id).map(|e| &e.value)
    }

    /// The request under `id`, mutably.
    pub fn get_mut(&mut self, id: u16) -> Option<&mut T> {
        self.entries.get_mut(&id).map(|e| &mut e.value)
    }

    /// Removes and returns the request under `id`; an unknown id is an error, never a panic
    /// (Dispersy's double-pop bug).
    pub fn pop(&mut self, id: u16) -> Result<T, CacheError> {
        let entry = self.entries.remove(&id).ok_or(CacheError::Unknown(id))?;
        self.deadlines.remove(&(entry.deadline, id));
        Ok(entry.value)
    }

    /// When the next request times out.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Removes and returns one request whose deadline is at or before `now`, earliest first.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(u16, T)> {
        let &(deadline, id) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.deadlines.remove(&(deadline, id));
        let entry = self.entries.remove(&id)?;
        Some((id, entry.value))
    }

    /// Outstanding requests by identifier.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &T)> {
        self.entries.iter().map(|(id, e)| (*id, &e.value))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(10_500);

    #[test]
    fn single_cache() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = RequestCache::new(8);
        let id = c.insert(Instant::ZERO, TIMEOUT, "walk", &mut rng).unwrap();
        assert!(c.contains(id));
        assert_eq!(c.get(id), Some(&"walk"));
        assert_eq!(c.next_timeout(), Some(Instant::from_micros(10_500_000)));
        assert_eq!(c.pop(id), Ok("walk"));
        assert!(c.is_empty());
        assert_eq!(c.next_timeout(), None);
    }

    #[test]
    fn multiple_caches_have_unique_numbers() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut c = RequestCache::new(1 << 16);
        let mut ids = BTreeSet::new();
        for i in 0..100 {
            assert!(ids.insert(c.insert(Instant::ZERO, TIMEOUT, i, &mut rng).unwrap()));
        }
        assert_eq!(c.len(), 100);
        // Even a nearly full cache finds the last free numbers.
        let mut small = RequestCache::new(1 << 16);
        for _ in 0..(1 << 16) {
            small.insert(Instant::ZERO, TIMEOUT, (), &mut rng).unwrap();
        }
        assert_eq!(small.len(), 1 << 16);
        assert_eq!(
            small.insert(Instant::ZERO, TIMEOUT, (), &mut rng),
            Err(CacheError::Full(1 << 16))
        );
    }

    #[test]
    fn double_pop_is_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut c = RequestCache::new(8);
        let id = c.insert(Instant::ZERO, TIMEOUT, 1, &mut rng).unwrap();
        assert_eq!(c.pop(id), Ok(1));
        assert_eq!(c.pop(id), Err(CacheError::Unknown(id)));
    }

    #[test]
    fn fixed_number_refuses_duplicates() {
        let mut c = RequestCache::new(8);
        c.insert_with(Instant::ZERO, TIMEOUT, 42, 'a').unwrap();
        assert_eq!(
            c.insert_with(Instant::ZERO, TIMEOUT, 42, 'b'),
            Err(CacheError::Duplicate(42))
        );
        assert_eq!(c.get(42), Some(&'a'));
    }

    #[test]
    fn timeouts_in_order_and_bounded() {
        let mut c = RequestCache::new(2);
        c.insert_with(Instant::from_secs(1), TIMEOUT, 7, "late")
            .unwrap();
        c.insert_with(Instant::ZERO, TIMEOUT, 9, "early").unwrap();
        assert_eq!(
            c.insert_with(Instant::ZERO, TIMEOUT, 1, "x"),
            Err(CacheError::Full(2))
        );
        assert_eq!(c.pop_expired(Instant::from_secs(10)), None);
        let at = Instant::from_micros(11_500_000);
        assert_eq!(c.pop_expired(at), Some((9, "early")));
        assert_eq!(c.pop_expired(at), Some((7, "late")));
        assert_eq!(c.pop_expired(at), None);
        assert!(c.is_empty());
    }
}
