//! Scenario tests: Dispersy's test_timeline, test_dynamicsettings, test_undo (permission part)
//! and test_destroycommunity, the W3 fix, same-global-time conflicts and late arrivals.

use super::*;
use crate::community::policy::ResolutionPolicy;
use crate::wire::builtin::Permissions;

pub(super) const MASTER: MemberId = MemberId([0; 20]);
pub(super) const PROTECTED: MetaId = MetaId(1);
pub(super) const DYNAMIC: MetaId = MetaId(2);
pub(super) const PUBLIC: MetaId = MetaId(3);
const SETTINGS: MetaId = MetaId(byte::DYNAMIC_SETTINGS);
const DESTROY: MetaId = MetaId(byte::DESTROY_COMMUNITY);

const PERMIT: Permissions = Permissions::PERMIT;
const AUTHORIZE: Permissions = Permissions::AUTHORIZE;
const REVOKE: Permissions = Permissions::REVOKE;
const UNDO: Permissions = Permissions::UNDO;

pub(super) fn member(n: u8) -> MemberId {
    MemberId([n; 20])
}

pub(super) fn metas() -> Vec<(MetaId, Resolution)> {
    vec![
        (PROTECTED, Resolution::Linear),
        (
            DYNAMIC,
            Resolution::Dynamic {
                policies: vec![ResolutionPolicy::Public, ResolutionPolicy::Linear],
            },
        ),
        (PUBLIC, Resolution::Public),
    ]
}

fn timeline() -> Timeline {
    Timeline::new(MASTER, metas(), Config::default()).expect("valid meta table")
}

/// The id of member `[m; 20]`'s message at global time `t`.
pub(super) fn message_id(m: u8, t: u64) -> MessageId {
    id(member(m), t)
}

fn id(author: MemberId, t: u64) -> MessageId {
    MessageId {
        member: author,
        global_time: GlobalTime(t),
    }
}

fn message(author: MemberId, t: u64, kind: Kind) -> PermissionMessage {
    let mut packet = author.0.to_vec();
    packet.extend_from_slice(&t.to_be_bytes());
    packet.extend_from_slice(format!("{kind:?}").as_bytes());
    PermissionMessage {
        id: id(author, t),
        tiebreak: Tiebreak::of_packet(&packet),
        kind,
    }
}

fn grants(list: &[(MemberId, MetaId, Permissions)]) -> Vec<Grant> {
    list.iter()
        .map(|&(member, meta, permissions)| Grant {
            member,
            meta,
            permissions,
        })
        .collect()
}

fn authorize(
    author: MemberId,
    t: u64,
    list: &[(MemberId, MetaId, Permissions)],
) -> PermissionMessage {
    message(author, t, Kind::Authorize(grants(list)))
}

fn revoke(author: MemberId, t: u64, list: &[(MemberId, MetaId, Permissions)]) -> PermissionMessage {
    message(author, t, Kind::Revoke(grants(list)))
}

fn settings(author: MemberId, t: u64, meta: MetaId, index: u8) -> PermissionMessage {
    message(author, t, Kind::DynamicSettings(vec![(meta, index)]))
}

fn insert(tl: &mut Timeline, m: PermissionMessage) -> Delta {
    tl.insert(m).expect("well-formed message")
}

fn gt(t: u64) -> GlobalTime {
    GlobalTime(t)
}

fn allowed(tl: &Timeline, who: MemberId, meta: MetaId, t: u64) -> bool {
    tl.check_message(who, meta, gt(t))
        .expect("known meta")
        .allowed
}

fn range(from: u64, until: Option<u64>) -> GtRange {
    GtRange {
        from: gt(from),
        until: until.map(GlobalTime),
    }
}

#[test]
fn master_holds_everything_without_proof() {
    let tl = timeline();
    for meta in [PROTECTED, DYNAMIC, PUBLIC, SETTINGS, DESTROY] {
        let v = tl.check(MASTER, meta, Permissions::ALL, gt(1));
        assert_eq!(
            v,
            Verdict {
                allowed: true,
                proof: vec![]
            }
        );
    }
    assert_eq!(tl.permissions(MASTER, gt(1)).len(), 5);
    assert!(tl.permissions(member(1), gt(1)).is_empty());
    assert!(!allowed(&tl, member(1), PROTECTED, 5));
    assert!(allowed(&tl, member(1), PUBLIC, 5));
}

/// test_timeline.delay_by_proof and missing_proof: an unauthorised protected message is denied
/// without proof; the authorize arriving later (with a lower global time) allows it, and is
/// the proof a missing-proof request gets.
#[test]
fn delayed_by_proof_until_the_authorize_arrives() {
    let mut tl = timeline();
    let x = member(1);
    let v = tl.check_message(x, PROTECTED, gt(42)).expect("known");
    assert_eq!(
        v,
        Verdict {
            allowed: false,
            proof: vec![]
        }
    );

    let grant = authorize(MASTER, 10, &[(x, PROTECTED, PERMIT)]);
    let d = insert(&mut tl, grant);
    assert!(d.effective);
    assert_eq!(
        d.holdings,
        vec![HoldingChange {
            member: x,
            meta: PROTECTED,
            permission: PERMIT,
            range: range(10, None),
        }]
    );
    assert_eq!(d.recheck_messages().get(&PROTECTED), Some(&range(10, None)));

    let v = tl.check_message(x, PROTECTED, gt(42)).expect("known");
    assert_eq!(
        v,
        Verdict {
            allowed: true,
            proof: vec![id(MASTER, 10)]
        }
    );
    assert_eq!(tl.proof_chain(v.proof), vec![id(MASTER, 10)]);
    // Permissions take effect AT their global time.
    assert!(allowed(&tl, x, PROTECTED, 10));
    assert!(!allowed(&tl, x, PROTECTED, 9));
}

/// test_timeline.missing_authorize_proof: the proof of an authorize is the authorize that
/// empowered its author, and the chain runs back to the master.
#[test]
fn authorize_chain_proofs() {
    let mut tl = timeline();
    let (a, b) = (member(1), member(2));
    insert(&mut tl, authorize(MASTER, 5, &[(a, PROTECTED, AUTHORIZE)]));
    let d = insert(&mut tl, authorize(a, 8, &[(b, PROTECTED, PERMIT)]));
    assert!(d.effective);

    assert_eq!(
        tl.justification(&id(a, 8)),
        Some(Verdict {
            allowed: true,
            proof: vec![id(MASTER, 5)]
        })
    );
    assert_eq!(
        tl.justification(&id(MASTER, 5)),
        Some(Verdict {
            allowed: true,
            proof: vec![]
        })
    );
    let v = tl.check_message(b, PROTECTED, gt(9)).expect("known");
    assert_eq!(v.proof, vec![id(a, 8)]);
    assert_eq!(tl.proof_chain(v.proof), vec![id(MASTER, 5), id(a, 8)]);
    // A holds authorize, not permit: authorize does not imply permit.
    assert!(!allowed(&tl, a, PROTECTED, 9));
}

/// W3: Dispersy accepted (stored, synced) an authorize when the author held the GRANTED
/// permission under the target's resolution, for ANY one meta-message, but applied it only when
/// the author held `authorize` on ALL of them. Here acceptance is application.
#[test]
fn w3_acceptance_is_application() {
    let mut tl = timeline();
    let (x, y) = (member(1), member(2));
    insert(
        &mut tl,
        authorize(MASTER, 5, &[(x, PROTECTED, PERMIT.union(AUTHORIZE))]),
    );

    // Dispersy: "permit^public" under public resolution passes, so this was stored and synced.
    let on_public = authorize(x, 10, &[(y, PUBLIC, PERMIT)]);
    // Dispersy: X holds "permit^protected", the granted permission, so this passed too.
    let w = member(3);
    let without_authorize = authorize(w, 11, &[(y, PROTECTED, PERMIT)]);
    insert(&mut tl, authorize(MASTER, 6, &[(w, PROTECTED, PERMIT)]));
    // Dispersy: ANY group passing sufficed; X holds authorize on protected only.
    let mixed = authorize(x, 12, &[(y, PROTECTED, PERMIT), (y, PUBLIC, PERMIT)]);

    for m in [on_public, without_authorize, mixed] {
        let judged = tl.judge(&m).expect("well-formed");
        assert!(!judged.allowed, "{m:?} must not be accepted");
        let d = insert(&mut tl, m);
        assert_eq!(d.effective, judged.allowed);
        assert!(d.is_unchanged());
    }
    assert!(!allowed(&tl, y, PROTECTED, 20));
    assert!(tl.permissions(y, gt(20)).is_empty());

    // With authorize on both metas the mixed grant is accepted and applied in full.
    insert(&mut tl, authorize(MASTER, 7, &[(x, PUBLIC, AUTHORIZE)]));
    assert_eq!(tl.is_effective(&id(x, 12)), Some(true));
    assert!(allowed(&tl, y, PROTECTED, 20));
}

#[test]
fn revocation_takes_effect_at_its_global_time() {
    let mut tl = timeline();
    let (a, x) = (member(1), member(2));
    insert(&mut tl, authorize(MASTER, 10, &[(x, PROTECTED, PERMIT)]));
    let d = insert(&mut tl, revoke(MASTER, 20, &[(x, PROTECTED, PERMIT)]));
    assert_eq!(d.recheck_messages().get(&PROTECTED), Some(&range(20, None)));
    assert!(allowed(&tl, x, PROTECTED, 19));
    let v = tl.check_message(x, PROTECTED, gt(20)).expect("known");
    assert_eq!(
        v,
        Verdict {
            allowed: false,
            proof: vec![id(MASTER, 20)]
        }
    );
    // A revoke by someone without `revoke` does nothing.
    insert(&mut tl, authorize(MASTER, 30, &[(x, PROTECTED, PERMIT)]));
    let d = insert(&mut tl, revoke(a, 35, &[(x, PROTECTED, PERMIT)]));
    assert!(!d.effective && d.is_unchanged());
    assert!(allowed(&tl, x, PROTECTED, 40));
    // Re-granted between 30 and a later revoke: the change is bounded by the next entry.
    insert(&mut tl, revoke(MASTER, 50, &[(x, PROTECTED, PERMIT)]));
    let d = tl.remove(&id(MASTER, 30)).expect("held").1;
    assert_eq!(
        d.recheck_messages().get(&PROTECTED),
        Some(&range(30, Some(50)))
    );
    assert!(!allowed(&tl, x, PROTECTED, 40));
}

/// A late revoke with a low global time disables a chain of delegations, transitively; removing
/// it restores the chain.
#[test]
fn late_revoke_cuts_a_delegation_chain() {
    let mut tl = timeline();
    let (a, b, c) = (member(1), member(2), member(3));
    insert(&mut tl, authorize(MASTER, 5, &[(a, PROTECTED, AUTHORIZE)]));
    insert(&mut tl, authorize(a, 10, &[(b, PROTECTED, AUTHORIZE)]));
    insert(&mut tl, authorize(b, 15, &[(c, PROTECTED, PERMIT)]));
    assert!(allowed(&tl, c, PROTECTED, 20));

    let d = insert(&mut tl, revoke(MASTER, 7, &[(a, PROTECTED, AUTHORIZE)]));
    assert!(d.effective);
    assert!(d.became_effective.is_empty());
    assert_eq!(d.became_ineffective, vec![id(a, 10), id(b, 15)]);
    assert_eq!(d.recheck_messages().get(&PROTECTED), Some(&range(15, None)));
    assert!(!allowed(&tl, c, PROTECTED, 20));
    assert_eq!(
        tl.justification(&id(a, 10)),
        Some(Verdict {
            allowed: false,
            proof: vec![id(MASTER, 7)]
        })
    );

    let (removed, d) = tl.remove(&id(MASTER, 7)).expect("held");
    assert_eq!(removed.id, id(MASTER, 7));
    assert!(d.effective);
    assert_eq!(d.became_effective, vec![id(a, 10), id(b, 15)]);
    assert!(allowed(&tl, c, PROTECTED, 20));
}

/// Dispersy raised NotImplementedError (remote-triggerable) for a grant and a revoke of the same
/// permission at one global time. Here the revoke wins, in any insertion order.
#[test]
fn same_global_time_revoke_beats_authorize() {
    let (a, x) = (member(1), member(2));
    let setup = authorize(MASTER, 5, &[(a, PROTECTED, REVOKE)]);
    let grant = authorize(MASTER, 10, &[(x, PROTECTED, PERMIT)]);
    let take = revoke(a, 10, &[(x, PROTECTED, PERMIT)]);
    let orders = [
        vec![setup.clone(), grant.clone(), take.clone()],
        vec![take.clone(), grant.clone(), setup.clone()],
        vec![grant.clone(), take.clone(), setup.clone()],
    ];
    for order in orders {
        let mut tl = timeline();
        for m in order {
            insert(&mut tl, m);
        }
        let v = tl.check_message(x, PROTECTED, gt(10)).expect("known");
        assert_eq!(
            v,
            Verdict {
                allowed: false,
                proof: vec![id(a, 10)]
            }
        );
        assert!(!allowed(&tl, x, PROTECTED, 11));
        assert!(!allowed(&tl, x, PROTECTED, 9));
    }
}

/// Messages at one global time never empower one another, nor themselves.
#[test]
fn no_empowerment_at_the_same_global_time() {
    let mut tl = timeline();
    let (a, b) = (member(1), member(2));
    insert(&mut tl, authorize(MASTER, 10, &[(a, PROTECTED, AUTHORIZE)]));
    // Granted at 10 by the master; a message by `a` at 10 does not see it.
    let d = insert(&mut tl, authorize(a, 10, &[(b, PROTECTED, PERMIT)]));
    assert!(!d.effective);
    // A cycle: each grants the other authorize at 20; neither held it before.
    assert!(!insert(&mut tl, authorize(b, 20, &[(a, PUBLIC, AUTHORIZE)])).effective);
    assert!(!insert(&mut tl, authorize(a, 20, &[(b, PUBLIC, AUTHORIZE)])).effective);
    // Self-grant at the same global time.
    let c = member(3);
    assert!(
        !insert(
            &mut tl,
            authorize(c, 30, &[(c, PROTECTED, AUTHORIZE.union(PERMIT))])
        )
        .effective
    );
    assert!(!allowed(&tl, c, PROTECTED, 31));
}

/// test_undo node_undo_other, revoke_causing_undo: undo-other needs `undo` on the target's
/// meta-message; revoking it changes the verdict of later undo-other messages.
#[test]
fn undo_other_needs_undo_permission() {
    let mut tl = timeline();
    let x = member(1);
    assert!(!tl.check_undo_other(x, PUBLIC, gt(15)).allowed);
    assert!(tl.check_undo_other(MASTER, PUBLIC, gt(15)).allowed);
    let d = insert(&mut tl, authorize(MASTER, 10, &[(x, PUBLIC, UNDO)]));
    assert_eq!(d.recheck_undo_other().get(&PUBLIC), Some(&range(10, None)));
    assert!(d.recheck_messages().is_empty());
    assert_eq!(
        tl.check_undo_other(x, PUBLIC, gt(15)),
        Verdict {
            allowed: true,
            proof: vec![id(MASTER, 10)]
        }
    );
    // Undo on one meta-message says nothing about another, nor about permit.
    assert!(!tl.check_undo_other(x, PROTECTED, gt(15)).allowed);
    let d = insert(&mut tl, revoke(MASTER, 12, &[(x, PUBLIC, UNDO)]));
    assert_eq!(d.recheck_undo_other().get(&PUBLIC), Some(&range(12, None)));
    assert!(!tl.check_undo_other(x, PUBLIC, gt(15)).allowed);
    assert!(tl.check_undo_other(x, PUBLIC, gt(11)).allowed);
}

/// test_dynamicsettings.default_resolution: the first policy, no proof.
#[test]
fn dynamic_default_is_the_first_policy() {
    let tl = timeline();
    let p = tl.policy(DYNAMIC, gt(100)).expect("known");
    assert_eq!(
        p,
        ActivePolicy {
            policy: ResolutionPolicy::Public,
            index: Some(0),
            proof: None,
        }
    );
    assert_eq!(
        tl.check_message(member(1), DYNAMIC, gt(100)),
        Ok(Verdict {
            allowed: true,
            proof: vec![]
        })
    );
    assert_eq!(
        tl.policy(PROTECTED, gt(1)).map(|p| p.policy),
        Ok(ResolutionPolicy::Linear)
    );
    assert_eq!(
        tl.policy(MetaId(99), gt(1)),
        Err(Error::UnknownMeta(MetaId(99)))
    );
}

/// test_dynamicsettings.change_resolution and change_resolution_send_proof: a change at 42
/// applies from 43; the denial carries the dynamic-settings as proof.
#[test]
fn dynamic_change_applies_after_its_global_time() {
    let mut tl = timeline();
    let x = member(1);
    let d = insert(&mut tl, settings(MASTER, 42, DYNAMIC, 1));
    assert_eq!(
        d.policies,
        vec![PolicyChange {
            meta: DYNAMIC,
            range: range(43, None),
        }]
    );
    assert!(allowed(&tl, x, DYNAMIC, 42));
    let v = tl.check_message(x, DYNAMIC, gt(43)).expect("known");
    assert_eq!(
        v,
        Verdict {
            allowed: false,
            proof: vec![id(MASTER, 42)]
        }
    );
    assert!(!allowed(&tl, x, DYNAMIC, 44));
    // Once permitted, the proof names both the policy and the grant.
    insert(&mut tl, authorize(MASTER, 50, &[(x, DYNAMIC, PERMIT)]));
    let v = tl.check_message(x, DYNAMIC, gt(51)).expect("known");
    assert_eq!(
        v,
        Verdict {
            allowed: true,
            proof: vec![id(MASTER, 42), id(MASTER, 50)]
        }
    );
}

/// test_dynamicsettings.change_resolution_undo: a late linear policy makes an accepted message
/// disallowed; a later public policy makes it allowed again.
#[test]
fn late_policies_undo_and_redo() {
    let mut tl = timeline();
    let x = member(1);
    assert!(allowed(&tl, x, DYNAMIC, 50));
    let d = insert(&mut tl, settings(MASTER, 45, DYNAMIC, 1));
    assert!(d.recheck_messages()[&DYNAMIC].contains(gt(50)));
    assert!(!allowed(&tl, x, DYNAMIC, 50));
    let d = insert(&mut tl, settings(MASTER, 48, DYNAMIC, 0));
    assert_eq!(d.recheck_messages().get(&DYNAMIC), Some(&range(49, None)));
    assert!(allowed(&tl, x, DYNAMIC, 50));
    assert!(!allowed(&tl, x, DYNAMIC, 47));
    // Setting the policy already in force changes no verdict.
    let d = insert(&mut tl, settings(MASTER, 60, DYNAMIC, 0));
    assert!(d.policies.is_empty());
}

/// Dynamic-settings is linear: it needs permit on dynamic-settings, and becomes effective when
/// a late grant arrives.
#[test]
fn dynamic_settings_need_permit() {
    let mut tl = timeline();
    let x = member(1);
    let d = insert(&mut tl, settings(x, 20, DYNAMIC, 1));
    assert!(!d.effective && d.policies.is_empty());
    assert!(allowed(&tl, member(2), DYNAMIC, 30));
    let d = insert(&mut tl, authorize(MASTER, 20, &[(x, SETTINGS, PERMIT)]));
    assert_eq!(d.became_effective, vec![id(x, 20)]);
    assert_eq!(d.recheck_messages().get(&DYNAMIC), Some(&range(21, None)));
    assert!(!allowed(&tl, member(2), DYNAMIC, 30));
    let v = tl.check_message(member(2), DYNAMIC, gt(30)).expect("known");
    assert_eq!(tl.proof_chain(v.proof), vec![id(MASTER, 20), id(x, 20)]);
}

/// Two settings at one global time: the greater tiebreak wins, in any order.
#[test]
fn same_global_time_settings_follow_the_tiebreak() {
    let a = member(1);
    let grant = authorize(MASTER, 5, &[(a, SETTINGS, PERMIT)]);
    let mut first = settings(MASTER, 30, DYNAMIC, 1);
    let mut second = settings(a, 30, DYNAMIC, 0);
    first.tiebreak = Tiebreak([9; 32]);
    second.tiebreak = Tiebreak([3; 32]);
    for order in [
        [grant.clone(), first.clone(), second.clone()],
        [second.clone(), first.clone(), grant.clone()],
    ] {
        let mut tl = timeline();
        for m in order {
            insert(&mut tl, m);
        }
        let p = tl.policy(DYNAMIC, gt(31)).expect("known");
        assert_eq!((p.index, p.proof), (Some(1), Some(id(MASTER, 30))));
    }
}

/// test_destroycommunity: only a member with permit on destroy-community destroys; the chain of
/// a delegated destroy leads back to the master.
#[test]
fn destroy_community_is_linear() {
    let mut tl = timeline();
    let x = member(1);
    let hard = message(x, 40, Kind::DestroyCommunity(DestroyKind::Hard));
    let d = insert(&mut tl, hard);
    assert!(!d.effective && !d.destruction_changed);
    assert_eq!(tl.destruction(), None);

    let d = insert(&mut tl, authorize(MASTER, 30, &[(x, DESTROY, PERMIT)]));
    assert!(d.destruction_changed);
    assert_eq!(
        tl.destruction(),
        Some(Destruction {
            kind: DestroyKind::Hard,
            global_time: gt(40),
            by: id(x, 40),
        })
    );
    assert_eq!(tl.proof_chain([id(x, 40)]), vec![id(MASTER, 30), id(x, 40)]);

    // A soft destroy by the master, earlier, does not hide the hard one.
    let d = insert(
        &mut tl,
        message(MASTER, 35, Kind::DestroyCommunity(DestroyKind::Soft)),
    );
    assert!(d.effective && !d.destruction_changed);
    tl.remove(&id(MASTER, 30));
    assert_eq!(tl.destruction().map(|d| d.kind), Some(DestroyKind::Soft));
}

#[test]
fn permissions_of_a_member_over_time() {
    let mut tl = timeline();
    let x = member(1);
    insert(
        &mut tl,
        authorize(
            MASTER,
            10,
            &[(x, PROTECTED, PERMIT.union(UNDO)), (x, PUBLIC, AUTHORIZE)],
        ),
    );
    insert(&mut tl, revoke(MASTER, 20, &[(x, PROTECTED, UNDO)]));
    assert!(tl.permissions(x, gt(9)).is_empty());
    let at = |t| tl.permissions(x, gt(t)).into_iter().collect::<Vec<_>>();
    assert_eq!(
        at(10),
        vec![(PROTECTED, PERMIT.union(UNDO)), (PUBLIC, AUTHORIZE)]
    );
    assert_eq!(at(20), vec![(PROTECTED, PERMIT), (PUBLIC, AUTHORIZE)]);
    let s = tl.stats();
    assert_eq!((s.messages, s.effective, s.holding_slots), (2, 2, 4));
}

#[test]
fn refusals() {
    let mut tl = Timeline::new(
        MASTER,
        metas(),
        Config {
            max_messages: 3,
            max_total_entries: 4,
            max_entries: 3,
        },
    )
    .expect("valid");
    let m = authorize(MASTER, 10, &[(member(1), PROTECTED, PERMIT)]);
    insert(&mut tl, m.clone());
    assert_eq!(tl.insert(m), Err(Error::Duplicate(id(MASTER, 10))));
    insert(&mut tl, settings(MASTER, 11, DYNAMIC, 1));
    let full = Err(Error::Full {
        max_messages: 3,
        max_total_entries: 4,
    });
    let three = authorize(
        MASTER,
        12,
        &[
            (member(1), PUBLIC, PERMIT),
            (member(2), PUBLIC, PERMIT),
            (member(3), PUBLIC, PERMIT),
        ],
    );
    assert_eq!(tl.insert(three), full);
    insert(&mut tl, settings(MASTER, 12, DYNAMIC, 0));
    assert_eq!(tl.insert(settings(MASTER, 14, DYNAMIC, 1)), full);
    assert_eq!(tl.len(), 3);
    assert_eq!(tl.stats().entries, 3);
    tl.remove(&id(MASTER, 11));
    assert_eq!(tl.stats().entries, 2);
    assert_eq!(tl.remove(&id(member(5), 1)).map(|(m, _)| m.id), None);

    let reserved = Timeline::new(
        MASTER,
        [(MetaId(byte::AUTHORIZE), Resolution::Public)],
        Config::default(),
    );
    assert_eq!(
        reserved.err(),
        Some(Error::ReservedMeta(MetaId(byte::AUTHORIZE)))
    );
    let empty = Resolution::Dynamic { policies: vec![] };
    assert_eq!(
        Timeline::new(MASTER, [(MetaId(7), empty)], Config::default()).err(),
        Some(Error::BadResolution(MetaId(7)))
    );
    // Permissions on built-ins other than the two linear ones mean nothing.
    let on_undo = authorize(MASTER, 13, &[(member(1), MetaId(byte::UNDO_OTHER), PERMIT)]);
    assert_eq!(
        tl.judge(&on_undo),
        Err(Error::UnknownMeta(MetaId(byte::UNDO_OTHER)))
    );
}

#[test]
fn from_builtin_reads_permission_payloads() {
    use crate::wire::builtin::Builtin;
    let mid = id(MASTER, 3);
    let ds = Builtin::DynamicSettings(vec![(DYNAMIC, 1)]);
    let m = PermissionMessage::from_builtin(mid, Tiebreak::default(), &ds).expect("permission");
    assert_eq!(m.kind, Kind::DynamicSettings(vec![(DYNAMIC, 1)]));
    let destroy = Builtin::DestroyCommunity(DestroyKind::Soft);
    assert!(PermissionMessage::from_builtin(mid, Tiebreak::default(), &destroy).is_some());
    assert!(
        PermissionMessage::from_builtin(mid, Tiebreak::default(), &Builtin::Identity).is_none()
    );
}
