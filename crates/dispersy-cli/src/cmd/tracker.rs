//! `dispersy tracker`: a tracker on the tokio driver.
//!
//! A tracker answers introduction-requests of any community (after checking their signatures),
//! introduces the peers of each community to one another in turn, and never walks, stores or
//! joins anything (`Node::new_tracker`). Peers find it as a bootstrap address (py-ipv8 peers walk
//! to it like to any peer). Its tables are bounded: communities followed, candidates per
//! community, addresses tracked by the anti-amplification guard.
//!
//! Output: one JSON line on stdout when it listens (`{"event": "started", "mid", "public_key",
//! "listen": [..]}`, so a script that asked for port 0 learns the port) and one when it stops
//! (`{"event": "stopped", ..}` with the final counters); logs on stderr, with a status line every
//! `--status-interval` seconds at level info (`RUST_LOG` overrides the level). SIGINT and SIGTERM
//! stop it cleanly.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use dispersy::crypto::PrivateKey;
use dispersy::node::{Config as NodeConfig, Counters, Node, TrackerStatus};
use dispersy_net::{Driver, Handle, Metrics, keyfile};
use rand::RngCore;
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

/// The port Dispersy's trackers used first.
pub const DEFAULT_PORT: u16 = 6421;

/// Arguments of `dispersy tracker`.
#[derive(Debug, clap::Args)]
pub struct TrackerArgs {
    /// UDP address to listen on; repeat for IPv4 and IPv6 (port 0: the kernel picks).
    #[arg(long, value_name = "ADDR", default_values_t = [SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))])]
    listen: Vec<SocketAddr>,
    /// Identity key file (py-ipv8's format), created if missing. Without it the tracker has a
    /// new identity every run.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Seconds between status lines in the log (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    status_interval: u64,
    /// Communities followed at most (the least recently active one is forgotten first).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_communities: usize,
}

/// What the tracker reports: in each status line and in the `stopped` line.
#[derive(Debug, Serialize)]
struct Status {
    /// Communities tracked now, candidates over all of them, communities created and forgotten.
    tracker: Option<TrackerStatus>,
    /// Datagrams and bytes received and sent (node counters).
    received: dispersy::node::Traffic,
    sent: dispersy::node::Traffic,
    /// Drops by reason.
    drops: BTreeMap<&'static str, u64>,
    /// Sends refused by anti-amplification.
    refused_sends: u64,
    /// Driver counters: wake-ups, datagrams lost before the node saw them, send failures.
    wakeups: u64,
    inbound_dropped: u64,
    send_errors: u64,
}

impl Status {
    fn new(node: &Node, metrics: &Metrics) -> Status {
        let walker = node.walker_status();
        let Counters {
            received,
            sent,
            drops,
            ..
        } = node.stats().clone();
        Status {
            tracker: walker.tracker,
            received,
            sent,
            drops,
            refused_sends: walker.amplification.refused_sends,
            wakeups: metrics.wakeups,
            inbound_dropped: metrics.inbound_dropped,
            send_errors: metrics.send_errors + metrics.send_queue_full + metrics.send_no_socket,
        }
    }

    fn log(&self) {
        let (communities, candidates) = self
            .tracker
            .as_ref()
            .map_or((0, 0), |t| (t.communities, t.candidates));
        let drops = self
            .drops
            .iter()
            .map(|(reason, n)| format!("{reason}={n}"))
            .collect::<Vec<_>>()
            .join(",");
        tracing::info!(
            communities,
            candidates,
            received = self.received.packets,
            sent = self.sent.packets,
            drops = %if drops.is_empty() { "none".into() } else { drops },
            refused_sends = self.refused_sends,
            inbound_dropped = self.inbound_dropped,
            send_errors = self.send_errors,
            wakeups = self.wakeups,
            "tracker status"
        );
    }
}

/// Runs a tracker until SIGINT or SIGTERM.
pub fn run(args: &TrackerArgs) -> anyhow::Result<ExitCode> {
    super::init_logging(false, "info");
    let key = match &args.key {
        Some(path) => {
            keyfile::load_or_create(path, &mut rand::rngs::OsRng)
                .context("cannot use the tracker's key")?
                .0
        }
        None => PrivateKey::generate(&mut rand::rngs::OsRng),
    };
    anyhow::ensure!(
        args.max_communities > 0,
        "--max-communities must be at least 1"
    );
    let mut config = NodeConfig {
        seed: rand::rngs::OsRng.next_u64(),
        ..NodeConfig::default()
    };
    config.tracker_walker.tracker_max_communities = args.max_communities;
    config.validate()?;
    let node = Node::new_tracker(config, key);
    let runtime = super::runtime().context("cannot start the runtime")?;
    runtime.block_on(serve(args, node))
}

async fn serve(args: &TrackerArgs, node: Node) -> anyhow::Result<ExitCode> {
    // Handlers first (`super::termination` would install them only when first polled): a
    // signal that comes right after the started line must stop us cleanly.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let (mid, public_key) = (node.member_id(), hex::encode(node.public_key().to_bin()));
    let driver = Driver::start(
        node,
        dispersy_net::Config {
            listen: args.listen.clone(),
            ..dispersy_net::Config::default()
        },
    )?;
    let handle = driver.handle().clone();
    let listen = driver.local_addrs();
    tracing::info!(%mid, ?listen, "tracker listening");
    print_json(&serde_json::json!({
        "event": "started",
        "mid": mid.to_hex(),
        "public_key": public_key,
        "listen": listen,
    }))?;

    let every = Duration::from_secs(args.status_interval.max(1));
    let mut status = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = status.tick(), if args.status_interval > 0 => {
                match status_of(&handle).await {
                    Some(s) => s.log(),
                    None => break,
                }
            }
        }
    }
    tracing::info!("stopping");
    let stopped = driver
        .shutdown()
        .await
        .context("the tracker's node task failed")?;
    let last = Status::new(&stopped.node, &handle.metrics());
    last.log();
    print_json(&serde_json::json!({ "event": "stopped", "status": last }))?;
    Ok(ExitCode::SUCCESS)
}

/// The status now; `None` when the driver stopped on its own (its node task failed).
async fn status_of(handle: &Handle) -> Option<Status> {
    let metrics = handle.metrics();
    match handle.call(move |n, _| Status::new(n, &metrics)).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "the tracker stopped");
            None
        }
    }
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}
