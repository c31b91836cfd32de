//! Graceful shutdown: queued input is processed, the store is committed, the node comes back,
//! and the handles learn that the driver stopped.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use dispersy::store::MemStore;
use dispersy_net::Error;
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::RecvError;

const N: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_the_node_committed() {
    // Commits are slow, so posts are still queued when the shutdown begins.
    let (store, log) = SlowStore::new(Duration::from_millis(30));
    let driver = start(1, Box::new(store), config(&["127.0.0.1:0"])).await;
    let handle = driver.handle().clone();
    let mut events = handle.subscribe();
    let to = driver.local_addrs()[0];
    let blaster = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for p in posts(5, N, to) {
        blaster.send_to(&p, to).await.unwrap();
    }
    eventually("the readers took every datagram", || {
        let handle = handle.clone();
        async move { handle.metrics().received == N as u64 }
    })
    .await;

    let stopped = driver.shutdown().await.unwrap();
    let m = handle.metrics();
    assert_eq!(m.inbound_dropped, 0, "{m:?}");
    // Everything the readers had queued was processed and committed.
    assert_eq!(stored(&stopped.node, POST).len(), N);
    assert_eq!(log.pending.load(Ordering::SeqCst), 0, "uncommitted writes");
    assert_eq!(
        log.committed_messages.load(Ordering::SeqCst),
        N as u64 + 1,
        "the posts and our identity are committed"
    );
    assert!(stopped.now > dispersy::time::Instant::ZERO);

    // The handles and subscribers learn the driver is gone.
    assert!(handle.is_stopped());
    assert!(matches!(
        handle
            .create_message(community(), POST, text("late"), Vec::new())
            .await,
        Err(Error::Stopped)
    ));
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Err(RecvError::Closed) => return true,
                Err(RecvError::Lagged(_)) | Ok(_) => {}
            }
        }
    })
    .await
    .unwrap();
    assert!(closed);
    assert!(matches!(
        handle.subscribe().recv().await,
        Err(RecvError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_data_and_time() {
    let first = start(2, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    first
        .handle()
        .create_message(community(), POST, text("before"), Vec::new())
        .await
        .unwrap();
    let stopped = first.shutdown().await.unwrap();
    let mut config = config(&["127.0.0.1:0"]);
    config.clock_origin = stopped.now;
    let second = dispersy_net::Driver::start(stopped.node, config).unwrap();
    assert!(
        second.handle().now() >= stopped.now,
        "time does not go back"
    );
    let n = second
        .handle()
        .call(|n, _| stored(n, POST).len())
        .await
        .unwrap();
    assert_eq!(n, 1);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handle_can_stop_the_driver() {
    let driver = start(3, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let handle = driver.handle().clone();
    tokio::spawn(async move { handle.shutdown().await });
    let stopped = tokio::time::timeout(Duration::from_secs(30), driver.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.node.communities().count(), 1);
}

/// A runtime dropped under a running driver (an application that returns early, a failing
/// test) while something still holds a handle: the node task, on a thread of its own, stops
/// without touching the runtime's timers (polling one then panics) and commits the store.
#[test]
fn a_runtime_dropped_under_a_running_driver_stops_it() {
    for round in 0..6 {
        let (store, log) = SlowStore::new(Duration::ZERO);
        let runtime = if round % 2 == 0 {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        let handle = runtime.block_on(async {
            let driver = start(4, Box::new(store), config(&["127.0.0.1:0"])).await;
            driver.handle().clone()
        });
        let commits = log.commits.load(Ordering::SeqCst);
        // Waits for the node task, which runs on the runtime's blocking pool.
        drop(runtime);
        assert_eq!(
            log.commits.load(Ordering::SeqCst),
            commits + 1,
            "round {round}: the node task stopped through its final commit"
        );
        assert!(handle.is_stopped());
    }
}
