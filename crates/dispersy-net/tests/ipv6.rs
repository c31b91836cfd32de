//! IPv6 loopback, and one driver listening on both address families.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dispersy::store::MemStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_and_dual_stack() {
    // Both families on the same port: the IPv6 socket is IPv6-only.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let dual = start(
        1,
        Box::new(MemStore::new()),
        config(&[&format!("127.0.0.1:{port}"), &format!("[::1]:{port}")]),
    )
    .await;
    let sockets = dual.handle().sockets().to_vec();
    assert_eq!(sockets.len(), 2);
    assert!(sockets[0].local.is_ipv4() && sockets[1].local.is_ipv6());
    assert_eq!(sockets[0].local.port(), sockets[1].local.port());

    let v6 = start(2, Box::new(MemStore::new()), config(&["[::1]:0"])).await;
    let v4 = start(3, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let (h6, h4, hd) = (
        v6.handle().clone(),
        v4.handle().clone(),
        dual.handle().clone(),
    );

    // Each datagram goes out on the socket of its destination's family.
    hd.create_message(
        community(),
        POST,
        text("to both"),
        vec![v6.local_addrs()[0], v4.local_addrs()[0]],
    )
    .await
    .unwrap();
    for (name, h) in [("v6", &h6), ("v4", &h4)] {
        stores_posts(&format!("{name} stores the post"), h, 1).await;
    }

    // And back over IPv6 only.
    h6.create_message(community(), POST, text("from v6"), vec![sockets[1].local])
        .await
        .unwrap();
    stores_posts("dual stores the v6 post", &hd, 2).await;
    let sources = hd
        .call(|n, _| {
            let peers = n.peers(&community());
            peers.iter().all(|p| p.is_ipv6())
        })
        .await
        .unwrap();
    assert!(sources, "the v6 sender is known by its IPv6 address");

    // A destination of a family with no socket is counted, not sent.
    h6.create_message(
        community(),
        POST,
        text("nowhere"),
        vec!["127.0.0.1:9".parse().unwrap()],
    )
    .await
    .unwrap();
    eventually("the IPv4 target is counted", || {
        let h6 = h6.clone();
        async move { h6.metrics().send_no_socket >= 1 }
    })
    .await;

    for d in [dual, v6, v4] {
        d.shutdown().await.unwrap();
    }
}
