//! Shared pieces of the daemon's integration tests: an in-process daemon on loopback and a
//! client of its API.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use dispersy_cli::client::{Client, ClientError};
use dispersy_cli::daemon::Daemon;
use dispersy_cli::daemon::config::Config;

/// A community description without a master key (for founding).
pub const CHAT: &str = r#"
name = "chat"

[[message]]
name = "post"
byte = 1
payload = "text"
undoable = true

[[message]]
name = "blob"
byte = 2
payload = "bytes"

[[message]]
name = "profile"
byte = 3
distribution = "last-sync"
history = 1
payload = "text"
"#;

/// A config for a daemon on loopback (UDP and API on free ports) keeping its data in `dir`.
pub fn config(dir: &Path) -> Config {
    let mut c = Config {
        data_dir: Some(dir.to_owned()),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        log: "warn".into(),
        ..Config::default()
    };
    c.api.listen = "127.0.0.1:0".parse().unwrap();
    c
}

/// A runtime and a daemon started on it.
pub struct Running {
    pub rt: tokio::runtime::Runtime,
    pub daemon: Option<Daemon>,
}

impl Running {
    pub fn start(config: Config) -> Running {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let daemon = rt.block_on(Daemon::start(config)).unwrap();
        Running {
            rt,
            daemon: Some(daemon),
        }
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    pub fn client(&self) -> Client {
        let d = self.daemon();
        Client::new(&d.api_url(), d.token().map(str::to_owned))
    }

    pub fn stop(&mut self) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.shutdown()).unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            let _ = self.rt.block_on(d.shutdown());
        }
    }
}

/// The status and error code of a failed request.
pub fn status_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api {
            status,
            error,
            detail,
        }) => (status, error, detail),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Sends a raw HTTP/1.1 request and returns the status line and the body (what arrived within
/// 3 s for a response that stays open, like an event stream).
pub fn raw(addr: std::net::SocketAddr, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    let out = String::from_utf8_lossy(&bytes).into_owned();
    let status = out.lines().next().unwrap_or("").to_owned();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
