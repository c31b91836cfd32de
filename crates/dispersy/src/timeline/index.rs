//! The indexes built from EFFECTIVE permission messages: who holds which permission from which
//! global time on, and which resolution policy each dynamic meta-message has.
//!
//! Both are ordered maps keyed by (key, global time), so a lookup "as of global time t" is one
//! `range(..=t).next_back()`: O(log n). The holding index is one flat map with small sorted
//! vectors inside, because almost every key is written once by one message: nested maps would
//! allocate a mostly empty B-tree node per key and per slot.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::message::Tiebreak;
use crate::ids::{GlobalTime, MemberId, MessageId, MetaId};
use crate::wire::builtin::Permissions;

/// One permission bit of one member on one meta-message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HoldKey {
    pub member: MemberId,
    pub meta: MetaId,
    /// Exactly one bit.
    pub bit: Permissions,
}

impl HoldKey {
    /// The first and last keys of one member, for range scans.
    pub fn member_bounds(member: MemberId) -> (HoldKey, HoldKey) {
        let key = |meta, bit| HoldKey {
            member,
            meta: MetaId(meta),
            bit: Permissions(bit),
        };
        (key(0, 0), key(u8::MAX, u8::MAX))
    }
}

/// The last global time, for inclusive range ends.
const END: GlobalTime = GlobalTime(u64::MAX);

/// The effective authorize and revoke messages that write one key at one global time, each
/// sorted by message id (usually one message in all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    pub grants: Vec<MessageId>,
    pub revokes: Vec<MessageId>,
}

impl Slot {
    /// The slot's verdict: a revoke at the same global time beats any grant there.
    pub fn held(&self) -> Option<bool> {
        if !self.revokes.is_empty() {
            Some(false)
        } else if !self.grants.is_empty() {
            Some(true)
        } else {
            None
        }
    }

    /// The messages that make [`Slot::held`] what it is.
    pub fn deciding(&self) -> &[MessageId] {
        if self.revokes.is_empty() {
            &self.grants
        } else {
            &self.revokes
        }
    }
}

/// What a holding looks like at one global time, before the master rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding<'a> {
    /// Nothing ever written at or before that time.
    Never,
    /// The latest slot at or before that time.
    Slot(&'a Slot),
}

impl Holding<'_> {
    pub fn held(self) -> bool {
        matches!(self, Holding::Slot(s) if s.held() == Some(true))
    }
}

/// A change of a key's value over `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyChange {
    pub key: HoldKey,
    pub from: GlobalTime,
    pub until: Option<GlobalTime>,
}

/// Holdings written by effective authorize and revoke messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holdings {
    map: BTreeMap<(HoldKey, GlobalTime), Slot>,
}

impl Holdings {
    pub fn at(&self, key: &HoldKey, t: GlobalTime) -> Holding<'_> {
        self.map
            .range((*key, GlobalTime::ZERO)..=(*key, t))
            .next_back()
            .map_or(Holding::Never, |(_, slot)| Holding::Slot(slot))
    }

    /// Adds (`add`) or removes one message's write of `key` at `t`. Returns the range over which
    /// the key's value changed, if it did.
    pub fn write(
        &mut self,
        key: HoldKey,
        t: GlobalTime,
        id: MessageId,
        revoke: bool,
        add: bool,
    ) -> Option<KeyChange> {
        let before = self.at(&key, t).held();
        let slot = self.map.entry((key, t)).or_default();
        let list = if revoke {
            &mut slot.revokes
        } else {
            &mut slot.grants
        };
        match (list.binary_search(&id), add) {
            (Err(at), true) => list.insert(at, id),
            (Ok(at), false) => {
                list.remove(at);
            }
            _ => {}
        }
        if slot.held().is_none() {
            self.map.remove(&(key, t));
        }
        let after = self.at(&key, t).held();
        if before == after {
            return None;
        }
        let until = self
            .map
            .range((Bound::Excluded((key, t)), Bound::Included((key, END))))
            .next()
            .map(|((_, gt), _)| *gt);
        Some(KeyChange {
            key,
            from: t,
            until,
        })
    }

    /// Every key of one member with its value at `t`.
    pub fn of_member(&self, member: MemberId, t: GlobalTime) -> Vec<(HoldKey, Holding<'_>)> {
        let (lo, hi) = HoldKey::member_bounds(member);
        let mut out: Vec<(HoldKey, Holding<'_>)> = Vec::new();
        for ((key, gt), slot) in self.map.range((lo, GlobalTime::ZERO)..=(hi, END)) {
            if out.last().is_none_or(|(k, _)| k != key) {
                out.push((*key, Holding::Never));
            }
            if *gt <= t
                && let Some(last) = out.last_mut()
            {
                last.1 = Holding::Slot(slot);
            }
        }
        out
    }

    /// Number of non-empty (key, global time) slots.
    pub fn slots(&self) -> usize {
        self.map.len()
    }
}

/// The settings of one meta-message at one global time: policy index by (tiebreak, id); the
/// greatest wins.
type Settings = BTreeMap<(Tiebreak, MessageId), u8>;

/// Policy choices written by effective dynamic-settings messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policies {
    map: BTreeMap<MetaId, BTreeMap<GlobalTime, Settings>>,
}

/// The policy index a dynamic meta-message has, and the message that chose it.
pub(crate) type Choice = Option<(u8, MessageId)>;

impl Policies {
    /// The choice of the latest effective setting with global time strictly below `t`.
    pub fn before(&self, meta: MetaId, t: GlobalTime) -> Choice {
        self.map
            .get(&meta)?
            .range(..t)
            .next_back()
            .and_then(|(_, at)| at.iter().next_back())
            .map(|((_, id), index)| (*index, *id))
    }

    /// Adds or removes one message's setting at `t`. Returns the range of global times whose
    /// policy changed, if any.
    pub fn write(
        &mut self,
        meta: MetaId,
        t: GlobalTime,
        order: (Tiebreak, MessageId),
        index: u8,
        add: bool,
    ) -> Option<(GlobalTime, Option<GlobalTime>)> {
        // The setting in force just after `t` governs (t, next], where next is the following
        // setting's global time. `None` is the default index 0: setting 0 explicitly changes no
        // verdict.
        let before = self.at(meta, t).map_or(0, |(i, _)| i);
        let times = self.map.entry(meta).or_default();
        let at = times.entry(t).or_default();
        if add {
            at.insert(order, index);
        } else {
            at.remove(&order);
        }
        if at.is_empty() {
            times.remove(&t);
        }
        let next = times
            .range((Bound::Excluded(t), Bound::Unbounded))
            .next()
            .map(|(gt, _)| *gt);
        if times.is_empty() {
            self.map.remove(&meta);
        }
        let after = self.at(meta, t).map_or(0, |(i, _)| i);
        let from = t.0.checked_add(1).map(GlobalTime)?;
        let until = next.and_then(|n| n.0.checked_add(1).map(GlobalTime));
        (before != after).then_some((from, until))
    }

    fn at(&self, meta: MetaId, t: GlobalTime) -> Choice {
        self.map
            .get(&meta)?
            .range(..=t)
            .next_back()
            .and_then(|(_, at)| at.iter().next_back())
            .map(|((_, id), index)| (*index, *id))
    }

    /// Number of effective (meta-message, setting) pairs.
    pub fn len(&self) -> usize {
        self.map
            .values()
            .flat_map(|times| times.values())
            .map(Settings::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::timeline::tests::message_id as mid;

    const KEY: HoldKey = HoldKey {
        member: MemberId([7; 20]),
        meta: MetaId(1),
        bit: Permissions::PERMIT,
    };

    #[test]
    fn holdings_report_the_changed_range() {
        let mut h = Holdings::default();
        let c = h.write(KEY, GlobalTime(10), mid(0, 10), false, true);
        assert_eq!(
            c,
            Some(KeyChange {
                key: KEY,
                from: GlobalTime(10),
                until: None
            })
        );
        let c = h.write(KEY, GlobalTime(20), mid(0, 20), true, true);
        assert_eq!(c.map(|c| (c.from, c.until)), Some((GlobalTime(20), None)));
        // A second grant at 10 changes nothing a check can see.
        assert_eq!(h.write(KEY, GlobalTime(10), mid(1, 10), false, true), None);
        // A revoke at 5 changes nothing: it was not held before 10 anyway.
        assert_eq!(h.write(KEY, GlobalTime(5), mid(1, 5), true, true), None);
        // A grant at 6 changes [6, 10).
        let c = h.write(KEY, GlobalTime(6), mid(2, 6), false, true);
        assert_eq!(
            c.map(|c| (c.from, c.until)),
            Some((GlobalTime(6), Some(GlobalTime(10))))
        );
        assert!(!h.at(&KEY, GlobalTime(5)).held());
        assert!(h.at(&KEY, GlobalTime(6)).held());
        assert!(h.at(&KEY, GlobalTime(15)).held());
        assert!(!h.at(&KEY, GlobalTime(25)).held());
        assert_eq!(h.slots(), 4);
        // Removing everything leaves nothing behind.
        h.write(KEY, GlobalTime(10), mid(0, 10), false, false);
        h.write(KEY, GlobalTime(10), mid(1, 10), false, false);
        h.write(KEY, GlobalTime(20), mid(0, 20), true, false);
        h.write(KEY, GlobalTime(5), mid(1, 5), true, false);
        h.write(KEY, GlobalTime(6), mid(2, 6), false, false);
        assert_eq!(h.slots(), 0);
    }

    #[test]
    fn revoke_beats_grant_in_one_slot() {
        let mut h = Holdings::default();
        h.write(KEY, GlobalTime(10), mid(0, 10), false, true);
        let c = h.write(KEY, GlobalTime(10), mid(1, 10), true, true);
        assert!(c.is_some());
        assert!(!h.at(&KEY, GlobalTime(10)).held());
    }

    #[test]
    fn policies_apply_after_their_global_time() {
        let mut p = Policies::default();
        let meta = MetaId(2);
        let r = p.write(
            meta,
            GlobalTime(42),
            (Tiebreak([1; 32]), mid(0, 42)),
            1,
            true,
        );
        assert_eq!(r, Some((GlobalTime(43), None)));
        assert_eq!(p.before(meta, GlobalTime(42)), None);
        assert_eq!(p.before(meta, GlobalTime(43)), Some((1, mid(0, 42))));
        // Same global time: the greater tiebreak wins.
        let r = p.write(
            meta,
            GlobalTime(42),
            (Tiebreak([2; 32]), mid(1, 42)),
            0,
            true,
        );
        assert_eq!(r, Some((GlobalTime(43), None)));
        assert_eq!(p.before(meta, GlobalTime(50)), Some((0, mid(1, 42))));
        // A later setting bounds the range of an earlier one.
        p.write(
            meta,
            GlobalTime(60),
            (Tiebreak([0; 32]), mid(0, 60)),
            1,
            true,
        );
        let r = p.write(
            meta,
            GlobalTime(42),
            (Tiebreak([2; 32]), mid(1, 42)),
            0,
            false,
        );
        assert_eq!(r, Some((GlobalTime(43), Some(GlobalTime(61)))));
        assert_eq!(p.len(), 2);
    }
}
