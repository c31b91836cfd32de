//! The real dispersy node in the simulator: the same scenario and seed give the same event log,
//! with or without the shared verification cache; another seed gives another. CI runs this.
#![allow(clippy::unwrap_used)]

mod common;

use common::{deterministic, run, scenario, seed};
use dispersy_sim::{Scenario, Span};

/// The smoke scenario cut to its first 60 s (churn from 20 s, the partition from 40 s to 55 s,
/// most of the posts): four runs of it stay within a few seconds in a debug build.
fn smoke() -> Scenario {
    let mut sc = scenario("dispersy-smoke.toml");
    sc.duration = Span::secs(60);
    sc
}

#[test]
fn same_seed_same_log_with_or_without_the_verification_cache_and_bloom_memo() {
    let sc = smoke();
    let seed = seed();
    eprintln!("dispersy smoke scenario, seed {seed} (set DISPERSY_SIM_SEED to change)");
    let a = run(&sc, seed);
    let b = run(&sc, seed);
    assert_eq!(a.event_log_hash, b.event_log_hash, "seed {seed}");
    assert_eq!(deterministic(a.clone()), deterministic(b), "seed {seed}");

    let mut uncached = sc.clone();
    uncached
        .nodes
        .config
        .insert("verified_cache".into(), toml::Value::Boolean(false));
    let c = run(&uncached, seed);
    assert_eq!(
        a.event_log_hash, c.event_log_hash,
        "seed {seed}: the cache changed the run"
    );
    assert!(c.adapter["verified_cache"].is_null());
    let hits = a.adapter["verified_cache"]["hits"].as_u64().unwrap();
    assert!(hits > 100, "cache hits {hits}");

    let mut unmemoed = sc.clone();
    unmemoed
        .nodes
        .config
        .insert("bloom_memo".into(), toml::Value::Boolean(false));
    let e = run(&unmemoed, seed);
    assert_eq!(
        a.event_log_hash, e.event_log_hash,
        "seed {seed}: the Bloom memo changed the run"
    );
    assert!(e.adapter["bloom_memo"].is_null());
    let memo_hits = a.adapter["bloom_memo"]["hits"].as_u64().unwrap();
    assert!(memo_hits > 100, "Bloom memo hits {memo_hits}");

    let d = run(&sc, seed.wrapping_add(1));
    assert_ne!(a.event_log_hash, d.event_log_hash, "seed {seed}");

    // The scenario does exercise the node: messages spread, restarts happen, checks pass.
    assert!(a.violations.is_empty(), "seed {seed}: {:?}", a.violations);
    assert!(a.engine.restarts > 0, "{:?}", a.engine);
    assert_eq!(a.adapter["store_errors"], 0);
    // Most posts reached a peer besides their author (two of at most 40 is 5 %).
    let spread = a.items.iter().filter(|i| i.final_coverage > 0.05).count();
    assert!(spread > a.items.len() / 2, "seed {seed}: {:?}", a.items);
    let accepted = &a.adapter["counters"]["peer"]["accepted"];
    assert!(accepted["1"].as_u64().unwrap() > 100, "{accepted}");
}
