//! Trackers given by name are resolved and become bootstrap addresses of the communities the
//! node joins; the node learns its LAN address from the driver.

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

    let (bootstrap, lan) = handle
        .call(|n, _| {
            let status = n.walker_status();
            (status.bootstrap, status.addresses[0].lan)
        })
        .await
        .unwrap();
    assert_eq!(bootstrap, [want], "a bootstrap address, not a plain peer");
    assert_eq!(
        lan,
        node.local_addrs()[0],
        "the bound address is our LAN address"
    );

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
