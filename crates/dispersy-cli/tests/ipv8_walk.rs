//! A py-ipv8 3.2.1 peer and a Rust node find each other through the walk, whichever of the two
//! knows the other's address, and each accepts the other's signed text messages (byte 1, full
//! key, global time, `varlenH` text), in a direct and in a full-sync community.
//!
//! Needs the py-ipv8 venv (`scripts/ipv8-venv`); skips without it unless
//! `DISPERSY_REQUIRE_IPV8=1`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod interop;

use std::time::Duration;

use interop::{PyPeer, RustNode, Witnesses, community_id, python};

/// How long discovery and delivery may take. The Rust walker steps every 5 s (its first step
/// is staggered over one interval) and py-ipv8 walks twice a second, so both directions take a
/// few seconds; the margin is for a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

/// One pair: the py peer and the Rust node find each other and exchange a text each way.
/// `py_knows_rust`: the py peer bootstraps to the Rust node (else the Rust node walks to it).
async fn pair(tag: u8, distribution: &str, py_knows_rust: bool) {
    let Some(python) = python() else { return };
    let community = community_id(tag);
    let rust = RustNode::start("rust", u64::from(tag), community, distribution).await;
    let mut args = vec!["--send".to_owned(), "hello from py-ipv8".to_owned()];
    if py_knows_rust {
        args.push("--bootstrap".into());
        args.push(rust.address().to_string());
    }
    let py = PyPeer::start(&python, "py", community, &args).await;
    if !py_knows_rust {
        rust.handle.add_peer(community, py.address()).await.unwrap();
    }
    let (py_mid, rust_mid) = (py.mid(), rust.mid().await);
    let w = Witnesses {
        py: vec![&py],
        rust: vec![&rust],
    };
    let how = if py_knows_rust {
        "py-ipv8 walks to the Rust node"
    } else {
        "the Rust node walks to py-ipv8"
    };
    println!("{distribution}, {how}:");
    w.wait("the Rust node verified the py-ipv8 peer", LIMIT, || {
        rust.verified(py_mid)
    })
    .await;
    w.wait("the py-ipv8 peer lists the Rust node", LIMIT, || async {
        py.discovered(&rust_mid)
    })
    .await;

    rust.send("hello from rust").await;
    w.wait("py-ipv8 accepted the Rust text", LIMIT, || async {
        py.texts_from(&rust_mid)
            .contains(&"hello from rust".to_owned())
    })
    .await;
    w.wait("the Rust node accepted the py-ipv8 text", LIMIT, || async {
        rust.texts_from(py_mid)
            .contains(&"hello from py-ipv8".to_owned())
    })
    .await;
    py.stop().await;
    rust.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_ipv8_walks_to_a_rust_node_direct_messages() {
    pair(1, "direct", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_node_walks_to_py_ipv8_direct_messages() {
    pair(2, "direct", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_ipv8_and_a_rust_node_full_sync_messages() {
    pair(3, "full-sync", false).await;
}
