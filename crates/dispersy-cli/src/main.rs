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
    /// Run a node: UDP, the SQLite store, the REST API and the web dashboard.
    Node(cmd::node::NodeArgs),
    /// A tracker and five nodes on loopback in a microblog community, converging live.
    Demo(cmd::demo::DemoArgs),
    /// Post a message through a running node.
    Post(cmd::client::PostArgs),
    /// List (or follow) a community's messages on a running node.
    Messages(cmd::client::MessagesArgs),
    /// A running node's candidates per community.
    Peers(cmd::client::PeersArgs),
    /// A running node's identity, addresses, communities and traffic.
    Status(cmd::client::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => cmd::node::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        command => {
            cmd::init_logging(false, "warn");
            match command {
                Command::Post(args) => cmd::client::post(&args),
                Command::Messages(args) => cmd::client::messages(&args),
                Command::Peers(args) => cmd::client::peers(&args),
                Command::Status(args) => cmd::client::status(&args),
                Command::Node(_) | Command::Demo(_) => Ok(ExitCode::SUCCESS),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
