//! The permission timeline in the node: who may create what, proofs, and re-evaluation.
//!
//! Every joined community has a [`Timeline`] built at join from the stored authorize, revoke,
//! dynamic-settings and destroy-community messages (in any order: the timeline's answers depend
//! only on the set) and kept up to date as such messages are accepted or deleted. The pipeline
//! uses it in three places:
//!
//! * **Checking.** A permission message is accepted exactly when [`Timeline::judge`] says it is
//!   effective (acceptance is application, Dispersy's W3 fixed); any other message needs its
//!   resolution (public, linear, or the dynamic policy active at its global time; the policy
//!   byte in the packet is only informational) for every signer; an undo-other needs `undo` on
//!   its target's meta-message. A message that is not allowed waits in the delay queue
//!   ([`Waiting::Proof`]) while the node asks its sender for the proof (missing-proof), and is
//!   checked again whenever a permission message is accepted ([`Wake::Permission`]).
//! * **Re-evaluation.** Every insert or removal reports which (member, meta-message, permission)
//!   answers and which dynamic policies may differ, over which global times. Stored messages in
//!   those ranges are checked again: newly denied live ones become [`Undone::ByPolicy`]
//!   ([`Event::Undone`] without an undo message), ones undone by policy that are allowed again
//!   are redone ([`Event::Redone`]). Messages undone by an undo message are never redone by a
//!   permission change (Dispersy's W4); undo-other messages whose author loses `undo` stop
//!   counting, which may redo their target (see `undo.rs`).
//! * **Proofs.** A missing-proof request is answered with the chain of effective permission
//!   messages that allows the named message. Permission messages that became ineffective stay
//!   stored and in the timeline, inert, and are never offered as proofs.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use serde::Serialize;

use super::delay::{Waiting, Wake};
use super::event::Event;
use super::pipeline::{Incoming, Verdict};
use super::stats::DropReason;
use super::{Config, Node, NodeError};
use crate::community::policy::{Authentication, Resolution};
use crate::community::{Definition, MAX_APPLICATION_BYTE, MetaMessage};
use crate::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId};
use crate::store::{Order, RangeQuery, StoredMessage, Undone};
use crate::timeline::{
    self, Delta, Destruction, GtRange, PermissionMessage, Tiebreak, Timeline, Verdict as Judgement,
};
use crate::wire::builtin::{Builtin, MissingProof, Permissions, byte};
use crate::wire::{Authentication as Auth, Packet};

/// Bytes of proof packets sent for one missing-proof request or one rejected message.
const PROOF_RESPONSE_LIMIT: usize = 16 * 1024;

/// One community's permission state.
#[derive(Debug)]
pub(crate) struct PermissionState {
    /// Every stored permission message, effective or not.
    pub(crate) timeline: Timeline,
    /// The destruction the node has acted on (deleted data, reported the event).
    pub(crate) destroyed: Option<Destruction>,
}

impl PermissionState {
    pub(crate) fn new(def: &Definition, config: &Config) -> PermissionState {
        PermissionState {
            timeline: empty_timeline(def, config.timeline),
            destroyed: None,
        }
    }
}

/// A timeline for a community's own meta-messages.
pub(crate) fn empty_timeline(def: &Definition, config: timeline::Config) -> Timeline {
    let master = MemberId(def.id().0);
    // A built definition only has application meta-messages below the built-in bytes and
    // dynamic resolutions with 1 to 255 policies; the filter states what the timeline needs.
    let metas: Vec<(MetaId, Resolution)> = def
        .application_metas()
        .filter(|m| match &m.resolution {
            Resolution::Dynamic { policies } => (1..=255).contains(&policies.len()),
            _ => true,
        })
        .map(|m| (m.id, m.resolution.clone()))
        .collect();
    Timeline::new(master, metas, config)
        .expect("invariant: application meta-messages with valid resolutions are accepted")
}

/// What a stored message amounts to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum MessageState {
    /// In effect: live content, an identity, an effective permission message, or the
    /// authoritative undo of its target.
    Live,
    /// Undone by this undo message. For an undo message: a lower undo of the same target is
    /// the authoritative one.
    UndoneBy(MessageId),
    /// Stored but without effect under the permissions held now: content whose author (no
    /// longer) holds what its resolution needs, a permission message that is not effective,
    /// an undo whose author lacks `undo` or whose target is itself disallowed or gone. A later
    /// permission message may make it count again.
    Disallowed,
}

/// Whether a message byte is one of the four messages the timeline holds.
pub(crate) fn is_permission_byte(message_byte: u8) -> bool {
    matches!(
        message_byte,
        byte::AUTHORIZE | byte::REVOKE | byte::DYNAMIC_SETTINGS | byte::DESTROY_COMMUNITY
    )
}

/// A counter name for a timeline refusal.
fn refusal(e: &timeline::Error) -> &'static str {
    use timeline::Error as E;
    match e {
        E::Duplicate(_) => "timeline-duplicate",
        E::ZeroGlobalTime => "global-time-zero",
        E::Empty => "permission-empty",
        E::BadPermissions(_) => "permission-bits",
        E::UnknownMeta(_) => "permission-unknown-meta",
        E::NotDynamic(_) => "settings-not-dynamic",
        E::PolicyIndex { .. } => "policy-index",
        E::ContradictorySettings(_) => "settings-contradictory",
        E::TooManyEntries { .. } => "permission-too-many-entries",
        E::Full { .. } => "timeline-full",
        E::ReservedMeta(_) | E::BadResolution(_) => "timeline-meta",
    }
}

/// Whether inserting `message` stays within the timeline's caps (so that what is accepted is
/// also applied).
fn fits(timeline: &Timeline, message: &PermissionMessage) -> bool {
    let stats = timeline.stats();
    let config = timeline.config();
    stats.messages < config.max_messages
        && stats.entries.saturating_add(message.entries()) <= config.max_total_entries
}

/// Whether every signer holds what the resolution of `meta` needs at `t`; `Err` for a
/// meta-message the timeline does not know.
pub(crate) fn signers_allowed(
    timeline: &Timeline,
    meta: MetaId,
    signers: &[MemberId],
    t: GlobalTime,
) -> Result<bool, timeline::Error> {
    for signer in signers {
        if !timeline.check_message(*signer, meta, t)?.allowed {
            return Ok(false);
        }
    }
    Ok(true)
}

fn packet_signers(packet: &Packet) -> Vec<MemberId> {
    match packet.authentication() {
        Auth::None => Vec::new(),
        Auth::Member { key, .. } => vec![key.member_id()],
        Auth::DoubleMember { keys, .. } => keys.iter().map(|k| k.member_id()).collect(),
    }
}

fn stored_signers(m: &StoredMessage) -> Vec<MemberId> {
    std::iter::once(m.member).chain(m.second_member).collect()
}

fn message_id(member: MemberId, global_time: GlobalTime) -> MessageId {
    MessageId {
        member,
        global_time,
    }
}

/// The range query of one meta-message's messages (optionally one author's) in a range.
pub(crate) fn range_query(
    metas: Vec<MetaId>,
    member: Option<MemberId>,
    range: GtRange,
) -> RangeQuery {
    RangeQuery {
        metas: Some(metas),
        member,
        low: range.from,
        high: range
            .until
            .map_or(GlobalTime::MAX, |u| GlobalTime(u.0.saturating_sub(1))),
        modulo: 1,
        offset: 0,
        order: Order::Ascending,
        limit: usize::MAX,
    }
}

impl Node {
    /// Builds a community's timeline from its stored permission messages.
    pub(super) fn load_timeline(&mut self, community: CommunityId) -> Result<(), NodeError> {
        let metas = [
            byte::AUTHORIZE,
            byte::REVOKE,
            byte::DYNAMIC_SETTINGS,
            byte::DESTROY_COMMUNITY,
        ]
        .map(MetaId)
        .to_vec();
        let all = GtRange {
            from: GlobalTime(1),
            until: None,
        };
        let stored = self
            .store
            .range(&community, &range_query(metas, None, all))?;
        let mut messages = Vec::with_capacity(stored.len());
        for m in &stored {
            match self.parse_stored(community, &m.packet) {
                Some((packet, Some(builtin))) => {
                    let tiebreak = Tiebreak::of_packet(packet.bytes());
                    messages.extend(PermissionMessage::from_builtin(m.id(), tiebreak, &builtin));
                }
                _ => self.count_drop(Some(community), DropReason::Invalid("stored-unparsable")),
            }
        }
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let mut refused = Vec::new();
        for message in messages {
            if let Err(e) = c.permission.timeline.insert(message) {
                refused.push(refusal(&e));
            }
        }
        c.permission.destroyed = c.permission.timeline.destruction();
        for reason in refused {
            tracing::warn!(%community, reason, "stored permission message not replayed");
            self.count_drop(Some(community), DropReason::Invalid(reason));
        }
        Ok(())
    }

    /// Parses a stored packet of a community (and its built-in payload).
    pub(crate) fn parse_stored(
        &self,
        community: CommunityId,
        bytes: &Bytes,
    ) -> Option<(Packet, Option<Builtin>)> {
        let c = self.communities.get(&community)?;
        let (_, message_byte) = crate::wire::Prefix::parse(bytes).ok()?;
        let meta = c.def.meta(MetaId(message_byte))?;
        let packet = Packet::parse(bytes.clone(), &meta.layout(), &self.lookup()).ok()?;
        let builtin = crate::wire::builtin::name(message_byte)
            .and_then(|_| Builtin::decode(message_byte, packet.payload()).ok());
        Some((packet, builtin))
    }

    /// The permission check of an incoming message (module docs): `None` when allowed.
    ///
    /// Undo messages are checked by `check_undo` (they need the store); here they pass.
    pub(crate) fn permission_verdict(&self, inc: &Incoming, meta: &MetaMessage) -> Option<Verdict> {
        if let Some(v) = self.destroyed_verdict(inc, meta) {
            return Some(v);
        }
        let c = self.communities.get(&inc.community)?;
        let timeline = &c.permission.timeline;
        let author = inc.packet.author()?.member_id();
        let gt = inc.packet.global_time();
        let wait = Verdict::Delay(Waiting::Proof {
            member: author,
            global_time: gt,
        });
        match meta.id.0 {
            b if is_permission_byte(b) => {
                let message = PermissionMessage::from_builtin(
                    message_id(author, gt),
                    Tiebreak::of_packet(inc.packet.bytes()),
                    inc.builtin.as_ref()?,
                )?;
                match timeline.judge(&message) {
                    Err(e) => Some(Verdict::Drop(DropReason::Invalid(refusal(&e)), None)),
                    Ok(v) if !v.allowed => Some(wait),
                    Ok(_) if !fits(timeline, &message) => {
                        Some(Verdict::Drop(DropReason::Invalid("timeline-full"), None))
                    }
                    Ok(_) => None,
                }
            }
            b if b > MAX_APPLICATION_BYTE => None,
            _ => {
                // W12: an index past the last policy is malformed, dropped here and not an
                // error later; otherwise the byte is informational only.
                if let Resolution::Dynamic { policies } = &meta.resolution
                    && inc
                        .packet
                        .resolution()
                        .is_none_or(|i| usize::from(i) >= policies.len())
                {
                    return Some(Verdict::Drop(DropReason::Invalid("policy-index"), None));
                }
                match signers_allowed(timeline, meta.id, &packet_signers(&inc.packet), gt) {
                    Ok(true) => None,
                    Ok(false) => Some(wait),
                    Err(_) => Some(Verdict::Drop(DropReason::UnknownMessage, None)),
                }
            }
        }
    }

    /// Whether a stored application message is allowed by the timeline now.
    pub(crate) fn content_allowed(&self, community: CommunityId, m: &StoredMessage) -> bool {
        self.communities.get(&community).is_some_and(|c| {
            signers_allowed(
                &c.permission.timeline,
                m.meta,
                &stored_signers(m),
                m.global_time,
            )
            .unwrap_or(false)
        })
    }

    /// What follows from storing a message: permission messages enter the timeline (and
    /// everything they change is re-checked), undo messages undo their target, destroy messages
    /// are passed on.
    pub(crate) fn after_store(
        &mut self,
        community: CommunityId,
        stored: &StoredMessage,
        packet: &Packet,
        meta: &MetaMessage,
        source: Option<SocketAddr>,
    ) -> Result<(), NodeError> {
        match meta.id.0 {
            b if is_permission_byte(b) => {
                let Ok(builtin) = Builtin::decode(b, packet.payload()) else {
                    return Ok(());
                };
                let tiebreak = Tiebreak::of_packet(packet.bytes());
                let Some(message) =
                    PermissionMessage::from_builtin(stored.id(), tiebreak, &builtin)
                else {
                    return Ok(());
                };
                let Some(c) = self.communities.get_mut(&community) else {
                    return Ok(());
                };
                match c.permission.timeline.insert(message) {
                    Ok(delta) => self.on_delta(community, &delta)?,
                    Err(e) => {
                        tracing::warn!(%community, error = %e, "stored permission message not applied");
                        self.count_drop(Some(community), DropReason::Invalid(refusal(&e)));
                    }
                }
                // The one received message that is passed on (spec 4.4): a destruction should
                // reach everyone, also those who never sync again.
                if b == byte::DESTROY_COMMUNITY && source.is_some() {
                    let now = self.now;
                    self.forward(now, community, meta, packet.bytes().clone(), &[]);
                }
                Ok(())
            }
            byte::UNDO_OWN | byte::UNDO_OTHER => self.apply_undo(community, stored, packet, source),
            _ => Ok(()),
        }
    }

    /// Deletes a stored message and undoes what it did (timeline entry, undo marks).
    pub(crate) fn delete_stored(
        &mut self,
        community: &CommunityId,
        m: &StoredMessage,
    ) -> Result<(), NodeError> {
        self.store.delete_message(community, &m.id())?;
        self.dirty = true;
        self.forget(*community, m)
    }

    /// Undoes the effects of a message that is no longer stored (deleted or replaced).
    pub(crate) fn forget(
        &mut self,
        community: CommunityId,
        m: &StoredMessage,
    ) -> Result<(), NodeError> {
        self.sync_removed(m);
        match m.meta.0 {
            b if is_permission_byte(b) => {
                let removed = self
                    .communities
                    .get_mut(&community)
                    .and_then(|c| c.permission.timeline.remove(&m.id()));
                if let Some((_, delta)) = removed {
                    self.on_delta(community, &delta)?;
                }
                Ok(())
            }
            byte::UNDO_OWN | byte::UNDO_OTHER => match self.undo_target_of(community, m) {
                Some(target) => self.recompute_target(community, target),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Turns what the timeline reports into work: wake messages waiting for proofs, act on a
    /// destruction, re-check stored messages in the changed ranges.
    fn on_delta(&mut self, community: CommunityId, delta: &Delta) -> Result<(), NodeError> {
        if delta.effective || !delta.is_unchanged() {
            self.wakes.push((community, Wake::Permission));
        }
        if delta.destruction_changed && self.on_destruction_changed(community)? {
            // Hard: nothing is left to re-check.
            return Ok(());
        }
        let Some(c) = self.communities.get(&community) else {
            return Ok(());
        };
        // Per (meta-message, author or everyone), the range to re-check. A permit change
        // concerns one author's messages, except for double-signed meta-messages, where the
        // member may be the second signer.
        let mut work: BTreeMap<(MetaId, Option<MemberId>), GtRange> = BTreeMap::new();
        let mut add = |meta: MetaId, member: Option<MemberId>, range: GtRange| {
            work.entry((meta, member))
                .and_modify(|r| *r = r.cover(range))
                .or_insert(range);
        };
        for h in &delta.holdings {
            if h.permission != Permissions::PERMIT || h.meta.0 > MAX_APPLICATION_BYTE {
                continue;
            }
            let double = c
                .def
                .meta(h.meta)
                .is_some_and(|m| matches!(m.authentication, Authentication::DoubleMember { .. }));
            add(h.meta, (!double).then_some(h.member), h.range);
        }
        for p in &delta.policies {
            add(p.meta, None, p.range);
        }
        for ((meta, member), range) in work {
            let messages = self
                .store
                .range(&community, &range_query(vec![meta], member, range))?;
            for m in messages {
                self.recheck_content(community, &m)?;
            }
        }
        for (target_meta, range) in delta.recheck_undo_other() {
            self.recheck_undo_others(community, target_meta, range)?;
        }
        Ok(())
    }

    /// Re-checks one stored application message after a permission change: undo it by policy
    /// when it is no longer allowed, redo it when it is allowed again after such an undo.
    fn recheck_content(
        &mut self,
        community: CommunityId,
        m: &StoredMessage,
    ) -> Result<(), NodeError> {
        let allowed = self.content_allowed(community, m);
        let next = match (m.undone, allowed) {
            (Undone::No, false) => Undone::ByPolicy,
            (Undone::ByPolicy, true) => Undone::No,
            _ => return Ok(()),
        };
        self.mark(community, m, next)
    }

    /// Sets a stored message's undo mark and reports the change of liveness of application
    /// messages.
    pub(crate) fn mark(
        &mut self,
        community: CommunityId,
        m: &StoredMessage,
        undone: Undone,
    ) -> Result<(), NodeError> {
        if m.undone == undone {
            return Ok(());
        }
        self.store.set_undone(&community, &m.id(), undone)?;
        self.dirty = true;
        if m.meta.0 > MAX_APPLICATION_BYTE {
            return Ok(());
        }
        let event = match (m.undone, undone) {
            (Undone::No, Undone::ByMessage(by)) => Event::Undone {
                community,
                message: m.id(),
                meta: m.meta,
                by: Some(by),
            },
            (Undone::No, Undone::ByPolicy) => Event::Undone {
                community,
                message: m.id(),
                meta: m.meta,
                by: None,
            },
            (_, Undone::No) => Event::Redone {
                community,
                message: m.id(),
                meta: m.meta,
            },
            // Already not live: the reason changed, the application saw the undo before.
            _ => return Ok(()),
        };
        self.events.push_back(event);
        Ok(())
    }

    /// The packets proving that the message a missing-proof names is allowed: the chain of
    /// effective permission messages behind its verdict, oldest first. Nothing when we do not
    /// store the message or do not allow it.
    pub(super) fn proof_answer(
        &self,
        community: CommunityId,
        req: &MissingProof,
    ) -> Result<Vec<Bytes>, NodeError> {
        let id = message_id(req.member.member_id(), req.global_time);
        let Some(m) = self.store.message(&community, &id)? else {
            return Ok(Vec::new());
        };
        let proof = self.proof_of(community, &m);
        self.proof_packets(community, proof.unwrap_or_default())
    }

    /// The deciding permission messages of a stored message's verdict, when it is allowed.
    fn proof_of(&self, community: CommunityId, m: &StoredMessage) -> Option<Vec<MessageId>> {
        let c = self.communities.get(&community)?;
        let timeline = &c.permission.timeline;
        let verdicts: Vec<Judgement> = match m.meta.0 {
            b if is_permission_byte(b) => vec![timeline.justification(&m.id())?],
            byte::UNDO_OTHER => {
                let target = self.undo_target_of(community, m)?;
                let target = self.store.message(&community, &target).ok()??;
                vec![timeline.check_undo_other(m.member, target.meta, m.global_time)]
            }
            b if b > MAX_APPLICATION_BYTE => return None,
            _ => stored_signers(m)
                .into_iter()
                .map(|s| timeline.check_message(s, m.meta, m.global_time))
                .collect::<Result<_, _>>()
                .ok()?,
        };
        if !verdicts.iter().all(|v| v.allowed) {
            return None;
        }
        Some(verdicts.into_iter().flat_map(|v| v.proof).collect())
    }

    /// Stored packets of the proof chain of `proof`, oldest first, within the response limit.
    /// Only effective messages: an inert one would be refused by every receiver.
    fn proof_packets(
        &self,
        community: CommunityId,
        proof: Vec<MessageId>,
    ) -> Result<Vec<Bytes>, NodeError> {
        let Some(c) = self.communities.get(&community) else {
            return Ok(Vec::new());
        };
        let timeline = &c.permission.timeline;
        let mut out = Vec::new();
        let mut used = 0usize;
        for id in timeline.proof_chain(proof) {
            if timeline.is_effective(&id) != Some(true) {
                continue;
            }
            if let Some(m) = self.store.message(&community, &id)? {
                if used.saturating_add(m.packet.len()) > PROOF_RESPONSE_LIMIT {
                    break;
                }
                used += m.packet.len();
                out.push(m.packet);
            }
        }
        Ok(out)
    }

    /// Spec 6.5: when a message of a dynamic meta-message is refused, its sender may have an
    /// outdated policy; send it the permission messages that decide against it.
    pub(crate) fn push_proofs(&mut self, inc: &Incoming) -> Result<(), NodeError> {
        let Some(meta) = inc.meta.as_ref().filter(|m| m.resolution.is_dynamic()) else {
            return Ok(());
        };
        let Some(c) = self.communities.get(&inc.community) else {
            return Ok(());
        };
        let gt = inc.packet.global_time();
        let mut proof = Vec::new();
        for signer in packet_signers(&inc.packet) {
            if let Ok(v) = c.permission.timeline.check_message(signer, meta.id, gt) {
                proof.extend(v.proof);
            }
        }
        if proof.is_empty() {
            return Ok(());
        }
        let now = self.now;
        for packet in self.proof_packets(inc.community, proof)? {
            self.send(
                now,
                Some(inc.community),
                inc.source,
                packet,
                super::Gate::Answer(inc.source),
            );
        }
        Ok(())
    }

    /// A community's permission timeline (read only).
    pub fn timeline(&self, community: &CommunityId) -> Option<&Timeline> {
        self.communities
            .get(community)
            .map(|c| &c.permission.timeline)
    }

    /// Every permission `member` holds in a community at global time `at`, per meta-message
    /// (the master holds everything). `None` for a community we did not join.
    pub fn permissions(
        &self,
        community: &CommunityId,
        member: &MemberId,
        at: GlobalTime,
    ) -> Option<BTreeMap<MetaId, Permissions>> {
        self.timeline(community).map(|t| t.permissions(*member, at))
    }

    /// What a stored message amounts to now; `None` when it is not stored.
    pub fn message_state(
        &self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<Option<MessageState>, NodeError> {
        let Some(m) = self.store.message(community, id)? else {
            return Ok(None);
        };
        Ok(Some(self.state_of(*community, &m)?))
    }

    pub(crate) fn state_of(
        &self,
        community: CommunityId,
        m: &StoredMessage,
    ) -> Result<MessageState, NodeError> {
        let Some(c) = self.communities.get(&community) else {
            return Ok(MessageState::Disallowed);
        };
        let timeline = &c.permission.timeline;
        let by_mark = match m.undone {
            Undone::No => MessageState::Live,
            Undone::ByMessage(by) => MessageState::UndoneBy(by),
            Undone::ByPolicy => MessageState::Disallowed,
        };
        Ok(match m.meta.0 {
            b if is_permission_byte(b) => {
                if timeline.is_effective(&m.id()) == Some(true) {
                    MessageState::Live
                } else {
                    MessageState::Disallowed
                }
            }
            byte::UNDO_OWN | byte::UNDO_OTHER => {
                let target = match self.undo_target_of(community, m) {
                    Some(t) => self.store.message(&community, &t)?,
                    None => None,
                };
                let target_live = target
                    .as_ref()
                    .is_some_and(|t| self.content_allowed(community, t));
                if target_live && self.undo_allowed(community, m, target.as_ref()) {
                    by_mark
                } else {
                    MessageState::Disallowed
                }
            }
            b if b > MAX_APPLICATION_BYTE => by_mark,
            // A message undone by an undo stays marked so when its author loses permission;
            // the timeline says it no longer counts either way.
            _ if !self.content_allowed(community, m) => MessageState::Disallowed,
            _ => by_mark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_query_is_inclusive_of_from_exclusive_of_until() {
        let q = range_query(
            vec![MetaId(1)],
            None,
            GtRange {
                from: GlobalTime(5),
                until: Some(GlobalTime(9)),
            },
        );
        assert_eq!((q.low, q.high), (GlobalTime(5), GlobalTime(8)));
        let open = range_query(
            vec![MetaId(1)],
            None,
            GtRange {
                from: GlobalTime(5),
                until: None,
            },
        );
        assert_eq!(open.high, GlobalTime::MAX);
    }

    #[test]
    fn only_the_four_timeline_messages_are_permission_messages() {
        let bytes: Vec<u8> = (0..=255u8).filter(|b| is_permission_byte(*b)).collect();
        assert_eq!(
            bytes,
            vec![
                byte::DYNAMIC_SETTINGS,
                byte::REVOKE,
                byte::AUTHORIZE,
                byte::DESTROY_COMMUNITY
            ]
        );
    }

    #[test]
    fn refusals_have_distinct_counter_names() {
        use timeline::Error as E;
        let errors = [
            E::ZeroGlobalTime,
            E::Empty,
            E::BadPermissions(0),
            E::UnknownMeta(MetaId(1)),
            E::NotDynamic(MetaId(1)),
            E::PolicyIndex {
                meta: MetaId(1),
                index: 2,
                count: 2,
            },
            E::ContradictorySettings(MetaId(1)),
            E::TooManyEntries { entries: 2, max: 1 },
        ];
        let mut names: Vec<&str> = errors.iter().map(refusal).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), errors.len());
    }
}
