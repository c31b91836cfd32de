//! Helpers shared by the determinism tests: the seed from the environment, a run without
//! output files, and the results without their wall-clock fields.

use std::path::PathBuf;

use dispersy_sim::{Results, RunOptions, Scenario, run_scenario};

/// A scenario file of `simulations/`.
pub fn scenario(file: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../simulations")
        .join(file);
    match Scenario::load(&path) {
        Ok(sc) => sc,
        Err(e) => panic!("{file} loads: {e}"),
    }
}

/// `DISPERSY_SIM_SEED`, else 1.
pub fn seed() -> u64 {
    std::env::var("DISPERSY_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs `sc` with `seed`, writing no files.
pub fn run(sc: &Scenario, seed: u64) -> Results {
    let opts = RunOptions {
        seed: Some(seed),
        write_outputs: false,
        ..RunOptions::default()
    };
    match run_scenario(sc, &opts, &mut |_| {}) {
        Ok(outcome) => outcome.results,
        Err(e) => panic!("{e}"),
    }
}

/// Everything but the wall-clock fields.
pub fn deterministic(mut r: Results) -> Results {
    r.wall_s = 0.0;
    r.events_per_sec = 0.0;
    r
}
