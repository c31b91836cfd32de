//! Reconciliation driven end to end between two in-memory stores.

use super::*;
use rand::Rng;

use crate::sync::testkit::{self, Session, pair, session, universe};

#[test]
fn ten_and_ten_differences_in_twenty_thousand() {
    let (mut rng, seed) = testkit::rng(41);
    let (mut a, mut b, all) = pair(20_000, 10, 10, 100, &mut rng);
    let u = universe(&all);
    let s = session(&mut a, &mut b, &Config::default(), &u);
    eprintln!("20,000 + 10/10: {s:?}");
    assert_eq!(
        testkit::ids(&a.store),
        testkit::ids(&b.store),
        "seed {seed}"
    );
    assert_eq!(a.store.message_count(), 20_020);
    assert!(s.round_trips <= 3, "seed {seed}: {s:?}");
    assert!(s.reconcile_bytes <= 16 * 1024, "seed {seed}: {s:?}");
}

/// The target: 100,000 shared, 10 + 10 different, at most 3 round trips and 16 KiB.
#[test]
fn ten_and_ten_differences_in_a_hundred_thousand() {
    let (mut rng, seed) = testkit::rng(42);
    let mut worst = Session::default();
    for trial in 0..2 {
        let (mut a, mut b, all) = pair(100_000, 10, 10, 100, &mut rng);
        let u = universe(&all);
        let s = session(&mut a, &mut b, &Config::default(), &u);
        eprintln!("trial {trial}: {s:?}");
        assert_eq!(
            testkit::ids(&a.store),
            testkit::ids(&b.store),
            "seed {seed} trial {trial}"
        );
        assert_eq!(s.packets - s.duplicates, 20);
        worst.round_trips = worst.round_trips.max(s.round_trips);
        worst.reconcile_bytes = worst.reconcile_bytes.max(s.reconcile_bytes);
    }
    assert!(worst.round_trips <= 3, "seed {seed}: {worst:?}");
    assert!(worst.reconcile_bytes <= 16 * 1024, "seed {seed}: {worst:?}");
}

/// Random pairs, from equal to very different: sessions repeat until the stores are equal,
/// which must happen within a few sessions.
#[test]
fn random_pairs_converge() {
    let (mut rng, seed) = testkit::rng(43);
    for case in 0..40 {
        let common = [0, 1, 50, 2_000, 8_000][rng.gen_range(0..5)];
        let a_only = [0, 1, 2, 30, 500][rng.gen_range(0..5)];
        let b_only = [0, 1, 3, 30, 2_000][rng.gen_range(0..5)];
        let authors = rng.gen_range(1..60);
        let (mut a, mut b, all) = pair(common, a_only, b_only, authors, &mut rng);
        let u = universe(&all);
        let mut sessions = 0;
        while testkit::ids(&a.store) != testkit::ids(&b.store) {
            sessions += 1;
            assert!(
                sessions <= 6,
                "seed {seed} case {case}: {common}/{a_only}/{b_only}, {authors} authors"
            );
            let (x, y) = if sessions % 2 == 1 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            let s = session(x, y, &Config::default(), &u);
            eprintln!(
                "case {case} session {sessions}: {s:?}, now {} / {}",
                a.store.message_count(),
                b.store.message_count()
            );
        }
        assert_eq!(a.store.message_count(), common + a_only + b_only);
    }
}

#[test]
fn work_and_reply_are_bounded() {
    let (mut rng, _) = testkit::rng(44);
    let (a, _, _) = pair(5_000, 0, 0, 20, &mut rng);
    let mut a = a;
    // 20,000 one-wide ranges that all differ.
    let mut m = Message::new(0);
    for gt in 1..20_000u64 {
        m.push(
            Entry {
                low: GlobalTime(gt),
                high: GlobalTime(gt),
                mode: Mode::Fingerprint { count: 7, sum: 1 },
            },
            usize::MAX,
        );
    }
    let config = Config::default();
    let out = process(&a.store, &mut a.index, &config, &m, 500, 3_000).unwrap();
    assert!(out.reply.encoded_len() <= 500);
    assert!(out.bytes <= 3_000);
    // It stopped answering when the reply filled up and handed the rest back as one range,
    // comparing (not answering) up to `max_entries`.
    assert!(out.stats.ids + out.stats.split + out.stats.single + out.stats.needed < 100);
    assert_eq!(
        out.stats.equal + out.stats.differing,
        config.max_entries as u32
    );
    let last = out.reply.entries().last().unwrap();
    assert_eq!(last.high, GlobalTime(19_999));
    assert!(matches!(last.mode, Mode::Fingerprint { .. }));
    // Without a reply limit, at most `max_entries` are answered in detail.
    let out = process(&a.store, &mut a.index, &config, &m, usize::MAX, usize::MAX).unwrap();
    assert_eq!(
        out.stats.equal + out.stats.differing,
        config.max_entries as u32
    );
    assert_eq!(
        out.reply.entries().last().unwrap().low,
        GlobalTime(config.max_entries as u64 + 1)
    );
    // Past the round limit nothing is answered.
    let mut late = Message::new(config.max_round);
    late.push(
        Entry {
            low: GlobalTime(1),
            high: GlobalTime(9),
            mode: Mode::Ids(vec![]),
        },
        100,
    );
    let out = process(&a.store, &mut a.index, &config, &late, 500, 3_000).unwrap();
    assert!(out.reply.is_empty() && out.packets.is_empty());
}

/// Responder cost of reconciliation on 100,000 messages, with a warm and a cold index; run
/// with `--release -- --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn costs_on_a_hundred_thousand() {
    use crate::sync::FingerprintIndex;
    use crate::sync::index::DEFAULT_MAX_BUCKETS;
    let (mut rng, _) = testkit::rng(45);
    let (mut a, mut b, all) = pair(100_000, 10, 10, 100, &mut rng);
    let config = Config::default();
    let msg = start(&a.store, &mut a.index, &config, testkit::MAX_LEN).unwrap();
    let t = std::time::Instant::now();
    let cold = process(
        &b.store,
        &mut b.index,
        &config,
        &msg,
        testkit::MAX_LEN,
        testkit::BUDGET,
    )
    .unwrap();
    let cold_t = t.elapsed();
    let t = std::time::Instant::now();
    let n = 20;
    for _ in 0..n {
        process(
            &b.store,
            &mut b.index,
            &config,
            &msg,
            testkit::MAX_LEN,
            testkit::BUDGET,
        )
        .unwrap();
    }
    let warm_t = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut fresh = FingerprintIndex::new(
            testkit::COMMUNITY,
            &testkit::simple_policies(),
            DEFAULT_MAX_BUCKETS,
        );
        process(
            &b.store,
            &mut fresh,
            &config,
            &msg,
            testkit::MAX_LEN,
            testkit::BUDGET,
        )
        .unwrap();
    }
    let none_t = t.elapsed() / n;
    eprintln!(
        "first message ({} entries): cold index {cold_t:?}, warm index {warm_t:?}, no index {none_t:?}; {:?}; index {} buckets, {:?}",
        msg.entries().len(),
        cold.stats,
        b.index.cached(),
        b.index.stats()
    );
    let u = universe(&all);
    let s = session(&mut a, &mut b, &config, &u);
    eprintln!("session {s:?}");
    for (d, label) in [(100usize, "100+100"), (1_000, "1000+1000")] {
        let (mut a, mut b, all) = pair(100_000, d, d, 100, &mut rng);
        let u = universe(&all);
        let mut total = Session::default();
        let mut sessions = 0;
        while testkit::ids(&a.store) != testkit::ids(&b.store) && sessions < 10 {
            let s = session(&mut a, &mut b, &config, &u);
            sessions += 1;
            total.round_trips += s.round_trips;
            total.reconcile_bytes += s.reconcile_bytes;
            total.packets += s.packets;
            total.duplicates += s.duplicates;
        }
        eprintln!("{label}: {sessions} sessions, {total:?}");
    }
}

/// Everything at one global time (many authors): ranges cannot be split, keys settle it.
#[test]
fn one_crowded_global_time() {
    let (mut rng, seed) = testkit::rng(46);
    let all: Vec<StoredMessage> = (0..300)
        .map(|author| testkit::message(1, author, 5, 100, &mut rng))
        .collect();
    let a: Vec<&StoredMessage> = all.iter().skip(3).collect();
    let b: Vec<&StoredMessage> = all
        .iter()
        .filter(|m| m.member != testkit::member(7))
        .filter(|m| m.member != testkit::member(8))
        .collect();
    let (mut a, mut b) = (testkit::Side::new(&a), testkit::Side::new(&b));
    let u = universe(&all);
    let s = session(&mut a, &mut b, &Config::default(), &u);
    eprintln!("{s:?}");
    // Keys of 297 messages do not fit a reply: Bloom filters settle it.
    assert_eq!(a.store.message_count(), 300, "seed {seed}: {s:?}");
    assert_eq!(b.store.message_count(), 300, "seed {seed}: {s:?}");
    assert!(s.round_trips <= 2, "seed {seed}: {s:?}");
}

#[test]
fn messages_the_caller_refuses_are_never_sent() {
    let (mut rng, _) = testkit::rng(43);
    let msgs = testkit::corpus(300, 5, 64, &mut rng);
    let a = testkit::Side::new(&msgs.iter().collect::<Vec<_>>());
    let mut b = testkit::Side::new(&[]);
    let refused = msgs[7].packet.clone();
    let servable = |m: &StoredMessage| m.packet != refused;
    // B, holding nothing, asks; A answers everything it holds but the refused one.
    let config = Config::default();
    let first = start(&b.store, &mut b.index, &config, 960).unwrap();
    let mut a_index = a.index.clone();
    let out = process_with(
        &a.store,
        &mut a_index,
        &config,
        &first,
        960,
        usize::MAX,
        &servable,
    )
    .unwrap();
    assert_eq!(out.packets.len(), 299);
    assert!(!out.packets.contains(&refused));
}
