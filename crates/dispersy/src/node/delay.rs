//! Messages that cannot be checked yet wait here, bounded, while the node asks for what they
//! need: an unknown author's identity, the sequence numbers before them, the message an undo
//! refers to, or the permission proof that allows them.
//!
//! Each entry names what it waits for. When the node accepts something, it wakes the entries
//! that waited for it and runs them through the pipeline again; an entry that still cannot be
//! checked waits again (keeping its original deadline). Entries past their deadline are dropped
//! and counted. Requests for the same missing thing are sent once per timeout, not once per
//! waiting message.

use std::collections::{BTreeMap, VecDeque};
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
    /// message; the pipeline re-checks precisely.
    pub(crate) fn woken_by(&self, accepted: &Wake) -> bool {
        match (self, accepted) {
            (Waiting::Member(m), Wake::Member(k)) => m == k,
            (Waiting::Sequence { member, meta, .. }, Wake::Sequence { member: m, meta: t }) => {
                member == m && meta == t
            }
            (Waiting::Message(id), Wake::Message(got)) => id == got,
            (Waiting::Proof { .. }, Wake::Permission) => true,
            _ => false,
        }
    }
}

/// Something the node just learned or accepted that may wake delayed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Wake {
    Member(MemberId),
    Sequence { member: MemberId, meta: MetaId },
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

/// The bounded queue of one community.
#[derive(Debug)]
pub(crate) struct DelayQueue {
    entries: VecDeque<Delayed>,
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
            entries: VecDeque::new(),
            capacity,
            timeout,
            requested: BTreeMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
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
        if self
            .entries
            .iter()
            .any(|e| e.waiting == waiting && e.datagram == datagram)
        {
            return Pushed::Queued;
        }
        self.entries.push_back(Delayed {
            source,
            datagram,
            waiting,
            deadline,
        });
        match self.requested.get(&waiting) {
            Some(until) if *until > now => Pushed::Queued,
            _ => {
                self.requested.insert(waiting, now + self.timeout);
                Pushed::QueuedRequest
            }
        }
    }

    /// Removes and returns the entries `wake` may satisfy.
    pub(crate) fn wake(&mut self, wake: &Wake) -> Vec<Delayed> {
        let mut woken = Vec::new();
        self.entries.retain(|e| {
            if e.waiting.woken_by(wake) {
                woken.push(e.clone());
                false
            } else {
                true
            }
        });
        // What was missing arrived, so a new wait may ask again; a permission message only
        // may complete a proof, and asking again on every one would multiply requests.
        if !woken.is_empty() && *wake != Wake::Permission {
            self.requested.retain(|w, _| !w.woken_by(wake));
        }
        woken
    }

    /// Removes and returns entries past their deadline; forgets expired request marks.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Delayed> {
        let mut expired = Vec::new();
        self.entries.retain(|e| {
            if e.deadline <= now {
                expired.push(e.clone());
                false
            } else {
                true
            }
        });
        self.requested.retain(|_, until| *until > now);
        expired
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let entries = self.entries.iter().map(|e| e.deadline);
        let requests = self.requested.values().copied();
        entries.chain(requests).min()
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
}
