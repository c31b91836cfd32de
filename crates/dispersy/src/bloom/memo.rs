//! A memo of Bloom digests, which several nodes in one process may share.
//!
//! A sync filter hashes every packet it holds or tests as `MD5(prefix ‖ packet)`, and every
//! filter has its own random prefix byte, so one node hashes each stored packet again for every
//! filter it builds or answers. In a simulation of a thousand nodes holding the same packets the
//! same digests are computed over and over. A [`BloomMemo`] remembers them.
//!
//! - **Keyed by content**: an entry is the packet's full bytes; the table hashes its length and
//!   last 32 bytes (a signature, for signed packets) and compares the whole packet on lookup, so
//!   two packets share an entry only when they are byte for byte the same.
//! - **What is remembered**: per packet, the MD5 digest for each of the 256 prefixes, filled in
//!   as they are asked for. Only MD5 with a prefix is memoised (every sync filter); other filters
//!   hash as before.
//! - **Pure**: a hit returns exactly the digest a miss computes, so filters built or tested with
//!   the memo have the same bits and give the same answers as without it.
//! - **Bounded**: at most `capacity` packets; when a new packet finds the table full, the table
//!   is cleared (counted in [`BloomMemoStats::clears`]).
//! - **Installation**: see [`with_memo`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use md5::{Digest as _, Md5};

/// Hit, miss and clear counts of a [`BloomMemo`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BloomMemoStats {
    /// Digests answered from the memo.
    pub hits: u64,
    /// Digests that had to be computed.
    pub misses: u64,
    /// Times the table was cleared to stay within capacity.
    pub clears: u64,
    /// Packets held now.
    pub entries: u64,
}

/// Hashes a packet by its length and its last 32 bytes (FNV-1a over them). Equality still
/// compares the whole packet; this only spreads the table.
#[derive(Debug, Default)]
struct TailHasher(u64);

impl Hasher for TailHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(32)..];
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for &b in tail {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = self.0.rotate_left(17) ^ (n as u64);
    }
}

/// The MD5 digests of one packet, per prefix.
#[derive(Debug)]
struct Slot {
    /// Bit `p` set when `digests[p]` holds `MD5(p ‖ packet)`.
    have: [u64; 4],
    digests: Box<[[u8; 16]]>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            have: [0; 4],
            digests: vec![[0u8; 16]; 256].into_boxed_slice(),
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    packets: HashMap<Box<[u8]>, Slot, BuildHasherDefault<TailHasher>>,
    stats: BloomMemoStats,
}

/// A shared memo of `MD5(prefix ‖ packet)` digests; see the [module docs](self).
#[derive(Debug)]
pub struct BloomMemo {
    capacity: usize,
    table: Mutex<Table>,
}

fn md5(prefix: u8, key: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([prefix]);
    h.update(key);
    h.finalize().into()
}

impl BloomMemo {
    /// An empty memo of at most `capacity` packets (at least one).
    pub fn new(capacity: usize) -> BloomMemo {
        BloomMemo {
            capacity: capacity.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// `MD5(prefix ‖ key)`, from the memo when it holds it.
    pub fn md5(&self, prefix: u8, key: &[u8]) -> [u8; 16] {
        let Ok(mut t) = self.table.lock() else {
            // A poisoned lock only means another user panicked; compute without the memo.
            return md5(prefix, key);
        };
        let t = &mut *t;
        let word = usize::from(prefix / 64);
        let bit = 1u64 << (prefix % 64);
        if let Some(slot) = t.packets.get_mut(key) {
            if let (Some(have), Some(d)) =
                (slot.have.get(word), slot.digests.get(usize::from(prefix)))
                && have & bit != 0
            {
                t.stats.hits += 1;
                return *d;
            }
            let d = md5(prefix, key);
            if let (Some(have), Some(dst)) = (
                slot.have.get_mut(word),
                slot.digests.get_mut(usize::from(prefix)),
            ) {
                *have |= bit;
                *dst = d;
            }
            t.stats.misses += 1;
            return d;
        }
        if t.packets.len() >= self.capacity {
            t.packets.clear();
            t.stats.clears += 1;
        }
        let d = md5(prefix, key);
        let mut slot = Slot::new();
        if let (Some(have), Some(dst)) = (
            slot.have.get_mut(word),
            slot.digests.get_mut(usize::from(prefix)),
        ) {
            *have |= bit;
            *dst = d;
        }
        t.packets.insert(key.into(), slot);
        t.stats.misses += 1;
        d
    }

    /// Counts so far.
    pub fn stats(&self) -> BloomMemoStats {
        match self.table.lock() {
            Ok(t) => BloomMemoStats {
                entries: t.packets.len() as u64,
                ..t.stats
            },
            Err(_) => BloomMemoStats::default(),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<BloomMemo>>> = const { RefCell::new(None) };
}

/// Restores the memo that was current before [`with_memo`], even on unwinding.
struct Restore(Option<Arc<BloomMemo>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Runs `f` with `memo` as the Bloom memo of this thread, then restores the previous one.
///
/// Why a thread-local rather than a handle passed down: sync filters are built and tested in
/// five places (the sync strategy, catch-up, reconciliation, the responder and the requester's
/// re-check), each reached through its own chain of calls that carries no shared context, and
/// the memo changes no result, only how fast digests are had. Scoping it to one call of a
/// node's entry point (the simulator wraps `handle_datagram` and `handle_timeout`) keeps the
/// core free of process-wide state: outside such a call, and on every other thread, no memo is
/// in use and filters hash as always.
pub fn with_memo<T>(memo: Option<&Arc<BloomMemo>>, f: impl FnOnce() -> T) -> T {
    let prev = CURRENT.with(|c| c.replace(memo.cloned()));
    let _restore = Restore(prev);
    f()
}

/// `MD5(prefix ‖ key)` through the current memo, or `None` when there is none.
#[inline]
pub(super) fn current_md5(prefix: u8, key: &[u8]) -> Option<[u8; 16]> {
    CURRENT.with(|c| c.borrow().as_ref().map(|m| m.md5(prefix, key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_equal_misses_and_capacity_clears() {
        let memo = BloomMemo::new(2);
        let a = memo.md5(3, b"packet a");
        assert_eq!(a, md5(3, b"packet a"));
        assert_eq!(memo.md5(3, b"packet a"), a);
        assert_eq!(memo.md5(4, b"packet a"), md5(4, b"packet a"));
        // Same tail and length, different content: separate entries.
        let x = [1u8; 40];
        let mut y = [1u8; 40];
        y[0] = 2;
        assert_eq!(memo.md5(9, &x), md5(9, &x));
        assert_eq!(memo.md5(9, &y), md5(9, &y));
        let s = memo.stats();
        assert_eq!((s.hits, s.misses), (1, 4));
        assert_eq!(s.clears, 1, "{s:?}");
        assert!(s.entries <= 2);
        assert_eq!(memo.md5(9, &y), md5(9, &y));
        assert_eq!(memo.stats().hits, 2);
    }

    #[test]
    fn with_memo_scopes_and_restores() {
        assert!(current_md5(1, b"k").is_none());
        let memo = Arc::new(BloomMemo::new(8));
        let inner = with_memo(Some(&memo), || {
            let d = current_md5(1, b"k");
            with_memo(None, || assert!(current_md5(1, b"k").is_none()));
            d
        });
        assert_eq!(inner, Some(md5(1, b"k")));
        assert!(current_md5(1, b"k").is_none());
        assert_eq!(memo.stats().misses, 1);
    }
}
