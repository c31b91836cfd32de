//! Three microblog nodes on loopback UDP in this process: they find each other, post, reply,
//! like and set their profiles, and each prints the feed it ends up with.
//!
//! Run with `cargo run -p microblog`.

// An example program: printing is what it is for.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use dispersy::community::payload::Payload;
use dispersy::crypto::PrivateKey;
use dispersy::node::{Config as NodeConfig, Node};
use dispersy::store::MemStore;
use dispersy_net::{Config, Driver};
use microblog::{LIKE, Like, POST, PROFILE, Post, Profile, REPLY, Reply, Timeline};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut rng = rand::rngs::OsRng;
    let mut nodes = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let key = PrivateKey::generate(&mut rng);
        keys.push(key.public().clone());
        let node = Node::new(NodeConfig::default(), key, Box::new(MemStore::new()));
        let driver = Driver::start(
            node,
            Config {
                listen: vec!["127.0.0.1:0".parse()?],
                ..Config::default()
            },
        )?;
        nodes.push(driver);
    }
    // Node 0 founds the community: the node makes the master key and grants itself the
    // founder's permissions. A real application keeps the master key safe (the daemon keeps it
    // in its data directory, mode 0600).
    let founded = nodes[0]
        .handle()
        .call(|n, now| n.found(now, |master| Ok(microblog::definition(master))))
        .await??;
    let def = microblog::definition(founded.master.public().clone());
    let c = def.id();
    for d in &nodes[1..] {
        d.handle().join(def.clone()).await?;
    }
    // Each node learns the others' addresses; the walk verifies them.
    let addrs: Vec<_> = nodes.iter().map(|d| d.local_addrs()[0]).collect();
    for (i, d) in nodes.iter().enumerate() {
        let me = addrs[i];
        d.handle()
            .call(move |n, _| {
                n.set_interfaces(dispersy::walker::LocalInterfaces {
                    bound: me,
                    interfaces: vec![dispersy::walker::Interface::new(me.ip(), 8)],
                })
            })
            .await?;
        for (j, a) in addrs.iter().enumerate() {
            if i != j {
                d.handle().add_peer(c, *a).await?;
            }
        }
    }
    let start = Instant::now();
    loop {
        let mut ready = true;
        for d in &nodes {
            ready &= d.handle().call(move |n, _| n.peers(&c).len()).await? >= 2;
        }
        if ready {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "peers never verified"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "3 nodes verified each other in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let h = |i: usize| nodes[i].handle().clone();
    for (i, name) in ["ada", "bob", "cy"].into_iter().enumerate() {
        let p = Profile::new(name, format!("node {i}"))?;
        h(i).create_message(c, PROFILE, p.to_bytes(), Vec::new())
            .await?;
    }
    let post = h(0)
        .create_message(
            c,
            POST,
            Post::new("hello, decentralized world")?.to_bytes(),
            Vec::new(),
        )
        .await?
        .id()
        .context("posts are signed")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = Reply::new(post, "welcome, ada")?;
    h(1).create_message(c, REPLY, reply.to_bytes(), Vec::new())
        .await?;
    h(2).create_message(c, LIKE, Like { to: post }.to_bytes(), Vec::new())
        .await?;
    // Moderation: the founder makes bob (node 1) a moderator; bob hides cy's spam everywhere.
    let bob = keys[1].clone();
    let grants = microblog::moderator_grants();
    h(0).call(move |n, now| n.authorize(now, c, &bob, &grants))
        .await??;
    let spam = h(2)
        .create_message(
            c,
            POST,
            Post::new("buy cheap tokens")?.to_bytes(),
            Vec::new(),
        )
        .await?
        .id()
        .context("posts are signed")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h(1).call(move |n, now| n.undo(now, c, spam)).await??;
    println!("bob (a moderator) undid cy's post \"buy cheap tokens\"");
    tokio::time::sleep(Duration::from_millis(500)).await;

    for (i, d) in nodes.iter().enumerate() {
        let feed = d.handle().call(move |n, _| Timeline::read(n, &c)).await??;
        println!("node {i} sees:");
        for e in &feed.entries {
            println!(
                "  {}: {}  ({} likes)",
                e.author.as_deref().unwrap_or("?"),
                e.post.text,
                e.likes
            );
            for (_, who, r) in &e.replies {
                println!("    \u{21b3} {}: {}", who.as_deref().unwrap_or("?"), r.text);
            }
        }
    }
    for d in nodes {
        d.shutdown().await?;
    }
    Ok(())
}
