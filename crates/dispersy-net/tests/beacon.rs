//! LAN discovery: a node that hears another's beacon for a community it joined makes the sender
//! a peer, and the beacon socket passes the peer's traffic on to the node. On loopback, with the
//! beacon sent to a known port instead of broadcast.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use dispersy::store::MemStore;
use dispersy_net::beacon::{self, Ports};

fn beacon_config(ports: Vec<u16>) -> beacon::Config {
    beacon::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        destination: "127.0.0.1".parse().unwrap(),
        ports: Ports::List(ports),
        interval: Duration::from_secs(1),
        ..beacon::Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacons_introduce_peers() {
    let mut config_b = config(&["127.0.0.1:0"]);
    config_b.beacon = Some(beacon_config(Vec::new()));
    let b = start(2, Box::new(MemStore::new()), config_b).await;
    let b_beacon = b.handle().beacon_socket().unwrap().local;

    let mut config_a = config(&["127.0.0.1:0"]);
    config_a.beacon = Some(beacon_config(vec![b_beacon.port()]));
    let a = start(1, Box::new(MemStore::new()), config_a).await;
    let a_beacon = a.handle().beacon_socket().unwrap().local;
    let (ha, hb) = (a.handle().clone(), b.handle().clone());

    // b walks to the beacon's sender; a answers from its node socket, so the walk verifies a
    // under one of a's addresses.
    let a_addrs: Vec<_> = a.local_addrs().into_iter().chain([a_beacon]).collect();
    eventually("b walks to a's beacon and verifies a", || {
        let (hb, a_addrs) = (hb.clone(), a_addrs.clone());
        async move {
            hb.call(move |n, _| n.peers(&community()).iter().any(|p| a_addrs.contains(p)))
                .await
                .unwrap()
        }
    })
    .await;
    assert!(ha.metrics().beacons_sent >= 1);
    assert!(hb.metrics().beacons_matched >= 1);

    // b's post goes to a's beacon socket, which hands it to a's node.
    hb.create_message(community(), POST, text("found you"), Vec::new())
        .await
        .unwrap();
    stores_posts("a stores b's post", &ha, 1).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
