//! The synchronization state of one joined community, its settings, and the read-only views
//! the CLI and the dashboard show (module `sync` drives it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::community::Definition;
use crate::ids::{CommunityId, GlobalTime};
use crate::sync::catchup::{self, Catchup, RequestId};
use crate::sync::hello::SyncHello;
use crate::sync::index::DEFAULT_MAX_BUCKETS;
use crate::sync::progress::{self, Progress};
use crate::sync::reconcile;
use crate::sync::requester::{Requester, RequesterConfig, RequesterStats};
use crate::sync::respond::DEFAULT_MAX_BUDGET;
use crate::sync::size::DEFAULT_DATAGRAM_BUDGET;
use crate::sync::{FingerprintIndex, Policies};
use crate::time::Instant;

/// Node-wide synchronization settings (see `docs/sync.md`). Every bound has a default.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Speak our sync extensions (`SYNC_HELLO`, `SYNC_SUMMARY`, `RECONCILE`): fast catch-up
    /// and range reconciliation with peers that announce them. Off: classic Dispersy
    /// Bloom-filter sync only, exactly as a Dispersy peer would do it.
    pub extensions: bool,
    /// UDP payload every introduction-request must fit (the filter is sized to fill it).
    pub datagram_budget: usize,
    /// Filter reuse, skipping, range strategy and error rate of classic sync.
    pub requester: RequesterConfig,
    /// The largest response budget a fast requester may ask of us.
    pub max_response_budget: usize,
    /// Fast catch-up (the split threshold is set from the filter size at runtime).
    pub catchup: catchup::Config,
    /// Catch-up starts when a peer holds more than `behind_ratio` times what we hold plus
    /// `behind_slack` messages.
    pub behind_ratio: f64,
    /// See `behind_ratio`.
    pub behind_slack: u64,
    /// A finished catch-up is not started again sooner than this.
    pub catchup_cooldown: Duration,
    /// Range reconciliation.
    pub reconcile: reconcile::Config,
    /// Time between two reconciliation sessions we start (per community).
    pub reconcile_interval: Duration,
    /// How long we wait for each reconciliation reply.
    pub reconcile_timeout: Duration,
    /// Packet bytes sent per reconciliation message at most (within anti-amplification).
    pub reconcile_budget: usize,
    /// Peer claims for the progress estimate.
    pub progress: progress::Config,
    /// Peers whose sync capabilities we remember, per community.
    pub max_peers: usize,
    /// Buckets of the fingerprint index, per community.
    pub index_buckets: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            extensions: true,
            datagram_budget: DEFAULT_DATAGRAM_BUDGET,
            requester: RequesterConfig::default(),
            max_response_budget: DEFAULT_MAX_BUDGET,
            catchup: catchup::Config::default(),
            behind_ratio: 1.1,
            behind_slack: 1_000,
            catchup_cooldown: Duration::from_secs(60),
            reconcile: reconcile::Config::default(),
            reconcile_interval: Duration::from_secs(30),
            reconcile_timeout: Duration::from_secs(3),
            reconcile_budget: 64 * 1024,
            progress: progress::Config::default(),
            max_peers: 256,
            index_buckets: DEFAULT_MAX_BUCKETS,
        }
    }
}

impl SyncConfig {
    /// Delayed messages a community should be able to hold during catch-up: a window of
    /// responses arriving out of order (sequence gaps wait for the lower ranges), at 256 bytes
    /// per message at least.
    pub fn catchup_delay_capacity(&self) -> usize {
        if !self.extensions {
            return 0;
        }
        self.catchup
            .window
            .saturating_mul(self.catchup.max_budget)
            .checked_div(256)
            .unwrap_or(0)
    }
}

/// What we know of a peer's synchronization.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerSync {
    /// It may be sent our extension block: it sent us one, or showed it is not original
    /// Dispersy (the new-style flag, which Dispersy never sets).
    pub(crate) extensions: bool,
    /// Its latest `SYNC_HELLO`.
    pub(crate) hello: Option<SyncHello>,
    /// When we last heard from it.
    pub(crate) seen: Instant,
    /// When it last sent us a `RECONCILE` of its own session: reconciliation is symmetric, so
    /// we start no session of ours with it for a while (both sides starting at once doubles
    /// the traffic and finds nothing more).
    pub(crate) reconciled_by: Option<Instant>,
}

/// What an introduction-request of ours in flight was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A catch-up request.
    Catchup(RequestId),
    /// A round of our reconciliation session.
    Reconcile,
}

/// Our reconciliation session with one peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub(crate) peer: SocketAddr,
    pub(crate) identifier: u16,
    pub(crate) deadline: Instant,
    pub(crate) started: Instant,
    pub(crate) rounds: u32,
}

/// Counters of a community's synchronization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncStats {
    /// Introduction-requests sent with a sync block (walker steps).
    pub requests: u64,
    /// Walker steps sent without a sync block (skip curve, tracker, too small).
    pub requests_without_block: u64,
    /// Requests with a sync block answered.
    pub responses: u64,
    /// Message packets sent in answer to sync blocks.
    pub packets_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Responses cut short by the budget, the allowance or the scan limit.
    pub responses_full: u64,
    /// Sync blocks or extensions that could not be used (hostile or malformed).
    pub refused: u64,
    /// Extension blocks withheld from version-1 peers that never showed they read them.
    pub extensions_withheld: u64,
    /// Catch-ups started.
    pub catchups: u64,
    /// Catch-up requests sent.
    pub catchup_requests: u64,
    /// Reconciliation sessions started.
    pub reconcile_sessions: u64,
    /// Reconciliation sessions that ended with an empty message.
    pub reconcile_completed: u64,
    /// Reconciliation messages sent (requests and answers).
    pub reconcile_messages: u64,
    /// Bytes of the `RECONCILE` entries we sent.
    pub reconcile_bytes_sent: u64,
    /// Bytes of the `RECONCILE` entries we received.
    pub reconcile_bytes_received: u64,
    /// Bytes of the datagrams that carried `RECONCILE` entries we sent (whole
    /// introduction-requests and -responses).
    pub reconcile_datagram_bytes: u64,
    /// Rounds of our sessions (request and answer each).
    pub reconcile_rounds: u64,
    /// Message packets sent in reconciliation.
    pub reconcile_packets: u64,
    /// Missing-sequence requests held back because catch-up will bring the gap.
    pub gaps_left_to_catchup: u64,
}

/// The synchronization state of one joined community.
#[derive(Debug)]
pub(crate) struct SyncState {
    pub(crate) policies: Policies,
    pub(crate) requester: Requester,
    pub(crate) index: FingerprintIndex,
    pub(crate) progress: Progress,
    pub(crate) catchup: Catchup,
    /// Filter bits of catch-up requests (a conservative request shape).
    pub(crate) catchup_bits: Option<u16>,
    /// When the running catch-up started, and when the last one finished.
    pub(crate) catchup_started: Option<Instant>,
    pub(crate) catchup_finished: Option<Instant>,
    /// Our introduction-requests in flight that sync sent, by (peer, identifier).
    pub(crate) inflight: BTreeMap<(SocketAddr, u16), (Purpose, Instant)>,
    pub(crate) peers: BTreeMap<SocketAddr, PeerSync>,
    pub(crate) session: Option<Session>,
    pub(crate) last_session: Option<Instant>,
    /// Bloom-synced messages received during catch-up that wait in the delay queue (for a
    /// lower sequence number), by (global time, digest): catch-up filters include them, so a
    /// range re-asked before the gap below it is filled does not bring them again.
    pub(crate) waiting: BTreeMap<(GlobalTime, u64), (Bytes, Instant)>,
    pub(crate) stats: SyncStats,
}

/// In-flight entries kept at most (the catch-up window and one session fit many times over).
pub(crate) const MAX_INFLIGHT: usize = 256;

impl SyncState {
    pub(crate) fn new(def: &Definition, config: &SyncConfig) -> SyncState {
        let policies = Policies::new(def.metas().map(|m| (m.id, &m.distribution)));
        SyncState {
            index: FingerprintIndex::new(def.id(), &policies, config.index_buckets),
            requester: Requester::new(config.requester),
            progress: Progress::new(config.progress, 0),
            catchup: Catchup::new(config.catchup),
            catchup_bits: None,
            catchup_started: None,
            catchup_finished: None,
            inflight: BTreeMap::new(),
            peers: BTreeMap::new(),
            session: None,
            last_session: None,
            waiting: BTreeMap::new(),
            stats: SyncStats::default(),
            policies,
        }
    }

    /// Whether catch-up is running.
    pub(crate) fn catching_up(&self) -> bool {
        self.catchup_started.is_some()
    }

    /// The earliest timer: catch-up deadlines and pacing, the reconciliation reply deadline.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        let catchup = self
            .catching_up()
            .then(|| self.catchup.poll_timeout())
            .flatten();
        [catchup, self.session.map(|s| s.deadline)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Remembers what we heard from a peer, evicting the one heard from longest ago when full.
    pub(crate) fn heard(
        &mut self,
        max: usize,
        peer: SocketAddr,
        now: Instant,
        extensions: bool,
        hello: Option<SyncHello>,
    ) {
        if !self.peers.contains_key(&peer) && self.peers.len() >= max.max(1) {
            let stalest = self
                .peers
                .iter()
                .min_by_key(|(addr, p)| (p.seen, **addr))
                .map(|(addr, _)| *addr);
            if let Some(addr) = stalest {
                self.peers.remove(&addr);
            }
        }
        let entry = self.peers.entry(peer).or_insert(PeerSync {
            extensions: false,
            hello: None,
            seen: now,
            reconciled_by: None,
        });
        entry.extensions |= extensions;
        entry.seen = now;
        if hello.is_some() {
            entry.hello = hello;
        }
    }

    /// Registers a request in flight, forgetting the oldest when the table is full.
    pub(crate) fn track(
        &mut self,
        peer: SocketAddr,
        identifier: u16,
        purpose: Purpose,
        now: Instant,
    ) {
        if self.inflight.len() >= MAX_INFLIGHT {
            let oldest = self
                .inflight
                .iter()
                .min_by_key(|(key, (_, at))| (*at, **key))
                .map(|(key, _)| *key);
            if let Some(key) = oldest {
                self.inflight.remove(&key);
            }
        }
        self.inflight.insert((peer, identifier), (purpose, now));
    }

    /// Remembers a message waiting in the delay queue (at most `max`; it stays remembered as
    /// long as the delay queue keeps it, `timeout`).
    pub(crate) fn on_waiting(
        &mut self,
        key: (GlobalTime, u64),
        packet: Bytes,
        now: Instant,
        max: usize,
        timeout: Duration,
    ) {
        if self.waiting.contains_key(&key) {
            return;
        }
        if self.waiting.len() >= max {
            self.waiting
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < timeout);
            if self.waiting.len() >= max {
                return;
            }
        }
        self.waiting.insert(key, (packet, now));
    }

    /// Forgets waiting messages older than `timeout` (the delay queue dropped them unstored)
    /// and fetches their catch-up ranges again: their filters claimed them.
    pub(crate) fn expire_waiting(&mut self, now: Instant, timeout: Duration) {
        if self.waiting.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        self.waiting.retain(|(gt, _), (_, at)| {
            let keep = now.saturating_duration_since(*at) < timeout;
            if !keep {
                expired.push(*gt);
            }
            keep
        });
        for gt in expired {
            self.catchup.reopen(gt);
        }
    }

    /// The waiting messages of `low..=high` that are still in the delay queue.
    pub(crate) fn waiting_in(
        &mut self,
        low: GlobalTime,
        high: GlobalTime,
        now: Instant,
        timeout: Duration,
    ) -> Vec<Bytes> {
        self.waiting
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < timeout);
        if low > high {
            return Vec::new();
        }
        self.waiting
            .range((low, 0)..=(high, u64::MAX))
            .map(|(_, (p, _))| p.clone())
            .collect()
    }

    /// Forgets in-flight entries older than `max_age` (their answers can no longer come: the
    /// walker forgets its requests after its request timeout).
    pub(crate) fn expire_inflight(&mut self, now: Instant, max_age: Duration) {
        self.inflight
            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= max_age);
    }
}

/// Synchronization of one community as of the last input: what the CLI and the dashboard show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    /// The community.
    pub community: CommunityId,
    /// Bloom-synced messages we hold.
    pub held: u64,
    /// Estimate of what there is to hold: the largest fresh claim of a peer, at least `held`.
    pub estimate: u64,
    /// `held / estimate` (1 when there is nothing to hold).
    pub fraction: f64,
    /// Peers whose fresh claims make the estimate.
    pub peers: usize,
    /// The highest global time a peer claimed.
    pub peer_global_time: GlobalTime,
    /// Our global time.
    pub global_time: GlobalTime,
    /// Whether fast catch-up is running.
    pub catching_up: bool,
    /// Catch-up ranges still to fetch.
    pub catchup_remaining: usize,
    /// Catch-up requests in flight.
    pub catchup_in_flight: usize,
    /// Whether a reconciliation session of ours is running.
    pub reconciling: bool,
    /// Peers known to speak our sync extensions (fast catch-up or reconciliation).
    pub extension_peers: usize,
    /// Counters.
    pub stats: SyncStats,
    /// Classic requester counters.
    pub requester: RequesterCounters,
}

/// The classic requester's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequesterCounters {
    /// Filters built.
    pub built: u64,
    /// Filters sent again.
    pub reused: u64,
    /// Requests sent without a sync block because of the skip curve.
    pub skipped: u64,
}

impl From<RequesterStats> for RequesterCounters {
    fn from(s: RequesterStats) -> Self {
        RequesterCounters {
            built: s.built,
            reused: s.reused,
            skipped: s.skipped,
        }
    }
}
