//! A driver without traffic wakes only for the node's timers: no polling, no ticking.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use dispersy::node::{Config as NodeConfig, Node};
use dispersy::store::MemStore;
use dispersy_net::{Driver, Metrics};
use tokio::net::UdpSocket;

fn explained(m: &Metrics) -> u64 {
    m.wakeups_datagrams
        + m.wakeups_commands
        + m.wakeups_timer
        + m.wakeups_writable
        + m.wakeups_trackers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_driver_does_not_wake() {
    // Interface rescans run (every second) but do not wake the node task.
    let mut config = config(&["127.0.0.1:0", "[::1]:0"]);
    config.interface_scan = Some(Duration::from_secs(1));
    let driver = Driver::start(node(1, Box::new(MemStore::new())), config).unwrap();
    let handle = driver.handle().clone();
    // Let the start settle, then watch for three seconds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = handle.metrics();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = handle.metrics();
    eprintln!("idle: {} wake-ups in 3 s", after.wakeups - before.wakeups);
    assert_eq!(after.wakeups, before.wakeups, "{before:?}\n{after:?}");
    assert!(after.interface_scans >= 1, "{after:?}");
    driver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_wake_the_node_when_due_and_not_before() {
    // A message from an unknown member waits (here 300 ms) for its identity, which never comes.
    let node_config = NodeConfig {
        seed: 2,
        delay_timeout: Duration::from_millis(300),
        ..NodeConfig::default()
    };
    let node = Node::new(node_config, key(2), Box::new(MemStore::new()));
    let driver = Driver::start(node, config(&["127.0.0.1:0"])).unwrap();
    let handle = driver.handle().clone();
    handle.join(definition()).await.unwrap();
    let to = driver.local_addrs()[0];
    let note = messages(9, NOTE, 1, to).remove(0);
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sender.send_to(&note, to).await.unwrap();

    eventually("the note is delayed", || {
        let handle = handle.clone();
        async move {
            handle
                .call(|n, _| n.delayed_count(&community()))
                .await
                .unwrap()
                == 1
        }
    })
    .await;
    // The walk's first step may wake the node first (it is staggered over a second).
    eventually("the note expires on the node's timer", || {
        let handle = handle.clone();
        async move {
            handle
                .call(|n, _| n.stats().drops.contains_key("delay-timeout"))
                .await
                .unwrap()
        }
    })
    .await;
    assert!(handle.metrics().wakeups_timer >= 1);
    let expired = handle
        .call(|n, _| {
            (
                n.delayed_count(&community()),
                n.stats().drops.get("delay-timeout").copied(),
            )
        })
        .await
        .unwrap();
    assert_eq!(expired, (0, Some(1)));

    // Every wake-up had a cause, and no timer fired early or had to be postponed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m = handle.metrics();
    assert_eq!(m.wakeups, explained(&m), "{m:?}");
    assert_eq!((m.timer_early, m.timer_clamped), (0, 0), "{m:?}");
    // The node asked the sender for the identity: that went out too.
    assert!(m.sent >= 1, "{m:?}");
    driver.shutdown().await.unwrap();
}
