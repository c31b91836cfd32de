//! Messages that cannot be checked yet wait here, bounded, while the node asks for what they
//! need: an unknown author's identity, the sequence numbers before them, the message an undo
//! refers to, or the permission proof that allows them.
//!
//! Each entry names what it waits for. When the node accepts something, it wakes the entries
//! that waited for it and runs them through the pipeline again; an entry that still cannot be
//! checked waits again (keeping its original deadline). Entries past their deadline are dropped
//! and counted. Requests for the same missing thing are sent once per timeout, not once per
//! waiting message.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::ids::{GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use crate::time::Instant;

/// What a delayed message waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Waiting {
    /// The key of a member named by id.
    Member(MemberId),
    /// Sequence number `next` (and those after it) of an author's meta-message.
    Sequence {
        member: MemberId,
        meta: MetaId,
        next: SequenceNumber,
    },
    /// A specific message (the target of an undo).
    Message(MessageId),
    /// A permission proof for an author's message at a global time.
    Proof {
        member: MemberId,
        global_time: GlobalTime,
    },
}

impl Waiting {
    /// Name used in counters.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Waiting::Member(_) => "identity",
            Waiting::Sequence { .. } => "sequence",
            Waiting::Message(_) => "message",
            Waiting::Proof { .. } => "proof",
        }
    }

    /// Whether accepting `accepted` may satisfy this wait. Proofs wake on any permission
    /// message; the pipeline re-checks precisely. (The queue wakes by [`Waiting::woken_range`];
    /// the tests check the two agree.)
    #[cfg(test)]
    pub(crate) fn woken_by(&self, accepted: &Wake) -> bool {
        match (self, accepted) {
            (Waiting::Member(m), Wake::Member(k)) => m == k,
            (
                Waiting::Sequence { member, meta, next },
                Wake::Sequence {
                    member: m,
                    meta: t,
                    sequence,
                },
            ) => member == m && meta == t && next <= sequence,
            (Waiting::Message(id), Wake::Message(got)) => id == got,
            (Waiting::Proof { .. }, Wake::Permission) => true,
            _ => false,
        }
    }

    /// The waits `accepted` may satisfy, as a range of the ordered `Waiting` keys (exactly
    /// those [`Waiting::woken_by`] accepts).
    fn woken_range(accepted: &Wake) -> (Waiting, Waiting) {
        match *accepted {
            Wake::Member(m) => (Waiting::Member(m), Waiting::Member(m)),
            Wake::Sequence {
                member,
                meta,
                sequence,
            } => (
                Waiting::Sequence {
                    member,
                    meta,
                    next: SequenceNumber(0),
                },
                Waiting::Sequence {
                    member,
                    meta,
                    next: sequence,
                },
            ),
            Wake::Message(id) => (Waiting::Message(id), Waiting::Message(id)),
            Wake::Permission => (
                Waiting::Proof {
                    member: MemberId([0; 20]),
                    global_time: GlobalTime::ZERO,
                },
                Waiting::Proof {
                    member: MemberId([0xff; 20]),
                    global_time: GlobalTime(u64::MAX),
                },
            ),
        }
    }
}

/// Something the node just learned or accepted that may wake delayed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Wake {
    Member(MemberId),
    /// A message with this sequence number was accepted: wakes what waited for it or earlier.
    Sequence {
        member: MemberId,
        meta: MetaId,
        sequence: SequenceNumber,
    },
    Message(MessageId),
    Permission,
}

/// One waiting datagram.
#[derive(Debug, Clone)]
pub(crate) struct Delayed {
    pub(crate) source: SocketAddr,
    pub(crate) datagram: Bytes,
    pub(crate) waiting: Waiting,
    pub(crate) deadline: Instant,
}

/// The bounded queue of one community. Entries are indexed by what they wait for, by deadline
/// and by content, so pushing, waking and expiring cost a logarithm each, however full the
/// queue is (catch-up can keep thousands of messages waiting for lower sequence numbers).
#[derive(Debug)]
pub(crate) struct DelayQueue {
    entries: BTreeMap<u64, Delayed>,
    /// Entry numbers by what they wait for.
    waits: BTreeMap<Waiting, BTreeSet<u64>>,
    /// Entry numbers by deadline.
    deadlines: BTreeSet<(Instant, u64)>,
    /// What is queued, to keep identical datagrams waiting for the same thing once.
    queued: BTreeSet<(Waiting, Bytes)>,
    next: u64,
    capacity: usize,
    timeout: Duration,
    /// Requests sent and when they may be sent again.
    requested: BTreeMap<Waiting, Instant>,
}

/// Outcome of [`DelayQueue::push`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; the caller should send a request for it.
    QueuedRequest,
    /// Queued; a request for the same thing is already out.
    Queued,
    /// The queue is full; the datagram was dropped.
    Full,
}

impl DelayQueue {
    pub(crate) fn new(capacity: usize, timeout: Duration) -> DelayQueue {
        DelayQueue {
            entries: BTreeMap::new(),
            waits: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            queued: BTreeSet::new(),
            next: 0,
            capacity,
            timeout,
            requested: BTreeMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries held at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues a datagram. A re-queued entry keeps its `deadline` when given.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: Bytes,
        waiting: Waiting,
        deadline: Option<Instant>,
    ) -> Pushed {
        if self.entries.len() >= self.capacity {
            return Pushed::Full;
        }
        let deadline = deadline.unwrap_or(now + self.timeout);
        // Identical datagrams waiting for the same thing are kept once.
        if !self.queued.insert((waiting, datagram.clone())) {
            return Pushed::Queued;
        }
        let id = self.next;
        self.next += 1;
        self.waits.entry(waiting).or_default().insert(id);
        self.deadlines.insert((deadline, id));
        self.entries.insert(
            id,
            Delayed {
                source,
                datagram,
                waiting,
                deadline,
            },
        );
        match self.requested.get(&waiting) {
            Some(until) if *until > now => Pushed::Queued,
            _ => {
                self.requested.insert(waiting, now + self.timeout);
                Pushed::QueuedRequest
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<Delayed> {
        let e = self.entries.remove(&id)?;
        if let Some(ids) = self.waits.get_mut(&e.waiting) {
            ids.remove(&id);
            if ids.is_empty() {
                self.waits.remove(&e.waiting);
            }
        }
        self.deadlines.remove(&(e.deadline, id));
        self.queued.remove(&(e.waiting, e.datagram.clone()));
        Some(e)
    }

    /// Removes and returns the entries `wake` may satisfy, oldest first.
    pub(crate) fn wake(&mut self, wake: &Wake) -> Vec<Delayed> {
        let (low, high) = Waiting::woken_range(wake);
        let mut ids: Vec<u64> = self
            .waits
            .range(low..=high)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        let woken: Vec<Delayed> = ids.into_iter().filter_map(|id| self.remove(id)).collect();
        // What was missing arrived, so a new wait may ask again; a permission message only
        // may complete a proof, and asking again on every one would multiply requests.
        if !woken.is_empty() && *wake != Wake::Permission {
            let marks: Vec<Waiting> = self.requested.range(low..=high).map(|(w, _)| *w).collect();
            for w in marks {
                self.requested.remove(&w);
            }
        }
        woken
    }

    /// Removes and returns entries past their deadline; forgets expired request marks.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Delayed> {
        let due: Vec<u64> = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .map(|(_, id)| *id)
            .collect();
        let expired = due.into_iter().filter_map(|id| self.remove(id)).collect();
        self.requested.retain(|_, until| *until > now);
        expired
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let entries = self.deadlines.first().map(|(d, _)| *d);
        let requests = self.requested.values().copied().min();
        entries.into_iter().chain(requests).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn one_request_per_missing_thing_and_bounded() {
        let mut q = DelayQueue::new(2, Duration::from_secs(10));
        let m = Waiting::Member(MemberId([1; 20]));
        let t0 = Instant::from_secs(1);
        assert_eq!(
            q.push(t0, addr(), Bytes::from_static(b"a"), m, None),
            Pushed::QueuedRequest
        );
        assert_eq!(
            q.push(t0, addr(), Bytes::from_static(b"b"), m, None),
            Pushed::Queued
        );
        assert_eq!(
            q.push(t0, addr(), Bytes::from_static(b"c"), m, None),
            Pushed::Full
        );
        assert_eq!(q.next_deadline(), Some(Instant::from_secs(11)));
        let woken = q.wake(&Wake::Member(MemberId([1; 20])));
        assert_eq!(woken.len(), 2);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn permission_wakes_do_not_repeat_proof_requests() {
        let mut q = DelayQueue::new(8, Duration::from_secs(10));
        let w = Waiting::Proof {
            member: MemberId([3; 20]),
            global_time: GlobalTime(4),
        };
        let t0 = Instant::from_secs(1);
        let first = q.push(t0, addr(), Bytes::from_static(b"p"), w, None);
        assert_eq!(first, Pushed::QueuedRequest);
        let woken = q.wake(&Wake::Permission);
        assert_eq!(woken.len(), 1);
        // Still not allowed: it waits again, without a second request.
        let again = q.push(
            t0,
            addr(),
            Bytes::from_static(b"p"),
            w,
            Some(woken[0].deadline),
        );
        assert_eq!(again, Pushed::Queued);
    }

    #[test]
    fn expiry() {
        let mut q = DelayQueue::new(8, Duration::from_secs(10));
        let w = Waiting::Message(MessageId {
            member: MemberId([2; 20]),
            global_time: GlobalTime(5),
        });
        q.push(Instant::ZERO, addr(), Bytes::from_static(b"x"), w, None);
        assert!(q.expire(Instant::from_secs(9)).is_empty());
        assert_eq!(q.expire(Instant::from_secs(10)).len(), 1);
        assert_eq!(q.next_deadline(), None);
        // After expiry a new request may go out again.
        assert_eq!(
            q.push(
                Instant::from_secs(11),
                addr(),
                Bytes::from_static(b"x"),
                w,
                None
            ),
            Pushed::QueuedRequest
        );
    }

    #[test]
    fn sequence_waits_wake_up_to_the_accepted_number() {
        let mut q = DelayQueue::new(64, Duration::from_secs(10));
        let (a, b) = (MemberId([1; 20]), MemberId([2; 20]));
        let t0 = Instant::from_secs(1);
        let wait = |member, next| Waiting::Sequence {
            member,
            meta: MetaId(1),
            next: SequenceNumber(next),
        };
        for (i, w) in [wait(a, 3), wait(a, 5), wait(b, 3), wait(a, 9)]
            .into_iter()
            .enumerate()
        {
            let datagram = Bytes::from(vec![i as u8]);
            q.push(t0, addr(), datagram, w, None);
        }
        let accepted = |member, sequence| Wake::Sequence {
            member,
            meta: MetaId(1),
            sequence: SequenceNumber(sequence),
        };
        assert!(q.wake(&accepted(a, 2)).is_empty());
        let woken = q.wake(&accepted(a, 5));
        let nexts: Vec<Waiting> = woken.iter().map(|d| d.waiting).collect();
        assert_eq!(nexts, [wait(a, 3), wait(a, 5)]);
        assert!(woken.iter().all(|d| d.waiting.woken_by(&accepted(a, 5))));
        assert!(!wait(b, 3).woken_by(&accepted(a, 5)));
        assert_eq!(q.len(), 2);
        // Proofs wake on any permission message; other waits never do.
        let proof = Waiting::Proof {
            member: b,
            global_time: GlobalTime(4),
        };
        q.push(t0, addr(), Bytes::from_static(b"p"), proof, None);
        assert_eq!(q.wake(&Wake::Permission).len(), 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.expire(t0 + Duration::from_secs(10)).len(), 2);
        assert_eq!((q.len(), q.next_deadline()), (0, None));
    }
}
