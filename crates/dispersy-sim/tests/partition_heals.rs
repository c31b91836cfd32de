//! A partition stops an item at the cut; once it heals the item crosses.

use dispersy_sim::{RunOptions, Scenario, run_scenario};

#[test]
fn items_cross_only_after_the_partition_heals() {
    // Trackers 0 and 1; side A = tracker 0 + peers 2..=21, side B = the rest.
    let groups: Vec<u32> = std::iter::once(0).chain(2..=21).collect();
    let text = format!(
        r#"
name = "partition"
seed = 5
duration = "400s"
[nodes]
peers = 40
trackers = 2
[[partitions]]
start = "0s"
end = "150s"
groups = [{groups:?}]
[workload]
messages = 1
start = "60s"
origins = [2]
[stop]
convergence = 1.0
"#
    );
    let sc = Scenario::from_toml(&text).unwrap();
    let seed = std::env::var("DISPERSY_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    eprintln!(
        "seed {} (set DISPERSY_SIM_SEED to change)",
        seed.unwrap_or(sc.seed)
    );
    let opts = RunOptions {
        seed,
        write_outputs: false,
        ..RunOptions::default()
    };
    let r = run_scenario(&sc, &opts, &mut |_| {})
        .unwrap_or_else(|e| panic!("{e}"))
        .results;
    let item = &r.items[0];
    assert_eq!(item.origin, 2);
    // Half the peers are on the origin's side: 50 % is reachable while cut, 90 % is not.
    assert!(item.t50_s.unwrap() < 90.0, "{item:?}");
    let t90 = item.t90_s.expect("reached 90 % after healing");
    assert!(
        item.injected_s + t90 > 150.0,
        "crossed the cut before it healed: {item:?}"
    );
    assert!(r.convergence_s.unwrap() > 150.0);
    assert!(r.drops["partition"] > 0);
    // During the cut coverage stayed at or below the origin's side.
    let during: Vec<f64> = r
        .series
        .iter()
        .filter(|p| p.t_s > 60.0 && p.t_s < 150.0)
        .map(|p| p.mean_coverage)
        .collect();
    assert!(during.iter().all(|c| *c <= 0.5 + 1e-9), "{during:?}");
}
