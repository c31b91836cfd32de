//! The worked example of docs/permissions.md, step by step: a moderated microblog.
//!
//! Node 0 is the founder F, nodes 1 and 2 the moderators A and B, node 3 the writer W,
//! node 4 a spammer S, node 5 a second writer V, node 6 a newcomer N. Packets move only where
//! the test moves them, so each step shows what every node decides.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use dispersy::ids::MetaId;
use dispersy::node::{CommandError, MessageState};
use dispersy::testing::Network;
use dispersy::wire::builtin::{DestroyKind, Permissions, byte};

const F: usize = 0;
const A: usize = 1;
const B: usize = 2;
const W: usize = 3;
const S: usize = 4;
const V: usize = 5;
const N: usize = 6;

fn moderator() -> Vec<(MetaId, Permissions)> {
    vec![
        (POST, AUTHORIZE.union(REVOKE).union(UNDO)),
        (COMMENT, UNDO),
        (SETTINGS, PERMIT),
    ]
}

/// Shares everything every node in `from` holds with every node in `to`.
fn gossip(b: &mut Blog, from: &[usize], to: &[usize]) {
    for &f in from {
        for &t in to {
            if f != t {
                b.share(f, t);
            }
        }
    }
}

#[test]
fn moderated_microblog() {
    let mut b = Blog::new(7, 77);
    let id = b.id;
    let everyone = [F, A, B, W, S, V];

    // 1. F founded the community: the master signed F's identity and one authorize granting
    //    F `founder_permissions`.
    // 2. F makes A and B moderators.
    let (a, bm, w, v) = (b.member(A), b.member(B), b.member(W), b.member(V));
    let grant_a = b.authorize(F, &a, &moderator());
    b.authorize(F, &bm, &moderator());
    gossip(&mut b, &[F], &everyone);
    let held = b
        .node(W)
        .permissions(&id, &a.member_id(), grant_a.global_time)
        .unwrap();
    assert_eq!(held.get(&POST), Some(&AUTHORIZE.union(REVOKE).union(UNDO)));

    // 3. A lets W post. Moderators themselves cannot post: authorize does not imply permit.
    let grant_w = b.authorize(A, &w, &[(POST, PERMIT)]);
    let err = b
        .net
        .with(A, |n, now| {
            n.create_message(now, id, POST, &text("mod"), &[])
        })
        .unwrap_err();
    assert!(matches!(err, CommandError::NotPermitted(_)));
    gossip(&mut b, &[A], &everyone);

    // 4. W posts; S cannot. A post S forces out anyway waits for a proof nobody has.
    let hello = b.create(W, POST, "hello");
    gossip(&mut b, &[W], &everyone);
    for i in everyone {
        assert_eq!(b.state(i, &hello), Some(MessageState::Live), "node {i}");
    }
    let err = b
        .net
        .with(S, |n, now| {
            n.create_message(now, id, POST, &text("buy now"), &[])
        })
        .unwrap_err();
    assert!(matches!(err, CommandError::NotPermitted(_)));
    let forced = b.craft(&node_key(S), POST, 40, None, &text("buy now"));
    let timeouts = drops(b.node(F), &id, "delay-timeout");
    b.give(S, F, &forced);
    b.net.run_for(Duration::from_secs(11));
    assert!(!b.is_stored(F, &mid(&node_key(S), 40)));
    assert_eq!(drops(b.node(F), &id, "delay-timeout"), timeouts + 1);

    // 5. Comments are public: S's spam is accepted, then A undoes it everywhere.
    let spam = b.create(S, COMMENT, "spam spam spam");
    gossip(&mut b, &[S], &everyone);
    let undo = b.undo(A, spam);
    gossip(&mut b, &[A], &everyone);
    for i in everyone {
        assert_eq!(
            b.state(i, &spam),
            Some(MessageState::UndoneBy(undo)),
            "node {i}"
        );
    }
    // S sends its spam again and gets the undo back.
    let again = b.packet(S, &spam);
    let back = b.ask(Network::address(S), F, &again);
    assert_eq!(of_type(&back, byte::UNDO_OTHER), vec![b.packet(A, &undo)]);

    // 6. B switches comments to linear: from the next global time on, only members holding
    //    permit on comment may comment.
    let linear = b
        .net
        .with(B, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    gossip(&mut b, &[B], &everyone);
    let err = b
        .net
        .with(S, |n, now| {
            n.create_message(now, id, COMMENT, &text("more spam"), &[])
        })
        .unwrap_err();
    assert!(matches!(err, CommandError::NotPermitted(ref why) if why.contains("Linear")));
    let policy = b
        .node(F)
        .timeline(&id)
        .unwrap()
        .policy(COMMENT, linear.global_time.next())
        .unwrap();
    assert_eq!((policy.index, policy.proof), (Some(1), Some(linear)));

    // 7. F revokes A, not having seen what A did last: A authorized V and undid W's post,
    //    both after the revoke's global time. On every node A's authorize stops applying (V's
    //    post is undone by policy) and A's undo stops counting (W's post is live again).
    for i in 0..4 {
        b.create(A, NOTE, &format!("A's clock {i}"));
    }
    let grant_v = b.authorize(A, &v, &[(POST, PERMIT)]);
    gossip(&mut b, &[A], &[V]);
    let by_v = b.create(V, POST, "V was here");
    let undo_hello = b.undo(A, hello);
    gossip(&mut b, &[A, V], &[B, W, S]);
    b.events(W);
    assert_eq!(b.state(W, &by_v), Some(MessageState::Live));
    assert_eq!(b.state(W, &hello), Some(MessageState::UndoneBy(undo_hello)));
    let revoke_a = b.revoke(F, &a, &moderator());
    assert!(revoke_a.global_time < grant_v.global_time);
    gossip(&mut b, &[F], &everyone);
    gossip(&mut b, &[A, V], &[F]);
    // W's application saw V's post undone by the permission change and its own post back.
    let events = b.events(W);
    assert_eq!(undone_events(&events), vec![(by_v, None)]);
    assert_eq!(redone_events(&events), vec![hello]);
    for i in everyone {
        // Nodes that had them keep them stored but disallowed; F, which learned the revoke
        // first, never stored them: either way they are not in effect.
        for m in [grant_v, by_v, undo_hello] {
            let state = b.state(i, &m);
            assert!(
                matches!(state, None | Some(MessageState::Disallowed)),
                "node {i} {m:?} {state:?}"
            );
        }
        assert_eq!(b.state(i, &hello), Some(MessageState::Live), "node {i}");
        // What A did before the revoke stands.
        assert_eq!(b.state(i, &grant_w), Some(MessageState::Live), "node {i}");
        assert_eq!(
            b.state(i, &spam),
            Some(MessageState::UndoneBy(undo)),
            "node {i}"
        );
    }

    // 8. The newcomer N gets W's post first, asks W for the proof, and gets the chain:
    //    the master's grant to F, F's grant to A, A's grant to W.
    let founding = b.founding(F);
    // W walks to N first: N's answer proves its address, so W may send it more than three
    // times what it received (anti-amplification).
    b.connect(W, N);
    let post = b.packet(W, &hello);
    let out = b.ask(Network::address(W), N, &post);
    let request = of_type(&out, byte::MISSING_PROOF);
    assert_eq!(request.len(), 1);
    let answer: Vec<_> = b
        .ask(Network::address(N), W, &request[0])
        .into_iter()
        .map(|t| t.contents)
        .collect();
    assert_eq!(
        answer,
        vec![
            founding.packet.clone(),
            b.packet(F, &grant_a),
            b.packet(A, &grant_w)
        ]
    );
    for p in &answer {
        b.ask(Network::address(W), N, p);
    }
    assert_eq!(b.state(N, &hello), Some(MessageState::Live));

    // 9. F destroys the community: a node keeps only the destroy, its proof chain (the
    //    master's grant to F) and identities.
    let d = b
        .net
        .with(F, |n, now| n.destroy(now, id, DestroyKind::Hard))
        .unwrap();
    gossip(&mut b, &[F], &[W]);
    assert!(b.node(W).is_destroyed(&id));
    let kept: Vec<MetaId> = b
        .stored(W)
        .into_iter()
        .map(|m| m.meta)
        .filter(|m| *m != MetaId(byte::IDENTITY))
        .collect();
    assert_eq!(kept, vec![AUTHORIZE_META, DESTROY]);
    assert!(b.is_stored(W, &d) && b.is_stored(W, &founding.id()));
}
