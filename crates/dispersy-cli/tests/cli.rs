//! The `dispersy` binary for people: `node` with JSON logs and a clean stop on SIGTERM, and
//! `post`, `messages`, `peers`, `status` against a running node.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use dispersy_cli::daemon::views::{CommunityView, MessageView};
use serde_json::{Value, json};

fn dispersy(api: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dispersy"))
        .args(args)
        .env("DISPERSY_API", api)
        .env("DISPERSY_DATA_DIR", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn client_commands() {
    let dir = tempfile::tempdir().unwrap();
    let run = Running::start(config(dir.path()));
    let api = run.daemon().api_url();

    let (ok, _, err) = dispersy(&api, &["post", "hello"]);
    assert!(!ok);
    assert!(err.contains("hosts no community"), "{err}");
    let chat: CommunityView = run
        .client()
        .post("/api/v1/communities", &json!({ "spec": CHAT }))
        .unwrap()
        .unwrap();

    let (ok, out, err) = dispersy(&api, &["post", "hello", "world"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("posted ") && out.contains("in chat"),
        "{out}"
    );
    let (ok, out, err) = dispersy(&api, &["post", "-c", "chat", "--json", "--hex", "6869"]);
    assert!(ok, "{err}");
    let m: MessageView = serde_json::from_str(&out).unwrap();
    assert_eq!(m.text.as_deref(), Some("hi"));
    let (ok, _, err) = dispersy(&api, &["post", "-c", "nope", "x"]);
    assert!(!ok);
    assert!(err.contains("no community \"nope\""), "{err}");
    let (ok, _, err) = dispersy(&api, &["post", "-m", "nope", "x"]);
    assert!(!ok);
    assert!(err.contains("no message type"), "{err}");

    let (ok, out, err) = dispersy(&api, &["messages"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{out}");
    assert!(
        lines[1].ends_with("hello world") && lines[2].ends_with("hi"),
        "{out}"
    );
    let (ok, out, _) = dispersy(&api, &["messages", "--json", "-n", "1"]);
    assert!(ok);
    let last: MessageView = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(last.text.as_deref(), Some("hi"));
    let (ok, out, _) = dispersy(&api, &["messages", "--all", "--json"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 2);

    let (ok, out, err) = dispersy(&api, &["status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&run.daemon().udp_addrs()[0].to_string()),
        "{out}"
    );
    assert!(
        out.contains("chat") && out.contains(&chat.id[..8]) && out.contains("founder"),
        "{out}"
    );
    let (ok, out, _) = dispersy(&api, &["status", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["communities"][0]["id"], chat.id);

    run.client()
        .post::<_, Value>(
            &format!("/api/v1/communities/{}/candidates", chat.id),
            &json!({ "address": "127.0.0.1:9" }),
        )
        .unwrap();
    let (ok, out, err) = dispersy(&api, &["peers"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("127.0.0.1:9") && out.contains("discovered"),
        "{out}"
    );

    // Alone, the node cannot know what its peers hold: a bounded wait gives up and says why.
    let (ok, _, err) = dispersy(&api, &["status", "--wait-sync", "--timeout", "1"]);
    assert!(!ok);
    assert!(
        err.contains("not in sync yet") && err.contains("chat has no estimate"),
        "{err}"
    );

    let (ok, _, err) = dispersy("http://127.0.0.1:9", &["status"]);
    assert!(!ok);
    assert!(err.contains("cannot reach the node's API"), "{err}");
}

#[test]
fn node_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispersy"))
        .args([
            "node",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut api = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line).expect("every log line is JSON");
        if v["fields"]["message"] == "node started" {
            api = v["fields"]["api"].as_str().map(str::to_owned);
            break;
        }
    }
    let api = format!("http://{}", api.expect("the node logs its API address"));
    let (ok, out, err) = dispersy(&api, &["status", "--json"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"member\""));
    assert!(dir.path().join("member.key").exists() && dir.path().join("dispersy.db").exists());

    let pid = i32::try_from(child.id()).unwrap();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("node stopped")), "{rest:?}");
}

/// `dispersy node --data DIR --bootstrap ADDR` (the names the walker issue uses) are the same
/// as `--data-dir` and `--tracker`.
#[test]
fn node_takes_data_and_bootstrap_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node-data");
    let out = Command::new(env!("CARGO_BIN_EXE_dispersy"))
        .args(["node", "--data"])
        .arg(&data)
        .args(["--bootstrap", "tracker.example:6421", "--print-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("tracker.example:6421"), "{printed}");
    assert!(printed.contains("node-data"), "{printed}");
}
