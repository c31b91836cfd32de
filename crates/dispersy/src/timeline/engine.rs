//! Inserting and removing permission messages, and re-evaluating what they change.
//!
//! Effectiveness is stratified by global time: an authorize or revoke at global time `t` is
//! judged only by holdings written at global times below `t`, and a dynamic-settings or
//! destroy-community at `t` by holdings written at or below `t` (all of which come from authorize
//! and revoke messages, never from dynamic-settings or destroy-community). So effectiveness at `t`
//! depends only on effectiveness strictly "earlier" in the order `(global time, stratum)`, there
//! are no cycles, and there is exactly one consistent assignment for any set of messages.
//!
//! The engine keeps that assignment up to date. A change of effectiveness writes or erases
//! holdings at the message's global time; each holding whose value changes over a range of
//! global times wakes the messages that depend on it (same author, a requirement on that key,
//! judged inside the range) and they are re-evaluated in `(global time, stratum)` order. Since a
//! message is evaluated after everything it depends on has settled, each woken message is
//! evaluated once per operation.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::delta::{Delta, GtRange, HoldingChange, PolicyChange};
use super::index::{HoldKey, KeyChange};
use super::message::{Kind, PermissionMessage, Stratum};
use super::{DestroyEntry, Error, Stored, Timeline};
use crate::ids::{GlobalTime, MemberId, MessageId};

/// Evaluation order: global time, then authorize/revoke before the linear built-ins.
type WorkItem = (GlobalTime, Stratum, MessageId);

const MIN_ID: MessageId = MessageId {
    member: MemberId([0; 20]),
    global_time: GlobalTime::ZERO,
};
const MAX_ID: MessageId = MessageId {
    member: MemberId([u8::MAX; 20]),
    global_time: GlobalTime(u64::MAX),
};

/// The bookkeeping of one insert or removal.
#[derive(Debug, Default)]
struct Run {
    work: BTreeSet<WorkItem>,
    /// Messages whose effectiveness was flipped, with their effectiveness before the operation.
    flipped: BTreeMap<MessageId, bool>,
    holdings: Vec<HoldingChange>,
    policies: Vec<PolicyChange>,
}

impl Timeline {
    /// Adds a permission message and re-evaluates everything it may change.
    ///
    /// The message is checked (see [`Error`]) and kept in canonical form whether or not it is
    /// effective; [`Delta::effective`] says which. Cost: `O((1 + k) · e · log n)` for `n` held
    /// messages, `e` entries per message and `k` messages whose effectiveness had to be
    /// re-evaluated (zero unless the insert changed a holding that later messages rely on).
    pub fn insert(&mut self, message: PermissionMessage) -> Result<Delta, Error> {
        if self.messages.contains_key(&message.id) {
            return Err(Error::Duplicate(message.id));
        }
        let message = message.normalize(self.config.max_entries, |m| self.resolution_count(m))?;
        let entries = self.entries.saturating_add(message.entries());
        if self.messages.len() >= self.config.max_messages
            || entries > self.config.max_total_entries
        {
            return Err(Error::Full {
                max_messages: self.config.max_messages,
                max_total_entries: self.config.max_total_entries,
            });
        }
        self.entries = entries;
        let id = message.id;
        let destruction = self.destruction();
        let mut run = Run::default();
        run.work.insert(work_item(&message));
        self.register(&message, true);
        self.messages.insert(
            id,
            Stored {
                message,
                effective: false,
            },
        );
        self.settle(&mut run);
        run.flipped.remove(&id);
        let effective = self.messages.get(&id).is_some_and(|s| s.effective);
        Ok(self.finish(run, effective, destruction))
    }

    /// Removes a permission message (for instance when the store prunes or replaces it) and
    /// re-evaluates everything it changed. `None` when the message is not held.
    pub fn remove(&mut self, id: &MessageId) -> Option<(PermissionMessage, Delta)> {
        let destruction = self.destruction();
        let stored = self.messages.remove(id)?;
        self.entries = self.entries.saturating_sub(stored.message.entries());
        self.register(&stored.message, false);
        let mut run = Run::default();
        if stored.effective {
            self.apply(&stored.message, false, &mut run);
        }
        self.settle(&mut run);
        let delta = self.finish(run, stored.effective, destruction);
        Some((stored.message, delta))
    }

    fn finish(&self, run: Run, effective: bool, destruction: Option<super::Destruction>) -> Delta {
        let mut delta = Delta {
            effective,
            holdings: run.holdings,
            policies: run.policies,
            destruction_changed: self.destruction() != destruction,
            ..Delta::default()
        };
        for (id, was) in run.flipped {
            match (was, self.is_effective(&id)) {
                (false, Some(true)) => delta.became_effective.push(id),
                (true, Some(false)) => delta.became_ineffective.push(id),
                _ => {}
            }
        }
        delta.finish();
        delta
    }

    /// Records (or forgets) which holdings a message's effectiveness depends on.
    fn register(&mut self, message: &PermissionMessage, add: bool) {
        if message.author() == self.master {
            return;
        }
        let Some(at) = message.judged_at() else {
            return;
        };
        for (meta, bit) in message.requirements() {
            let key = HoldKey {
                member: message.author(),
                meta,
                bit,
            };
            if add {
                self.dependents.insert((key, at, message.id));
            } else {
                self.dependents.remove(&(key, at, message.id));
            }
        }
    }

    fn settle(&mut self, run: &mut Run) {
        while let Some((_, _, id)) = run.work.pop_first() {
            // Take the message out while its writes change the indexes; it is put back below.
            let Some(mut stored) = self.messages.remove(&id) else {
                continue;
            };
            let effective = self.evaluate(&stored.message);
            if effective != stored.effective {
                run.flipped.entry(id).or_insert(stored.effective);
                stored.effective = effective;
                self.apply(&stored.message, effective, run);
            }
            self.messages.insert(id, stored);
        }
    }

    /// Whether the message's author holds every permission it needs.
    pub(super) fn evaluate(&self, message: &PermissionMessage) -> bool {
        if message.author() == self.master {
            return true;
        }
        let Some(at) = message.judged_at() else {
            return false;
        };
        message.requirements().into_iter().all(|(meta, bit)| {
            let key = HoldKey {
                member: message.author(),
                meta,
                bit,
            };
            self.holdings.at(&key, at).held()
        })
    }

    /// Writes (`add`) or erases the effects of an effective message.
    fn apply(&mut self, message: &PermissionMessage, add: bool, run: &mut Run) {
        let (id, t) = (message.id, message.global_time());
        if add {
            self.effective += 1;
        } else {
            self.effective = self.effective.saturating_sub(1);
        }
        match &message.kind {
            Kind::Authorize(grants) | Kind::Revoke(grants) => {
                let revoke = matches!(message.kind, Kind::Revoke(_));
                for grant in grants {
                    for bit in grant.permissions.iter() {
                        let key = HoldKey {
                            member: grant.member,
                            meta: grant.meta,
                            bit,
                        };
                        if let Some(change) = self.holdings.write(key, t, id, revoke, add) {
                            self.wake(change, run);
                        }
                    }
                }
            }
            Kind::DynamicSettings(settings) => {
                for &(meta, index) in settings {
                    let order = (message.tiebreak, id);
                    if let Some((from, until)) = self.policies.write(meta, t, order, index, add) {
                        run.policies.push(PolicyChange {
                            meta,
                            range: GtRange { from, until },
                        });
                    }
                }
            }
            Kind::DestroyCommunity(kind) => {
                let entry = DestroyEntry::new(*kind, t, message.tiebreak, id);
                if add {
                    self.destroys.insert(entry);
                } else {
                    self.destroys.remove(&entry);
                }
            }
        }
    }

    /// Reports a holding change and queues the messages judged inside its range.
    fn wake(&self, change: KeyChange, run: &mut Run) {
        let KeyChange { key, from, until } = change;
        run.holdings.push(HoldingChange {
            member: key.member,
            meta: key.meta,
            permission: key.bit,
            range: GtRange { from, until },
        });
        let start = Bound::Included((key, from, MIN_ID));
        let end = match until {
            Some(until) => Bound::Excluded((key, until, MIN_ID)),
            None => Bound::Included((key, GlobalTime(u64::MAX), MAX_ID)),
        };
        let woken = self.dependents.range((start, end));
        for (_, _, id) in woken {
            if let Some(stored) = self.messages.get(id) {
                run.work.insert(work_item(&stored.message));
            }
        }
    }
}

fn work_item(message: &PermissionMessage) -> WorkItem {
    (message.global_time(), message.stratum(), message.id)
}
