//! Sync progress over the REST API is the node's: a daemon that joins a community another one
//! already filled catches up, and its `sync` view (community list, community statistics, node
//! statistics) shows the estimate the peer's claim made, then everything held.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use dispersy_cli::daemon::views::{
    CommunityList, CommunityStatsView, CommunityView, Created, StatsView, SyncView,
};
use serde_json::json;

/// Messages the first daemon posts: enough that the second starts a fast catch-up (more than
/// the node's `behind_slack` of 1,000).
const POSTS: usize = 1_500;

fn sync_of(c: &dispersy_cli::client::Client, id: &str) -> Option<SyncView> {
    let list: CommunityList = c.get("/api/v1/communities", &[]).unwrap();
    list.communities.iter().find(|x| x.id == id).map(|x| x.sync)
}

#[test]
fn a_joining_daemon_reports_real_catchup_progress() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Running::start(config(dir_a.path()));
    let ca = a.client();
    let chat: CommunityView = ca
        .post("/api/v1/communities", &json!({ "spec": CHAT }))
        .unwrap()
        .unwrap();
    let path = format!("/api/v1/communities/{}/messages", chat.id);
    for batch in 0..POSTS / 750 {
        let body: Vec<_> = (0..750)
            .map(|i| json!({ "meta": "post", "payload": format!("post {batch}-{i}") }))
            .collect();
        let created: Created = ca.post(&path, &json!(body)).unwrap().unwrap();
        assert_eq!(created.messages.len(), 750);
    }
    let a_sync = sync_of(&ca, &chat.id).unwrap();
    assert!(a_sync.held >= POSTS as u64, "{a_sync:?}");
    // Nobody has claimed anything to A yet.
    assert!(!a_sync.estimated, "{a_sync:?}");
    assert_eq!(a_sync.fraction, 1.0);

    // B walks to A (A is its bootstrap address) and joins with A's description.
    let mut cfg = config(dir_b.path());
    cfg.trackers = a
        .daemon()
        .udp_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let b = Running::start(cfg);
    let cb = b.client();
    let spec = chat.spec.clone().unwrap();
    let joined: CommunityView = cb
        .post("/api/v1/communities/join", &json!({ "spec": spec }))
        .unwrap()
        .unwrap();
    assert_eq!(joined.id, chat.id);

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    let last = loop {
        let s = sync_of(&cb, &chat.id).unwrap();
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        let a_held = sync_of(&ca, &chat.id).unwrap().held;
        if s.estimated && s.held >= a_held {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "B did not catch up: {seen:#?}, A holds {a_held}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("B's progress as polled: {seen:#?}");
    let a_now = sync_of(&ca, &chat.id).unwrap();
    // The estimate is A's claim, not B's own count.
    assert!(last.peers >= 1, "{last:?}");
    assert!(last.extension_peers >= 1, "{last:?}");
    assert!(last.estimate >= a_now.held.min(last.held), "{last:?}");
    assert_eq!(last.fraction, 1.0, "{last:?}");
    assert!(last.peer_global_time >= POSTS as u64, "{last:?}");
    // While B held less than A claimed, its fraction said so: every polled view that was
    // estimated is consistent.
    for s in seen.iter().filter(|s| s.estimated) {
        assert!(s.held <= s.estimate, "{s:?}");
        assert!(
            (s.fraction - s.held as f64 / s.estimate as f64).abs() < 1e-9,
            "{s:?}"
        );
    }
    // A's own view now has B's claim behind it.
    let a_deadline = Instant::now() + Duration::from_secs(30);
    while !sync_of(&ca, &chat.id).unwrap().estimated {
        assert!(Instant::now() < a_deadline, "A never heard B's claim");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The statistics endpoints show the same view.
    let stats: CommunityStatsView = cb
        .get(&format!("/api/v1/communities/{}/stats", chat.id), &[])
        .unwrap();
    assert!(stats.sync.estimated, "{:?}", stats.sync);
    assert!(stats.sync.held >= last.held);
    let node: StatsView = cb.get("/api/v1/stats", &[]).unwrap();
    let s = node.sync.get(&chat.id).unwrap();
    assert!(s.estimated && s.peers >= 1, "{s:?}");
}
