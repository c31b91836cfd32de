//! The `dispersy` program.
//!
//! One module per command group under `cmd/`; each exposes an `Args` struct (clap derive) and a
//! `run` function returning the process exit code. Add a group by adding a module and a variant
//! to [`Command`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// A tracker and five nodes on loopback in a microblog community, converging live.
    Demo(cmd::demo::DemoArgs),
    /// Run a node: UDP, the SQLite store, the REST API and the web dashboard.
    Node(cmd::node::NodeArgs),
    /// Post a message through a running node.
    Post(cmd::client::PostArgs),
    /// List (or follow) a community's messages on a running node.
    Messages(cmd::client::MessagesArgs),
    /// A running node's candidates per community.
    Peers(cmd::client::PeersArgs),
    /// A running node's identity, addresses, communities and traffic.
    Status(cmd::client::StatusArgs),
    /// Generate a member key and print its member id.
    Keygen(cmd::keys::KeygenArgs),
    /// Print the member id and public key of a key file.
    Id(cmd::keys::IdArgs),
    /// Decode packets given as hex and print one JSON object per packet.
    Decode(cmd::decode::DecodeArgs),
    /// Run simulations: `dispersy sim run FILE`.
    Sim(cmd::sim::SimArgs),
    /// Run a tracker: answer introduction-requests of any community, introduce its peers.
    Tracker(cmd::tracker::TrackerArgs),
    /// Benchmarks (`bench sync`: catch-up, classic sync, near-equal stores); prints JSON.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr so stdout stays machine-readable; RUST_LOG picks the level. The node,
    // the tracker and the demo set up their own (the node's level comes from its configuration).
    if !matches!(
        cli.command,
        Command::Node(_) | Command::Demo(_) | Command::Tracker(_)
    ) {
        cmd::init_logging(false, "warn");
    }
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Node(args) => cmd::node::run(args),
        Command::Post(args) => cmd::client::post(&args),
        Command::Messages(args) => cmd::client::messages(&args),
        Command::Peers(args) => cmd::client::peers(&args),
        Command::Status(args) => cmd::client::status(&args),
        Command::Keygen(args) => cmd::keys::keygen(&args),
        Command::Id(args) => cmd::keys::id(&args),
        Command::Decode(args) => cmd::decode::run(&args),
        Command::Sim(args) => cmd::sim::run(&args),
        Command::Tracker(args) => cmd::tracker::run(&args),
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
