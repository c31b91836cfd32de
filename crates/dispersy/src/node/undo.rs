//! Undo-own and undo-other messages (spec section 14).
//!
//! * An undo names its target by (author, global time); undo-own targets a message of its own
//!   author. The target must be stored: otherwise the undo waits ([`Waiting::Message`]) while
//!   the node asks its sender for the target (missing-message). The undo must come after its
//!   target (higher global time) and the target's meta-message must be undoable; built-in
//!   messages (authorize, revoke, undo, ...) never are. Undo-other needs `undo` on the target's
//!   meta-message at the undo's global time, or waits for the proof.
//! * Accepting an undo marks its target [`Undone::ByMessage`] and reports [`Event::Undone`].
//!   Undone messages stay stored and keep syncing, so every node learns the undo, but are not
//!   live content; a peer that sends us an undone message again gets the undo back.
//! * Several undos of one target are all kept. The one with the lowest packet (byte-wise) is
//!   authoritative: the target and every other undo of it are marked undone by it, on every
//!   node whatever the order of arrival. Whoever sends us a higher one gets the lower back.
//! * An undo-other whose author turns out not to hold `undo` (a late revoke) stops counting:
//!   it is marked [`Undone::ByPolicy`] and the target falls back to the next valid undo, or is
//!   live again. A permission change never redoes a message undone by a valid undo (W4).

use std::net::SocketAddr;

use bytes::Bytes;

use super::delay::Waiting;
use super::pipeline::{Incoming, Verdict};
use super::stats::DropReason;
use super::{Node, NodeError};
use crate::community::{MAX_APPLICATION_BYTE, MetaMessage};
use crate::crypto::PublicKey;
use crate::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId};
use crate::store::{StoredMessage, Undone};
use crate::timeline::GtRange;
use crate::wire::Packet;
use crate::wire::builtin::{Builtin, byte};

use super::permission::range_query;

/// The message an undo payload names, for an undo written by `author`.
pub(crate) fn target_of(author: MemberId, undo: &Builtin) -> Option<MessageId> {
    match undo {
        Builtin::UndoOwn(global_time) => Some(MessageId {
            member: author,
            global_time: *global_time,
        }),
        Builtin::UndoOther {
            member,
            global_time,
        } => Some(MessageId {
            member: member.member_id(),
            global_time: *global_time,
        }),
        _ => None,
    }
}

/// The target author's key an undo-other carries (to ask for the target by key).
pub(crate) fn target_key(inc: &Incoming) -> Option<PublicKey> {
    match &inc.builtin {
        Some(Builtin::UndoOther { member, .. }) => Some(member.clone()),
        _ => None,
    }
}

impl Node {
    /// Checks an incoming undo message (module docs); `None` when it may be accepted or is no
    /// undo at all.
    pub(crate) fn check_undo(
        &self,
        inc: &Incoming,
        meta: &MetaMessage,
    ) -> Result<Option<Verdict>, NodeError> {
        if !matches!(meta.id.0, byte::UNDO_OWN | byte::UNDO_OTHER) {
            return Ok(None);
        }
        let Some(author) = inc.packet.author().map(PublicKey::member_id) else {
            return Ok(None);
        };
        let gt = inc.packet.global_time();
        let drop = |reason| Ok(Some(Verdict::Drop(DropReason::Invalid(reason), None)));
        let Some(target) = inc.builtin.as_ref().and_then(|b| target_of(author, b)) else {
            return drop("undo-malformed");
        };
        if target.global_time >= gt {
            return drop("undo-before-target");
        }
        let Some(t) = self.store.message(&inc.community, &target)? else {
            return Ok(Some(Verdict::Delay(Waiting::Message(target))));
        };
        let Some(c) = self.communities.get(&inc.community) else {
            return Ok(None);
        };
        let undoable =
            t.meta.0 <= MAX_APPLICATION_BYTE && c.def.meta(t.meta).is_some_and(|m| m.undoable);
        if !undoable {
            return drop("undo-not-undoable");
        }
        if meta.id.0 == byte::UNDO_OTHER
            && !c
                .permission
                .timeline
                .check_undo_other(author, t.meta, gt)
                .allowed
        {
            return Ok(Some(Verdict::Delay(Waiting::Proof {
                member: author,
                global_time: gt,
            })));
        }
        Ok(None)
    }

    /// Marks the target of a newly stored undo (module docs).
    pub(crate) fn apply_undo(
        &mut self,
        community: CommunityId,
        undo: &StoredMessage,
        packet: &Packet,
        source: Option<SocketAddr>,
    ) -> Result<(), NodeError> {
        let Some(target) = Builtin::decode(undo.meta.0, packet.payload())
            .ok()
            .and_then(|b| target_of(undo.member, &b))
        else {
            return Ok(());
        };
        let Some(t) = self.store.message(&community, &target)? else {
            return Ok(());
        };
        match t.undone {
            Undone::ByMessage(current) if current != undo.id() => {
                match self.store.message(&community, &current)? {
                    Some(lower) if lower.packet < undo.packet => {
                        self.mark(community, undo, Undone::ByMessage(current))?;
                        if let Some(source) = source {
                            let now = self.now;
                            self.send(
                                now,
                                Some(community),
                                source,
                                lower.packet,
                                super::Gate::Answer(source),
                            );
                        }
                        Ok(())
                    }
                    // Ours is the lower one (or the old one is gone): settle all undos of it.
                    _ => self.recompute_target(community, target),
                }
            }
            Undone::ByMessage(_) => Ok(()),
            Undone::No | Undone::ByPolicy => self.mark(community, &t, Undone::ByMessage(undo.id())),
        }
    }

    /// Sets the marks of a target and all its stored undos from scratch: the lowest valid undo
    /// is authoritative; invalid undo-others are undone by policy; without a valid undo the
    /// target is live if allowed, undone by policy if not.
    pub(crate) fn recompute_target(
        &mut self,
        community: CommunityId,
        target: MessageId,
    ) -> Result<(), NodeError> {
        let Some(t) = self.store.message(&community, &target)? else {
            return Ok(());
        };
        let undos = self.undos_of(community, &t)?;
        let valid: Vec<bool> = undos
            .iter()
            .map(|u| self.undo_allowed(community, u, Some(&t)))
            .collect();
        let authority = undos
            .iter()
            .zip(&valid)
            .filter(|(_, v)| **v)
            .map(|(u, _)| u)
            .min_by(|a, b| a.packet.cmp(&b.packet))
            .map(StoredMessage::id);
        for (u, valid) in undos.iter().zip(valid) {
            let want = match authority {
                _ if !valid => Undone::ByPolicy,
                Some(a) if a != u.id() => Undone::ByMessage(a),
                _ => Undone::No,
            };
            self.mark(community, u, want)?;
        }
        let want = match authority {
            Some(a) => Undone::ByMessage(a),
            None if !self.content_allowed(community, &t) => Undone::ByPolicy,
            None => Undone::No,
        };
        self.mark(community, &t, want)
    }

    /// Whether an undo's author may undo its target (undo-own: always).
    pub(crate) fn undo_allowed(
        &self,
        community: CommunityId,
        undo: &StoredMessage,
        target: Option<&StoredMessage>,
    ) -> bool {
        if undo.meta.0 == byte::UNDO_OWN {
            return true;
        }
        let (Some(c), Some(t)) = (self.communities.get(&community), target) else {
            return false;
        };
        c.permission
            .timeline
            .check_undo_other(undo.member, t.meta, undo.global_time)
            .allowed
    }

    /// The target a stored undo names.
    pub(crate) fn undo_target_of(
        &self,
        community: CommunityId,
        undo: &StoredMessage,
    ) -> Option<MessageId> {
        let (_, builtin) = self.parse_stored(community, &undo.packet)?;
        target_of(undo.member, &builtin?)
    }

    /// Every stored undo of a target. Undos come after their target, undo-own ones from the
    /// target's author; this scans those, so it is kept for the rare cases (a second undo, an
    /// undo-other losing its permission, a deleted undo).
    fn undos_of(
        &self,
        community: CommunityId,
        target: &StoredMessage,
    ) -> Result<Vec<StoredMessage>, NodeError> {
        let after = GtRange {
            from: GlobalTime(target.global_time.0.saturating_add(1)),
            until: None,
        };
        let own = range_query(vec![MetaId(byte::UNDO_OWN)], Some(target.member), after);
        let other = range_query(vec![MetaId(byte::UNDO_OTHER)], None, after);
        let mut found = self.store.range(&community, &own)?;
        found.extend(self.store.range(&community, &other)?);
        found.retain(|u| self.undo_target_of(community, u) == Some(target.id()));
        Ok(found)
    }

    /// Re-checks the undo-other messages of targets of `target_meta` written in `range` after
    /// a change of `undo` holdings.
    pub(crate) fn recheck_undo_others(
        &mut self,
        community: CommunityId,
        target_meta: MetaId,
        range: GtRange,
    ) -> Result<(), NodeError> {
        let undos = self.store.range(
            &community,
            &range_query(vec![MetaId(byte::UNDO_OTHER)], None, range),
        )?;
        let mut targets = std::collections::BTreeSet::new();
        for u in &undos {
            if let Some(target) = self.undo_target_of(community, u)
                && let Some(t) = self.store.message(&community, &target)?
                && t.meta == target_meta
            {
                targets.insert(target);
            }
        }
        for target in targets {
            self.recompute_target(community, target)?;
        }
        Ok(())
    }

    /// The reply to a peer that sent us a message we hold undone: the authoritative undo.
    pub(crate) fn undo_reply(
        &self,
        community: &CommunityId,
        existing: &StoredMessage,
    ) -> Result<Option<Bytes>, NodeError> {
        match existing.undone {
            Undone::ByMessage(by) => Ok(self.store.message(community, &by)?.map(|m| m.packet)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use rand::SeedableRng;

    #[test]
    fn targets_of_undo_payloads() {
        let author = MemberId([1; 20]);
        let other = PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        assert_eq!(
            target_of(author, &Builtin::UndoOwn(GlobalTime(7))),
            Some(MessageId {
                member: author,
                global_time: GlobalTime(7)
            })
        );
        let undo_other = Builtin::UndoOther {
            member: other.public().clone(),
            global_time: GlobalTime(9),
        };
        assert_eq!(
            target_of(author, &undo_other),
            Some(MessageId {
                member: other.member_id(),
                global_time: GlobalTime(9)
            })
        );
        assert_eq!(target_of(author, &Builtin::Identity), None);
    }
}
