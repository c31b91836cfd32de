//! The permission timeline in the node: Dispersy's test_timeline and test_dynamicsettings,
//! founding and the permission commands, and the fixes of W3 and W12.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use dispersy::ids::{GlobalTime, MetaId};
use dispersy::node::{CommandError, MessageState, founder_permissions};
use dispersy::testing::Network;
use dispersy::wire::builtin::{Builtin, MissingProof, PermissionGrant, Permissions, byte};

fn all(bits: &[Permissions]) -> Permissions {
    bits.iter().fold(Permissions::default(), |a, b| a.union(*b))
}

#[test]
fn founding_grants_the_founder_everything_spec_2_1_lists() {
    let b = Blog::new(1, 1);
    let node = b.node(0);
    let founder = node.member_id();
    let gt = node.global_time(&b.id).unwrap();
    let held = node.permissions(&b.id, &founder, gt).unwrap();
    let full = all(&[PERMIT, AUTHORIZE, REVOKE, UNDO]);
    assert_eq!(held.get(&POST), Some(&full));
    assert_eq!(held.get(&COMMENT), Some(&full));
    assert_eq!(held.get(&NOTE), Some(&all(&[AUTHORIZE, REVOKE, UNDO])));
    assert_eq!(
        held.get(&CONTRACT),
        Some(&all(&[PERMIT, AUTHORIZE, REVOKE]))
    );
    assert_eq!(
        held.get(&SETTINGS),
        Some(&all(&[PERMIT, AUTHORIZE, REVOKE]))
    );
    assert_eq!(held.get(&DESTROY), Some(&all(&[PERMIT, AUTHORIZE, REVOKE])));
    // Public metas without undo carry nothing.
    assert_eq!(held.get(&TEXT), None);
    assert_eq!(founder_permissions(&b.def).len(), 6);
    // The master's identity and one authorize by the master are stored.
    let master = b.master.member_id();
    let by_master: Vec<_> = b
        .stored(0)
        .into_iter()
        .filter(|m| m.member == master)
        .collect();
    let metas: Vec<MetaId> = by_master.iter().map(|m| m.meta).collect();
    assert_eq!(metas, vec![MetaId(byte::IDENTITY), AUTHORIZE_META]);
    assert!(b.node(0).holds_master_key(&b.id));
}

#[test]
fn commands_check_permission_first() {
    let mut b = Blog::new(2, 2);
    b.share(0, 1);
    let id = b.id;
    let x = outsider(1).public().clone();
    let err = b
        .net
        .with(1, |n, now| n.authorize(now, id, &x, &[(POST, PERMIT)]))
        .unwrap_err();
    match err {
        CommandError::NotPermitted(why) => {
            assert!(why.contains("lacks authorize on post"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let err = b
        .net
        .with(1, |n, now| n.create_message(now, id, POST, &text("x"), &[]))
        .unwrap_err();
    assert!(matches!(err, CommandError::NotPermitted(ref w) if w.contains("permit on post")));
    let err = b
        .net
        .with(1, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap_err();
    assert!(matches!(err, CommandError::NotPermitted(_)), "{err:?}");
    let err = b
        .net
        .with(1, |n, now| {
            n.destroy(now, id, dispersy::wire::builtin::DestroyKind::Hard)
        })
        .unwrap_err();
    assert!(matches!(err, CommandError::NotPermitted(_)), "{err:?}");
    // Public messages need nothing.
    b.create(1, NOTE, "anyone may");
    assert!(
        b.stored_of(1, AUTHORIZE_META)
            .iter()
            .all(|m| m.member != b.member(1).member_id())
    );
}

#[test]
fn founder_signs_as_master_when_its_member_lost_the_permission() {
    let mut b = Blog::new(2, 3);
    let founder = b.member(0);
    // The founder revokes its own authorize on post; as the master it can still grant.
    let revoke = b.revoke(0, &founder, &[(POST, AUTHORIZE)]);
    assert_eq!(revoke.member, founder.member_id());
    let w = b.member(1);
    let grant = b.authorize(0, &w, &[(POST, PERMIT)]);
    assert_eq!(grant.member, b.master.member_id());
    b.share(0, 1);
    assert_eq!(b.state(1, &grant), Some(MessageState::Live));
}

use dispersy::node::Node;

#[test]
fn master_key_comes_back_after_restart() {
    let mut b = Blog::new(1, 4);
    let id = b.id;
    let node = b.net.stop(0).unwrap();
    drop(node);
    // A fresh node with the same member key and an empty store joins and gets the key back.
    let mut fresh = Node::new(
        config(4, 0),
        node_key(0),
        Box::new(dispersy::store::MemStore::new()),
    );
    fresh.join(b.now(), b.def.clone()).unwrap();
    assert!(!fresh.holds_master_key(&id));
    let wrong = outsider(3);
    assert!(matches!(
        fresh.set_master_key(&id, wrong),
        Err(CommandError::Invalid(_))
    ));
    fresh
        .set_master_key(
            &id,
            dispersy::crypto::PrivateKey::from_bin(&*b.master.to_bin()).unwrap(),
        )
        .unwrap();
    assert!(fresh.holds_master_key(&id));
    // With it, the node may grant as the master even though its member holds nothing here.
    let w = outsider(4).public().clone();
    let grant = fresh.authorize(b.now(), id, &w, &[(POST, PERMIT)]).unwrap();
    assert_eq!(grant.member, b.master.member_id());
    b.net.restart(0, fresh);
}

/// test_timeline.delay_by_proof: a protected message from a member whose permission we have
/// not seen waits, we ask its sender for the proof, and it is stored once the proof arrives.
#[test]
fn delay_by_proof_then_accepted() {
    let mut b = Blog::new(3, 5);
    let w = b.member(1);
    let grant = b.authorize(0, &w, &[(POST, PERMIT)]);
    b.share(0, 1);
    assert_eq!(b.state(1, &grant), Some(MessageState::Live));
    let post = b.create(1, POST, "hello");
    let packet = b.packet(1, &post);
    let out = b.ask(Network::address(1), 2, &packet);
    let requests = of_type(&out, byte::MISSING_PROOF);
    assert_eq!(requests.len(), 1, "{out:?}");
    assert!(!b.is_stored(2, &post));
    assert_eq!(b.node(2).delayed_count(&b.id), 1);
    // The same message again asks nothing new.
    let again = b.ask(Network::address(1), 2, &packet);
    assert!(of_type(&again, byte::MISSING_PROOF).is_empty());
    // The request reaches W, W answers with the proof, and the post is accepted.
    b.give(2, 1, &requests[0]);
    b.settle();
    assert_eq!(b.state(2, &post), Some(MessageState::Live));
    assert_eq!(b.state(2, &grant), Some(MessageState::Live));
    assert_eq!(b.node(2).delayed_count(&b.id), 0);
}

/// test_timeline.missing_proof: the responder sends the authorize that grants permit (with
/// the chain behind it).
#[test]
fn missing_proof_is_answered_with_the_authorize() {
    let mut b = Blog::new(3, 6);
    let w = b.member(1);
    let grant = b.authorize(0, &w, &[(POST, PERMIT)]);
    b.share(0, 1);
    let post = b.create(1, POST, "hello");
    let founding = b.founding(0);
    let request = b.request(&Builtin::MissingProof(MissingProof {
        global_time: post.global_time,
        member: w.clone(),
    }));
    let out = b.ask(Network::address(2), 1, &request);
    let answer: Vec<_> = out.iter().map(|t| t.contents.clone()).collect();
    assert_eq!(answer, vec![founding.packet.clone(), b.packet(0, &grant)]);
    assert!(out.iter().all(|t| t.destination == Network::address(2)));

    // test_timeline.missing_authorize_proof: asking for the proof of the authorize returns
    // the authorize that empowered its author.
    let request = b.request(&Builtin::MissingProof(MissingProof {
        global_time: grant.global_time,
        member: b.member(0),
    }));
    let out = b.ask(Network::address(2), 1, &request);
    let answer: Vec<_> = out.iter().map(|t| t.contents.clone()).collect();
    assert_eq!(answer, vec![founding.packet]);

    // A message we do not allow, or do not hold, is answered with nothing.
    let request = b.request(&Builtin::MissingProof(MissingProof {
        global_time: GlobalTime(999),
        member: w,
    }));
    assert!(b.ask(Network::address(2), 1, &request).is_empty());
}

/// A message that arrives long before the permission that allows it (several hops of
/// delegation, delivered newest first) ends accepted: the #1 failure Dispersy users saw.
#[test]
fn messages_before_their_proof_chain_end_accepted() {
    let mut b = Blog::new(4, 7);
    let (m, w) = (b.member(1), b.member(2));
    let g1 = b.authorize(0, &m, &[(POST, all(&[AUTHORIZE, PERMIT]))]);
    b.share(0, 1);
    let g2 = b.authorize(1, &w, &[(POST, PERMIT)]);
    b.share(1, 2);
    let post = b.create(2, POST, "delegated");
    // Node 3 gets everything newest first, each message from a peer that cannot answer
    // missing-proof (an address nobody listens on), so only later deliveries help.
    let nobody = Network::address(99);
    for (holder, id) in [(2, post), (1, g2), (0, g1)] {
        let p = b.packet(holder, &id);
        b.ask(nobody, 3, &p);
    }
    let founding = b.founding(0);
    assert!(!b.is_stored(3, &post));
    b.ask(nobody, 3, &founding.packet);
    for id in [g1, g2, post] {
        assert_eq!(b.state(3, &id), Some(MessageState::Live), "{id:?}");
    }
    assert_eq!(b.node(3).delayed_count(&b.id), 0);
}

/// test_dynamicsettings.default_resolution: the first policy (public) needs no proof.
#[test]
fn dynamic_default_is_public() {
    let mut b = Blog::new(3, 8);
    let c = b.create(2, COMMENT, "first");
    let p = b.packet(2, &c);
    let out = b.ask(Network::address(2), 1, &p);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(b.state(1, &c), Some(MessageState::Live));
}

/// test_dynamicsettings.change_resolution: a policy set at global time g applies from g + 1;
/// the policy byte a packet claims does not matter.
#[test]
fn dynamic_change_applies_after_its_global_time() {
    let mut b = Blog::new(3, 9);
    let id = b.id;
    let ds = b
        .net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    b.share(0, 2);
    let g = ds.global_time.0;
    let w = node_key(1);
    let at_g = b.craft(&w, COMMENT, g, None, &text("at g"));
    let after = b.craft(&w, COMMENT, g + 1, None, &text("after"));
    let claims_linear = craft_with(&b.def, &w, COMMENT, Some(1), g + 2, None, &text("claims"));
    for p in [&at_g, &after, &claims_linear] {
        b.ask(Network::address(1), 2, p);
    }
    assert_eq!(b.state(2, &mid(&w, g)), Some(MessageState::Live));
    assert!(!b.is_stored(2, &mid(&w, g + 1)));
    assert!(!b.is_stored(2, &mid(&w, g + 2)));
    // A member holding permit may post under the linear policy, whatever byte it claims.
    let f = node_key(0);
    let by_founder = b.craft(&f, COMMENT, g + 3, None, &text("founder"));
    b.ask(Network::address(0), 2, &by_founder);
    assert_eq!(b.state(2, &mid(&f, g + 3)), Some(MessageState::Live));
    assert_eq!(b.node(2).delayed_count(&b.id), 2);
    b.net.run_for(Duration::from_secs(11));
    assert_eq!(b.node(2).delayed_count(&b.id), 0);
    assert_eq!(drops(b.node(2), &b.id, "delay-timeout"), 2);
}

/// test_dynamicsettings.change_resolution_undo: a late linear policy undoes an accepted
/// message; a later public policy redoes it.
#[test]
fn late_policy_undoes_then_public_policy_redoes() {
    let mut b = Blog::new(3, 10);
    let id = b.id;
    let w = node_key(1);
    let comment = b.craft(&w, COMMENT, 40, None, &text("early bird"));
    b.ask(Network::address(1), 2, &comment);
    let c = mid(&w, 40);
    assert_eq!(b.state(2, &c), Some(MessageState::Live));
    b.events(2);
    let linear = b
        .net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    assert!(linear.global_time.0 < 40);
    b.share(0, 2);
    assert_eq!(b.state(2, &c), Some(MessageState::Disallowed));
    let ev = b.events(2);
    assert_eq!(undone_events(&ev), vec![(c, None)]);
    let public = b
        .net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 0))
        .unwrap();
    assert!(public.global_time.0 < 40);
    b.share(0, 2);
    assert_eq!(b.state(2, &c), Some(MessageState::Live));
    assert_eq!(redone_events(&b.events(2)), vec![c]);
}

/// test_dynamicsettings.change_resolution_reject: the rejected sender is asked for a proof
/// (and given ours, spec 6.5); once a public policy arrives the message is stored.
#[test]
fn rejected_sender_gets_the_policy_and_message_waits_for_public() {
    let mut b = Blog::new(3, 11);
    let id = b.id;
    let linear = b
        .net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    b.share(0, 2);
    let g = linear.global_time.0;
    let w = node_key(1);
    let comment = b.craft(&w, COMMENT, g + 5, None, &text("too late"));
    let out = b.ask(Network::address(1), 2, &comment);
    assert_eq!(of_type(&out, byte::MISSING_PROOF).len(), 1);
    let pushed = of_type(&out, byte::DYNAMIC_SETTINGS);
    assert_eq!(pushed, vec![b.packet(0, &linear)]);
    assert!(!b.is_stored(2, &mid(&w, g + 5)));
    let public = b
        .net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 0))
        .unwrap();
    assert!(public.global_time.0 < g + 5);
    b.share(0, 2);
    assert_eq!(b.state(2, &mid(&w, g + 5)), Some(MessageState::Live));
}

/// test_dynamicsettings.change_resolution_send_proof: a sender with an outdated policy learns
/// it from the node that refuses its message, and undoes its own message.
#[test]
fn sender_with_outdated_policy_learns_it() {
    let mut b = Blog::syncing(3, 12);
    let id = b.id;
    b.net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    b.share(0, 2);
    for i in 0..8 {
        b.create(1, NOTE, &format!("clock {i}"));
    }
    let c = b.create(1, COMMENT, "public, I thought");
    let p = b.packet(1, &c);
    b.events(1);
    b.give(1, 2, &p);
    b.settle();
    assert_eq!(b.stored_of(1, SETTINGS).len(), 1);
    assert_eq!(b.state(1, &c), Some(MessageState::Disallowed));
    assert_eq!(undone_events(&b.events(1)), vec![(c, None)]);
    assert!(!b.is_stored(2, &c));
}

/// W3: Dispersy accepted an authorize whose author held the GRANTED permission (or any one of
/// several), and one naming a public meta-message, stored and synced it, and then did not
/// apply it. Here a permission message is stored exactly when it is applied.
#[test]
fn w3_authorize_needs_authorize_on_every_meta() {
    let mut b = Blog::new(3, 13);
    let (w, m) = (b.member(1), b.member(2));
    b.authorize(0, &w, &[(POST, PERMIT)]);
    b.authorize(0, &m, &[(POST, AUTHORIZE)]);
    b.share(0, 1);
    b.share(0, 2);
    let x = outsider(7);
    let grant = |to: &dispersy::crypto::PrivateKey, list: Vec<(MetaId, Permissions)>| {
        Builtin::Authorize(vec![PermissionGrant {
            member: to.public().clone(),
            permissions: list,
        }])
    };
    let wk = node_key(1);
    let mk = node_key(2);
    // W holds permit (the granted permission), not authorize.
    let by_permit_holder = b.craft_builtin(&wk, &grant(&x, vec![(POST, PERMIT)]), 50, Some(1));
    // Nobody needs anything for a public meta in Dispersy's check.
    let on_public = b.craft_builtin(&wk, &grant(&x, vec![(NOTE, AUTHORIZE)]), 51, Some(2));
    // M holds authorize on post but not on comment: Dispersy's ANY over groups passed.
    let any_group = b.craft_builtin(
        &mk,
        &grant(&x, vec![(POST, PERMIT), (COMMENT, PERMIT)]),
        52,
        Some(1),
    );
    let nobody = Network::address(99);
    let receiver = 0;
    for p in [&by_permit_holder, &on_public, &any_group] {
        b.ask(nobody, receiver, p);
    }
    for id in [mid(&wk, 50), mid(&wk, 51), mid(&mk, 52)] {
        assert!(!b.is_stored(receiver, &id), "{id:?} must not be stored");
    }
    let post = b.craft(&x, POST, 60, None, &text("by x"));
    b.ask(nobody, receiver, &post);
    assert!(!b.is_stored(receiver, &mid(&x, 60)));
    b.net.run_for(Duration::from_secs(11));
    assert_eq!(b.node(receiver).delayed_count(&b.id), 0);
    let stats = b.node(receiver).community_stats(&b.id).unwrap();
    // Three authorizes and the post waited for proofs that never came.
    assert_eq!(stats.delayed.get("proof"), Some(&4));
    assert!(
        b.stored_of(receiver, AUTHORIZE_META)
            .iter()
            .all(|a| a.member != wk.member_id() && a.member != mk.member_id())
    );
}

/// W12: a policy index equal to the number of policies is dropped cleanly, in a
/// dynamic-settings message and in a message's resolution byte.
#[test]
fn w12_policy_index_out_of_range_is_dropped() {
    let mut b = Blog::new(2, 14);
    let id = b.id;
    let f = node_key(0);
    let ds = b.craft_builtin(
        &f,
        &Builtin::DynamicSettings(vec![(COMMENT, 2)]),
        30,
        Some(1),
    );
    let comment = craft_with(&b.def, &node_key(1), COMMENT, Some(2), 31, None, &text("x"));
    b.ask(Network::address(0), 1, &ds);
    b.ask(Network::address(0), 1, &comment);
    assert_eq!(drops(b.node(1), &b.id, "policy-index"), 2);
    assert_eq!(b.node(1).delayed_count(&b.id), 0);
    assert!(b.stored_of(1, SETTINGS).is_empty());
    assert!(b.stored_of(1, COMMENT).is_empty());
    for (meta, index) in [(COMMENT, 2), (NOTE, 0), (MetaId(99), 0)] {
        let err = b
            .net
            .with(0, |n, now| n.set_resolution(now, id, meta, index))
            .unwrap_err();
        assert!(matches!(err, CommandError::Invalid(_)), "{err:?}");
    }
}

/// A double-signed linear message needs `permit` for both signers.
#[test]
fn double_signed_linear_needs_both_signers() {
    let mut b = Blog::new(3, 15);
    b.connect(0, 1);
    b.connect(1, 0);
    let id = b.id;
    let (f, w) = (b.member(0), b.member(1));
    b.share(0, 1);
    b.share(0, 2);
    let request = |b: &mut Blog| {
        b.net.with(0, |n, now| {
            n.request_signature(
                now,
                id,
                CONTRACT,
                &text("deal"),
                &w,
                Network::address(1),
                Duration::from_secs(5),
                false,
            )
        })
    };
    // The founder holds permit on contract, W does not: the founder does not even ask.
    let err = request(&mut b).unwrap_err();
    assert!(
        matches!(err, CommandError::NotPermitted(ref why) if why.contains("contract")),
        "{err:?}"
    );
    // A crafted contract whose second signer lacks permit is refused by others.
    let (fk, wk) = (node_key(0), node_key(1));
    let prefix = b.def.prefix();
    let crafted = |t: u64| {
        let payload = text("crafted");
        dispersy::wire::Draft {
            prefix,
            message_byte: CONTRACT.0,
            authors: dispersy::wire::Authors::DoubleMember(
                [fk.public(), wk.public()],
                dispersy::wire::KeyEncoding::PublicKey,
            ),
            resolution: None,
            global_time: GlobalTime(t),
            sequence: None,
            payload: &payload,
        }
        .encode(&[Some(&fk), Some(&wk)])
        .unwrap()
    };
    let early = crafted(30);
    b.ask(Network::address(0), 2, &early);
    assert!(!b.is_stored(2, &mid(&fk, 30)));
    assert_eq!(b.node(2).delayed_count(&b.id), 1);
    // W's permit arrives: the waiting contract is accepted, one from before the grant is not.
    let grant = b.authorize(0, &w, &[(CONTRACT, PERMIT)]);
    b.share(0, 2);
    assert_eq!(b.state(2, &mid(&fk, 30)), Some(MessageState::Live));
    let before = grant.global_time.0 - 1;
    b.ask(Network::address(0), 2, &crafted(before));
    assert!(!b.is_stored(2, &mid(&fk, before)));
    // And the node-to-node signature exchange now works.
    request(&mut b).unwrap();
    let _ = f;
}

/// A signed introduction-request from `author` at `from` to node `to` carrying `sync` and the
/// extension `entries`.
fn sync_request(
    b: &Blog,
    author: &dispersy::crypto::PrivateKey,
    from: std::net::SocketAddr,
    to: std::net::SocketAddr,
    identifier: u16,
    sync: Option<dispersy::wire::builtin::SyncBlock>,
    entries: &[(u8, Vec<u8>)],
) -> bytes::Bytes {
    use dispersy::wire::builtin::{ConnectionType, IntroductionRequest, WalkerStyle};
    let mut extra = dispersy::wire::extension::Extensions::new();
    for (k, v) in entries {
        extra.push(*k, v.clone()).unwrap();
    }
    let payload = Builtin::IntroductionRequest(IntroductionRequest {
        style: WalkerStyle::Old,
        destination: to,
        source_lan: from,
        source_wan: from,
        advice: false,
        connection_type: ConnectionType::Unknown,
        supports_new_style: true,
        tunnel: false,
        unused_flags: 0,
        identifier,
        sync,
        extra: extra.to_bytes(),
    })
    .to_bytes()
    .unwrap();
    dispersy::wire::Draft {
        prefix: b.def.prefix(),
        message_byte: byte::INTRODUCTION_REQUEST,
        authors: dispersy::wire::Authors::Member(
            author.public(),
            dispersy::wire::KeyEncoding::default_for(b.def.version()),
        ),
        resolution: None,
        global_time: GlobalTime(5),
        sequence: None,
        payload: &payload,
    }
    .encode(&[Some(author)])
    .unwrap()
}

/// A message our permissions now disallow (a late linear policy) is neither sent by Bloom sync
/// nor by reconciliation: the peer could only refuse it, and would be sent it every round.
#[test]
fn disallowed_messages_are_not_served_by_sync_or_reconciliation() {
    use dispersy::sync::hello::SyncHello;
    use dispersy::sync::reconcile::{Entry, Message, Mode};
    use dispersy::wire::extension::kind;

    let mut b = Blog::syncing(3, 12);
    let id = b.id;
    let w = node_key(1);
    let comment = b.craft(&w, COMMENT, 40, None, &text("early bird"));
    b.ask(Network::address(1), 2, &comment);
    let text_msg = b.craft(&w, TEXT, 41, Some(1), &text("public text"));
    b.ask(Network::address(1), 2, &text_msg);
    let c = mid(&w, 40);
    b.net
        .with(0, |n, now| n.set_resolution(now, id, COMMENT, 1))
        .unwrap();
    b.share(0, 2);
    assert_eq!(b.state(2, &c), Some(MessageState::Disallowed));
    assert_eq!(b.state(2, &mid(&w, 41)), Some(MessageState::Live));

    let hello = SyncHello {
        fast: true,
        reconcile: true,
        held: 0,
        global_time: GlobalTime(1),
        budget: 256 * 1024,
    };
    let stranger = outsider(7);
    let from: std::net::SocketAddr = "10.9.9.9:9000".parse().unwrap();
    let to = Network::address(2);
    let everything = dispersy::bloom::BloomFilter::with_error_rate(8_128, 0.01, Some(7))
        .unwrap()
        .to_sync_block(GlobalTime(1), GlobalTime(0), 1, 0)
        .unwrap();

    // Bloom sync: an empty filter over the whole range.
    let req = sync_request(
        &b,
        &stranger,
        from,
        to,
        31,
        Some(everything),
        &[(kind::SYNC_HELLO, hello.encode())],
    );
    let out = b.ask(from, 2, &req);
    let sent: Vec<&bytes::Bytes> = out.iter().map(|t| &t.contents).collect();
    assert!(sent.contains(&&text_msg), "the live message is served");
    assert!(!sent.contains(&&comment), "the disallowed one is not");

    // Reconciliation: "I hold nothing anywhere".
    let mut message = Message::new(0);
    assert!(message.push(
        Entry {
            low: GlobalTime(1),
            high: GlobalTime(i64::MAX as u64),
            mode: Mode::Fingerprint { count: 0, sum: 0 },
        },
        1_000,
    ));
    let req = sync_request(
        &b,
        &stranger,
        from,
        to,
        32,
        None,
        &[
            (kind::SYNC_HELLO, hello.encode()),
            (kind::RECONCILE, message.encode()),
        ],
    );
    let out = b.ask(from, 2, &req);
    let sent: Vec<&bytes::Bytes> = out.iter().map(|t| &t.contents).collect();
    assert!(sent.contains(&&text_msg), "the live message is served");
    assert!(!sent.contains(&&comment), "the disallowed one is not");
}
