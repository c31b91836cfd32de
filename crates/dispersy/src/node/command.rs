//! Founding a community, and the permission commands: authorize, revoke, undo, set a dynamic
//! resolution, destroy.
//!
//! Every command checks against the timeline first, at the global time the new message will
//! claim, and refuses with [`CommandError::NotPermitted`] naming what is missing. A node that
//! founded a community (or was given the master key back with [`Node::set_master_key`]) signs
//! a permission message as the master when our own member lacks the permission: the master
//! holds everything, so the founder can always repair its community.

use super::{CommandError, Node};
use crate::community::policy::Resolution;
use crate::community::spec::CommunitySpec;
use crate::community::{Definition, DefinitionError, MetaMessage};
use crate::crypto::{PrivateKey, PublicKey};
use crate::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId};
use crate::store::Undone;
use crate::time::Instant;
use crate::timeline::{PermissionMessage, Tiebreak, Timeline};
use crate::wire::builtin::{Builtin, DestroyKind, PermissionGrant, Permissions, byte};

/// A community this node founded.
#[derive(Debug)]
pub struct Founded {
    /// The new community's id (the master key's member id).
    pub community: CommunityId,
    /// The master's private key. Whoever holds it can do anything in the community: keep it
    /// safe, and give it back with [`Node::set_master_key`] after a restart.
    pub master: PrivateKey,
}

/// The permissions the master grants the founder (spec 2.1): `permit`, `authorize` and
/// `revoke` on every linear and dynamic meta-message (and `undo` when undoable),
/// `authorize`, `revoke` and `undo` on every public synced undoable one, and `permit`,
/// `authorize` and `revoke` on dynamic-settings and destroy-community.
pub fn founder_permissions(def: &Definition) -> Vec<(MetaId, Permissions)> {
    let manage = Permissions::AUTHORIZE.union(Permissions::REVOKE);
    let mut out = Vec::new();
    for m in def.application_metas() {
        let undo = if m.undoable {
            Permissions::UNDO
        } else {
            Permissions::default()
        };
        let bits = match m.resolution {
            Resolution::Linear | Resolution::Dynamic { .. } => {
                manage.union(Permissions::PERMIT).union(undo)
            }
            Resolution::Public if m.is_synced() && m.undoable => manage.union(undo),
            Resolution::Public => continue,
        };
        out.push((m.id, bits));
    }
    for b in [byte::DYNAMIC_SETTINGS, byte::DESTROY_COMMUNITY] {
        out.push((MetaId(b), manage.union(Permissions::PERMIT)));
    }
    out
}

/// One member's permissions, as authorize and revoke carry them.
fn grant(member: &PublicKey, permissions: &[(MetaId, Permissions)]) -> Vec<PermissionGrant> {
    vec![PermissionGrant {
        member: member.clone(),
        permissions: permissions.to_vec(),
    }]
}

impl Node {
    /// Founds a community: generates a master key, joins the community `define` builds for
    /// it, and creates the master's identity and one authorize, signed by the master, granting
    /// our member [`founder_permissions`]. The node keeps the master key in memory; the caller
    /// should store it.
    pub fn found(
        &mut self,
        now: Instant,
        define: impl FnOnce(PublicKey) -> Result<Definition, DefinitionError>,
    ) -> Result<Founded, CommandError> {
        let master = PrivateKey::generate(&mut self.rng);
        let def =
            define(master.public().clone()).map_err(|e| CommandError::Invalid(e.to_string()))?;
        if def.id() != master.public().community_id() {
            return Err(CommandError::Invalid(
                "the definition must use the master key it was given".into(),
            ));
        }
        self.join(now, def)?;
        self.found_grants(now, master)
    }

    /// Founds a community described declaratively: `spec` without a master key or id. Returns
    /// the completed description (with the new master key) to keep, and the master key.
    pub fn found_spec(
        &mut self,
        now: Instant,
        spec: &CommunitySpec,
    ) -> Result<(CommunitySpec, Founded), CommandError> {
        if spec.master_key.is_some() || spec.community.is_some() {
            return Err(CommandError::Invalid(
                "a new community's description names no master key or id".into(),
            ));
        }
        let master = PrivateKey::generate(&mut self.rng);
        let mut spec = spec.clone();
        spec.master_key = Some(hex::encode(master.public().to_bin()));
        self.join_spec(now, &spec)?;
        let founded = self.found_grants(now, master)?;
        Ok((spec, founded))
    }

    fn found_grants(&mut self, now: Instant, master: PrivateKey) -> Result<Founded, CommandError> {
        let community = master.public().community_id();
        let def = self
            .communities
            .get_mut(&community)
            .map(|c| {
                c.master_private = Some(master.clone());
                c.def.clone()
            })
            .ok_or(CommandError::UnknownCommunity(community))?;
        self.create_builtin(now, community, &Builtin::Identity, &master)?;
        let grant = Builtin::Authorize(vec![PermissionGrant {
            member: self.key.public().clone(),
            permissions: founder_permissions(&def),
        }]);
        self.create_builtin(now, community, &grant, &master)?;
        self.commit()?;
        Ok(Founded { community, master })
    }

    /// Gives the node the master key of a community it joined (after a restart), so it can
    /// sign as the master when our member lacks a permission.
    pub fn set_master_key(
        &mut self,
        community: &CommunityId,
        master: PrivateKey,
    ) -> Result<(), CommandError> {
        if master.public().community_id() != *community {
            return Err(CommandError::Invalid(format!(
                "key {} is not the master key of community {community}",
                master.member_id()
            )));
        }
        let c = self
            .communities
            .get_mut(community)
            .ok_or(CommandError::UnknownCommunity(*community))?;
        c.master_private = Some(master);
        Ok(())
    }

    /// Whether this node holds a community's master key.
    pub fn holds_master_key(&self, community: &CommunityId) -> bool {
        self.communities
            .get(community)
            .is_some_and(|c| c.master_private.is_some())
    }

    /// Grants `member` the given permissions, per meta-message. Needs `authorize` on each.
    pub fn authorize(
        &mut self,
        now: Instant,
        community: CommunityId,
        member: &PublicKey,
        permissions: &[(MetaId, Permissions)],
    ) -> Result<MessageId, CommandError> {
        self.create_permission(
            now,
            community,
            Builtin::Authorize(grant(member, permissions)),
        )
    }

    /// Revokes the given permissions of `member`, per meta-message. Needs `revoke` on each.
    pub fn revoke(
        &mut self,
        now: Instant,
        community: CommunityId,
        member: &PublicKey,
        permissions: &[(MetaId, Permissions)],
    ) -> Result<MessageId, CommandError> {
        self.create_permission(now, community, Builtin::Revoke(grant(member, permissions)))
    }

    /// Switches a dynamic meta-message to its policy number `policy` for messages after the
    /// new dynamic-settings message. Needs `permit` on dynamic-settings.
    pub fn set_resolution(
        &mut self,
        now: Instant,
        community: CommunityId,
        meta: MetaId,
        policy: u8,
    ) -> Result<MessageId, CommandError> {
        self.create_permission(
            now,
            community,
            Builtin::DynamicSettings(vec![(meta, policy)]),
        )
    }

    /// Destroys the community (see `destroy.rs`). Needs `permit` on destroy-community.
    pub fn destroy(
        &mut self,
        now: Instant,
        community: CommunityId,
        kind: DestroyKind,
    ) -> Result<MessageId, CommandError> {
        self.create_permission(now, community, Builtin::DestroyCommunity(kind))
    }

    /// Undoes a stored message: undo-own for our own, undo-other (needs `undo` on its
    /// meta-message) for another member's. A message already undone by an undo message gives
    /// that undo back instead of a second one.
    pub fn undo(
        &mut self,
        now: Instant,
        community: CommunityId,
        message: MessageId,
    ) -> Result<MessageId, CommandError> {
        let c = self.writable(&community)?;
        let target = self
            .store
            .message(&community, &message)?
            .ok_or_else(|| CommandError::Invalid(format!("message {message:?} is not stored")))?;
        let meta = c
            .def
            .meta(target.meta)
            .filter(|m| m.undoable)
            .ok_or_else(|| {
                CommandError::Invalid(format!(
                    "messages of meta-message {} cannot be undone",
                    target.meta
                ))
            })?;
        if let Undone::ByMessage(by) = target.undone {
            return Ok(by);
        }
        let gt = c.global_time.next();
        let me = self.member_id();
        let (payload, key) = if target.member == me {
            (Builtin::UndoOwn(target.global_time), self.key.clone())
        } else {
            let payload = Builtin::UndoOther {
                member: self.lookup_key(&target.member).ok_or_else(|| {
                    CommandError::Invalid(format!("key of member {} unknown", target.member))
                })?,
                global_time: target.global_time,
            };
            let check = |t: &Timeline, m: MemberId| Ok(t.check_undo_other(m, meta.id, gt).allowed);
            let key = self.signing_key(&community, check).map_err(|_| {
                CommandError::NotPermitted(format!(
                    "member {me} lacks undo on {} at global time {}",
                    meta.name, gt.0
                ))
            })?;
            (payload, key)
        };
        let packet = self.create_builtin(now, community, &payload, &key)?;
        self.commit()?;
        Ok(MessageId {
            member: key.member_id(),
            global_time: packet.global_time(),
        })
    }

    /// Checks a permission message against the timeline, signs it with our key (or the
    /// master's), stores and sends it.
    fn create_permission(
        &mut self,
        now: Instant,
        community: CommunityId,
        payload: Builtin,
    ) -> Result<MessageId, CommandError> {
        let c = self.writable(&community)?;
        let gt = c.global_time.next();
        let timeline = &c.permission.timeline;
        let judge = |t: &Timeline, member: MemberId| {
            let id = MessageId {
                member,
                global_time: gt,
            };
            let message = PermissionMessage::from_builtin(id, Tiebreak::default(), &payload)
                .ok_or_else(|| CommandError::Invalid("not a permission message".into()))?;
            t.judge(&message)
                .map(|v| v.allowed)
                .map_err(|e| CommandError::Invalid(e.to_string()))
        };
        // Malformed is malformed whoever signs.
        judge(timeline, self.member_id())?;
        let key = self
            .signing_key(&community, judge)
            .map_err(|_| CommandError::NotPermitted(self.lacking(timeline, &payload, gt)))?;
        let packet = self.create_builtin(now, community, &payload, &key)?;
        self.commit()?;
        Ok(MessageId {
            member: key.member_id(),
            global_time: packet.global_time(),
        })
    }

    /// Our key when `allowed` says our member may, else the master's when we hold it.
    fn signing_key(
        &self,
        community: &CommunityId,
        allowed: impl Fn(&Timeline, MemberId) -> Result<bool, CommandError>,
    ) -> Result<PrivateKey, CommandError> {
        let c = self
            .communities
            .get(community)
            .ok_or(CommandError::UnknownCommunity(*community))?;
        let timeline = &c.permission.timeline;
        if allowed(timeline, self.member_id())? {
            return Ok(self.key.clone());
        }
        match &c.master_private {
            Some(master) if allowed(timeline, master.member_id())? => Ok(master.clone()),
            _ => Err(CommandError::NotPermitted(String::new())),
        }
    }

    /// What our member lacks for a permission message at `gt`, in words.
    fn lacking(&self, timeline: &Timeline, payload: &Builtin, gt: GlobalTime) -> String {
        let me = self.member_id();
        let (bit, metas, at) = match payload {
            Builtin::Authorize(g) | Builtin::Revoke(g) => {
                let bit = if matches!(payload, Builtin::Authorize(_)) {
                    Permissions::AUTHORIZE
                } else {
                    Permissions::REVOKE
                };
                let metas: Vec<MetaId> = g
                    .iter()
                    .flat_map(|g| g.permissions.iter().map(|(m, _)| *m))
                    .collect();
                (bit, metas, GlobalTime(gt.0.saturating_sub(1)))
            }
            Builtin::DynamicSettings(_) => (
                Permissions::PERMIT,
                vec![MetaId(byte::DYNAMIC_SETTINGS)],
                gt,
            ),
            _ => (
                Permissions::PERMIT,
                vec![MetaId(byte::DESTROY_COMMUNITY)],
                gt,
            ),
        };
        let mut missing: Vec<String> = metas
            .into_iter()
            .filter(|m| !timeline.check(me, *m, bit, at).allowed)
            .map(|m| self.meta_name(timeline, m))
            .collect();
        missing.dedup();
        format!(
            "member {me} lacks {} on {} at global time {}",
            bit.name(),
            missing.join(", "),
            at.0
        )
    }

    fn meta_name(&self, timeline: &Timeline, meta: MetaId) -> String {
        let community = CommunityId(timeline.master().0);
        self.communities
            .get(&community)
            .and_then(|c| c.def.meta(meta))
            .map_or_else(|| meta.to_string(), |m| m.name.clone())
    }

    /// A community we may still create messages in.
    pub(crate) fn writable(
        &self,
        community: &CommunityId,
    ) -> Result<&super::community::CommunityState, CommandError> {
        let c = self
            .communities
            .get(community)
            .ok_or(CommandError::UnknownCommunity(*community))?;
        if c.permission.destroyed.is_some() {
            return Err(CommandError::Destroyed(*community));
        }
        Ok(c)
    }

    /// Checks that our member may create a message of `meta` now (resolution at the next
    /// global time, community not destroyed).
    pub(crate) fn check_create(
        &self,
        community: &CommunityId,
        meta: &MetaMessage,
    ) -> Result<(), CommandError> {
        self.check_create_as(community, meta, &[self.member_id()])
    }

    /// [`Node::check_create`] for every signer of a message.
    pub(crate) fn check_create_as(
        &self,
        community: &CommunityId,
        meta: &MetaMessage,
        signers: &[MemberId],
    ) -> Result<(), CommandError> {
        let c = self.writable(community)?;
        let gt = c.global_time.next();
        let timeline = &c.permission.timeline;
        for signer in signers {
            let verdict = timeline
                .check_message(*signer, meta.id, gt)
                .map_err(|e| CommandError::Invalid(e.to_string()))?;
            if verdict.allowed {
                continue;
            }
            let policy = timeline
                .policy(meta.id, gt)
                .map(|p| format!(" (policy {:?})", p.policy))
                .unwrap_or_default();
            return Err(CommandError::NotPermitted(format!(
                "member {signer} lacks permit on {}{policy} at global time {}",
                meta.name, gt.0
            )));
        }
        Ok(())
    }

    /// The policy index a new message of a dynamic meta-message carries: the one active at its
    /// global time (informational for receivers).
    pub(crate) fn policy_index(
        &self,
        community: &CommunityId,
        meta: &MetaMessage,
        gt: GlobalTime,
    ) -> Option<u8> {
        if !meta.resolution.is_dynamic() {
            return None;
        }
        let index = self
            .communities
            .get(community)
            .and_then(|c| c.permission.timeline.policy(meta.id, gt).ok())
            .and_then(|p| p.index);
        Some(index.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::MetaMessage;
    use rand::SeedableRng;

    #[test]
    fn founder_permissions_follow_spec_2_1() {
        let master = PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        let def = Definition::builder(master.public().clone())
            .meta(MetaMessage::new(1, "linear").linear())
            .meta(MetaMessage::new(2, "linear-undo").linear().undoable())
            .meta(MetaMessage::new(3, "dynamic").dynamic().undoable())
            .meta(MetaMessage::new(4, "public-undo").undoable())
            .meta(MetaMessage::new(5, "public"))
            .meta(MetaMessage::new(6, "direct-undo").direct().undoable())
            .build()
            .expect("valid definition");
        let p = |bits: &[Permissions]| bits.iter().fold(Permissions::default(), |a, b| a.union(*b));
        let (permit, authorize, revoke, undo) = (
            Permissions::PERMIT,
            Permissions::AUTHORIZE,
            Permissions::REVOKE,
            Permissions::UNDO,
        );
        assert_eq!(
            founder_permissions(&def),
            vec![
                (MetaId(1), p(&[permit, authorize, revoke])),
                (MetaId(2), p(&[permit, authorize, revoke, undo])),
                (MetaId(3), p(&[permit, authorize, revoke, undo])),
                (MetaId(4), p(&[authorize, revoke, undo])),
                (
                    MetaId(byte::DYNAMIC_SETTINGS),
                    p(&[permit, authorize, revoke])
                ),
                (
                    MetaId(byte::DESTROY_COMMUNITY),
                    p(&[permit, authorize, revoke])
                ),
            ]
        );
    }
}
