//! `/api/v1/node`, `/api/v1/communities` and candidates.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use dispersy::community::spec::CommunitySpec;
use dispersy::ids::{CommunityId, GlobalTime, MemberId};
use dispersy::node::Node;
use dispersy::node::{AddressStatus, SyncStatus};
use dispersy::walker;
use dispersy::wire::builtin::ConnectionType;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use crate::daemon::hosting;
use crate::daemon::state::{AppState, Hosted};
use crate::daemon::views::{
    CandidateList, CandidateView, CommunityList, CommunityView, NodeView, SyncView,
};

/// Optional parts of the node this build wires into the API.
pub const FEATURES: &[&str] = &["walker", "permissions", "sync"];

/// Parses a community id from a path or body, answering 400 when malformed.
pub fn parse_community(s: &str) -> ApiResult<CommunityId> {
    s.parse()
        .map_err(|_| ApiError::field("community", format!("{s:?} is not 40 hexadecimal digits")))
}

/// Parses a member id.
pub fn parse_member(field: &str, s: &str) -> ApiResult<MemberId> {
    s.parse()
        .map_err(|_| ApiError::field(field, format!("{s:?} is not 40 hexadecimal digits")))
}

/// The hosted community named in a path, or 404.
pub fn hosted(state: &AppState, s: &str) -> ApiResult<(CommunityId, Hosted)> {
    let id = parse_community(s)?;
    let h = state
        .hosted(&id)
        .ok_or_else(|| ApiError::NotFound(format!("this node does not host community {id}")))?;
    Ok((id, h))
}

/// What only the node knows about a community.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The community's global time.
    pub global_time: u64,
    /// Messages in the delay queue.
    pub delayed: usize,
    /// Verified candidates.
    pub candidates: usize,
    /// Stored messages.
    pub messages: u64,
    /// Stored messages of Bloom-synced meta-messages.
    pub held: u64,
    /// The master key (hex), once known.
    pub master_key: Option<String>,
    /// The node's sync status.
    pub sync: Option<SyncStatus>,
}

/// Reads a community's live figures on the node task.
pub fn live(node: &Node, id: &CommunityId) -> Live {
    let Some(def) = node.community(id) else {
        return Live::default();
    };
    let store = node.store();
    let messages = store
        .count(id, None, GlobalTime(1), GlobalTime::MAX)
        .unwrap_or(0);
    let synced = def.bloom_synced_metas();
    let held = store
        .count(id, Some(&synced), GlobalTime(1), GlobalTime::MAX)
        .unwrap_or(0);
    Live {
        global_time: node.global_time(id).map_or(0, |g| g.0),
        delayed: node.delayed_count(id),
        candidates: node.peers(id).len(),
        messages,
        held,
        master_key: def.master().key().map(|k| hex::encode(k.to_bin())),
        sync: node.sync_status(id),
    }
}

/// Sync progress: the node's status (held versus the estimate from peers' claims), or our own
/// count when the node has none for the community.
pub fn sync_view(live: &Live) -> SyncView {
    match &live.sync {
        Some(s) => SyncView {
            held: s.held,
            estimate: s.estimate,
            fraction: s.fraction,
            peers: s.peers,
            estimated: s.peers > 0,
            catching_up: s.catching_up,
            reconciling: s.reconciling,
            peer_global_time: s.peer_global_time.0,
            extension_peers: s.extension_peers,
        },
        None => SyncView {
            held: live.held,
            estimate: live.held,
            fraction: 1.0,
            peers: 0,
            estimated: false,
            catching_up: false,
            reconciling: false,
            peer_global_time: 0,
            extension_peers: 0,
        },
    }
}

fn view(id: &CommunityId, h: &Hosted, live: &Live, with_spec: bool) -> CommunityView {
    CommunityView {
        id: id.to_hex(),
        name: h.def.kind().to_owned(),
        founder: h.founder,
        master_key: live.master_key.clone(),
        global_time: live.global_time,
        messages: live.messages,
        candidates: live.candidates,
        delayed: live.delayed,
        sync: sync_view(live),
        metas: h.metas(),
        spec: if with_spec {
            h.spec.as_deref().map(CommunitySpec::to_toml)
        } else {
            None
        },
    }
}

/// The name of a connection type.
pub fn connection_type_name(c: ConnectionType) -> &'static str {
    match c {
        ConnectionType::Unknown => "unknown",
        ConnectionType::Public => "public",
        ConnectionType::SymmetricNat => "symmetric-nat",
    }
}

/// GET /api/v1/node
pub async fn node(State(state): State<AppState>) -> ApiResult<Json<NodeView>> {
    let (member, public_key, communities, walker) = state
        .handle
        .call(|node, _| {
            (
                node.member_id().to_hex(),
                hex::encode(node.public_key().to_bin()),
                node.communities().count(),
                node.walker_status(),
            )
        })
        .await?;
    // The first family with a known WAN address, else the first family.
    let known = |a: &&AddressStatus| walker::is_valid(a.wan);
    let address = walker
        .addresses
        .iter()
        .find(known)
        .or(walker.addresses.first());
    Ok(Json(NodeView {
        member,
        public_key,
        version: env!("CARGO_PKG_VERSION").into(),
        listen: state.handle.local_addrs(),
        lan: state.handle.lan_addresses(),
        wan: address.map(|a| a.wan).filter(|w| walker::is_valid(*w)),
        connection_type: address
            .map_or("unknown", |a| connection_type_name(a.connection_type))
            .into(),
        trackers: state.handle.trackers().into_iter().collect(),
        uptime_secs: state.started.elapsed().as_secs(),
        communities,
        api: state.api_addr,
        data_dir: state.data.root().display().to_string(),
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
    }))
}

/// GET /api/v1/communities
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<CommunityList>> {
    let hosted = state.all_hosted();
    let ids: Vec<CommunityId> = hosted.keys().copied().collect();
    let lives: Vec<Live> = state
        .handle
        .call(move |node, _| ids.iter().map(|id| live(node, id)).collect())
        .await?;
    let communities = hosted
        .iter()
        .zip(lives)
        .map(|((id, h), l)| view(id, h, &l, false))
        .collect();
    Ok(Json(CommunityList { communities }))
}

/// GET /api/v1/communities/{community}
pub async fn get(
    State(state): State<AppState>,
    Path(community): Path<String>,
) -> ApiResult<Json<CommunityView>> {
    let (id, h) = hosted(&state, &community)?;
    let l = state.handle.call(move |node, _| live(node, &id)).await?;
    Ok(Json(view(&id, &h, &l, true)))
}

/// A community description: TOML text, or the same keys as a JSON object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpecInput {
    /// TOML text.
    Toml(String),
    /// A JSON object with the keys of the TOML form.
    Object(Box<CommunitySpec>),
}

/// Body of `POST /communities` and `POST /communities/join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecBody {
    /// The description.
    pub spec: SpecInput,
}

impl SpecInput {
    fn parse(self) -> ApiResult<CommunitySpec> {
        match self {
            SpecInput::Toml(t) => {
                CommunitySpec::from_toml(&t).map_err(|e| ApiError::field("spec", e))
            }
            SpecInput::Object(s) => Ok(*s),
        }
    }
}

async fn answer(state: &AppState, id: CommunityId) -> ApiResult<(StatusCode, Json<CommunityView>)> {
    let h = state
        .hosted(&id)
        .ok_or_else(|| ApiError::Internal("joined community vanished".into()))?;
    let l = state.handle.call(move |node, _| live(node, &id)).await?;
    Ok((StatusCode::CREATED, Json(view(&id, &h, &l, true))))
}

/// POST /api/v1/communities
pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<SpecBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CommunityView>)> {
    let Json(body) = body?;
    let id = hosting::create(&state, body.spec.parse()?).await?;
    answer(&state, id).await
}

/// POST /api/v1/communities/join
pub async fn join(
    State(state): State<AppState>,
    body: Result<Json<SpecBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CommunityView>)> {
    let Json(body) = body?;
    let id = hosting::join(&state, body.spec.parse()?).await?;
    answer(&state, id).await
}

/// Query of `DELETE /communities/{community}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveQuery {
    /// Also delete the community's stored messages.
    #[serde(default)]
    forget: bool,
}

/// DELETE /api/v1/communities/{community}
pub async fn leave(
    State(state): State<AppState>,
    Path(community): Path<String>,
    query: Result<Query<LeaveQuery>, QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(q) = query?;
    let (id, _) = hosted(&state, &community)?;
    hosting::leave(&state, id, q.forget).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /api/v1/communities/{community}/candidates
pub async fn candidates(
    State(state): State<AppState>,
    Path(community): Path<String>,
) -> ApiResult<Json<CandidateList>> {
    let (id, _) = hosted(&state, &community)?;
    let list = state
        .handle
        .call(move |node, _| node.candidates(&id))
        .await?;
    let candidates: Vec<CandidateView> = list
        .into_iter()
        .map(|c| CandidateView {
            address: c.address,
            member: c.member.map(|m| m.to_hex()),
            category: c.category.name().into(),
            tracker: c.tracker,
            connection_type: connection_type_name(c.connection_type).into(),
        })
        .collect();
    let mut categories = BTreeMap::new();
    for c in &candidates {
        *categories.entry(c.category.clone()).or_insert(0) += 1;
    }
    Ok(Json(CandidateList {
        community: id.to_hex(),
        candidates,
        categories,
    }))
}

/// Body of `POST /communities/{community}/candidates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddCandidate {
    /// `ip:port` of the peer.
    pub address: String,
}

/// POST /api/v1/communities/{community}/candidates
pub async fn add_candidate(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<AddCandidate>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(body) = body?;
    let (id, _) = hosted(&state, &community)?;
    let address: SocketAddr = body
        .address
        .parse()
        .map_err(|_| ApiError::field("address", format!("{:?} is not ip:port", body.address)))?;
    if address.port() == 0 || address.ip().is_unspecified() || address.ip().is_multicast() {
        return Err(ApiError::field("address", "not a peer's address"));
    }
    state.handle.add_peer(id, address).await?;
    Ok(StatusCode::NO_CONTENT)
}
