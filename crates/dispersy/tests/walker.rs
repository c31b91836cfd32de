//! The random walk on the sans-IO node: discovery through a tracker, communities kept apart,
//! anti-amplification against a spoofed source, walker messages leaving the store alone, and
//! real py-ipv8 walker packets answered.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dispersy::community::Definition;
use dispersy::crypto::PrivateKey;
use dispersy::ids::{CommunityId, GlobalTime, MemberId};
use dispersy::node::{Config, Event, Node};
use dispersy::store::{MemStore, RangeQuery};
use dispersy::testing::Network;
use dispersy::time::Instant;
use dispersy::walker::{Category, Interface, LocalInterfaces};
use dispersy::wire::builtin::{
    self, Builtin, ConnectionType, IntroductionRequest, IntroductionResponse, MissingMessage,
    WalkerStyle, byte,
};
use dispersy::wire::{Authors, Draft, KeyEncoding, NoKeys, Packet, Prefix};
use rand::SeedableRng;
use serde_json::Value;

fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// The seed of a randomized test: `DISPERSY_TEST_SEED` when set, else `default`; printed.
fn seed(test: &str, default: u64) -> u64 {
    let seed = std::env::var("DISPERSY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("{test}: seed {seed} (set DISPERSY_TEST_SEED to replay)");
    seed
}

fn community(tag: u64) -> Definition {
    Definition::builder(key(10_000 + tag).public().clone())
        .kind("walk")
        .build()
        .unwrap()
}

fn node(seed: u64, i: usize) -> Node {
    let config = Config {
        seed: seed.wrapping_mul(1000).wrapping_add(i as u64),
        ..Config::default()
    };
    Node::new(config, key(i as u64 + 1), Box::new(MemStore::new()))
}

/// Verified candidates (walk, stumble) of a node in a community, trackers left out.
fn verified(node: &Node, community: &CommunityId, tracker: SocketAddr) -> Vec<SocketAddr> {
    node.candidates(community)
        .into_iter()
        .filter(|c| matches!(c.category, Category::Walk | Category::Stumble))
        .filter(|c| c.address != tracker)
        .map(|c| c.address)
        .collect()
}

/// A network whose node 0 is a tracker; returns its index and address.
fn with_tracker(seed: u64) -> (Network, usize, SocketAddr) {
    let mut net = Network::new(seed);
    let config = Config {
        seed,
        ..Config::default()
    };
    let tracker = net.add(Node::new_tracker(config, key(500)));
    (net, tracker, Network::address(tracker))
}

#[test]
fn nodes_discover_each_other_through_a_tracker() {
    const PEERS: usize = 16;
    const ENOUGH: usize = 5;
    let seed = seed("nodes_discover_each_other_through_a_tracker", 11);
    let (mut net, tracker, tracker_addr) = with_tracker(seed);
    let def = community(1);
    let id = def.id();
    let mut members = BTreeSet::new();
    for i in 1..=PEERS {
        let j = net.add(node(seed, i));
        members.insert(net.node(j).member_id());
        // The bootstrap address comes first; the community is joined afterwards.
        net.with(j, |n, now| {
            n.add_bootstrap(now, tracker_addr).unwrap();
            n.join(now, def.clone()).unwrap();
        });
    }
    let peers = 1..=PEERS;
    let mut first = [None::<u64>; 3];
    let thresholds = [1, 3, ENOUGH];
    for second in 1..=180u64 {
        net.run_for(Duration::from_secs(1));
        let least = peers
            .clone()
            .map(|i| verified(net.node(i), &id, tracker_addr).len())
            .min()
            .unwrap();
        for (k, at) in first.iter_mut().enumerate() {
            if at.is_none() && least >= thresholds[k] {
                *at = Some(second);
            }
        }
        if first[2].is_some() {
            break;
        }
    }
    let counts: Vec<usize> = peers
        .clone()
        .map(|i| verified(net.node(i), &id, tracker_addr).len())
        .collect();
    println!(
        "{PEERS} peers and a tracker, 5 s steps: every peer had >=1 / >=3 / >={ENOUGH} verified \
         peers after {first:?} s; verified counts then {counts:?}"
    );
    let all = first[2].expect("every peer found several verified peers within 180 s");
    assert!(all <= 150, "discovery took {all} s (more than 30 steps)");

    for i in peers.clone() {
        let n = net.node(i);
        for c in n.candidates(&id) {
            assert_ne!(c.address, Network::address(i), "never our own address");
            if c.address != tracker_addr
                && let Some(member) = c.member
            {
                assert!(members.contains(&member), "node {i}: stranger {member}");
            }
        }
        let stats = n.walker_stats(&id).unwrap();
        assert!(stats.walk_successes > 0 && stats.walk_successes <= stats.walk_attempts);
        let events = net.take_events(i);
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::PeerChanged { category: "walk", community, .. } if *community == id
            )),
            "node {i} reported a walk candidate"
        );
    }
    // The tracker answered for a community it never joined, and never walked in it.
    let t = net.node(tracker);
    assert!(t.community(&id).is_none());
    let status = t.walker_status().tracker.unwrap();
    assert_eq!(status.communities, 1);
    assert_eq!(status.stats.communities_created, 1);
    let sent = &t.stats().sent_by_type;
    assert!(sent.get(&byte::INTRODUCTION_REQUEST).is_none());
    assert!(sent.get(&byte::NEW_INTRODUCTION_REQUEST).is_none());
    let packets = |bytes: [u8; 2]| -> u64 {
        bytes
            .iter()
            .filter_map(|b| sent.get(b))
            .map(|t| t.packets)
            .sum()
    };
    let responses = packets([byte::INTRODUCTION_RESPONSE, byte::NEW_INTRODUCTION_RESPONSE]);
    let punctures = packets([byte::PUNCTURE_REQUEST, byte::NEW_PUNCTURE_REQUEST]);
    println!("the tracker sent {responses} responses and {punctures} puncture-requests");
    assert!(responses >= PEERS as u64 && punctures > 0);
}

#[test]
fn communities_are_kept_apart() {
    let seed = seed("communities_are_kept_apart", 12);
    let (mut net, tracker, tracker_addr) = with_tracker(seed);
    let (a, b) = (community(1), community(2));
    // Nodes 1-5 in A, 4-8 in B: nodes 4 and 5 host both, and join B only after 30 s.
    let in_a = 1..=5usize;
    let in_b = 4..=8usize;
    for i in 1..=8 {
        let j = net.add(node(seed, i));
        net.with(j, |n, now| n.add_bootstrap(now, tracker_addr).unwrap());
        if in_a.contains(&j) {
            net.with(j, |n, now| n.join(now, a.clone()).unwrap());
        } else {
            net.with(j, |n, now| n.join(now, b.clone()).unwrap());
        }
    }
    net.run_for(Duration::from_secs(30));
    for j in 4..=5 {
        net.with(j, |n, now| n.join(now, b.clone()).unwrap());
    }
    net.run_for(Duration::from_secs(90));
    for (def, members) in [(&a, &in_a), (&b, &in_b)] {
        let id = def.id();
        let addresses: BTreeSet<SocketAddr> = members.clone().map(Network::address).collect();
        let mids: BTreeSet<MemberId> = members.clone().map(|i| net.node(i).member_id()).collect();
        for i in members.clone() {
            let n = net.node(i);
            let found = verified(n, &id, tracker_addr);
            assert!(found.len() >= 2, "node {i} in {id}: {found:?}");
            for c in n.candidates(&id) {
                if c.address == tracker_addr {
                    continue;
                }
                assert!(addresses.contains(&c.address), "node {i} in {id}: {c:?}");
                assert!(
                    c.member.is_none_or(|m| mids.contains(&m)),
                    "node {i}: {c:?}"
                );
            }
        }
    }
    // The late joiners bootstrapped in B too.
    for j in 4..=5 {
        let found = verified(net.node(j), &b.id(), tracker_addr);
        assert!(!found.is_empty(), "node {j} found nobody in B");
    }
    assert_eq!(
        net.node(tracker)
            .walker_status()
            .tracker
            .unwrap()
            .communities,
        2
    );
}

/// A signed introduction-request from `author` claiming to come from `source`.
fn introduction_request(
    def: &Definition,
    author: &PrivateKey,
    source: SocketAddr,
    to: SocketAddr,
    identifier: u16,
    global_time: u64,
) -> Bytes {
    let payload = Builtin::IntroductionRequest(IntroductionRequest {
        style: WalkerStyle::Old,
        destination: to,
        source_lan: source,
        source_wan: source,
        advice: true,
        connection_type: ConnectionType::Unknown,
        supports_new_style: false,
        tunnel: false,
        unused_flags: 0,
        identifier,
        sync: None,
        extra: Bytes::new(),
    })
    .to_bytes()
    .unwrap();
    Draft {
        prefix: def.prefix(),
        message_byte: byte::INTRODUCTION_REQUEST,
        authors: Authors::Member(author.public(), KeyEncoding::PublicKey),
        resolution: None,
        global_time: GlobalTime(global_time),
        sequence: None,
        payload: &payload,
    }
    .encode(&[Some(author)])
    .unwrap()
}

fn unsigned(def: &Definition, payload: &Builtin) -> Bytes {
    let bytes = payload.to_bytes().unwrap();
    Draft {
        prefix: def.prefix(),
        message_byte: payload.message_byte(),
        authors: Authors::None,
        resolution: None,
        global_time: GlobalTime(1),
        sequence: None,
        payload: &bytes,
    }
    .encode(&[])
    .unwrap()
}

fn drain(node: &mut Node) -> Vec<dispersy::node::Transmit> {
    std::iter::from_fn(|| node.poll_transmit()).collect()
}

#[test]
fn spoofed_source_never_gets_more_than_three_times_its_bytes() {
    let def = community(1);
    let mut n = node(13, 0);
    n.set_interfaces(Network::interfaces(0));
    let me = Network::address(0);
    let t0 = Instant::from_secs(1);
    n.join(t0, def.clone()).unwrap();
    // Two honest peers walk to us, so a request has someone to introduce (a puncture-request
    // charged to the requester too).
    for p in 1..=2u16 {
        let from = Network::address(usize::from(p));
        let req = introduction_request(&def, &key(u64::from(p) + 1), from, me, p, 3);
        n.handle_datagram(t0, from, req).unwrap();
    }
    drain(&mut n);

    // The victim never sent anything: an attacker signs with its own key and spoofs the source.
    let victim: SocketAddr = "127.0.0.1:30000".parse().unwrap();
    let attacker = key(66);
    let identity_request = unsigned(&def, &Builtin::MissingIdentity(n.member_id()));
    let message_request = unsigned(
        &def,
        &Builtin::MissingMessage(MissingMessage {
            member: n.public_key().clone(),
            global_times: (1..=64).map(GlobalTime).collect(),
        }),
    );
    let mut received = 0usize;
    let mut sent = 0usize;
    let mut at = t0;
    for round in 0..40u16 {
        at += Duration::from_millis(100);
        let datagram = match round % 4 {
            0 | 1 => identity_request.clone(),
            2 => message_request.clone(),
            _ => introduction_request(&def, &attacker, victim, me, 100 + round, 3),
        };
        received += datagram.len();
        n.handle_datagram(at, victim, datagram).unwrap();
        // Everything the node sends now was caused by the victim's address, wherever it goes.
        for t in drain(&mut n) {
            sent += t.contents.len();
        }
        assert!(
            sent <= 3 * received,
            "round {round}: sent {sent} for {received}"
        );
    }
    let stats = n.walker_status().amplification;
    println!("spoofed: {received} bytes in, {sent} out; {stats:?}");
    assert!(sent > 0, "the guard lets answers out within the budget");
    assert!(
        stats.refused_sends > 0,
        "identity answers went over the budget"
    );
    assert!(
        stats.refused_bulk > 0,
        "bulk answers to an unproven address"
    );
    assert!(n.stats().drops.get("amplification").copied().unwrap_or(0) > 0);
}

#[test]
fn walker_messages_never_change_the_stored_state() {
    let seed = seed("walker_messages_never_change_the_stored_state", 14);
    let mut net = Network::new(seed);
    let def = community(1);
    let id = def.id();
    for i in 0..3 {
        let j = net.add(node(seed, i));
        net.with(j, |n, now| n.join(now, def.clone()).unwrap());
    }
    for i in 0..3 {
        for j in (0..3).filter(|j| *j != i) {
            net.with(i, |n, now| {
                n.add_peer(now, id, Network::address(j)).unwrap()
            });
        }
    }
    net.run_for(Duration::from_secs(20));
    let all = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, usize::MAX);
    let snapshot = |n: &Node| {
        (
            n.global_time(&id),
            n.store().range(&id, &all).unwrap().len(),
            n.store().max_global_time(&id).unwrap(),
        )
    };
    let before: Vec<_> = (0..3).map(|i| snapshot(net.node(i))).collect();
    // A stranger walks to node 1 claiming a huge clock; node 2 too, every second.
    let stranger = key(77);
    let huge = 1u64 << 40;
    let from: SocketAddr = "127.0.0.1:29999".parse().unwrap();
    for k in 0..20u16 {
        let req = introduction_request(&def, &stranger, from, Network::address(1), k, huge);
        net.with(1, |n, now| n.handle_datagram(now, from, req).unwrap());
        net.run_for(Duration::from_secs(1));
    }
    net.run_for(Duration::from_secs(30));
    let after: Vec<_> = (0..3).map(|i| snapshot(net.node(i))).collect();
    assert_eq!(before, after, "clock, stored messages and max global time");
    let n1 = net.node(1);
    assert_eq!(n1.store().member(&stranger.member_id()).unwrap(), None);
    let c = n1
        .candidates(&id)
        .into_iter()
        .find(|c| c.address == from)
        .expect("the stranger is a stumble candidate");
    assert_eq!(
        c.global_time,
        GlobalTime(huge),
        "its opinion is all that is kept"
    );
    assert_eq!(c.category, Category::Stumble);
}

/// A signed walker packet from the node: parsed, verified, decoded.
fn decode_walker(bytes: &Bytes) -> (Packet, Builtin) {
    let (prefix, b) = Prefix::parse(bytes).unwrap();
    let layout = builtin::layout(b, prefix.community_version).unwrap();
    let packet = Packet::parse(bytes.clone(), &layout, &NoKeys).unwrap();
    if !packet.is_unsigned(0) {
        packet.verify().unwrap();
    }
    let payload = Builtin::decode(b, packet.payload()).unwrap();
    (packet, payload)
}

#[test]
fn py_ipv8_walker_packets_are_answered() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ipv8-capture.jsonl"
    ))
    .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let meta = &lines[0];
    let id: CommunityId = meta["community"].as_str().unwrap().parse().unwrap();
    let def = Definition::builder_for_id(id).build().unwrap();
    let mut n = node(15, 0);
    let me: SocketAddr = "127.0.0.1:9404".parse().unwrap();
    n.set_interfaces(LocalInterfaces {
        bound: me,
        interfaces: vec![Interface::new(me.ip(), 8)],
    });
    let start = Instant::from_secs(100);
    n.join(start, def).unwrap();
    drain(&mut n);
    let mids: BTreeSet<MemberId> = meta["peers"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["mid"].as_str().unwrap().parse().unwrap())
        .collect();

    let (mut requests, mut punctures) = (0, 0);
    // Peers that showed they speak new style in a request we accepted (a 234, or a 246 with 0x20).
    let mut new_style = BTreeSet::new();
    for p in &lines[1..] {
        let src: SocketAddr = p["src"].as_str().unwrap().parse().unwrap();
        let bytes = Bytes::from(hex::decode(p["hex"].as_str().unwrap()).unwrap());
        let at = start + Duration::from_micros((p["t"].as_f64().unwrap() * 1e6) as u64);
        let msg = u8::try_from(p["msg_id"].as_u64().unwrap()).unwrap();
        n.handle_datagram(at, src, bytes.clone()).unwrap();
        let out = drain(&mut n);
        match msg {
            byte::INTRODUCTION_REQUEST | byte::NEW_INTRODUCTION_REQUEST => {
                requests += 1;
                let Builtin::IntroductionRequest(req) = decode_walker(&bytes).1 else {
                    panic!("not a request");
                };
                let response = out
                    .iter()
                    .find(|t| t.destination == src)
                    .unwrap_or_else(|| panic!("packet {}: no response", p["n"]));
                let (packet, payload) = decode_walker(&response.contents);
                assert_eq!(packet.community(), id);
                assert_eq!(packet.author().unwrap().member_id(), n.member_id());
                let Builtin::IntroductionResponse(resp) = payload else {
                    panic!("packet {}: answered with {payload:?}", p["n"]);
                };
                if msg == byte::NEW_INTRODUCTION_REQUEST || req.supports_new_style {
                    new_style.insert(src);
                }
                let expect_style = if new_style.contains(&src) {
                    WalkerStyle::New
                } else {
                    WalkerStyle::Old
                };
                let IntroductionResponse {
                    style,
                    identifier,
                    destination,
                    source_lan,
                    supports_new_style,
                    ..
                } = resp;
                assert_eq!(style, expect_style, "packet {}", p["n"]);
                assert_eq!(identifier, req.identifier);
                assert_eq!(destination, src);
                assert_eq!(source_lan, me);
                assert!(supports_new_style);
            }
            byte::PUNCTURE_REQUEST | byte::NEW_PUNCTURE_REQUEST => {
                let Builtin::PunctureRequest(req) = decode_walker(&bytes).1 else {
                    panic!("not a puncture-request");
                };
                for t in &out {
                    let Builtin::Puncture(puncture) = decode_walker(&t.contents).1 else {
                        panic!("answered a puncture-request with something else");
                    };
                    assert_eq!(puncture.identifier, req.identifier);
                    assert_ne!(t.destination, src, "not back to the introducer");
                    assert!([req.lan_walker, req.wan_walker].contains(&t.destination));
                    punctures += 1;
                }
            }
            _ => assert!(out.is_empty(), "packet {}: {out:?}", p["n"]),
        }
    }
    println!("answered {requests} py-ipv8 introduction-requests, sent {punctures} punctures");
    assert!(requests >= 10);
    assert!(
        punctures >= 1,
        "a known introducer's puncture-request is honoured"
    );
    let candidates = n.candidates(&id);
    assert!(candidates.len() >= 3);
    for c in &candidates {
        assert!(c.member.is_some_and(|m| mids.contains(&m)), "{c:?}");
        assert!(c.supports_new_style, "{c:?}");
    }
    assert_eq!(n.stats().drops.get("bad-signature"), None);
}
