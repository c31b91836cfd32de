//! Multi-node checks of the message pipeline on the sans-IO core.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use dispersy::community::payload::Layout;
use dispersy::community::policy::Authentication;
use dispersy::community::{Definition, MetaMessage};
use dispersy::crypto::PrivateKey;
use dispersy::ids::{GlobalTime, MetaId};
use dispersy::node::{Config, Event, Node, SignatureDecision};
use dispersy::store::{MemStore, RangeQuery};
use dispersy::testing::Network;
use dispersy::wire::{Authors, Draft, KeyEncoding};
use rand::SeedableRng;

const POST: MetaId = MetaId(1);
const PROFILE: MetaId = MetaId(2);
const CHAT: MetaId = MetaId(3);
const NOTE: MetaId = MetaId(4);
const CONTRACT: MetaId = MetaId(5);

fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

fn definition() -> Definition {
    let text: Arc<Layout> = Arc::new(Layout::Text);
    Definition::builder(key(1000).public().clone())
        .kind("test")
        .meta(
            MetaMessage::new(1, "post")
                .sequenced()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(2, "profile")
                .last_sync(1)
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(3, "chat")
                .direct()
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(4, "note")
                .authentication(Authentication::Member {
                    encoding: KeyEncoding::MemberId,
                })
                .payload_schema(text.clone()),
        )
        .meta(
            MetaMessage::new(5, "contract")
                .authentication(Authentication::DoubleMember {
                    encoding: KeyEncoding::PublicKey,
                })
                .payload_schema(text),
        )
        .build()
        .unwrap()
}

fn text(s: &str) -> Vec<u8> {
    Layout::Text.encode(s.as_bytes()).unwrap()
}

/// `n` nodes in one community, each bootstrapped to every other, walked until every node has
/// every other as a verified peer.
fn network(n: usize, seed: u64) -> Network {
    let mut net = Network::new(seed);
    for i in 0..n {
        let config = Config {
            seed: seed * 1000 + i as u64,
            ..Config::default()
        };
        let node = Node::new(config, key(i as u64 + 1), Box::new(MemStore::new()));
        net.add(node);
    }
    let def = definition();
    for i in 0..n {
        net.with(i, |node, now| node.join(now, def.clone()).unwrap());
        for j in 0..n {
            if i != j {
                let id = def.id();
                net.with(i, |node, now| {
                    node.add_peer(now, id, Network::address(j)).unwrap()
                });
            }
        }
    }
    let id = def.id();
    for _ in 0..60 {
        if (0..n).all(|i| net.node(i).peers(&id).len() == n - 1) {
            for i in 0..n {
                net.take_events(i);
            }
            return net;
        }
        net.run_for(std::time::Duration::from_secs(1));
    }
    panic!("the walk did not verify every peer within 60 s");
}

fn count(node: &Node, meta: MetaId) -> usize {
    let id = definition().id();
    let mut q = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, usize::MAX);
    q.metas = Some(vec![meta]);
    node.store().range(&id, &q).unwrap().len()
}

fn messages(events: &[Event], meta: MetaId) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if m.meta == meta => {
                Some(String::from_utf8(Layout::Text.decode(&m.payload).unwrap().to_vec()).unwrap())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn full_sync_messages_reach_peers_in_order() {
    let mut net = network(3, 1);
    let id = definition().id();
    for i in 0..5 {
        net.with(0, |n, now| {
            n.create_message(now, id, POST, &text(&format!("post {i}")), &[])
                .unwrap()
        });
    }
    net.run_for(std::time::Duration::from_secs(1));
    for i in 1..3 {
        assert_eq!(count(net.node(i), POST), 5, "node {i}");
        let got = messages(&net.take_events(i), POST);
        assert_eq!(got, (0..5).map(|i| format!("post {i}")).collect::<Vec<_>>());
    }
}

#[test]
fn sequence_gap_is_fetched() {
    let mut net = network(2, 2);
    let id = definition().id();
    let b = net.stop(1).unwrap();
    for i in 0..3 {
        net.with(0, |n, now| {
            n.create_message(now, id, POST, &text(&format!("early {i}")), &[])
                .unwrap()
        });
    }
    net.run_for(std::time::Duration::from_secs(1));
    net.restart(1, b);
    net.with(0, |n, now| {
        n.create_message(now, id, POST, &text("late"), &[]).unwrap()
    });
    net.run_for(std::time::Duration::from_secs(1));
    assert_eq!(count(net.node(1), POST), 4);
    let got = messages(&net.take_events(1), POST);
    assert_eq!(got, vec!["early 0", "early 1", "early 2", "late"]);
    assert_eq!(net.node(1).delayed_count(&id), 0);
}

#[test]
fn unknown_member_id_fetches_identity() {
    // The walk teaches every node its peers' keys, so the author is a member neither node met:
    // node 0 holds its identity, node 1 gets its note first.
    let mut net = network(2, 3);
    let def = definition();
    let id = def.id();
    let author = key(79);
    let draft = |byte: u8, encoding, gt: u64, payload: &[u8]| {
        Draft {
            prefix: def.prefix(),
            message_byte: byte,
            authors: Authors::Member(author.public(), encoding),
            resolution: None,
            global_time: GlobalTime(gt),
            sequence: None,
            payload,
        }
        .encode(&[Some(&author)])
        .unwrap()
    };
    let identity = draft(
        dispersy::wire::builtin::byte::IDENTITY,
        KeyEncoding::PublicKey,
        2,
        &[],
    );
    let note = draft(NOTE.0, KeyEncoding::MemberId, 3, &text("by id"));
    let (a, b) = (Network::address(0), Network::address(1));
    net.with(0, |n, now| n.handle_datagram(now, b, identity).unwrap());
    net.with(1, |n, now| n.handle_datagram(now, a, note).unwrap());
    net.run_for(std::time::Duration::from_secs(1));
    assert_eq!(count(net.node(1), NOTE), 1);
    assert_eq!(messages(&net.take_events(1), NOTE), vec!["by id"]);
    let stats = net.node(1).community_stats(&id).unwrap();
    assert_eq!(stats.delayed.get("identity"), Some(&1));
}

#[test]
fn last_sync_keeps_the_newest() {
    let mut net = network(2, 4);
    let id = definition().id();
    for i in 0..3 {
        net.with(0, |n, now| {
            n.create_message(now, id, PROFILE, &text(&format!("v{i}")), &[])
                .unwrap()
        });
    }
    net.run_for(std::time::Duration::from_secs(1));
    for i in 0..2 {
        assert_eq!(count(net.node(i), PROFILE), 1);
    }
    let mut q = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, 10);
    q.metas = Some(vec![PROFILE]);
    let kept = net.node(1).store().range(&id, &q).unwrap();
    assert!(kept[0].packet.ends_with(&[]) && kept[0].global_time > GlobalTime(2));
}

#[test]
fn direct_messages_are_delivered_not_stored() {
    let mut net = network(2, 5);
    let id = definition().id();
    let to = Network::address(1);
    net.with(0, |n, now| {
        n.create_message(now, id, CHAT, &text("hi"), &[to]).unwrap()
    });
    net.run_for(std::time::Duration::from_secs(1));
    assert_eq!(messages(&net.take_events(1), CHAT), vec!["hi"]);
    assert_eq!(count(net.node(1), CHAT), 0);
}

#[test]
fn conflicting_messages_resolve_the_same_everywhere() {
    let mut net = network(3, 6);
    let def = definition();
    let author = key(77);
    let make = |body: &str| -> Bytes {
        let payload = text(body);
        Draft {
            prefix: def.prefix(),
            message_byte: PROFILE.0,
            authors: Authors::Member(author.public(), KeyEncoding::PublicKey),
            resolution: None,
            global_time: GlobalTime(3),
            sequence: None,
            payload: &payload,
        }
        .encode(&[Some(&author)])
        .unwrap()
    };
    let (x, y) = (make("x"), make("y"));
    let src = Network::address(0);
    net.with(1, |n, now| {
        n.handle_datagram(now, src, x.clone()).unwrap();
        n.handle_datagram(now, src, y.clone()).unwrap();
    });
    net.with(2, |n, now| {
        n.handle_datagram(now, src, y.clone()).unwrap();
        n.handle_datagram(now, src, x.clone()).unwrap();
    });
    let winner = if x < y { &x } else { &y };
    let id = def.id();
    let mid = author.member_id();
    for i in 1..3 {
        let got = net
            .node(i)
            .store()
            .message(
                &id,
                &dispersy::ids::MessageId {
                    member: mid,
                    global_time: GlobalTime(3),
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(&got.packet, winner, "node {i}");
    }
}

#[test]
fn hostile_datagrams_are_counted_not_fatal() {
    let mut net = network(2, 7);
    let def = definition();
    let id = def.id();
    let src = Network::address(0);
    let good = net.with(0, |n, now| {
        n.create_message(now, id, POST, &text("fine"), &[]).unwrap()
    });
    let mut bad_sig = good.packet.to_vec();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    let mut truncated = good.packet.to_vec();
    truncated.truncate(truncated.len() - 70);
    let author = key(78);
    let bad_payload = Draft {
        prefix: def.prefix(),
        message_byte: POST.0,
        authors: Authors::Member(author.public(), KeyEncoding::PublicKey),
        resolution: None,
        global_time: GlobalTime(2),
        sequence: Some(dispersy::ids::SequenceNumber(1)),
        payload: &[0, 9, b'x'],
    }
    .encode(&[Some(&author)])
    .unwrap();
    let mut foreign = good.packet.to_vec();
    foreign[5] ^= 0xff;
    let before = net.node(1).stats().clone();
    for junk in [
        Bytes::from(bad_sig),
        Bytes::from(truncated),
        bad_payload,
        Bytes::from(foreign),
        Bytes::from_static(b"\x01garbage"),
        Bytes::new(),
    ] {
        net.with(1, |n, now| n.handle_datagram(now, src, junk).unwrap());
    }
    // Only the junk counts: the walk may have dropped something before.
    let stats = net.node(1).stats();
    let new = |reason: &str| {
        stats.drops.get(reason).copied().unwrap_or(0)
            - before.drops.get(reason).copied().unwrap_or(0)
    };
    assert_eq!(new("bad-signature"), 1);
    assert_eq!(new("unknown-community"), 1);
    assert_eq!(new("not-dispersy"), 1);
    assert_eq!(new("truncated"), 2);
    assert_eq!(new("bad-payload"), 1);
    assert_eq!(stats.total_drops() - before.total_drops(), 6);
    assert_eq!(count(net.node(1), POST), 0);
}

fn signature_round(decision: SignatureDecision, accept_modified: bool) -> (Network, Vec<Event>) {
    let mut net = network(3, 8);
    let id = definition().id();
    let b_key = net.node(1).public_key().clone();
    let handle = net.with(0, |n, now| {
        n.request_signature(
            now,
            id,
            CONTRACT,
            &text("deal"),
            &b_key,
            Network::address(1),
            std::time::Duration::from_secs(5),
            accept_modified,
        )
        .unwrap()
    });
    net.run_for(std::time::Duration::from_millis(100));
    let request = net
        .take_events(1)
        .into_iter()
        .find_map(|e| match e {
            Event::SignatureRequested {
                request, payload, ..
            } => {
                assert_eq!(Layout::Text.decode(&payload).unwrap(), b"deal");
                Some(request)
            }
            _ => None,
        })
        .expect("B was asked to sign");
    net.with(1, |n, now| {
        n.answer_signature(now, request, decision).unwrap()
    });
    net.run_for(std::time::Duration::from_secs(6));
    let events = net.take_events(0);
    let completed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::SignatureCompleted { request, .. } if *request == handle))
        .collect();
    assert_eq!(completed.len(), 1, "exactly one completion: {events:?}");
    (net, events)
}

fn completed_message(events: &[Event]) -> Option<dispersy::ids::MessageId> {
    events.iter().find_map(|e| match e {
        Event::SignatureCompleted { message, .. } => *message,
        _ => None,
    })
}

#[test]
fn double_signature_accepted_is_stored_everywhere() {
    let (net, events) = signature_round(SignatureDecision::Accept, false);
    let id = completed_message(&events).expect("completed");
    let cid = definition().id();
    for i in 0..3 {
        let m = net
            .node(i)
            .store()
            .message(&cid, &id)
            .unwrap()
            .expect("stored");
        assert_eq!(m.second_member, Some(net.node(1).member_id()), "node {i}");
    }
}

#[test]
fn double_signature_modified_needs_consent() {
    let modified = SignatureDecision::Modify(text("better deal"));
    let (_, events) = signature_round(modified.clone(), false);
    assert_eq!(completed_message(&events), None);
    let (net, events) = signature_round(modified, true);
    let id = completed_message(&events).expect("completed");
    let m = net
        .node(2)
        .store()
        .message(&definition().id(), &id)
        .unwrap()
        .expect("stored");
    assert!(m.packet.windows(11).any(|w| w == b"better deal"));
}

#[test]
fn double_signature_refused_times_out() {
    let (net, events) = signature_round(SignatureDecision::Refuse, false);
    assert_eq!(completed_message(&events), None);
    assert_eq!(count(net.node(0), CONTRACT), 0);
}
