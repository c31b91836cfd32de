//! Permission messages as the timeline holds them: authorize, revoke, dynamic-settings and
//! destroy-community, reduced to the fields that decide permissions.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::Error;
use crate::ids::{GlobalTime, MemberId, MessageId, MetaId};
use crate::wire::builtin::{Builtin, DestroyKind, Permissions};

/// The caller's tiebreak between messages with the same global time: SHA-256 of the packet.
///
/// The timeline orders messages by `(global time, tiebreak, message id)`. Only two decisions look
/// past the global time: which of several dynamic-settings at the same global time wins (the
/// greatest), and which destroy-community is reported when several are effective (the least).
/// Every node hashes the same packet to the same value, so every node decides the same way.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tiebreak(pub [u8; 32]);

impl Tiebreak {
    /// The tiebreak of a packet: SHA-256 of its bytes, signature included.
    pub fn of_packet(packet: &[u8]) -> Tiebreak {
        Tiebreak(Sha256::digest(packet).into())
    }
}

impl fmt::Debug for Tiebreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tiebreak({})", &hex::encode(self.0)[..8])
    }
}

/// Permission bits one authorize or revoke message changes for one member on one meta-message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    /// The member whose permissions change.
    pub member: MemberId,
    /// The meta-message the permissions are about.
    pub meta: MetaId,
    /// The bits granted or revoked (a non-empty subset of [`Permissions::ALL`]).
    pub permissions: Permissions,
}

/// What a permission message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `dispersy-authorize`: grant each listed permission. The author needs `authorize` on every
    /// meta-message listed.
    Authorize(Vec<Grant>),
    /// `dispersy-revoke`: revoke each listed permission. The author needs `revoke` on every
    /// meta-message listed.
    Revoke(Vec<Grant>),
    /// `dispersy-dynamic-settings`: for each meta-message, the index of the resolution policy in
    /// force after this message's global time. The author needs `permit` on dynamic-settings.
    DynamicSettings(Vec<(MetaId, u8)>),
    /// `dispersy-destroy-community`. The author needs `permit` on destroy-community.
    DestroyCommunity(DestroyKind),
}

/// One permission message: who wrote it at which global time, its tiebreak and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionMessage {
    /// Author and global time.
    pub id: MessageId,
    /// Orders messages that share a global time; see [`Tiebreak`].
    pub tiebreak: Tiebreak,
    /// The payload.
    pub kind: Kind,
}

/// Whether a message is judged by permissions strictly before its global time (authorize and
/// revoke) or up to and including it (the linear built-ins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Stratum {
    /// Authorize and revoke: judged by holdings at `global time - 1`.
    Grant,
    /// Dynamic-settings and destroy-community: judged by holdings at `global time`, so after
    /// every authorize and revoke of the same global time.
    Linear,
}

impl PermissionMessage {
    /// The permission message carried by a built-in payload, or `None` for any other built-in.
    ///
    /// `tiebreak` is normally [`Tiebreak::of_packet`] of the whole packet.
    pub fn from_builtin(
        id: MessageId,
        tiebreak: Tiebreak,
        payload: &Builtin,
    ) -> Option<PermissionMessage> {
        let flatten = |grants: &[crate::wire::builtin::PermissionGrant]| -> Vec<Grant> {
            grants
                .iter()
                .flat_map(|g| {
                    let member = g.member.member_id();
                    g.permissions.iter().map(move |&(meta, permissions)| Grant {
                        member,
                        meta,
                        permissions,
                    })
                })
                .collect()
        };
        let kind = match payload {
            Builtin::Authorize(grants) => Kind::Authorize(flatten(grants)),
            Builtin::Revoke(grants) => Kind::Revoke(flatten(grants)),
            Builtin::DynamicSettings(settings) => Kind::DynamicSettings(settings.clone()),
            Builtin::DestroyCommunity(kind) => Kind::DestroyCommunity(*kind),
            _ => return None,
        };
        Some(PermissionMessage { id, tiebreak, kind })
    }

    /// The author.
    pub fn author(&self) -> MemberId {
        self.id.member
    }

    /// The global time.
    pub fn global_time(&self) -> GlobalTime {
        self.id.global_time
    }

    pub(crate) fn stratum(&self) -> Stratum {
        match self.kind {
            Kind::Authorize(_) | Kind::Revoke(_) => Stratum::Grant,
            Kind::DynamicSettings(_) | Kind::DestroyCommunity(_) => Stratum::Linear,
        }
    }

    /// The holdings the author needs, as (meta-message, one permission bit), without repeats.
    pub(crate) fn requirements(&self) -> Vec<(MetaId, Permissions)> {
        use crate::wire::builtin::byte;
        let metas = |grants: &[Grant], bit| {
            let mut v: Vec<(MetaId, Permissions)> = grants.iter().map(|g| (g.meta, bit)).collect();
            v.dedup();
            v
        };
        match &self.kind {
            Kind::Authorize(g) => metas(g, Permissions::AUTHORIZE),
            Kind::Revoke(g) => metas(g, Permissions::REVOKE),
            Kind::DynamicSettings(_) => vec![(MetaId(byte::DYNAMIC_SETTINGS), Permissions::PERMIT)],
            Kind::DestroyCommunity(_) => {
                vec![(MetaId(byte::DESTROY_COMMUNITY), Permissions::PERMIT)]
            }
        }
    }

    /// The global time at which the requirements are looked up, or `None` when no holding can
    /// satisfy them (an authorize or revoke at global time 0 has nothing before it).
    pub(crate) fn judged_at(&self) -> Option<GlobalTime> {
        match self.stratum() {
            Stratum::Grant => self.id.global_time.0.checked_sub(1).map(GlobalTime),
            Stratum::Linear => Some(self.id.global_time),
        }
    }

    /// Number of entries (grants or settings) the message carries.
    pub(crate) fn entries(&self) -> usize {
        match &self.kind {
            Kind::Authorize(g) | Kind::Revoke(g) => g.len(),
            Kind::DynamicSettings(s) => s.len(),
            Kind::DestroyCommunity(_) => 1,
        }
    }

    /// Checks the message's structure and puts it in canonical form: grants sorted by
    /// (meta, member) with repeated pairs merged, settings sorted by meta.
    ///
    /// `resolution_count(meta)` answers `None` for an unknown meta-message, `Some(0)` for a known
    /// meta-message without dynamic resolution, and the number of policies otherwise.
    pub(crate) fn normalize(
        mut self,
        max_entries: usize,
        resolution_count: impl Fn(MetaId) -> Option<usize>,
    ) -> Result<PermissionMessage, Error> {
        if self.id.global_time == GlobalTime::ZERO {
            return Err(Error::ZeroGlobalTime);
        }
        let entries = self.entries();
        if entries == 0 {
            return Err(Error::Empty);
        }
        if entries > max_entries {
            return Err(Error::TooManyEntries {
                entries,
                max: max_entries,
            });
        }
        match &mut self.kind {
            Kind::Authorize(grants) | Kind::Revoke(grants) => {
                let mut merged: BTreeMap<(MetaId, MemberId), Permissions> = BTreeMap::new();
                for g in grants.iter() {
                    if g.permissions.0 == 0 || !Permissions::ALL.contains(g.permissions) {
                        return Err(Error::BadPermissions(g.permissions.0));
                    }
                    if resolution_count(g.meta).is_none() {
                        return Err(Error::UnknownMeta(g.meta));
                    }
                    let bits = merged.entry((g.meta, g.member)).or_default();
                    *bits = bits.union(g.permissions);
                }
                *grants = merged
                    .into_iter()
                    .map(|((meta, member), permissions)| Grant {
                        member,
                        meta,
                        permissions,
                    })
                    .collect();
            }
            Kind::DynamicSettings(settings) => {
                let mut merged: BTreeMap<MetaId, u8> = BTreeMap::new();
                for &(meta, index) in settings.iter() {
                    let count = resolution_count(meta).ok_or(Error::UnknownMeta(meta))?;
                    if count == 0 {
                        return Err(Error::NotDynamic(meta));
                    }
                    if usize::from(index) >= count {
                        return Err(Error::PolicyIndex { meta, index, count });
                    }
                    if merged.insert(meta, index).is_some_and(|old| old != index) {
                        return Err(Error::ContradictorySettings(meta));
                    }
                }
                *settings = merged.into_iter().collect();
            }
            Kind::DestroyCommunity(_) => {}
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::builtin::byte;

    use crate::timeline::tests::message_id as id;

    fn counts(meta: MetaId) -> Option<usize> {
        match meta.0 {
            1 => Some(0),
            2 => Some(2),
            _ => None,
        }
    }

    fn grant(m: u8, meta: u8, bits: u8) -> Grant {
        Grant {
            member: MemberId([m; 20]),
            meta: MetaId(meta),
            permissions: Permissions(bits),
        }
    }

    #[test]
    fn normalize_merges_and_sorts_grants() {
        let msg = PermissionMessage {
            id: id(1, 5),
            tiebreak: Tiebreak::default(),
            kind: Kind::Authorize(vec![
                grant(3, 2, 0x01),
                grant(2, 1, 0x02),
                grant(3, 2, 0x08),
            ]),
        };
        let n = msg.normalize(16, counts).expect("valid");
        assert_eq!(
            n.kind,
            Kind::Authorize(vec![grant(2, 1, 0x02), grant(3, 2, 0x09)])
        );
        assert_eq!(
            n.requirements(),
            vec![
                (MetaId(1), Permissions::AUTHORIZE),
                (MetaId(2), Permissions::AUTHORIZE)
            ]
        );
        assert_eq!(n.judged_at(), Some(GlobalTime(4)));
    }

    #[test]
    fn normalize_refuses_malformed_messages() {
        let with = |kind, t| PermissionMessage {
            id: id(1, t),
            tiebreak: Tiebreak::default(),
            kind,
        };
        let cases = [
            (with(Kind::Authorize(vec![]), 3), Error::Empty),
            (
                with(Kind::Authorize(vec![grant(1, 1, 0)]), 3),
                Error::BadPermissions(0),
            ),
            (
                with(Kind::Revoke(vec![grant(1, 1, 0x10)]), 3),
                Error::BadPermissions(0x10),
            ),
            (
                with(Kind::Revoke(vec![grant(1, 9, 0x01)]), 3),
                Error::UnknownMeta(MetaId(9)),
            ),
            (
                with(Kind::DestroyCommunity(DestroyKind::Hard), 0),
                Error::ZeroGlobalTime,
            ),
            (
                with(Kind::DynamicSettings(vec![(MetaId(1), 0)]), 3),
                Error::NotDynamic(MetaId(1)),
            ),
            (
                // W12: index == number of policies is out of range, not an exception later.
                with(Kind::DynamicSettings(vec![(MetaId(2), 2)]), 3),
                Error::PolicyIndex {
                    meta: MetaId(2),
                    index: 2,
                    count: 2,
                },
            ),
            (
                with(
                    Kind::DynamicSettings(vec![(MetaId(2), 0), (MetaId(2), 1)]),
                    3,
                ),
                Error::ContradictorySettings(MetaId(2)),
            ),
            (
                with(Kind::Authorize(vec![grant(1, 1, 1); 17]), 3),
                Error::TooManyEntries {
                    entries: 17,
                    max: 16,
                },
            ),
        ];
        for (msg, err) in cases {
            assert_eq!(msg.normalize(16, counts), Err(err));
        }
    }

    #[test]
    fn requirements_of_linear_builtins() {
        let ds = PermissionMessage {
            id: id(1, 7),
            tiebreak: Tiebreak::default(),
            kind: Kind::DynamicSettings(vec![(MetaId(2), 1)]),
        };
        assert_eq!(
            ds.requirements(),
            vec![(MetaId(byte::DYNAMIC_SETTINGS), Permissions::PERMIT)]
        );
        assert_eq!(ds.judged_at(), Some(GlobalTime(7)));
        let destroy = PermissionMessage {
            kind: Kind::DestroyCommunity(DestroyKind::Soft),
            ..ds
        };
        assert_eq!(
            destroy.requirements(),
            vec![(MetaId(byte::DESTROY_COMMUNITY), Permissions::PERMIT)]
        );
    }

    #[test]
    fn tiebreak_is_sha256_of_the_packet() {
        let t = Tiebreak::of_packet(b"abc");
        assert_eq!(
            hex::encode(t.0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
