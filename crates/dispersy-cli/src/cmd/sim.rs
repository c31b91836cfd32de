//! `dispersy sim run FILE`: runs a scenario of the deterministic simulator with a progress bar,
//! writes `results.json` and the plots, and prints a summary.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dispersy_sim::{Outcome, Progress, Results, RunError, RunOptions, Scenario, run_scenario};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `dispersy sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SimCommand {
    /// Run a scenario file (see simulations/README.md) and write its results.
    Run(RunArgs),
}

/// Arguments of `dispersy sim run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The scenario file (TOML).
    file: PathBuf,
    /// Replace the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Write results.json and the plots here instead of the scenario's output directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write nothing; only print the summary.
    #[arg(long, conflicts_with = "out")]
    no_output: bool,
    /// Override a `[nodes.config]` entry, as TOML: `--set verified_cache=false`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the `sim` command group.
pub fn run(args: &SimArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        SimCommand::Run(a) => run_file(a),
    }
}

/// Parses `key=value` (the value as TOML, or a bare string when it is not TOML).
fn parse_set(text: &str) -> anyhow::Result<(String, toml::Value)> {
    let (key, value) = text
        .split_once('=')
        .with_context(|| format!("--set {text:?}: expected KEY=VALUE"))?;
    let key = key.trim();
    anyhow::ensure!(!key.is_empty(), "--set {text:?}: empty key");
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    Ok((key.to_owned(), parsed))
}

fn run_file(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut sc = Scenario::load(&args.file)?;
    for s in &args.set {
        let (key, value) = parse_set(s)?;
        sc.nodes.config.insert(key, value);
    }
    let opts = RunOptions {
        seed: args.seed,
        output_dir: args.out.clone(),
        write_outputs: !args.no_output,
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(sc.duration.0.as_secs().max(1))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s simulated  {msg}",
        )
        .context("progress bar template")?,
    );
    let seed = args.seed.unwrap_or(sc.seed);
    bar.set_message(format!("{} (seed {seed}) starting", sc.name));
    let outcome = run_scenario(&sc, &opts, &mut |p: &Progress| {
        bar.set_position(p.now.since_epoch().as_secs());
        bar.set_message(format!(
            "{} events, {} peers online, items {}/{} complete",
            p.events, p.online_peers, p.items_complete, p.items_injected
        ));
    });
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(Outcome { results, written }) => {
            summary(&mut out, &results)?;
            for path in written {
                writeln!(out, "wrote {}", path.display())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(RunError::Failed {
            seed,
            message,
            results,
        }) => {
            summary(&mut out, &results)?;
            let mut err = std::io::stderr().lock();
            writeln!(err, "error: run failed with seed {seed}: {message}")?;
            writeln!(
                err,
                "reproduce with: dispersy sim run {} --seed {seed}",
                args.file.display()
            )?;
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn summary(out: &mut dyn Write, r: &Results) -> anyhow::Result<()> {
    writeln!(
        out,
        "scenario {} ({} nodes of kind {}), seed {}: ended {} at {:.0} s simulated",
        r.scenario,
        r.nodes.len(),
        r.node_kind,
        r.seed,
        r.end_reason,
        r.simulated_s
    )?;
    writeln!(out, "event log hash {}", r.event_log_hash)?;
    writeln!(
        out,
        "{} events in {:.1} s = {:.0} events/s",
        r.engine.events, r.wall_s, r.events_per_sec
    )?;
    let done = r.items.iter().filter(|i| i.t100_s.is_some()).count();
    write!(
        out,
        "{} items injected, {done} reached every online peer",
        r.items.len()
    )?;
    let mut steps: Vec<f64> = r
        .items
        .iter()
        .filter_map(|i| i.t100_s)
        .map(|t| t / r.step_interval_s.max(1e-9))
        .collect();
    steps.sort_by(f64::total_cmp);
    if let Some(median) = steps.get(steps.len() / 2) {
        write!(
            out,
            " (median {median:.1} steps of {} s)",
            r.step_interval_s
        )?;
    }
    writeln!(out)?;
    match r.convergence_s {
        Some(t) => writeln!(out, "converged at {t:.0} s")?,
        None => writeln!(out, "did not converge")?,
    }
    if let Some(p) = &r.pairs {
        writeln!(
            out,
            "peer pairs: {} tried, {} connected ({:.1} %)",
            p.all.tried,
            p.all.connected,
            100.0 * p.all.fraction()
        )?;
    }
    for v in &r.violations {
        writeln!(out, "violation: {v}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_are_toml_or_strings() {
        let (k, v) = parse_set("verified_cache=false").unwrap();
        assert_eq!(
            (k.as_str(), v),
            ("verified_cache", toml::Value::Boolean(false))
        );
        assert_eq!(parse_set("push = 20").unwrap().1, toml::Value::Integer(20));
        assert_eq!(
            parse_set("store=sqlite").unwrap().1,
            toml::Value::String("sqlite".into())
        );
        assert!(parse_set("novalue").is_err());
        assert!(parse_set("=1").is_err());
    }
}
