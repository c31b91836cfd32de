//! Events are broadcast; a subscriber that falls behind loses the oldest and is told how many.

#![allow(clippy::unwrap_used)]

mod common;

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
