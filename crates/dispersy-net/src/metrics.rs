//! What the driver counts: the things the node cannot know.
//!
//! The node counts protocol traffic and drops (`Node::stats`). The driver counts what happens
//! around it: datagrams lost before the node saw them (the inbound queue was full), datagrams
//! that could not be sent, queue lengths, and how often the node task woke up and why. The
//! counters are atomics shared by the tasks; [`Metrics`] is a plain snapshot of them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! metrics {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// A snapshot of the driver's counters (see the module docs). Counters only grow; the
        /// fields marked *gauge* are the value at the last update.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct Metrics {
            $( $(#[$doc])* pub $name: u64, )*
        }

        /// The live counters behind [`Metrics`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: AtomicU64, )*
        }

        impl Counters {
            /// Reads every counter.
            pub(crate) fn snapshot(&self) -> Metrics {
                Metrics {
                    $( $name: self.$name.load(Ordering::Relaxed), )*
                }
            }
        }
    };
}

metrics! {
    /// Datagrams read from the sockets (listen and beacon sockets).
    received,
    /// Bytes of those datagrams.
    received_bytes,
    /// Datagrams dropped because the inbound queue to the node task was full (by count or by
    /// bytes). Nonzero means the node cannot keep up with its traffic.
    inbound_dropped,
    /// Errors reading from a socket.
    recv_errors,
    /// Gauge: datagrams waiting in the inbound queue.
    inbound_queued,
    /// Gauge: bytes waiting in the inbound queue.
    inbound_queued_bytes,
    /// Bursts handed to the node (`handle_datagrams` calls).
    bursts,
    /// The largest burst so far.
    largest_burst,
    /// Datagrams handed to the kernel.
    sent,
    /// Bytes of those datagrams.
    sent_bytes,
    /// Datagrams queued because their socket would have blocked.
    send_would_block,
    /// Datagrams dropped because their socket's send queue was full.
    send_queue_full,
    /// Queued datagrams dropped because they waited longer than the maximum age.
    send_expired,
    /// Datagrams dropped because no socket of the destination's address family is bound.
    send_no_socket,
    /// Datagrams the kernel refused (unreachable network, too large, ...).
    send_errors,
    /// Queued datagrams still unsent when a shutdown ran out of time.
    send_abandoned,
    /// Gauge: datagrams waiting in the send queues.
    send_queued,
    /// Times the node task woke up, for any reason.
    wakeups,
    /// Wake-ups for incoming datagrams.
    wakeups_datagrams,
    /// Wake-ups for a command from a handle.
    wakeups_commands,
    /// Wake-ups for the node's timer (`poll_timeout`).
    wakeups_timer,
    /// Wake-ups because a socket with queued datagrams became writable.
    wakeups_writable,
    /// Wake-ups because the resolved tracker addresses changed.
    wakeups_trackers,
    /// Timer wake-ups postponed by a millisecond because the node asked for a deadline it had
    /// already been given (a guard against spinning; nonzero points at a node bug).
    timer_clamped,
    /// Timer wake-ups that came before the node's deadline (tokio rounds deadlines up, so this
    /// stays zero).
    timer_early,
    /// Inputs the node failed to process because its store failed.
    store_errors,
    /// Commands executed.
    commands,
    /// Events broadcast to subscribers.
    events,
    /// Beacons sent (one per community, port and round).
    beacons_sent,
    /// Beacons received from others.
    beacons_received,
    /// Beacons that named a community we joined (the sender was added as a peer).
    beacons_matched,
    /// Errors sending beacons.
    beacon_errors,
    /// Tracker name resolutions attempted.
    tracker_lookups,
    /// Tracker name resolutions that failed (or found no address).
    tracker_failures,
    /// Interface scans.
    interface_scans,
    /// Interface scans that failed.
    interface_scan_errors,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Ordering::Relaxed);
    }

    pub(crate) fn max(counter: &AtomicU64, n: u64) {
        counter.fetch_max(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_every_counter() {
        let c = Counters::default();
        Counters::inc(&c.received);
        Counters::add(&c.received_bytes, 10);
        Counters::max(&c.largest_burst, 7);
        Counters::max(&c.largest_burst, 3);
        Counters::set(&c.send_queued, 4);
        let m = c.snapshot();
        assert_eq!(
            (m.received, m.received_bytes, m.largest_burst, m.send_queued),
            (1, 10, 7, 4)
        );
        assert_eq!(m.sent, 0);
    }
}
