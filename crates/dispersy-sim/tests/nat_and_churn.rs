//! NAT behaviours and churn seen through whole runs.

use dispersy_sim::{NatKind, Results, Role, RunOptions, Scenario, run_scenario};

#[allow(clippy::print_stderr)] // a test helper: tests print their seed
fn run(text: &str) -> Results {
    let sc = Scenario::from_toml(text).expect("scenario parses");
    // The scenario's seed unless DISPERSY_SIM_SEED overrides it.
    let seed = std::env::var("DISPERSY_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    eprintln!("seed {}", seed.unwrap_or(sc.seed));
    let opts = RunOptions {
        seed,
        write_outputs: false,
        ..RunOptions::default()
    };
    run_scenario(&sc, &opts, &mut |_| {})
        .unwrap_or_else(|e| panic!("{e}"))
        .results
}

fn peers_heard_from(r: &Results) -> f64 {
    let peers: Vec<_> = r.nodes.iter().filter(|n| n.role == Role::Peer).collect();
    peers.iter().map(|n| n.recv_packets as f64).sum::<f64>() / peers.len() as f64
}

/// With everyone behind a symmetric NAT, peers can only ever talk to the tracker: every
/// introduction they receive points at a mapping made for someone else.
#[test]
fn symmetric_nats_isolate_peers_full_cones_do_not() {
    let base = |kind: NatKind| {
        format!(
            "name = \"nat\"\nseed = 9\nduration = \"120s\"\n[nodes]\npeers = 30\ntrackers = 1\n[nat]\n{} = 1.0\n[stop]\non_convergence = false\n",
            kind.name().replace('-', "_")
        )
    };
    let sym = run(&base(NatKind::Symmetric));
    let cone = run(&base(NatKind::FullCone));
    assert_eq!(sym.nat_mix["symmetric"], 30);
    assert!(sym.drops["nat-filtered"] > 0, "{:?}", sym.drops);
    assert_eq!(cone.drops.get("nat-filtered"), None, "{:?}", cone.drops);
    // Symmetric peers only get tracker replies; full-cone peers also get peer requests.
    assert!(peers_heard_from(&cone) > 2.0 * peers_heard_from(&sym));
}

#[test]
fn churn_restarts_with_and_without_state() {
    let text = r#"
name = "churn"
seed = 4
duration = "300s"
[nodes]
peers = 40
trackers = 1
[churn]
session = { kind = "exponential", mean = "20s" }
downtime = "10s"
keep_state = 0.5
[workload]
messages = 5
start = "5s"
[stop]
on_convergence = false
"#;
    let r = run(text);
    let tracker = &r.nodes[0];
    assert_eq!(tracker.churn.departures, 0, "trackers are exempt");
    let kept: u32 = r.nodes.iter().map(|n| n.churn.restarts_kept).sum();
    let lost: u32 = r.nodes.iter().map(|n| n.churn.restarts_lost).sum();
    let left: u32 = r.nodes.iter().map(|n| n.churn.departures).sum();
    // ~40 peers x 300 s / 30 s per cycle = ~400 departures, half keeping state.
    assert!((250..=550).contains(&left), "{left} departures");
    assert!(kept + lost <= left && kept + lost + 40 >= left);
    let share = f64::from(kept) / f64::from(kept + lost);
    assert!((0.4..=0.6).contains(&share), "kept {kept}, lost {lost}");
    assert!(r.drops["offline"] > 0);
    assert!(r.series.iter().any(|p| p.online_peers < 40));
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}
