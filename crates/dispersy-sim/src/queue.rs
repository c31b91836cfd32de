//! The event queue: a binary heap ordered by (time, insertion sequence).
//!
//! The sequence number makes ties deterministic: two events due at the same microsecond run in
//! the order they were scheduled, whatever the heap's internal layout.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use dispersy::time::Instant;

#[derive(Debug)]
struct Entry<E> {
    at: Instant,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    /// Reversed: the heap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Pending events, earliest first.
#[derive(Debug)]
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
}

impl<E> EventQueue<E> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub(crate) fn push(&mut self, at: Instant, event: E) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            event,
        });
    }

    pub(crate) fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, E)> {
        self.heap.pop().map(|e| (e.at, e.event))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops the events `keep` rejects (used to purge stale timers).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        self.heap.retain(|e| keep(&e.event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_insertion_order() {
        let mut q = EventQueue::new();
        let t = Instant::from_micros;
        for (at, name) in [(5, "a"), (1, "b"), (5, "c"), (3, "d"), (1, "e"), (5, "f")] {
            q.push(t(at), name);
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [
                (t(1), "b"),
                (t(1), "e"),
                (t(3), "d"),
                (t(5), "a"),
                (t(5), "c"),
                (t(5), "f")
            ]
        );
    }

    #[test]
    fn retain_keeps_order() {
        let mut q = EventQueue::new();
        for i in 0..100u64 {
            q.push(Instant::from_micros(i % 7), i);
        }
        q.retain(|&i| i % 2 == 0);
        assert_eq!(q.len(), 50);
        let mut last = (Instant::ZERO, 0);
        while let Some((at, i)) = q.pop() {
            assert!(i % 2 == 0);
            assert!((at, i) >= last, "{at:?} {i} after {last:?}");
            last = (at, i);
        }
    }
}
