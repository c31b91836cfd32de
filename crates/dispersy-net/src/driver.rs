//! Starting and stopping a driver, and the node task's loop.

use std::collections::BTreeSet;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use dispersy::ids::CommunityId;
use dispersy::node::{Event, Node, Transmit};
use dispersy::time::Instant;
use dispersy::walker;
use dispersy::wire::PREFIX_LEN;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::Config;
use crate::beacon;
use crate::clock::Clock;
use crate::handle::{Command, Handle, Shared};
use crate::interfaces::{self, Interfaces};
use crate::metrics::Counters;
use crate::socket::{self, Inbound, InboundRx, Outbound, ReaderKind};
use crate::trackers::{self, Resolved, Tracker};

/// Why a driver did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `Driver::start` was called outside a tokio runtime.
    #[error("a driver must be started from within a tokio runtime")]
    NoRuntime,
    /// `Config::listen` is empty.
    #[error("no listen address")]
    NoListenAddress,
    /// A socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A tracker address does not parse.
    #[error(transparent)]
    Tracker(#[from] trackers::ParseError),
}

/// The node task panicked (a bug in the node, or a panic in a closure given to
/// [`Handle::call`]); the node is lost.
#[derive(Debug, thiserror::Error)]
#[error("the node task failed: {0}")]
pub struct TaskFailed(String);

/// What a stopped driver gives back.
#[derive(Debug)]
pub struct Stopped {
    /// The node, its store committed.
    pub node: Node,
    /// The node time when it stopped: give it as [`Config::clock_origin`] to a driver that
    /// restarts this node.
    pub now: Instant,
}

/// A running driver. It stops when asked ([`Driver::shutdown`], [`Handle::shutdown`]), when
/// the driver and every handle are dropped (dropping the driver alone does not stop it), or when
/// its runtime shuts down; the last two without sending what is queued, but the store is
/// committed either way.
#[derive(Debug)]
pub struct Driver {
    handle: Handle,
    task: JoinHandle<Stopped>,
}

impl Driver {
    /// Binds the sockets and starts the tasks. Must be called from within a tokio runtime (of
    /// either flavour).
    pub fn start(node: Node, config: Config) -> Result<Driver, StartError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        if config.listen.is_empty() {
            return Err(StartError::NoListenAddress);
        }
        let trackers: Vec<Tracker> = config
            .trackers
            .addresses
            .iter()
            .map(|s| Tracker::parse(s))
            .collect::<Result<_, _>>()?;

        let mut sockets = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            let (s, info) = socket::bind(addr, config.socket_buffer, false)
                .map_err(|source| StartError::Bind { addr, source })?;
            sockets.push((Arc::new(s), info));
        }
        let beacon_socket = match &config.beacon {
            Some(b) => {
                let (s, info) = socket::bind(b.bind, config.socket_buffer.min(1 << 20), true)
                    .map_err(|source| StartError::Bind {
                        addr: b.bind,
                        source,
                    })?;
                Some((Arc::new(s), info, b.clone()))
            }
            None => None,
        };

        let metrics = Arc::new(Counters::default());
        let initial = interfaces::scan().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list the local interfaces");
            Interfaces::default()
        });
        let (interfaces_tx, interfaces_rx) = watch::channel(initial);
        let (inbound_tx, inbound_rx) = socket::inbound(
            config.inbound_capacity,
            config.inbound_bytes,
            metrics.clone(),
        );
        let (prefixes_tx, prefixes_rx) = watch::channel(Vec::new());
        let (trackers_tx, trackers_rx) = watch::channel(trackers::literals(&trackers));

        let mut tasks = Vec::new();
        for (s, _) in &sockets {
            tasks.push(rt.spawn(socket::read_loop(
                s.clone(),
                inbound_tx.clone(),
                ReaderKind::Listen,
                metrics.clone(),
            )));
        }
        let beacon_info = beacon_socket.map(|(s, info, bconfig)| {
            let filter = beacon::Filter::new(info.local, interfaces_rx.clone());
            tasks.push(rt.spawn(socket::read_loop(
                s.clone(),
                inbound_tx.clone(),
                ReaderKind::Beacon(filter),
                metrics.clone(),
            )));
            tasks.push(rt.spawn(beacon::send_loop(s, bconfig, prefixes_rx, metrics.clone())));
            info
        });
        drop(inbound_tx);
        if let Some(every) = config.interface_scan {
            tasks.push(rt.spawn(interfaces::rescan_loop(
                every,
                interfaces_tx,
                metrics.clone(),
            )));
        }
        if trackers.iter().any(|t| t.literal().is_none()) {
            tasks.push(rt.spawn(trackers::resolve_loop(
                trackers,
                config.trackers.clone(),
                trackers::system_resolver(),
                trackers_tx,
                metrics.clone(),
            )));
        } else {
            // Nothing to resolve: the node task sees a closed channel and never waits on it.
            drop(trackers_tx);
        }

        // The node task runs on a thread of its own and would poll its timer after the runtime
        // shut down its time driver (a panic). A task of the runtime holds this sender: the
        // runtime drops its tasks before it stops its drivers, so the node task learns first.
        let (runtime_alive, runtime_gone) = oneshot::channel::<()>();
        tasks.push(rt.spawn(async move {
            let _alive = runtime_alive;
            std::future::pending::<()>().await;
        }));
        let (events_tx, _) = broadcast::channel(config.event_capacity.max(1));
        let (commands_tx, commands_rx) = mpsc::channel(config.command_capacity.max(1));
        let clock = Clock::new(config.clock_origin);
        let out = sockets
            .iter()
            .map(|(s, info)| {
                Outbound::new(
                    s.clone(),
                    info.local,
                    config.send_queue,
                    config.send_max_age,
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            metrics: metrics.clone(),
            events: events_tx.downgrade(),
            sockets: sockets.iter().map(|(_, info)| *info).collect(),
            beacon: beacon_info,
            interfaces: interfaces_rx.clone(),
            trackers: trackers_rx.clone(),
            clock,
        });
        // The node's LAN address follows the first IPv4 socket (else the first socket).
        let bound = sockets
            .iter()
            .map(|(_, info)| info.local)
            .find(SocketAddr::is_ipv4)
            .or_else(|| sockets.first().map(|(_, info)| info.local))
            .expect("invariant: at least one listen socket is bound");
        let node_task = NodeTask {
            node,
            clock,
            inbound: inbound_rx,
            commands: commands_rx,
            out,
            events: events_tx,
            metrics,
            burst: config.burst.max(1),
            shutdown_timeout: config.shutdown_timeout,
            trackers: trackers_rx,
            told_trackers: BTreeSet::new(),
            interfaces: interfaces_rx,
            bound,
            communities: BTreeSet::new(),
            prefixes: prefixes_tx,
            tasks,
            runtime_gone,
            last_timer: None,
            clamped: false,
            buf: Vec::new(),
        };
        // The node task may block on its store; it gets a thread of its own (see crate docs).
        let runtime = rt.clone();
        let task = rt.spawn_blocking(move || runtime.block_on(node_task.run()));
        Ok(Driver {
            handle: Handle {
                commands: commands_tx,
                shared,
            },
            task,
        })
    }

    /// A handle (clone it freely).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The bound listen addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.handle.local_addrs()
    }

    /// Stops gracefully: the readers stop, what they had queued is processed, queued datagrams
    /// are sent (for at most [`Config::shutdown_timeout`]), the store is committed, and the node
    /// is returned. Commands sent after this do not run.
    pub async fn shutdown(self) -> Result<Stopped, TaskFailed> {
        self.handle.shutdown().await;
        self.wait().await
    }

    /// Waits until the driver stops (asked through a [`Handle`]) and returns the node.
    pub async fn wait(self) -> Result<Stopped, TaskFailed> {
        let Driver { handle, task } = self;
        // Our handle must not keep the driver alive while we wait for it.
        drop(handle);
        task.await.map_err(|e| TaskFailed(e.to_string()))
    }
}

/// Why the node task woke up.
enum Wake {
    Datagrams(usize),
    Command(Option<Command>),
    Timer,
    Writable,
    Trackers(bool),
    RuntimeGone,
}

/// The node task: owns the node and the send side of the sockets.
struct NodeTask {
    node: Node,
    clock: Clock,
    inbound: InboundRx,
    commands: mpsc::Receiver<Command>,
    out: Vec<Outbound>,
    events: broadcast::Sender<Event>,
    metrics: Arc<Counters>,
    burst: usize,
    shutdown_timeout: Duration,
    trackers: watch::Receiver<Resolved>,
    /// Tracker addresses the node was told about.
    told_trackers: Resolved,
    /// The interface scans, given to the node when they change.
    interfaces: watch::Receiver<Interfaces>,
    /// The socket address the node's LAN address is derived from.
    bound: SocketAddr,
    /// The joined communities, as last seen.
    communities: BTreeSet<CommunityId>,
    /// Prefixes of the joined communities, for the beacon.
    prefixes: watch::Sender<Vec<[u8; PREFIX_LEN]>>,
    /// Readers and helpers, stopped at shutdown.
    tasks: Vec<JoinHandle<()>>,
    /// Completes (with an error) when the runtime drops its tasks: it is shutting down.
    runtime_gone: oneshot::Receiver<()>,
    /// When the timer last fired.
    last_timer: Option<Instant>,
    /// Whether the armed deadline was postponed by the spin guard.
    clamped: bool,
    buf: Vec<Inbound>,
}

fn poll_writable(out: &[Outbound], cx: &mut Context<'_>) -> Poll<()> {
    // Poll every socket so each registers its waker.
    let mut ready = false;
    for o in out {
        ready |= o.poll_ready(cx).is_ready();
    }
    if ready {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

impl NodeTask {
    async fn run(mut self) -> Stopped {
        let now = self.clock.now();
        self.tell_interfaces();
        self.trackers_changed(now);
        self.communities_changed();
        self.drain_output();

        let mut inbound_open = true;
        let mut trackers_open = self.trackers.has_changed().is_ok();
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        let graceful = loop {
            let deadline = self.next_deadline();
            if let Some(d) = deadline {
                timer.as_mut().reset(d);
            }
            let sending = self.out.iter().any(|o| o.queued() > 0);
            // The runtime's end is checked before anything else is polled (the timer must not
            // be); the other sources are polled in random order, fairly.
            let wake = tokio::select! {
                biased;
                _ = &mut self.runtime_gone => Wake::RuntimeGone,
                wake = async {
                    tokio::select! {
                        command = self.commands.recv() => Wake::Command(command),
                        n = self.inbound.recv_many(&mut self.buf, self.burst), if inbound_open => {
                            Wake::Datagrams(n)
                        }
                        () = &mut timer, if deadline.is_some() => Wake::Timer,
                        () = poll_fn(|cx| poll_writable(&self.out, cx)), if sending => {
                            Wake::Writable
                        }
                        changed = self.trackers.changed(), if trackers_open => {
                            Wake::Trackers(changed.is_ok())
                        }
                    }
                } => wake,
            };
            // Interface changes are rare and need no wake-up of their own: the node wakes for
            // its walk at least every few seconds.
            self.interfaces_changed();
            let m = &self.metrics;
            Counters::inc(&m.wakeups);
            match wake {
                Wake::Command(Some(Command::Call(job))) => {
                    Counters::inc(&m.wakeups_commands);
                    Counters::inc(&m.commands);
                    let now = self.clock.now();
                    job(&mut self.node, now);
                    self.communities_changed();
                }
                Wake::Command(Some(Command::Shutdown)) => break true,
                // Every handle is gone: nobody can ask for the node any more, and the runtime
                // may be shutting down, so stop without waiting on timers.
                Wake::Command(None) => break false,
                // Without timers too; the store is still committed.
                Wake::RuntimeGone => {
                    tracing::warn!("the runtime shut down under a running driver");
                    break false;
                }
                Wake::Datagrams(0) => {
                    tracing::warn!("every socket reader stopped; the node no longer receives");
                    inbound_open = false;
                }
                Wake::Datagrams(_) => {
                    Counters::inc(&m.wakeups_datagrams);
                    self.absorb();
                }
                Wake::Timer => {
                    Counters::inc(&m.wakeups_timer);
                    if self.clamped {
                        Counters::inc(&m.timer_clamped);
                    }
                    let now = self.clock.now();
                    if self.node.poll_timeout().is_some_and(|at| at > now) && !self.clamped {
                        Counters::inc(&m.timer_early);
                    }
                    self.last_timer = Some(now);
                    if let Err(e) = self.node.handle_timeout(now) {
                        self.store_failed(&e);
                    }
                }
                Wake::Writable => {
                    Counters::inc(&m.wakeups_writable);
                    let now = tokio::time::Instant::now();
                    for o in &mut self.out {
                        o.flush(now, &self.metrics);
                    }
                }
                Wake::Trackers(true) => {
                    Counters::inc(&m.wakeups_trackers);
                    let now = self.clock.now();
                    self.trackers_changed(now);
                }
                Wake::Trackers(false) => trackers_open = false,
            }
            self.drain_output();
        };
        self.stop(graceful).await
    }

    /// Where to arm the timer. A deadline at or before the last one handled would make the
    /// loop spin (the node should have handled it); it is postponed by a millisecond.
    fn next_deadline(&mut self) -> Option<tokio::time::Instant> {
        let mut at = self.node.poll_timeout()?;
        self.clamped = false;
        if let Some(last) = self.last_timer
            && at <= last
        {
            at = last + Duration::from_millis(1);
            self.clamped = true;
        }
        self.clock.deadline(at)
    }

    /// Hands what the readers queued to the node: beacons one by one, datagrams as one burst.
    fn absorb(&mut self) {
        let now = self.clock.now();
        let mut items = std::mem::take(&mut self.buf);
        let mut batch: Vec<(SocketAddr, Bytes)> = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            match item {
                Inbound::Datagram(from, data) => batch.push((from, data)),
                Inbound::Beacon(from, prefix) => self.beacon_seen(now, from, prefix),
            }
        }
        self.buf = items; // keeps its capacity for the next burst
        if batch.is_empty() {
            return;
        }
        Counters::inc(&self.metrics.bursts);
        Counters::max(&self.metrics.largest_burst, batch.len() as u64);
        if let Err(e) = self.node.handle_datagrams(now, batch) {
            self.store_failed(&e);
        }
    }

    fn store_failed(&self, e: &dyn std::error::Error) {
        Counters::inc(&self.metrics.store_errors);
        tracing::error!(error = %e, "the store failed; the input was not fully processed");
    }

    /// A beacon from another node: it becomes a peer of the community it names.
    fn beacon_seen(&mut self, now: Instant, from: SocketAddr, prefix: [u8; PREFIX_LEN]) {
        let matching: Vec<CommunityId> = self
            .node
            .communities()
            .filter(|d| d.prefix().to_bytes() == prefix)
            .map(|d| d.id())
            .collect();
        for community in matching {
            Counters::inc(&self.metrics.beacons_matched);
            // Like py-ipv8: remember it and walk to it at once; its answer verifies it.
            let added = self
                .node
                .add_peer(now, community, from)
                .and_then(|()| self.node.walk_to(now, community, from));
            if let Err(e) = added {
                tracing::debug!(error = %e, "beacon peer not added");
            }
        }
    }

    /// Whether a socket can reach `addr`.
    fn reachable(&self, addr: &SocketAddr) -> bool {
        let to = socket::canonical(*addr);
        self.out.iter().any(|o| o.serves(&to))
    }

    /// Gives the node the latest interface scan, when it changed since the last time.
    fn interfaces_changed(&mut self) {
        // An error means no more scans will come (scanning once at start).
        if self.interfaces.has_changed().unwrap_or(false) {
            self.tell_interfaces();
        }
    }

    /// Gives the node the latest interface scan.
    fn tell_interfaces(&mut self) {
        let interfaces = self
            .interfaces
            .borrow_and_update()
            .networks()
            .map(|(ip, prefix_len)| walker::Interface::new(ip, prefix_len))
            .collect();
        self.node.set_interfaces(walker::LocalInterfaces {
            bound: self.bound,
            interfaces,
        });
    }

    /// Tells the node about tracker addresses it has not heard of: node-wide bootstrap
    /// addresses, used by every community (also ones joined later).
    fn trackers_changed(&mut self, now: Instant) {
        let resolved = self.trackers.borrow_and_update().clone();
        let fresh: Vec<SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|a| self.reachable(a) && !self.told_trackers.contains(a))
            .collect();
        for &address in &fresh {
            if let Err(e) = self.node.add_bootstrap(now, address) {
                tracing::debug!(error = %e, %address, "tracker not added");
            }
        }
        self.told_trackers.extend(fresh);
    }

    /// After a command: the beacon learns the new set of prefixes. (Trackers are node-wide
    /// bootstrap addresses, so communities joined later use them without help.)
    fn communities_changed(&mut self) {
        let current: BTreeSet<CommunityId> = self.node.communities().map(|d| d.id()).collect();
        if current == self.communities {
            return;
        }
        self.communities = current;
        let prefixes = self
            .node
            .communities()
            .map(|d| d.prefix().to_bytes())
            .collect();
        self.prefixes.send_replace(prefixes);
    }

    /// Sends every datagram and broadcasts every event the node produced.
    fn drain_output(&mut self) {
        let now = tokio::time::Instant::now();
        while let Some(t) = self.node.poll_transmit() {
            self.transmit(t, now);
        }
        while let Some(e) = self.node.poll_event() {
            Counters::inc(&self.metrics.events);
            // No subscriber is not an error.
            let _ = self.events.send(e);
        }
        let m = &self.metrics;
        let queued: usize = self.out.iter().map(Outbound::queued).sum();
        Counters::set(&m.send_queued, queued as u64);
        let (datagrams, bytes) = self.inbound.queued();
        Counters::set(&m.inbound_queued, datagrams as u64);
        Counters::set(&m.inbound_queued_bytes, bytes as u64);
    }

    fn transmit(&mut self, t: Transmit, now: tokio::time::Instant) {
        let to = socket::canonical(t.destination);
        match self.out.iter_mut().find(|o| o.serves(&to)) {
            Some(o) => o.send(to, t.contents, now, &self.metrics),
            None => Counters::inc(&self.metrics.send_no_socket),
        }
    }

    /// The end: stop the readers and helpers, process what they had queued, send what waits
    /// (only when asked to stop gracefully, for at most the shutdown timeout), commit.
    async fn stop(mut self, graceful: bool) -> Stopped {
        for t in &self.tasks {
            t.abort();
        }
        self.inbound.close();
        self.commands.close();
        while self.commands.try_recv().is_ok() {} // their callers learn the driver stopped

        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        while tokio::time::Instant::now() < deadline
            && self.inbound.try_recv_many(&mut self.buf, self.burst) > 0
        {
            self.absorb();
            self.drain_output();
        }
        let mut left = Vec::new();
        self.inbound.try_recv_many(&mut left, usize::MAX);
        Counters::add(&self.metrics.inbound_dropped, left.len() as u64);

        loop {
            let now = tokio::time::Instant::now();
            for o in &mut self.out {
                o.flush(now, &self.metrics);
            }
            if !graceful || self.out.iter().all(|o| o.queued() == 0) {
                break;
            }
            tokio::select! {
                () = poll_fn(|cx| poll_writable(&self.out, cx)) => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let abandoned: usize = self.out.iter_mut().map(Outbound::abandon).sum();
        Counters::add(&self.metrics.send_abandoned, abandoned as u64);

        // Commit unconditionally (a commit that failed earlier is retried here).
        let now = self.clock.now();
        if let Err(e) = self.node.flush() {
            self.store_failed(&e);
        }
        while self.node.poll_transmit().is_some() {}
        while let Some(e) = self.node.poll_event() {
            let _ = self.events.send(e);
        }
        self.drain_output();
        tracing::debug!("driver stopped");
        Stopped {
            node: self.node,
            now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_needs_a_runtime() {
        let key = dispersy::crypto::PrivateKey::generate(&mut rand::rngs::OsRng);
        let node = Node::new(
            dispersy::node::Config::default(),
            key,
            Box::new(dispersy::store::MemStore::new()),
        );
        assert!(matches!(
            Driver::start(node, Config::default()),
            Err(StartError::NoRuntime)
        ));
    }

    #[tokio::test]
    async fn bad_configurations_are_refused() {
        let node = || {
            let key = dispersy::crypto::PrivateKey::generate(&mut rand::rngs::OsRng);
            Node::new(
                dispersy::node::Config::default(),
                key,
                Box::new(dispersy::store::MemStore::new()),
            )
        };
        let none = Config {
            listen: Vec::new(),
            ..Config::default()
        };
        assert!(matches!(
            Driver::start(node(), none),
            Err(StartError::NoListenAddress)
        ));
        let mut bad_tracker = Config {
            listen: vec!["127.0.0.1:0".parse().expect("address")],
            ..Config::default()
        };
        bad_tracker.trackers.addresses = vec!["no-port".into()];
        assert!(matches!(
            Driver::start(node(), bad_tracker),
            Err(StartError::Tracker(_))
        ));
    }
}
