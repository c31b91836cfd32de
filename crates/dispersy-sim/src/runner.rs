//! Running a scenario: build the hosts, NATs and nodes, schedule churn, partitions and the
//! workload, sample metrics and check invariants while the engine runs, stop on convergence
//! or the time limit, and collect [`Results`].
//!
//! The CLI's `dispersy sim run FILE` is [`run_file`] plus a progress bar fed by the callback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dispersy::time::Instant;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::adapter::{Adapter, ItemId, NodeSpec, Role};
use crate::dispersy_node;
use crate::dist::{SimRng, stream};
use crate::nat::NatKind;
use crate::net::Placement;
use crate::node::{NodeContext, NodeId, SimNode};
use crate::pairs::PairCount;
use crate::results::{
    HealResult, ItemResult, ItemSeries, NodeResult, PairResults, Results, SamplePoint, by_reason,
};
use crate::scenario::{PartitionSpec, Scenario, ScenarioError};
use crate::sim::{Control, Flow, Hooks, Sim, SimError, Stop};
use crate::toy;

/// The node kinds scenario files may name.
pub const KINDS: [&str; 2] = [dispersy_node::KIND, toy::KIND];

/// Most invariant violations kept in the results.
const MAX_VIOLATIONS: usize = 100;
/// Coverage thresholds whose first crossing is recorded per item.
const THRESHOLDS: [f64; 4] = [0.5, 0.9, 0.99, 1.0];

/// How to run a scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Replace the scenario's seed.
    pub seed: Option<u64>,
    /// Replace the scenario's output directory.
    pub output_dir: Option<PathBuf>,
    /// Write results and plots (as the scenario's `[output]` asks).
    pub write_outputs: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: None,
            output_dir: None,
            write_outputs: true,
        }
    }
}

/// Handed to the progress callback at every sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Virtual time now.
    pub now: Instant,
    /// The time limit.
    pub end: Instant,
    /// Events processed.
    pub events: u64,
    /// Peers online.
    pub online_peers: u32,
    /// Items injected so far.
    pub items_injected: u32,
    /// Of those, items that reached the convergence fraction.
    pub items_complete: u32,
}

/// A finished run and the files it wrote.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The results.
    pub results: Results,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario could not be read or is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// No adapter for `nodes.kind`.
    #[error("unknown node kind {0:?} (known: {known})", known = KINDS.join(", "))]
    UnknownKind(String),
    /// Building the network or the nodes failed.
    #[error("setting up the run (seed {seed}): {message}")]
    Setup {
        /// The seed.
        seed: u64,
        /// Why.
        message: String,
    },
    /// An invariant failed during the run; the results so far are attached (and written).
    #[error("run failed with seed {seed}: {message}")]
    Failed {
        /// The seed that reproduces it.
        seed: u64,
        /// The first violation.
        message: String,
        /// Results up to the failure.
        results: Box<Results>,
    },
    /// Results could not be written.
    #[error("writing {path}: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Loads a scenario file and runs it (see [`run_scenario`]).
pub fn run_file(
    path: &Path,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome, RunError> {
    run_scenario(&Scenario::load(path)?, opts, progress)
}

/// Runs a scenario with the adapter its `nodes.kind` names, writing outputs if asked. A run
/// that fails an invariant still writes its results, then returns [`RunError::Failed`].
pub fn run_scenario(
    sc: &Scenario,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome, RunError> {
    let seed = opts.seed.unwrap_or(sc.seed);
    let setup = |e: crate::AdapterError| RunError::Setup {
        seed,
        message: e.to_string(),
    };
    let run = match sc.nodes.kind.as_str() {
        toy::KIND => {
            let adapter = toy::ToyAdapter::new(&sc.nodes.config).map_err(setup)?;
            run_with(sc, adapter, seed, progress)
        }
        dispersy_node::KIND => {
            let adapter = dispersy_node::DispersyAdapter::new(&sc.nodes.config).map_err(setup)?;
            run_with(sc, adapter, seed, progress)
        }
        other => return Err(RunError::UnknownKind(other.to_owned())),
    };
    let dir = opts.output_dir.clone().or_else(|| sc.output.dir.clone());
    let results = match &run {
        Ok(r) => r,
        Err(RunError::Failed { results, .. }) => results,
        Err(_) => {
            return run.map(|results| Outcome {
                results,
                written: Vec::new(),
            });
        }
    };
    let written = match (opts.write_outputs, dir) {
        (true, Some(dir)) => write_outputs(results, &dir, sc.output.json, sc.output.plots)?,
        _ => Vec::new(),
    };
    run.map(|results| Outcome { results, written })
}

/// Writes `results.json` and the plots into `dir`.
pub fn write_outputs(
    results: &Results,
    dir: &Path,
    json: bool,
    plots: bool,
) -> Result<Vec<PathBuf>, RunError> {
    let fail = |path: &Path, e: &dyn std::fmt::Display| RunError::Output {
        path: path.to_owned(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, &e))?;
    let mut written = Vec::new();
    if json {
        let path = dir.join("results.json");
        let text = serde_json::to_string_pretty(results).map_err(|e| fail(&path, &e))?;
        std::fs::write(&path, text).map_err(|e| fail(&path, &e))?;
        written.push(path);
    }
    if plots {
        written.extend(crate::plot::write_all(results, dir).map_err(|(p, e)| fail(&p, &e))?);
    }
    Ok(written)
}

/// Runs a scenario with a given adapter and seed, without writing anything.
pub fn run_with<A: Adapter>(
    sc: &Scenario,
    adapter: A,
    seed: u64,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Results, RunError> {
    sc.validate().map_err(ScenarioError::Invalid)?;
    let setup = |message: String| RunError::Setup { seed, message };
    let sim_err = |e: SimError| setup(e.to_string());
    tracing::info!(scenario = %sc.name, seed, nodes = sc.node_count(), "simulation starting");
    let mut sim: Sim<A::Node> = Sim::new(seed, sc.network.clone()).map_err(sim_err)?;
    sim.hash_payloads(sc.metrics.hash_payloads);
    let mut rng = stream(seed, "scenario", 0);
    let mut h = Harness::new(sc, adapter, seed, progress);

    let total = sc.node_count() as usize;
    let trackers = sc.nodes.trackers as usize;
    let nat = assign_nat(sc, &mut rng).map_err(setup)?;
    let mut ctxs = Vec::with_capacity(total);
    for i in 0..total {
        let (placement, link) = match (i < trackers, nat.get(i.wrapping_sub(trackers))) {
            (false, Some(Some(kind))) => {
                let site = sim.add_nat(sc.nat.config(*kind)).map_err(sim_err)?;
                (Placement::BehindNat(site), sc.nodes.link)
            }
            (false, _) => (Placement::Public, sc.nodes.link),
            (true, _) => (Placement::Public, sc.nodes.tracker_link),
        };
        ctxs.push(
            sim.add_host(placement, sc.nodes.port, link)
                .map_err(sim_err)?,
        );
    }
    h.trackers = ctxs[..trackers].iter().map(|c| c.local_addr).collect();
    h.addresses = ctxs.iter().map(|c| c.local_addr).collect();
    for ctx in ctxs {
        let id = ctx.id;
        let spec = NodeSpec {
            role: h.roles[id.index()],
            ctx,
            trackers: &h.trackers,
            addresses: &h.addresses,
            now: Instant::ZERO,
        };
        let node = h.adapter.build(&spec).map_err(|e| setup(e.0))?;
        sim.attach(id, node).map_err(sim_err)?;
    }

    if let Some(c) = &sc.churn {
        let model = sim.add_churn_model(c.clone()).map_err(sim_err)?;
        let first = if c.exempt_trackers { trackers } else { 0 };
        for i in first..total {
            if rng.r#gen::<f64>() < c.fraction {
                let start = Instant::ZERO + c.start.0;
                sim.enable_churn(NodeId(i as u32), model, start)
                    .map_err(sim_err)?;
            }
        }
    }
    for p in &sc.partitions {
        let groups = partition_groups(p, total, &mut rng);
        let (start, end) = (Instant::ZERO + p.start.0, Instant::ZERO + p.end.0);
        sim.add_partition(start, end, &groups).map_err(sim_err)?;
        if let Some(bound) = sc.metrics.heal_bound {
            h.heals.push(Heal {
                end,
                deadline: end + bound.0,
                converged: None,
                failed: false,
            });
        }
    }
    let end = Instant::ZERO + sc.duration.0;
    let mut at = Instant::ZERO + sc.workload.start.0;
    for k in 0..sc.workload.messages {
        if at > end {
            break;
        }
        sim.schedule_action(at, u64::from(k));
        h.items.push(Item::new(total));
        at += sc.workload.interval.sample(&mut rng);
    }
    sim.set_sampling(Instant::ZERO, sc.metrics.sample_interval.0)
        .map_err(sim_err)?;
    if sc.metrics.pairs {
        sim.track_pairs(sc.metrics.max_pairs as usize);
    }

    let wall = std::time::Instant::now();
    let stop = sim.run_until(end, &mut h);
    let wall_s = wall.elapsed().as_secs_f64();
    let reason = match stop {
        Stop::Horizon => "time-limit",
        Stop::Idle => "idle",
        Stop::Hook if h.failure.is_some() => "failed",
        Stop::Hook => "converged",
    };
    let failure = h.failure.take();
    let results = h.finish(&sim, reason, wall_s);
    match failure {
        Some(message) => Err(RunError::Failed {
            seed,
            message,
            results: Box::new(results),
        }),
        None => Ok(results),
    }
}

/// NAT behaviour of each peer: counts by largest remainder, then shuffled.
fn assign_nat(sc: &Scenario, rng: &mut SimRng) -> Result<Vec<Option<NatKind>>, String> {
    let fractions = sc.nat.fractions()?;
    let weights: Vec<f64> = fractions.iter().map(|(_, f)| *f).collect();
    let counts = apportion(&weights, sc.nodes.peers as usize);
    let mut out: Vec<Option<NatKind>> = fractions
        .iter()
        .zip(counts)
        .flat_map(|((kind, _), n)| std::iter::repeat_n(*kind, n))
        .collect();
    out.shuffle(rng);
    Ok(out)
}

/// Splits `n` into integer parts proportional to `weights` (largest remainder; ties to the
/// earlier weight).
fn apportion(weights: &[f64], n: usize) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| w / total * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let short = n.saturating_sub(counts.iter().sum());
    for &i in order.iter().cycle().take(short) {
        counts[i] += 1;
    }
    counts
}

/// Side of every node in a partition.
fn partition_groups(p: &PartitionSpec, total: usize, rng: &mut SimRng) -> Vec<u16> {
    if !p.groups.is_empty() {
        let mut side = vec![p.groups.len() as u16; total];
        for (g, ids) in p.groups.iter().enumerate() {
            for &id in ids {
                if let Some(s) = side.get_mut(id as usize) {
                    *s = g as u16;
                }
            }
        }
        return side;
    }
    let mut side: Vec<u16> = apportion(&p.split, total)
        .into_iter()
        .enumerate()
        .flat_map(|(g, n)| std::iter::repeat_n(g as u16, n))
        .collect();
    side.shuffle(rng);
    side
}

/// Which nodes hold something: one bit per node.
#[derive(Clone, Debug, Default)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(len: usize) -> BitSet {
        BitSet(vec![0; len.div_ceil(64)])
    }

    fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i`; true if it was clear.
    fn insert(&mut self, i: usize) -> bool {
        let Some(w) = self.0.get_mut(i / 64) else {
            return false;
        };
        let was = *w & (1 << (i % 64)) != 0;
        *w |= 1 << (i % 64);
        !was
    }

    /// Clears bit `i`; true if it was set.
    fn remove(&mut self, i: usize) -> bool {
        let Some(w) = self.0.get_mut(i / 64) else {
            return false;
        };
        let was = *w & (1 << (i % 64)) != 0;
        *w &= !(1 << (i % 64));
        was
    }
}

/// One workload message.
#[derive(Debug)]
struct Item {
    injected: Option<(Instant, NodeId)>,
    holders: BitSet,
    online_holders: u32,
    reached: [Option<Instant>; THRESHOLDS.len()],
    series: Vec<(f64, f64)>,
}

impl Item {
    fn new(nodes: usize) -> Item {
        Item {
            injected: None,
            holders: BitSet::new(nodes),
            online_holders: 0,
            reached: [None; THRESHOLDS.len()],
            series: Vec::new(),
        }
    }

    fn coverage(&self, online_peers: u32) -> f64 {
        if online_peers == 0 {
            return 0.0;
        }
        f64::from(self.online_holders) / f64::from(online_peers)
    }

    fn mark_thresholds(&mut self, now: Instant, online_peers: u32) {
        if self.injected.is_none() || online_peers == 0 {
            return;
        }
        for (i, th) in THRESHOLDS.iter().enumerate() {
            let needed = (th * f64::from(online_peers)).ceil() as u32;
            if self.reached[i].is_none() && self.online_holders >= needed {
                self.reached[i] = Some(now);
            }
        }
    }
}

/// A partition whose healing is watched: every online peer must reach the same state digest
/// before `deadline`.
#[derive(Debug)]
struct Heal {
    end: Instant,
    deadline: Instant,
    converged: Option<Instant>,
    failed: bool,
}

/// The runner's [`Hooks`]: bookkeeping of who holds what, samples, checks.
struct Harness<'p, A: Adapter> {
    adapter: A,
    seed: u64,
    sc: Scenario,
    end: Instant,
    roles: Vec<Role>,
    trackers: Vec<SocketAddr>,
    addresses: Vec<SocketAddr>,
    heals: Vec<Heal>,
    online: Vec<bool>,
    online_peers: u32,
    items: Vec<Item>,
    actions_done: usize,
    skipped: u32,
    injected: u32,
    rng: SimRng,
    samples: u64,
    record_every: u64,
    series: Vec<SamplePoint>,
    converged_at: Option<Instant>,
    violations: Vec<String>,
    failure: Option<String>,
    progress: &'p mut dyn FnMut(&Progress),
}

impl<'p, A: Adapter> Harness<'p, A> {
    fn new(sc: &Scenario, adapter: A, seed: u64, progress: &'p mut dyn FnMut(&Progress)) -> Self {
        let total = sc.node_count() as usize;
        let trackers = sc.nodes.trackers as usize;
        let samples = (sc.duration.0.as_micros() / sc.metrics.sample_interval.0.as_micros().max(1))
            as u64
            + 1;
        Harness {
            adapter,
            seed,
            sc: sc.clone(),
            end: Instant::ZERO + sc.duration.0,
            roles: (0..total)
                .map(|i| {
                    if i < trackers {
                        Role::Tracker
                    } else {
                        Role::Peer
                    }
                })
                .collect(),
            trackers: Vec::new(),
            addresses: Vec::new(),
            heals: Vec::new(),
            online: vec![true; total],
            online_peers: sc.nodes.peers,
            items: Vec::new(),
            actions_done: 0,
            skipped: 0,
            injected: 0,
            rng: stream(seed, "workload", 0),
            samples: 0,
            record_every: samples.div_ceil(u64::from(sc.metrics.max_samples)).max(1),
            series: Vec::new(),
            converged_at: None,
            violations: Vec::new(),
            failure: None,
            progress,
        }
    }

    fn is_peer(&self, id: NodeId) -> bool {
        self.roles.get(id.index()) == Some(&Role::Peer)
    }

    fn violation(&mut self, now: Instant, message: String) {
        let message = format!("at {now:?}: {message}");
        tracing::warn!(seed = self.seed, "{message}");
        if self.sc.metrics.fail_on_violation && self.failure.is_none() {
            self.failure = Some(message.clone());
        }
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(message);
        }
    }

    fn gain(&mut self, now: Instant, id: NodeId, item: ItemId) {
        let Some(it) = self
            .items
            .get_mut(item.0 as usize)
            .filter(|i| i.injected.is_some())
        else {
            self.violation(
                now,
                format!("{id} reports item {} that was never injected", item.0),
            );
            return;
        };
        if self.roles.get(id.index()) != Some(&Role::Peer) {
            return;
        }
        if it.holders.insert(id.index()) && self.online[id.index()] {
            it.online_holders += 1;
            it.mark_thresholds(now, self.online_peers);
        }
    }

    fn pick_origin(&mut self, k: usize, ctl: &Control<'_, A::Node>) -> Option<NodeId> {
        let origins = &self.sc.workload.origins;
        if !origins.is_empty() {
            let id = NodeId(origins[k % origins.len()]);
            return ctl.is_online(id).then_some(id);
        }
        let first = self.sc.nodes.trackers;
        let online: Vec<NodeId> = (first..self.sc.node_count())
            .map(NodeId)
            .filter(|&id| ctl.is_online(id))
            .collect();
        (!online.is_empty()).then(|| online[self.rng.gen_range(0..online.len())])
    }

    fn check(&mut self, now: Instant, sim: &Sim<A::Node>) {
        if let Err(e) = sim.check_invariants() {
            self.violation(now, e);
        }
        let mut online_peers = 0;
        let mut failures = Vec::new();
        for i in 0..sim.node_count() {
            let id = NodeId(i as u32);
            let online = sim.is_online(id);
            if online != self.online[i] {
                failures.push(format!(
                    "{id}: runner thinks online={}, engine {online}",
                    self.online[i]
                ));
            }
            online_peers += u32::from(online && self.is_peer(id));
            if let Some(node) = sim.node(id).filter(|_| online)
                && let Err(e) = self.adapter.check(now, id, node)
            {
                failures.push(format!("{id}: {e}"));
            }
        }
        if online_peers != self.online_peers {
            failures.push(format!(
                "{online_peers} peers online, runner counted {}",
                self.online_peers
            ));
        }
        for f in failures {
            self.violation(now, f);
        }
    }

    /// Whether every online peer reports the same state digest (early exit on the first
    /// difference); `None` when the adapter has no digests.
    fn stores_agree(&self, sim: &Sim<A::Node>) -> Option<bool> {
        let mut first: Option<String> = None;
        for i in 0..sim.node_count() {
            let id = NodeId(i as u32);
            if !self.is_peer(id) || !sim.is_online(id) {
                continue;
            }
            let digest = self.adapter.state_digest(sim.node(id)?)?;
            match &first {
                None => first = Some(digest),
                Some(f) if *f != digest => return Some(false),
                Some(_) => {}
            }
        }
        Some(true)
    }

    /// Watches healed partitions: records when the stores agree, fails when they do not in time.
    fn check_heals(&mut self, now: Instant, sim: &Sim<A::Node>) {
        let pending = self
            .heals
            .iter()
            .any(|h| now >= h.end && h.converged.is_none() && !h.failed);
        if !pending {
            return;
        }
        let agree = self.stores_agree(sim);
        let mut late = Vec::new();
        for (i, h) in self.heals.iter_mut().enumerate() {
            if now < h.end || h.converged.is_some() || h.failed {
                continue;
            }
            match agree {
                Some(true) => h.converged = Some(now),
                None => h.failed = true,
                Some(false) if now >= h.deadline => {
                    h.failed = true;
                    late.push(format!(
                        "partition {i} healed at {:?} but the online peers' stores still differ {:?} later",
                        h.end,
                        h.deadline.saturating_duration_since(h.end)
                    ));
                }
                Some(false) => {}
            }
        }
        if agree.is_none() {
            late.push("heal_bound is set but this node kind has no state digest".into());
        }
        for message in late {
            self.violation(now, message);
        }
    }

    fn finish(self, sim: &Sim<A::Node>, reason: &str, wall_s: f64) -> Results {
        let net = sim.net();
        let nodes: Vec<NodeResult> = (0..sim.node_count())
            .map(|i| {
                let id = NodeId(i as u32);
                let nat = net.nat_kind(id).map_or("public", NatKind::name).to_owned();
                let counters = net.counters(id).copied().unwrap_or_default();
                let churn = sim.churn_stats(id).copied().unwrap_or_default();
                NodeResult::new(
                    id.0,
                    self.roles[i],
                    nat,
                    &counters,
                    churn,
                    sim.is_online(id),
                )
            })
            .collect();
        let mut nat_mix = std::collections::BTreeMap::new();
        for n in nodes.iter().filter(|n| n.role == Role::Peer) {
            *nat_mix.entry(n.nat.clone()).or_insert(0) += 1;
        }
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let items: Vec<ItemResult> = self
            .items
            .iter()
            .enumerate()
            .filter_map(|(k, it)| {
                let (at, origin) = it.injected?;
                let after = |i: usize| it.reached[i].map(|t| secs(at, t));
                Some(ItemResult {
                    item: k as u32,
                    origin: origin.0,
                    injected_s: at.since_epoch().as_secs_f64(),
                    t50_s: after(0),
                    t90_s: after(1),
                    t99_s: after(2),
                    t100_s: after(3),
                    final_coverage: it.coverage(self.online_peers),
                })
            })
            .collect();
        let item_series = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| !it.series.is_empty())
            .map(|(k, it)| ItemSeries {
                item: k as u32,
                points: it.series.clone(),
            })
            .collect();
        let heals = self
            .heals
            .iter()
            .map(|h| HealResult {
                healed_s: h.end.since_epoch().as_secs_f64(),
                converged_after_s: h.converged.map(|t| secs(h.end, t)),
            })
            .collect();
        let adapter = self
            .adapter
            .summary(&mut (0..sim.node_count()).filter_map(|i| sim.node(NodeId(i as u32))));
        let pairs = sim.pairs().map(|t| {
            let mut all = PairCount::default();
            let mut by_class: BTreeMap<String, PairCount> = BTreeMap::new();
            let peers = t
                .iter()
                .filter(|(a, b, _, _)| self.is_peer(*a) && self.is_peer(*b));
            for (a, b, mutual, connected) in peers {
                let mut names = [nodes[a.index()].nat.as_str(), nodes[b.index()].nat.as_str()];
                names.sort_unstable();
                let class = by_class.entry(names.join("/")).or_default();
                for c in [&mut all, class] {
                    c.tried += 1;
                    c.mutual += u64::from(mutual);
                    c.connected += u64::from(connected);
                }
            }
            PairResults {
                all,
                by_class,
                overflow: t.overflow,
            }
        });
        let stats = *sim.stats();
        Results {
            scenario: self.sc.name.clone(),
            seed: self.seed,
            node_kind: self.sc.nodes.kind.clone(),
            simulated_s: sim.now().since_epoch().as_secs_f64(),
            end_reason: reason.to_owned(),
            event_log_hash: sim.log_hash(),
            log_records: sim.log_records(),
            engine: stats,
            wall_s,
            events_per_sec: if wall_s > 0.0 {
                stats.events as f64 / wall_s
            } else {
                0.0
            },
            step_interval_s: self.sc.metrics.step_interval.0.as_secs_f64(),
            convergence_s: self.converged_at.map(|t| t.since_epoch().as_secs_f64()),
            drops: by_reason(net.drop_totals()),
            nat_mix,
            nodes,
            series: self.series,
            items,
            item_series,
            violations: self.violations,
            heals,
            adapter,
            pairs,
        }
    }
}

impl<A: Adapter> Hooks<A::Node> for Harness<'_, A> {
    fn event(&mut self, now: Instant, node: NodeId, event: <A::Node as SimNode>::Event) {
        if let Some(item) = self.adapter.on_event(now, node, event) {
            self.gain(now, node, item);
        }
    }

    fn action(&mut self, now: Instant, tag: u64, ctl: &mut Control<'_, A::Node>) {
        self.actions_done += 1;
        let k = tag as usize;
        let size = self.sc.workload.size;
        let done = self.pick_origin(k, ctl).and_then(|origin| {
            let node = ctl.node_mut(origin)?;
            self.adapter
                .inject(now, origin, node, ItemId(k as u32), size)
                .then_some(origin)
        });
        match (done, self.items.get_mut(k)) {
            (Some(origin), Some(item)) => {
                item.injected = Some((now, origin));
                self.injected += 1;
                self.gain(now, origin, ItemId(k as u32));
            }
            _ => self.skipped += 1,
        }
    }

    fn sample(&mut self, now: Instant, sim: &Sim<A::Node>) -> Flow {
        self.samples += 1;
        let every = u64::from(self.sc.metrics.check_every);
        if self.sc.metrics.invariants && (self.samples - 1).is_multiple_of(every) {
            self.check(now, sim);
        }
        self.check_heals(now, sim);
        let (conv, online) = (self.sc.stop.convergence, self.online_peers);
        let (mut complete, mut coverage_sum) = (0u32, 0.0);
        let tracked = self.sc.metrics.track_items as usize;
        let cap = self.sc.metrics.max_samples as usize;
        for (k, it) in self.items.iter_mut().enumerate() {
            let Some((at, _)) = it.injected else { continue };
            it.mark_thresholds(now, online);
            let c = it.coverage(online);
            coverage_sum += c;
            complete += u32::from(c >= conv && online > 0);
            let full = it.series.last().is_some_and(|p| p.1 >= 1.0);
            if k < tracked && !full && it.series.len() < cap {
                it.series
                    .push((now.saturating_duration_since(at).as_secs_f64(), c));
            }
        }
        if self.samples % self.record_every == 1 || self.record_every == 1 {
            let net = sim.net();
            let (mut sent, mut recv) = (0, 0);
            for i in 0..sim.node_count() {
                if let Some(c) = net.counters(NodeId(i as u32)) {
                    sent += c.sent_bytes;
                    recv += c.recv_bytes;
                }
            }
            self.series.push(SamplePoint {
                t_s: now.since_epoch().as_secs_f64(),
                online_peers: online,
                sent_bytes: sent,
                recv_bytes: recv,
                dropped: sim.stats().dropped,
                items_injected: self.injected,
                items_complete: complete,
                mean_coverage: if self.injected > 0 {
                    coverage_sum / f64::from(self.injected)
                } else {
                    0.0
                },
            });
        }
        let all_done = self.actions_done == self.items.len() && self.injected > 0;
        let everyone = !self.sc.stop.all_online || online == self.sc.nodes.peers;
        if all_done && everyone && complete == self.injected && self.converged_at.is_none() {
            self.converged_at = Some(now);
        }
        (self.progress)(&Progress {
            now,
            end: self.end,
            events: sim.stats().events,
            online_peers: online,
            items_injected: self.injected,
            items_complete: complete,
        });
        let linger = self.sc.stop.linger.0;
        let converged = self
            .converged_at
            .is_some_and(|t| self.sc.stop.on_convergence && now >= t + linger);
        if self.failure.is_some() || converged {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn down(&mut self, _: Instant, node: NodeId, _: &mut A::Node) {
        let i = node.index();
        if !std::mem::replace(&mut self.online[i], false) || !self.is_peer(node) {
            return;
        }
        self.online_peers -= 1;
        for it in &mut self.items {
            if it.holders.contains(i) {
                it.online_holders -= 1;
            }
        }
    }

    fn restart(&mut self, now: Instant, ctx: &NodeContext, old: A::Node, keep: bool) -> A::Node {
        let i = ctx.id.index();
        let peer = self.is_peer(ctx.id);
        for it in &mut self.items {
            if !keep {
                it.holders.remove(i);
            } else if peer && it.holders.contains(i) {
                it.online_holders += 1;
            }
        }
        let spec = NodeSpec {
            role: self.roles[i],
            ctx: ctx.clone(),
            trackers: &self.trackers,
            addresses: &self.addresses,
            now,
        };
        let node = self.adapter.restart(&spec, old, keep);
        if !std::mem::replace(&mut self.online[i], true) && peer {
            self.online_peers += 1;
        }
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::{ToyAdapter, ToyEvent, ToyNode};

    /// The toy adapter, whose nodes all start failing their check after 5 s.
    struct Failing(ToyAdapter);

    impl Adapter for Failing {
        type Node = ToyNode;

        fn build(&mut self, spec: &NodeSpec<'_>) -> Result<ToyNode, crate::AdapterError> {
            self.0.build(spec)
        }

        fn restart(&mut self, spec: &NodeSpec<'_>, old: ToyNode, keep: bool) -> ToyNode {
            self.0.restart(spec, old, keep)
        }

        fn inject(&mut self, now: Instant, id: NodeId, n: &mut ToyNode, i: ItemId, s: u32) -> bool {
            self.0.inject(now, id, n, i, s)
        }

        fn on_event(&mut self, now: Instant, id: NodeId, e: ToyEvent) -> Option<ItemId> {
            self.0.on_event(now, id, e)
        }

        fn check(&mut self, now: Instant, _: NodeId, _: &ToyNode) -> Result<(), String> {
            if now > Instant::from_secs(5) {
                Err("broken on purpose".into())
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_failing_run_stops_and_names_its_seed() {
        let sc = Scenario::from_toml("name = \"f\"\nduration = 60\n[nodes]\npeers = 5\n").unwrap();
        let adapter = Failing(ToyAdapter::new(&toml::Table::new()).unwrap());
        let err = run_with(&sc, adapter, 77, &mut |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("seed 77") && text.contains("broken on purpose"),
            "{text}"
        );
        let RunError::Failed { results, .. } = err else {
            panic!("{text}")
        };
        assert_eq!(results.end_reason, "failed");
        assert_eq!(results.simulated_s, 6.0);
        assert!(!results.violations.is_empty());
    }

    /// The toy adapter with a state digest: the same for every node, or a different one each.
    struct Digests(ToyAdapter, bool);

    impl Adapter for Digests {
        type Node = ToyNode;

        fn build(&mut self, spec: &NodeSpec<'_>) -> Result<ToyNode, crate::AdapterError> {
            self.0.build(spec)
        }

        fn restart(&mut self, spec: &NodeSpec<'_>, old: ToyNode, keep: bool) -> ToyNode {
            self.0.restart(spec, old, keep)
        }

        fn inject(&mut self, now: Instant, id: NodeId, n: &mut ToyNode, i: ItemId, s: u32) -> bool {
            self.0.inject(now, id, n, i, s)
        }

        fn on_event(&mut self, now: Instant, id: NodeId, e: ToyEvent) -> Option<ItemId> {
            self.0.on_event(now, id, e)
        }

        fn state_digest(&self, node: &ToyNode) -> Option<String> {
            Some(if self.1 {
                "same".into()
            } else {
                format!("{node:p}")
            })
        }
    }

    #[test]
    fn healed_partitions_must_converge_in_time() {
        let text = "name = \"h\"\nduration = 30\n[nodes]\npeers = 6\n\
            [[partitions]]\nstart = 5\nend = 10\nsplit = [0.5, 0.5]\n\
            [metrics]\nheal_bound = \"4s\"\n";
        let sc = Scenario::from_toml(text).unwrap();
        let toy = || ToyAdapter::new(&toml::Table::new()).unwrap();
        let ok = run_with(&sc, Digests(toy(), true), 5, &mut |_| {}).unwrap();
        assert_eq!(ok.heals.len(), 1);
        assert_eq!(ok.heals[0].converged_after_s, Some(0.0));
        let err = run_with(&sc, Digests(toy(), false), 5, &mut |_| {}).unwrap_err();
        let RunError::Failed {
            results, message, ..
        } = err
        else {
            panic!("expected a failed run")
        };
        assert!(message.contains("still differ"), "{message}");
        assert_eq!(results.simulated_s, 14.0);
        assert_eq!(results.heals[0].converged_after_s, None);
        // Without a digest the check cannot run, and says so.
        let err = run_with(&sc, toy(), 5, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("no state digest"), "{err}");
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let sc = Scenario::from_toml(
            "name = \"u\"\nduration = 1\n[nodes]\nkind = \"nope\"\npeers = 1\n",
        )
        .unwrap();
        let err = run_scenario(&sc, &RunOptions::default(), &mut |_| {}).unwrap_err();
        assert!(matches!(err, RunError::UnknownKind(k) if k == "nope"));
    }

    #[test]
    fn apportion_is_exact_and_fair() {
        assert_eq!(apportion(&[0.5, 0.5], 7), [4, 3]);
        assert_eq!(apportion(&[0.1, 0.2, 0.3, 0.4], 10), [1, 2, 3, 4]);
        assert_eq!(apportion(&[1.0, 1.0, 1.0], 100).iter().sum::<usize>(), 100);
        assert_eq!(apportion(&[0.0, 0.0], 5), [0, 0]);
    }

    #[test]
    fn bitset_tracks_members() {
        let mut b = BitSet::new(130);
        assert!(b.insert(129));
        assert!(!b.insert(129));
        assert!(b.contains(129) && !b.contains(128));
        assert!(b.remove(129));
        assert!(!b.remove(129));
        assert!(!b.insert(500), "out of range is ignored");
    }
}
