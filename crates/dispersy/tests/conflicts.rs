//! Conflicts and last-sync history: the fix of W2 (one winner rule) and Dispersy's test_sync
//! last-sync cases.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use dispersy::testing::Network;

/// Two packets of one author at one global time that differ only after their first 64 bytes.
fn twins(b: &Blog, meta: dispersy::ids::MetaId, seq: Option<u32>) -> (Bytes, Bytes) {
    let x = outsider(9);
    let p = b.craft(&x, meta, 20, seq, &text("version a"));
    let q = b.craft(&x, meta, 20, seq, &text("version b"));
    assert_eq!(p[..64], q[..64]);
    if p < q { (p, q) } else { (q, p) }
}

/// W2: Dispersy compared the first `siglen` bytes to detect "same payload, different
/// signature" and then kept the HIGHER packet, while sequence conflicts kept the LOWER one.
/// Here the lowest packet wins every conflict, in any order, on every node.
#[test]
fn w2_the_lowest_packet_wins_every_conflict() {
    for meta in [NOTE, TEXT] {
        let mut b = Blog::new(3, 61);
        let seq = (meta == TEXT).then_some(1);
        let (low, high) = twins(&b, meta, seq);
        let src = Network::address(0);
        b.ask(src, 1, &low);
        let back = b.ask(src, 1, &high);
        assert_eq!(
            back.iter().map(|t| t.contents.clone()).collect::<Vec<_>>(),
            vec![low.clone()]
        );
        b.ask(src, 2, &high);
        let back = b.ask(src, 2, &low);
        assert!(back.is_empty());
        let id = mid(&outsider(9), 20);
        for i in [1, 2] {
            assert_eq!(b.packet(i, &id), low, "meta {meta} node {i}");
        }
    }
}

/// A sequence conflict at different global times: the lower global time wins and the
/// messages after the loser go with it.
#[test]
fn sequence_conflict_keeps_the_lower_global_time() {
    let mut b = Blog::new(2, 62);
    let x = outsider(9);
    let first = b.craft(&x, TEXT, 10, Some(1), &text("one"));
    let second = b.craft(&x, TEXT, 11, Some(2), &text("two"));
    let rival = b.craft(&x, TEXT, 8, Some(1), &text("rival one"));
    let src = Network::address(0);
    b.ask(src, 1, &first);
    b.ask(src, 1, &second);
    assert_eq!(b.stored_of(1, TEXT).len(), 2);
    b.ask(src, 1, &rival);
    let kept: Vec<Bytes> = b.stored_of(1, TEXT).into_iter().map(|m| m.packet).collect();
    assert_eq!(kept, vec![rival.clone()]);
    // The other order: the rival is kept, the loser is answered with it.
    let back = b.ask(src, 0, &rival);
    assert!(back.is_empty());
    let back = b.ask(src, 0, &first);
    assert_eq!(of_type(&back, TEXT.0), vec![rival]);
}

/// test_sync.last_1: a newer message replaces the older; an older one is dropped and its
/// sender gets the newer.
#[test]
fn last_1_keeps_the_newest_and_answers_with_it() {
    let mut b = Blog::new(2, 63);
    let x = outsider(2);
    let old = b.craft(&x, PROFILE, 10, None, &text("old"));
    let new = b.craft(&x, PROFILE, 20, None, &text("new"));
    let src = Network::address(0);
    b.ask(src, 1, &old);
    b.ask(src, 1, &new);
    let kept: Vec<Bytes> = b
        .stored_of(1, PROFILE)
        .into_iter()
        .map(|m| m.packet)
        .collect();
    assert_eq!(kept, vec![new.clone()]);
    let back = b.ask(src, 1, &old);
    assert_eq!(of_type(&back, PROFILE.0), vec![new]);
}

/// test_sync.last_9: out-of-order arrivals end with the nine newest.
#[test]
fn last_9_keeps_the_nine_newest() {
    let mut b = Blog::new(2, 64);
    let x = outsider(3);
    let order = [5u64, 1, 12, 3, 9, 7, 2, 11, 4, 10, 6, 8];
    for t in order {
        let p = b.craft(&x, STATUS, t, None, &text(&format!("s{t}")));
        b.ask(Network::address(0), 1, &p);
    }
    let mut kept: Vec<u64> = b
        .stored_of(1, STATUS)
        .into_iter()
        .map(|m| m.global_time.0)
        .collect();
    kept.sort_unstable();
    assert_eq!(kept, (4..=12).collect::<Vec<_>>());
}
