//! The node daemon: a [`Node`] with the SQLite store on the tokio driver, the communities it
//! hosts, and the REST API and web dashboard any application drives it through.
//!
//! [`Daemon::start`] opens the data directory ([`datadir`]), loads or creates the member key,
//! opens the store, starts the driver, hosts the configured communities and every community the
//! store remembers, then serves the API. [`Daemon::shutdown`] stops accepting requests, ends the
//! event streams, stops the driver (which commits the store) and returns.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dispersy_cli::daemon::{Daemon, config::Config};
//!
//! let daemon = Daemon::start(Config::default()).await?;
//! println!("dashboard: {}", daemon.dashboard_url());
//! tokio::signal::ctrl_c().await?;
//! daemon.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod config;
pub mod dashboard;
pub mod datadir;
pub mod hosting;
pub mod state;
pub mod views;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use dispersy::node::{Config as NodeConfig, Node};
use dispersy_net::{Driver, Handle};
use dispersy_sqlite::SqliteStore;
use rand::RngCore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::config::{Config, ConfigError, token_required};
use self::datadir::DataDir;
use self::state::{AppState, Inner};

/// How long a stopping API waits for open requests.
const API_DRAIN: Duration = Duration::from_secs(5);

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory could not be opened or written.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The member key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] dispersy_net::keyfile::Error),
    /// The store could not be opened.
    #[error("database {path}: {source}")]
    Store {
        /// The file.
        path: String,
        /// Why.
        source: dispersy::store::StoreError,
    },
    /// The driver could not start (a UDP address cannot be bound, ...).
    #[error(transparent)]
    Driver(#[from] dispersy_net::StartError),
    /// The API address cannot be bound.
    #[error("cannot serve the API on {addr}: {source}")]
    Api {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A configured community could not be hosted.
    #[error("{0}")]
    Community(String),
}

/// Why the daemon did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// The node task failed; the store may have lost its last writes.
    #[error(transparent)]
    Node(#[from] dispersy_net::TaskFailed),
    /// The store failed to commit at shutdown.
    #[error("final commit failed: {0}")]
    Flush(String),
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    state: AppState,
    driver: Driver,
    stop: watch::Sender<bool>,
    api: JoinHandle<std::io::Result<()>>,
    sampler: JoinHandle<()>,
}

impl Daemon {
    /// Starts a daemon; see the module docs.
    pub async fn start(config: Config) -> Result<Daemon, StartError> {
        config.validate()?;
        let specs = config.community_specs()?;
        let root = config.data_dir();
        let data = DataDir::open(&root).map_err(|source| StartError::DataDir {
            path: root.display().to_string(),
            source,
        })?;
        let key = data.load_or_create_member_key()?;
        let db = data.database();
        let store = SqliteStore::open(&db).map_err(|source| StartError::Store {
            path: db.display().to_string(),
            source,
        })?;
        let node_config = NodeConfig {
            seed: rand::rngs::OsRng.next_u64(),
            ..NodeConfig::default()
        };
        let node = Node::new(node_config, key, Box::new(store));
        let net = dispersy_net::Config {
            listen: config.listen.clone(),
            trackers: dispersy_net::trackers::Config {
                addresses: config.trackers.clone(),
                ..dispersy_net::trackers::Config::default()
            },
            beacon: config
                .lan_discovery
                .then(dispersy_net::beacon::Config::default),
            event_capacity: config.api.event_buffer,
            ..dispersy_net::Config::default()
        };
        let driver = Driver::start(node, net)?;

        let token = if token_required(&config.api) {
            Some(match &config.api.token {
                Some(t) => t.clone(),
                None => data
                    .load_or_create_token()
                    .map_err(|source| StartError::DataDir {
                        path: data.token().display().to_string(),
                        source,
                    })?,
            })
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .map_err(|source| StartError::Api {
                addr: config.api.listen,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| StartError::Api {
            addr: config.api.listen,
            source,
        })?;
        let (stop, stopping) = watch::channel(false);
        let state = AppState::new(Inner {
            handle: driver.handle().clone(),
            data,
            token,
            api_addr,
            dashboard: config.api.dashboard,
            started: std::time::Instant::now(),
            hosted: RwLock::new(BTreeMap::new()),
            history: Mutex::new(VecDeque::new()),
            stopping,
            streams: std::sync::atomic::AtomicUsize::new(0),
        });
        if let Err(e) = hosting::rejoin(&state, specs).await {
            let _ = driver.shutdown().await;
            return Err(StartError::Community(e));
        }

        let app = api::router(state.clone());
        let api = tokio::spawn({
            let stopped = state.stopped();
            async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
        });
        let sampler = tokio::spawn(state::sample_loop(state.clone()));
        tracing::info!(
            member = %driver.handle().call(|n, _| n.member_id()).await.map_or_else(|_| "?".into(), |m| m.to_hex()),
            udp = ?driver.local_addrs(),
            api = %api_addr,
            communities = state.all_hosted().len(),
            "node started"
        );
        Ok(Daemon {
            state,
            driver,
            stop,
            api,
            sampler,
        })
    }

    /// The driver's handle (every node method through [`Handle::call`]).
    pub fn handle(&self) -> &Handle {
        &self.state.handle
    }

    /// The API's bound address.
    pub fn api_addr(&self) -> SocketAddr {
        self.state.api_addr
    }

    /// The bound UDP addresses.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.driver.local_addrs()
    }

    /// The API token, when one is required.
    pub fn token(&self) -> Option<&str> {
        self.state.token.as_deref()
    }

    /// The API's base URL (`http://127.0.0.1:7760`).
    pub fn api_url(&self) -> String {
        let addr = self.api_addr();
        let host = match addr.ip() {
            ip if ip.is_unspecified() && addr.is_ipv4() => "127.0.0.1".to_owned(),
            ip if ip.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}", addr.port())
    }

    /// The dashboard's URL, with the token when one is required.
    pub fn dashboard_url(&self) -> String {
        match self.token() {
            Some(t) => format!("{}/?token={t}", self.api_url()),
            None => format!("{}/", self.api_url()),
        }
    }

    /// The shared API state (the hosted communities, the data directory).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops: the API drains (event streams end), the driver stops and commits the store.
    pub async fn shutdown(self) -> Result<Node, StopError> {
        let Daemon {
            state,
            driver,
            stop,
            mut api,
            sampler,
        } = self;
        let _ = stop.send(true);
        let drained = tokio::time::timeout(API_DRAIN, &mut api).await;
        api.abort();
        match drained {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "API server failed"),
            Ok(_) => {}
            Err(_) => tracing::warn!("API requests still open at shutdown; dropped"),
        }
        sampler.abort();
        drop(state);
        let mut stopped = driver.shutdown().await?;
        stopped
            .node
            .flush()
            .map_err(|e| StopError::Flush(e.to_string()))?;
        tracing::info!("node stopped");
        Ok(stopped.node)
    }
}
