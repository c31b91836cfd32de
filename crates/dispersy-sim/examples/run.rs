//! Runs a scenario file and prints a summary, including the engine's speed:
//! `cargo run --release -p dispersy-sim --example run -- simulations/smoke.toml [--seed N] [--no-output]`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use dispersy_sim::{RunOptions, run_file};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut opts = RunOptions::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => opts.seed = args.next().and_then(|s| s.parse().ok()),
            "--no-output" => opts.write_outputs = false,
            _ => path = Some(PathBuf::from(a)),
        }
    }
    let Some(path) = path else {
        eprintln!("usage: run SCENARIO.toml [--seed N] [--no-output]");
        std::process::exit(2);
    };
    let mut last = 0;
    let outcome = run_file(&path, &opts, &mut |p| {
        let pct = p.now.as_micros() * 100 / p.end.as_micros().max(1);
        if pct >= last + 10 {
            last = pct;
            eprintln!(
                "{pct:3}%  t={:?}  events={}  online={}  items {}/{}",
                p.now, p.events, p.online_peers, p.items_complete, p.items_injected
            );
        }
    });
    match outcome {
        Ok(o) => {
            let r = &o.results;
            println!(
                "scenario {} seed {} ended: {}",
                r.scenario, r.seed, r.end_reason
            );
            println!("event log hash {}", r.event_log_hash);
            println!(
                "{} events in {:.2} s wall = {:.0} events/s; simulated {:.0} s",
                r.engine.events, r.wall_s, r.events_per_sec, r.simulated_s
            );
            println!("engine {:?}", r.engine);
            println!("drops {:?}", r.drops);
            println!("nat mix {:?}", r.nat_mix);
            println!("convergence {:?}", r.convergence_s);
            for i in r.items.iter().take(5) {
                println!("item {i:?}");
            }
            for v in &r.violations {
                println!("violation {v}");
            }
            for p in &o.written {
                println!("wrote {}", p.display());
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
