//! The node's configuration file (TOML). Every key is optional: an empty file, or none at all,
//! gives a node that listens on UDP port 7759, serves its API and dashboard on
//! `127.0.0.1:7760`, and keeps its data in the platform's data directory.
//!
//! ```toml
//! data-dir = "/var/lib/dispersy"          # identity, database, founder keys, API token
//! listen = ["0.0.0.0:7759", "[::]:7759"]  # UDP; port 0 lets the kernel pick
//! trackers = ["tracker.example.org:6421"] # bootstrap addresses (host:port)
//! lan-discovery = false                   # broadcast beacons on the LAN
//! log = "info"                            # tracing filter (RUST_LOG overrides)
//! community-files = ["chat.toml"]         # community descriptions, relative to this file
//!
//! [api]
//! listen = "127.0.0.1:7760"               # beyond loopback, a bearer token is required
//! token = "..."                           # optional; generated into the data dir if needed
//! require-token = false                   # demand the token on loopback too
//! dashboard = true
//! event-buffer = 4096                     # events a slow event-stream client may fall behind
//!
//! [[community]]                           # inline description: the keys of a community file
//! name = "chat"
//! community = "9e1c...40 hex digits"
//! [[community.message]]
//! name = "text"
//! byte = 1
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use dispersy::community::spec::CommunitySpec;
use serde::{Deserialize, Serialize};

/// The default UDP port of a node.
pub const DEFAULT_PORT: u16 = 7759;
/// The default port of the REST API and dashboard (on loopback).
pub const DEFAULT_API_PORT: u16 = 7760;
/// Shortest token accepted in a configuration file.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line.
        message: String,
    },
    /// A value is out of place.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// Where the node keeps its state (default: [`default_data_dir`]).
    pub data_dir: Option<PathBuf>,
    /// UDP addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Trackers and other bootstrap addresses, `host:port`.
    pub trackers: Vec<String>,
    /// LAN discovery by broadcast beacons.
    pub lan_discovery: bool,
    /// Default tracing filter (`RUST_LOG` overrides it).
    pub log: String,
    /// The REST API and dashboard.
    pub api: ApiConfig,
    /// Community description files to host (relative paths are relative to the config file).
    pub community_files: Vec<PathBuf>,
    /// Community descriptions written inline.
    #[serde(rename = "community")]
    pub communities: Vec<CommunitySpec>,
}

/// The `[api]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ApiConfig {
    /// TCP address of the REST API and dashboard.
    pub listen: SocketAddr,
    /// The bearer token (default: generated and kept in the data directory when one is needed).
    pub token: Option<String>,
    /// Require the token on loopback too.
    pub require_token: bool,
    /// Serve the web dashboard at `/`.
    pub dashboard: bool,
    /// Events kept for an event-stream client that reads slowly; past that it loses the oldest
    /// and is sent a `lagged` event.
    pub event_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            listen: vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                DEFAULT_PORT,
            )],
            trackers: Vec::new(),
            lan_discovery: false,
            log: "info".into(),
            api: ApiConfig::default(),
            community_files: Vec::new(),
            communities: Vec::new(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_API_PORT),
            token: None,
            require_token: false,
            dashboard: true,
            event_buffer: 4096,
        }
    }
}

impl Config {
    /// Parses TOML text; `origin` names it in errors and anchors relative paths.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let base = origin.parent().unwrap_or(Path::new(""));
        for f in &mut config.community_files {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        if let Some(d) = &mut config.data_dir
            && d.is_relative()
        {
            *d = base.join(&*d);
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            return Err(ConfigError::Invalid(
                "listen: give at least one address".into(),
            ));
        }
        if self.api.event_buffer == 0 || self.api.event_buffer > 1 << 20 {
            return Err(ConfigError::Invalid(
                "api.event-buffer: use 1 to 1048576".into(),
            ));
        }
        if let Some(t) = &self.api.token
            && (t.len() < MIN_TOKEN_LEN || !t.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(ConfigError::Invalid(format!(
                "api.token: use at least {MIN_TOKEN_LEN} printable characters without spaces"
            )));
        }
        for t in &self.trackers {
            dispersy_net::trackers::Tracker::parse(t)
                .map_err(|e| ConfigError::Invalid(format!("trackers: {e}")))?;
        }
        for spec in &self.communities {
            check_spec(spec, "[[community]]")?;
        }
        Ok(())
    }

    /// Every community to host: the inline ones, then those of the files.
    pub fn community_specs(&self) -> Result<Vec<CommunitySpec>, ConfigError> {
        let mut specs = self.communities.clone();
        for path in &self.community_files {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let spec = CommunitySpec::from_toml(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?;
            check_spec(&spec, &path.display().to_string())?;
            specs.push(spec);
        }
        Ok(specs)
    }

    /// The data directory: the configured one, or [`default_data_dir`].
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

/// A hosted community must name an existing one; new communities are created through the API.
fn check_spec(spec: &CommunitySpec, origin: &str) -> Result<(), ConfigError> {
    if spec.master_key.is_none() && spec.community.is_none() {
        return Err(ConfigError::Invalid(format!(
            "{origin} {:?}: give master-key or community (create a new community with \
             POST /api/v1/communities)",
            spec.name
        )));
    }
    spec.to_definition()
        .map_err(|e| ConfigError::Invalid(format!("{origin} {:?}: {e}", spec.name)))?;
    Ok(())
}

/// `$XDG_DATA_HOME/dispersy`, else `$HOME/.local/share/dispersy`, else `./dispersy-data`.
pub fn default_data_dir() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = non_empty("XDG_DATA_HOME") {
        return PathBuf::from(x).join("dispersy");
    }
    if let Some(h) = non_empty("HOME") {
        return PathBuf::from(h).join(".local/share/dispersy");
    }
    PathBuf::from("dispersy-data")
}

/// Whether the API must demand a bearer token: always beyond loopback, on loopback only when
/// asked to (a configured token or `require-token`).
pub fn token_required(api: &ApiConfig) -> bool {
    !api.listen.ip().is_loopback() || api.require_token || api.token.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00112233445566778899aabbccddeeff00112233";

    #[test]
    fn empty_file_gives_working_defaults() {
        let c = Config::from_toml("", Path::new("/etc/dispersy/node.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen[0].port(), DEFAULT_PORT);
        assert!(c.api.listen.ip().is_loopback());
        assert!(!token_required(&c.api));
    }

    #[test]
    fn full_file_parses_and_anchors_paths() {
        let text = format!(
            r#"
data-dir = "state"
listen = ["127.0.0.1:0", "[::1]:0"]
trackers = ["tracker.example.org:6421", "192.0.2.1:6421"]
lan-discovery = true
community-files = ["chat.toml", "/abs/x.toml"]

[api]
listen = "0.0.0.0:8080"
token = "0123456789abcdef0123"

[[community]]
name = "inline"
community = "{ID}"
[[community.message]]
name = "text"
byte = 1
"#
        );
        let c = Config::from_toml(&text, Path::new("/etc/d/node.toml")).unwrap();
        assert_eq!(c.data_dir(), PathBuf::from("/etc/d/state"));
        assert_eq!(
            c.community_files,
            vec![
                PathBuf::from("/etc/d/chat.toml"),
                PathBuf::from("/abs/x.toml")
            ]
        );
        assert_eq!(c.communities[0].messages[0].name, "text");
        assert!(token_required(&c.api));
    }

    #[test]
    fn errors_name_the_problem() {
        let origin = Path::new("node.toml");
        for (text, needle) in [
            ("bogus = 1", "unknown field `bogus`"),
            ("listen = []", "at least one address"),
            ("listen = [\"nonsense\"]", "listen"),
            ("[api]\ntoken = \"short\"", "api.token"),
            ("[api]\nevent-buffer = 0", "api.event-buffer"),
            ("trackers = [\"no-port\"]", "trackers"),
            (
                "[[community]]\nname = \"x\"",
                "give master-key or community",
            ),
            (
                "[[community]]\nname = \"x\"\ncommunity = \"zz\"",
                "[[community]] \"x\"",
            ),
        ] {
            let e = Config::from_toml(text, origin).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let e = Config::load(Path::new("/nonexistent/node.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/node.toml"), "{e}");
    }

    #[test]
    fn token_rule() {
        let mut api = ApiConfig::default();
        assert!(!token_required(&api));
        api.require_token = true;
        assert!(token_required(&api));
        api = ApiConfig {
            listen: "[::1]:1".parse().unwrap(),
            ..ApiConfig::default()
        };
        assert!(!token_required(&api));
        for beyond in ["0.0.0.0:1", "[::]:1", "192.0.2.5:1", "127.0.0.1:1"] {
            api.listen = beyond.parse().unwrap();
            assert_eq!(
                token_required(&api),
                !beyond.starts_with("127."),
                "{beyond}"
            );
        }
        api.listen = "127.0.0.1:1".parse().unwrap();
        api.token = Some("0123456789abcdef".into());
        assert!(token_required(&api));
    }

    #[test]
    fn community_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c.toml"),
            format!("name = \"c\"\ncommunity = \"{ID}\"\n"),
        )
        .unwrap();
        let c = Config::from_toml(
            "community-files = [\"c.toml\"]",
            &dir.path().join("node.toml"),
        )
        .unwrap();
        let specs = c.community_specs().unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].name, "c");
        std::fs::write(dir.path().join("c.toml"), "name = 3").unwrap();
        assert!(c.community_specs().is_err());
    }
}
