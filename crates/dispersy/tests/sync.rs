//! Bloom-filter synchronization on the sans-IO node: classic sync, fast catch-up, range
//! reconciliation, mixed nodes with and without our extensions, Dispersy-era (version 1) peers,
//! anti-amplification of sync answers, and eventual consistency of many nodes under loss,
//! reordering and duplication.
//!
//! `DISPERSY_TEST_SEED` replays a randomized test; `DISPERSY_SYNC_STRESS=1` runs the stress test
//! at full size (50 nodes, 20,000 bundles; several minutes in a debug build).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dispersy::community::{Definition, MetaMessage};
use dispersy::crypto::PrivateKey;
use dispersy::ids::{GlobalTime, MemberId, MetaId};
use dispersy::node::{Config, Node, SyncConfig, Transmit};
use dispersy::store::{Fingerprint, MemStore, Store, StoredMessage};
use dispersy::sync::Policies;
use dispersy::testing::{BundleShape, Link, Network, bundles};
use dispersy::time::Instant;
use dispersy::wire::builtin::{
    self, Builtin, ConnectionType, IntroductionRequest, SyncBlock, WalkerStyle, byte,
};
use dispersy::wire::extension::{Extensions, kind};
use dispersy::wire::{Authors, Draft, KeyEncoding, Packet, Prefix};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const POST: MetaId = MetaId(1);

fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
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

/// A community with one sequence-numbered full-sync meta-message.
fn definition(version: u8) -> Definition {
    Definition::builder(key(9_000).public().clone())
        .kind("sync-test")
        .version(version)
        .meta(MetaMessage::new(1, "post").sequenced())
        .build()
        .unwrap()
}

fn corpus(def: &Definition, count: usize, authors: usize, seed: u64) -> Vec<StoredMessage> {
    let keys: Vec<PrivateKey> = (0..authors as u64).map(|i| key(100 + i)).collect();
    let shape = BundleShape {
        count,
        payload_len: 200,
        per_global_time: 4,
        first: GlobalTime(3),
    };
    bundles(
        def,
        POST,
        &keys,
        shape,
        &mut ChaCha20Rng::seed_from_u64(seed),
    )
}

fn store_of<'a>(messages: impl IntoIterator<Item = &'a StoredMessage>) -> MemStore {
    let mut s = MemStore::new();
    for m in messages {
        s.insert_message(m).unwrap();
    }
    s
}

fn node(seed: u64, i: usize, store: MemStore, extensions: bool) -> Node {
    let config = Config {
        seed: seed.wrapping_mul(1_000).wrapping_add(i as u64),
        sync: SyncConfig {
            extensions,
            ..SyncConfig::default()
        },
        ..Config::default()
    };
    Node::new(config, key(i as u64 + 1), Box::new(store))
}

/// The Bloom-synced metas of a community (what sync is responsible for).
fn synced(def: &Definition) -> Vec<MetaId> {
    Policies::new(def.metas().map(|m| (m.id, &m.distribution)))
        .ids()
        .to_vec()
}

fn fingerprint(node: &Node, def: &Definition) -> Fingerprint {
    node.store()
        .fingerprint(
            &def.id(),
            Some(&synced(def)),
            GlobalTime(1),
            GlobalTime::MAX,
        )
        .unwrap()
}

fn expected<'a>(messages: impl IntoIterator<Item = &'a StoredMessage>) -> Fingerprint {
    let mut f = Fingerprint::default();
    for m in messages {
        f.add(m.digest);
    }
    f
}

/// A network of nodes with these stores, all joined to `def`, each told about `peers` others.
fn network(seed: u64, def: &Definition, stores: Vec<(MemStore, bool)>, peers: usize) -> Network {
    let mut net = Network::new(seed);
    let n = stores.len();
    for (i, (store, extensions)) in stores.into_iter().enumerate() {
        net.add(node(seed, i, store, extensions));
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    for i in 0..n {
        net.with(i, |node, now| node.join(now, def.clone()).unwrap());
        let mut told = 0;
        while told < peers.min(n - 1) {
            let j = rng.gen_range(0..n);
            if j != i {
                let id = def.id();
                net.with(i, |node, now| {
                    node.add_peer(now, id, Network::address(j)).unwrap()
                });
                told += 1;
            }
        }
    }
    net
}

/// Runs until every node's Bloom-synced store has `want`, checking every `step`; the time it
/// took, or `None` after `limit`.
fn run_until(
    net: &mut Network,
    def: &Definition,
    want: Fingerprint,
    step: Duration,
    limit: Duration,
) -> Option<Duration> {
    let start = net.now();
    loop {
        if (0..net.len()).all(|i| fingerprint(net.node(i), def) == want) {
            return Some(net.now().saturating_duration_since(start));
        }
        if net.now().saturating_duration_since(start) >= limit {
            return None;
        }
        net.run_for(step);
    }
}

#[test]
fn classic_sync_converges_without_extensions() {
    let seed = seed("classic_sync_converges_without_extensions", 1);
    let def = definition(2);
    let all = corpus(&def, 600, 6, seed);
    let (a, b) = all.split_at(450);
    let mut net = network(
        seed,
        &def,
        vec![(store_of(a), false), (store_of(b), false)],
        1,
    );
    let took = run_until(
        &mut net,
        &def,
        expected(&all),
        Duration::from_secs(5),
        Duration::from_secs(1_800),
    );
    println!("classic: {took:?}");
    assert!(took.is_some(), "classic sync converged");
    for i in 0..2 {
        let s = net.node(i).sync_status(&def.id()).unwrap();
        assert!(s.stats.requests > 0 && s.stats.responses > 0, "{s:?}");
        assert_eq!(s.stats.catchups + s.stats.reconcile_sessions, 0);
        assert_eq!(s.extension_peers, 0, "nobody announced extensions");
    }
}

#[test]
fn fast_catchup_brings_a_new_node_up() {
    let seed = seed("fast_catchup_brings_a_new_node_up", 2);
    let def = definition(2);
    let all = corpus(&def, 4_000, 20, seed);
    let mut net = network(
        seed,
        &def,
        vec![(store_of(&all), true), (MemStore::new(), true)],
        1,
    );
    let took = run_until(
        &mut net,
        &def,
        expected(&all),
        Duration::from_millis(500),
        Duration::from_secs(120),
    )
    .expect("caught up");
    let s = net.node(1).sync_status(&def.id()).unwrap();
    println!("catch-up of 4,000: {took:?}; {s:?}");
    // Classic sync carries at most 5 KiB per 5-s walker step: about 1.5 MB needs 25 minutes.
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(s.stats.catchups >= 1 && s.stats.catchup_requests > 0);
    assert_eq!((s.held, s.estimate), (4_000, 4_000));
    assert!((s.fraction - 1.0).abs() < f64::EPSILON);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["held"], 4_000);
    assert!(json["stats"]["catchup_requests"].as_u64().unwrap() > 0);
    net.run_for(Duration::from_secs(120));
    let s = net.node(1).sync_status(&def.id()).unwrap();
    assert!(!s.catching_up, "catch-up finished");
    let a = net.node(0).sync_status(&def.id()).unwrap();
    assert!(a.stats.responses_full > 0, "budgets were filled");
}

#[test]
fn reconciliation_settles_near_equal_stores() {
    let seed = seed("reconciliation_settles_near_equal_stores", 3);
    let def = definition(2);
    let all = corpus(&def, 3_020, 10, seed);
    // Each side holds ten of the newest messages the other lacks.
    let mut only_a = Vec::new();
    let mut only_b = Vec::new();
    for (k, m) in all.iter().rev().take(20).enumerate() {
        if k % 2 == 0 { &mut only_a } else { &mut only_b }.push(m.clone());
    }
    let shared: Vec<&StoredMessage> = all.iter().take(3_000).collect();
    let a = store_of(shared.iter().copied().chain(only_a.iter()));
    let b = store_of(shared.iter().copied().chain(only_b.iter()));
    let mut net = network(seed, &def, vec![(a, true), (b, true)], 1);
    let took = run_until(
        &mut net,
        &def,
        expected(&all),
        Duration::from_millis(200),
        Duration::from_secs(120),
    )
    .expect("reconciled");
    let sa = net.node(0).sync_status(&def.id()).unwrap();
    let sb = net.node(1).sync_status(&def.id()).unwrap();
    println!("near-equal: {took:?}\nA {sa:?}\nB {sb:?}");
    assert!(sa.stats.reconcile_sessions + sb.stats.reconcile_sessions >= 1);
    assert_eq!(
        sa.stats.catchups + sb.stats.catchups,
        0,
        "nobody is far behind"
    );
    let bytes = sa.stats.reconcile_bytes_sent + sb.stats.reconcile_bytes_sent;
    assert!(bytes < 16 * 1024, "{bytes} bytes of reconciliation");
}

#[test]
fn nodes_without_extensions_converge_with_nodes_that_have_them() {
    let seed = seed(
        "nodes_without_extensions_converge_with_nodes_that_have_them",
        4,
    );
    let def = definition(2);
    let all = corpus(&def, 1_500, 10, seed);
    let (a, rest) = all.split_at(1_200);
    let (b, c) = rest.split_at(200);
    // A speaks the extensions, B and C do not; C starts empty-ish, far behind A.
    let mut net = network(
        seed,
        &def,
        vec![
            (store_of(a), true),
            (store_of(b), false),
            (store_of(c), true),
        ],
        2,
    );
    let took = run_until(
        &mut net,
        &def,
        expected(&all),
        Duration::from_secs(5),
        Duration::from_secs(3_600),
    );
    println!("mixed: {took:?}");
    assert!(took.is_some(), "mixed nodes converged");
    let b = net.node(1).sync_status(&def.id()).unwrap();
    assert_eq!(b.stats.catchups + b.stats.reconcile_sessions, 0);
    assert_eq!(b.stats.reconcile_messages, 0, "B never answered RECONCILE");
}

#[test]
fn stores_converge_under_loss_reordering_and_duplication() {
    let seed = seed("stores_converge_under_loss_reordering_and_duplication", 5);
    let big = std::env::var("DISPERSY_SYNC_STRESS").is_ok_and(|v| !v.is_empty() && v != "0");
    let (nodes, count) = if big { (50, 20_000) } else { (20, 2_000) };
    let def = definition(2);
    let all = corpus(&def, count, 25, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut stores = Vec::new();
    let mut union = std::collections::BTreeSet::new();
    for i in 0..nodes {
        // Some nodes start empty, some hold most; every fourth does without our extensions.
        let share: f64 = if i % 5 == 0 {
            0.0
        } else {
            rng.gen_range(0.05..0.9)
        };
        let mine: Vec<&StoredMessage> = all.iter().filter(|_| rng.gen_bool(share)).collect();
        union.extend(mine.iter().map(|m| (m.global_time, m.member)));
        stores.push((store_of(mine), i % 4 != 3));
    }
    let want = expected(
        all.iter()
            .filter(|m| union.contains(&(m.global_time, m.member))),
    );
    let mut net = network(seed, &def, stores, 3);
    net.link = Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(40),
        loss: 0.05,
        duplicate: 0.02,
    };
    let took = run_until(
        &mut net,
        &def,
        want,
        Duration::from_secs(10),
        Duration::from_secs(if big { 20_000 } else { 3_600 }),
    );
    let counts: Vec<u64> = (0..nodes)
        .map(|i| fingerprint(net.node(i), &def).count)
        .collect();
    println!(
        "{nodes} nodes, {} of {count} bundles held somewhere: converged after {took:?}; traffic {:?}",
        want.count,
        net.traffic()
    );
    let mut sent = std::collections::BTreeMap::<u8, (u64, u64)>::new();
    let mut drops = std::collections::BTreeMap::<&str, u64>::new();
    let mut sync = Vec::new();
    for i in 0..nodes {
        let c = net.node(i).community_stats(&def.id()).unwrap();
        for (b, t) in &c.sent_by_type {
            let e = sent.entry(*b).or_default();
            e.0 += t.packets;
            e.1 += t.bytes;
        }
        for (r, n) in &c.drops {
            *drops.entry(r).or_default() += n;
        }
        for (r, n) in &c.delayed {
            *drops.entry(r).or_default() += n;
        }
        *drops.entry("received").or_default() +=
            c.received_by_type.get(&POST.0).map_or(0, |t| t.packets);
        *drops.entry("accepted").or_default() += c.accepted.get(&POST.0).copied().unwrap_or(0);
        sync.push(net.node(i).sync_status(&def.id()).unwrap().stats);
    }
    println!("sent by type (packets, bytes): {sent:?}\ndrops: {drops:?}");
    let total = |f: fn(&dispersy::node::SyncStats) -> u64| sync.iter().map(f).sum::<u64>();
    println!(
        "classic packets {} in {} responses; catch-ups {} ({} requests); reconcile sessions {}, packets {}",
        total(|s| s.packets_sent),
        total(|s| s.responses),
        total(|s| s.catchups),
        total(|s| s.catchup_requests),
        total(|s| s.reconcile_sessions),
        total(|s| s.reconcile_packets),
    );
    assert!(took.is_some(), "counts {counts:?}, want {}", want.count);
    for i in 0..nodes {
        let store = net.node(i).store();
        let f = store
            .fingerprint(&def.id(), None, GlobalTime(1), GlobalTime::MAX)
            .unwrap();
        let identities = store
            .count(
                &def.id(),
                Some(&[MetaId(byte::IDENTITY)]),
                GlobalTime(1),
                GlobalTime::MAX,
            )
            .unwrap();
        assert_eq!(f.count - identities, want.count, "node {i}");
    }
}

/// Messages of a meta-message whose priority is at the sync threshold (32) or below are never
/// synced by Bloom filters, as in Dispersy: not by classic sync, fast catch-up or
/// reconciliation. Two pairs: extensions on both sides (1,500 posts, so the new node catches
/// up) and classic sync only.
#[test]
fn messages_below_the_sync_threshold_are_not_synced() {
    let def = Definition::builder(key(9_001).public().clone())
        .kind("sync-threshold")
        .meta(MetaMessage::new(1, "post").sequenced())
        .meta(MetaMessage::new(2, "chatter").priority(32))
        .build()
        .unwrap();
    assert!(synced(&def).contains(&POST));
    assert!(
        !synced(&def).contains(&MetaId(2)),
        "chatter is not Bloom-synced"
    );
    let chatter_keys: Vec<PrivateKey> = (0..4).map(|i| key(500 + i)).collect();
    let chatter = bundles(
        &def,
        MetaId(2),
        &chatter_keys,
        BundleShape {
            count: 200,
            payload_len: 50,
            per_global_time: 2,
            first: GlobalTime(3),
        },
        &mut ChaCha20Rng::seed_from_u64(3),
    );
    for (posts, extensions) in [(1_500, true), (200, false)] {
        let all = corpus(&def, posts, 10, 4);
        let mut net = network(
            4,
            &def,
            vec![
                (store_of(all.iter().chain(&chatter)), extensions),
                (MemStore::new(), extensions),
            ],
            1,
        );
        let took = run_until(
            &mut net,
            &def,
            expected(&all),
            Duration::from_secs(5),
            Duration::from_secs(3_600),
        );
        assert!(took.is_some(), "posts converged (extensions: {extensions})");
        // Long enough for reconciliation sessions and many classic rounds.
        net.run_for(Duration::from_secs(120));
        let b = net.node(1).store();
        let held_chatter = b
            .count(
                &def.id(),
                Some(&[MetaId(2)]),
                GlobalTime(1),
                GlobalTime::MAX,
            )
            .unwrap();
        assert_eq!(held_chatter, 0, "extensions: {extensions}");
        let a = net.node(0).store();
        let a_chatter = a
            .count(
                &def.id(),
                Some(&[MetaId(2)]),
                GlobalTime(1),
                GlobalTime::MAX,
            )
            .unwrap();
        assert_eq!(a_chatter, 200);
        let s = net.node(1).sync_status(&def.id()).unwrap();
        println!("extensions {extensions}: converged after {took:?}; {s:?}");
        if extensions {
            assert!(s.stats.catchups >= 1, "{s:?}");
        }
    }
}

/// Every datagram a node queued.
fn drain(node: &mut Node) -> Vec<Transmit> {
    std::iter::from_fn(|| node.poll_transmit()).collect()
}

/// A walker packet from the node, decoded (member ids are resolved with `keys`).
fn decode(bytes: &Bytes, keys: &[PrivateKey]) -> Option<Builtin> {
    let (prefix, b) = Prefix::parse(bytes).ok()?;
    let layout = builtin::layout(b, prefix.community_version)?;
    let lookup = |m: &MemberId| {
        keys.iter()
            .find(|k| k.member_id() == *m)
            .map(|k| k.public().clone())
    };
    let packet = Packet::parse(bytes.clone(), &layout, &lookup).ok()?;
    Builtin::decode(b, packet.payload()).ok()
}

/// A signed introduction-request as `author` would send it from `from`.
#[allow(clippy::too_many_arguments)]
fn request(
    def: &Definition,
    author: &PrivateKey,
    encoding: KeyEncoding,
    from: SocketAddr,
    to: SocketAddr,
    identifier: u16,
    sync: Option<SyncBlock>,
    extra: Bytes,
    new_style: bool,
) -> Bytes {
    let payload = Builtin::IntroductionRequest(IntroductionRequest {
        style: WalkerStyle::Old,
        destination: to,
        source_lan: from,
        source_wan: from,
        advice: true,
        connection_type: ConnectionType::Unknown,
        supports_new_style: new_style,
        tunnel: false,
        unused_flags: 0,
        identifier,
        sync,
        extra,
    })
    .to_bytes()
    .unwrap();
    Draft {
        prefix: def.prefix(),
        message_byte: byte::INTRODUCTION_REQUEST,
        authors: Authors::Member(author.public(), encoding),
        resolution: None,
        global_time: GlobalTime(5),
        sequence: None,
        payload: &payload,
    }
    .encode(&[Some(author)])
    .unwrap()
}

/// A sync block holding nothing over the whole range: "send me anything".
fn empty_block() -> SyncBlock {
    dispersy::bloom::BloomFilter::with_error_rate(8_128, 0.01, Some(7))
        .unwrap()
        .to_sync_block(GlobalTime(1), GlobalTime(0), 1, 0)
        .unwrap()
}

#[test]
fn version_one_peers_get_plain_dispersy_messages() {
    let def = definition(1);
    let all = corpus(&def, 200, 4, 6);
    let mut store = store_of(&all);
    let dispersy_peer = key(77);
    let ours = key(78);
    // Walker messages of version 1 name their author by member id: the node knows both keys.
    store.put_member(dispersy_peer.public()).unwrap();
    store.put_member(ours.public()).unwrap();
    let mut n = node(6, 0, store, true);
    n.set_interfaces(Network::interfaces(0));
    let me = Network::address(0);
    let t0 = Instant::from_secs(1);
    n.join(t0, def.clone()).unwrap();
    drain(&mut n);
    let keys = [key(1), dispersy_peer.clone(), ours.clone()];

    // An original Dispersy peer: old style, no new-style flag, no extension block.
    let from = Network::address(1);
    let plain = request(
        &def,
        &dispersy_peer,
        KeyEncoding::MemberId,
        from,
        me,
        11,
        Some(empty_block()),
        Bytes::new(),
        false,
    );
    n.handle_datagram(t0, from, plain).unwrap();
    let out = drain(&mut n);
    let response = out
        .iter()
        .find_map(|t| match decode(&t.contents, &keys) {
            Some(Builtin::IntroductionResponse(r)) => Some(r),
            _ => None,
        })
        .expect("an introduction-response");
    assert!(
        response.extra.is_empty(),
        "no cookie, no hello: {response:?}"
    );
    // Classic sync still answers it (within what the unproven address may receive).
    assert!(out.len() > 1, "sync packets follow");
    // Our own walk to it goes out plain too.
    let mut at = t0;
    let mut saw = false;
    for _ in 0..40 {
        at += Duration::from_secs(1);
        n.handle_timeout(at).unwrap();
        for t in drain(&mut n) {
            if t.destination != from {
                continue;
            }
            if let Some(Builtin::IntroductionRequest(r)) = decode(&t.contents, &keys) {
                assert!(r.extra.is_empty(), "plain request to a Dispersy peer");
                saw = true;
            }
        }
    }
    assert!(saw, "walked to the Dispersy peer");
    assert!(
        n.sync_status(&def.id()).unwrap().stats.extensions_withheld > 0,
        "the walker's cookie echo or our hello was held back"
    );

    // One of ours (new-style flag) gets our extension block.
    let from = Network::address(2);
    n.handle_datagram(
        at,
        from,
        request(
            &def,
            &ours,
            KeyEncoding::MemberId,
            from,
            me,
            12,
            None,
            Bytes::new(),
            true,
        ),
    )
    .unwrap();
    let response = drain(&mut n)
        .iter()
        .find_map(|t| match decode(&t.contents, &keys) {
            Some(Builtin::IntroductionResponse(r)) => Some(r),
            _ => None,
        })
        .unwrap();
    let ext = Extensions::parse(&response.extra).unwrap();
    assert!(ext.get(kind::COOKIE).is_some() && ext.get(kind::SYNC_HELLO).is_some());
}

#[test]
fn version_one_nodes_of_ours_use_the_extensions() {
    let seed = seed("version_one_nodes_of_ours_use_the_extensions", 7);
    let def = definition(1);
    let all = corpus(&def, 2_500, 10, seed);
    let mut net = network(
        seed,
        &def,
        vec![(store_of(&all), true), (MemStore::new(), true)],
        1,
    );
    let took = run_until(
        &mut net,
        &def,
        expected(&all),
        Duration::from_millis(500),
        Duration::from_secs(120),
    );
    println!("version 1 catch-up: {took:?}");
    assert!(took.is_some());
    let s = net.node(1).sync_status(&def.id()).unwrap();
    assert_eq!(s.extension_peers, 1);
    assert!(s.stats.catchups >= 1);
}

#[test]
fn sync_answers_to_unproven_addresses_stay_within_three_times() {
    let def = definition(2);
    let all = corpus(&def, 1_000, 5, 8);
    let mut n = node(8, 0, store_of(&all), true);
    n.set_interfaces(Network::interfaces(0));
    let me = Network::address(0);
    let t0 = Instant::from_secs(1);
    n.join(t0, def.clone()).unwrap();
    drain(&mut n);
    // A spoofed source asks for everything with a fast hello asking for 256 KiB.
    let hello = dispersy::sync::hello::SyncHello {
        fast: true,
        reconcile: true,
        held: 0,
        global_time: GlobalTime(1),
        budget: 256 * 1024,
    };
    let mut ext = Extensions::new();
    ext.push(kind::SYNC_HELLO, hello.encode()).unwrap();
    let victim: SocketAddr = "127.0.0.1:30000".parse().unwrap();
    let attacker = key(66);
    let mut received = 0;
    let mut sent = 0;
    for i in 0..5u16 {
        let r = request(
            &def,
            &attacker,
            KeyEncoding::PublicKey,
            victim,
            me,
            20 + i,
            Some(empty_block()),
            ext.to_bytes(),
            true,
        );
        received += r.len();
        n.handle_datagram(t0 + Duration::from_millis(u64::from(i)), victim, r)
            .unwrap();
        sent += drain(&mut n)
            .iter()
            .map(|t| t.contents.len())
            .sum::<usize>();
        assert!(sent <= 3 * received, "request {i}: {sent} for {received}");
    }
    assert!(
        sent > 2 * received,
        "the allowance is used: {sent} for {received}"
    );
    let s = n.sync_status(&def.id()).unwrap();
    assert!(s.stats.responses_full >= 5, "{s:?}");

    // A requester that echoes our cookie is proven and gets the budget it asked for.
    let honest = Network::address(3);
    let peer = key(67);
    n.handle_datagram(
        t0,
        honest,
        request(
            &def,
            &peer,
            KeyEncoding::PublicKey,
            honest,
            me,
            40,
            None,
            ext.to_bytes(),
            true,
        ),
    )
    .unwrap();
    let cookie = drain(&mut n)
        .iter()
        .find_map(|t| match decode(&t.contents, &[]) {
            Some(Builtin::IntroductionResponse(r)) => Extensions::parse(&r.extra)
                .unwrap()
                .get(kind::COOKIE)
                .cloned(),
            _ => None,
        })
        .expect("a cookie");
    let mut echo = Extensions::new();
    echo.push(kind::COOKIE_ECHO, cookie).unwrap();
    echo.push(kind::SYNC_HELLO, hello.encode()).unwrap();
    let r = request(
        &def,
        &peer,
        KeyEncoding::PublicKey,
        honest,
        me,
        41,
        Some(empty_block()),
        echo.to_bytes(),
        true,
    );
    n.handle_datagram(t0, honest, r).unwrap();
    let bytes: usize = drain(&mut n)
        .iter()
        .filter(|t| t.contents[dispersy::wire::MESSAGE_BYTE_OFFSET] == POST.0)
        .map(|t| t.contents.len())
        .sum();
    assert!(
        bytes > 200 * 1024,
        "a proven fast requester gets its budget: {bytes}"
    );
    assert!(bytes <= 256 * 1024);
}

#[test]
fn walker_requests_fit_one_datagram() {
    let def = definition(2);
    let all = corpus(&def, 3_000, 10, 9);
    let mut n = node(9, 0, store_of(&all), true);
    n.set_interfaces(Network::interfaces(0));
    let t0 = Instant::from_secs(1);
    n.join(t0, def.clone()).unwrap();
    n.add_peer(t0, def.id(), Network::address(1)).unwrap();
    n.add_peer(t0, def.id(), Network::address(2)).unwrap();
    let mut at = t0;
    let mut requests = 0;
    for _ in 0..60 {
        at += Duration::from_secs(1);
        n.handle_timeout(at).unwrap();
        for t in drain(&mut n) {
            if let Some(Builtin::IntroductionRequest(r)) = decode(&t.contents, &[]) {
                assert!(t.contents.len() <= 1_232, "{} bytes", t.contents.len());
                // The skip curve may send one without a block; those with one fill the budget.
                if let Some(block) = r.sync {
                    requests += 1;
                    assert!(t.contents.len() + 8 > 1_232, "{} bytes", t.contents.len());
                    assert!(block.bits.len() * 8 >= 7_000);
                }
            }
        }
    }
    assert!(requests >= 2, "{requests}");
}
