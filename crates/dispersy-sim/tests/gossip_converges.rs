//! 200 toy-gossip peers behind a NAT mix converge: every injected item reaches every peer.

use dispersy_sim::{RunOptions, Scenario, run_scenario};

const SCENARIO: &str = r#"
name = "converge-200"
duration = "900s"
[nodes]
peers = 200
trackers = 2
[network]
base_latency = "20ms"
jitter = { kind = "exponential", mean = "2ms" }
loss = { model = "bernoulli", p = 0.01 }
[nat]
full_cone = 0.15
restricted_cone = 0.2
port_restricted_cone = 0.25
symmetric = 0.1
[workload]
messages = 10
start = "30s"
interval = "1s"
"#;

#[test]
fn two_hundred_peers_converge() {
    let seed = std::env::var("DISPERSY_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    eprintln!("seed {seed} (set DISPERSY_SIM_SEED to change)");
    let sc = Scenario::from_toml(SCENARIO).unwrap();
    let opts = RunOptions {
        seed: Some(seed),
        write_outputs: false,
        ..RunOptions::default()
    };
    let mut ticks = 0;
    let r = run_scenario(&sc, &opts, &mut |_| ticks += 1)
        .unwrap_or_else(|e| panic!("{e}"))
        .results;
    assert_eq!(r.end_reason, "converged", "seed {seed}");
    let t = r.convergence_s.expect("converged");
    assert!(ticks as f64 >= t, "progress is reported every sample");
    assert_eq!(r.items.len(), 10);
    for item in &r.items {
        let full = item
            .t100_s
            .unwrap_or_else(|| panic!("seed {seed}: {item:?}"));
        assert!(item.t50_s.unwrap() <= item.t90_s.unwrap() && item.t90_s.unwrap() <= full);
        // Push-pull gossip spreads in O(log n) rounds; 200 peers should take well under the
        // 900-second limit (180 rounds).
        assert!(
            full < 300.0,
            "seed {seed}: item {} took {full} s",
            item.item
        );
    }
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    // Everybody talked; NATs refused some unsolicited traffic.
    assert!(r.nodes.iter().all(|n| n.sent_packets > 0));
    assert!(
        r.drops.get("nat-filtered").copied().unwrap_or(0)
            + r.drops.get("nat-no-mapping").copied().unwrap_or(0)
            > 0
    );
}
