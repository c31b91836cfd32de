//! Two drivers in one community exchange messages over IPv4 loopback.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dispersy::store::MemStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_messages() {
    let a = start(1, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let b = start(2, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let (ha, hb) = (a.handle().clone(), b.handle().clone());
    let (addr_a, addr_b) = (a.local_addrs()[0], b.local_addrs()[0]);
    assert_ne!(addr_a.port(), 0, "the bound port is reported");
    // a walks to b at once; the answer makes each a verified peer of the other, so new
    // messages are pushed between them.
    ha.add_peer(community(), addr_b).await.unwrap();
    ha.call(move |node, now| node.walk_to(now, community(), addr_b))
        .await
        .unwrap()
        .unwrap();
    eventually("a and b verify each other", || {
        let (ha, hb) = (ha.clone(), hb.clone());
        async move {
            let ab = ha
                .call(move |n, _| n.peers(&community()).contains(&addr_b))
                .await
                .unwrap();
            let ba = hb
                .call(move |n, _| n.peers(&community()).contains(&addr_a))
                .await
                .unwrap();
            ab && ba
        }
    })
    .await;
    let mut events_b = hb.subscribe();
    let mut events_a = ha.subscribe();

    // A full-sync post through the typed command, a direct chat through the generic closure.
    ha.create_message(community(), POST, text("hello b"), Vec::new())
        .await
        .unwrap();
    hb.call(move |node, now| node.create_message(now, community(), CHAT, &text("hi a"), &[addr_a]))
        .await
        .unwrap()
        .unwrap();

    let got_b = next_message(&mut events_b, POST).await;
    assert_eq!(untext(&got_b.payload), "hello b");
    assert_eq!(got_b.source, Some(addr_a));

    let got_a = next_message(&mut events_a, CHAT).await;
    assert_eq!(untext(&got_a.payload), "hi a");

    let stored_b = hb.call(|node, _| stored(node, POST).len()).await.unwrap();
    assert_eq!(stored_b, 1);
    let m = ha.metrics();
    assert!(m.sent >= 1 && m.received >= 1, "{m:?}");
    assert_eq!(
        m.inbound_dropped + m.send_errors + m.send_no_socket,
        0,
        "{m:?}"
    );

    let stopped = a.shutdown().await.unwrap();
    assert_eq!(stored(&stopped.node, POST).len(), 1);
    b.shutdown().await.unwrap();
}

/// The same exchange on a current-thread runtime: the node task runs on its own thread while
/// the runtime's only thread drives the sockets and timers.
#[tokio::test]
async fn current_thread_runtime_works() {
    let a = start(3, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let b = start(4, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let hb = b.handle().clone();
    a.handle()
        .create_message(community(), POST, text("x"), vec![b.local_addrs()[0]])
        .await
        .unwrap();
    stores_posts("b stores the post", &hb, 1).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
