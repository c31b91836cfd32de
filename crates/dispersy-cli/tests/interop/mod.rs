//! Shared pieces of the py-ipv8 interop tests: the venv, py-ipv8 peers run from
//! `scripts/ipv8_peer.py` and read through their JSON-line events, Rust nodes on the tokio driver
//! in the same declared community, and bounded waiting that explains a failure.
//!
//! The tests need `scripts/ipv8-venv` (pyipv8 3.2.1 from PyPI the first time). When it cannot be
//! made they skip with a message, unless `DISPERSY_REQUIRE_IPV8=1` (set by CI), which makes them
//! fail.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dispersy::community::payload::Layout;
use dispersy::community::spec::CommunitySpec;
use dispersy::crypto::PrivateKey;
use dispersy::ids::{CommunityId, MemberId, MetaId};
use dispersy::node::{Config as NodeConfig, Event, Node};
use dispersy::store::MemStore;
use dispersy::walker::Category;
use dispersy_net::{Driver, Handle};
use rand::SeedableRng;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The message byte of the interop text message (ipv8_peer.py's `TextPayload`).
pub const TEXT: MetaId = MetaId(1);

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, made once per test process; `None` (after printing why) when the tests
/// should skip.
pub fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let out = std::process::Command::new(repo().join("scripts/ipv8-venv"))
            .arg("--quiet")
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run scripts/ipv8-venv: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/ipv8-venv failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(PathBuf::from(path))
    });
    match found {
        Ok(p) => Some(p.clone()),
        Err(why) if std::env::var("DISPERSY_REQUIRE_IPV8").is_ok_and(|v| v == "1") => {
            panic!("DISPERSY_REQUIRE_IPV8=1 but the py-ipv8 venv is unavailable: {why}")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED: py-ipv8 interop test: {why} (set DISPERSY_REQUIRE_IPV8=1 to fail instead)"
            );
            None
        }
    }
}

/// A fresh community id for one test (py-ipv8 peers and Rust nodes share only the id).
pub fn community_id(tag: u8) -> CommunityId {
    let mut id = [0x1e; 20];
    id[0] = 0x1e;
    id[19] = tag;
    CommunityId(id)
}

/// The declared community matching ipv8_peer.py's: version 2, byte 1 signed with the full key,
/// a global time, a `varlenH` text; direct, to every verified peer.
pub fn spec(community: CommunityId, distribution: &str) -> CommunitySpec {
    CommunitySpec::from_toml(&format!(
        r#"
name = "interop"
community = "{community}"
version = 2

[[message]]
name = "text"
byte = 1
authentication = "member"
distribution = "{distribution}"
destination = "community"
payload = "text"
"#
    ))
    .unwrap()
}

/// A test key.
pub fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// A py-ipv8 peer process and everything it printed.
pub struct PyPeer {
    pub name: String,
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl PyPeer {
    /// Starts `ipv8_peer.py` on 127.0.0.1 with an ephemeral port and waits for its `started`
    /// event. `extra` are more arguments (`--bootstrap`, `--send`, `--tracker` ...).
    pub async fn start(
        python: &Path,
        name: &str,
        community: CommunityId,
        extra: &[String],
    ) -> Self {
        let mut child = Command::new(python)
            .arg(repo().join("scripts/ipv8_peer.py"))
            .args(["--community", &community.to_hex()])
            .args(["--bind", "127.0.0.1", "--port", "0", "--duration", "120"])
            .args(["--name", name])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = events.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let mut lines = sink.lock().unwrap();
                if lines.len() < 10_000 {
                    lines.push(line);
                }
            }
        });
        let peer = PyPeer {
            name: name.to_owned(),
            child,
            events,
            stderr,
        };
        let started = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if peer.event("started").is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            started.is_ok(),
            "py-ipv8 peer {name} did not start:\n{}",
            peer.diagnostics()
        );
        peer
    }

    /// The first event of a kind.
    pub fn event(&self, kind: &str) -> Option<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["event"] == kind)
            .cloned()
    }

    /// Every event of a kind.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    }

    /// Its bound address.
    pub fn address(&self) -> SocketAddr {
        let a = &self.event("started").unwrap()["address"];
        format!("{}:{}", a[0].as_str().unwrap(), a[1])
            .parse()
            .unwrap()
    }

    /// Its member id.
    pub fn mid(&self) -> MemberId {
        self.event("started").unwrap()["mid"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Whether it lists `mid` as a peer (a verified walker message from it).
    pub fn discovered(&self, mid: &MemberId) -> bool {
        let hex = mid.to_hex();
        self.events("peer-discovered")
            .iter()
            .any(|e| e["mid"] == hex.as_str())
    }

    /// The texts it received from `mid`.
    pub fn texts_from(&self, mid: &MemberId) -> Vec<String> {
        let hex = mid.to_hex();
        self.events("message-received")
            .iter()
            .filter(|e| e["sender"] == hex.as_str())
            .filter_map(|e| e["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// Its events and the end of its log, for a failure message.
    pub fn diagnostics(&self) -> String {
        let events = self.events.lock().unwrap();
        let stderr = self.stderr.lock().unwrap();
        let tail = stderr.len().saturating_sub(40);
        format!(
            "--- py-ipv8 {} events ---\n{}\n--- py-ipv8 {} stderr (last lines) ---\n{}",
            self.name,
            events
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            self.name,
            stderr[tail..].join("\n")
        )
    }

    /// Stops it (SIGKILL to our own child). Its log goes to the test output when
    /// `DISPERSY_INTEROP_VERBOSE=1`.
    pub async fn stop(mut self) {
        if std::env::var("DISPERSY_INTEROP_VERBOSE").is_ok_and(|v| v == "1") {
            println!("{}", self.diagnostics());
        }
        let _ = self.child.kill().await;
    }
}

/// A Rust node on the tokio driver (127.0.0.1, ephemeral port) in the interop community, with
/// every event it produced.
pub struct RustNode {
    pub name: String,
    pub driver: Driver,
    pub handle: Handle,
    pub community: CommunityId,
    events: Arc<Mutex<Vec<Event>>>,
}

impl RustNode {
    /// A node that joined the interop community.
    pub async fn start(name: &str, seed: u64, community: CommunityId, distribution: &str) -> Self {
        let config = NodeConfig {
            seed,
            ..NodeConfig::default()
        };
        let node = Node::new(config, key(seed), Box::new(MemStore::new()));
        RustNode::run(name, node, community, spec(community, distribution)).await
    }

    async fn run(name: &str, node: Node, community: CommunityId, spec: CommunitySpec) -> Self {
        let config = dispersy_net::Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            interface_scan: None,
            ..dispersy_net::Config::default()
        };
        let driver = Driver::start(node, config).unwrap();
        let handle = driver.handle().clone();
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut rx = handle.subscribe();
        let sink = events.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => sink.lock().unwrap().push(e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        handle.join_spec(spec).await.unwrap();
        RustNode {
            name: name.to_owned(),
            driver,
            handle,
            community,
            events,
        }
    }

    /// Its bound address.
    pub fn address(&self) -> SocketAddr {
        self.driver.local_addrs()[0]
    }

    /// Its member id.
    pub async fn mid(&self) -> MemberId {
        self.handle.call(|n, _| n.member_id()).await.unwrap()
    }

    /// Whether `mid` is a verified candidate (walk or stumble) of the community.
    pub async fn verified(&self, mid: MemberId) -> bool {
        let community = self.community;
        self.handle
            .call(move |n, _| {
                n.candidates(&community).iter().any(|c| {
                    c.member == Some(mid)
                        && matches!(c.category, Category::Walk | Category::Stumble)
                })
            })
            .await
            .unwrap()
    }

    /// The texts it received from `mid`.
    pub fn texts_from(&self, mid: MemberId) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) if m.author == Some(mid) && m.source.is_some() => Layout::Text
                    .decode(&m.payload)
                    .ok()
                    .map(|t| String::from_utf8_lossy(t).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// Adds a bootstrap address (a tracker) for every community.
    pub async fn add_bootstrap(&self, address: SocketAddr) {
        self.handle
            .call(move |n, now| n.add_bootstrap(now, address))
            .await
            .unwrap()
            .unwrap();
    }

    /// Sends a text to every verified peer.
    pub async fn send(&self, text: &str) {
        let payload = Layout::Text.encode(text.as_bytes()).unwrap();
        self.handle
            .create_message(self.community, TEXT, payload, Vec::new())
            .await
            .unwrap();
    }

    /// Candidates, counters and walker status, for a failure message.
    pub async fn diagnostics(&self) -> String {
        let community = self.community;
        let state = self
            .handle
            .call(move |n, _| {
                format!(
                    "candidates: {:#?}\ncounters: {:?}\nwalker: {:?}",
                    n.candidates(&community),
                    n.stats(),
                    n.walker_status()
                )
            })
            .await
            .unwrap_or_else(|e| e.to_string());
        format!("--- rust {} ({}) ---\n{state}", self.name, self.address())
    }

    /// Stops the driver.
    pub async fn stop(self) {
        self.driver.shutdown().await.unwrap();
    }
}

/// What every test reports when a wait fails.
pub struct Witnesses<'a> {
    pub py: Vec<&'a PyPeer>,
    pub rust: Vec<&'a RustNode>,
}

impl Witnesses<'_> {
    async fn explain(&self) -> String {
        let mut out = String::new();
        for p in &self.py {
            out += &p.diagnostics();
            out += "\n";
        }
        for r in &self.rust {
            out += &r.diagnostics().await;
            out += "\n";
        }
        out
    }

    /// Waits (polling every 50 ms, at most `limit`) until `check` holds; returns the seconds it
    /// took, or fails with everything the peers said.
    pub async fn wait<F, Fut>(&self, what: &str, limit: Duration, mut check: F) -> f64
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = std::time::Instant::now();
        let done = tokio::time::timeout(limit, async {
            while !check().await {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if done.is_err() {
            panic!(
                "timed out after {limit:?} waiting for: {what}\n{}",
                self.explain().await
            );
        }
        let took = start.elapsed().as_secs_f64();
        println!("{what}: {took:.1} s");
        took
    }
}

/// A `dispersy tracker` process on 127.0.0.1 (ephemeral port, a status line every second).
pub struct TrackerProcess {
    child: Child,
    started: Value,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

/// How a tracker process ended.
pub struct TrackerExit {
    pub status: std::process::ExitStatus,
    /// Its `stopped` line.
    pub stopped: Value,
    /// Its log.
    pub stderr: String,
}

impl TrackerProcess {
    /// Starts the tracker and reads its `started` line.
    pub async fn start(key: Option<&Path>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dispersy"));
        command
            .args([
                "tracker",
                "--listen",
                "127.0.0.1:0",
                "--status-interval",
                "1",
            ])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(key) = key {
            command.arg("--key").arg(key);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("the tracker prints its started line")
            .unwrap()
            .expect("the tracker printed something");
        let started: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(started["event"], "started", "{line}");
        TrackerProcess {
            child,
            started,
            stdout,
        }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.started["listen"][0].as_str().unwrap().parse().unwrap()
    }

    /// Its member id.
    pub fn mid(&self) -> MemberId {
        self.started["mid"].as_str().unwrap().parse().unwrap()
    }

    /// Stops it with SIGTERM and collects how it ended.
    pub async fn terminate(mut self) -> TrackerExit {
        let pid = self.child.id().unwrap();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut stopped = Value::Null;
        while let Some(line) = self.stdout.next_line().await.unwrap() {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["event"] == "stopped"
            {
                stopped = v;
            }
        }
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr)
                .await
                .unwrap();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the tracker exits after SIGTERM")
            .unwrap();
        TrackerExit {
            status,
            stopped,
            stderr,
        }
    }
}
