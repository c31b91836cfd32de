//! The cloneable [`Handle`]: commands to the node task, events from it, and what the driver
//! knows about its sockets and surroundings.

use std::net::SocketAddr;
use std::sync::Arc;

use dispersy::community::Definition;
use dispersy::community::spec::CommunitySpec;
use dispersy::ids::{CommunityId, MetaId};
use dispersy::node::{CommandError, Counters as NodeCounters, Delivered, Event, Node};
use dispersy::time::Instant;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::interfaces::Interfaces;
use crate::metrics::{Counters, Metrics};
use crate::socket::SocketInfo;
use crate::trackers::Resolved;

/// A closure run on the node task.
pub(crate) type Job = Box<dyn FnOnce(&mut Node, Instant) + Send>;

/// What a handle asks of the node task.
pub(crate) enum Command {
    /// Run a closure on the node, then drain its output.
    Call(Job),
    /// Stop gracefully.
    Shutdown,
}

/// Why a command did not run or was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The driver has stopped (or is stopping); the command did not run.
    #[error("the driver has stopped")]
    Stopped,
    /// The node refused the command.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// What every handle shares. Immutable after start: nothing here is locked.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) metrics: Arc<Counters>,
    pub(crate) events: broadcast::WeakSender<Event>,
    pub(crate) sockets: Vec<SocketInfo>,
    pub(crate) beacon: Option<SocketInfo>,
    pub(crate) interfaces: watch::Receiver<Interfaces>,
    pub(crate) trackers: watch::Receiver<Resolved>,
    pub(crate) clock: Clock,
}

/// A cloneable handle to a running driver. Commands are answered once the node task ran them;
/// the datagrams they produce are sent right after.
#[derive(Debug, Clone)]
pub struct Handle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    /// Runs `f` on the node at the current time, on the node task, and returns its result. This
    /// reaches every node method, so the REST API and the CLI need nothing else. `f` should be
    /// quick: the node handles nothing else meanwhile. A panic in `f` stops the driver.
    pub async fn call<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(&mut Node, Instant) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |node, now| {
            // The caller may have given up waiting; the command ran all the same.
            let _ = tx.send(f(node, now));
        });
        self.commands
            .send(Command::Call(job))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Joins a community defined in code.
    pub async fn join(&self, definition: Definition) -> Result<(), Error> {
        Ok(self
            .call(move |node, now| node.join(now, definition))
            .await??)
    }

    /// Joins a community described declaratively.
    pub async fn join_spec(&self, spec: CommunitySpec) -> Result<(), Error> {
        Ok(self
            .call(move |node, now| node.join_spec(now, &spec))
            .await??)
    }

    /// Leaves a community; `forget` also deletes its stored messages. `false` when not joined.
    pub async fn leave(&self, community: CommunityId, forget: bool) -> Result<bool, Error> {
        Ok(self
            .call(move |node, _| node.leave(&community, forget))
            .await??)
    }

    /// Creates, stores and sends a message; `targets` receive it besides the peers its
    /// destination policy picks.
    pub async fn create_message(
        &self,
        community: CommunityId,
        meta: MetaId,
        payload: Vec<u8>,
        targets: Vec<SocketAddr>,
    ) -> Result<Delivered, Error> {
        Ok(self
            .call(move |node, now| node.create_message(now, community, meta, &payload, &targets))
            .await??)
    }

    /// Adds a peer to a community.
    pub async fn add_peer(&self, community: CommunityId, address: SocketAddr) -> Result<(), Error> {
        Ok(self
            .call(move |node, now| node.add_peer(now, community, address))
            .await??)
    }

    /// The node's counters (traffic by message type, drops by reason).
    pub async fn stats(&self) -> Result<NodeCounters, Error> {
        self.call(|node, _| node.stats().clone()).await
    }

    /// The driver's counters (see [`Metrics`]). Read without involving the node task.
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics.snapshot()
    }

    /// A new subscription to the node's events, from now on. A subscriber that falls more than
    /// [`crate::Config::event_capacity`] events behind loses the oldest and is told how many
    /// (`RecvError::Lagged`). After the driver stops, `recv` returns `RecvError::Closed`.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        match self.shared.events.upgrade() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// The listen sockets, in the order of [`crate::Config::listen`], with the ports the
    /// kernel picked and the buffer sizes it granted.
    pub fn sockets(&self) -> &[SocketInfo] {
        &self.shared.sockets
    }

    /// The bound listen addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared.sockets.iter().map(|s| s.local).collect()
    }

    /// The beacon socket, when LAN discovery is on.
    pub fn beacon_socket(&self) -> Option<SocketInfo> {
        self.shared.beacon
    }

    /// The latest interface scan.
    pub fn interfaces(&self) -> Interfaces {
        self.shared.interfaces.borrow().clone()
    }

    /// A receiver that sees every change of the interfaces.
    pub fn watch_interfaces(&self) -> watch::Receiver<Interfaces> {
        self.shared.interfaces.clone()
    }

    /// Our LAN address estimate for each listen socket (see [`Interfaces::lan_address`]).
    pub fn lan_addresses(&self) -> Vec<SocketAddr> {
        let interfaces = self.shared.interfaces.borrow();
        self.shared
            .sockets
            .iter()
            .filter_map(|s| interfaces.lan_address(s.local))
            .collect()
    }

    /// The tracker addresses resolved so far.
    pub fn trackers(&self) -> Resolved {
        self.shared.trackers.borrow().clone()
    }

    /// The driver's current time, as the node sees it.
    pub fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    /// Asks the driver to stop gracefully; returns once the request is queued (after the
    /// commands queued before it). [`crate::Driver::wait`] returns the node.
    pub async fn shutdown(&self) {
        // An error means it is stopping already.
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// Whether the driver has stopped.
    pub fn is_stopped(&self) -> bool {
        self.commands.is_closed()
    }
}
