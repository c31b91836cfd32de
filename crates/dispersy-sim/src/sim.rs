//! The discrete-event engine.
//!
//! One thread, one virtual clock starting at [`Instant::ZERO`], one queue of events ordered by
//! (time, insertion sequence). Processing an event gives at most one input to one node (a
//! datagram, a timeout, a restart, or a scenario action), after which the engine drains that
//! node: every `poll_transmit` is routed through the [`Network`] and every `poll_event` goes to
//! the [`Hooks`], then `poll_timeout` is read. Only the latest deadline of each node is live:
//! older queue entries carry a stale generation number and are skipped (and purged in bulk when
//! they pile up).
//!
//! Cost per event: one heap pop and at most a few pushes (O(log n)), no allocation beyond what
//! the nodes themselves allocate; datagram bodies are [`Bytes`] shared by every copy.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;
use dispersy::time::Instant;

use crate::churn::{ChurnConfig, ChurnStats};
use crate::dist::{SimRng, chance, derive_seed, stream};
pub use crate::hooks::{Control, EngineStats, Flow, Hooks, Stop};
use crate::link::{DropReason, LinkSpec};
use crate::log::{EventLog, Kind};
use crate::nat::NatConfig;
use crate::net::{ArriveOutcome, NetConfig, NetError, Network, Placement, SendOutcome, SiteId};
use crate::node::{NodeContext, NodeId, SimNode, Transmit};
use crate::pairs::PairTable;
use crate::queue::EventQueue;

/// Most transmits or events taken from one node in one drain; the rest wait for its next input.
pub const MAX_DRAIN: usize = 1 << 16;

/// Errors setting up a simulation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// From the network model.
    #[error(transparent)]
    Net(#[from] NetError),
    /// No such node.
    #[error("no node {0}")]
    UnknownNode(NodeId),
    /// The host already has a node.
    #[error("node {0} is already attached")]
    AlreadyAttached(NodeId),
    /// A parameter out of range.
    #[error("invalid: {0}")]
    Invalid(String),
}

#[derive(Debug)]
enum Ev {
    Arrive {
        origin: NodeId,
        from: SocketAddrV4,
        to: SocketAddrV4,
        bytes: Bytes,
    },
    Deliver {
        to: NodeId,
        origin: NodeId,
        from: SocketAddrV4,
        bytes: Bytes,
    },
    Timeout {
        node: NodeId,
        generation: u32,
    },
    Kick {
        node: NodeId,
    },
    Down {
        node: NodeId,
    },
    Up {
        node: NodeId,
        keep: Option<bool>,
    },
    Partition {
        id: u32,
        active: bool,
    },
    Action {
        tag: u64,
    },
    Sample,
}

#[derive(Debug)]
pub(crate) struct Slot<N> {
    pub(crate) node: Option<N>,
    local: SocketAddrV4,
    pub(crate) online: bool,
    generation: u32,
    deadline: Option<Instant>,
    churn: Option<u32>,
    incarnation: u32,
    churn_stats: ChurnStats,
}

/// Everything but the nodes, so a node can be borrowed while its output is routed.
#[derive(Debug)]
struct Fabric {
    pairs: Option<PairTable>,
    now: Instant,
    queue: EventQueue<Ev>,
    net: Network,
    log: EventLog,
    stats: EngineStats,
    stale_pending: u64,
}

/// A deterministic simulation of nodes of type `N`.
#[derive(Debug)]
pub struct Sim<N: SimNode> {
    seed: u64,
    slots: Vec<Slot<N>>,
    fab: Fabric,
    churn_models: Vec<ChurnConfig>,
    churn_rng: SimRng,
    sampling: Option<Duration>,
    touched: Vec<NodeId>,
}

impl<N: SimNode> Sim<N> {
    /// An empty simulation. `seed` decides every random choice of the network and churn, and
    /// the nodes' seeds (see [`NodeContext::seed`]).
    pub fn new(seed: u64, net: NetConfig) -> Result<Sim<N>, SimError> {
        Ok(Sim {
            seed,
            slots: Vec::new(),
            fab: Fabric {
                now: Instant::ZERO,
                queue: EventQueue::new(),
                net: Network::new(net, stream(seed, "net", 0))?,
                log: EventLog::new(true),
                stats: EngineStats::default(),
                stale_pending: 0,
                pairs: None,
            },
            churn_models: Vec::new(),
            churn_rng: stream(seed, "churn", 0),
            sampling: None,
            touched: Vec::new(),
        })
    }

    /// Whether datagram bytes enter the event-log hash (default yes). Lengths always do.
    pub fn hash_payloads(&mut self, yes: bool) {
        self.fab.log = EventLog::new(yes);
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.fab.now
    }

    /// The network (counters, NATs, addresses).
    pub fn net(&self) -> &Network {
        &self.fab.net
    }

    /// Engine counters.
    pub fn stats(&self) -> &EngineStats {
        &self.fab.stats
    }

    /// Events waiting.
    pub fn queue_len(&self) -> usize {
        self.fab.queue.len()
    }

    /// SHA-256 of the event log so far, hex.
    pub fn log_hash(&self) -> String {
        self.fab.log.hex()
    }

    /// Records in the event log so far.
    pub fn log_records(&self) -> u64 {
        self.fab.log.records()
    }

    /// Number of hosts (attached or not).
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// A node, online or not.
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.slots.get(id.index())?.node.as_ref()
    }

    /// Whether a node is attached and online.
    pub fn is_online(&self, id: NodeId) -> bool {
        self.slots
            .get(id.index())
            .is_some_and(|s| s.online && s.node.is_some())
    }

    /// A node's churn history.
    pub fn churn_stats(&self, id: NodeId) -> Option<&ChurnStats> {
        self.slots.get(id.index()).map(|s| &s.churn_stats)
    }

    /// The seed of incarnation `incarnation` of node `id`.
    pub fn node_seed(&self, id: NodeId, incarnation: u32) -> [u8; 32] {
        derive_seed(
            self.seed,
            "node",
            (u64::from(id.0) << 32) | u64::from(incarnation),
        )
    }

    fn context(&self, id: NodeId) -> Option<NodeContext> {
        let slot = self.slots.get(id.index())?;
        Some(NodeContext {
            id,
            local_addr: SocketAddr::V4(slot.local),
            seed: self.node_seed(id, slot.incarnation),
            incarnation: slot.incarnation,
        })
    }

    /// A NAT box on a public address of its own, for hosts placed behind it.
    pub fn add_nat(&mut self, cfg: NatConfig) -> Result<SiteId, SimError> {
        Ok(self.fab.net.add_nat(cfg)?)
    }

    /// A host without a node yet; [`Sim::attach`] gives it one.
    pub fn add_host(
        &mut self,
        placement: Placement,
        port: u16,
        link: LinkSpec,
    ) -> Result<NodeContext, SimError> {
        let (id, local) = self.fab.net.add_host(placement, port, link)?;
        self.slots.push(Slot {
            node: None,
            local,
            online: true,
            generation: 0,
            deadline: None,
            churn: None,
            incarnation: 0,
            churn_stats: ChurnStats::default(),
        });
        self.context(id).ok_or(SimError::UnknownNode(id))
    }

    /// Gives host `id` its node; it is first drained at the current time.
    pub fn attach(&mut self, id: NodeId, node: N) -> Result<(), SimError> {
        let slot = self
            .slots
            .get_mut(id.index())
            .ok_or(SimError::UnknownNode(id))?;
        if slot.node.is_some() {
            return Err(SimError::AlreadyAttached(id));
        }
        slot.node = Some(node);
        let now = self.fab.now;
        self.fab.queue.push(now, Ev::Kick { node: id });
        Ok(())
    }

    /// A host and its node in one go.
    pub fn add_node(
        &mut self,
        placement: Placement,
        port: u16,
        link: LinkSpec,
        build: impl FnOnce(&NodeContext) -> N,
    ) -> Result<NodeId, SimError> {
        let ctx = self.add_host(placement, port, link)?;
        self.attach(ctx.id, build(&ctx))?;
        Ok(ctx.id)
    }

    /// Starts recording which pairs of nodes tried to talk and which got through both ways
    /// (at most `max_pairs` pairs); see [`PairTable`].
    pub fn track_pairs(&mut self, max_pairs: usize) {
        self.fab.pairs = Some(PairTable::new(max_pairs));
    }

    /// The pair table, when [`Sim::track_pairs`] was called.
    pub fn pairs(&self) -> Option<&PairTable> {
        self.fab.pairs.as_ref()
    }

    /// Registers a churn model; returns its index for [`Sim::enable_churn`].
    pub fn add_churn_model(&mut self, cfg: ChurnConfig) -> Result<u32, SimError> {
        cfg.validate().map_err(SimError::Invalid)?;
        self.churn_models.push(cfg);
        Ok(self.churn_models.len() as u32 - 1)
    }

    /// Puts node `id` under churn model `model`: its first session ends a session length
    /// after `from`. Do not mix with [`Sim::schedule_down`] on the same node.
    pub fn enable_churn(&mut self, id: NodeId, model: u32, from: Instant) -> Result<(), SimError> {
        let cfg = self
            .churn_models
            .get(model as usize)
            .ok_or_else(|| SimError::Invalid(format!("no churn model {model}")))?;
        let slot = self
            .slots
            .get_mut(id.index())
            .ok_or(SimError::UnknownNode(id))?;
        slot.churn = Some(model);
        let at = from.max(self.fab.now) + cfg.session.sample(&mut self.churn_rng);
        if cfg.leaves_at(at.since_epoch()) {
            self.fab.queue.push(at, Ev::Down { node: id });
        }
        Ok(())
    }

    /// Takes node `id` offline at `at`.
    pub fn schedule_down(&mut self, id: NodeId, at: Instant) {
        self.fab
            .queue
            .push(at.max(self.fab.now), Ev::Down { node: id });
    }

    /// Brings node `id` back at `at`, keeping its state or not (`None`: ask its churn model).
    pub fn schedule_up(&mut self, id: NodeId, at: Instant, keep_state: Option<bool>) {
        let ev = Ev::Up {
            node: id,
            keep: keep_state,
        };
        self.fab.queue.push(at.max(self.fab.now), ev);
    }

    /// A partition from `start` to `end`: `group_of_node[i]` is node i's side.
    pub fn add_partition(
        &mut self,
        start: Instant,
        end: Instant,
        group_of_node: &[u16],
    ) -> Result<(), SimError> {
        let id = self.fab.net.add_partition(group_of_node)?;
        let q = &mut self.fab.queue;
        q.push(start, Ev::Partition { id, active: true });
        q.push(end.max(start), Ev::Partition { id, active: false });
        Ok(())
    }

    /// Calls [`Hooks::action`] with `tag` at `at`.
    pub fn schedule_action(&mut self, at: Instant, tag: u64) {
        self.fab
            .queue
            .push(at.max(self.fab.now), Ev::Action { tag });
    }

    /// Calls [`Hooks::sample`] at `first` and every `interval` after.
    pub fn set_sampling(&mut self, first: Instant, interval: Duration) -> Result<(), SimError> {
        if interval < Duration::from_micros(1) {
            return Err(SimError::Invalid(
                "sampling interval must be positive".into(),
            ));
        }
        self.sampling = Some(interval);
        self.fab.queue.push(first.max(self.fab.now), Ev::Sample);
        Ok(())
    }

    /// Checks what must hold at any time between events: every datagram is delivered, dropped
    /// or in flight.
    pub fn check_invariants(&self) -> Result<(), String> {
        let s = &self.fab.stats;
        if s.transmits + s.duplicates != s.delivered + s.dropped + s.in_flight {
            return Err(format!(
                "datagrams not conserved: {} sent + {} copies != {} delivered + {} dropped + {} in flight",
                s.transmits, s.duplicates, s.delivered, s.dropped, s.in_flight
            ));
        }
        if s.time_regressions > 0 {
            return Err(format!("{} events ran in the past", s.time_regressions));
        }
        Ok(())
    }

    /// Processes events up to and including `end`.
    pub fn run_until<H: Hooks<N>>(&mut self, end: Instant, hooks: &mut H) -> Stop {
        loop {
            match self.fab.queue.peek_time() {
                None => return Stop::Idle,
                Some(t) if t > end => {
                    self.fab.now = self.fab.now.max(end);
                    return Stop::Horizon;
                }
                Some(_) => {}
            }
            if self.step(hooks) == Flow::Stop {
                return Stop::Hook;
            }
        }
    }

    /// Processes the next event, if any.
    pub fn step<H: Hooks<N>>(&mut self, hooks: &mut H) -> Flow {
        let Some((at, ev)) = self.fab.queue.pop() else {
            return Flow::Continue;
        };
        if at < self.fab.now {
            self.fab.stats.time_regressions += 1;
        } else {
            self.fab.now = at;
        }
        let now = self.fab.now;
        if let Ev::Timeout { node, generation } = ev {
            self.timeout(node, generation, hooks);
            return Flow::Continue;
        }
        self.fab.stats.events += 1;
        match ev {
            Ev::Arrive {
                origin,
                from,
                to,
                bytes,
            } => self.arrive(origin, from, to, bytes, hooks),
            Ev::Deliver {
                to,
                origin,
                from,
                bytes,
            } => {
                self.fab.stats.in_flight -= 1;
                self.deliver(to, origin, from, bytes, hooks);
            }
            Ev::Kick { node } => {
                self.fab
                    .log
                    .record(Kind::Kick, now)
                    .u32(node.0)
                    .finish(None);
                self.drain(node, hooks, false);
            }
            Ev::Down { node } => self.down(node, hooks),
            Ev::Up { node, keep } => self.up(node, keep, hooks),
            Ev::Partition { id, active } => {
                let rec = self.fab.log.record(Kind::Partition, now);
                rec.u32(id).u8(u8::from(active)).finish(None);
                self.fab.net.set_partition(id, active);
            }
            Ev::Action { tag } => self.action(tag, hooks),
            Ev::Sample => {
                self.fab.log.record(Kind::Sample, now).finish(None);
                if let Some(interval) = self.sampling {
                    self.fab.queue.push(now + interval, Ev::Sample);
                }
                return hooks.sample(now, self);
            }
            Ev::Timeout { .. } => {}
        }
        Flow::Continue
    }

    fn timeout<H: Hooks<N>>(&mut self, id: NodeId, generation: u32, hooks: &mut H) {
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return;
        };
        if slot.generation != generation || slot.deadline.is_none() || !slot.online {
            self.fab.stats.stale_timers += 1;
            self.fab.stale_pending = self.fab.stale_pending.saturating_sub(1);
            return;
        }
        slot.deadline = None;
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let now = self.fab.now;
        self.fab.stats.events += 1;
        self.fab.stats.timeouts += 1;
        self.fab
            .log
            .record(Kind::Timeout, now)
            .u32(id.0)
            .finish(None);
        node.handle_timeout(now);
        self.drain(id, hooks, true);
    }

    fn arrive<H: Hooks<N>>(
        &mut self,
        origin: NodeId,
        from: SocketAddrV4,
        to: SocketAddrV4,
        bytes: Bytes,
        hooks: &mut H,
    ) {
        let f = &mut self.fab;
        f.stats.in_flight -= 1;
        let len = bytes.len();
        let rec = f.log.record(Kind::Arrive, f.now).u32(origin.0).addr(from);
        rec.addr(to).u32(len as u32).finish(None);
        match f.net.arrive(f.now, from, to, len) {
            (to_node, ArriveOutcome::Dropped(reason)) => f.drop(origin, to_node, reason, len),
            (_, ArriveOutcome::Deliver { to, at }) if at <= f.now.as_micros() => {
                self.deliver(to, origin, from, bytes, hooks);
            }
            (_, ArriveOutcome::Deliver { to, at }) => {
                f.stats.in_flight += 1;
                let ev = Ev::Deliver {
                    to,
                    origin,
                    from,
                    bytes,
                };
                f.queue.push(Instant::from_micros(at), ev);
            }
        }
    }

    fn deliver<H: Hooks<N>>(
        &mut self,
        to: NodeId,
        origin: NodeId,
        from: SocketAddrV4,
        bytes: Bytes,
        hooks: &mut H,
    ) {
        let f = &mut self.fab;
        let len = bytes.len();
        let node = self
            .slots
            .get_mut(to.index())
            .filter(|s| s.online)
            .and_then(|s| s.node.as_mut());
        let Some(node) = node else {
            f.drop(origin, Some(to), DropReason::Offline, len);
            return;
        };
        f.stats.delivered += 1;
        if let Some(pairs) = f.pairs.as_mut() {
            pairs.delivered(origin, to);
        }
        f.net.count_received(to, len);
        let rec = f.log.record(Kind::Deliver, f.now).u32(to.0).addr(from);
        rec.u32(len as u32).finish(None);
        node.handle_datagram(f.now, SocketAddr::V4(from), bytes);
        self.drain(to, hooks, false);
    }

    fn down<H: Hooks<N>>(&mut self, id: NodeId, hooks: &mut H) {
        let now = self.fab.now;
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return;
        };
        if !slot.online {
            return;
        }
        self.fab.log.record(Kind::Down, now).u32(id.0).finish(None);
        slot.online = false;
        if slot.deadline.take().is_some() {
            self.fab.stale_pending += 1;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.churn_stats.went_down(now);
        if let Some(node) = slot.node.as_mut() {
            hooks.down(now, id, node);
        }
        if let Some(cfg) = slot.churn.and_then(|m| self.churn_models.get(m as usize)) {
            let at = now + cfg.downtime.sample(&mut self.churn_rng);
            self.fab.queue.push(
                at,
                Ev::Up {
                    node: id,
                    keep: None,
                },
            );
        }
    }

    fn up<H: Hooks<N>>(&mut self, id: NodeId, keep: Option<bool>, hooks: &mut H) {
        let now = self.fab.now;
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return;
        };
        if slot.online || slot.node.is_none() {
            return;
        }
        let model = slot.churn.and_then(|m| self.churn_models.get(m as usize));
        let keep = keep.unwrap_or_else(|| {
            model.is_none_or(|cfg| {
                cfg.keep_state >= 1.0 || chance(&mut self.churn_rng, cfg.keep_state)
            })
        });
        slot.incarnation += 1;
        slot.churn_stats.came_up(now, keep);
        let rec = self.fab.log.record(Kind::Up, now).u32(id.0);
        rec.u8(u8::from(keep)).finish(None);
        self.fab.stats.restarts += 1;
        let Some(ctx) = self.context(id) else {
            return;
        };
        let slot = &mut self.slots[id.index()];
        if let Some(old) = slot.node.take() {
            slot.node = Some(hooks.restart(now, &ctx, old, keep));
        }
        slot.online = true;
        if let Some(cfg) = slot.churn.and_then(|m| self.churn_models.get(m as usize)) {
            let at = now + cfg.session.sample(&mut self.churn_rng);
            if cfg.leaves_at(at.since_epoch()) {
                self.fab.queue.push(at, Ev::Down { node: id });
            }
        }
        self.drain(id, hooks, false);
    }

    fn action<H: Hooks<N>>(&mut self, tag: u64, hooks: &mut H) {
        let now = self.fab.now;
        self.fab.log.record(Kind::Action, now).u64(tag).finish(None);
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        let mut ctl = Control::new(&mut self.slots, &mut touched);
        hooks.action(now, tag, &mut ctl);
        for &id in &touched {
            self.drain(id, hooks, false);
        }
        self.touched = touched;
    }

    /// After an input to `id`: route its datagrams, pass on its events, re-arm its timer.
    fn drain<H: Hooks<N>>(&mut self, id: NodeId, hooks: &mut H, after_timeout: bool) {
        let Sim { slots, fab, .. } = self;
        let now = fab.now;
        let Some(slot) = slots.get_mut(id.index()) else {
            return;
        };
        let Some(node) = slot.node.as_mut().filter(|_| slot.online) else {
            return;
        };
        let mut sent = 0;
        while let Some(t) = node.poll_transmit() {
            fab.transmit(id, slot.local, t);
            sent += 1;
            if sent == MAX_DRAIN {
                fab.stats.drain_overflows += 1;
                break;
            }
        }
        let mut told = 0;
        while let Some(e) = node.poll_event() {
            hooks.event(now, id, e);
            told += 1;
            if told == MAX_DRAIN {
                fab.stats.drain_overflows += 1;
                break;
            }
        }
        let deadline = match node.poll_timeout() {
            Some(d) if after_timeout && d <= now => {
                fab.stats.spinning_timers += 1;
                Some(now + Duration::from_micros(1))
            }
            d => d.map(|d| d.max(now)),
        };
        if deadline == slot.deadline {
            return;
        }
        if slot.deadline.is_some() {
            fab.stale_pending += 1;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.deadline = deadline;
        if let Some(d) = deadline {
            let generation = slot.generation;
            fab.queue.push(
                d,
                Ev::Timeout {
                    node: id,
                    generation,
                },
            );
        }
        if fab.stale_pending > 4 * slots.len() as u64 + 4096 {
            fab.purge_stale(slots);
        }
    }
}

impl Fabric {
    fn drop(&mut self, origin: NodeId, to: Option<NodeId>, reason: DropReason, len: usize) {
        self.stats.dropped += 1;
        if let (Some(pairs), Some(to)) = (self.pairs.as_mut(), to) {
            pairs.tried(origin, to);
        }
        self.net.count_drop(origin, to, reason);
        let rec = self.log.record(Kind::Drop, self.now).u32(origin.0);
        let to = to.map_or(u32::MAX, |t| t.0);
        rec.u32(to)
            .u8(reason.index() as u8)
            .u32(len as u32)
            .finish(None);
    }

    fn transmit(&mut self, src: NodeId, local: SocketAddrV4, t: Transmit) {
        let len = t.contents.len();
        self.stats.transmits += 1;
        self.net.count_sent(src, len);
        let dst = match t.destination {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
        };
        let rec = self.log.record(Kind::Send, self.now).u32(src.0).addr(dst);
        rec.u32(len as u32).finish(Some(&t.contents));
        match self.net.send(self.now, src, t.destination, len) {
            SendOutcome::Dropped(reason) => self.drop(src, None, reason, len),
            SendOutcome::Lan { to, at } => {
                self.stats.in_flight += 1;
                let ev = Ev::Deliver {
                    to,
                    origin: src,
                    from: local,
                    bytes: t.contents,
                };
                self.queue.push(Instant::from_micros(at), ev);
            }
            SendOutcome::Wan {
                from,
                to,
                first,
                second,
            } => {
                if let Some(second) = second {
                    self.stats.duplicates += 1;
                    self.stats.in_flight += 1;
                    let ev = Ev::Arrive {
                        origin: src,
                        from,
                        to,
                        bytes: t.contents.clone(),
                    };
                    self.queue.push(Instant::from_micros(second), ev);
                }
                self.stats.in_flight += 1;
                let ev = Ev::Arrive {
                    origin: src,
                    from,
                    to,
                    bytes: t.contents,
                };
                self.queue.push(Instant::from_micros(first), ev);
            }
        }
    }

    fn purge_stale<N>(&mut self, slots: &[Slot<N>]) {
        let before = self.queue.len();
        self.queue.retain(|ev| match *ev {
            Ev::Timeout { node, generation } => slots
                .get(node.index())
                .is_some_and(|s| s.generation == generation && s.deadline.is_some()),
            _ => true,
        });
        self.stats.stale_timers += (before - self.queue.len()) as u64;
        self.stale_pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::SocketAddr;

    use super::*;
    use crate::dist::{Dist, Span};
    use crate::link::LossModel;

    /// Pings `target` every `period`; answers pings with pongs; records everything.
    #[derive(Debug, Default)]
    struct Echo {
        target: Option<SocketAddr>,
        period: Option<Duration>,
        next: Option<Instant>,
        out: VecDeque<Transmit>,
        events: VecDeque<String>,
        got: Vec<(Instant, SocketAddr, Bytes)>,
        fired: Vec<Instant>,
        sent: u32,
    }

    impl SimNode for Echo {
        type Event = String;

        fn handle_datagram(&mut self, now: Instant, from: SocketAddr, contents: Bytes) {
            if contents.starts_with(b"ping") {
                let mut pong = b"pong".to_vec();
                pong.extend_from_slice(&contents[4..]);
                self.out.push_back(Transmit {
                    destination: from,
                    contents: pong.into(),
                });
            }
            self.events
                .push_back(format!("got {} bytes", contents.len()));
            self.got.push((now, from, contents));
        }

        fn handle_timeout(&mut self, now: Instant) {
            self.fired.push(now);
            if let Some(target) = self.target {
                self.sent += 1;
                self.out.push_back(Transmit {
                    destination: target,
                    contents: format!("ping{}", self.sent).into_bytes().into(),
                });
            }
            self.next = self.period.map(|p| now + p);
        }

        fn poll_transmit(&mut self) -> Option<Transmit> {
            self.out.pop_front()
        }

        fn poll_event(&mut self) -> Option<String> {
            self.events.pop_front()
        }

        fn poll_timeout(&mut self) -> Option<Instant> {
            self.next
        }
    }

    /// Records what the engine tells it.
    #[derive(Debug, Default)]
    struct Rec {
        events: Vec<(Instant, NodeId, String)>,
        actions: Vec<(Instant, u64)>,
        restarts: Vec<(NodeId, u32, bool)>,
        downs: Vec<(Instant, NodeId)>,
        retime: Option<(NodeId, Instant)>,
    }

    impl Hooks<Echo> for Rec {
        fn event(&mut self, now: Instant, node: NodeId, event: String) {
            self.events.push((now, node, event));
        }

        fn action(&mut self, now: Instant, tag: u64, ctl: &mut Control<'_, Echo>) {
            self.actions.push((now, tag));
            if let Some((id, at)) = self.retime
                && let Some(n) = ctl.node_mut(id)
            {
                n.next = Some(at);
            }
        }

        fn down(&mut self, now: Instant, node: NodeId, _: &mut Echo) {
            self.downs.push((now, node));
        }

        fn restart(&mut self, _: Instant, ctx: &NodeContext, old: Echo, keep: bool) -> Echo {
            self.restarts.push((ctx.id, ctx.incarnation, keep));
            Echo {
                target: old.target,
                period: old.period,
                next: old.next,
                ..Echo::default()
            }
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    fn pair(cfg: NetConfig, seed: u64) -> (Sim<Echo>, NodeId, NodeId) {
        let mut sim = Sim::new(seed, cfg).unwrap();
        let b = sim
            .add_node(Placement::Public, 7759, LinkSpec::UNLIMITED, |_| {
                Echo::default()
            })
            .unwrap();
        let b_addr = SocketAddr::V4(sim.net().local_addr(b).unwrap());
        let a = sim
            .add_node(Placement::Public, 7759, LinkSpec::UNLIMITED, |_| Echo {
                target: Some(b_addr),
                period: Some(Duration::from_secs(1)),
                next: Some(t(1000)),
                ..Echo::default()
            })
            .unwrap();
        (sim, a, b)
    }

    #[test]
    fn ties_run_in_the_order_they_were_scheduled() {
        let (mut sim, _, _) = pair(NetConfig::default(), 1);
        for (at, tag) in [(50, 1), (20, 2), (50, 3), (20, 4), (50, 5)] {
            sim.schedule_action(t(at), tag);
        }
        let mut rec = Rec::default();
        sim.run_until(t(60), &mut rec);
        let tags: Vec<u64> = rec.actions.iter().map(|a| a.1).collect();
        assert_eq!(tags, [2, 4, 1, 3, 5]);
        assert_eq!(sim.now(), t(60));
    }

    #[test]
    fn ping_pong_takes_the_configured_latency() {
        let cfg = NetConfig {
            base_latency: Span::millis(10),
            ..NetConfig::default()
        };
        let (mut sim, a, b) = pair(cfg, 1);
        let mut rec = Rec::default();
        sim.run_until(t(1500), &mut rec);
        let got_b = &sim.node(b).unwrap().got;
        assert_eq!(got_b.len(), 1);
        assert_eq!(got_b[0].0, t(1010));
        assert_eq!(got_b[0].2, Bytes::from_static(b"ping1"));
        let got_a = &sim.node(a).unwrap().got;
        assert_eq!((got_a[0].0, &got_a[0].2[..]), (t(1020), &b"pong1"[..]));
        // Events are drained after each input and reach the hooks in order.
        assert_eq!(
            rec.events,
            [
                (t(1010), b, "got 5 bytes".to_owned()),
                (t(1020), a, "got 5 bytes".to_owned())
            ]
        );
        let c = sim.net().counters(a).unwrap();
        assert_eq!((c.sent_packets, c.sent_bytes, c.recv_packets), (1, 5, 1));
        assert_eq!(sim.stats().timeouts, 1);
        sim.check_invariants().unwrap();
    }

    #[test]
    fn only_the_latest_deadline_fires() {
        let (mut sim, a, _) = pair(NetConfig::default(), 1);
        let mut rec = Rec {
            retime: Some((a, t(700))),
            ..Rec::default()
        };
        sim.schedule_action(t(100), 0);
        sim.run_until(t(1500), &mut rec);
        // Moved from 1,000 ms to 700 ms, then every second: 1,700 ms is beyond the horizon.
        assert_eq!(sim.node(a).unwrap().fired, [t(700)]);
        rec.retime = Some((a, t(5000)));
        sim.schedule_action(t(1600), 0);
        sim.run_until(t(4000), &mut rec);
        // 1,700 ms was superseded by 5,000 ms: nothing fires before 4,000 ms.
        assert_eq!(sim.node(a).unwrap().fired, [t(700)]);
        assert_eq!(sim.stats().stale_timers, 2);
    }

    #[test]
    fn offline_nodes_miss_datagrams_and_timers_then_restart() {
        let (mut sim, a, b) = pair(NetConfig::default(), 1);
        sim.schedule_down(b, t(500));
        sim.schedule_down(a, t(2500));
        sim.schedule_up(a, t(4200), Some(false));
        sim.schedule_up(b, t(3000), Some(true));
        let mut rec = Rec::default();
        sim.run_until(t(6000), &mut rec);
        // A pinged at 1 s and 2 s while B was down: both refused as offline.
        let refused = sim.net().counters(b).unwrap().refused;
        assert_eq!(refused[DropReason::Offline.index()], 2);
        // A's timer stopped while down: fired at 1, 2, then after restart at 4.2 s (its old
        // deadline of 3 s had passed) and 5.2 s.
        assert_eq!(
            sim.node(a).unwrap().fired,
            [t(4200), t(5200)],
            "the restarted node's own record"
        );
        assert_eq!(rec.downs, [(t(500), b), (t(2500), a)]);
        assert_eq!(rec.restarts, [(b, 1, true), (a, 1, false)]);
        assert_ne!(sim.node_seed(a, 0), sim.node_seed(a, 1));
        let pongs = sim.node(a).unwrap().got.len();
        assert_eq!(pongs, 2, "pongs at 4.2 s and 5.2 s");
        sim.check_invariants().unwrap();
    }

    #[test]
    fn churn_alternates_sessions_and_downtimes() {
        let (mut sim, _, b) = pair(NetConfig::default(), 1);
        let model = sim
            .add_churn_model(ChurnConfig::new(
                Dist::fixed(Span::secs(10)),
                Dist::fixed(Span::secs(5)),
            ))
            .unwrap();
        sim.enable_churn(b, model, Instant::ZERO).unwrap();
        let mut rec = Rec::default();
        sim.run_until(Instant::from_secs(100), &mut rec);
        // Down at 10, 25, 40, 55, 70, 85, 100; up at 15, 30, ..., 90.
        let s = sim.churn_stats(b).unwrap();
        assert_eq!(s.departures, 7);
        assert_eq!(s.restarts_kept, 6);
        assert_eq!(s.offline_us, 6 * 5_000_000);
        assert!(!sim.is_online(b));
        let incarnations: Vec<u32> = rec.restarts.iter().map(|r| r.1).collect();
        assert_eq!(incarnations, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn churn_ends_with_everyone_online() {
        let (mut sim, _, b) = pair(NetConfig::default(), 1);
        let mut cfg = ChurnConfig::new(Dist::fixed(Span::secs(10)), Dist::fixed(Span::secs(5)));
        cfg.end = Some(Span::secs(42));
        let model = sim.add_churn_model(cfg).unwrap();
        sim.enable_churn(b, model, Instant::ZERO).unwrap();
        sim.run_until(Instant::from_secs(100), &mut Rec::default());
        // Down at 10, 25, 40; up at 15, 30, 45; the session ending at 55 does not.
        let s = sim.churn_stats(b).unwrap();
        assert_eq!((s.departures, s.restarts_kept), (3, 3));
        assert!(sim.is_online(b));
    }

    fn lossy_run(seed: u64) -> (String, EngineStats) {
        let cfg = NetConfig {
            jitter: Dist::Exponential {
                mean: Span::millis(30),
            },
            loss: LossModel::Bernoulli { p: 0.1 },
            duplicate: 0.05,
            ..NetConfig::default()
        };
        let (mut sim, _, _) = pair(cfg, seed);
        sim.run_until(Instant::from_secs(200), &mut Rec::default());
        sim.check_invariants().unwrap();
        (sim.log_hash(), *sim.stats())
    }

    #[test]
    fn same_seed_same_hash_other_seed_other_hash() {
        let seed = std::env::var("DISPERSY_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(42);
        eprintln!("seed {seed}");
        let (h1, s1) = lossy_run(seed);
        let (h2, s2) = lossy_run(seed);
        assert_eq!(h1, h2);
        assert_eq!(s1, s2);
        let (h3, _) = lossy_run(seed + 1);
        assert_ne!(h1, h3);
        assert!(s1.dropped > 0 && s1.duplicates > 0);
    }

    #[test]
    fn stale_timers_are_purged_when_they_pile_up() {
        let (mut sim, a, _) = pair(NetConfig::default(), 1);
        let mut rec = Rec::default();
        // Push A's deadline later 10,000 times: each leaves a stale entry behind.
        for i in 0..10_000u64 {
            rec.retime = Some((a, Instant::from_secs(10_000 + i)));
            sim.schedule_action(t(1 + i), i);
            sim.run_until(t(1 + i), &mut rec);
        }
        assert!(sim.queue_len() < 5_000, "queue {}", sim.queue_len());
        assert!(sim.stats().stale_timers > 5_000);
    }
}
