//! Node-level crash test: a node on a [`SqliteStore`] is killed with `SIGKILL` while it receives
//! thousands of messages, restarted on the same data directory, and must (1) open its database
//! cleanly, (2) hold every message it had acknowledged storing, byte for byte, and (3) resume
//! synchronization: repair the sequence gaps left by what it missed while it was down
//! (missing-sequence requests) until it holds every message the senders created. A second test
//! shows that a data directory the node cannot use (corrupt, foreign, not SQLite, newer schema,
//! locked by another node) stops it at start with a clear error: no panic, a non-zero exit code,
//! the directory left as it was.
//!
//! # The victim
//!
//! The node under test runs in a child process: this test binary run again with the ignored
//! test `crash_victim` selected and its data directory in `DISPERSY_CRASH_VICTIM_DIR`. It runs a
//! [`Driver`] with a `SqliteStore` in that directory, joins the test community (full sync,
//! sequenced text posts, Bloom-filter sync off so only missing-sequence repair can fill its
//! gaps), walks to the senders named in `DISPERSY_CRASH_PEERS`, and prints on stdout, flushing
//! after each batch of lines:
//!
//! ```text
//! listening <address>               once, when the socket is bound and the community joined
//! stored <member> <global time> <sequence>   one per post the node acknowledged storing
//! count <n>                         posts in its store, every 100 ms
//! stopped                           after a graceful shutdown (stdin closed)
//! ```
//!
//! # Why a `stored` line is an acknowledgement of durability
//!
//! The driver's node task hands each burst of datagrams to `Node::handle_datagrams`, which ends
//! with `Store::commit` (one SQLite transaction per burst) and returns only then; the driver
//! drains `poll_event` and broadcasts the `Event::Message`s only after that call returned
//! (`NodeTask::absorb`, then `NodeTask::drain_output` in `dispersy-net/src/driver.rs`). With
//! `journal_mode=WAL`, a committed transaction survives the process being killed. So a post the
//! victim printed was committed before it was printed, and must be in the file after a kill.
//!
//! # The run
//!
//! Three sender nodes (drivers on `MemStore`s) in this process create posts in bursts of random
//! size and push them to their verified peers, staying at most [`BACKLOG`] posts ahead of what
//! the victim holds (past that, one post per [`TRICKLE_MS`]: without Bloom-filter sync only a new
//! post shows the victim a gap). In each round the victim starts, the senders walk to it, it
//! catches up with everything created before it started (the time this takes is printed), and
//! it is killed after a random number of further acknowledgements plus a random delay. The
//! test then opens the database itself, runs `SqliteStore::check`, and compares: every post
//! acknowledged in any round is stored, every stored post is one a sender created, byte for
//! byte, and no author's sequence has a hole. The last round ends with the steady stream
//! stopped and one post per sender per tick until the victim holds every post created, a
//! graceful shutdown, and the same comparison over everything.
//!
//! # Start-up
//!
//! The victim opens its store with `Options::check_on_open`: without the full check, a file
//! whose header and schema are intact but whose data pages are damaged opens, and the damage
//! surfaces later as store errors on some burst instead of a refusal at start.
//!
//! The kill points come from a seed, printed at start; `DISPERSY_SEED=<n>` repeats them (the
//! timing of the network does not repeat). Every wait is bounded; no duration is asserted.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{key, text};
use dispersy::community::payload::Layout;
use dispersy::community::{Definition, MetaMessage, Settings};
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use dispersy::node::{Config as NodeConfig, Event, Node};
use dispersy::store::{MemStore, RangeQuery, Store, StoredMessage, Undone, digest};
use dispersy_net::{Config, Driver, Handle};
use dispersy_sqlite::{Options, SqliteStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::mpsc;

const VICTIM_DIR: &str = "DISPERSY_CRASH_VICTIM_DIR";
const VICTIM_PEERS: &str = "DISPERSY_CRASH_PEERS";
/// The victim's exit code when it refuses to start.
const REFUSED: i32 = 2;
/// The database file in a data directory.
const DB_FILE: &str = "dispersy.db";
/// A sequenced full-sync text post.
const POST: MetaId = MetaId(1);
const VICTIM_SEED: u64 = 500;
const SENDER_SEEDS: [u64; 3] = [501, 502, 503];
/// Rounds that end with a kill; one more ends with a graceful shutdown.
const KILL_ROUNDS: usize = 3;
/// Posts a sender creates at once.
const BURST: std::ops::Range<usize> = 20..200;
/// Pause between bursts.
const PAUSE_MS: std::ops::Range<u64> = 0..10;
/// Most posts created beyond what the victim holds; past it, a post per [`TRICKLE_MS`].
const BACKLOG: u64 = 2000;
const TRICKLE_MS: u64 = 100;

fn definition() -> Definition {
    let text = Arc::new(Layout::Text);
    Definition::builder(key(5000).public().clone())
        .kind("crash-test")
        .meta(
            MetaMessage::new(POST.0, "post")
                .sequenced()
                .payload_schema(text),
        )
        .settings(Settings {
            bloom_sync: false,
            ..Settings::default()
        })
        .build()
        .unwrap()
}

fn community() -> CommunityId {
    definition().id()
}

fn node_config(seed: u64) -> NodeConfig {
    NodeConfig {
        seed,
        ..NodeConfig::default()
    }
}

fn driver_config() -> Config {
    Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        interface_scan: None,
        // The victim prints every event: keep the subscriber from lagging in a burst.
        event_capacity: 1 << 16,
        ..Config::default()
    }
}

fn bounded<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> impl Future<Output = T> {
    let what = what.to_owned();
    async move {
        match tokio::time::timeout(limit, f).await {
            Ok(v) => v,
            Err(_) => panic!("timed out after {limit:?}: {what}"),
        }
    }
}

// ------------------------------------------------------------------------------------------
// The victim (child process)
// ------------------------------------------------------------------------------------------

#[test]
#[ignore = "child process of node_survives_sigkill and refuses_unusable_data; fails alone"]
fn crash_victim() {
    let dir = std::env::var(VICTIM_DIR).expect("run by the crash tests, which set the directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let code = runtime.block_on(victim(PathBuf::from(dir)));
    // Exit here: a refusal must not look like a test failure (a panic exits with 101).
    drop(runtime);
    std::process::exit(code);
}

/// What the daemon does at start, reduced: open the store (checking it), start the driver, join.
/// Any error is printed on stderr and becomes exit code [`REFUSED`].
async fn victim(dir: PathBuf) -> i32 {
    let path = dir.join(DB_FILE);
    // The full check at open: a damaged page must stop the node here, not surface later as a
    // store error on some burst.
    let options = Options {
        check_on_open: true,
        ..Options::default()
    };
    let store = match SqliteStore::open_with(&path, options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crash victim: cannot open {}: {e}", path.display());
            return REFUSED;
        }
    };
    let node = Node::new(node_config(VICTIM_SEED), key(VICTIM_SEED), Box::new(store));
    let driver = match Driver::start(node, driver_config()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("crash victim: cannot start the driver: {e}");
            return REFUSED;
        }
    };
    let handle = driver.handle().clone();
    let mut events = handle.subscribe();
    if let Err(e) = handle.join(definition()).await {
        eprintln!("crash victim: cannot join the community: {e}");
        // Stop the driver before the runtime goes: a node task still running when its runtime
        // shuts down panics on its timer.
        drop(handle);
        let _ = driver.shutdown().await;
        return REFUSED;
    }
    let mut out = std::io::stdout();
    let address = driver.local_addrs()[0];
    // The test harness has printed "test crash_victim ... " without a line end.
    if writeln!(out, "\nlistening {address}")
        .and_then(|()| out.flush())
        .is_err()
    {
        return 1;
    }
    let peers = std::env::var(VICTIM_PEERS).unwrap_or_default();
    for peer in peers.split(',').filter(|p| !p.is_empty()) {
        let peer: SocketAddr = peer.parse().unwrap();
        handle.add_peer(community(), peer).await.unwrap();
        handle
            .call(move |n, now| n.walk_to(now, community(), peer))
            .await
            .unwrap()
            .unwrap();
    }
    // Stdin closes when the parent asks for a graceful stop (or dies).
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = stop_tx.send(());
    });
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    // Bounded even if nobody stops or kills us.
    let give_up = tokio::time::sleep(Duration::from_secs(180));
    tokio::pin!(give_up);
    loop {
        let mut lines = String::new();
        tokio::select! {
            event = events.recv() => {
                // Everything already broadcast goes out in one write.
                let mut batch = vec![event];
                loop {
                    match events.try_recv() {
                        Ok(e) => batch.push(Ok(e)),
                        Err(TryRecvError::Lagged(n)) => batch.push(Err(RecvError::Lagged(n))),
                        Err(_) => break,
                    }
                }
                for event in batch {
                    match event {
                        Ok(Event::Message(m)) if m.meta == POST => {
                            if let (Some(author), Some(seq)) = (m.author, m.sequence) {
                                lines += &format!(
                                    "stored {author} {} {}\n",
                                    m.global_time.0, seq.0
                                );
                            }
                        }
                        Err(RecvError::Lagged(n)) => lines += &format!("lagged {n}\n"),
                        Err(RecvError::Closed) => return 1, // the driver stopped on its own
                        Ok(_) => {}
                    }
                }
            }
            _ = tick.tick() => {
                let count = handle.call(|n, _| posts_stored(n.store())).await;
                if let Ok(count) = count {
                    lines += &format!("count {count}\n");
                }
            }
            _ = &mut stop_rx => break,
            () = &mut give_up => break,
        }
        if !lines.is_empty()
            && out
                .write_all(lines.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
        {
            return 1; // the parent is gone
        }
    }
    let stopped = driver.shutdown().await.unwrap();
    drop(stopped); // the store commits as it is dropped
    let _ = writeln!(out, "stopped").and_then(|()| out.flush());
    0
}

fn posts_stored(store: &dyn Store) -> u64 {
    store
        .count(&community(), Some(&[POST]), GlobalTime(1), GlobalTime::MAX)
        .unwrap()
}

// ------------------------------------------------------------------------------------------
// The parent: senders, kills, checks
// ------------------------------------------------------------------------------------------

/// A line from the victim.
#[derive(Debug, Clone)]
enum Line {
    Listening(SocketAddr),
    Stored(MessageId, SequenceNumber),
    Count(u64),
    Stopped,
}

fn parse_line(line: &str) -> Option<Line> {
    let mut words = line.split_whitespace();
    match words.next()? {
        "listening" => Some(Line::Listening(words.next()?.parse().ok()?)),
        "stored" => {
            let member: MemberId = words.next()?.parse().ok()?;
            let global_time = GlobalTime(words.next()?.parse().ok()?);
            let seq = SequenceNumber(words.next()?.parse().ok()?);
            Some(Line::Stored(
                MessageId {
                    member,
                    global_time,
                },
                seq,
            ))
        }
        "count" => Some(Line::Count(words.next()?.parse().ok()?)),
        "stopped" => Some(Line::Stopped),
        _ => None, // the test harness's own lines
    }
}

/// A running victim: its lines arrive on `lines`; the reader thread returns every
/// acknowledgement once the process is gone.
struct Victim {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Line>,
    reader: Option<std::thread::JoinHandle<Vec<(MessageId, SequenceNumber)>>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Victim {
    /// Starts a victim on `dir`; its `count` lines are stored in `held` as they arrive.
    fn spawn(dir: &Path, peers: &[SocketAddr], held: Arc<AtomicU64>) -> Victim {
        let exe = std::env::current_exe().unwrap();
        let peers: Vec<String> = peers.iter().map(SocketAddr::to_string).collect();
        let mut child = Command::new(exe)
            .args([
                "crash_victim",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(VICTIM_DIR, dir)
            .env(VICTIM_PEERS, peers.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(l) = parse_line(&line) {
                    match &l {
                        Line::Stored(id, seq) => acked.push((*id, *seq)),
                        Line::Count(n) => held.store(*n, Ordering::Relaxed),
                        _ => {}
                    }
                    let _ = tx.send(l);
                }
            }
            acked
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Victim {
            stdin: child.stdin.take(),
            child,
            lines,
            reader: Some(reader),
            stderr: Some(stderr),
        }
    }

    /// The next line, or a failure naming `what` (with the victim's stderr if it died).
    async fn next(&mut self, what: &str, limit: Duration) -> Line {
        match tokio::time::timeout(limit, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                let status = self.child.wait().unwrap();
                let err = self.stderr.take().map(|t| t.join().unwrap());
                panic!("victim exited ({status}) while waiting for {what}: {err:?}");
            }
            Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
        }
    }

    /// Kills with SIGKILL; returns every acknowledgement the victim printed.
    fn kill(mut self) -> (ExitStatus, Vec<(MessageId, SequenceNumber)>) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        (status, self.reader.take().unwrap().join().unwrap())
    }

    /// Closes stdin (a graceful stop) and waits for the exit, bounded.
    fn stop(mut self) -> (ExitStatus, Vec<(MessageId, SequenceNumber)>) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the victim did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.reader.take().unwrap().join().unwrap())
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        // A failing parent leaves no process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A post a sender created.
#[derive(Debug, Clone)]
struct Created {
    sequence: SequenceNumber,
    packet: Bytes,
}

/// Every post the senders created, by id.
type Ledger = Arc<Mutex<BTreeMap<MessageId, Created>>>;

/// Has `sender` create `n` posts at once (one command: the node pushes them to its verified
/// peers as one run of datagrams) and records them.
async fn create_posts(sender: &Handle, ledger: &Ledger, n: usize) {
    let ledger = ledger.clone();
    sender
        .call(move |node, now| {
            for _ in 0..n {
                let payload = text(&format!("a crash test post created at {}", now.as_micros()));
                let d = node
                    .create_message(now, community(), POST, &payload, &[])
                    .unwrap();
                let created = Created {
                    sequence: d.sequence.unwrap(),
                    packet: d.packet.clone(),
                };
                ledger.lock().unwrap().insert(d.id().unwrap(), created);
            }
        })
        .await
        .unwrap();
}

/// Creates posts in bursts of random size at random short intervals until `stop`, keeping at
/// most [`BACKLOG`] posts more than the victim holds (`held`): the victim is kept busy, and
/// what it misses while it is down stays bounded.
async fn produce(
    senders: Vec<Handle>,
    ledger: Ledger,
    held: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    while !stop.load(Ordering::Relaxed) {
        let created = ledger.lock().unwrap().len() as u64;
        let sender = &senders[rng.gen_range(0..senders.len())];
        if created > held.load(Ordering::Relaxed) + BACKLOG {
            // A trickle: without Bloom-filter sync, only a new post shows the victim a gap.
            create_posts(sender, &ledger, 1).await;
            tokio::time::sleep(Duration::from_millis(TRICKLE_MS)).await;
            continue;
        }
        create_posts(sender, &ledger, rng.gen_range(BURST)).await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(PAUSE_MS))).await;
    }
}

/// Makes each sender walk to the victim and waits until they verified each other.
async fn connect(senders: &[Handle], victim: SocketAddr) {
    for s in senders {
        s.add_peer(community(), victim).await.unwrap();
        s.call(move |n, now| n.walk_to(now, community(), victim))
            .await
            .unwrap()
            .unwrap();
    }
    bounded(
        "the senders verify the victim",
        Duration::from_secs(20),
        async {
            loop {
                let mut all = true;
                for s in senders {
                    all &= s
                        .call(move |n, _| n.peers(&community()).contains(&victim))
                        .await
                        .unwrap();
                }
                if all {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
}

/// Checks the database after the victim stopped: it opens, passes the full check, holds every
/// acknowledged post, and every post it holds is one the senders created, byte for byte, each
/// author's sequence without holes. Returns the posts stored.
fn check_database(path: &Path, ledger: &Ledger, acked: &[(MessageId, SequenceNumber)]) -> u64 {
    let wal =
        std::fs::metadata(path.with_file_name(format!("{DB_FILE}-wal"))).map_or(0, |m| m.len());
    eprintln!("  a write-ahead log of {wal} bytes to replay");
    let store = SqliteStore::open(path)
        .unwrap_or_else(|e| panic!("the database does not open after the kill: {e}"));
    store.check().unwrap();
    // A copy: the senders go on creating (and recording) meanwhile.
    let ledger = ledger.lock().unwrap().clone();
    for (id, seq) in acked {
        let m = store
            .message(&community(), id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged post {id:?} is not stored"));
        let created = &ledger[id];
        assert_eq!(m.packet, created.packet, "post {id:?} differs");
        assert_eq!(m.sequence, Some(*seq), "post {id:?}");
        assert_eq!(created.sequence, *seq, "post {id:?}");
    }
    let mut q = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, usize::MAX);
    q.metas = Some(vec![POST]);
    let stored = store.range(&community(), &q).unwrap();
    let mut last_seq: BTreeMap<MemberId, u32> = BTreeMap::new();
    let mut by_author: Vec<&StoredMessage> = stored.iter().collect();
    by_author.sort_by_key(|m| (m.member, m.sequence));
    for m in by_author {
        let created = ledger
            .get(&m.id())
            .unwrap_or_else(|| panic!("stored post {:?} was never created", m.id()));
        assert_eq!(m.packet, created.packet, "post {:?} differs", m.id());
        assert_eq!(m.digest, digest(&m.packet));
        assert_eq!(m.undone, Undone::No);
        let last = last_seq.entry(m.member).or_insert(0);
        assert_eq!(
            m.sequence,
            Some(SequenceNumber(*last + 1)),
            "a hole in the sequence of {:?}",
            m.member
        );
        *last += 1;
    }
    assert_eq!(posts_stored(&store), stored.len() as u64);
    store.close().unwrap();
    stored.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_survives_sigkill() {
    let seed = std::env::var("DISPERSY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("node crash test seed: DISPERSY_SEED={seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);

    let mut drivers = Vec::new();
    for s in SENDER_SEEDS {
        let node = Node::new(node_config(s), key(s), Box::new(MemStore::new()));
        let d = Driver::start(node, driver_config()).unwrap();
        d.handle().join(definition()).await.unwrap();
        drivers.push(d);
    }
    let senders: Vec<Handle> = drivers.iter().map(|d| d.handle().clone()).collect();
    let sender_addrs: Vec<SocketAddr> = drivers.iter().map(|d| d.local_addrs()[0]).collect();
    let ledger: Ledger = Arc::default();
    let created = || ledger.lock().unwrap().len() as u64;
    // Posts the victim holds, as of its latest `count` line.
    let held = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut producer = None;
    // Every post acknowledged in any round: each must survive every later kill too.
    let mut acked_all: Vec<(MessageId, SequenceNumber)> = Vec::new();

    let mut last = None;
    for round in 0..=KILL_ROUNDS {
        let started = Instant::now();
        let before = created();
        let mut victim = Victim::spawn(dir.path(), &sender_addrs, held.clone());
        let address = loop {
            if let Line::Listening(a) = victim.next("the address", Duration::from_secs(30)).await {
                break a;
            }
        };
        let listening = started.elapsed();
        connect(&senders, address).await;
        if producer.is_none() {
            let (s, l, h, stop) = (senders.clone(), ledger.clone(), held.clone(), stop.clone());
            producer = Some(tokio::spawn(produce(s, l, h, stop, rng.r#gen())));
        }
        // Sync resumes: the victim fills the gaps (what was created while it was down, and what
        // was lost in flight at the kill) as new posts reveal them.
        let mut acks = 0u64;
        bounded("catching up", Duration::from_secs(40), async {
            loop {
                match victim.next("catching up", Duration::from_secs(30)).await {
                    Line::Stored(..) => acks += 1,
                    Line::Count(n) if n >= before => break,
                    _ => {}
                }
            }
        })
        .await;
        let caught_up = started.elapsed();
        eprintln!(
            "round {round}: restarted; listening after {listening:?}; holds all {before} posts \
             created before the restart after {caught_up:?}"
        );
        if round == KILL_ROUNDS {
            last = Some(victim);
            break;
        }
        // The kill: after a random number of further acknowledgements, plus a random delay, so
        // it lands anywhere in a burst (parsing, verifying, inserting, committing, printing).
        let more = rng.gen_range(300..2500);
        let target = acks + more;
        let streaming = Instant::now();
        bounded("acknowledgements", Duration::from_secs(40), async {
            while acks < target {
                let line = victim.next("acknowledgements", Duration::from_secs(30));
                if let Line::Stored(..) = line.await {
                    acks += 1;
                }
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..40))).await;
        let (status, acked) = tokio::task::block_in_place(|| victim.kill());
        let streamed = streaming.elapsed();
        let created_at_kill = created();
        assert!(!status.success(), "{status}");
        acked_all.extend(&acked);
        let stored = tokio::task::block_in_place(|| check_database(&path, &ledger, &acked_all));
        assert!(stored >= acked_all.len() as u64);
        eprintln!(
            "round {round}: killed ({status}) after {} acknowledgements in this run ({} in all; \
             {:.0} posts/s over the last {streamed:?}); the database opens cleanly and holds \
             {stored} posts: every one acknowledged, {} committed but not yet acknowledged; \
             {} created posts were not stored yet",
            acked.len(),
            acked_all.len(),
            (acks - (target - more)) as f64 / streamed.as_secs_f64(),
            stored - acked_all.len() as u64,
            created_at_kill.saturating_sub(stored),
        );
    }

    // The end: the steady stream stops; each sender still posts one message per tick, which
    // shows the victim any gap at the end of its author's sequence.
    let mut victim = last.unwrap();
    stop.store(true, Ordering::Relaxed);
    producer.unwrap().await.unwrap();
    let started = Instant::now();
    bounded(
        "the victim holds every post",
        Duration::from_secs(40),
        async {
            loop {
                for s in &senders {
                    create_posts(s, &ledger, 1).await;
                }
                let total = created();
                let tick = tokio::time::sleep(Duration::from_millis(300));
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        line = victim.lines.recv() => match line {
                            Some(Line::Count(n)) if n == total => return,
                            Some(_) => {}
                            None => panic!("the victim died"),
                        },
                        () = &mut tick => break,
                    }
                }
            }
        },
    )
    .await;
    let total = created();
    eprintln!(
        "final: the victim holds all {total} posts {:?} after the stream stopped",
        started.elapsed()
    );
    let (status, acked) = tokio::task::block_in_place(|| victim.stop());
    assert!(status.success(), "graceful stop: {status}");
    acked_all.extend(&acked);
    let stored = tokio::task::block_in_place(|| check_database(&path, &ledger, &acked_all));
    assert_eq!(stored, total, "every post the senders created is stored");
    for d in drivers {
        d.shutdown().await.unwrap();
    }
}

// ------------------------------------------------------------------------------------------
// Start-up safety
// ------------------------------------------------------------------------------------------

/// Every file in a directory with its contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A database of ours holding `n` posts (random bytes: the store does not parse packets).
fn filled_database(path: &Path, n: u64) {
    let mut store = SqliteStore::open(path).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(n);
    for i in 1..=n {
        let packet: Vec<u8> = (0..300).map(|_| rng.r#gen()).collect();
        let packet = Bytes::from(packet);
        let m = StoredMessage {
            community: community(),
            meta: POST,
            member: MemberId([(i % 7) as u8; 20]),
            global_time: GlobalTime(i),
            sequence: Some(SequenceNumber(i as u32)),
            second_member: None,
            digest: digest(&packet),
            packet,
            undone: Undone::No,
        };
        assert!(store.insert_message(&m).unwrap());
    }
    store.close().unwrap();
}

/// Runs the victim on `dir` and expects it to refuse to start with an error containing `names`.
fn expect_refusal(case: &str, dir: &Path, names: &str) {
    let before = snapshot(dir);
    let mut victim = Victim::spawn(dir, &[], Arc::default());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = victim.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "{case}: the victim did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = victim.stderr.take().unwrap().join().unwrap();
    eprintln!("{case}: {status}: {}", stderr.trim());
    assert_eq!(status.code(), Some(REFUSED), "{case}: {status}, {stderr}");
    assert!(!stderr.contains("panicked"), "{case}: {stderr}");
    assert!(
        stderr.contains(names),
        "{case}: expected {names:?} in {stderr:?}"
    );
    assert_eq!(snapshot(dir), before, "{case}: the data directory changed");
}

#[test]
fn refuses_unusable_data() {
    let root = tempfile::tempdir().unwrap();
    let case = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join(DB_FILE);
        (dir, path)
    };

    // Truncated: half the pages are gone.
    let (dir, path) = case("truncated");
    filled_database(&path, 2000);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    expect_refusal("truncated database", &dir, "is truncated");

    // Damaged pages: the header and schema are intact, the data behind them is noise.
    let (dir, path) = case("damaged");
    filled_database(&path, 2000);
    let mut bytes = std::fs::read(&path).unwrap();
    let half = bytes.len() / 2;
    for (i, b) in bytes[half..].iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    expect_refusal("damaged database", &dir, "database is corrupt");

    // A SQLite database of another application.
    let (dir, path) = case("foreign");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');")
        .unwrap();
    drop(conn);
    expect_refusal("foreign database", &dir, "another application");

    // Not SQLite at all.
    let (dir, path) = case("text");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200)).unwrap();
    expect_refusal("text file", &dir, "is not a SQLite database");

    // Written by a newer dispersy.
    let (dir, path) = case("newer");
    filled_database(&path, 10);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "user_version", version + 1)
        .unwrap();
    drop(conn);
    expect_refusal("newer schema", &dir, "is newer than this program supports");

    // In use by another node (a process of its own: file locks belong to a process).
    let (dir, _) = case("in-use");
    let mut first = Victim::spawn(&dir, &[], Arc::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        while !matches!(
            first.next("the first node", Duration::from_secs(30)).await,
            Line::Listening(_)
        ) {}
    });
    expect_refusal("database in use", &dir, "locked");
    let (status, _) = first.stop();
    assert!(
        status.success(),
        "the first node still runs and stops cleanly: {status}"
    );
}
