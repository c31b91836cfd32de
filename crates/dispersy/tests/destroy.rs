//! Destroy-community (Dispersy's test_destroycommunity, plus soft destruction) and replay of
//! the timeline after a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use dispersy::ids::{GlobalTime, MessageId, MetaId};
use dispersy::node::{CommandError, Event, MessageState};
use dispersy::testing::Network;
use dispersy::wire::builtin::{Builtin, DestroyKind, byte};

fn destroyed_events(events: &[Event]) -> Vec<(DestroyKind, MessageId)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Destroyed { kind, by, .. } => Some((*kind, *by)),
            _ => None,
        })
        .collect()
}

/// test_destroycommunity.hard_kill: a hard destroy removes everything but the destroy
/// message, its proof chain, its authors' identities and our own; nothing new is accepted;
/// receivers pass the destroy on.
#[test]
fn hard_kill_removes_data() {
    let mut b = Blog::new(3, 41);
    let id = b.id;
    b.share(0, 1);
    let notes: Vec<MessageId> = (0..4)
        .map(|i| b.create(1, NOTE, &format!("n{i}")))
        .collect();
    b.share(1, 0);
    b.connect(1, 2);
    let d = b
        .net
        .with(0, |n, now| n.destroy(now, id, DestroyKind::Hard))
        .unwrap();
    let founding = b.founding(0).id();
    let kept = |b: &Blog, i: usize| -> BTreeSet<(MetaId, MessageId)> {
        b.stored(i).into_iter().map(|m| (m.meta, m.id())).collect()
    };
    let identity = MetaId(byte::IDENTITY);
    let founder_identity = b
        .stored_of(0, identity)
        .into_iter()
        .find(|m| m.member == b.member(0).member_id())
        .unwrap()
        .id();
    let master_identity = b
        .stored_of(0, identity)
        .into_iter()
        .find(|m| m.member == b.master.member_id())
        .unwrap()
        .id();
    let expected: BTreeSet<(MetaId, MessageId)> = [
        (DESTROY, d),
        (AUTHORIZE_META, founding),
        (identity, founder_identity),
        (identity, master_identity),
    ]
    .into_iter()
    .collect();
    assert_eq!(kept(&b, 0), expected);
    assert!(b.node(0).is_destroyed(&id));
    assert_eq!(destroyed_events(&b.events(0)), vec![(DestroyKind::Hard, d)]);
    // Node 1 receives it, destroys and passes it on to node 2 (which asks node 1 for the
    // proof: the kept chain).
    let p = b.packet(0, &d);
    b.give(0, 1, &p);
    b.settle();
    // Node 1 keeps its own identity too.
    let own = b
        .stored_of(1, identity)
        .into_iter()
        .find(|m| m.member == b.member(1).member_id())
        .unwrap()
        .id();
    let mut expected_1 = expected.clone();
    expected_1.insert((identity, own));
    assert_eq!(kept(&b, 1), expected_1);
    for n in &notes {
        assert!(!b.is_stored(1, n));
    }
    assert_eq!(destroyed_events(&b.events(1)), vec![(DestroyKind::Hard, d)]);
    assert!(b.node(2).is_destroyed(&id));
    assert_eq!(b.state(2, &d), Some(MessageState::Live));
    // Nothing new: neither received nor created.
    let late = b.craft(&node_key(2), NOTE, 90, None, &text("too late"));
    b.ask(Network::address(2), 1, &late);
    assert!(!b.is_stored(1, &mid(&node_key(2), 90)));
    assert_eq!(drops(b.node(1), &id, "destroyed"), 1);
    let err = b
        .net
        .with(1, |n, now| n.create_message(now, id, NOTE, &text("x"), &[]))
        .unwrap_err();
    assert_eq!(err, CommandError::Destroyed(id));
    let err = b
        .net
        .with(0, |n, now| n.undo(now, id, notes[0]))
        .unwrap_err();
    assert_eq!(err, CommandError::Destroyed(id));
    // The destroy is still served: a peer asking for its proof gets the chain.
    let request = b.request(&Builtin::MissingProof(
        dispersy::wire::builtin::MissingProof {
            global_time: d.global_time,
            member: b.member(0),
        },
    ));
    let out = b.ask(Network::address(2), 1, &request);
    assert_eq!(out.len(), 1);
}

/// test_destroycommunity.hard_kill_without_permission: a destroy by a member without
/// `permit` on destroy-community has no effect.
#[test]
fn unauthorised_destroy_has_no_effect() {
    let mut b = Blog::new(3, 42);
    let id = b.id;
    b.share(0, 2);
    let note = b.create(1, NOTE, "still here");
    b.share(1, 2);
    let err = b
        .net
        .with(1, |n, now| n.destroy(now, id, DestroyKind::Hard))
        .unwrap_err();
    assert!(
        matches!(err, CommandError::NotPermitted(ref w) if w.contains("dispersy-destroy-community")),
        "{err:?}"
    );
    let crafted = b.craft_builtin(
        &node_key(1),
        &Builtin::DestroyCommunity(DestroyKind::Hard),
        50,
        None,
    );
    b.give(1, 2, &crafted);
    b.net.run_for(Duration::from_secs(11));
    assert!(!b.node(2).is_destroyed(&id));
    assert!(!b.is_stored(2, &mid(&node_key(1), 50)));
    assert_eq!(b.state(2, &note), Some(MessageState::Live));
    assert!(destroyed_events(&b.events(2)).is_empty());
}

/// Soft destruction (Dispersy never implemented it): data up to the destroy's global time
/// stays and is still accepted, anything newer is deleted and refused.
#[test]
fn soft_kill_freezes_at_its_global_time() {
    let mut b = Blog::new(2, 43);
    let id = b.id;
    b.share(0, 1);
    let x = outsider(1);
    let before = b.craft(&x, NOTE, 3, None, &text("before"));
    let after = b.craft(&x, NOTE, 50, None, &text("after"));
    b.ask(Network::address(0), 1, &before);
    b.ask(Network::address(0), 1, &after);
    assert!(b.is_stored(1, &mid(&x, 50)));
    let d = b
        .net
        .with(0, |n, now| n.destroy(now, id, DestroyKind::Soft))
        .unwrap();
    assert!(d.global_time.0 < 50);
    let p = b.packet(0, &d);
    b.give(0, 1, &p);
    assert_eq!(
        b.node(1).destruction(&id).map(|x| x.kind),
        Some(DestroyKind::Soft)
    );
    assert!(b.is_stored(1, &mid(&x, 3)));
    assert!(!b.is_stored(1, &mid(&x, 50)));
    // An old message still comes in; a new one does not.
    let old = b.craft(&x, NOTE, d.global_time.0 - 1, None, &text("old news"));
    let new = b.craft(&x, NOTE, d.global_time.0 + 1, None, &text("new"));
    b.ask(Network::address(0), 1, &old);
    b.ask(Network::address(0), 1, &new);
    assert!(b.is_stored(1, &mid(&x, d.global_time.0 - 1)));
    assert!(!b.is_stored(1, &mid(&x, d.global_time.0 + 1)));
    assert_eq!(destroyed_events(&b.events(1)), vec![(DestroyKind::Soft, d)]);
    let err = b
        .net
        .with(1, |n, now| n.create_message(now, id, NOTE, &text("x"), &[]))
        .unwrap_err();
    assert_eq!(err, CommandError::Destroyed(id));
    // A later hard destroy still applies.
    let f = node_key(0);
    let at = d.global_time.0 - 1;
    let hard = b.craft_builtin(&f, &Builtin::DestroyCommunity(DestroyKind::Hard), at, None);
    b.ask(Network::address(0), 1, &hard);
    assert_eq!(
        b.node(1).destruction(&id).map(|x| x.kind),
        Some(DestroyKind::Hard)
    );
    assert_eq!(
        destroyed_events(&b.events(1)),
        vec![(DestroyKind::Hard, mid(&f, at))]
    );
    assert!(!b.is_stored(1, &mid(&x, 3)));
}

/// The timeline is rebuilt from the store at join: a restarted node answers exactly as before,
/// including a destruction.
#[test]
fn restart_replays_the_timeline() {
    let (mut b, stores) = Blog::with_stores(3, 44);
    let id = b.id;
    let (m, w) = (b.member(1), b.member(2));
    b.authorize(0, &m, &[(POST, AUTHORIZE.union(PERMIT)), (NOTE, UNDO)]);
    b.share(0, 1);
    b.authorize(1, &w, &[(POST, PERMIT)]);
    b.share(1, 2);
    let post = b.create(2, POST, "p");
    let note = b.create(2, NOTE, "n");
    b.share(2, 1);
    b.undo(1, note);
    b.net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    b.revoke(0, &m, &[(POST, AUTHORIZE)]);
    b.share(0, 1);
    b.share(1, 0);
    b.share(2, 0);
    let snapshot = |b: &Blog, i: usize| {
        let node = b.node(i);
        let gt = node.global_time(&id).unwrap();
        let states: Vec<_> = b
            .stored(i)
            .into_iter()
            .map(|x| (x.id(), node.message_state(&id, &x.id()).unwrap()))
            .collect();
        let perms: Vec<_> = [0, 1, 2]
            .iter()
            .map(|j| {
                node.permissions(&id, &b.member(*j).member_id(), gt)
                    .unwrap()
            })
            .collect();
        let policy = node
            .timeline(&id)
            .unwrap()
            .policy(COMMENT, gt.next())
            .unwrap();
        (states, perms, policy, node.destruction(&id))
    };
    let before = snapshot(&b, 0);
    assert!(before.0.len() > 8);
    assert_eq!(b.state(0, &post), Some(MessageState::Live));
    b.restart(0, &stores[0]);
    assert_eq!(snapshot(&b, 0), before);
    // The restarted node still signs as the founder, and its clock continues.
    assert!(b.node(0).global_time(&id).unwrap() >= GlobalTime(8));
    // After a hard destruction, the restart keeps the community destroyed.
    b.net
        .with(0, |n, now| n.destroy(now, id, DestroyKind::Hard))
        .unwrap();
    let destroyed = snapshot(&b, 0);
    b.restart(0, &stores[0]);
    assert_eq!(snapshot(&b, 0), destroyed);
    assert!(b.node(0).is_destroyed(&id));
}
