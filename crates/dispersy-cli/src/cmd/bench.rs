//! `dispersy bench sync`: synchronization measured between two real processes on loopback UDP.
//!
//! ```text
//! cargo run --release -p dispersy-cli -- bench sync            # the recorded figures
//! cargo run --release -p dispersy-cli -- bench sync --quick    # CI smoke: small numbers
//! ```
//!
//! Prints one JSON object. Every figure comes with the baseline measured in the same run:
//!
//! - **floor**: verifying and storing the same bundles in-process (a node fed the packets in
//!   bursts of 1,024, into SQLite), and the raw part of it (parse, batch-verify, insert);
//! - **catch-up**: node A holds the bundles in SQLite, node B starts empty; both are processes
//!   of this program (the tokio driver) on 127.0.0.1. The time until B holds all of them,
//!   bytes on the wire per bundle, B's peak resident memory, and the ratio to the floor;
//! - **classic**: the same with our extensions disabled on both (Dispersy's Bloom-filter sync),
//!   run for a fixed time and projected to the whole data set;
//! - **near-equal**: A and B share the bundles and each holds ten the other lacks: time, round
//!   trips and bytes of reconciliation (the twenty bundles themselves excluded).
//!
//! The children are `dispersy bench sync-peer` processes: each prints a `ready` line with its
//! address and a `done` line (or `timeout`) with its figures, and serves until the parent ends
//! it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant as WallClock};

use anyhow::{Context, anyhow, bail};
use dispersy::community::{Definition, MetaMessage};
use dispersy::crypto::{self, PrivateKey};
use dispersy::ids::{GlobalTime, MetaId};
use dispersy::node::{Config as NodeConfig, Node, SyncConfig};
use dispersy::store::{Store, StoredMessage};
use dispersy::testing::{BundleShape, bundles};
use dispersy::time::Instant;
use dispersy::wire::{NoKeys, Packet};
use dispersy_sqlite::SqliteStore;
use rand::SeedableRng;
use serde_json::{Value, json};

/// The bundles' meta-message: full sync with sequence numbers.
const POST: MetaId = MetaId(1);

/// Arguments of `dispersy bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Synchronization: fast catch-up against its floor, classic sync, near-equal stores.
    Sync(SyncArgs),
    /// One side of `bench sync` (started by it).
    #[command(hide = true)]
    SyncPeer(PeerArgs),
}

/// Arguments of `dispersy bench sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Small numbers for a CI smoke run (5,000 bundles, 10 s of classic sync).
    #[arg(long)]
    quick: bool,
    /// Bundles node A holds (default 100,000; 5,000 with --quick).
    #[arg(long)]
    bundles: Option<usize>,
    /// Authors of the bundles.
    #[arg(long, default_value_t = 100)]
    authors: usize,
    /// Payload bytes of each bundle.
    #[arg(long, default_value_t = 200)]
    payload: usize,
    /// How long classic sync runs before its rate is projected (default 60 s; 10 s with
    /// --quick).
    #[arg(long)]
    classic_seconds: Option<u64>,
    /// Give up on a scenario after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Working directory for the databases (default: a new directory under the system's
    /// temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of the data set.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Arguments of `dispersy bench sync-peer`.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The SQLite database (its bundles are what this side holds).
    #[arg(long)]
    db: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The other side, to walk to at once.
    #[arg(long)]
    peer: Option<SocketAddr>,
    /// Report `done` when this many bundles are held.
    #[arg(long)]
    target: u64,
    /// Classic Dispersy sync only (no catch-up, no reconciliation).
    #[arg(long)]
    no_extensions: bool,
    /// Report `timeout` after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Seed of the node.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Runs `dispersy bench ...`.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    match &args.what {
        What::Sync(a) => sync(a),
        What::SyncPeer(a) => peer(a),
    }
}

/// The benchmark community: fixed master key, one sequence-numbered full-sync meta-message.
fn definition() -> anyhow::Result<Definition> {
    let master = PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(0xbe9c));
    Definition::builder(master.public().clone())
        .kind("bench-sync")
        .meta(MetaMessage::new(POST.0, "post").sequenced())
        .build()
        .map_err(|e| anyhow!("benchmark community: {e}"))
}

fn say(value: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}

/// Resident memory high-water mark of this process, in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn sync(args: &SyncArgs) -> anyhow::Result<ExitCode> {
    let n = args
        .bundles
        .unwrap_or(if args.quick { 5_000 } else { 100_000 });
    let classic_seconds = args
        .classic_seconds
        .unwrap_or(if args.quick { 10 } else { 60 });
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("dispersy-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = measure(args, n, classic_seconds, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    say(&result?)?;
    Ok(ExitCode::SUCCESS)
}

fn measure(args: &SyncArgs, n: usize, classic_seconds: u64, dir: &Path) -> anyhow::Result<Value> {
    let def = definition()?;
    let authors: Vec<PrivateKey> = (0..args.authors.max(1) as u64)
        .map(|i| PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1_000 + i)))
        .collect();
    let shape = BundleShape {
        count: n + 20,
        payload_len: args.payload,
        per_global_time: 1,
        first: GlobalTime(3),
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(args.seed);
    let t = WallClock::now();
    let all = bundles(&def, POST, &authors, shape, &mut rng);
    let generated = t.elapsed();
    let (shared, extra) = all.split_at(n);
    let packet_bytes: usize = shared.iter().map(|m| m.packet.len()).sum();

    let seed_db = dir.join("seed.db");
    write_db(&seed_db, shared.iter())?;
    let floor = floor(&def, shared, dir)?;
    let raw = raw_floor(&def, shared, dir)?;

    let catchup = run_pair(
        dir,
        "catchup",
        &seed_db,
        None,
        n as u64,
        false,
        args.timeout,
    )?;
    let classic = run_pair(
        dir,
        "classic",
        &seed_db,
        None,
        n as u64,
        true,
        classic_seconds,
    )?;

    // Near-equal: each side holds the shared bundles and ten of the twenty newest.
    let (only_a, only_b): (Vec<&StoredMessage>, Vec<&StoredMessage>) = {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (i, m) in extra.iter().enumerate() {
            if i % 2 == 0 { &mut a } else { &mut b }.push(m);
        }
        (a, b)
    };
    // Not the names `run_pair` gives its working copies (`near-a.db`, `near-b.db`).
    let a_db = dir.join("near-seed-a.db");
    let b_db = dir.join("near-seed-b.db");
    write_db(&a_db, shared.iter().chain(only_a.iter().copied()))?;
    write_db(&b_db, shared.iter().chain(only_b.iter().copied()))?;
    let near = run_pair(
        dir,
        "near",
        &a_db,
        Some(&b_db),
        (n + 20) as u64,
        false,
        args.timeout,
    )?;

    Ok(report(
        args,
        n,
        packet_bytes,
        generated,
        floor,
        raw,
        &catchup,
        &classic,
        &near,
    ))
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &SyncArgs,
    n: usize,
    packet_bytes: usize,
    generated: Duration,
    floor: Duration,
    raw: Duration,
    catchup: &Pair,
    classic: &Pair,
    near: &Pair,
) -> Value {
    let n_f = n as f64;
    let b = &catchup.b;
    let catchup_s = b["seconds"].as_f64().unwrap_or(f64::NAN);
    let wire = b["bytes_sent"].as_u64().unwrap_or(0) + b["bytes_received"].as_u64().unwrap_or(0);
    let rss = b["peak_rss"].as_u64().unwrap_or(0);
    let cb = &classic.b;
    let classic_s = cb["seconds"].as_f64().unwrap_or(f64::NAN);
    let classic_held = cb["held"].as_u64().unwrap_or(0) as f64;
    let classic_rate = classic_held / classic_s;
    let classic_wire =
        cb["bytes_sent"].as_u64().unwrap_or(0) + cb["bytes_received"].as_u64().unwrap_or(0);
    let stat = |side: &Value, key: &str| side["sync"]["stats"][key].as_u64().unwrap_or(0);
    // Rounds each side's own sessions took (the answering side counts none); normally only
    // one side starts a session.
    let near_rounds = stat(&near.a, "reconcile_rounds") + stat(&near.b, "reconcile_rounds");
    let near_sessions = stat(&near.a, "reconcile_sessions") + stat(&near.b, "reconcile_sessions");
    let near_bytes = stat(&near.a, "reconcile_bytes_sent") + stat(&near.b, "reconcile_bytes_sent");
    let near_datagrams =
        stat(&near.a, "reconcile_datagram_bytes") + stat(&near.b, "reconcile_datagram_bytes");
    let near_s = near.a["seconds"]
        .as_f64()
        .unwrap_or(f64::NAN)
        .max(near.b["seconds"].as_f64().unwrap_or(f64::NAN));
    let ratio = catchup_s / floor.as_secs_f64();
    json!({
        "bundles": n,
        "authors": args.authors,
        "payload_bytes": args.payload,
        "mean_packet_bytes": packet_bytes as f64 / n_f,
        "quick": args.quick,
        "generate_seconds": generated.as_secs_f64(),
        "floor": {
            "node_seconds": floor.as_secs_f64(),
            "node_bundles_per_second": n_f / floor.as_secs_f64(),
            "verify_store_seconds": raw.as_secs_f64(),
            "what": "a node fed every packet in bursts of 1,024, into SQLite (node); \
                     parse, batch-verify and insert only (verify_store)",
        },
        "catchup": {
            "completed": catchup.b["event"] == "done",
            "seconds": catchup_s,
            "ratio_to_floor": ratio,
            "ratio_to_verify_store": catchup_s / raw.as_secs_f64(),
            "bytes_on_wire": wire,
            "bytes_per_bundle": wire as f64 / n_f,
            "overhead_per_bundle": (wire as f64 - packet_bytes as f64) / n_f,
            "peak_rss_mib": rss as f64 / (1024.0 * 1024.0),
            "b": catchup.b,
        },
        "classic": {
            "seconds_run": classic_s,
            "bundles": classic_held,
            "bundles_per_second": classic_rate,
            "projected_seconds": n_f / classic_rate,
            "bytes_per_bundle": classic_wire as f64 / classic_held.max(1.0),
            "speedup_of_catchup": (n_f / classic_rate) / catchup_s,
        },
        "near_equal": {
            "completed": near.a["event"] == "done" && near.b["event"] == "done",
            "seconds": near_s,
            "round_trips": near_rounds,
            "sessions": near_sessions,
            "reconcile_bytes": near_bytes,
            "reconcile_datagram_bytes": near_datagrams,
            "a": near.a,
            "b": near.b,
        },
        "targets": {
            "catchup_within_2x_floor": ratio <= 2.0,
            "near_equal_at_most_3_round_trips": near_rounds <= 3,
            "near_equal_at_most_16_kib": near_datagrams <= 16 * 1024,
            "peak_rss_under_150_mib": rss < 150 * 1024 * 1024,
        },
    })
}

/// Writes bundles into a new SQLite database.
fn write_db<'a>(
    path: &Path,
    messages: impl Iterator<Item = &'a StoredMessage>,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut store = SqliteStore::open(path)?;
    for (i, m) in messages.enumerate() {
        store.insert_message(m)?;
        if i % 10_000 == 9_999 {
            store.commit()?;
        }
    }
    store.close()?;
    Ok(())
}

/// The floor: a node verifies and stores every bundle, fed in bursts, oldest first.
fn floor(def: &Definition, messages: &[StoredMessage], dir: &Path) -> anyhow::Result<Duration> {
    let path = dir.join("floor.db");
    let _ = std::fs::remove_file(&path);
    let key = PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(99));
    let mut node = Node::new(
        NodeConfig::default(),
        key,
        Box::new(SqliteStore::open(&path)?),
    );
    node.join(Instant::ZERO, def.clone())?;
    let from: SocketAddr = "127.0.0.1:9".parse()?;
    let start = WallClock::now();
    for chunk in messages.chunks(1_024) {
        let now = Instant::from_micros(start.elapsed().as_micros() as u64);
        node.handle_datagrams(now, chunk.iter().map(|m| (from, m.packet.clone())))?;
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }
    let took = start.elapsed();
    let held = node.sync_status(&def.id()).map_or(0, |s| s.held);
    if held != messages.len() as u64 {
        bail!("the floor node stored {held} of {}", messages.len());
    }
    Ok(took)
}

/// The raw part of the floor: parse, batch-verify and insert, commit per 1,024.
fn raw_floor(def: &Definition, messages: &[StoredMessage], dir: &Path) -> anyhow::Result<Duration> {
    let path = dir.join("raw.db");
    let _ = std::fs::remove_file(&path);
    let mut store = SqliteStore::open(&path)?;
    let layout = def
        .meta(POST)
        .ok_or_else(|| anyhow!("no post meta-message"))?
        .layout();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let start = WallClock::now();
    for chunk in messages.chunks(1_024) {
        let packets: Vec<Packet> = chunk
            .iter()
            .map(|m| Packet::parse(m.packet.clone(), &layout, &NoKeys))
            .collect::<Result<_, _>>()?;
        let items: Vec<crypto::BatchItem<'_>> =
            packets.iter().flat_map(|p| p.batch_items()).collect();
        if crypto::verify_batch(&items, &mut rng)
            .iter()
            .any(|v| v.is_err())
        {
            bail!("a bundle does not verify");
        }
        for m in chunk {
            store.insert_message(m)?;
        }
        store.commit()?;
    }
    Ok(start.elapsed())
}

/// What the two sides of a scenario reported.
struct Pair {
    a: Value,
    b: Value,
}

/// A child process and the lines it prints.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Peer {
    fn spawn(
        db: &Path,
        peer: Option<SocketAddr>,
        target: u64,
        classic: bool,
        timeout: u64,
    ) -> anyhow::Result<Peer> {
        let exe = std::env::current_exe().context("locating this program")?;
        let mut cmd = Command::new(exe);
        cmd.args(["bench", "sync-peer", "--db"])
            .arg(db)
            .args(["--target", &target.to_string()])
            .args(["--timeout", &timeout.to_string()])
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        if let Some(p) = peer {
            cmd.args(["--peer", &p.to_string()]);
        }
        if classic {
            cmd.arg("--no-extensions");
        }
        let mut child = cmd.spawn().context("starting a sync-peer process")?;
        let stdout: ChildStdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout of the child"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Ok(Peer { child, lines })
    }

    /// The next line whose `event` is one of `events`.
    fn wait(&self, events: &[&str], limit: Duration) -> anyhow::Result<Value> {
        let deadline = WallClock::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(WallClock::now());
            let v = self
                .lines
                .recv_timeout(left)
                .map_err(|_| anyhow!("a sync-peer process went silent (waited for {events:?})"))?;
            if events.iter().any(|e| v["event"] == *e) {
                return Ok(v);
            }
        }
    }

    fn stop(mut self) {
        // Only this child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs A on (a copy of) `a_db` and B on (a copy of) `b_db` or an empty database, B walking to
/// A; waits until B (and A, when it starts with a database too) holds `target` bundles.
fn run_pair(
    dir: &Path,
    name: &str,
    a_db: &Path,
    b_db: Option<&Path>,
    target: u64,
    classic: bool,
    timeout: u64,
) -> anyhow::Result<Pair> {
    let a_path = dir.join(format!("{name}-a.db"));
    let b_path = dir.join(format!("{name}-b.db"));
    std::fs::copy(a_db, &a_path)?;
    let _ = std::fs::remove_file(&b_path);
    if let Some(b) = b_db {
        std::fs::copy(b, &b_path)?;
    }
    let a_target = if b_db.is_some() { target } else { 0 };
    let a = Peer::spawn(&a_path, None, a_target, classic, timeout)?;
    let ready = a.wait(&["ready"], Duration::from_secs(60))?;
    let addr: SocketAddr = ready["address"]
        .as_str()
        .ok_or_else(|| anyhow!("no address from A"))?
        .parse()?;
    let b = Peer::spawn(&b_path, Some(addr), target, classic, timeout)?;
    let limit = Duration::from_secs(timeout + 60);
    let result = (|| {
        b.wait(&["ready"], Duration::from_secs(60))?;
        let b_report = b.wait(&["done", "timeout"], limit)?;
        let a_report = if b_db.is_some() {
            a.wait(&["done", "timeout"], limit)?
        } else {
            Value::Null
        };
        Ok(Pair {
            a: a_report,
            b: b_report,
        })
    })();
    b.stop();
    a.stop();
    result
}

/// One side: a node on `args.db` under the tokio driver, reporting when it holds the target.
fn peer(args: &PeerArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: &PeerArgs) -> anyhow::Result<()> {
    let def = definition()?;
    let id = def.id();
    let store = SqliteStore::open(&args.db)?;
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    let config = NodeConfig {
        seed: args.seed ^ u64::from(std::process::id()),
        sync: SyncConfig {
            extensions: !args.no_extensions,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    };
    let mut node = Node::new(config, key, Box::new(store));
    node.join(Instant::ZERO, def)?;
    let driver = dispersy_net::Driver::start(
        node,
        dispersy_net::Config {
            listen: vec![args.listen],
            interface_scan: None,
            ..dispersy_net::Config::default()
        },
    )?;
    let handle = driver.handle().clone();
    let address = handle
        .local_addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow!("no socket"))?;
    say(&json!({ "event": "ready", "address": address.to_string() }))?;
    let start = WallClock::now();
    if let Some(peer) = args.peer {
        handle
            .call(move |node, now| {
                node.add_peer(now, id, peer)?;
                node.walk_to(now, id, peer)
            })
            .await??;
    }
    let limit = Duration::from_secs(args.timeout);
    let mut reported = false;
    loop {
        let (status, stats) = handle
            .call(move |node, _| (node.sync_status(&id), node.stats().clone()))
            .await?;
        let held = status.as_ref().map_or(0, |s| s.held);
        let elapsed = start.elapsed();
        let finished = held >= args.target;
        if !reported && (finished || elapsed >= limit) {
            reported = true;
            say(&json!({
                "event": if finished { "done" } else { "timeout" },
                "seconds": elapsed.as_secs_f64(),
                "held": held,
                "bytes_sent": stats.sent.bytes,
                "bytes_received": stats.received.bytes,
                "datagrams_sent": stats.sent.packets,
                "datagrams_received": stats.received.packets,
                "drops": stats.drops,
                "peak_rss": peak_rss(),
                "driver": format!("{:?}", handle.metrics()),
                "sync": status,
            }))?;
        }
        tokio::time::sleep(Duration::from_millis(if reported { 500 } else { 20 })).await;
    }
}
