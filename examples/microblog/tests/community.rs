//! Three microblog nodes on the in-process network: posts, replies and likes reach everyone,
//! profiles keep only the newest, a moderator the founder appoints hides a post everywhere, and
//! malformed content never leaves the author.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dispersy::community::payload::Payload;
use dispersy::crypto::PrivateKey;
use dispersy::node::{CommandError, Config, Node};
use dispersy::store::MemStore;
use dispersy::testing::Network;
use microblog::{LIKE, Like, POST, PROFILE, Post, Profile, REPLY, Reply, Timeline};
use rand::SeedableRng;

fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

#[test]
fn a_conversation_converges_and_moderators_moderate() {
    let mut net = Network::new(7);
    for seed in 0..3 {
        let config = Config {
            seed,
            ..Config::default()
        };
        net.add(Node::new(config, key(seed), Box::new(MemStore::new())));
    }
    // Node 0 founds the community (the node generates the master key); the others join.
    let founded = net
        .with(0, |n, now| {
            n.found(now, |master| Ok(microblog::definition(master)))
        })
        .unwrap();
    let def = microblog::definition(founded.master.public().clone());
    let c = def.id();
    for i in 1..3 {
        net.with(i, |n, now| n.join(now, def.clone())).unwrap();
    }
    for i in 0..3 {
        for j in (0..3).filter(|j| *j != i) {
            net.with(i, |n, now| n.add_peer(now, c, Network::address(j)))
                .unwrap();
        }
    }
    net.run_for(Duration::from_secs(15));

    let create = |net: &mut Network, i: usize, meta, bytes: Vec<u8>| {
        net.with(i, |n, now| n.create_message(now, c, meta, &bytes, &[]))
            .unwrap()
            .id()
            .unwrap()
    };
    for (i, name) in ["ada", "bob", "cy"].into_iter().enumerate() {
        create(
            &mut net,
            i,
            PROFILE,
            Profile::new(name, "").unwrap().to_bytes(),
        );
    }
    let post = create(
        &mut net,
        0,
        POST,
        Post::new("hello, world").unwrap().to_bytes(),
    );
    net.run_for(Duration::from_secs(1));
    create(
        &mut net,
        1,
        REPLY,
        Reply::new(post, "hi ada").unwrap().to_bytes(),
    );
    create(&mut net, 2, LIKE, Like { to: post }.to_bytes());
    create(&mut net, 1, LIKE, Like { to: post }.to_bytes());
    // A new profile replaces the old one everywhere (last sync, history 1).
    create(
        &mut net,
        2,
        PROFILE,
        Profile::new("cy2", "renamed").unwrap().to_bytes(),
    );
    net.run_for(Duration::from_secs(1));

    let feeds: Vec<Timeline> = (0..3)
        .map(|i| net.with(i, |n, _| Timeline::read(n, &c)).unwrap())
        .collect();
    for feed in &feeds {
        assert_eq!(feed, &feeds[0], "every node shows the same feed");
    }
    let feed = &feeds[0];
    assert_eq!(feed.entries.len(), 1);
    let entry = &feed.entries[0];
    assert_eq!(entry.author.as_deref(), Some("ada"));
    assert_eq!(entry.likes, 2);
    assert_eq!(entry.replies.len(), 1);
    assert_eq!(entry.replies[0].1.as_deref(), Some("bob"));
    let names: Vec<&str> = feed.profiles.values().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"cy2") && !names.contains(&"cy"),
        "{names:?}"
    );

    // Moderation: bob (node 1) cannot undo cy's post until the founder makes him a moderator.
    let spam = create(&mut net, 2, POST, Post::new("buy now").unwrap().to_bytes());
    net.run_for(Duration::from_secs(1));
    let refused = net.with(1, |n, now| n.undo(now, c, spam));
    assert!(
        matches!(refused, Err(CommandError::NotPermitted(_))),
        "{refused:?}"
    );
    let grants = microblog::moderator_grants();
    net.with(0, |n, now| n.authorize(now, c, key(1).public(), &grants))
        .unwrap();
    net.run_for(Duration::from_secs(1));
    net.with(1, |n, now| n.undo(now, c, spam)).unwrap();
    net.run_for(Duration::from_secs(1));
    for i in 0..3 {
        let feed = net.with(i, |n, _| Timeline::read(n, &c)).unwrap();
        assert_eq!(feed.entries.len(), 1, "node {i} hides the undone post");
        assert_eq!(feed.entries[0].id, post);
    }

    // Content that breaks the rules is refused before it is signed.
    let mut long = Vec::new();
    dispersy::wire::codec::put_varlen_h(&mut long, "x".repeat(300).as_bytes());
    let refused = net.with(0, |n, now| n.create_message(now, c, POST, &long, &[]));
    assert!(
        matches!(refused, Err(CommandError::BadPayload(_))),
        "{refused:?}"
    );
}
