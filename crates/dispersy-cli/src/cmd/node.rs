//! `dispersy node`: the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use dispersy_cli::daemon::Daemon;
use dispersy_cli::daemon::config::{Config, default_data_dir};

/// Arguments of `dispersy node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Configuration file (default: config.toml in the data directory, if there is one).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Data directory (default: the configuration's, else $XDG_DATA_HOME/dispersy).
    #[arg(long, visible_alias = "data", env = "DISPERSY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// UDP listen address; repeat for several (replaces the configuration's).
    #[arg(long, value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// REST API and dashboard address (replaces the configuration's).
    #[arg(long, value_name = "ADDR")]
    api: Option<SocketAddr>,
    /// A tracker or other bootstrap peer, host:port; repeat for several (added to the
    /// configuration's).
    #[arg(long, visible_alias = "bootstrap", value_name = "HOST:PORT")]
    tracker: Vec<String>,
    /// A community description file to host; repeat for several.
    #[arg(long, value_name = "FILE")]
    community: Vec<PathBuf>,
    /// Log JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Print the effective configuration (TOML) and exit.
    #[arg(long)]
    print_config: bool,
}

fn load_config(args: &NodeArgs) -> anyhow::Result<Config> {
    let data_dir = args.data_dir.clone();
    let path = args.config.clone().or_else(|| {
        let p = data_dir
            .clone()
            .unwrap_or_else(default_data_dir)
            .join("config.toml");
        p.exists().then_some(p)
    });
    let mut config = match &path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(d) = data_dir {
        config.data_dir = Some(d);
    }
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    if let Some(a) = args.api {
        config.api.listen = a;
    }
    config.trackers.extend(args.tracker.iter().cloned());
    config
        .community_files
        .extend(args.community.iter().cloned());
    config.validate()?;
    Ok(config)
}

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args)?;
    if args.print_config {
        let text = toml::to_string(&config).context("rendering the configuration")?;
        std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    super::init_logging(args.json, &config.log);
    let rt = super::runtime().context("starting the runtime")?;
    rt.block_on(async move {
        let daemon = Daemon::start(config).await?;
        tracing::info!(url = %daemon.dashboard_url(), "dashboard and REST API");
        super::termination().await;
        tracing::info!("stopping");
        daemon.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}
