//! Undo-own and undo-other: Dispersy's test_undo, and the fix of W4.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dispersy::ids::MessageId;
use dispersy::node::{CommandError, Event, MessageState};
use dispersy::store::Undone;
use dispersy::testing::Network;
use dispersy::wire::builtin::{Builtin, MissingMessage, byte};

fn undone_mark(b: &Blog, i: usize, id: &MessageId) -> Undone {
    b.node(i)
        .store()
        .message(&b.id, id)
        .unwrap()
        .unwrap()
        .undone
}

/// test_undo.self_undo_own: a member undoes its own messages; the undos are stored, the
/// messages stay stored (and sync) but are undone everywhere.
#[test]
fn self_undo_own() {
    let mut b = Blog::new(3, 21);
    let notes: Vec<MessageId> = (0..10)
        .map(|i| b.create(1, NOTE, &format!("n{i}")))
        .collect();
    let undos: Vec<MessageId> = notes.iter().map(|n| b.undo(1, *n)).collect();
    for (n, u) in notes.iter().zip(&undos) {
        assert_eq!(u.member, n.member);
        assert_eq!(b.state(1, n), Some(MessageState::UndoneBy(*u)));
        assert_eq!(b.state(1, u), Some(MessageState::Live));
    }
    assert_eq!(b.stored_of(1, UNDO_OWN).len(), 10);
    let created = b.events(1);
    assert_eq!(undone_events(&created).len(), 10);
    b.share(1, 2);
    for (n, u) in notes.iter().zip(&undos) {
        assert_eq!(b.state(2, n), Some(MessageState::UndoneBy(*u)));
    }
    let ev = b.events(2);
    let expected: Vec<_> = notes
        .iter()
        .zip(&undos)
        .map(|(n, u)| (*n, Some(*u)))
        .collect();
    assert_eq!(undone_events(&ev), expected);
    // Undone messages keep syncing: a third node learns both the notes and the undos.
    b.share(2, 0);
    for (n, u) in notes.iter().zip(&undos) {
        assert_eq!(b.state(0, n), Some(MessageState::UndoneBy(*u)));
    }
    // A peer that sends us an undone message again gets the undo back.
    let p = b.packet(1, &notes[3]);
    let out = b.ask(Network::address(1), 2, &p);
    assert_eq!(of_type(&out, byte::UNDO_OWN), vec![b.packet(1, &undos[3])]);
}

/// test_undo.node_undo_other: a member holding `undo` undoes another's message; one without
/// it cannot.
#[test]
fn undo_other_needs_undo_permission() {
    let mut b = Blog::new(3, 22);
    let id = b.id;
    let note = b.create(1, NOTE, "spam");
    b.share(1, 0);
    b.share(1, 2);
    let err = b.net.with(2, |n, now| n.undo(now, id, note)).unwrap_err();
    assert!(
        matches!(err, CommandError::NotPermitted(ref w) if w.contains("undo on note")),
        "{err:?}"
    );
    // A crafted one from node 2 waits for a proof that never comes.
    let undo = Builtin::UndoOther {
        member: b.member(1),
        global_time: note.global_time,
    };
    let crafted = b.craft_builtin(&node_key(2), &undo, 40, Some(1));
    b.ask(Network::address(2), 0, &crafted);
    assert!(!b.is_stored(0, &mid(&node_key(2), 40)));
    // The founder holds undo on note.
    let u = b.undo(0, note);
    assert_eq!(u.member, b.member(0).member_id());
    b.share(0, 2);
    assert_eq!(b.state(2, &note), Some(MessageState::UndoneBy(u)));
    assert_eq!(b.stored_of(2, UNDO_OTHER).len(), 1);
}

/// test_undo.self_attempt_undo_twice: undoing an undone message returns the first undo.
#[test]
fn undo_twice_returns_the_first() {
    let mut b = Blog::new(1, 23);
    let note = b.create(0, NOTE, "oops");
    let first = b.undo(0, note);
    let second = b.undo(0, note);
    assert_eq!(first, second);
    assert_eq!(b.stored_of(0, UNDO_OWN).len(), 1);
}

/// Built-in messages and meta-messages that are not undoable cannot be undone; an undo must
/// come after its target.
#[test]
fn what_cannot_be_undone() {
    let mut b = Blog::new(2, 24);
    let id = b.id;
    let t = b.create(0, TEXT, "not undoable");
    let err = b.net.with(0, |n, now| n.undo(now, id, t)).unwrap_err();
    assert!(matches!(err, CommandError::Invalid(_)), "{err:?}");
    let grant = b.authorize(0, &b.member(1), &[(NOTE, UNDO)]);
    let err = b.net.with(0, |n, now| n.undo(now, id, grant)).unwrap_err();
    assert!(matches!(err, CommandError::Invalid(_)), "{err:?}");
    b.share(0, 1);
    let f = node_key(0);
    let undo_text = b.craft_builtin(&f, &Builtin::UndoOwn(t.global_time), 50, Some(1));
    let undo_grant = b.craft_builtin(&f, &Builtin::UndoOwn(grant.global_time), 51, Some(2));
    let note = b.create(0, NOTE, "later");
    b.share(0, 1);
    let undo_before = b.craft_builtin(
        &f,
        &Builtin::UndoOwn(note.global_time),
        note.global_time.0,
        Some(1),
    );
    for p in [&undo_text, &undo_grant, &undo_before] {
        b.ask(Network::address(0), 1, p);
    }
    assert_eq!(drops(b.node(1), &b.id, "undo-not-undoable"), 1);
    assert!(b.stored_of(1, UNDO_OWN).is_empty());
    assert_eq!(b.state(1, &note), Some(MessageState::Live));
}

/// test_undo.node_resolve_undo_twice: two undos of one target are both kept; the lower one
/// (byte-wise) is authoritative on every node whatever the order; whoever sends the higher
/// gets the lower back.
#[test]
fn two_undos_resolve_the_same_everywhere() {
    let mut b = Blog::new(5, 25);
    let m = b.member(1);
    let grant = b.authorize(0, &m, &[(NOTE, UNDO)]);
    b.share(0, 1);
    let note = b.create(2, NOTE, "contested");
    b.share(2, 0);
    b.share(2, 1);
    let by_founder = b.undo(0, note);
    let by_moderator = b.undo(1, note);
    let (pf, pm) = (b.packet(0, &by_founder), b.packet(1, &by_moderator));
    let (lower, higher, lower_packet, higher_packet) = if pf < pm {
        (by_founder, by_moderator, pf.clone(), pm.clone())
    } else {
        (by_moderator, by_founder, pm.clone(), pf.clone())
    };
    let authorizes: Vec<_> = b
        .stored(0)
        .into_iter()
        .filter(|x| x.meta == AUTHORIZE_META)
        .collect();
    assert!(authorizes.iter().any(|a| a.id() == grant));
    let np = b.packet(2, &note);
    for node in [3, 4] {
        for a in &authorizes {
            b.ask(Network::address(0), node, &a.packet);
        }
        b.ask(Network::address(2), node, &np);
    }
    // Node 3: lower first; node 4: higher first.
    b.ask(Network::address(0), 3, &lower_packet);
    let back = b.ask(Network::address(1), 3, &higher_packet);
    assert_eq!(
        back.iter().map(|t| t.contents.clone()).collect::<Vec<_>>(),
        vec![lower_packet.clone()]
    );
    b.ask(Network::address(1), 4, &higher_packet);
    b.ask(Network::address(0), 4, &lower_packet);
    for node in [3, 4] {
        assert_eq!(
            b.state(node, &note),
            Some(MessageState::UndoneBy(lower)),
            "node {node}"
        );
        assert_eq!(
            b.state(node, &lower),
            Some(MessageState::Live),
            "node {node}"
        );
        assert_eq!(
            b.state(node, &higher),
            Some(MessageState::UndoneBy(lower)),
            "node {node}"
        );
        assert_eq!(undone_mark(&b, node, &higher), Undone::ByMessage(lower));
    }
    // The creators converge too once they exchange.
    b.give(1, 0, &pm);
    b.give(0, 1, &pf);
    b.settle();
    for node in [0, 1] {
        assert_eq!(
            b.state(node, &note),
            Some(MessageState::UndoneBy(lower)),
            "node {node}"
        );
        assert_eq!(
            b.state(node, &higher),
            Some(MessageState::UndoneBy(lower)),
            "node {node}"
        );
    }
    // Each node reported the note undone once.
    let ev = b.events(4);
    assert_eq!(undone_events(&ev).len(), 1);
}

/// Two undo-own messages by the same author (a second one crafted): the lower one wins.
#[test]
fn two_undo_own_of_one_target() {
    let mut b = Blog::new(2, 26);
    let w = node_key(1);
    let note = b.craft(&w, NOTE, 10, None, &text("n"));
    let u1 = b.craft_builtin(
        &w,
        &Builtin::UndoOwn(dispersy::ids::GlobalTime(10)),
        11,
        Some(1),
    );
    let u2 = b.craft_builtin(
        &w,
        &Builtin::UndoOwn(dispersy::ids::GlobalTime(10)),
        12,
        Some(2),
    );
    b.ask(Network::address(1), 0, &note);
    b.ask(Network::address(1), 0, &u1);
    let back = b.ask(Network::address(1), 0, &u2);
    let (lower, higher) = if u1 < u2 {
        (mid(&w, 11), mid(&w, 12))
    } else {
        (mid(&w, 12), mid(&w, 11))
    };
    assert_eq!(
        b.state(0, &mid(&w, 10)),
        Some(MessageState::UndoneBy(lower))
    );
    assert_eq!(b.state(0, &higher), Some(MessageState::UndoneBy(lower)));
    if higher == mid(&w, 12) {
        assert_eq!(of_type(&back, byte::UNDO_OWN), vec![u1]);
    }
}

/// test_undo.missing_message: undos that arrive before their targets make the node ask for
/// the targets; once they arrive they are undone.
#[test]
fn undo_before_target_fetches_the_target() {
    let mut b = Blog::new(3, 27);
    let notes: Vec<MessageId> = (0..3)
        .map(|i| b.create(1, NOTE, &format!("n{i}")))
        .collect();
    let undos: Vec<MessageId> = notes.iter().map(|n| b.undo(1, *n)).collect();
    let u0 = b.packet(1, &undos[0]);
    let out = b.ask(Network::address(1), 2, &u0);
    let requests = of_type(&out, byte::MISSING_MESSAGE);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        decode_request(&b.def, &requests[0]),
        Builtin::MissingMessage(MissingMessage {
            member: b.member(1),
            global_times: vec![notes[0].global_time],
        })
    );
    // Node 1 walks to node 2, proving node 2's address for node 1's bulk answers.
    b.connect(1, 2);
    // Through the network the rest follows: every undo, then every target.
    for u in &undos[1..] {
        let p = b.packet(1, u);
        b.give(1, 2, &p);
    }
    b.give(2, 1, &requests[0]);
    b.settle();
    for (n, u) in notes.iter().zip(&undos) {
        assert_eq!(b.state(2, n), Some(MessageState::UndoneBy(*u)));
    }
    assert_eq!(b.node(2).delayed_count(&b.id), 0);
    let ev = b.events(2);
    // Undone targets were never delivered as live content after their undo was known.
    assert_eq!(undone_events(&ev).len(), 3);
    let live: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, Event::Message(_)))
        .collect();
    assert_eq!(live.len(), 3);
}

/// test_undo.revoke_causing_undo: a late revoke of `permit` undoes the posts after it.
#[test]
fn revoke_causing_undo() {
    let mut b = Blog::new(3, 28);
    let w = b.member(1);
    b.authorize(0, &w, &[(POST, PERMIT)]);
    b.share(0, 1);
    for i in 0..5 {
        b.create(1, NOTE, &format!("clock {i}"));
    }
    let post = b.create(1, POST, "posted while permitted, I thought");
    b.share(1, 2);
    assert_eq!(b.state(2, &post), Some(MessageState::Live));
    b.events(2);
    // The founder, not having seen the post, revokes at a lower global time.
    let revoke = b.revoke(0, &w, &[(POST, PERMIT)]);
    assert!(revoke.global_time < post.global_time);
    b.share(0, 2);
    assert_eq!(b.state(2, &post), Some(MessageState::Disallowed));
    assert_eq!(undone_events(&b.events(2)), vec![(post, None)]);
}

/// test_undo.revoke_causing_undo_permitted: a late revoke of `undo` takes the undo-other
/// back: its target is live again.
#[test]
fn revoking_undo_permission_redoes_the_target() {
    let mut b = Blog::new(4, 29);
    let m = b.member(1);
    b.authorize(0, &m, &[(NOTE, UNDO)]);
    b.share(0, 1);
    let note = b.create(2, NOTE, "fine, actually");
    b.share(2, 1);
    for i in 0..5 {
        b.create(1, TEXT, &format!("clock {i}"));
    }
    let undo = b.undo(1, note);
    b.share(1, 3);
    assert_eq!(b.state(3, &note), Some(MessageState::UndoneBy(undo)));
    b.events(3);
    let revoke = b.revoke(0, &m, &[(NOTE, UNDO)]);
    assert!(revoke.global_time < undo.global_time);
    b.share(0, 3);
    assert_eq!(b.state(3, &note), Some(MessageState::Live));
    assert_eq!(b.state(3, &undo), Some(MessageState::Disallowed));
    assert_eq!(undone_mark(&b, 3, &undo), Undone::ByPolicy);
    assert_eq!(redone_events(&b.events(3)), vec![note]);
    // A node that learns the revoke first never applies the undo.
    b.share(0, 2);
    let p = b.packet(1, &undo);
    b.give(1, 2, &p);
    b.settle();
    assert_eq!(b.state(2, &note), Some(MessageState::Live));
}

/// W4: Dispersy's re-evaluation after a revoke or dynamic-settings redid every undone message
/// that was still permitted, including ones their author undid. Only messages undone by a
/// permission change are redone here.
#[test]
fn w4_policy_changes_never_redo_what_an_undo_undid() {
    let mut b = Blog::new(3, 30);
    let id = b.id;
    for i in 0..6 {
        b.create(1, TEXT, &format!("clock {i}"));
    }
    let comment = b.create(1, COMMENT, "regret");
    let undo = b.undo(1, comment);
    b.share(1, 2);
    b.events(2);
    assert_eq!(b.state(2, &comment), Some(MessageState::UndoneBy(undo)));
    // A dynamic-settings below the comment that keeps it public: Dispersy re-evaluated the
    // range and redid the comment.
    let same = b
        .net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 0))
        .unwrap();
    assert!(same.global_time < comment.global_time);
    b.share(0, 2);
    assert_eq!(b.state(2, &comment), Some(MessageState::UndoneBy(undo)));
    // Linear (the comment is now disallowed), then public again: still undone by its author.
    b.net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    b.share(0, 2);
    assert_eq!(b.state(2, &comment), Some(MessageState::Disallowed));
    b.net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 0))
        .unwrap();
    b.share(0, 2);
    assert_eq!(b.state(2, &comment), Some(MessageState::UndoneBy(undo)));
    assert_eq!(undone_mark(&b, 2, &comment), Undone::ByMessage(undo));
    let ev = b.events(2);
    assert!(redone_events(&ev).is_empty(), "{ev:?}");
    assert!(undone_events(&ev).is_empty(), "{ev:?}");
}
