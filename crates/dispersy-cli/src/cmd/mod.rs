//! The command groups of the `dispersy` program.

pub mod bench;
pub mod client;
pub mod decode;
pub mod demo;
pub mod keys;
pub mod node;
pub mod sim;
pub mod tracker;

use tracing_subscriber::EnvFilter;

/// Logs to stderr (stdout stays machine-readable), as text or JSON lines; `RUST_LOG` overrides
/// `default` (a tracing filter such as `info`).
pub fn init_logging(json: bool, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A multi-threaded tokio runtime with two workers (the node task runs on its own thread).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
