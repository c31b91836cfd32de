//! Trackers given by name are resolved and become peers of the communities the node joins.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::*;
use dispersy::store::MemStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_trackers_become_peers() {
    let tracker = start(2, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let port = tracker.local_addrs()[0].port();
    let want: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // "localhost" is resolved from the hosts file: no DNS traffic.
    let mut config = config(&["127.0.0.1:0"]);
    config.trackers.addresses = vec![format!("localhost:{port}")];
    let node = start(1, Box::new(MemStore::new()), config).await;
    let handle = node.handle().clone();
    eventually("the tracker name resolves", || {
        let handle = handle.clone();
        async move { handle.trackers().contains(&want) }
    })
    .await;
    eventually("the tracker is a peer of the joined community", || {
        let handle = handle.clone();
        async move {
            handle
                .call(move |n, _| n.peers(&community()).contains(&want))
                .await
                .unwrap()
        }
    })
    .await;

    // So a new post reaches it.
    handle
        .create_message(community(), POST, text("hello tracker"), Vec::new())
        .await
        .unwrap();
    let th = tracker.handle().clone();
    stores_posts("the tracker stores the post", &th, 1).await;
    assert!(handle.metrics().tracker_lookups >= 1);
    node.shutdown().await.unwrap();
    tracker.shutdown().await.unwrap();
}
