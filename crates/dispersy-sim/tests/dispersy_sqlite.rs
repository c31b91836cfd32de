//! With the `sqlite` feature: the dispersy smoke scenario on SQLite stores (files in a temporary
//! directory, reopened by nodes that restart keeping their state) runs exactly as on memory
//! stores. `cargo test -p dispersy-sim --features sqlite --test dispersy_sqlite`.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use dispersy_sim::{Results, RunOptions, Scenario, run_scenario};

fn run(sc: &Scenario) -> Results {
    let opts = RunOptions {
        write_outputs: false,
        ..RunOptions::default()
    };
    match run_scenario(sc, &opts, &mut |_| {}) {
        Ok(outcome) => outcome.results,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn sqlite_stores_run_like_memory_stores() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../simulations/dispersy-smoke.toml");
    let memory = Scenario::load(&path).unwrap();
    let mut sqlite = memory.clone();
    sqlite
        .nodes
        .config
        .insert("store".into(), toml::Value::String("sqlite".into()));
    let a = run(&memory);
    let b = run(&sqlite);
    assert!(b.violations.is_empty(), "{:?}", b.violations);
    assert_eq!(b.adapter["store_errors"], 0);
    assert!(b.engine.restarts > 0);
    assert_eq!(a.event_log_hash, b.event_log_hash);
}
