//! The same scenario and seed give the same event log; another seed gives another. CI relies on
//! this test to run the smoke scenario twice.

mod common;

use std::path::PathBuf;

use common::{deterministic, run, scenario, seed};
use dispersy_sim::{Results, RunOptions, Scenario, run_scenario};

fn smoke() -> Scenario {
    scenario("smoke.toml")
}

#[test]
fn smoke_scenario_twice_gives_the_same_hash() {
    let sc = smoke();
    let seed = seed();
    eprintln!("smoke scenario, seed {seed} (set DISPERSY_SIM_SEED to change)");
    let a = run(&sc, seed);
    let b = run(&sc, seed);
    assert_eq!(a.event_log_hash, b.event_log_hash, "seed {seed}");
    assert_eq!(deterministic(a.clone()), deterministic(b), "seed {seed}");
    let c = run(&sc, seed.wrapping_add(1));
    assert_ne!(a.event_log_hash, c.event_log_hash, "seed {seed}");

    // The smoke scenario does exercise every model.
    assert!(a.engine.events > 5_000, "{:?}", a.engine);
    for reason in ["loss", "partition", "offline", "nat-filtered"] {
        assert!(
            a.drops.get(reason).copied().unwrap_or(0) > 0,
            "no {reason} drops: {:?}",
            a.drops
        );
    }
    assert!(a.engine.duplicates > 0 && a.engine.restarts > 0);
    assert_eq!(a.nat_mix.values().sum::<u32>(), 50);
    assert!(a.violations.is_empty(), "{:?}", a.violations);
    assert_eq!(a.end_reason, "time-limit");
}

#[test]
fn results_and_plots_are_written() {
    let mut sc = smoke();
    sc.duration = dispersy_sim::Span::secs(60);
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = RunOptions {
        output_dir: Some(dir.path().to_owned()),
        ..RunOptions::default()
    };
    let out = run_scenario(&sc, &opts, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = out
        .written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "results.json",
            "dissemination.svg",
            "bytes.svg",
            "convergence.svg"
        ]
    );
    let json = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    let back: Results = serde_json::from_str(&json).unwrap();
    assert_eq!(back.event_log_hash, out.results.event_log_hash);
    assert_eq!(back.nodes.len(), 52);
    for svg in &names[1..] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("polyline"),
            "{svg}"
        );
    }
}

#[test]
fn every_example_scenario_is_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../simulations");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("simulations/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(sc.output.dir, Some(dir.join("results").join(&sc.name)));
            seen += 1;
        }
    }
    assert!(seen >= 3, "only {seen} scenarios");
}
