//! The `dispersy` program.
//!
//! One module per command group under `cmd/`; each exposes an `Args` struct (clap derive) and a
//! `run` function returning the process exit code. Add a group by adding a module and a variant
//! to [`Command`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod cmd;

/// Dispersy: decentralized communities with signed messages, a permission timeline,
/// Bloom-filter synchronization and a NAT-traversing random walk.
#[derive(Debug, Parser)]
#[command(name = "dispersy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a member key and print its member id.
    Keygen(cmd::keys::KeygenArgs),
    /// Print the member id and public key of a key file.
    Id(cmd::keys::IdArgs),
    /// Decode packets given as hex and print one JSON object per packet.
    Decode(cmd::decode::DecodeArgs),
    /// Benchmarks (`bench sync`: catch-up, classic sync, near-equal stores); prints JSON.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    // Logs go to stderr so stdout stays machine-readable; RUST_LOG picks the level.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(args) => cmd::keys::keygen(&args),
        Command::Id(args) => cmd::keys::id(&args),
        Command::Decode(args) => cmd::decode::run(&args),
        Command::Bench(args) => cmd::bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
