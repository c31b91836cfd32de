//! Measurements, not checks (run them by hand, in release):
//!
//! ```text
//! cargo test --release -p dispersy-net --test throughput -- --ignored --nocapture --test-threads 1
//! ```
//!
//! The sender shares the machine with the driver; figures are for loopback and MemStore.
//! Measured on the project's 2-core machine (shared with other builds):
//!
//! | what | figure |
//! |---|---|
//! | datagrams of an unknown community (read, queue, route, drop) | ~99,000/s |
//! | signed posts (batch-verify, store, commit per burst, event) | ~19,700/s, none dropped |
//! | wake-ups of an idle node in one community (interfaces rescanned every 10 s) | 0 per minute |

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use dispersy::store::MemStore;
use dispersy_net::Handle;
use tokio::net::UdpSocket;

/// Sends `packets`, keeping at most `window` ahead of what the node has processed; returns
/// datagrams per second through the node.
async fn pump(handle: &Handle, packets: &[Bytes], window: u64) -> f64 {
    let to = handle.local_addrs()[0];
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let processed = || async { handle.stats().await.unwrap().received.packets };
    let base = processed().await;
    let start = std::time::Instant::now();
    let mut sent = 0u64;
    for chunk in packets.chunks(500) {
        for p in chunk {
            sender.send_to(p, to).await.unwrap();
        }
        sent += chunk.len() as u64;
        while sent - (processed().await - base) > window {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
    tokio::time::timeout(Duration::from_secs(120), async {
        while processed().await - base < sent {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("every datagram reaches the node");
    sent as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn datagrams_per_second() {
    let driver = start(1, Box::new(MemStore::new()), config(&["127.0.0.1:0"])).await;
    let handle = driver.handle().clone();
    let to = driver.local_addrs()[0];

    // Datagrams for a community nobody joined: the cheapest path through driver and node.
    let junk: Vec<Bytes> = (0..200_000u32)
        .map(|i| {
            let mut d = vec![0u8; 100];
            d[0] = 0;
            d[1] = 2;
            d[22..26].copy_from_slice(&i.to_be_bytes());
            Bytes::from(d)
        })
        .collect();
    let rate = pump(&handle, &junk, 8000).await;
    eprintln!("unknown-community datagrams: {rate:.0}/s");

    // Signed posts, verified in batches and stored.
    let posts = posts(9, 20_000, to);
    let rate = pump(&handle, &posts, 8000).await;
    let m = handle.metrics();
    eprintln!(
        "signed posts (verify + store): {rate:.0}/s; {} bursts, largest {}, inbound dropped {}",
        m.bursts, m.largest_burst, m.inbound_dropped
    );
    let stored = handle.call(|n, _| stored(n, POST).len()).await.unwrap();
    assert_eq!(stored, 20_000);
    driver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, takes a minute"]
async fn idle_wakeups_per_minute() {
    let mut config = config(&["127.0.0.1:0", "[::1]:0"]);
    config.interface_scan = Some(Duration::from_secs(10));
    let driver = start(1, Box::new(MemStore::new()), config).await;
    let handle = driver.handle().clone();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = handle.metrics();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = handle.metrics();
    eprintln!(
        "idle node in one community: {} wake-ups in 60 s ({} timer), {} interface scans",
        after.wakeups - before.wakeups,
        after.wakeups_timer - before.wakeups_timer,
        after.interface_scans - before.interface_scans
    );
    driver.shutdown().await.unwrap();
}
