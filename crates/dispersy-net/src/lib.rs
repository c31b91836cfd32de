//! The tokio driver for a dispersy [`Node`](dispersy::node::Node): real UDP sockets, real time, and a cloneable
//! [`Handle`] for everything else.
//!
//! The node ([`dispersy::node`]) is a state machine that never performs I/O. This crate feeds it
//! datagrams from the network, the time, and commands from the application, and carries out
//! what it asks for. [`Driver::start`] takes a `Node` and a [`Config`]; [`Driver::shutdown`]
//! gives the `Node` back, its store committed.
//!
//! # The run loop
//!
//! One task owns the node: no lock is ever taken around it. It waits for whichever comes first,
//! feeds the node, and drains everything the node produced before waiting again:
//!
//! ```text
//! loop {
//!     wait for: a burst of datagrams | a command | the node's timer | a writable socket
//!     feed the node, with now = the driver's clock:
//!         burst    -> node.handle_datagrams(now, burst)   // one batch verification, one commit
//!         command  -> closure(&mut node, now)             // join, create_message, ...
//!         timer    -> node.handle_timeout(now)
//!         writable -> send what waited in the socket's queue
//!     drain: node.poll_transmit() -> send (queue if the socket would block)
//!            node.poll_event()    -> broadcast to subscribers
//!     arm the timer at node.poll_timeout()
//! }
//! ```
//!
//! A node without traffic wakes only for its own timers: nothing polls, nothing ticks. The
//! wake-ups are counted in [`Metrics`].
//!
//! # Tasks and threads
//!
//! - **Readers**, one tokio task per socket, never touch the node or the disk: they `recv_from`
//!   into a 64 KiB buffer and push `(source, datagram)` on a bounded queue. When the queue is
//!   full the datagram is dropped and counted ([`Metrics::inbound_dropped`]), so the kernel's
//!   receive buffer is emptied however slow the node is. (Dispersy moved its endpoint to its own
//!   thread for exactly this reason.)
//! - **The node task** takes everything queued (up to [`Config::burst`]) and hands it to the
//!   node in one call. It runs on a thread of tokio's blocking pool (driving its future with the
//!   runtime's handle), because a store commit may block on the disk: it must not hold up the
//!   runtime's workers, where the readers run. The node task sends with non-blocking
//!   `try_send_to`; a datagram the kernel cannot take waits in the socket's bounded send queue.
//! - **Helpers**: a periodic interface scan ([`interfaces`]), tracker name resolution
//!   ([`trackers`]) and, when enabled, LAN beacons ([`beacon`]). They wake the node task only
//!   when what they found changed, and the interface scan not even then: the node gets a changed
//!   scan (`Node::set_interfaces`, from which it derives its LAN address) at its next wake-up,
//!   at most one walk step later. Resolved trackers become bootstrap addresses of every
//!   community (`Node::add_bootstrap`).
//!
//! # Time
//!
//! The node's [`dispersy::time::Instant`] is the driver's monotonic clock: microseconds since
//! the driver started, plus [`Config::clock_origin`]. A node restarted under a new driver
//! should be given the `now` it stopped at ([`Stopped::now`]), so its time never goes back.
//!
//! # Bounds
//!
//! | what | bound | overflow |
//! |---|---|---|
//! | inbound queue | [`Config::inbound_capacity`] datagrams and [`Config::inbound_bytes`] bytes | drop, count `inbound_dropped` |
//! | burst per `handle_datagrams` | [`Config::burst`] | the rest waits for the next burst |
//! | send queue per socket | [`Config::send_queue`] datagrams | drop, count `send_queue_full` |
//! | age of a queued datagram | [`Config::send_max_age`] (60 s) | drop, count `send_expired` |
//! | commands waiting | [`Config::command_capacity`] | the caller waits |
//! | events buffered per subscriber | [`Config::event_capacity`] | the subscriber lags and is told how many it lost |
//! | shutdown | [`Config::shutdown_timeout`] | unsent datagrams are counted in `send_abandoned` |
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(definition: dispersy::community::Definition) -> Result<(), Box<dyn std::error::Error>> {
//! use dispersy::crypto::PrivateKey;
//! use dispersy::ids::MetaId;
//! use dispersy::node::{Config as NodeConfig, Event, Node};
//! use dispersy::store::MemStore;
//! use dispersy_net::{Config, Driver};
//!
//! let key = PrivateKey::generate(&mut rand::rngs::OsRng);
//! let node = Node::new(NodeConfig::default(), key, Box::new(MemStore::new()));
//! let config = Config {
//!     listen: vec!["0.0.0.0:7759".parse()?, "[::]:7759".parse()?],
//!     ..Config::default()
//! };
//! let driver = Driver::start(node, config)?;
//! let handle = driver.handle().clone();
//! let mut events = handle.subscribe();
//!
//! let community = definition.id();
//! handle.join(definition).await?;
//! handle.add_peer(community, "192.0.2.7:7759".parse()?).await?;
//! handle.create_message(community, MetaId(1), b"hello".to_vec(), Vec::new()).await?;
//! // Any node method, run on the node task at the current time:
//! let peers = handle.call(move |node, _now| node.peers(&community)).await?;
//!
//! while let Ok(event) = events.recv().await {
//!     if let Event::Message(m) = event {
//!         println!("{:?} from {:?}", m.payload, m.source);
//!     }
//! }
//! let stopped = driver.shutdown().await?;
//! # drop((peers, stopped));
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod beacon;
mod clock;
mod driver;
mod handle;
pub mod interfaces;
pub mod keyfile;
mod metrics;
mod socket;
pub mod trackers;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dispersy::time::Instant;

pub use driver::{Driver, StartError, Stopped, TaskFailed};
pub use handle::{Error, Handle};
pub use metrics::Metrics;
pub use socket::{RECV_BUFFER, SocketInfo};

/// Driver settings. Every bound has a default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on, IPv4 and/or IPv6 (port 0: the kernel picks). Each datagram goes
    /// out on the first socket of its destination's address family. IPv6 sockets are
    /// IPv6-only, so `0.0.0.0:p` and `[::]:p` can both be bound.
    pub listen: Vec<SocketAddr>,
    /// Requested kernel receive and send buffer size of each socket (`SO_RCVBUF`/`SO_SNDBUF`;
    /// the kernel caps it at `net.core.rmem_max`/`wmem_max`).
    pub socket_buffer: usize,
    /// Datagrams the inbound queue holds.
    pub inbound_capacity: usize,
    /// Bytes the inbound queue holds (a flood of 64 KiB datagrams stays bounded in memory).
    pub inbound_bytes: usize,
    /// Most datagrams handed to the node in one `handle_datagrams` call.
    pub burst: usize,
    /// Datagrams each socket's send queue holds while the socket would block.
    pub send_queue: usize,
    /// Queued datagrams older than this are dropped instead of sent.
    pub send_max_age: Duration,
    /// How long a shutdown may spend sending what is queued.
    pub shutdown_timeout: Duration,
    /// Events kept for a subscriber that has not read them yet.
    pub event_capacity: usize,
    /// Commands waiting for the node task.
    pub command_capacity: usize,
    /// How often the interfaces are rescanned (`None`: scan once at start).
    pub interface_scan: Option<Duration>,
    /// Trackers and other bootstrap addresses.
    pub trackers: trackers::Config,
    /// LAN discovery by broadcast beacons (`None`: off).
    pub beacon: Option<beacon::Config>,
    /// Node time at the moment the driver starts.
    pub clock_origin: Instant,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)],
            socket_buffer: 4 << 20,
            inbound_capacity: 16_384,
            inbound_bytes: 32 << 20,
            burst: 1024,
            send_queue: 8192,
            send_max_age: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(5),
            event_capacity: 4096,
            command_capacity: 256,
            interface_scan: Some(Duration::from_secs(10)),
            trackers: trackers::Config::default(),
            beacon: None,
            clock_origin: Instant::ZERO,
        }
    }
}
