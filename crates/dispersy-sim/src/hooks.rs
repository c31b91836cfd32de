//! What the engine tells the application around it, and what it lets an action touch.

use dispersy::time::Instant;
use serde::{Deserialize, Serialize};

use crate::node::{NodeContext, NodeId, SimNode};
use crate::sim::{Sim, Slot};

/// Whether to go on after a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// Stop the run.
    Stop,
}

/// Why [`Sim::run_until`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The next event is past the end time; the clock is at the end time.
    Horizon,
    /// Nothing left to do.
    Idle,
    /// A hook returned [`Flow::Stop`].
    Hook,
}

/// What the engine tells the application around it. Every method has a default.
pub trait Hooks<N: SimNode> {
    /// A node emitted an event.
    fn event(&mut self, now: Instant, node: NodeId, event: N::Event) {
        let _ = (now, node, event);
    }

    /// A scheduled action is due (see [`Sim::schedule_action`]). Nodes touched through `ctl`
    /// are drained afterwards.
    fn action(&mut self, now: Instant, tag: u64, ctl: &mut Control<'_, N>) {
        let _ = (now, tag, ctl);
    }

    /// A sampling tick (see [`Sim::set_sampling`]).
    fn sample(&mut self, now: Instant, sim: &Sim<N>) -> Flow {
        let _ = (now, sim);
        Flow::Continue
    }

    /// A node went offline.
    fn down(&mut self, now: Instant, node: NodeId, state: &mut N) {
        let _ = (now, node, state);
    }

    /// A node comes back: return the node to run from now on, rebuilt from `old` keeping its
    /// state (its store) or not. The default keeps the old object as it was.
    fn restart(&mut self, now: Instant, ctx: &NodeContext, old: N, keep_state: bool) -> N {
        let _ = (now, ctx, keep_state);
        old
    }
}

/// Access to nodes from [`Hooks::action`].
#[derive(Debug)]
pub struct Control<'a, N> {
    slots: &'a mut [Slot<N>],
    touched: &'a mut Vec<NodeId>,
}

impl<'a, N> Control<'a, N> {
    pub(crate) fn new(slots: &'a mut [Slot<N>], touched: &'a mut Vec<NodeId>) -> Self {
        Control { slots, touched }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether a node is online.
    pub fn is_online(&self, id: NodeId) -> bool {
        self.slots
            .get(id.index())
            .is_some_and(|s| s.online && s.node.is_some())
    }

    /// An online node, to give an input to; it is drained when the action returns.
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut N> {
        let slot = self.slots.get_mut(id.index())?;
        if !slot.online {
            return None;
        }
        let node = slot.node.as_mut()?;
        self.touched.push(id);
        Some(node)
    }
}

/// Engine counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Events processed (stale timers excluded).
    pub events: u64,
    /// Datagrams nodes sent.
    pub transmits: u64,
    /// Extra copies made by duplication.
    pub duplicates: u64,
    /// Datagrams handed to nodes.
    pub delivered: u64,
    /// Datagrams (and copies) dropped anywhere.
    pub dropped: u64,
    /// Datagrams (and copies) in the queue now.
    pub in_flight: u64,
    /// Timeouts handed to nodes.
    pub timeouts: u64,
    /// Superseded timer entries skipped or purged.
    pub stale_timers: u64,
    /// Node restarts.
    pub restarts: u64,
    /// Drains cut short by [`crate::sim::MAX_DRAIN`].
    pub drain_overflows: u64,
    /// Deadlines at or before `now` returned right after a timeout (pushed 1 µs on).
    pub spinning_timers: u64,
    /// Events found earlier than the clock (a bug if ever non-zero).
    pub time_regressions: u64,
}
