//! A naive model of the timeline's rules for the property tests: it recomputes everything from
//! the set of messages by scanning, with none of the indexes, so the two share no logic beyond
//! message normalization.

use std::collections::BTreeMap;

use super::message::{Kind, PermissionMessage};
use crate::ids::{GlobalTime, MemberId, MessageId, MetaId};
use crate::wire::builtin::{DestroyKind, Permissions, byte};

pub(super) struct Reference {
    master: MemberId,
    messages: Vec<PermissionMessage>,
    effective: BTreeMap<MessageId, bool>,
}

impl Reference {
    /// Evaluates `messages` (already normalized) in (global time, authorize/revoke first) order.
    pub fn new(master: MemberId, mut messages: Vec<PermissionMessage>) -> Reference {
        let linear = |m: &PermissionMessage| {
            matches!(m.kind, Kind::DynamicSettings(_) | Kind::DestroyCommunity(_))
        };
        messages.sort_by_key(|m| (m.id.global_time, linear(m), m.id));
        let mut reference = Reference {
            master,
            messages: Vec::new(),
            effective: BTreeMap::new(),
        };
        for m in messages {
            let effective = reference.would_be_effective(&m);
            reference.effective.insert(m.id, effective);
            reference.messages.push(m);
        }
        reference
    }

    fn would_be_effective(&self, m: &PermissionMessage) -> bool {
        let author = m.id.member;
        let t = m.id.global_time;
        let strict = |bit| -> Vec<(MetaId, Permissions)> {
            match &m.kind {
                Kind::Authorize(g) | Kind::Revoke(g) => g.iter().map(|g| (g.meta, bit)).collect(),
                _ => Vec::new(),
            }
        };
        let (needs, at) = match &m.kind {
            Kind::Authorize(_) => (strict(Permissions::AUTHORIZE), t.0.checked_sub(1)),
            Kind::Revoke(_) => (strict(Permissions::REVOKE), t.0.checked_sub(1)),
            Kind::DynamicSettings(_) => (
                vec![(MetaId(byte::DYNAMIC_SETTINGS), Permissions::PERMIT)],
                Some(t.0),
            ),
            Kind::DestroyCommunity(_) => (
                vec![(MetaId(byte::DESTROY_COMMUNITY), Permissions::PERMIT)],
                Some(t.0),
            ),
        };
        if author == self.master {
            return true;
        }
        let Some(at) = at else { return false };
        needs
            .into_iter()
            .all(|(meta, bit)| self.holds(author, meta, bit, GlobalTime(at)).0)
    }

    fn is_effective(&self, id: &MessageId) -> bool {
        self.effective.get(id).copied().unwrap_or(false)
    }

    /// (held, deciding messages) for one bit.
    pub fn holds(
        &self,
        member: MemberId,
        meta: MetaId,
        bit: Permissions,
        t: GlobalTime,
    ) -> (bool, Vec<MessageId>) {
        if member == self.master {
            return (true, Vec::new());
        }
        let mut latest: Option<GlobalTime> = None;
        let mut grants = Vec::new();
        let mut revokes = Vec::new();
        for m in &self.messages {
            let (Kind::Authorize(g) | Kind::Revoke(g)) = &m.kind else {
                continue;
            };
            let names = g
                .iter()
                .any(|g| g.member == member && g.meta == meta && g.permissions.contains(bit));
            let gt = m.id.global_time;
            if !names || gt > t || !self.is_effective(&m.id) {
                continue;
            }
            if latest.is_none_or(|l| gt > l) {
                latest = Some(gt);
                grants.clear();
                revokes.clear();
            }
            if latest == Some(gt) {
                if matches!(m.kind, Kind::Revoke(_)) {
                    revokes.push(m.id);
                } else {
                    grants.push(m.id);
                }
            }
        }
        let mut proof = if revokes.is_empty() {
            grants
        } else {
            revokes.clone()
        };
        proof.sort_by_key(|id| (id.global_time, id.member));
        (latest.is_some() && revokes.is_empty(), proof)
    }

    /// (policy index, deciding dynamic-settings) of a dynamic meta-message at `t`.
    pub fn policy(&self, meta: MetaId, t: GlobalTime) -> (u8, Option<MessageId>) {
        let mut best: Option<(GlobalTime, super::Tiebreak, MessageId, u8)> = None;
        for m in &self.messages {
            let Kind::DynamicSettings(settings) = &m.kind else {
                continue;
            };
            if m.id.global_time >= t || !self.is_effective(&m.id) {
                continue;
            }
            for &(s_meta, index) in settings {
                let candidate = (m.id.global_time, m.tiebreak, m.id, index);
                if s_meta == meta
                    && best.is_none_or(|b| (b.0, b.1, b.2) < (m.id.global_time, m.tiebreak, m.id))
                {
                    best = Some(candidate);
                }
            }
        }
        best.map_or((0, None), |(_, _, id, index)| (index, Some(id)))
    }

    pub fn effective(&self) -> &BTreeMap<MessageId, bool> {
        &self.effective
    }

    pub fn destruction(&self) -> Option<(DestroyKind, MessageId)> {
        self.messages
            .iter()
            .filter_map(|m| match m.kind {
                Kind::DestroyCommunity(kind) if self.is_effective(&m.id) => Some((
                    kind == DestroyKind::Soft,
                    m.id.global_time,
                    m.tiebreak,
                    m.id,
                    kind,
                )),
                _ => None,
            })
            .min_by_key(|d| (d.0, d.1, d.2, d.3))
            .map(|d| (d.4, d.3))
    }
}
