//! Crash test: a child process writes messages in committed batches and reports each commit; the
//! parent kills it with SIGKILL at a random moment, reopens the file and checks that it opens
//! cleanly, passes `quick_check`, holds every acknowledged message byte for byte (and nothing
//! but whole batches), and accepts new writes. Several rounds on the same file, each killed at a
//! different point (some during open, most in the middle of writing and checkpointing).
//!
//! The child is this test binary run again with `crash_child` selected (an ignored test that
//! only works when the parent passes the database path in an environment variable). The seed
//! of the kill points is printed; `DISPERSY_SEED=<n>` reproduces it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MetaId, SequenceNumber};
use dispersy::store::{RangeQuery, Store, StoreError, StoredMessage, Undone, digest};
use dispersy_sqlite::{Options, SqliteStore};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_ENV: &str = "DISPERSY_CRASH_CHILD_DB";
const COMMUNITY: CommunityId = CommunityId([7; 20]);
/// Batch sizes the child cycles through; the largest bounds what a kill can leave unacknowledged.
const BATCHES: [u64; 5] = [1, 7, 100, 500, 40];
const ROUNDS: u32 = 5;

/// Message number `i` (from 0): a 200-byte packet derived from `i`, global time `i + 1`.
fn message(i: u64) -> StoredMessage {
    let mut packet = vec![0u8; 200];
    ChaCha8Rng::seed_from_u64(i).fill_bytes(&mut packet);
    let packet = Bytes::from(packet);
    StoredMessage {
        community: COMMUNITY,
        meta: MetaId(1 + (i % 3) as u8),
        member: MemberId([(i % 5) as u8; 20]),
        global_time: GlobalTime(i + 1),
        sequence: Some(SequenceNumber(i as u32 + 1)),
        second_member: i.is_multiple_of(4).then_some(MemberId([9; 20])),
        digest: digest(&packet),
        packet,
        undone: if i.is_multiple_of(11) {
            Undone::ByPolicy
        } else {
            Undone::No
        },
    }
}

#[test]
#[ignore = "child process of store_survives_sigkill; fails when run alone"]
fn crash_child() {
    let path =
        std::env::var(CHILD_ENV).expect("run by store_survives_sigkill, which sets the path");
    let mut store = SqliteStore::open(&path).unwrap();
    let mut next = store.message_count();
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    // Bounded even if the parent never kills us.
    for batch in BATCHES.iter().cycle() {
        if start.elapsed() > Duration::from_secs(30) {
            break;
        }
        for i in next..next + batch {
            assert!(store.insert_message(&message(i)).unwrap());
        }
        store.commit().unwrap();
        next += batch;
        writeln!(out, "committed {next}").unwrap();
        out.flush().unwrap();
    }
}

/// Kills the child if the parent fails first.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Checks that the store holds exactly messages `0..n` byte for byte.
fn verify(store: &SqliteStore, n: u64) {
    assert_eq!(store.message_count(), n);
    assert_eq!(
        store
            .count(&COMMUNITY, None, GlobalTime(1), GlobalTime::MAX)
            .expect("count"),
        n
    );
    let mut low = 1;
    while low <= n {
        let chunk = store
            .range(
                &COMMUNITY,
                &RangeQuery::between(GlobalTime(low), GlobalTime::MAX, 10_000),
            )
            .expect("range");
        assert!(
            !chunk.is_empty(),
            "messages from global time {low} are missing"
        );
        for m in chunk {
            let i = m.global_time.0 - 1;
            assert!(i < n, "message {i} present beyond the count {n}");
            assert_eq!(m, message(i), "message {i} differs");
            low = m.global_time.0 + 1;
        }
    }
}

fn run_child(path: &Path) -> Killer {
    let exe = std::env::current_exe().expect("path of this test binary");
    let child = Command::new(exe)
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer");
    Killer(child)
}

#[test]
fn store_survives_sigkill() {
    let seed = std::env::var("DISPERSY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("crash test seed: DISPERSY_SEED={seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/dispersy.db");
    SqliteStore::open(&path).unwrap().close().unwrap();
    // Messages known committed before the child starts (its acknowledgements count from here).
    let mut known = 0;

    for round in 0..ROUNDS {
        let mut child = run_child(&path);
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = 0u64;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("committed ") {
                    acked = n.parse().unwrap();
                    let _ = tx.send(acked);
                }
            }
            acked
        });
        if round % 5 == 4 {
            // Early: possibly while the child opens the file or replays its log.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..30)));
        } else {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("child acknowledged no commit");
            if round == 0 {
                // A second process must get a clear error, never share the file.
                let options = Options {
                    busy_timeout: Duration::from_millis(20),
                    ..Options::default()
                };
                let err = SqliteStore::open_with(&path, options).unwrap_err();
                assert!(
                    matches!(&err, StoreError::Backend(m) if m.contains("locked")),
                    "{err}"
                );
            }
            std::thread::sleep(Duration::from_millis(rng.gen_range(10..700)));
        }
        child.0.kill().unwrap();
        let status = child.0.wait().unwrap();
        let acked = reader.join().unwrap().max(known);
        eprintln!("round {round}: killed ({status}) after {acked} acknowledged messages");

        let mut store = SqliteStore::open(&path).unwrap();
        store.check().unwrap();
        let n = store.message_count();
        assert!(
            n >= acked,
            "round {round}: {n} messages stored, {acked} acknowledged"
        );
        assert!(
            n - acked <= *BATCHES.iter().max().unwrap(),
            "round {round}: {n} stored but only {acked} acknowledged"
        );
        verify(&store, n);
        // It keeps working: more writes, a clean close, and they are there on reopen.
        for i in n..n + 10 {
            assert!(store.insert_message(&message(i)).unwrap());
        }
        store.commit().unwrap();
        store.close().unwrap();
        verify(&SqliteStore::open(&path).unwrap(), n + 10);
        known = n + 10;
    }
}
