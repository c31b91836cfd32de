//! Fast catch-up: the requester-side controller that pulls a large backlog quickly while the
//! responder stays stateless.
//!
//! Classic sync sends one filter per walker step (5 s) and gets at most 5 KiB back, so a new
//! node needs hours for 100,000 messages. Catch-up keeps a window of sync requests in flight
//! and re-asks at once:
//!
//! - **Carrier**: an ordinary introduction-request with the advice bit cleared (no
//!   introduction, so no puncture-request to a third peer), a sync block, and a `SYNC_HELLO`
//!   extension asking for a response budget. It reuses the signed, parsed, rate-limited walker
//!   path and the walker's anti-amplification cookies (a large budget is granted only to a
//!   proven address), and costs responders nothing new but reading one field. The responder
//!   announces what it sends in a `SYNC_SUMMARY` extension of its introduction-response, so
//!   the requester can tell loss from "that was all". Catch-up is only used with peers whose
//!   `SYNC_HELLO` says `FAST`; py-ipv8 and Dispersy peers get classic sync.
//! - **Ranges**: the global-time axis is cut into ranges, each in flight to at most one peer at a
//!   time (so two responders never send the same messages), lowest first (so out-of-order
//!   sequence numbers stay within the window). A range where we hold more messages than a
//!   filter carries well is split at our median; finished neighbours merge again.
//! - **Re-asking**: a response whose summary says `more` (the responder stopped at its
//!   budget) or that lost packets puts its range straight back in the queue, with a fresh
//!   filter (new salt, so false positives move). A range is finished after a complete
//!   response that brought nothing: two filters with different salts then agree.
//! - **Budget per peer** (AIMD): it doubles after each full, loss-free response (slow start),
//!   then grows by a step; it halves on loss above the threshold or a timeout, and shrinks by a
//!   quarter when the round-trip time grows well beyond the smallest seen (a queue is
//!   building). It never goes below the classic 5 KiB.
//! - **Weak links**: at the floor budget with loss still above the threshold, or after two
//!   timeouts in a row, the peer is paced like classic sync (one request per walker step) until a
//!   response comes back clean, so catch-up never pushes harder than classic sync on a link
//!   that cannot carry more.
//!
//! State is bounded: `window` requests in flight, `max_peers` links, `max_ranges` ranges.
//! Drive it like the rest of the core: feed `on_response`/`on_packet`, call `handle_timeout`
//! at `poll_timeout`, and drain `poll_request` after every input.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;

use super::hello::SyncSummary;
use super::respond::DEFAULT_BUDGET;
use super::{Policies, SyncError};
use crate::bloom::BloomFilter;
use crate::ids::{CommunityId, GlobalTime};
use crate::store::{Order, Store};
use crate::time::Instant;
use crate::wire::builtin::SyncBlock;

/// Catch-up settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Requests in flight over all peers.
    pub window: usize,
    /// Requests in flight to one peer.
    pub per_peer: usize,
    /// Peers tracked.
    pub max_peers: usize,
    /// Ranges tracked; beyond it ranges are no longer split (their filters fill up).
    pub max_ranges: usize,
    /// A range where we hold more than this is split (a filter's capacity, with headroom).
    pub range_capacity: usize,
    /// Global-time slices to start with (more slices: more parallelism from the start).
    pub initial_slices: usize,
    /// First budget asked of a peer.
    pub initial_budget: usize,
    /// The floor: never ask for less (the classic budget).
    pub min_budget: usize,
    /// The ceiling.
    pub max_budget: usize,
    /// Additive increase after slow start.
    pub step: usize,
    /// Loss fraction above which the budget halves.
    pub loss_threshold: f64,
    /// Round-trip time assumed before the first sample.
    pub initial_rtt: Duration,
    /// A response slower than twice the smallest round trip plus this means a queue is
    /// building on the link (the budget shrinks by a quarter). The slack keeps the requester's
    /// own backlog (it is still storing the previous response when the next arrives) from
    /// passing for one: that backlog is no reason to ask for less, it only adds requests.
    pub queue_slack: Duration,
    /// Shortest request timeout.
    pub min_timeout: Duration,
    /// Shortest wait after the last packet of a response before it counts as complete.
    pub min_grace: Duration,
    /// Pacing of a peer on a weak link (the walker step).
    pub classic_interval: Duration,
    /// Consecutive timeouts after which a peer is dropped.
    pub max_timeouts: u32,
    /// Target false-positive rate of the filters.
    pub error_rate: f64,
}

impl Config {
    /// Defaults with the split threshold set for filters of `bits` bits: 80 % of their
    /// capacity, so the filters stay near the target false-positive rate while the range
    /// fills between requests.
    pub fn for_bits(bits: u16) -> Config {
        let mut c = Config::default();
        let ln2 = std::f64::consts::LN_2;
        let capacity = f64::from(bits) * (ln2 * ln2 / c.error_rate.ln().abs());
        c.range_capacity = ((capacity * 0.8) as usize).max(1);
        c
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 8,
            per_peer: 2,
            max_peers: 16,
            max_ranges: 4096,
            range_capacity: 680,
            initial_slices: 8,
            initial_budget: 16 * 1024,
            min_budget: DEFAULT_BUDGET,
            max_budget: 256 * 1024,
            step: 8 * 1024,
            loss_threshold: 0.1,
            initial_rtt: Duration::from_millis(500),
            queue_slack: Duration::from_millis(100),
            min_timeout: Duration::from_secs(1),
            min_grace: Duration::from_millis(20),
            classic_interval: Duration::from_secs(5),
            max_timeouts: 3,
            error_rate: 0.01,
        }
    }
}

/// Names one catch-up request (the node maps it to the walker identifier it used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A request to send: an introduction-request to `peer` without advice, carrying `block` and a
/// `SYNC_HELLO` that asks for `budget` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id.
    pub id: RequestId,
    /// The peer.
    pub peer: SocketAddr,
    /// The sync block.
    pub block: SyncBlock,
    /// Response bytes to ask for.
    pub budget: u64,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests sent.
    pub requests: u64,
    /// Responses completed.
    pub responses: u64,
    /// Requests that timed out without a response.
    pub timeouts: u64,
    /// Packets matched to a request.
    pub packets: u64,
    /// Packets announced but not received.
    pub lost: u64,
    /// Ranges split.
    pub splits: u64,
    /// Responses that asked for more (re-asked at once).
    pub reasks: u64,
    /// Finished ranges fetched again because a message of theirs waiting in the delay queue
    /// was dropped.
    pub reopened: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    InFlight(RequestId),
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Range {
    high: GlobalTime,
    state: State,
}

#[derive(Debug, Clone)]
struct Link {
    budget: usize,
    slow_start: bool,
    srtt: Option<Duration>,
    min_rtt: Option<Duration>,
    in_flight: usize,
    timeouts: u32,
    classic: bool,
    not_before: Instant,
}

#[derive(Debug, Clone)]
struct Outstanding {
    peer: SocketAddr,
    low: GlobalTime,
    high: GlobalTime,
    sent_at: Instant,
    response_at: Option<Instant>,
    summary: Option<SyncSummary>,
    got: u64,
    got_bytes: u64,
    budget: usize,
    deadline: Instant,
}

/// The catch-up controller of one community.
#[derive(Debug, Clone)]
pub struct Catchup {
    config: Config,
    ranges: BTreeMap<GlobalTime, Range>,
    links: BTreeMap<SocketAddr, Link>,
    outstanding: BTreeMap<RequestId, Outstanding>,
    next_id: u64,
    stats: Stats,
    limit: GlobalTime,
}

impl Catchup {
    /// An idle controller.
    pub fn new(config: Config) -> Catchup {
        Catchup {
            config,
            ranges: BTreeMap::new(),
            links: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            next_id: 0,
            stats: Stats::default(),
            limit: GlobalTime::MAX,
        }
    }

    /// Asks for nothing above `limit` (the node's acceptable global time: messages above it
    /// would be dropped on arrival). A pending range reaching above it is split there; ranges
    /// entirely above it wait until the limit rises. Defaults to no limit.
    pub fn set_limit(&mut self, limit: GlobalTime) {
        self.limit = limit.max(GlobalTime(1));
    }

    /// Whether a range in flight or pending overlaps `low..=high`: messages there may still
    /// arrive through catch-up.
    pub fn covers_any(&self, low: GlobalTime, high: GlobalTime) -> bool {
        if low > high {
            return false;
        }
        let first = self
            .ranges
            .range(..=low)
            .next_back()
            .map_or(low, |(l, _)| *l);
        self.ranges
            .range(first..=high)
            .any(|(_, r)| r.high >= low && r.state != State::Done)
    }

    /// Starts catching up on `1..=target` (what peers report as their global time) and
    /// everything above it. Does nothing while a catch-up is running.
    pub fn start(&mut self, target: GlobalTime) {
        self.start_sized(target, 0);
    }

    /// [`Catchup::start`] when peers claim to hold about `expected` messages more than we
    /// do: the axis is cut into slices of about one filter's capacity each (at least
    /// `initial_slices`, at most half of `max_ranges`). Ranges are fetched lowest first, so
    /// with slices that small the messages of a higher range in flight wait in the delay
    /// queue (for the sequence numbers below them) only until the range under it completes;
    /// slices of a hundred thousand messages would fill the delay queue instead.
    pub fn start_sized(&mut self, target: GlobalTime, expected: u64) {
        if !self.ranges.is_empty() && !self.is_done() {
            return;
        }
        self.ranges.clear();
        let target = target.max(GlobalTime(1));
        let by_density = expected / self.config.range_capacity.max(1) as u64;
        let slices = by_density
            .max(self.config.initial_slices.max(1) as u64)
            .min((self.config.max_ranges / 2).max(1) as u64)
            .min(target.0);
        let mut low = 1u64;
        for k in 1..=slices {
            let high = if k == slices {
                GlobalTime::MAX.0
            } else {
                (target.0 as u128 * k as u128 / slices as u128) as u64
            };
            if high < low {
                continue;
            }
            self.ranges.insert(
                GlobalTime(low),
                Range {
                    high: GlobalTime(high),
                    state: State::Pending,
                },
            );
            low = high.saturating_add(1);
        }
    }

    /// Fetches just these ranges (for instance the ones a reconciliation found densely
    /// different), the rest of the axis counting as finished. Ignored while a catch-up runs,
    /// which covers them anyway. Overlapping or unsorted ranges are merged; at most
    /// `max_ranges` are kept.
    pub fn fetch(&mut self, ranges: impl IntoIterator<Item = (GlobalTime, GlobalTime)>) {
        if !self.is_done() {
            return;
        }
        let mut wanted: Vec<(GlobalTime, GlobalTime)> =
            ranges.into_iter().filter(|(lo, hi)| lo <= hi).collect();
        wanted.sort();
        let mut merged: Vec<(GlobalTime, GlobalTime)> = Vec::new();
        for (lo, hi) in wanted {
            match merged.last_mut() {
                Some(last) if lo <= last.1.next() => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged.truncate(self.config.max_ranges / 2);
        self.ranges.clear();
        let mut cursor = GlobalTime(1);
        for (lo, hi) in merged {
            let lo = lo.max(GlobalTime(1));
            if lo > hi {
                continue;
            }
            if cursor < lo {
                let gap = Range {
                    high: lo.saturating_sub(1),
                    state: State::Done,
                };
                self.ranges.insert(cursor, gap);
            }
            self.ranges.insert(
                lo,
                Range {
                    high: hi,
                    state: State::Pending,
                },
            );
            cursor = hi.next();
            if hi >= GlobalTime::MAX {
                return;
            }
        }
        self.ranges.insert(
            cursor,
            Range {
                high: GlobalTime::MAX,
                state: State::Done,
            },
        );
    }

    /// Fetches the range holding `gt` again (a message of it we counted on, one waiting in the
    /// delay queue, was dropped before it could be stored). Does nothing when no catch-up
    /// runs or the range is pending or in flight already.
    pub fn reopen(&mut self, gt: GlobalTime) {
        if self.is_done() {
            return;
        }
        let Some((&low, r)) = self.ranges.range(..=gt).next_back() else {
            return;
        };
        if gt > r.high || r.state != State::Done {
            return;
        }
        let high = r.high;
        if self.ranges.len() + 2 > self.config.max_ranges {
            // No room to cut out a slice: fetch the whole finished range again.
            self.set_state(low, State::Pending);
            return;
        }
        // Cut out one capacity's worth of global time around `gt` (finished ranges merge, so
        // the finished one may span most of the axis).
        let half = (self.config.range_capacity.max(2) / 2) as u64;
        let from = GlobalTime(gt.0.saturating_sub(half)).max(low);
        let to = GlobalTime(gt.0.saturating_add(half)).min(high);
        if from > low
            && let Some(r) = self.ranges.get_mut(&low)
        {
            r.high = from.saturating_sub(1);
        }
        self.ranges.insert(
            from,
            Range {
                high: to,
                state: State::Pending,
            },
        );
        if to < high {
            self.ranges.insert(
                to.next(),
                Range {
                    high,
                    state: State::Done,
                },
            );
        }
        self.stats.reopened += 1;
    }

    /// Whether every range is finished (or catch-up never started).
    pub fn is_done(&self) -> bool {
        self.ranges.values().all(|r| r.state == State::Done)
    }

    /// Whether every range at or below the limit is finished: nothing more can be asked for
    /// until the limit rises.
    pub fn is_settled(&self) -> bool {
        self.ranges
            .range(..=self.limit)
            .all(|(_, r)| r.state == State::Done)
    }

    /// Ranges still to fetch (pending or in flight).
    pub fn remaining(&self) -> usize {
        self.ranges
            .values()
            .filter(|r| r.state != State::Done)
            .count()
    }

    /// Whether a message at `gt` may still arrive through catch-up (its range is pending or in
    /// flight): a sequence gap there is worth waiting for rather than asking for.
    pub fn covers(&self, gt: GlobalTime) -> bool {
        self.ranges
            .range(..=gt)
            .next_back()
            .is_some_and(|(_, r)| gt <= r.high && r.state != State::Done)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The budget currently asked of a peer.
    pub fn budget(&self, peer: &SocketAddr) -> Option<usize> {
        self.links.get(peer).map(|l| l.budget)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.outstanding.len()
    }

    /// Adds a peer that announced `FAST` in its `SYNC_HELLO`. Returns `false` when the peer
    /// table is full.
    pub fn add_peer(&mut self, peer: SocketAddr, now: Instant) -> bool {
        if self.links.contains_key(&peer) {
            return true;
        }
        if self.links.len() >= self.config.max_peers {
            return false;
        }
        self.links.insert(
            peer,
            Link {
                budget: self.config.initial_budget.max(self.config.min_budget),
                slow_start: true,
                srtt: None,
                min_rtt: None,
                in_flight: 0,
                timeouts: 0,
                classic: false,
                not_before: now,
            },
        );
        true
    }

    /// Forgets a peer; its requests in flight are abandoned and their ranges queued again.
    pub fn remove_peer(&mut self, peer: &SocketAddr) {
        self.links.remove(peer);
        let gone: Vec<RequestId> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.peer == *peer)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(o) = self.outstanding.remove(&id) {
                self.set_state(o.low, State::Pending);
            }
        }
    }

    fn set_state(&mut self, low: GlobalTime, state: State) {
        if let Some(r) = self.ranges.get_mut(&low) {
            r.state = state;
        }
        if state == State::Done {
            self.merge_done(low);
        }
    }

    /// Merges a finished range with finished neighbours, keeping the table small.
    fn merge_done(&mut self, low: GlobalTime) {
        let mut low = low;
        if let Some((&prev, p)) = self.ranges.range(..low).next_back()
            && p.state == State::Done
            && p.high.next() == low
            && let Some(r) = self.ranges.remove(&low)
            && let Some(p) = self.ranges.get_mut(&prev)
        {
            p.high = r.high;
            low = prev;
        }
        let Some(high) = self.ranges.get(&low).map(|r| r.high) else {
            return;
        };
        if high < GlobalTime::MAX
            && let Some(n) = self.ranges.get(&high.next())
            && n.state == State::Done
            && let Some(n) = self.ranges.remove(&high.next())
            && let Some(r) = self.ranges.get_mut(&low)
        {
            r.high = n.high;
        }
    }

    fn timeout(&self, link: &Link) -> Duration {
        let rtt = link.srtt.unwrap_or(self.config.initial_rtt);
        (rtt * 4).max(self.config.min_timeout)
    }

    fn grace(&self, link: Option<&Link>) -> Duration {
        let rtt = link.and_then(|l| l.srtt).unwrap_or(self.config.initial_rtt);
        (rtt / 2).max(self.config.min_grace)
    }

    fn pick_peer(&self, now: Instant) -> Option<SocketAddr> {
        self.links
            .iter()
            .filter(|(_, l)| l.in_flight < self.config.per_peer.max(1) && l.not_before <= now)
            .min_by(|(a_addr, a), (b_addr, b)| {
                a.in_flight
                    .cmp(&b.in_flight)
                    .then(b.budget.cmp(&a.budget))
                    .then(a_addr.cmp(b_addr))
            })
            .map(|(addr, _)| *addr)
    }

    /// The next request to send, if the window, a peer and a pending range allow one. The
    /// filter holds all our Bloom-synced messages of the range; a range where we hold too many
    /// is split first.
    pub fn poll_request<S: Store + ?Sized, R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        store: &S,
        community: &CommunityId,
        policies: &Policies,
        bits: u16,
        rng: &mut R,
    ) -> Result<Option<Request>, SyncError> {
        if self.outstanding.len() >= self.config.window || policies.is_empty() {
            return Ok(None);
        }
        let limit = self.limit;
        let Some((low, mut high)) = self
            .ranges
            .iter()
            .find(|(l, r)| r.state == State::Pending && **l <= limit)
            .map(|(l, r)| (*l, r.high))
        else {
            return Ok(None);
        };
        let Some(peer) = self.pick_peer(now) else {
            return Ok(None);
        };
        if high > limit && self.ranges.len() < self.config.max_ranges {
            // What lies above the limit would be dropped on arrival: ask for it later.
            self.ranges.insert(
                limit.next(),
                Range {
                    high,
                    state: State::Pending,
                },
            );
            if let Some(r) = self.ranges.get_mut(&low) {
                r.high = limit;
            }
            high = limit;
        }
        let cap = self.config.range_capacity.max(1);
        let query = |high, limit| super::query(policies.ids(), low, high, Order::Ascending, limit);
        let mut ours = store.range(community, &query(high, cap + 1))?;
        while ours.len() > cap && self.ranges.len() < self.config.max_ranges {
            // Split at our median, never inside a global time.
            let mid = ours[cap / 2].global_time;
            let cut = if mid < high && mid >= low {
                mid
            } else {
                match ours.iter().map(|m| m.global_time).find(|g| *g > low) {
                    Some(g) if g <= high => g.saturating_sub(1),
                    _ => break,
                }
            };
            self.ranges.insert(
                cut.next(),
                Range {
                    high,
                    state: State::Pending,
                },
            );
            if let Some(r) = self.ranges.get_mut(&low) {
                r.high = cut;
            }
            high = cut;
            self.stats.splits += 1;
            ours = store.range(community, &query(high, cap + 1))?;
        }
        if ours.len() > cap {
            // Cannot split (one global time, or the range table is full): a fuller filter
            // still beats having our own messages sent back to us.
            ours = store.range(community, &query(high, cap.saturating_mul(4)))?;
        }
        let mut bloom = BloomFilter::with_error_rate(
            u64::from(bits),
            self.config.error_rate,
            Some(rng.r#gen()),
        )?;
        for m in &ours {
            bloom.add(&m.packet);
        }
        let block = bloom.to_sync_block(low, high, 1, 0)?;

        let id = RequestId(self.next_id);
        self.next_id += 1;
        let timeout = self
            .links
            .get(&peer)
            .map(|l| self.timeout(l))
            .unwrap_or(self.config.min_timeout);
        let Some(link) = self.links.get_mut(&peer) else {
            return Ok(None);
        };
        link.in_flight += 1;
        let budget = link.budget;
        self.outstanding.insert(
            id,
            Outstanding {
                peer,
                low,
                high,
                sent_at: now,
                response_at: None,
                summary: None,
                got: 0,
                got_bytes: 0,
                budget,
                deadline: now + timeout,
            },
        );
        self.set_state(low, State::InFlight(id));
        self.stats.requests += 1;
        Ok(Some(Request {
            id,
            peer,
            block,
            budget: budget as u64,
        }))
    }

    /// The introduction-response to a catch-up request arrived, with the responder's summary
    /// (`None` when it sent none).
    pub fn on_response(&mut self, id: RequestId, summary: Option<SyncSummary>, now: Instant) {
        let Some(o) = self.outstanding.get_mut(&id) else {
            return;
        };
        if o.response_at.is_some() {
            return;
        }
        o.response_at = Some(now);
        o.summary = summary;
        let rtt = now.saturating_duration_since(o.sent_at);
        let (peer, complete) = (o.peer, summary.is_some_and(|s| o.got >= s.packets));
        if let Some(l) = self.links.get_mut(&peer) {
            l.srtt = Some(match l.srtt {
                Some(s) => (s * 7 + rtt) / 8,
                None => rtt,
            });
            l.min_rtt = Some(l.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        if complete {
            self.complete(id, now);
        } else {
            let grace = self.grace(self.links.get(&peer));
            if let Some(o) = self.outstanding.get_mut(&id) {
                o.deadline = now + grace;
            }
        }
    }

    /// A Bloom-synced message packet arrived from `peer` (stored or not). Packets are matched
    /// to the request in flight to that peer whose range holds `gt`.
    pub fn on_packet(&mut self, peer: SocketAddr, gt: GlobalTime, len: usize, now: Instant) {
        let Some((&id, o)) = self
            .outstanding
            .iter_mut()
            .find(|(_, o)| o.peer == peer && o.low <= gt && gt <= o.high)
        else {
            return;
        };
        o.got += 1;
        o.got_bytes += len as u64;
        self.stats.packets += 1;
        if o.response_at.is_none() {
            // Responses go out before their packets: this one was probably lost. Do not wait for
            // the request timeout once the packets stop.
            let grace = self.grace(self.links.get(&peer)) * 2;
            if let Some(o) = self.outstanding.get_mut(&id) {
                o.deadline = now + grace;
            }
            return;
        }
        if o.summary.is_some_and(|s| o.got >= s.packets) {
            self.complete(id, now);
        } else {
            let grace = self.grace(self.links.get(&peer));
            if let Some(o) = self.outstanding.get_mut(&id) {
                o.deadline = now + grace;
            }
        }
    }

    /// When [`Catchup::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.outstanding.values().map(|o| o.deadline).min();
        // A paced peer becomes usable again; only worth a wake-up when a request could go.
        let pending = self.outstanding.len() < self.config.window
            && self
                .ranges
                .range(..=self.limit)
                .any(|(_, r)| r.state == State::Pending);
        let pacing = self
            .links
            .values()
            .filter(|l| pending && l.in_flight < self.config.per_peer)
            .map(|l| l.not_before)
            .min();
        match (deadline, pacing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Completes responses whose packets stopped arriving and times out requests without a
    /// response.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<RequestId> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.complete(id, now);
        }
    }

    fn complete(&mut self, id: RequestId, now: Instant) {
        let Some(o) = self.outstanding.remove(&id) else {
            return;
        };
        let c = self.config;
        let Some(link) = self.links.get_mut(&o.peer) else {
            self.set_state(o.low, State::Pending);
            return;
        };
        link.in_flight = link.in_flight.saturating_sub(1);
        // Packets without their response: the response was lost, not the request.
        let response_at = o.response_at.or((o.got > 0).then_some(now));
        let Some(response_at) = response_at else {
            self.stats.timeouts += 1;
            link.timeouts += 1;
            link.budget = (link.budget / 2).max(c.min_budget);
            link.slow_start = false;
            // One lost request is bad luck; two in a row is a link that cannot carry more.
            link.classic |= link.timeouts >= 2;
            link.not_before = if link.classic {
                now + c.classic_interval
            } else {
                now
            };
            let drop = link.timeouts >= c.max_timeouts;
            self.set_state(o.low, State::Pending);
            if drop {
                self.remove_peer(&o.peer);
            }
            return;
        };
        self.stats.responses += 1;
        link.timeouts = 0;
        let expected = o.summary.map_or(o.got, |s| s.packets);
        let lost = expected.saturating_sub(o.got);
        self.stats.lost += lost;
        let loss = lost as f64 / expected.max(1) as f64;
        // Without a summary, a response that filled half its budget probably had more.
        let more = o
            .summary
            .map_or(o.got_bytes.saturating_mul(2) >= o.budget as u64, |s| s.more);
        let rtt = response_at.saturating_duration_since(o.sent_at);
        let queueing = link.min_rtt.is_some_and(|m| rtt > m * 2 + c.queue_slack);
        if loss > c.loss_threshold {
            let at_floor = link.budget <= c.min_budget;
            link.budget = (link.budget / 2).max(c.min_budget);
            link.slow_start = false;
            link.classic = at_floor;
        } else if more {
            if queueing {
                link.budget = (link.budget * 3 / 4).max(c.min_budget);
                link.slow_start = false;
            } else if link.slow_start {
                link.budget = link.budget.saturating_mul(2).min(c.max_budget);
            } else {
                link.budget = link.budget.saturating_add(c.step).min(c.max_budget);
            }
            link.classic &= lost > 0;
        } else {
            link.classic &= lost > 0;
        }
        link.not_before = if link.classic {
            now + c.classic_interval
        } else {
            now
        };
        // Finished only when a complete response found nothing left to send.
        let nothing_left = !more && lost == 0 && expected == 0;
        if more || lost > 0 {
            self.stats.reasks += 1;
        }
        self.set_state(
            o.low,
            if nothing_left {
                State::Done
            } else {
                State::Pending
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;
    use crate::sync::testkit::{self, COMMUNITY, corpus, simple_policies, store_of};

    fn peer(i: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, i], 1))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn poll(
        c: &mut Catchup,
        store: &MemStore,
        now: Instant,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Option<Request> {
        c.poll_request(now, store, &COMMUNITY, &simple_policies(), 8128, rng)
            .unwrap()
    }

    #[test]
    fn window_ranges_and_completion() {
        let (mut rng, _) = testkit::rng(61);
        let store = MemStore::new();
        let mut c = Catchup::new(Config::default());
        c.start(GlobalTime(800));
        assert_eq!(c.remaining(), 8);
        assert!(c.covers(GlobalTime(1)) && c.covers(GlobalTime(10_000_000)));
        let t0 = Instant::ZERO;
        assert!(poll(&mut c, &store, t0, &mut rng).is_none(), "no peer yet");
        c.add_peer(peer(1), t0);
        c.add_peer(peer(2), t0);
        let mut reqs = Vec::new();
        while let Some(r) = poll(&mut c, &store, t0, &mut rng) {
            reqs.push(r);
        }
        // Two per peer, lowest ranges first, each range to one peer only.
        assert_eq!(reqs.len(), 4);
        let lows: Vec<u64> = reqs.iter().map(|r| r.block.time_low.0).collect();
        assert_eq!(lows, vec![1, 101, 201, 301]);
        assert_eq!(reqs.iter().filter(|r| r.peer == peer(1)).count(), 2);
        assert!(reqs.iter().all(|r| r.budget == 16 * 1024));

        // A full response: re-asked, and the budget doubles (slow start).
        let r = &reqs[0];
        c.on_response(
            r.id,
            Some(SyncSummary {
                packets: 2,
                bytes: 600,
                more: true,
            }),
            t0 + ms(10),
        );
        c.on_packet(r.peer, GlobalTime(5), 300, t0 + ms(11));
        assert_eq!(c.in_flight(), 4);
        c.on_packet(r.peer, GlobalTime(6), 300, t0 + ms(11));
        assert_eq!(c.in_flight(), 3);
        assert_eq!(c.budget(&r.peer), Some(32 * 1024));
        let again = poll(&mut c, &store, t0 + ms(11), &mut rng).unwrap();
        assert_eq!((again.block.time_low.0, again.peer), (1, r.peer));

        // "Nothing left" finishes a range; a complete response with packets does not.
        let r = &reqs[1];
        c.on_response(
            r.id,
            Some(SyncSummary {
                packets: 0,
                bytes: 0,
                more: false,
            }),
            t0 + ms(12),
        );
        assert!(!c.covers(GlobalTime(150)));
        let r = &reqs[2];
        c.on_response(
            r.id,
            Some(SyncSummary {
                packets: 1,
                bytes: 300,
                more: false,
            }),
            t0 + ms(12),
        );
        c.on_packet(r.peer, GlobalTime(250), 300, t0 + ms(13));
        assert!(c.covers(GlobalTime(250)));

        // Loss above the threshold halves the budget; packets that never come time out.
        let r = &reqs[3];
        let before = c.budget(&r.peer).unwrap();
        c.on_response(
            r.id,
            Some(SyncSummary {
                packets: 10,
                bytes: 3000,
                more: true,
            }),
            t0 + ms(20),
        );
        c.on_packet(r.peer, GlobalTime(350), 300, t0 + ms(21));
        c.handle_timeout(t0 + ms(30));
        assert_eq!(c.stats().lost, 0, "still within the grace period");
        c.handle_timeout(t0 + ms(300));
        assert_eq!(c.budget(&r.peer), Some((before / 2).max(DEFAULT_BUDGET)));
        assert_eq!(c.stats().lost, 9);
    }

    #[test]
    fn slices_follow_the_expected_count() {
        let config = Config {
            range_capacity: 1_000,
            ..Config::default()
        };
        // 100,000 expected messages: a hundred slices of about one filter's capacity.
        let mut c = Catchup::new(config);
        c.start_sized(GlobalTime(100_000), 100_000);
        assert_eq!(c.remaining(), 100);
        // Few expected: the configured minimum.
        let mut c = Catchup::new(config);
        c.start_sized(GlobalTime(100_000), 10);
        assert_eq!(c.remaining(), config.initial_slices);
        // Never more than half the range table, nor more than global times.
        let mut c = Catchup::new(Config {
            max_ranges: 64,
            ..config
        });
        c.start_sized(GlobalTime(100_000), 10_000_000);
        assert_eq!(c.remaining(), 32);
        let mut c = Catchup::new(config);
        c.start_sized(GlobalTime(20), 1_000_000);
        assert_eq!(c.remaining(), 20);
    }

    #[test]
    fn reopen_fetches_a_slice_of_a_finished_range_again() {
        let mut c = Catchup::new(Config {
            range_capacity: 100,
            ..Config::default()
        });
        // Idle: nothing to reopen.
        c.reopen(GlobalTime(5));
        assert!(c.is_done());
        c.fetch([(GlobalTime(1_000), GlobalTime(2_000))]);
        // 1..=999 finished; 1,000..=2,000 pending; the rest finished.
        assert!(!c.covers(GlobalTime(500)));
        c.reopen(GlobalTime(500));
        assert_eq!(c.stats().reopened, 1);
        assert!(
            c.covers(GlobalTime(450)) && c.covers(GlobalTime(500)) && c.covers(GlobalTime(550))
        );
        assert!(!c.covers(GlobalTime(449)) && !c.covers(GlobalTime(551)));
        assert_eq!(c.remaining(), 2);
        // Pending already: nothing changes.
        c.reopen(GlobalTime(1_500));
        c.reopen(GlobalTime(500));
        assert_eq!(c.stats().reopened, 1);
        // At the edge of the axis.
        c.reopen(GlobalTime(1));
        assert!(c.covers(GlobalTime(1)) && c.covers(GlobalTime(51)) && !c.covers(GlobalTime(52)));
        assert_eq!(c.remaining(), 3);
    }

    #[test]
    fn fetch_only_given_ranges() {
        let mut c = Catchup::new(Config::default());
        c.fetch([
            (GlobalTime(50), GlobalTime(60)),
            (GlobalTime(10), GlobalTime(20)),
            (GlobalTime(15), GlobalTime(30)),
        ]);
        assert!(!c.is_done());
        assert_eq!(c.remaining(), 2);
        assert!(c.covers(GlobalTime(10)) && c.covers(GlobalTime(30)) && c.covers(GlobalTime(55)));
        assert!(!c.covers(GlobalTime(9)) && !c.covers(GlobalTime(31)) && !c.covers(GlobalTime(61)));
        // Running: a second call changes nothing.
        c.fetch([(GlobalTime(100), GlobalTime(200))]);
        assert!(!c.covers(GlobalTime(150)));
    }

    #[test]
    fn timeouts_pace_then_drop_a_peer() {
        let (mut rng, _) = testkit::rng(62);
        let store = MemStore::new();
        let mut c = Catchup::new(Config {
            per_peer: 1,
            ..Config::default()
        });
        c.start(GlobalTime(100));
        let t0 = Instant::ZERO;
        c.add_peer(peer(1), t0);
        let r = poll(&mut c, &store, t0, &mut rng).unwrap();
        let t1 = t0 + Duration::from_secs(2);
        c.handle_timeout(t1);
        assert_eq!(c.stats().timeouts, 1);
        // One timeout: retried at once.
        let r2 = poll(&mut c, &store, t1, &mut rng).unwrap();
        assert_eq!(r2.block.time_low, r.block.time_low);
        let t2 = t1 + Duration::from_secs(2);
        c.handle_timeout(t2);
        // Two in a row: paced like classic sync.
        assert!(poll(&mut c, &store, t2, &mut rng).is_none());
        assert_eq!(c.poll_timeout(), Some(t2 + Duration::from_secs(5)));
        let t3 = t2 + Duration::from_secs(5);
        poll(&mut c, &store, t3, &mut rng).unwrap();
        c.handle_timeout(t3 + Duration::from_secs(10));
        // Three: dropped.
        assert!(c.budget(&peer(1)).is_none());
        assert!(c.covers(GlobalTime(1)));
    }

    #[test]
    fn crowded_ranges_split_and_finished_ranges_merge() {
        let (mut rng, _) = testkit::rng(63);
        let msgs = corpus(3_000, 10, 64, &mut rng);
        let store = store_of(&msgs);
        let max = msgs.iter().map(|m| m.global_time).max().unwrap();
        let mut c = Catchup::new(Config {
            initial_slices: 1,
            window: 1,
            ..Config::default()
        });
        c.start(max);
        let t0 = Instant::ZERO;
        c.add_peer(peer(1), t0);
        let r = poll(&mut c, &store, t0, &mut rng).unwrap();
        // 3,000 of ours in one range: split until at most 680 remain in the first.
        let ours = store
            .count(&COMMUNITY, None, r.block.time_low, r.block.time_high)
            .unwrap();
        assert!(ours <= 680 && ours > 300, "{ours}");
        assert_eq!(c.stats().splits, 1);
        assert_eq!(c.remaining(), 2);
        // Finish everything with empty answers; the finished ranges merge into one.
        let mut now = t0;
        let mut r = Some(r);
        while let Some(req) = r {
            now += ms(5);
            c.on_response(req.id, Some(SyncSummary::default()), now);
            r = poll(&mut c, &store, now, &mut rng);
        }
        assert!(c.is_done());
        assert!(
            c.stats().splits >= 4,
            "the rest was split as it was asked for"
        );
        assert_eq!(c.ranges.len(), 1);
    }

    #[test]
    fn nothing_is_asked_above_the_limit() {
        let (mut rng, _) = testkit::rng(64);
        let store = MemStore::new();
        let mut c = Catchup::new(Config {
            initial_slices: 2,
            ..Config::default()
        });
        c.start(GlobalTime(1_000));
        c.set_limit(GlobalTime(300));
        let t0 = Instant::ZERO;
        c.add_peer(peer(1), t0);
        c.add_peer(peer(2), t0);
        let first = poll(&mut c, &store, t0, &mut rng).unwrap();
        assert_eq!((first.block.time_low.0, first.block.time_high.0), (1, 300));
        assert!(
            poll(&mut c, &store, t0, &mut rng).is_none(),
            "the rest waits"
        );
        assert_eq!(
            c.poll_timeout(),
            Some(t0 + Duration::from_secs(2)),
            "no busy wake-up"
        );
        assert!(c.covers_any(GlobalTime(250), GlobalTime(260)));
        assert!(
            c.covers_any(GlobalTime(5_000), GlobalTime(6_000)),
            "pending above the limit"
        );
        c.on_response(first.id, Some(SyncSummary::default()), t0 + ms(5));
        assert!(!c.covers_any(GlobalTime(1), GlobalTime(300)));
        assert!(!c.covers_any(GlobalTime(300), GlobalTime(200)));
        assert!(c.is_settled() && !c.is_done(), "all it may ask for is done");
        c.set_limit(GlobalTime(700));
        assert!(!c.is_settled());
        let next = poll(&mut c, &store, t0 + ms(5), &mut rng).unwrap();
        assert_eq!((next.block.time_low.0, next.block.time_high.0), (301, 500));
        let last = poll(&mut c, &store, t0 + ms(5), &mut rng).unwrap();
        assert_eq!((last.block.time_low.0, last.block.time_high.0), (501, 700));
        for r in [next, last] {
            c.on_response(r.id, Some(SyncSummary::default()), t0 + ms(6));
        }
        assert!(
            c.is_settled() && !c.is_done(),
            "701 and above wait for the limit"
        );
    }
}
