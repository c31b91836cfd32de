//! End to end in a real browser: two daemons on loopback in one community; a post typed into
//! the first node's dashboard appears on the second node's dashboard.
//!
//! Needs Debian's `chromium`, `node` and the browser driver (`npm ci` in `tests/browser`);
//! `scripts/browser-test` installs them. Without them the test is skipped with a message, unless
//! `DISPERSY_REQUIRE_BROWSER=1` (set by CI), which makes it fail.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use dispersy_cli::daemon::views::{CandidateList, CommunityView};
use serde_json::json;

fn missing_tools(dir: &Path) -> Vec<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut missing = Vec::new();
    if !Path::new(&chromium).exists() {
        missing.push(format!("chromium ({chromium})"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node".into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        missing.push(format!("playwright-core (npm ci in {})", dir.display()));
    }
    missing
}

fn wait_verified(run: &Running, community: &str) {
    let start = Instant::now();
    loop {
        let l: CandidateList = run
            .client()
            .get(&format!("/api/v1/communities/{community}/candidates"), &[])
            .unwrap();
        if l.candidates
            .iter()
            .any(|c| c.category == "walk" || c.category == "stumble")
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "peers never verified: {l:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_post_on_one_dashboard_appears_on_another() {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let missing = missing_tools(&browser_dir);
    if !missing.is_empty() {
        let msg = format!(
            "browser test needs {}; run scripts/browser-test",
            missing.join(", ")
        );
        if std::env::var("DISPERSY_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }

    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut ca = config(da.path());
    ca.api.require_token = true;
    let a = Running::start(ca);
    let b = Running::start(config(db.path()));
    let chat: CommunityView = a
        .client()
        .post("/api/v1/communities", &json!({ "spec": CHAT }))
        .unwrap()
        .unwrap();
    let _: Option<CommunityView> = b
        .client()
        .post("/api/v1/communities/join", &json!({ "spec": chat.spec }))
        .unwrap();
    for (from, to) in [(&a, &b), (&b, &a)] {
        let address = to.daemon().udp_addrs()[0].to_string();
        from.client()
            .post::<_, serde_json::Value>(
                &format!("/api/v1/communities/{}/candidates", chat.id),
                &json!({ "address": address }),
            )
            .unwrap();
    }
    wait_verified(&a, &chat.id);
    wait_verified(&b, &chat.id);

    let shots = std::env::var_os("DISPERSY_SCREENSHOTS");
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir.join("dashboard.mjs"))
        .arg(a.daemon().dashboard_url())
        .arg(b.daemon().dashboard_url());
    if let Some(s) = &shots {
        cmd.arg(s);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("appeared on B's"), "{stdout}");
}
