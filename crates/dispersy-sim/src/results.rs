//! What a run produces: the JSON results file.
//!
//! Everything except `wall_s` and `events_per_sec` is a function of the scenario and the seed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::adapter::Role;
use crate::churn::ChurnStats;
use crate::link::{Counters, DropReason};
use crate::pairs::PairCount;
use crate::sim::EngineStats;

/// The results of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Scenario name.
    pub scenario: String,
    /// The seed used.
    pub seed: u64,
    /// The adapter kind.
    pub node_kind: String,
    /// Virtual time simulated, seconds.
    pub simulated_s: f64,
    /// Why the run ended: `time-limit`, `converged`, `idle` or `failed`.
    pub end_reason: String,
    /// SHA-256 of the event log, hex: equal for equal scenario and seed.
    pub event_log_hash: String,
    /// Records hashed.
    pub log_records: u64,
    /// Engine counters.
    pub engine: EngineStats,
    /// Wall-clock seconds (not deterministic).
    pub wall_s: f64,
    /// Events processed per wall-clock second (not deterministic).
    pub events_per_sec: f64,
    /// One walker step, seconds (for plots in steps).
    pub step_interval_s: f64,
    /// When every injected item reached the convergence fraction, seconds.
    pub convergence_s: Option<f64>,
    /// Dropped datagrams by reason, whole network.
    pub drops: BTreeMap<String, u64>,
    /// Peers per NAT behaviour (`public` for none).
    pub nat_mix: BTreeMap<String, u32>,
    /// Per node.
    pub nodes: Vec<NodeResult>,
    /// Time series.
    pub series: Vec<SamplePoint>,
    /// Per injected item.
    pub items: Vec<ItemResult>,
    /// Coverage curves of the first tracked items.
    pub item_series: Vec<ItemSeries>,
    /// Invariant violations seen (bounded).
    pub violations: Vec<String>,
    /// Healed partitions watched for store convergence (`metrics.heal_bound`).
    #[serde(default)]
    pub heals: Vec<HealResult>,
    /// The node kind's own figures (node counters, caches).
    #[serde(default)]
    pub adapter: serde_json::Value,
    /// Pairs of peers that tried to talk and that got through both ways (`metrics.pairs`).
    #[serde(default)]
    pub pairs: Option<PairResults>,
}

/// Connectivity of peer pairs, overall and by the NAT behaviours of the two sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairResults {
    /// All peer pairs.
    pub all: PairCount,
    /// By class, `"a/b"` with the two behaviours in name order (`public` for none).
    pub by_class: BTreeMap<String, PairCount>,
    /// Pairs not recorded because the table was full.
    pub overflow: u64,
}

/// How fast the stores agreed again after a partition healed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealResult {
    /// When the partition healed, seconds.
    pub healed_s: f64,
    /// Seconds after healing until every online peer had the same store (at sample
    /// resolution); `None` if that never happened.
    pub converged_after_s: Option<f64>,
}

/// Traffic and churn of one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeResult {
    /// Node id.
    pub id: u32,
    /// Tracker or peer.
    pub role: Role,
    /// NAT behaviour, or `public`.
    pub nat: String,
    /// Datagrams sent.
    pub sent_packets: u64,
    /// Payload bytes sent.
    pub sent_bytes: u64,
    /// Datagrams received.
    pub recv_packets: u64,
    /// Payload bytes received.
    pub recv_bytes: u64,
    /// Its datagrams dropped on the way, by reason.
    pub lost: BTreeMap<String, u64>,
    /// Datagrams to it dropped at its NAT, downlink or while offline, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Churn history.
    pub churn: ChurnStats,
    /// Online when the run ended.
    pub online_at_end: bool,
}

impl NodeResult {
    /// Builds the record from a node's counters.
    pub fn new(
        id: u32,
        role: Role,
        nat: String,
        c: &Counters,
        churn: ChurnStats,
        online: bool,
    ) -> Self {
        NodeResult {
            id,
            role,
            nat,
            sent_packets: c.sent_packets,
            sent_bytes: c.sent_bytes,
            recv_packets: c.recv_packets,
            recv_bytes: c.recv_bytes,
            lost: by_reason(&c.lost),
            refused: by_reason(&c.refused),
            churn,
            online_at_end: online,
        }
    }
}

/// Non-zero counters by reason name.
pub fn by_reason(counts: &[u64; DropReason::COUNT]) -> BTreeMap<String, u64> {
    DropReason::ALL
        .iter()
        .filter(|r| counts[r.index()] > 0)
        .map(|r| (r.name().to_owned(), counts[r.index()]))
        .collect()
}

/// One sample of the whole network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplePoint {
    /// Time, seconds.
    pub t_s: f64,
    /// Peers online.
    pub online_peers: u32,
    /// Payload bytes sent so far, all nodes.
    pub sent_bytes: u64,
    /// Payload bytes received so far, all nodes.
    pub recv_bytes: u64,
    /// Datagrams dropped so far.
    pub dropped: u64,
    /// Items injected so far.
    pub items_injected: u32,
    /// Of those, items held by at least the convergence fraction of online peers.
    pub items_complete: u32,
    /// Mean over injected items of the fraction of online peers holding them.
    pub mean_coverage: f64,
}

/// Dissemination of one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    /// Item index.
    pub item: u32,
    /// Node that authored it.
    pub origin: u32,
    /// When, seconds.
    pub injected_s: f64,
    /// Seconds after injection until 50 % of online peers held it.
    pub t50_s: Option<f64>,
    /// ... 90 %.
    pub t90_s: Option<f64>,
    /// ... 99 %.
    pub t99_s: Option<f64>,
    /// ... all of them.
    pub t100_s: Option<f64>,
    /// Fraction of online peers holding it at the end.
    pub final_coverage: f64,
}

/// Coverage of one item over time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemSeries {
    /// Item index.
    pub item: u32,
    /// (seconds since injection, fraction of online peers holding it).
    pub points: Vec<(f64, f64)>,
}
