//! What an insert or a removal changed, so the node can re-check the messages it stores.

use std::collections::BTreeMap;

use crate::ids::{GlobalTime, MemberId, MessageId, MetaId};
use crate::wire::builtin::Permissions;

/// A half-open range of global times, `[from, until)`; `until == None` runs to the end of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GtRange {
    /// First global time in the range.
    pub from: GlobalTime,
    /// First global time after the range, if any.
    pub until: Option<GlobalTime>,
}

impl GtRange {
    /// Whether `t` lies in the range.
    pub fn contains(&self, t: GlobalTime) -> bool {
        t >= self.from && self.until.is_none_or(|u| t < u)
    }

    /// The smallest range covering both.
    #[must_use]
    pub fn cover(self, other: GtRange) -> GtRange {
        GtRange {
            from: self.from.min(other.from),
            until: match (self.until, other.until) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
        }
    }
}

/// A member's permission bit on a meta-message may have a different answer over `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HoldingChange {
    /// The member.
    pub member: MemberId,
    /// The meta-message.
    pub meta: MetaId,
    /// One permission bit.
    pub permission: Permissions,
    /// Where [`super::Timeline::check`] may now answer differently.
    pub range: GtRange,
}

/// The active resolution policy of a dynamic meta-message may differ over `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyChange {
    /// The dynamic meta-message.
    pub meta: MetaId,
    /// Where [`super::Timeline::policy`] may now answer differently.
    pub range: GtRange,
}

/// The outcome of [`super::Timeline::insert`] or [`super::Timeline::remove`].
///
/// Holding and policy changes are reported per key and range, sorted; a range whose final answer
/// happens to be the same as before may still be listed ("may differ"), a range whose answer
/// differs is always listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Insert: whether the inserted message is effective. Remove: whether it was.
    pub effective: bool,
    /// Other held messages that became effective, in (global time, id) order.
    pub became_effective: Vec<MessageId>,
    /// Other held messages that stopped being effective, in (global time, id) order.
    pub became_ineffective: Vec<MessageId>,
    /// Permission answers that may differ.
    pub holdings: Vec<HoldingChange>,
    /// Policy answers that may differ.
    pub policies: Vec<PolicyChange>,
    /// Whether [`super::Timeline::destruction`] changed.
    pub destruction_changed: bool,
}

impl Delta {
    /// Whether no query answers differently (the message's own effectiveness aside).
    pub fn is_unchanged(&self) -> bool {
        self.became_effective.is_empty()
            && self.became_ineffective.is_empty()
            && self.holdings.is_empty()
            && self.policies.is_empty()
            && !self.destruction_changed
    }

    /// Per meta-message, the range of global times in which stored messages of that meta may
    /// have a different verdict from [`super::Timeline::check_message`]: `permit` changes of any
    /// member and policy changes, merged to one covering range per meta-message.
    pub fn recheck_messages(&self) -> BTreeMap<MetaId, GtRange> {
        let permit = self
            .holdings
            .iter()
            .filter(|h| h.permission == Permissions::PERMIT)
            .map(|h| (h.meta, h.range));
        let policy = self.policies.iter().map(|p| (p.meta, p.range));
        cover_by_meta(permit.chain(policy))
    }

    /// Per target meta-message, the range of global times in which undo-other messages whose
    /// target has that meta may have a different verdict from
    /// [`super::Timeline::check_undo_other`].
    pub fn recheck_undo_other(&self) -> BTreeMap<MetaId, GtRange> {
        cover_by_meta(
            self.holdings
                .iter()
                .filter(|h| h.permission == Permissions::UNDO)
                .map(|h| (h.meta, h.range)),
        )
    }

    pub(crate) fn finish(&mut self) {
        self.became_effective.sort_by_key(order);
        self.became_ineffective.sort_by_key(order);
        self.holdings.sort();
        self.holdings.dedup();
        self.policies.sort();
        self.policies.dedup();
    }
}

fn order(id: &MessageId) -> (GlobalTime, MemberId) {
    (id.global_time, id.member)
}

fn cover_by_meta(ranges: impl Iterator<Item = (MetaId, GtRange)>) -> BTreeMap<MetaId, GtRange> {
    let mut out: BTreeMap<MetaId, GtRange> = BTreeMap::new();
    for (meta, range) in ranges {
        out.entry(meta)
            .and_modify(|r| *r = r.cover(range))
            .or_insert(range);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: u64, until: Option<u64>) -> GtRange {
        GtRange {
            from: GlobalTime(from),
            until: until.map(GlobalTime),
        }
    }

    #[test]
    fn ranges_cover_and_contain() {
        let r = range(5, Some(10));
        assert!(r.contains(GlobalTime(5)) && r.contains(GlobalTime(9)));
        assert!(!r.contains(GlobalTime(10)) && !r.contains(GlobalTime(4)));
        assert_eq!(r.cover(range(2, Some(7))), range(2, Some(10)));
        assert_eq!(r.cover(range(20, None)), range(5, None));
        assert!(range(1, None).contains(GlobalTime::MAX));
    }

    #[test]
    fn recheck_ranges_merge_per_meta() {
        let change = |meta, permission, r| HoldingChange {
            member: MemberId([1; 20]),
            meta: MetaId(meta),
            permission,
            range: r,
        };
        let delta = Delta {
            holdings: vec![
                change(1, Permissions::PERMIT, range(5, Some(8))),
                change(1, Permissions::PERMIT, range(20, Some(30))),
                change(1, Permissions::UNDO, range(3, None)),
                change(2, Permissions::AUTHORIZE, range(3, None)),
            ],
            policies: vec![PolicyChange {
                meta: MetaId(3),
                range: range(43, None),
            }],
            ..Delta::default()
        };
        let m = delta.recheck_messages();
        assert_eq!(m.get(&MetaId(1)), Some(&range(5, Some(30))));
        assert_eq!(m.get(&MetaId(3)), Some(&range(43, None)));
        assert_eq!(m.len(), 2);
        let u = delta.recheck_undo_other();
        assert_eq!(
            u.into_iter().collect::<Vec<_>>(),
            vec![(MetaId(1), range(3, None))]
        );
    }
}
