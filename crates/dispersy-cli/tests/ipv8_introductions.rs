//! Introductions across implementations: `dispersy tracker` and a plain Rust node each introduce
//! two py-ipv8 3.2.1 peers to each other, and a py-ipv8 peer introduces two Rust nodes to each
//! other.
//! Every introduced pair must then exchange signed texts directly.
//!
//! Needs the py-ipv8 venv (`scripts/ipv8-venv`); skips without it unless
//! `DISPERSY_REQUIRE_IPV8=1`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod interop;

use std::time::Duration;

use std::net::SocketAddr;

use dispersy::ids::CommunityId;
use interop::{PyPeer, RustNode, TrackerProcess, Witnesses, community_id, python};

/// The py peers walk twice a second and Rust nodes every 5 s; an introduction through a
/// tracker that is walked at most every 57.5 s may need the second node's first request.
const LIMIT: Duration = Duration::from_secs(40);

/// Two py-ipv8 peers that only know the introducer at `at` meet and exchange their texts.
async fn py_peers_meet_through(
    python: &std::path::Path,
    community: CommunityId,
    at: SocketAddr,
    rust: Vec<&RustNode>,
) {
    let at = at.to_string();
    let peer = |name: &'static str| {
        let args = vec![
            "--bootstrap".to_owned(),
            at.clone(),
            "--send".to_owned(),
            format!("hello from {name}"),
        ];
        async move { PyPeer::start(python, name, community, &args).await }
    };
    let (a, b) = tokio::join!(peer("py-a"), peer("py-b"));
    let (a_mid, b_mid) = (a.mid(), b.mid());
    let w = Witnesses {
        py: vec![&a, &b],
        rust,
    };
    w.wait("the py-ipv8 peers list each other", LIMIT, || async {
        a.discovered(&b_mid) && b.discovered(&a_mid)
    })
    .await;
    w.wait("the py-ipv8 peers got each other's text", LIMIT, || async {
        a.texts_from(&b_mid).contains(&"hello from py-b".to_owned())
            && b.texts_from(&a_mid).contains(&"hello from py-a".to_owned())
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_tracker_introduces_py_ipv8_peers() {
    let Some(python) = python() else { return };
    let tracker = TrackerProcess::start(None).await;
    py_peers_meet_through(&python, community_id(11), tracker.address(), Vec::new()).await;
    let exit = tracker.terminate().await;
    assert!(exit.status.success(), "{}", exit.stderr);
    let status = &exit.stopped["status"];
    println!("tracker: {status}");
    assert_eq!(status["tracker"]["communities"], 1, "{status}");
    assert_eq!(status["drops"]["bad-signature"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_node_introduces_py_ipv8_peers() {
    let Some(python) = python() else { return };
    let community = community_id(12);
    let node = RustNode::start("introducer", 12, community, "direct").await;
    py_peers_meet_through(&python, community, node.address(), vec![&node]).await;
    let made = node
        .handle
        .call(move |n, _| n.walker_stats(&community).map(|s| s.introductions_made))
        .await
        .unwrap();
    println!("the Rust introducer made {made:?} introductions");
    assert!(made.is_some_and(|n| n >= 1));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_py_ipv8_peer_introduces_rust_nodes() {
    let Some(python) = python() else { return };
    let community = community_id(13);
    let py = PyPeer::start(&python, "py-introducer", community, &[]).await;
    let r1 = RustNode::start("rust-1", 131, community, "direct").await;
    let r2 = RustNode::start("rust-2", 132, community, "direct").await;
    for r in [&r1, &r2] {
        r.handle.add_peer(community, py.address()).await.unwrap();
    }
    let (m1, m2) = (r1.mid().await, r2.mid().await);
    let w = Witnesses {
        py: vec![&py],
        rust: vec![&r1, &r2],
    };
    w.wait("the Rust nodes verified each other", LIMIT, || async {
        r1.verified(m2).await && r2.verified(m1).await
    })
    .await;
    r1.send("hello from rust-1").await;
    r2.send("hello from rust-2").await;
    w.wait("the Rust nodes got each other's text", LIMIT, || async {
        r1.texts_from(m2).contains(&"hello from rust-2".to_owned())
            && r2.texts_from(m1).contains(&"hello from rust-1".to_owned())
    })
    .await;
    let introduced = r1
        .handle
        .call(move |n, _| n.walker_stats(&community).map(|s| s.introductions_received))
        .await
        .unwrap();
    println!("rust-1 accepted {introduced:?} introductions");
    py.stop().await;
    r1.stop().await;
    r2.stop().await;
}
