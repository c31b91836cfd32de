//! A deterministic discrete-event network simulator for dispersy nodes.
//!
//! Thousands of sans-IO nodes run in one thread over an emulated network with latency and
//! jitter, random and bursty loss, duplication, reordering, access-link bandwidth with queues,
//! partitions that heal, NAT boxes of every classic kind, and churn. The same seed and scenario
//! give the same run, checked by a SHA-256 hash over every processed event.
//!
//! # The run loop
//!
//! [`Sim`] holds a virtual clock that starts at [`dispersy::time::Instant::ZERO`] and a queue of
//! events ordered by (time, insertion sequence). Each event is one input to one node, after
//! which the node is drained (transmits routed, events passed to the [`Hooks`], timer re-armed):
//!
//! ```text
//! loop {
//!     pop the earliest event; the clock jumps to its time
//!     datagram  -> network decides NAT, queues, loss -> node.handle_datagram(now, from, bytes)
//!     timeout   -> node.handle_timeout(now)        (skipped if superseded)
//!     churn     -> node offline / rebuilt by Hooks::restart
//!     action    -> Hooks::action (e.g. inject a message)
//!     sample    -> Hooks::sample (metrics, invariants, stop condition)
//!     drain the node: poll_transmit* -> network, poll_event* -> hooks, poll_timeout -> queue
//! }
//! ```
//!
//! # Randomness
//!
//! One `u64` seed; every consumer (network, churn, NAT ports, each node incarnation, the
//! workload) draws from its own ChaCha stream derived from it ([`dist::stream`]).
//!
//! # Scenarios
//!
//! [`Scenario`] is the TOML format of `simulations/*.toml`; [`run_file`] runs one and writes
//! `results.json` and SVG plots. An [`Adapter`] turns the scenario's nodes into [`SimNode`]s:
//! [`dispersy_node::DispersyAdapter`] runs the real [`dispersy::node::Node`] (`kind =
//! "dispersy"`), and [`toy::ToyAdapter`] is a small push-pull gossip used by the engine's own
//! tests and speed measurement. The real node runs with its default configuration, so peers
//! find each other with the random walker and converge by its Bloom-filter sync (plus fast
//! catch-up and range reconciliation); a post is pushed only to a few candidates on creation.
//!
//! # Determinism
//!
//! `tests/dispersy_determinism.rs` runs a small scenario of real nodes (42 nodes under NATs,
//! loss, churn and a partition) twice and compares the event-log hashes, and once more without
//! the shared verification cache; set `DISPERSY_SIM_SEED` to try another seed (a failure names
//! the seed). `scripts/ci-stage-sim` does the same through `dispersy sim run`.
//!
//! # Experiments
//!
//! `simulations/exp-*.toml` are the experiments of `docs/experiments.md` (dissemination steps,
//! scale, churn, challenged links, NAT traversal), run by `simulations/run-experiments.sh`; the
//! document gives each one's command, figures and plots beside Dispersy's published ones.
//!
//! # Bounds
//!
//! NAT tables and permissions are capped per box ([`NatConfig`]); access-link queues are
//! capped in bytes ([`LinkSpec`]); a drain takes at most [`sim::MAX_DRAIN`] outputs; recorded
//! time series and invariant messages are capped by the scenario's metrics settings.
#![deny(missing_docs)]

pub mod adapter;
pub mod churn;
pub mod dispersy_node;
pub mod dist;
mod hash;
pub mod hooks;
pub mod link;
mod log;
pub mod nat;
pub mod net;
pub mod node;
pub mod pairs;
pub mod plot;
mod queue;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod sim;
pub mod toy;

pub use adapter::{Adapter, AdapterError, ItemId, NodeSpec, Role};
pub use churn::ChurnConfig;
pub use dist::{Dist, Span};
pub use link::{Counters, DropReason, LinkSpec, LossModel, LossScope};
pub use nat::{NatConfig, NatKind};
pub use net::{NetConfig, Placement, SiteId};
pub use node::{NodeContext, NodeId, SimNode, Transmit};
pub use pairs::{PairCount, PairTable};
pub use results::Results;
pub use runner::{
    Outcome, Progress, RunError, RunOptions, run_file, run_scenario, run_with, write_outputs,
};
pub use scenario::Scenario;
pub use sim::{Control, EngineStats, Flow, Hooks, Sim, SimError, Stop};
