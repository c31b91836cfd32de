//! Storage benchmarks: bulk insert per batch size, range queries, fingerprints over small and
//! large ranges, and the time to open a store of a million messages against an empty one.
//!
//! Run: `cargo bench -p dispersy-sqlite --bench store`. `DISPERSY_BENCH_OPEN_MESSAGES` changes
//! the size of the big store (default 1,000,000; generating it takes a little while and about
//! 400 MB in a temporary directory, removed afterwards).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MetaId};
use dispersy::store::{RangeQuery, Store, StoredMessage, Undone, digest};
use dispersy_sqlite::SqliteStore;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const COMMUNITY: CommunityId = CommunityId([7; 20]);

/// Message `i`: global time `i + 1`, one of 5 authors and 3 meta-messages, a 200-byte packet.
fn message(i: u64) -> StoredMessage {
    let mut packet = vec![0u8; 200];
    packet[..8].copy_from_slice(&i.to_le_bytes());
    packet[8..]
        .iter_mut()
        .enumerate()
        .for_each(|(k, b)| *b = (k as u64 ^ i) as u8);
    let packet = Bytes::from(packet);
    StoredMessage {
        community: COMMUNITY,
        meta: MetaId(1 + (i % 3) as u8),
        member: MemberId([(i % 5) as u8; 20]),
        global_time: GlobalTime(i + 1),
        sequence: None,
        second_member: None,
        digest: digest(&packet),
        packet,
        undone: Undone::No,
    }
}

/// Fills a store with messages `0..n`, committing every 10,000.
fn fill(path: &Path, n: u64) {
    let mut store = SqliteStore::open(path).expect("open");
    for i in store.message_count()..n {
        store.insert_message(&message(i)).expect("insert");
        if i % 10_000 == 9_999 {
            store.commit().expect("commit");
        }
    }
    store.close().expect("close");
}

fn insert(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = SqliteStore::open(dir.path().join("insert.db")).expect("open");
    let mut next = 0u64;
    let mut group = c.benchmark_group("insert");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for batch in [1u64, 100, 1000] {
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let messages: Vec<StoredMessage> = (next..next + batch).map(message).collect();
                    next += batch;
                    let start = Instant::now();
                    for m in &messages {
                        store.insert_message(m).expect("insert");
                    }
                    store.commit().expect("commit");
                    spent += start.elapsed();
                }
                spent
            });
        });
    }
    group.finish();
}

fn queries(c: &mut Criterion) {
    const N: u64 = 200_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queries.db");
    fill(&path, N);
    let store = SqliteStore::open(&path).expect("open");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut group = c.benchmark_group("query");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1000));
    group.bench_function("range_1000", |b| {
        b.iter(|| {
            let low = rng.gen_range(1..N - 1000);
            let q = RangeQuery::between(GlobalTime(low), GlobalTime(low + 999), 1000);
            let got = store.range(&COMMUNITY, &q).expect("range");
            assert_eq!(got.len(), 1000);
            black_box(got)
        });
    });
    for width in [1_000u64, 100_000] {
        group.throughput(Throughput::Elements(width));
        group.bench_function(format!("fingerprint_{width}"), |b| {
            b.iter(|| {
                let low = rng.gen_range(1..N - width);
                let high = GlobalTime(low + width - 1);
                let fp = store.fingerprint(&COMMUNITY, None, GlobalTime(low), high);
                black_box(fp.expect("fingerprint"))
            });
        });
        group.bench_function(format!("fingerprint_metas_{width}"), |b| {
            let metas = [MetaId(1), MetaId(2)];
            b.iter(|| {
                let low = rng.gen_range(1..N - width);
                let high = GlobalTime(low + width - 1);
                let fp = store.fingerprint(&COMMUNITY, Some(&metas), GlobalTime(low), high);
                black_box(fp.expect("fingerprint"))
            });
        });
    }
    group.finish();
}

#[allow(
    clippy::print_stderr,
    reason = "reports how the big store was generated"
)]
fn open(c: &mut Criterion) {
    let big: u64 = std::env::var("DISPERSY_BENCH_OPEN_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.db");
    fill(&empty, 0);
    let full = dir.path().join("full.db");
    let start = Instant::now();
    fill(&full, big);
    eprintln!(
        "generated {big} messages in {:.1} s ({} bytes)",
        start.elapsed().as_secs_f64(),
        std::fs::metadata(&full).map_or(0, |m| m.len())
    );
    let mut group = c.benchmark_group("open");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for (name, path) in [("empty".to_string(), &empty), (format!("{big}"), &full)] {
        group.bench_function(&name, |b| {
            b.iter(|| {
                let store = SqliteStore::open(path).expect("open");
                let max = store.max_global_time(&COMMUNITY).expect("max");
                black_box((store.message_count(), max));
                store.close().expect("close")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, insert, queries, open);
criterion_main!(benches);
