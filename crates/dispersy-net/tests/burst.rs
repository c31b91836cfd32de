//! A burst of thousands of datagrams reaches a node whose store is slow to commit, without loss:
//! the readers keep emptying the kernel's buffer while the node task waits for the disk.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::net::UdpSocket;

const N: usize = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_is_absorbed_by_a_slow_node() {
    let (store, log) = SlowStore::new(Duration::from_millis(50));
    // A kernel buffer far smaller than the burst (5000 datagrams take about 5 MiB of kernel
    // memory): only readers that keep draining it while the node waits can avoid loss.
    let mut config = config(&["127.0.0.1:0"]);
    config.socket_buffer = 1 << 20;
    let node = start(1, Box::new(store), config).await;
    let handle = node.handle().clone();
    let to = node.local_addrs()[0];
    let packets = posts(77, N, to);

    let blaster = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for chunk in packets.chunks(250) {
        for p in chunk {
            blaster.send_to(p, to).await.unwrap();
        }
        // Leave the reader a moment (two shared cores) without ever waiting for the node.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    stores_posts("every post is stored", &handle, N).await;
    let m = handle.metrics();
    assert_eq!(m.received, N as u64, "{m:?}");
    assert_eq!(m.inbound_dropped, 0, "{m:?}");
    // The node saw the posts in bursts, and committed once per burst, not per message.
    assert!(m.largest_burst > 1, "{m:?}");
    let commits = log.commits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(commits < N as u64 / 2, "{commits} commits for {N} messages");
    let stats = handle.stats().await.unwrap();
    assert_eq!(stats.total_drops(), 0, "{stats:?}");
    eprintln!(
        "burst of {N}: {} bursts, largest {}, {commits} commits, receive buffer {}",
        m.bursts,
        m.largest_burst,
        handle.sockets()[0].recv_buffer
    );
    node.shutdown().await.unwrap();
}
