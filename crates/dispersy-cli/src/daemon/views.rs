//! The JSON bodies of the REST API, shared by the daemon (which writes them) and the CLI (which
//! reads them). `docs/rest-api.md` shows each with an example.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The error body of every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code: `bad-request`, `unauthorized`, `not-found`, `method-not-allowed`,
    /// `conflict`, `forbidden`, `gone`, `too-large`, `too-many`, `not-implemented`, `unavailable`,
    /// `internal`.
    pub error: String,
    /// What was wrong, for a person.
    pub detail: String,
}

/// `GET /api/v1/node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Our member id (hex).
    pub member: String,
    /// Our public key (hex of py-ipv8's key blob).
    pub public_key: String,
    /// Program version.
    pub version: String,
    /// Bound UDP addresses.
    pub listen: Vec<SocketAddr>,
    /// Our LAN address per listen socket.
    pub lan: Vec<SocketAddr>,
    /// Our WAN address as peers see it (`null` until the walker has votes).
    pub wan: Option<SocketAddr>,
    /// `public`, `symmetric-nat` or `unknown`.
    pub connection_type: String,
    /// Resolved tracker addresses.
    pub trackers: Vec<SocketAddr>,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Joined communities.
    pub communities: usize,
    /// The API's address.
    pub api: SocketAddr,
    /// The data directory.
    pub data_dir: String,
    /// Which optional parts of the node this build has (`walker`, `permissions`, `sync`).
    pub features: Vec<String>,
}

/// One meta-message of a community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaView {
    /// Its name.
    pub name: String,
    /// Its message byte.
    pub byte: u8,
    /// `direct`, `full-sync` or `last-sync`.
    pub distribution: String,
    /// `public`, `linear` or `dynamic`.
    pub resolution: String,
    /// Payload layout for declared communities (`text`, `bytes`, ...), `null` otherwise.
    pub payload: Option<String>,
    /// Whether its messages may be undone.
    pub undoable: bool,
    /// A built-in (`dispersy-*`) meta-message.
    pub builtin: bool,
}

/// Catch-up progress of a community: the node's sync status (Bloom-synced messages held versus
/// the largest fresh claim of a peer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyncView {
    /// Bloom-synced messages we hold.
    pub held: u64,
    /// Estimate of what there is to hold: the largest fresh claim of a peer, at least `held`.
    pub estimate: u64,
    /// `held / estimate` (1 when nothing is known to be missing).
    pub fraction: f64,
    /// Peers whose fresh claims made the estimate.
    pub peers: usize,
    /// Whether peers' claims back the estimate (false: `estimate` is only our own count).
    pub estimated: bool,
    /// Whether fast catch-up is running.
    #[serde(default)]
    pub catching_up: bool,
    /// Whether a reconciliation session of ours is running.
    #[serde(default)]
    pub reconciling: bool,
    /// The highest global time a peer claimed.
    #[serde(default)]
    pub peer_global_time: u64,
    /// Peers known to speak the sync extensions (fast catch-up or reconciliation).
    #[serde(default)]
    pub extension_peers: usize,
}

/// A joined community.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityView {
    /// Community id (hex).
    pub id: String,
    /// The community type's name.
    pub name: String,
    /// Whether this node holds the master key (it founded the community).
    pub founder: bool,
    /// The master's public key (hex), once known.
    pub master_key: Option<String>,
    /// The community's global time.
    pub global_time: u64,
    /// Stored messages.
    pub messages: u64,
    /// Current candidates (peers).
    pub candidates: usize,
    /// Messages waiting for something missing.
    pub delayed: usize,
    /// Catch-up progress.
    pub sync: SyncView,
    /// The meta-messages.
    pub metas: Vec<MetaView>,
    /// The declarative description (TOML); only in `GET /communities/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
}

/// `GET /api/v1/communities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityList {
    /// Joined communities, by id.
    pub communities: Vec<CommunityView>,
}

/// A candidate of a community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateView {
    /// The address we talk to it on.
    pub address: SocketAddr,
    /// Its member id, once known.
    pub member: Option<String>,
    /// `walk`, `stumble`, `intro`, `discovered` or `none`.
    pub category: String,
    /// A bootstrap tracker.
    pub tracker: bool,
    /// Its NAT situation as it reports it (`public`, `symmetric-nat`, `unknown`).
    pub connection_type: String,
}

/// `GET /api/v1/communities/{id}/candidates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateList {
    /// The community.
    pub community: String,
    /// Candidates, by address.
    pub candidates: Vec<CandidateView>,
    /// How many in each category.
    pub categories: BTreeMap<String, usize>,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// The community.
    pub community: String,
    /// `<member hex>:<global time>` (`null` for unsigned messages).
    pub id: Option<String>,
    /// Meta-message name.
    pub meta: String,
    /// Message byte.
    pub byte: u8,
    /// Author (hex).
    pub member: Option<String>,
    /// Global time.
    pub global_time: u64,
    /// Sequence number, when the meta-message numbers its messages.
    pub sequence: Option<u64>,
    /// The content as text, when it is UTF-8.
    pub text: Option<String>,
    /// The content, base64 (for declared communities the content inside the payload layout).
    pub base64: String,
    /// `null` when live; else the undoing message's id, or `policy`.
    pub undone: Option<String>,
    /// Packet size in bytes.
    pub size: usize,
    /// The peer it came from (only in events; `null` when created here or read from the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SocketAddr>,
}

/// `GET /api/v1/communities/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    /// The messages, in the requested order.
    pub messages: Vec<MessageView>,
    /// Cursor of the next page (`null`: this was the last).
    pub next: Option<String>,
}

/// Messages created by one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The messages, in request order.
    pub messages: Vec<MessageView>,
}

/// Packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficView {
    /// Datagrams.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Traffic of one message type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeView {
    /// Message byte.
    pub byte: u8,
    /// Its name (the community's meta-message, a built-in, or `byte-N`).
    pub name: String,
    /// Received.
    pub received: TrafficView,
    /// Sent.
    pub sent: TrafficView,
    /// Messages accepted.
    pub accepted: u64,
    /// Messages created here.
    pub created: u64,
}

/// Counters of the node or of one community.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersView {
    /// Everything received.
    pub received: TrafficView,
    /// Everything sent.
    pub sent: TrafficView,
    /// Per message type.
    pub types: Vec<TypeView>,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
    /// Messages delayed, by what they waited for.
    pub delayed: BTreeMap<String, u64>,
}

/// `GET /api/v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsView {
    /// The node's protocol counters.
    pub node: CountersView,
    /// The driver's counters (sockets, queues, wake-ups).
    pub driver: BTreeMap<String, u64>,
    /// Catch-up progress per community.
    pub sync: BTreeMap<String, SyncView>,
}

/// `GET /api/v1/communities/{id}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityStatsView {
    /// The community.
    pub community: String,
    /// Its counters.
    pub counters: CountersView,
    /// Catch-up progress.
    pub sync: SyncView,
    /// Messages waiting.
    pub delayed: usize,
}

/// One sample of the traffic history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix time, milliseconds.
    pub t: u64,
    /// Totals so far.
    pub received: TrafficView,
    /// Totals so far.
    pub sent: TrafficView,
    /// Drops so far.
    pub drops: u64,
    /// Messages accepted or created so far.
    pub messages: u64,
}

/// `GET /api/v1/stats/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Seconds between samples.
    pub interval_secs: u64,
    /// Oldest first.
    pub samples: Vec<Sample>,
}

/// Permission bits on one meta-message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionView {
    /// Meta-message name.
    pub meta: String,
    /// May create (linear resolution).
    pub permit: bool,
    /// May grant.
    pub authorize: bool,
    /// May revoke.
    pub revoke: bool,
    /// May undo others' messages.
    pub undo: bool,
}

/// `GET /api/v1/communities/{id}/members/{member}/permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPermissions {
    /// The community.
    pub community: String,
    /// The member.
    pub member: String,
    /// Whether the member is the community's master (holds everything).
    pub master: bool,
    /// The global time the answer holds at.
    pub global_time: u64,
    /// Per meta-message.
    pub permissions: Vec<PermissionView>,
}
