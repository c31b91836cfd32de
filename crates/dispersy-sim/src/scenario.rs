//! Scenario files: what to simulate, in TOML.
//!
//! ```toml
//! name = "gossip-200"
//! seed = 42
//! duration = "300s"
//!
//! [nodes]
//! kind = "toy-gossip"        # which adapter builds the nodes
//! peers = 200
//! trackers = 2               # node ids 0..trackers are the trackers, on public addresses
//! link = { uplink_kbps = 1000, downlink_kbps = 8000, queue_bytes = 65536 }
//! [nodes.config]             # passed as is to the adapter
//! interval = "5s"
//!
//! [network]                  # see NetConfig
//! base_latency = "20ms"
//! access_latency = { kind = "uniform", min = "1ms", max = "40ms" }
//! jitter = { kind = "exponential", mean = "2ms" }
//! loss = { model = "gilbert-elliott", p_good_to_bad = 0.01, p_bad_to_good = 0.3 }
//! duplicate = 0.001
//!
//! [nat]                      # fractions of peers per behaviour; public = the rest
//! full_cone = 0.1
//! restricted_cone = 0.2
//! port_restricted_cone = 0.3
//! symmetric = 0.1
//! mapping_timeout = "60s"
//!
//! [churn]                    # optional; see ChurnConfig
//! session = { kind = "exponential", mean = "120s" }
//! downtime = { kind = "exponential", mean = "60s" }
//! keep_state = 0.5
//!
//! [[partitions]]             # `split` fractions (random sides) or explicit `groups`
//! start = "100s"
//! end = "160s"
//! split = [0.5, 0.5]
//!
//! [workload]
//! messages = 10
//! start = "30s"
//! interval = { kind = "exponential", mean = "2s" }
//! size = 200
//!
//! [metrics]
//! sample_interval = "1s"
//! step_interval = "5s"
//!
//! [stop]
//! on_convergence = true
//! convergence = 1.0
//!
//! [output]
//! dir = "results/gossip-200"  # relative to the scenario file
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::churn::ChurnConfig;
use crate::dist::{Dist, Span, check_probability};
use crate::link::LinkSpec;
use crate::nat::{NatConfig, NatKind};
use crate::net::NetConfig;

/// Most nodes in one scenario.
pub const MAX_NODES: u32 = 100_000;
/// Most workload messages in one scenario.
pub const MAX_MESSAGES: u32 = 1_000_000;
/// Most (message, node) pairs whose holding is tracked (128 MiB of bits).
pub const MAX_HOLDER_BITS: u64 = 1 << 30;

/// A parsed scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in results and default output paths.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The run's seed.
    #[serde(default)]
    pub seed: u64,
    /// Time limit of the run (virtual).
    pub duration: Span,
    /// Who runs.
    pub nodes: NodesSpec,
    /// Latency, loss, duplication, reordering.
    #[serde(default)]
    pub network: NetConfig,
    /// NAT mix and behaviour.
    #[serde(default)]
    pub nat: NatMix,
    /// Churn, if any.
    #[serde(default)]
    pub churn: Option<ChurnConfig>,
    /// Partitions.
    #[serde(default)]
    pub partitions: Vec<PartitionSpec>,
    /// Messages injected.
    #[serde(default)]
    pub workload: Workload,
    /// Sampling and checks.
    #[serde(default)]
    pub metrics: Metrics,
    /// When to stop before the time limit.
    #[serde(default)]
    pub stop: StopSpec,
    /// Where results go.
    #[serde(default)]
    pub output: OutputSpec,
}

/// The nodes of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesSpec {
    /// Which adapter builds them.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Ordinary nodes.
    pub peers: u32,
    /// Trackers (public, never behind NATs); node ids `0..trackers`.
    #[serde(default)]
    pub trackers: u32,
    /// UDP port every node listens on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Peers' access links.
    #[serde(default)]
    pub link: LinkSpec,
    /// Trackers' access links.
    #[serde(default)]
    pub tracker_link: LinkSpec,
    /// Passed to the adapter untouched.
    #[serde(default)]
    pub config: toml::Table,
}

fn default_kind() -> String {
    crate::toy::KIND.into()
}

fn default_port() -> u16 {
    7759
}

/// Fractions of peers behind each NAT behaviour, and the boxes' settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatMix {
    /// Public peers; when absent, whatever the other fractions leave.
    pub public: Option<f64>,
    /// Full cone.
    pub full_cone: f64,
    /// Restricted cone.
    pub restricted_cone: f64,
    /// Port-restricted cone.
    pub port_restricted_cone: f64,
    /// Symmetric.
    pub symmetric: f64,
    /// Idle timeout of mappings.
    pub mapping_timeout: Span,
    /// Whether boxes hairpin.
    pub hairpinning: bool,
    /// Whether inbound packets refresh mappings.
    pub refresh_on_inbound: bool,
    /// Mapping table bound per box.
    pub max_mappings: usize,
    /// Permission bound per mapping.
    pub max_permits: usize,
}

impl Default for NatMix {
    fn default() -> Self {
        let base = NatConfig::new(NatKind::FullCone);
        NatMix {
            public: None,
            full_cone: 0.0,
            restricted_cone: 0.0,
            port_restricted_cone: 0.0,
            symmetric: 0.0,
            mapping_timeout: base.mapping_timeout,
            hairpinning: base.hairpinning,
            refresh_on_inbound: base.refresh_on_inbound,
            max_mappings: base.max_mappings,
            max_permits: base.max_permits,
        }
    }
}

impl NatMix {
    /// (behaviour or `None` for public, fraction), normalised to sum to one.
    pub fn fractions(&self) -> Result<[(Option<NatKind>, f64); 5], String> {
        let nat = [
            self.full_cone,
            self.restricted_cone,
            self.port_restricted_cone,
            self.symmetric,
        ];
        for (kind, f) in NatKind::ALL.iter().zip(nat) {
            check_probability(kind.name(), f)?;
        }
        let behind: f64 = nat.iter().sum();
        let public = match self.public {
            Some(p) => {
                check_probability("public", p)?;
                p
            }
            None if behind <= 1.0 + 1e-9 => (1.0 - behind).max(0.0),
            None => return Err(format!("NAT fractions sum to {behind}, more than 1")),
        };
        let total = public + behind;
        if total <= 0.0 {
            return Err("NAT fractions are all zero".into());
        }
        Ok([
            (None, public / total),
            (Some(NatKind::FullCone), nat[0] / total),
            (Some(NatKind::RestrictedCone), nat[1] / total),
            (Some(NatKind::PortRestrictedCone), nat[2] / total),
            (Some(NatKind::Symmetric), nat[3] / total),
        ])
    }

    /// The box configuration for `kind`.
    pub fn config(&self, kind: NatKind) -> NatConfig {
        NatConfig {
            kind,
            mapping_timeout: self.mapping_timeout,
            hairpinning: self.hairpinning,
            refresh_on_inbound: self.refresh_on_inbound,
            max_mappings: self.max_mappings,
            max_permits: self.max_permits,
        }
    }
}

/// A partition: from `start` to `end` the nodes are split into sides that cannot reach each
/// other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// When it starts.
    pub start: Span,
    /// When it heals.
    pub end: Span,
    /// Fractions of nodes per side, assigned at random.
    #[serde(default)]
    pub split: Vec<f64>,
    /// Explicit sides by node id; unlisted nodes form one more side.
    #[serde(default)]
    pub groups: Vec<Vec<u32>>,
}

/// Messages injected during the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// How many.
    pub messages: u32,
    /// When the first is injected.
    pub start: Span,
    /// Time between injections.
    pub interval: Dist,
    /// Node ids to inject at, in turn; empty for a random online peer each time.
    pub origins: Vec<u32>,
    /// Payload bytes per message (the adapter interprets it).
    pub size: u32,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            messages: 0,
            start: Span::secs(10),
            interval: Dist::fixed(Span::secs(1)),
            origins: Vec::new(),
            size: 100,
        }
    }
}

/// Sampling and checking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Time between samples.
    pub sample_interval: Span,
    /// One walker step, to express dissemination in steps.
    pub step_interval: Span,
    /// Items whose coverage curve is recorded (the first ones injected).
    pub track_items: u32,
    /// Most samples recorded; longer runs record every k-th sample.
    pub max_samples: u32,
    /// Run the engine's and the adapter's invariant checks at each sample.
    pub invariants: bool,
    /// Run them only every this many samples (1: every sample).
    pub check_every: u32,
    /// Stop the run at the first violation.
    pub fail_on_violation: bool,
    /// Hash datagram bytes into the event log (lengths always are).
    pub hash_payloads: bool,
    /// After each partition heals, every online peer's store must agree within this long
    /// (compared by the adapter's state digest); unset: not checked.
    pub heal_bound: Option<Span>,
    /// Record which pairs of peers tried to talk and which got through both ways (NAT
    /// traversal); at most `max_pairs` pairs.
    pub pairs: bool,
    /// Bound of the pair table.
    pub max_pairs: u32,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sample_interval: Span::secs(1),
            step_interval: Span::secs(5),
            track_items: 50,
            max_samples: 20_000,
            invariants: true,
            check_every: 1,
            fail_on_violation: true,
            hash_payloads: true,
            heal_bound: None,
            pairs: false,
            max_pairs: 4_000_000,
        }
    }
}

/// Stopping before the time limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StopSpec {
    /// Stop once every injected item has reached `convergence` (after all injections).
    pub on_convergence: bool,
    /// Fraction of online peers that must hold each item.
    pub convergence: f64,
    /// Extra time to run after convergence.
    pub linger: Span,
    /// Convergence also needs every peer online (after churn ends, the last to come back must
    /// catch up too).
    pub all_online: bool,
}

impl Default for StopSpec {
    fn default() -> Self {
        StopSpec {
            on_convergence: true,
            convergence: 1.0,
            linger: Span::default(),
            all_online: false,
        }
    }
}

/// Where results go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSpec {
    /// Directory, relative to the scenario file; default `results/<name>`.
    pub dir: Option<PathBuf>,
    /// Write `results.json`.
    pub json: bool,
    /// Write the SVG plots.
    pub plots: bool,
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            dir: None,
            json: true,
            plots: true,
        }
    }
}

/// A scenario that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Reading the file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for a scenario.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A value out of range.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })?;
        s.validate().map_err(ScenarioError::Invalid)?;
        Ok(s)
    }

    /// Reads, parses and validates a file; a relative output directory becomes relative to
    /// the file's directory.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut s = Scenario::from_toml(&text).map_err(|e| match e {
            ScenarioError::Parse { message, .. } => ScenarioError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let dir = s
            .output
            .dir
            .take()
            .unwrap_or_else(|| Path::new("results").join(&s.name));
        s.output.dir = Some(if dir.is_absolute() {
            dir
        } else {
            base.join(dir)
        });
        Ok(s)
    }

    /// All nodes, trackers first.
    pub fn node_count(&self) -> u32 {
        self.nodes.peers.saturating_add(self.nodes.trackers)
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.node_count();
        if n == 0 || n > MAX_NODES {
            return Err(format!("between 1 and {MAX_NODES} nodes, got {n}"));
        }
        if self.duration.0.is_zero() {
            return Err("duration must be positive".into());
        }
        if self.nodes.port == 0 {
            return Err("port must not be 0".into());
        }
        self.nodes.link.validate()?;
        self.nodes.tracker_link.validate()?;
        self.network.validate()?;
        self.nat.fractions()?;
        self.nat.config(NatKind::FullCone).validate()?;
        if let Some(c) = &self.churn {
            c.validate()?;
        }
        for (i, p) in self.partitions.iter().enumerate() {
            if p.start >= p.end {
                return Err(format!("partition {i}: start must precede end"));
            }
            if p.split.is_empty() == p.groups.is_empty() {
                return Err(format!("partition {i}: give either split or groups"));
            }
            if p.split.len() > 64 || p.groups.len() > 64 {
                return Err(format!("partition {i}: at most 64 sides"));
            }
            if p.split.iter().any(|f| !(f.is_finite() && *f >= 0.0))
                || (!p.split.is_empty() && p.split.iter().sum::<f64>() <= 0.0)
            {
                return Err(format!(
                    "partition {i}: split fractions must be non-negative, not all zero"
                ));
            }
            if let Some(bad) = p.groups.iter().flatten().find(|&&id| id >= n) {
                return Err(format!("partition {i}: no node {bad}"));
            }
        }
        let w = &self.workload;
        if w.messages > MAX_MESSAGES {
            return Err(format!("at most {MAX_MESSAGES} messages"));
        }
        // The runner keeps one bit per (message, node).
        if u64::from(w.messages) * u64::from(n) > MAX_HOLDER_BITS {
            return Err(format!(
                "messages x nodes must stay under {MAX_HOLDER_BITS} (one bit each is tracked)"
            ));
        }
        w.interval.validate()?;
        if let Some(bad) = w.origins.iter().find(|&&id| id >= n) {
            return Err(format!("workload origin: no node {bad}"));
        }
        let m = &self.metrics;
        if m.sample_interval < Span::millis(1) {
            return Err("sample_interval must be at least 1ms".into());
        }
        if m.step_interval.0.is_zero() {
            return Err("step_interval must be positive".into());
        }
        if m.check_every == 0 {
            return Err("check_every must be positive".into());
        }
        if m.track_items > 10_000 || m.max_samples == 0 || m.max_samples > 1_000_000 {
            return Err("track_items at most 10,000; max_samples in 1..=1,000,000".into());
        }
        check_probability("stop.convergence", self.stop.convergence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"m\"\nduration = 60\n[nodes]\npeers = 10\n";

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = Scenario::from_toml(MINIMAL).unwrap();
        assert_eq!(s.nodes.kind, "toy-gossip");
        assert_eq!(s.nodes.port, 7759);
        assert_eq!(s.nat.fractions().unwrap()[0], (None, 1.0));
        assert!(s.churn.is_none());
        assert!(s.stop.on_convergence);
    }

    #[test]
    fn nat_fractions_fill_up_with_public() {
        let s = Scenario::from_toml(&format!(
            "{MINIMAL}[nat]\nsymmetric = 0.25\nfull_cone = 0.25\n"
        ))
        .unwrap();
        let f = s.nat.fractions().unwrap();
        assert_eq!(f[0], (None, 0.5));
        assert_eq!(f[4], (Some(NatKind::Symmetric), 0.25));
        assert!(
            Scenario::from_toml(&format!(
                "{MINIMAL}[nat]\nsymmetric = 0.7\nfull_cone = 0.7\n"
            ))
            .is_err()
        );
    }

    #[test]
    fn bad_scenarios_are_refused_with_a_reason() {
        for (extra, want) in [
            ("[network]\nduplicate = 2.0\n", "duplicate"),
            (
                "[[partitions]]\nstart = 10\nend = 5\nsplit = [1]\n",
                "precede",
            ),
            ("[[partitions]]\nstart = 1\nend = 5\n", "either"),
            (
                "[[partitions]]\nstart = 1\nend = 5\ngroups = [[99]]\n",
                "no node 99",
            ),
            ("[workload]\norigins = [10]\n", "no node 10"),
            ("[metrics]\nsample_interval = \"10us\"\n", "sample_interval"),
            (
                "[nodes.link]\nuplink_kbps = 10\nqueue_bytes = 100\n",
                "queue_bytes",
            ),
            (
                "[churn]\nsession = 1\ndowntime = 1\nkeep_state = 3\n",
                "keep_state",
            ),
        ] {
            let text = format!("{MINIMAL}{extra}");
            let err = Scenario::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{extra:?}: {err}");
        }
        let big =
            "name = \"b\"\nduration = 1\n[nodes]\npeers = 5000\n[workload]\nmessages = 1000000\n";
        let err = Scenario::from_toml(big).unwrap_err().to_string();
        assert!(err.contains("messages x nodes"), "{err}");
        let err =
            Scenario::from_toml("name = \"x\"\nduration = 1\nbogus = 1\n[nodes]\npeers = 1\n")
                .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
