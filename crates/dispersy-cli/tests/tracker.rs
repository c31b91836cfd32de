//! `dispersy tracker`: two Rust nodes that only know the tracker meet through it; the tracker
//! logs its status, stops cleanly on SIGTERM with its final counters, and keeps its identity in
//! the key file across runs.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod interop;

use std::time::Duration;

use interop::{RustNode, TrackerProcess, Witnesses, community_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_nodes_meet_through_the_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("tracker.key");
    let tracker = TrackerProcess::start(Some(&key)).await;
    let mid = tracker.mid();
    assert_eq!(dispersy_net::keyfile::load(&key).unwrap().member_id(), mid);

    let community = community_id(40);
    let a = RustNode::start("a", 41, community, "direct").await;
    let b = RustNode::start("b", 42, community, "direct").await;
    for n in [&a, &b] {
        n.add_bootstrap(tracker.address()).await;
    }
    let (ma, mb) = (a.mid().await, b.mid().await);
    let w = Witnesses {
        py: Vec::new(),
        rust: vec![&a, &b],
    };
    w.wait(
        "a and b verified each other",
        Duration::from_secs(40),
        || async { a.verified(mb).await && b.verified(ma).await },
    )
    .await;
    a.stop().await;
    b.stop().await;

    tokio::time::sleep(Duration::from_millis(1100)).await; // one status line at least
    let exit = tracker.terminate().await;
    assert!(exit.status.success(), "{}", exit.stderr);
    assert!(exit.stderr.contains("tracker status"), "{}", exit.stderr);
    let status = &exit.stopped["status"];
    println!("tracker: {status}");
    assert_eq!(status["tracker"]["communities"], 1, "{status}");
    assert!(
        status["received"]["packets"].as_u64().unwrap() >= 2,
        "{status}"
    );

    // The same key file, the same identity.
    let again = TrackerProcess::start(Some(&key)).await;
    assert_eq!(again.mid(), mid);
    assert!(again.terminate().await.status.success());
}
