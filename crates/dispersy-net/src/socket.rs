//! UDP sockets: binding, the reader tasks, the inbound queue and the send queues.
//!
//! A reader task per socket does nothing but `recv_from` into a 64 KiB buffer, copy the datagram
//! out, and push it on the bounded inbound queue to the node task. It never waits for the node:
//! when the queue is full (by count or by bytes) the datagram is dropped and counted. So however
//! long a store commit takes, the kernel's receive buffer keeps being emptied.
//!
//! Sending happens on the node task with `try_send_to`. A datagram the kernel cannot take right
//! now (`WouldBlock`) waits in the socket's bounded send queue, which is flushed when the socket
//! becomes writable; datagrams that waited longer than the maximum age are dropped on the way
//! out, so a node coming back from a long outage does not burst stale traffic.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use dispersy::wire::PREFIX_LEN;
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::beacon;
use crate::metrics::Counters;

/// Size of a reader's buffer: larger than any UDP payload, so nothing is truncated.
pub const RECV_BUFFER: usize = 65_536;

/// A bound socket, as reported by [`crate::Handle::sockets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SocketInfo {
    /// The address the socket is bound to (with the port the kernel picked for port 0).
    pub local: SocketAddr,
    /// The kernel's receive buffer size (Linux reports twice what was granted; the grant is
    /// capped by `net.core.rmem_max`).
    pub recv_buffer: usize,
    /// The kernel's send buffer size.
    pub send_buffer: usize,
}

/// Binds a non-blocking UDP socket with large kernel buffers. IPv6 sockets are IPv6-only, so an
/// IPv4 socket on the same port can be bound beside them.
pub(crate) fn bind(
    addr: SocketAddr,
    buffer: usize,
    broadcast: bool,
) -> io::Result<(UdpSocket, SocketInfo)> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if broadcast {
        socket.set_broadcast(true)?;
    }
    // A refused size is not fatal: the node works with the default buffers, only less well
    // under bursts. The effective sizes are reported.
    if let Err(e) = socket.set_recv_buffer_size(buffer) {
        tracing::warn!(%addr, error = %e, "could not set the receive buffer size");
    }
    if let Err(e) = socket.set_send_buffer_size(buffer) {
        tracing::warn!(%addr, error = %e, "could not set the send buffer size");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let info = SocketInfo {
        local: socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound a UDP socket to a non-IP address"))?,
        recv_buffer: socket.recv_buffer_size()?,
        send_buffer: socket.send_buffer_size()?,
    };
    if info.recv_buffer < buffer {
        tracing::info!(
            local = %info.local,
            requested = buffer,
            granted = info.recv_buffer,
            "receive buffer smaller than requested (raise net.core.rmem_max)"
        );
    }
    Ok((UdpSocket::from_std(socket.into())?, info))
}

/// What the readers hand to the node task.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A datagram and its sender.
    Datagram(SocketAddr, Bytes),
    /// A LAN beacon naming a community prefix.
    Beacon(SocketAddr, [u8; PREFIX_LEN]),
}

impl Inbound {
    fn len(&self) -> usize {
        match self {
            Inbound::Datagram(_, d) => d.len(),
            Inbound::Beacon(..) => PREFIX_LEN,
        }
    }
}

/// The readers' end of the inbound queue: bounded by datagrams (the channel) and by bytes.
#[derive(Debug, Clone)]
pub(crate) struct InboundTx {
    tx: mpsc::Sender<Inbound>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    metrics: Arc<Counters>,
}

/// The node task's end of the inbound queue.
#[derive(Debug)]
pub(crate) struct InboundRx {
    rx: mpsc::Receiver<Inbound>,
    bytes: Arc<AtomicUsize>,
}

/// A bounded inbound queue of `capacity` datagrams and at most `max_bytes` bytes.
pub(crate) fn inbound(
    capacity: usize,
    max_bytes: usize,
    metrics: Arc<Counters>,
) -> (InboundTx, InboundRx) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        InboundTx {
            tx,
            bytes: bytes.clone(),
            max_bytes,
            metrics,
        },
        InboundRx { rx, bytes },
    )
}

impl InboundTx {
    /// Queues an item, or drops and counts it when the queue is full. `false` when the node task
    /// is gone.
    pub(crate) fn push(&self, item: Inbound) -> bool {
        let len = item.len();
        // Several readers may pass this check at once; the overshoot is bounded by one datagram
        // per reader.
        if self.bytes.load(Ordering::Relaxed).saturating_add(len) > self.max_bytes {
            Counters::inc(&self.metrics.inbound_dropped);
            return true;
        }
        self.bytes.fetch_add(len, Ordering::Relaxed);
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(e) => {
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => {
                        Counters::inc(&self.metrics.inbound_dropped);
                        true
                    }
                    mpsc::error::TrySendError::Closed(_) => false,
                }
            }
        }
    }
}

impl InboundRx {
    /// Waits for at least one item, then takes what is queued, up to `limit`. Returns 0 when
    /// every reader is gone.
    pub(crate) async fn recv_many(&mut self, buf: &mut Vec<Inbound>, limit: usize) -> usize {
        let start = buf.len();
        let n = self.rx.recv_many(buf, limit.max(1)).await;
        self.taken(buf.get(start..).unwrap_or_default());
        n
    }

    /// Takes what is queued without waiting, up to `limit`.
    pub(crate) fn try_recv_many(&mut self, buf: &mut Vec<Inbound>, limit: usize) -> usize {
        let start = buf.len();
        while buf.len() - start < limit {
            match self.rx.try_recv() {
                Ok(item) => buf.push(item),
                Err(_) => break,
            }
        }
        self.taken(buf.get(start..).unwrap_or_default());
        buf.len() - start
    }

    fn taken(&self, items: &[Inbound]) {
        let bytes: usize = items.iter().map(Inbound::len).sum();
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Datagrams and bytes waiting.
    pub(crate) fn queued(&self) -> (usize, usize) {
        (self.rx.len(), self.bytes.load(Ordering::Relaxed))
    }

    /// Stops accepting items; those queued can still be taken.
    pub(crate) fn close(&mut self) {
        self.rx.close();
    }
}

/// How a reader treats what it receives.
#[derive(Debug, Clone)]
pub(crate) enum ReaderKind {
    /// A listen socket: everything goes to the node.
    Listen,
    /// The beacon socket: beacons are recognised, our own are ignored, the rest goes to the
    /// node (a peer that found us by beacon talks to this socket first).
    Beacon(beacon::Filter),
}

/// Reads datagrams until the node task goes away (or the task is aborted).
pub(crate) async fn read_loop(
    socket: Arc<UdpSocket>,
    tx: InboundTx,
    kind: ReaderKind,
    metrics: Arc<Counters>,
) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut failures = 0u32;
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                failures = 0;
                let data = buf.get(..n).unwrap_or_default();
                Counters::inc(&metrics.received);
                Counters::add(&metrics.received_bytes, n as u64);
                let item = match &kind {
                    ReaderKind::Listen => {
                        Some(Inbound::Datagram(from, Bytes::copy_from_slice(data)))
                    }
                    ReaderKind::Beacon(filter) => filter.classify(from, data, &metrics),
                };
                if let Some(item) = item
                    && !tx.push(item)
                {
                    return;
                }
            }
            Err(e) => {
                // Errors on an unconnected UDP socket are rare and transient (ICMP reports,
                // memory pressure). Back off if they repeat, so a broken socket cannot spin.
                Counters::inc(&metrics.recv_errors);
                tracing::debug!(error = %e, "receive failed");
                failures = failures.saturating_add(1);
                if failures > 1 {
                    let exp = failures.min(11);
                    tokio::time::sleep(Duration::from_millis(1 << exp).min(Duration::from_secs(1)))
                        .await;
                }
            }
        }
    }
}

struct Queued {
    at: tokio::time::Instant,
    to: SocketAddr,
    data: Bytes,
}

/// The send side of one socket: the socket and its bounded queue of datagrams waiting for it to
/// become writable.
pub(crate) struct Outbound {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    queue: VecDeque<Queued>,
    capacity: usize,
    max_age: Duration,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("local", &self.local)
            .field("queued", &self.queue.len())
            .finish()
    }
}

enum Attempt {
    Done,
    WouldBlock,
}

impl Outbound {
    pub(crate) fn new(
        socket: Arc<UdpSocket>,
        local: SocketAddr,
        capacity: usize,
        max_age: Duration,
    ) -> Outbound {
        Outbound {
            socket,
            local,
            queue: VecDeque::new(),
            capacity,
            max_age,
        }
    }

    /// Whether this socket sends to `to` (same address family).
    pub(crate) fn serves(&self, to: &SocketAddr) -> bool {
        self.local.is_ipv4() == to.is_ipv4()
    }

    /// Datagrams waiting.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Sends now, or queues when the socket would block (behind what already waits, to keep
    /// the order).
    pub(crate) fn send(
        &mut self,
        to: SocketAddr,
        data: Bytes,
        now: tokio::time::Instant,
        m: &Counters,
    ) {
        if self.queue.is_empty() && matches!(self.try_send(to, &data, m), Attempt::Done) {
            return;
        }
        if self.queue.len() >= self.capacity {
            Counters::inc(&m.send_queue_full);
            return;
        }
        Counters::inc(&m.send_would_block);
        self.queue.push_back(Queued { at: now, to, data });
    }

    /// Sends what waits until the socket would block; drops what is too old.
    pub(crate) fn flush(&mut self, now: tokio::time::Instant, m: &Counters) {
        while let Some(front) = self.queue.front() {
            if now.saturating_duration_since(front.at) > self.max_age {
                Counters::inc(&m.send_expired);
                self.queue.pop_front();
                continue;
            }
            if let Attempt::WouldBlock = self.try_send(front.to, &front.data, m) {
                return;
            }
            self.queue.pop_front();
        }
    }

    /// Drops what waits; returns how many.
    pub(crate) fn abandon(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }

    fn try_send(&self, to: SocketAddr, data: &[u8], m: &Counters) -> Attempt {
        match self.socket.try_send_to(data, to) {
            Ok(_) => {
                Counters::inc(&m.sent);
                Counters::add(&m.sent_bytes, data.len() as u64);
                Attempt::Done
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Attempt::WouldBlock,
            Err(e) => {
                Counters::inc(&m.send_errors);
                tracing::debug!(%to, error = %e, "send failed");
                Attempt::Done
            }
        }
    }

    /// Ready when this socket has a queue and can take a datagram (or has an error to report).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.queue.is_empty() {
            return Poll::Pending;
        }
        match self.socket.poll_send_ready(cx) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The address to send to: an IPv4-mapped IPv6 address becomes plain IPv4, which is what an
/// IPv6-only socket cannot reach and an IPv4 socket can.
pub(crate) fn canonical(to: SocketAddr) -> SocketAddr {
    match to.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), to.port()),
            None => to,
        },
        IpAddr::V4(_) => to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> Arc<Counters> {
        Arc::new(Counters::default())
    }

    #[test]
    fn inbound_queue_is_bounded_by_count_and_bytes() {
        let m = counters();
        let (tx, mut rx) = inbound(2, 100, m.clone());
        let from: SocketAddr = "127.0.0.1:1".parse().expect("address");
        let d = |n: usize| Inbound::Datagram(from, Bytes::from(vec![0u8; n]));
        assert!(tx.push(d(60)));
        assert!(tx.push(d(60))); // over the byte bound: dropped
        assert!(tx.push(d(30)));
        assert!(tx.push(d(1))); // over the count bound: dropped
        assert_eq!(m.snapshot().inbound_dropped, 2);
        assert_eq!(rx.queued(), (2, 90));
        let mut buf = Vec::new();
        assert_eq!(rx.try_recv_many(&mut buf, 10), 2);
        assert_eq!(rx.queued(), (0, 0));
        drop(rx);
        assert!(!tx.push(d(1)), "a closed queue stops the reader");
    }

    #[test]
    fn mapped_addresses_become_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5".parse().expect("address");
        assert_eq!(canonical(mapped), "127.0.0.1:5".parse().expect("address"));
        let v6: SocketAddr = "[::1]:5".parse().expect("address");
        assert_eq!(canonical(v6), v6);
    }

    #[tokio::test]
    async fn sockets_of_both_families_share_a_port() {
        let (v4, info4) =
            bind("127.0.0.1:0".parse().expect("address"), 1 << 20, false).expect("bind IPv4");
        let port = info4.local.port();
        let (_v6, info6) = bind(
            SocketAddr::new("::1".parse().expect("ip"), port),
            1 << 20,
            false,
        )
        .expect("IPv6-only socket binds beside the IPv4 one");
        assert_eq!(info6.local.port(), port);
        assert!(info4.recv_buffer > 0 && info4.send_buffer > 0);
        drop(v4);
    }

    #[tokio::test]
    async fn old_queued_datagrams_expire() {
        let m = counters();
        let (socket, info) =
            bind("127.0.0.1:0".parse().expect("address"), 1 << 16, false).expect("bind");
        let mut out = Outbound::new(Arc::new(socket), info.local, 2, Duration::from_secs(60));
        let t0 = tokio::time::Instant::now();
        let to = info.local;
        // Put datagrams in the queue as if the socket had blocked.
        for _ in 0..3 {
            if out.queue.len() < out.capacity {
                out.queue.push_back(Queued {
                    at: t0,
                    to,
                    data: Bytes::from_static(b"x"),
                });
            }
        }
        out.send(to, Bytes::from_static(b"y"), t0, &m); // queue full
        assert_eq!(m.snapshot().send_queue_full, 1);
        out.flush(t0 + Duration::from_secs(61), &m);
        let s = m.snapshot();
        assert_eq!((s.send_expired, s.sent, out.queued()), (2, 0, 0));
        // Fresh ones go out (once tokio has seen the socket writable: until then, try_send_to
        // reports WouldBlock and the datagram would be queued).
        out.socket.writable().await.expect("writable");
        out.send(to, Bytes::from_static(b"z"), t0, &m);
        assert_eq!(m.snapshot().sent, 1);
    }
}
