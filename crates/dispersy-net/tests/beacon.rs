//! LAN discovery: a node that hears another's beacon for a community it joined walks to the
//! sender, the sender's beacon socket passes the request on to its node, and the node's answer
//! (from its listen socket) makes it a verified peer. On loopback, with the beacon sent to a
//! known port instead of broadcast.

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
    let a_listen = a.local_addrs()[0];
    let (ha, hb) = (a.handle().clone(), b.handle().clone());

    // b only knows a's beacon socket: a's answer can only come from b's request to it.
    eventually("b walks to a's beacon socket and verifies a", || {
        let hb = hb.clone();
        async move {
            hb.call(move |n, _| n.peers(&community()).contains(&a_listen))
                .await
                .unwrap()
        }
    })
    .await;
    assert!(ha.metrics().beacons_sent >= 1);
    assert!(hb.metrics().beacons_matched >= 1);

    // b's post goes to a.
    hb.create_message(community(), POST, text("found you"), Vec::new())
        .await
        .unwrap();
    stores_posts("a stores b's post", &ha, 1).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
