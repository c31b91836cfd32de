//! Events are broadcast; a subscriber that falls behind loses the oldest and is told how many.
//! A stored message is reported only once its commit succeeded.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use dispersy::node::Event;
use dispersy::store::MemStore;
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::RecvError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_subscribers_are_told_what_they_lost() {
    let mut config = config(&["127.0.0.1:0"]);
    config.event_capacity = 4;
    let driver = start(1, Box::new(MemStore::new()), config).await;
    let handle = driver.handle().clone();
    let mut slow = handle.subscribe();
    let mut fast = handle.subscribe();
    let to = driver.local_addrs()[0];
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The fast subscriber reads each event before the next post is sent; the slow one never
    // reads.
    for (i, p) in posts(7, 20, to).into_iter().enumerate() {
        sender.send_to(&p, to).await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(30), fast.recv())
            .await
            .unwrap();
        match event {
            Ok(Event::Message(m)) => assert_eq!(untext(&m.payload), format!("message {i}")),
            other => panic!("expected post {i}, got {other:?}"),
        }
    }
    assert_eq!(handle.metrics().events, 20);
    match slow.recv().await {
        Err(RecvError::Lagged(lost)) => assert_eq!(lost, 16),
        other => panic!("expected a lag report, got {other:?}"),
    }
    // After the report, the newest four are still there.
    let Ok(Event::Message(m)) = slow.recv().await else {
        panic!("expected a message")
    };
    assert_eq!(untext(&m.payload), "message 16");
    driver.shutdown().await.unwrap();
}

/// The driver broadcasts events after the input's commit, so an application may take a reported
/// message as durable. A commit that fails must not report the burst's messages: they are
/// withdrawn (and, the writes kept by this store, become stored without being reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_a_failed_commit_are_not_reported() {
    let (store, log) = SlowStore::new(Duration::ZERO);
    let driver = start(2, Box::new(store), config(&["127.0.0.1:0"])).await;
    let handle = driver.handle().clone();
    let mut events = handle.subscribe();
    let to = driver.local_addrs()[0];
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    log.fail.store(true, Ordering::SeqCst);
    for p in posts(7, 20, to) {
        sender.send_to(&p, to).await.unwrap();
    }
    stores_posts("the node takes the posts in", &handle, 20).await;
    assert!(handle.metrics().store_errors >= 1);

    log.fail.store(false, Ordering::SeqCst);
    let after = posts(8, 1, to).remove(0);
    sender.send_to(&after, to).await.unwrap();
    // Events keep their order: the first post reported is the one committed.
    let first = next_message(&mut events, POST).await;
    assert_eq!(
        first.packet, after,
        "a post of the failed commit was reported"
    );
    driver.shutdown().await.unwrap();
}
