//! `/api/v1/communities/{community}/messages`: list with filters and pagination, create one or a
//! batch, read one.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId};
use dispersy::node::Node;
use dispersy::store::{Order, RangeQuery, StoredMessage, Undone};
use dispersy::wire::Packet;
use serde::{Deserialize, Serialize};

use super::communities::{hosted, parse_member};
use super::error::{ApiError, ApiResult};
use crate::daemon::state::{AppState, Hosted};
use crate::daemon::views::{Created, MessagePage, MessageView};

/// Messages per page when no limit is given.
pub const DEFAULT_LIMIT: usize = 100;
/// Most messages per page.
pub const MAX_LIMIT: usize = 1000;
/// Most messages created by one request.
pub const MAX_BATCH: usize = 1000;

/// Query of `GET /communities/{community}/messages`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Meta-message names, comma-separated (default: the application's).
    meta: Option<String>,
    /// Only this author.
    member: Option<String>,
    /// Lowest global time (inclusive).
    since: Option<u64>,
    /// Highest global time (inclusive).
    until: Option<u64>,
    /// `asc` (default) or `desc`.
    order: Option<String>,
    /// Page size.
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// Include built-in meta-messages when no `meta` is given.
    #[serde(default)]
    builtin: bool,
    /// Include undone messages (default true).
    undone: Option<bool>,
}

/// A stored message and its payload.
type WithPayload = (StoredMessage, Bytes);

/// A validated listing request.
#[derive(Debug, Clone)]
struct Listing {
    metas: Option<Vec<MetaId>>,
    member: Option<MemberId>,
    low: GlobalTime,
    high: GlobalTime,
    descending: bool,
    limit: usize,
    cursor: Option<(GlobalTime, MemberId)>,
    undone: bool,
}

fn parse_cursor(s: &str) -> ApiResult<(GlobalTime, MemberId)> {
    let bad = || {
        ApiError::field(
            "cursor",
            format!("{s:?} is not a cursor from a previous page"),
        )
    };
    let (gt, member) = s.split_once(':').ok_or_else(bad)?;
    Ok((
        GlobalTime(gt.parse().map_err(|_| bad())?),
        member.parse().map_err(|_| bad())?,
    ))
}

fn cursor_of(m: &StoredMessage) -> String {
    format!("{}:{}", m.global_time.0, m.member.to_hex())
}

/// Resolves comma-separated meta-message names (or bytes) of a community.
pub fn metas_by_name(h: &Hosted, names: &str) -> ApiResult<Vec<MetaId>> {
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| meta_by_name(h, n))
        .collect()
}

/// One meta-message by name (or by its byte written in decimal).
pub fn meta_by_name(h: &Hosted, name: &str) -> ApiResult<MetaId> {
    if let Some(m) = h.def.meta_by_name(name) {
        return Ok(m.id);
    }
    if let Ok(b) = name.parse::<u8>()
        && h.def.meta(MetaId(b)).is_some()
    {
        return Ok(MetaId(b));
    }
    let known: Vec<&str> = h.def.application_metas().map(|m| m.name.as_str()).collect();
    Err(ApiError::field(
        "meta",
        format!(
            "community has no message type {name:?} (it has {})",
            known.join(", ")
        ),
    ))
}

impl Listing {
    fn new(h: &Hosted, q: ListQuery) -> ApiResult<Listing> {
        let metas = match (&q.meta, q.builtin) {
            (Some(names), _) => Some(metas_by_name(h, names)?),
            (None, true) => None,
            (None, false) => Some(
                h.def
                    .application_metas()
                    .filter(|m| m.is_synced())
                    .map(|m| m.id)
                    .collect(),
            ),
        };
        let member = q
            .member
            .as_deref()
            .map(|m| parse_member("member", m))
            .transpose()?;
        let descending = match q.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => return Err(ApiError::field("order", format!("{o:?}: use asc or desc"))),
        };
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::field("limit", format!("use 1 to {MAX_LIMIT}")));
        }
        let low = GlobalTime(q.since.unwrap_or(1).max(1));
        let high = GlobalTime(q.until.unwrap_or(u64::MAX));
        if low > high {
            return Err(ApiError::field("since", "is after until"));
        }
        Ok(Listing {
            metas,
            member,
            low,
            high,
            descending,
            limit,
            cursor: q.cursor.as_deref().map(parse_cursor).transpose()?,
            undone: q.undone.unwrap_or(true),
        })
    }

    /// Runs on the node task: the page and each message's payload.
    fn run(&self, node: &Node, id: &CommunityId) -> ApiResult<(Vec<WithPayload>, Option<String>)> {
        if self.metas.as_ref().is_some_and(Vec::is_empty) {
            return Ok((Vec::new(), None));
        }
        let store = node.store();
        let (mut low, mut high) = (self.low, self.high);
        let mut ties = 0;
        if let Some((gt, _)) = self.cursor {
            if self.descending {
                high = high.min(gt);
            } else {
                low = low.max(gt);
            }
            ties = usize::try_from(store.count(id, self.metas.as_deref(), gt, gt)?)
                .unwrap_or(usize::MAX);
        }
        if low > high {
            return Ok((Vec::new(), None));
        }
        let fetch = self.limit.saturating_add(ties).saturating_add(1);
        let query = RangeQuery {
            metas: self.metas.clone(),
            member: self.member,
            low,
            high,
            modulo: 1,
            offset: 0,
            order: if self.descending {
                Order::Descending
            } else {
                Order::Ascending
            },
            limit: fetch,
        };
        let raw = store.range(id, &query)?;
        let truncated = raw.len() >= fetch;
        let mut page = Vec::new();
        let mut next = None;
        let mut last_seen = None;
        for m in raw {
            let key = (m.global_time, m.member);
            let before_cursor = self
                .cursor
                .is_some_and(|c| if self.descending { key >= c } else { key <= c });
            if before_cursor {
                continue;
            }
            if page.len() == self.limit {
                next = last_seen.take();
                break;
            }
            last_seen = Some(cursor_of(&m));
            if !self.undone && m.undone != Undone::No {
                continue;
            }
            let payload = payload_of(node, id, &m);
            page.push((m, payload));
        }
        if next.is_none() && truncated {
            next = last_seen;
        }
        Ok((page, next))
    }
}

/// The payload of a stored message (empty when it no longer parses).
pub fn payload_of(node: &Node, community: &CommunityId, m: &StoredMessage) -> Bytes {
    let Some(meta) = node.community(community).and_then(|d| d.meta(m.meta)) else {
        return Bytes::new();
    };
    let store = node.store();
    let lookup = |member: &MemberId| store.member(member).ok().flatten();
    Packet::parse(m.packet.clone(), &meta.layout(), &lookup)
        .map(|p| p.payload_bytes())
        .unwrap_or_default()
}

/// GET /api/v1/communities/{community}/messages
pub async fn list(
    State(state): State<AppState>,
    Path(community): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<MessagePage>> {
    let Query(q) = query?;
    let (id, h) = hosted(&state, &community)?;
    let listing = Listing::new(&h, q)?;
    let (page, next) = state
        .handle
        .call(move |node, _| listing.run(node, &id))
        .await??;
    Ok(Json(MessagePage {
        messages: page.iter().map(|(m, p)| h.stored_view(m, p)).collect(),
        next,
    }))
}

/// GET /api/v1/communities/{community}/messages/{member}/{global_time}
pub async fn get(
    State(state): State<AppState>,
    Path((community, member, global_time)): Path<(String, String, String)>,
) -> ApiResult<Json<MessageView>> {
    let (id, h) = hosted(&state, &community)?;
    let member = parse_member("member", &member)?;
    let global_time =
        GlobalTime(global_time.parse().map_err(|_| {
            ApiError::field("global_time", format!("{global_time:?} is not a number"))
        })?);
    let mid = MessageId {
        member,
        global_time,
    };
    let found = state
        .handle
        .call(move |node, _| -> ApiResult<_> {
            Ok(node.store().message(&id, &mid)?.map(|m| {
                let p = payload_of(node, &id, &m);
                (m, p)
            }))
        })
        .await??;
    let (m, p) = found.ok_or_else(|| {
        ApiError::NotFound(format!("no message {}:{} is stored", member, global_time.0))
    })?;
    Ok(Json(h.stored_view(&m, &p)))
}

/// How the content of a new message is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 text.
    #[default]
    Text,
    /// Hexadecimal.
    Hex,
    /// Standard base64.
    Base64,
}

/// One message to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Meta-message name.
    pub meta: String,
    /// The content.
    #[serde(default)]
    pub payload: String,
    /// How `payload` is written.
    #[serde(default)]
    pub encoding: Encoding,
}

/// Decodes the content and wraps it in the meta-message's payload layout.
fn encode(h: &Hosted, m: &NewMessage) -> ApiResult<(MetaId, Vec<u8>)> {
    let meta = meta_by_name(h, &m.meta)?;
    if meta.0 > dispersy::community::MAX_APPLICATION_BYTE {
        return Err(ApiError::field(
            "meta",
            format!("{:?} is a built-in; use its own endpoint", m.meta),
        ));
    }
    let content = match m.encoding {
        Encoding::Text => m.payload.as_bytes().to_vec(),
        Encoding::Hex => hex::decode(m.payload.trim())
            .map_err(|e| ApiError::field("payload", format!("not hexadecimal: {e}")))?,
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(m.payload.trim())
            .map_err(|e| ApiError::field("payload", format!("not base64: {e}")))?,
    };
    let payload = match h.layout(meta) {
        Some(layout) => layout
            .encode(&content)
            .map_err(|e| ApiError::field("payload", e))?,
        None => content,
    };
    Ok((meta, payload))
}

/// POST /api/v1/communities/{community}/messages — one message (an object) or a batch (an
/// array). The whole batch is checked before any message is created.
pub async fn create(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let (id, h) = hosted(&state, &community)?;
    let (batch, items): (bool, Vec<NewMessage>) = match body {
        serde_json::Value::Array(values) => {
            if values.is_empty() || values.len() > MAX_BATCH {
                return Err(ApiError::BadRequest(format!(
                    "a batch holds 1 to {MAX_BATCH} messages, not {}",
                    values.len()
                )));
            }
            let items = values
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value(v)
                        .map_err(|e| ApiError::BadRequest(format!("message {i}: {e}")))
                })
                .collect::<ApiResult<_>>()?;
            (true, items)
        }
        v @ serde_json::Value::Object(_) => (
            false,
            vec![serde_json::from_value(v).map_err(|e| ApiError::field("body", e))?],
        ),
        _ => {
            return Err(ApiError::field(
                "body",
                "send a message object or an array of them",
            ));
        }
    };
    let encoded = items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            encode(&h, m).map_err(|e| match e {
                ApiError::BadRequest(d) if batch => {
                    ApiError::BadRequest(format!("message {i}: {d}"))
                }
                other => other,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let delivered = state
        .handle
        .call(move |node, now| {
            let mut out = Vec::with_capacity(encoded.len());
            for (i, (meta, payload)) in encoded.into_iter().enumerate() {
                match node.create_message(now, id, meta, &payload, &[]) {
                    Ok(d) => out.push(d),
                    Err(e) => return Err((i, out.len(), e)),
                }
            }
            Ok(out)
        })
        .await?;
    let delivered = delivered.map_err(|(i, done, e)| {
        let mut err = ApiError::from(e);
        if batch {
            let prefix = format!("message {i} (the {done} before it were created): ");
            err = match err {
                ApiError::BadRequest(d) => ApiError::BadRequest(prefix + &d),
                ApiError::TooLarge(d) => ApiError::TooLarge(prefix + &d),
                ApiError::Forbidden(d) => ApiError::Forbidden(prefix + &d),
                other => other,
            };
        }
        err
    })?;
    let views: Vec<MessageView> = delivered.iter().map(|d| h.delivered_view(d)).collect();
    Ok(if batch {
        (StatusCode::CREATED, Json(Created { messages: views })).into_response()
    } else {
        let one = views
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Internal("created nothing".into()))?;
        (StatusCode::CREATED, Json(one)).into_response()
    })
}
