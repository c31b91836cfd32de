//! Per-packet impairments and per-host counters: loss models, access-link bandwidth with a
//! bounded FIFO queue, and the reasons a packet can be dropped.

use serde::{Deserialize, Serialize};

use crate::dist::{SimRng, chance, check_probability};

/// Why a datagram never reached a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Random or bursty loss on the way.
    Loss,
    /// Sender and receiver were on different sides of a partition.
    Partition,
    /// The sender's uplink queue was full (tail drop).
    UplinkQueue,
    /// The receiver's downlink queue was full (tail drop).
    DownlinkQueue,
    /// No host has that address (or it is a private address elsewhere, or IPv6).
    Unroutable,
    /// A public host got a datagram for a port it does not listen on.
    NoListener,
    /// A NAT box had no live mapping for the port.
    NatNoMapping,
    /// A NAT box's filter refused the sender.
    NatFiltered,
    /// A NAT box could not create another mapping.
    NatTableFull,
    /// Sent to one's own NAT's public address, and the NAT does not hairpin.
    Hairpin,
    /// The receiving node was offline.
    Offline,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 11;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Loss,
        DropReason::Partition,
        DropReason::UplinkQueue,
        DropReason::DownlinkQueue,
        DropReason::Unroutable,
        DropReason::NoListener,
        DropReason::NatNoMapping,
        DropReason::NatFiltered,
        DropReason::NatTableFull,
        DropReason::Hairpin,
        DropReason::Offline,
    ];

    /// Position in counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name in results.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::UplinkQueue => "uplink-queue",
            DropReason::DownlinkQueue => "downlink-queue",
            DropReason::Unroutable => "unroutable",
            DropReason::NoListener => "no-listener",
            DropReason::NatNoMapping => "nat-no-mapping",
            DropReason::NatFiltered => "nat-filtered",
            DropReason::NatTableFull => "nat-table-full",
            DropReason::Hairpin => "hairpin",
            DropReason::Offline => "offline",
        }
    }
}

/// Traffic counters of one node. Bytes are UDP payload bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams the node sent.
    pub sent_packets: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Datagrams handed to the node.
    pub recv_packets: u64,
    /// Their bytes.
    pub recv_bytes: u64,
    /// Datagrams this node sent that were dropped, by reason.
    pub lost: [u64; DropReason::COUNT],
    /// Datagrams addressed to this node dropped at its NAT, its downlink, or while it was
    /// offline, by reason.
    pub refused: [u64; DropReason::COUNT],
}

/// Access-link capacities of a host; zero means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Uplink rate, kbit/s.
    #[serde(default)]
    pub uplink_kbps: u64,
    /// Downlink rate, kbit/s.
    #[serde(default)]
    pub downlink_kbps: u64,
    /// Bytes each direction's FIFO may hold, including the packet on the wire.
    #[serde(default = "default_queue")]
    pub queue_bytes: u64,
}

fn default_queue() -> u64 {
    64 * 1024
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec::UNLIMITED
    }
}

impl LinkSpec {
    /// No limits.
    pub const UNLIMITED: LinkSpec = LinkSpec {
        uplink_kbps: 0,
        downlink_kbps: 0,
        queue_bytes: 64 * 1024,
    };

    /// Checks that a full-size datagram fits the queue.
    pub fn validate(&self) -> Result<(), String> {
        if (self.uplink_kbps > 0 || self.downlink_kbps > 0) && self.queue_bytes < 1600 {
            return Err("queue_bytes must hold at least one 1,600-byte datagram".into());
        }
        Ok(())
    }
}

/// One direction of an access link: a rate and a tail-drop FIFO.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pipe {
    rate_bps: u64,
    limit: u64,
    /// When the last queued bit leaves, microseconds.
    busy_until: u64,
}

impl Pipe {
    pub(crate) fn new(kbps: u64, limit: u64) -> Pipe {
        Pipe {
            rate_bps: kbps.saturating_mul(1000),
            limit,
            busy_until: 0,
        }
    }

    /// Queues `bytes` at `now`: when the datagram has left, or `None` when the queue is full.
    pub(crate) fn enqueue(&mut self, now: u64, bytes: u64) -> Option<u64> {
        if self.rate_bps == 0 {
            return Some(now);
        }
        let rate = u128::from(self.rate_bps);
        let backlog_us = u128::from(self.busy_until.saturating_sub(now));
        let backlog = backlog_us * rate / 8_000_000;
        if backlog + u128::from(bytes) > u128::from(self.limit) {
            return None;
        }
        let tx = (u128::from(bytes) * 8_000_000).div_ceil(rate);
        let done = self
            .busy_until
            .max(now)
            .saturating_add(u64::try_from(tx).unwrap_or(u64::MAX));
        self.busy_until = done;
        Some(done)
    }
}

/// How packets are lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LossModel {
    /// No random loss.
    #[default]
    None,
    /// Each packet independently lost with probability `p`.
    Bernoulli {
        /// Loss probability.
        p: f64,
    },
    /// Two-state Markov chain per packet: bursts of loss while in the bad state.
    GilbertElliott {
        /// Probability of moving good -> bad at each packet.
        p_good_to_bad: f64,
        /// Probability of moving bad -> good at each packet (1 / mean burst length).
        p_bad_to_good: f64,
        /// Loss probability in the good state.
        #[serde(default)]
        loss_good: f64,
        /// Loss probability in the bad state.
        #[serde(default = "one")]
        loss_bad: f64,
    },
}

fn one() -> f64 {
    1.0
}

/// Which packets share a Gilbert-Elliott chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossScope {
    /// One chain per directed pair (sending host, receiving site).
    #[default]
    Link,
    /// One chain per sending host, shared by all its destinations.
    Node,
}

impl LossModel {
    /// Checks the probabilities.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            LossModel::None => Ok(()),
            LossModel::Bernoulli { p } => check_probability("loss p", p),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                check_probability("p_good_to_bad", p_good_to_bad)?;
                check_probability("p_bad_to_good", p_bad_to_good)?;
                check_probability("loss_good", loss_good)?;
                check_probability("loss_bad", loss_bad)
            }
        }
    }

    /// Long-run fraction of packets lost.
    pub fn stationary_loss(&self) -> f64 {
        match *self {
            LossModel::None => 0.0,
            LossModel::Bernoulli { p } => p,
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let total = p_good_to_bad + p_bad_to_good;
                if total == 0.0 {
                    return loss_good;
                }
                let bad = p_good_to_bad / total;
                (1.0 - bad) * loss_good + bad * loss_bad
            }
        }
    }

    /// Whether the model keeps per-chain state.
    pub(crate) fn is_stateful(&self) -> bool {
        matches!(self, LossModel::GilbertElliott { .. })
    }

    /// Decides the fate of one packet; `bad` is the chain's state.
    pub(crate) fn lose(&self, bad: &mut bool, rng: &mut SimRng) -> bool {
        match *self {
            LossModel::None => false,
            LossModel::Bernoulli { p } => chance(rng, p),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let flip = if *bad { p_bad_to_good } else { p_good_to_bad };
                if chance(rng, flip) {
                    *bad = !*bad;
                }
                chance(rng, if *bad { loss_bad } else { loss_good })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::stream;

    /// Loss rate and mean burst length over `n` packets of one chain.
    fn run(model: LossModel, n: u32, seed: u64) -> (f64, f64) {
        let mut rng = stream(seed, "loss-test", 0);
        let (mut bad, mut lost, mut bursts, mut prev) = (false, 0u32, 0u32, false);
        for _ in 0..n {
            let l = model.lose(&mut bad, &mut rng);
            lost += u32::from(l);
            bursts += u32::from(l && !prev);
            prev = l;
        }
        (
            f64::from(lost) / f64::from(n),
            f64::from(lost) / f64::from(bursts.max(1)),
        )
    }

    #[test]
    fn bernoulli_loss_rate_within_tolerance() {
        for p in [0.01, 0.1, 0.3] {
            let (rate, burst) = run(LossModel::Bernoulli { p }, 200_000, 3);
            assert!((rate - p).abs() < 0.1 * p, "p {p}: rate {rate}");
            // Independent losses: mean run length 1 / (1 - p).
            assert!(
                (burst - 1.0 / (1.0 - p)).abs() < 0.05,
                "p {p}: burst {burst}"
            );
        }
    }

    #[test]
    fn gilbert_elliott_losses_come_in_bursts() {
        let ge = LossModel::GilbertElliott {
            p_good_to_bad: 0.01,
            p_bad_to_good: 0.25,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        let expected = ge.stationary_loss();
        assert!((expected - 0.01 / 0.26).abs() < 1e-12);
        let (rate, burst) = run(ge, 400_000, 5);
        assert!((rate - expected).abs() < 0.1 * expected, "rate {rate}");
        // Mean time in the bad state is 1 / p_bad_to_good = 4 packets.
        assert!((burst - 4.0).abs() < 0.4, "burst {burst}");
        // Bernoulli at the same rate has runs barely above 1.
        let (_, flat) = run(LossModel::Bernoulli { p: expected }, 400_000, 5);
        assert!(flat < 1.1, "bernoulli burst {flat}");
    }

    #[test]
    fn loss_models_validate() {
        assert!(LossModel::Bernoulli { p: 1.5 }.validate().is_err());
        assert!(LossModel::Bernoulli { p: f64::NAN }.validate().is_err());
        let m: LossModel =
            toml::from_str("model = \"gilbert-elliott\"\np_good_to_bad = 0.1\np_bad_to_good = 0.5")
                .unwrap();
        assert!((m.stationary_loss() - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn pipe_serialises_and_tail_drops() {
        // 8 Mbit/s: 1,000 bytes take 1 ms. Queue of 3,000 bytes.
        let mut p = Pipe::new(8_000, 3_000);
        assert_eq!(p.enqueue(0, 1_000), Some(1_000));
        assert_eq!(p.enqueue(0, 1_000), Some(2_000));
        assert_eq!(p.enqueue(0, 1_000), Some(3_000));
        assert_eq!(p.enqueue(0, 1_000), None, "fourth datagram overflows");
        // Half a millisecond later 500 bytes have left: room for 500 more, not 1,000.
        assert_eq!(p.enqueue(500, 1_000), None);
        assert_eq!(p.enqueue(500, 500), Some(3_500));
        // An idle link sends at once.
        assert_eq!(p.enqueue(10_000, 1_000), Some(11_000));
        let mut free = Pipe::new(0, 0);
        assert_eq!(free.enqueue(7, 1_000_000), Some(7));
    }
}
