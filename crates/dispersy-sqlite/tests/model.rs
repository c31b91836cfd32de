//! Model-based test: random sequences of store operations applied to `MemStore` (the model) and
//! `SqliteStore` (on a real file), comparing every result, including across close-and-reopen.
//!
//! The seed is printed on failure; `DISPERSY_SEED=<n>` reproduces a run and
//! `DISPERSY_MODEL_CASES=<n>` changes how many sequences are tried.
//!
//! Sequence numbers are derived from the global time (a bijection on `u32`), so no two stored
//! messages of one author and meta-message share a sequence number: the node resolves such
//! conflicts before storing, and `MemStore`'s sequence index is only defined without them.

use std::sync::OnceLock;

use bytes::Bytes;
use dispersy::crypto::{PrivateKey, PublicKey};
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use dispersy::store::{
    CommunityRecord, MemStore, Order, RangeQuery, Store, StoredMessage, Undone, digest,
};
use dispersy_sqlite::SqliteStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rand::SeedableRng;

const MAX: u64 = GlobalTime::MAX.0;

fn keys() -> &'static [PublicKey] {
    static KEYS: OnceLock<Vec<PublicKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..3)
            .map(|i| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i);
                PrivateKey::generate(&mut rng).public().clone()
            })
            .collect()
    })
}

fn community() -> impl Strategy<Value = CommunityId> {
    prop_oneof![
        4 => Just(CommunityId([1; 20])),
        2 => Just(CommunityId([2; 20])),
        1 => Just(CommunityId([3; 20])),
    ]
}

/// Authors whose byte order matters: unsigned comparison puts 0x80 after 0x01, and two differ
/// only in their last byte (`MemberId`'s `Debug` shows the first four bytes, so both print as
/// `01010101`).
fn member() -> impl Strategy<Value = MemberId> {
    let mut near = [0x01; 20];
    near[19] = 0x02;
    prop_oneof![
        Just(MemberId([0x01; 20])),
        Just(MemberId(near)),
        Just(MemberId([0x80; 20])),
        Just(MemberId([0xff; 20])),
    ]
}

fn meta() -> impl Strategy<Value = MetaId> {
    prop_oneof![4 => Just(MetaId(1)), 1 => Just(MetaId(0)), 1 => Just(MetaId(200))]
}

/// Global times a message can carry: a small dense range and the extremes.
fn stored_gt() -> impl Strategy<Value = GlobalTime> {
    prop_oneof![
        10 => (1u64..=12).prop_map(GlobalTime),
        1 => Just(GlobalTime(0)),
        1 => Just(GlobalTime(MAX - 1)),
        1 => Just(GlobalTime(MAX)),
    ]
}

/// Global times a query can name: also beyond what SQLite can store.
fn query_gt() -> impl Strategy<Value = GlobalTime> {
    prop_oneof![
        6 => stored_gt(),
        1 => Just(GlobalTime(MAX + 1)),
        1 => Just(GlobalTime(u64::MAX)),
    ]
}

fn seq_of(gt: GlobalTime) -> SequenceNumber {
    SequenceNumber((gt.0 as u32).wrapping_mul(0x9E37_79B9))
}

fn undone() -> impl Strategy<Value = Undone> {
    prop_oneof![
        Just(Undone::No),
        Just(Undone::ByPolicy),
        (member(), stored_gt()).prop_map(|(member, global_time)| Undone::ByMessage(MessageId {
            member,
            global_time
        })),
    ]
}

fn message() -> impl Strategy<Value = StoredMessage> {
    (
        community(),
        meta(),
        member(),
        stored_gt(),
        any::<bool>(),
        proptest::option::of(member()),
        proptest::collection::vec(any::<u8>(), 0..40),
        undone(),
    )
        .prop_map(
            |(community, meta, member, global_time, seq, second_member, packet, undone)| {
                let packet = Bytes::from(packet);
                StoredMessage {
                    community,
                    meta,
                    member,
                    global_time,
                    sequence: seq.then(|| seq_of(global_time)),
                    second_member,
                    digest: digest(&packet),
                    packet,
                    undone,
                }
            },
        )
}

fn message_id() -> impl Strategy<Value = MessageId> {
    (member(), query_gt()).prop_map(|(member, global_time)| MessageId {
        member,
        global_time,
    })
}

fn metas() -> impl Strategy<Value = Option<Vec<MetaId>>> {
    proptest::option::of(proptest::collection::vec(meta(), 0..3))
}

fn sequence() -> impl Strategy<Value = SequenceNumber> {
    prop_oneof![
        stored_gt().prop_map(seq_of),
        any::<u32>().prop_map(SequenceNumber),
        Just(SequenceNumber(0)),
        Just(SequenceNumber(u32::MAX)),
    ]
}

/// Sequence bounds: often everything, otherwise mostly ordered.
fn seq_bounds() -> impl Strategy<Value = (SequenceNumber, SequenceNumber)> {
    prop_oneof![
        1 => Just((SequenceNumber(0), SequenceNumber(u32::MAX))),
        2 => (sequence(), sequence(), 0..5).prop_map(|(a, b, swap)| match swap {
            0 => (a, b),
            _ => (a.min(b), a.max(b)),
        }),
    ]
}

fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(1), Just(3), Just(100), Just(usize::MAX)]
}

/// Mostly ordered bounds, so that most ranges hold something.
fn bounds() -> impl Strategy<Value = (GlobalTime, GlobalTime)> {
    (query_gt(), query_gt(), 0..5).prop_map(|(a, b, swap)| match swap {
        0 => (a, b),
        _ => (a.min(b), a.max(b)),
    })
}

fn range_query() -> impl Strategy<Value = RangeQuery> {
    (
        metas(),
        proptest::option::of(member()),
        bounds(),
        prop_oneof![Just(0u16), Just(1), Just(2), Just(3), Just(7)],
        prop_oneof![0u16..10, Just(u16::MAX)],
        prop_oneof![Just(Order::Ascending), Just(Order::Descending)],
        limit(),
    )
        .prop_map(
            |(metas, member, (low, high), modulo, offset, order, limit)| RangeQuery {
                metas,
                member,
                low,
                high,
                modulo,
                offset,
                order,
                limit,
            },
        )
}

fn record() -> impl Strategy<Value = CommunityRecord> {
    (
        community(),
        proptest::option::of(0..keys().len()),
        proptest::option::of(prop_oneof![
            Just(String::new()),
            Just("name = \"é\"".into())
        ]),
        prop_oneof![Just("test".to_string()), Just(String::new())],
    )
        .prop_map(|(id, master, spec, kind)| CommunityRecord {
            id,
            master: master.map(|k| keys()[k].clone()),
            spec,
            kind,
        })
}

#[derive(Debug, Clone)]
enum Op {
    PutMember(usize),
    Member(usize),
    UnknownMember(MemberId),
    PutCommunity(CommunityRecord),
    Community(CommunityId),
    Communities,
    RemoveCommunity(CommunityId),
    Insert(StoredMessage),
    Replace(StoredMessage),
    Message(CommunityId, MessageId),
    Delete(CommunityId, MessageId),
    SetUndone(CommunityId, MessageId, Undone),
    MaxGlobalTime(CommunityId),
    LastSequence(CommunityId, MemberId, MetaId),
    BySequence(
        CommunityId,
        MemberId,
        MetaId,
        SequenceNumber,
        SequenceNumber,
        usize,
    ),
    Range(CommunityId, RangeQuery),
    Count(CommunityId, Option<Vec<MetaId>>, GlobalTime, GlobalTime),
    Fingerprint(CommunityId, Option<Vec<MetaId>>, GlobalTime, GlobalTime),
    DeleteUpTo(CommunityId, MetaId, GlobalTime),
    Commit,
    /// `close()` and open again.
    Reopen,
    /// Drop without `close()` and open again.
    DropReopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..keys().len()).prop_map(Op::PutMember),
        1 => (0..keys().len()).prop_map(Op::Member),
        1 => member().prop_map(Op::UnknownMember),
        2 => record().prop_map(Op::PutCommunity),
        1 => community().prop_map(Op::Community),
        1 => Just(Op::Communities),
        1 => community().prop_map(Op::RemoveCommunity),
        20 => message().prop_map(Op::Insert),
        4 => message().prop_map(Op::Replace),
        4 => (community(), message_id()).prop_map(|(c, id)| Op::Message(c, id)),
        3 => (community(), message_id()).prop_map(|(c, id)| Op::Delete(c, id)),
        3 => (community(), message_id(), undone()).prop_map(|(c, id, u)| Op::SetUndone(c, id, u)),
        2 => community().prop_map(Op::MaxGlobalTime),
        2 => (community(), member(), meta()).prop_map(|(c, m, t)| Op::LastSequence(c, m, t)),
        3 => (community(), member(), meta(), seq_bounds(), limit())
            .prop_map(|(c, m, t, (lo, hi), n)| Op::BySequence(c, m, t, lo, hi, n)),
        6 => (community(), range_query()).prop_map(|(c, q)| Op::Range(c, q)),
        2 => (community(), metas(), bounds()).prop_map(|(c, m, (lo, hi))| Op::Count(c, m, lo, hi)),
        3 => (community(), metas(), bounds())
            .prop_map(|(c, m, (lo, hi))| Op::Fingerprint(c, m, lo, hi)),
        1 => (community(), meta(), query_gt()).prop_map(|(c, m, gt)| Op::DeleteUpTo(c, m, gt)),
        3 => Just(Op::Commit),
        1 => Just(Op::Reopen),
        1 => Just(Op::DropReopen),
    ]
}

/// Applies one operation to a store and renders its result for comparison.
fn apply(store: &mut dyn Store, op: &Op) -> String {
    match op {
        Op::PutMember(k) => format!("{:?}", store.put_member(&keys()[*k])),
        Op::Member(k) => format!("{:?}", store.member(&keys()[*k].member_id())),
        Op::UnknownMember(m) => format!("{:?}", store.member(m)),
        Op::PutCommunity(r) => format!("{:?}", store.put_community(r)),
        Op::Community(c) => format!("{:?}", store.community(c)),
        Op::Communities => format!("{:?}", store.communities()),
        Op::RemoveCommunity(c) => format!("{:?}", store.remove_community(c)),
        Op::Insert(m) => format!("{:?}", store.insert_message(m)),
        Op::Replace(m) => format!("{:?}", store.replace_message(m)),
        Op::Message(c, id) => format!("{:?}", store.message(c, id)),
        Op::Delete(c, id) => format!("{:?}", store.delete_message(c, id)),
        Op::SetUndone(c, id, u) => format!("{:?}", store.set_undone(c, id, *u)),
        Op::MaxGlobalTime(c) => format!("{:?}", store.max_global_time(c)),
        Op::LastSequence(c, m, t) => format!("{:?}", store.last_sequence(c, m, *t)),
        Op::BySequence(c, m, t, lo, hi, n) => {
            format!("{:?}", store.by_sequence(c, m, *t, *lo, *hi, *n))
        }
        Op::Range(c, q) => format!("{:?}", store.range(c, q)),
        Op::Count(c, m, lo, hi) => format!("{:?}", store.count(c, m.as_deref(), *lo, *hi)),
        Op::Fingerprint(c, m, lo, hi) => {
            format!("{:?}", store.fingerprint(c, m.as_deref(), *lo, *hi))
        }
        Op::DeleteUpTo(c, m, gt) => format!("{:?}", store.delete_up_to(c, *m, *gt)),
        Op::Commit => format!("{:?}", store.commit()),
        Op::Reopen | Op::DropReopen => String::new(),
    }
}

fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("model.db");
    let open = || SqliteStore::open(&path).map_err(|e| TestCaseError::fail(e.to_string()));
    let mut model = MemStore::new();
    let mut sqlite = open()?;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Reopen => {
                sqlite
                    .close()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                sqlite = open()?;
            }
            Op::DropReopen => {
                drop(sqlite);
                sqlite = open()?;
            }
            op => {
                let want = apply(&mut model, op);
                let got = apply(&mut sqlite, op);
                prop_assert_eq!(&got, &want, "operation {} ({:?}) differs", i, op);
            }
        }
        prop_assert_eq!(
            sqlite.message_count(),
            model.message_count() as u64,
            "message count after operation {} ({:?})",
            i,
            op
        );
    }
    sqlite
        .check()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn sqlite_store_behaves_like_mem_store() {
    let seed = env_u64("DISPERSY_SEED").unwrap_or_else(rand::random);
    let cases = env_u64("DISPERSY_MODEL_CASES").unwrap_or(64) as u32;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let strategy = proptest::collection::vec(op(), 1..200);
    match runner.run(&strategy, run_case) {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => panic!(
            "model test failed (reproduce with DISPERSY_SEED={seed}): {reason}\nminimal \
             operations:\n{ops:#?}"
        ),
        Err(TestError::Abort(reason)) => {
            panic!("model test aborted (DISPERSY_SEED={seed}): {reason}")
        }
    }
}
