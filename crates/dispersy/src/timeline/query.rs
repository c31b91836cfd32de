//! Questions the node asks the timeline: may this member do this at that global time, with what
//! proof; which policy is active; what does a member hold; is the community destroyed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::index::{HoldKey, Holding};
use super::message::PermissionMessage;
use super::{Error, Timeline};
use crate::community::policy::{Resolution, ResolutionPolicy};
use crate::ids::{GlobalTime, MemberId, MessageId, MetaId};
use crate::wire::builtin::{DestroyKind, Permissions};

/// An answer with its proof.
///
/// Allowed: the effective authorize messages (and the dynamic-settings choosing the policy, for
/// a dynamic meta-message) that grant it; empty for the master and for public resolution.
/// Denied: the effective revoke messages that took the permission away (and the deciding
/// dynamic-settings); empty when it was never granted. Sorted by (global time, member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the permission is held.
    pub allowed: bool,
    /// The permission messages that decide it.
    pub proof: Vec<MessageId>,
}

/// The resolution policy in force for a meta-message at a global time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ActivePolicy {
    /// The policy.
    pub policy: ResolutionPolicy,
    /// For a dynamic meta-message, the index of the policy in its list.
    pub index: Option<u8>,
    /// The dynamic-settings that chose it; `None` for the default (index 0) and for fixed
    /// resolutions.
    pub proof: Option<MessageId>,
}

/// An effective destroy-community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Destruction {
    /// Hard or soft.
    pub kind: DestroyKind,
    /// The destroy message's global time.
    pub global_time: GlobalTime,
    /// The destroy message.
    pub by: MessageId,
}

/// Sizes, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    /// Messages held.
    pub messages: usize,
    /// Of which effective.
    pub effective: usize,
    /// Non-empty (member, meta-message, bit, global time) slots in the holding index.
    pub holding_slots: usize,
    /// Effective (meta-message, setting) pairs in the policy index.
    pub policy_settings: usize,
    /// Entries (grants or settings) over all messages held.
    pub entries: usize,
}

#[derive(Default)]
struct Collect {
    allowed: bool,
    proof: BTreeSet<MessageId>,
}

impl Collect {
    fn into_verdict(self) -> Verdict {
        Verdict {
            allowed: self.allowed,
            proof: sorted(self.proof),
        }
    }
}

fn sorted(ids: impl IntoIterator<Item = MessageId>) -> Vec<MessageId> {
    let mut v: Vec<MessageId> = ids.into_iter().collect();
    v.sort_by_key(|id| (id.global_time, id.member));
    v.dedup();
    v
}

impl Timeline {
    /// Whether `member` holds every bit of `permissions` on `meta` at global time `t`.
    ///
    /// The master holds everything. Otherwise a bit is held iff the latest effective authorize
    /// or revoke naming it at or before `t` is an authorize (revoke wins at equal global time).
    pub fn check(
        &self,
        member: MemberId,
        meta: MetaId,
        permissions: Permissions,
        t: GlobalTime,
    ) -> Verdict {
        self.collect(member, &[(meta, permissions)], Some(t))
            .into_verdict()
    }

    /// Whether a message of `meta` by `author` at `t` is allowed by its resolution: public,
    /// linear (`permit`), or dynamic (the active policy, then `permit` if it is linear).
    ///
    /// Authorize and revoke are judged by [`Timeline::judge`], undo-other by
    /// [`Timeline::check_undo_other`]; for them, and any meta-message the timeline was not given,
    /// this answers [`Error::UnknownMeta`].
    pub fn check_message(
        &self,
        author: MemberId,
        meta: MetaId,
        t: GlobalTime,
    ) -> Result<Verdict, Error> {
        let active = self.policy(meta, t)?;
        let mut verdict = match active.policy {
            ResolutionPolicy::Public => Verdict {
                allowed: true,
                proof: Vec::new(),
            },
            ResolutionPolicy::Linear => self.check(author, meta, Permissions::PERMIT, t),
        };
        if let Some(id) = active.proof {
            verdict.proof.push(id);
            verdict.proof = sorted(verdict.proof);
        }
        Ok(verdict)
    }

    /// Whether `author` may undo, at `t`, another member's message of meta-message `target`:
    /// it needs `undo` on `target` at `t`.
    pub fn check_undo_other(&self, author: MemberId, target: MetaId, t: GlobalTime) -> Verdict {
        self.check(author, target, Permissions::UNDO, t)
    }

    /// Whether a permission message is (or would be, if inserted) effective, and the messages
    /// that make it so, or the revokes that prevent it. Exactly the rule [`Timeline::insert`]
    /// applies. Errors are those `insert` reports for malformed messages.
    pub fn judge(&self, message: &PermissionMessage) -> Result<Verdict, Error> {
        let message = message
            .clone()
            .normalize(self.config.max_entries, |m| self.resolution_count(m))?;
        Ok(self.justify(&message))
    }

    /// [`Timeline::judge`] of a held message.
    pub fn justification(&self, id: &MessageId) -> Option<Verdict> {
        self.messages.get(id).map(|s| self.justify(&s.message))
    }

    fn justify(&self, message: &PermissionMessage) -> Verdict {
        let wants: Vec<(MetaId, Permissions)> = message.requirements();
        let verdict = self
            .collect(message.author(), &wants, message.judged_at())
            .into_verdict();
        debug_assert_eq!(verdict.allowed, self.evaluate(message));
        verdict
    }

    fn collect(
        &self,
        member: MemberId,
        wants: &[(MetaId, Permissions)],
        t: Option<GlobalTime>,
    ) -> Collect {
        if member == self.master {
            return Collect {
                allowed: true,
                proof: BTreeSet::new(),
            };
        }
        let mut grants = BTreeSet::new();
        let mut revokes = BTreeSet::new();
        let mut allowed = true;
        for &(meta, permissions) in wants {
            for bit in permissions.iter() {
                let key = HoldKey { member, meta, bit };
                let holding = t.map_or(Holding::Never, |t| self.holdings.at(&key, t));
                match holding {
                    Holding::Slot(slot) if slot.held() == Some(true) => {
                        grants.extend(slot.deciding().iter().copied());
                    }
                    Holding::Slot(slot) => {
                        allowed = false;
                        revokes.extend(slot.deciding().iter().copied());
                    }
                    Holding::Never => allowed = false,
                }
            }
        }
        Collect {
            allowed,
            proof: if allowed { grants } else { revokes },
        }
    }

    /// The given messages and, transitively, every message that justifies them (for held
    /// messages; others are listed but not followed), sorted by (global time, member). The
    /// chain of an effective message ends at messages by the master.
    pub fn proof_chain(&self, ids: impl IntoIterator<Item = MessageId>) -> Vec<MessageId> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<MessageId> = ids.into_iter().collect();
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(verdict) = self.justification(&id) {
                todo.extend(verdict.proof.into_iter().filter(|p| !seen.contains(p)));
            }
        }
        sorted(seen)
    }

    /// The resolution policy of a meta-message at `t`. For a dynamic meta-message: the policy
    /// chosen by the latest effective dynamic-settings with global time strictly below `t`, or
    /// the first policy.
    pub fn policy(&self, meta: MetaId, t: GlobalTime) -> Result<ActivePolicy, Error> {
        let fixed = |policy| ActivePolicy {
            policy,
            index: None,
            proof: None,
        };
        match self.metas.get(&meta).ok_or(Error::UnknownMeta(meta))? {
            Resolution::Public => Ok(fixed(ResolutionPolicy::Public)),
            Resolution::Linear => Ok(fixed(ResolutionPolicy::Linear)),
            Resolution::Dynamic { .. } => {
                let (index, proof) = match self.policies.before(meta, t) {
                    Some((index, id)) => (index, Some(id)),
                    None => (0, None),
                };
                // Indices are checked on insert; a meta-message table without that policy
                // cannot occur, and is answered as linear, the safer of the two.
                let policy = self
                    .dynamic_policy(meta, index)
                    .unwrap_or(ResolutionPolicy::Linear);
                Ok(ActivePolicy {
                    policy,
                    index: Some(index),
                    proof,
                })
            }
        }
    }

    /// Every permission `member` holds at `t`, per meta-message (meta-messages where it holds
    /// nothing are left out). The master holds everything on every known meta-message.
    pub fn permissions(&self, member: MemberId, t: GlobalTime) -> BTreeMap<MetaId, Permissions> {
        if member == self.master {
            return self
                .metas
                .keys()
                .map(|meta| (*meta, Permissions::ALL))
                .collect();
        }
        let mut out: BTreeMap<MetaId, Permissions> = BTreeMap::new();
        for (key, holding) in self.holdings.of_member(member, t) {
            if holding.held() {
                let bits = out.entry(key.meta).or_default();
                *bits = bits.union(key.bit);
            }
        }
        out
    }

    /// The community's destruction, if an effective destroy-community is held: a hard one
    /// before a soft one, then the lowest (global time, tiebreak).
    pub fn destruction(&self) -> Option<Destruction> {
        self.destroys.first().map(|d| Destruction {
            kind: if d.soft {
                DestroyKind::Soft
            } else {
                DestroyKind::Hard
            },
            global_time: d.global_time,
            by: d.id,
        })
    }

    /// Sizes, for monitoring.
    pub fn stats(&self) -> Stats {
        Stats {
            messages: self.messages.len(),
            effective: self.effective,
            holding_slots: self.holdings.slots(),
            policy_settings: self.policies.len(),
            entries: self.entries,
        }
    }
}
