//! Permissions: authorize, revoke, undo, destroy, and what a member holds.
//!
//! Each request is validated here (member ids, message types, permission names) and carried out
//! by the node's permission commands, which check the timeline and answer `403` naming what is
//! missing. The answer is the authorize, revoke, undo or destroy message, as stored.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId};
use dispersy::node::CommandError;
use dispersy::wire::builtin::{DestroyKind, Permissions};
use serde::{Deserialize, Serialize};

use super::communities::{hosted, parse_member};
use super::error::{ApiError, ApiResult};
use super::messages::{meta_by_name, payload_of};
use crate::daemon::state::{AppState, Hosted};
use crate::daemon::views::{MemberPermissions, MessageView, PermissionView};

/// Permission names accepted in requests.
pub const PERMISSION_NAMES: [&str; 4] = ["permit", "authorize", "revoke", "undo"];

/// Permissions on one meta-message, in a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// Meta-message name.
    pub meta: String,
    /// Any of `permit`, `authorize`, `revoke`, `undo`.
    pub permissions: Vec<String>,
}

/// Body of `authorize` and `revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// The member (hex id).
    pub member: String,
    /// What to grant or revoke.
    pub grants: Vec<GrantInput>,
}

/// Body of `undo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndoBody {
    /// The message's author (hex id).
    pub member: String,
    /// The message's global time.
    pub global_time: u64,
}

/// Body of `destroy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestroyBody {
    /// `soft` (keep history, accept nothing new) or `hard` (remove everything).
    pub kind: String,
}

/// A validated grant or revoke.
#[derive(Debug, Clone)]
pub struct Grants {
    /// The member.
    pub member: MemberId,
    /// Per meta-message.
    pub grants: Vec<(MetaId, Permissions)>,
}

fn parse_permissions(names: &[String]) -> ApiResult<Permissions> {
    let mut bits = 0u8;
    for n in names {
        bits |= match n.as_str() {
            "permit" => Permissions::PERMIT.0,
            "authorize" => Permissions::AUTHORIZE.0,
            "revoke" => Permissions::REVOKE.0,
            "undo" => Permissions::UNDO.0,
            other => {
                return Err(ApiError::field(
                    "permissions",
                    format!("{other:?}: use {}", PERMISSION_NAMES.join(", ")),
                ));
            }
        };
    }
    if bits == 0 {
        return Err(ApiError::field("permissions", "name at least one"));
    }
    Ok(Permissions(bits))
}

fn parse_grants(h: &Hosted, body: GrantBody) -> ApiResult<Grants> {
    let member = parse_member("member", &body.member)?;
    if body.grants.is_empty() {
        return Err(ApiError::field("grants", "name at least one meta-message"));
    }
    let grants = body
        .grants
        .iter()
        .map(|g| {
            Ok((
                meta_by_name(h, &g.meta)?,
                parse_permissions(&g.permissions)?,
            ))
        })
        .collect::<ApiResult<_>>()?;
    Ok(Grants { member, grants })
}

/// A permission command's answer: the message it created, as stored.
async fn created(
    state: &AppState,
    h: &Hosted,
    id: CommunityId,
    made: Result<MessageId, CommandError>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let mid = made?;
    let found = state
        .handle
        .call(move |node, _| -> ApiResult<_> {
            Ok(node.store().message(&id, &mid)?.map(|m| {
                let p = payload_of(node, &id, &m);
                (m, p)
            }))
        })
        .await??;
    let (m, p) = found.ok_or_else(|| ApiError::Internal(format!("{mid:?} was not stored")))?;
    Ok((StatusCode::CREATED, Json(h.stored_view(&m, &p))))
}

async fn grant(
    state: AppState,
    community: String,
    body: GrantBody,
    revoke: bool,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let (id, h) = hosted(&state, &community)?;
    let g = parse_grants(&h, body)?;
    let made = state
        .handle
        .call(move |node, now| -> ApiResult<_> {
            let key = node.store().member(&g.member)?.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "the key of member {} is unknown here (it has not been seen in a community \
                     this node hosts)",
                    g.member
                ))
            })?;
            Ok(if revoke {
                node.revoke(now, id, &key, &g.grants)
            } else {
                node.authorize(now, id, &key, &g.grants)
            })
        })
        .await??;
    created(&state, &h, id, made).await
}

/// POST /api/v1/communities/{community}/authorize
pub async fn authorize(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<GrantBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let Json(body) = body?;
    grant(state, community, body, false).await
}

/// POST /api/v1/communities/{community}/revoke
pub async fn revoke(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<GrantBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let Json(body) = body?;
    grant(state, community, body, true).await
}

/// POST /api/v1/communities/{community}/undo
pub async fn undo(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<UndoBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let Json(body) = body?;
    let (id, h) = hosted(&state, &community)?;
    let target = MessageId {
        member: parse_member("member", &body.member)?,
        global_time: GlobalTime(body.global_time),
    };
    let made = state
        .handle
        .call(move |node, now| -> ApiResult<_> {
            if node.store().message(&id, &target)?.is_none() {
                return Err(ApiError::NotFound(format!(
                    "no message {}:{} is stored",
                    target.member, target.global_time.0
                )));
            }
            Ok(node.undo(now, id, target))
        })
        .await??;
    created(&state, &h, id, made).await
}

/// POST /api/v1/communities/{community}/destroy
pub async fn destroy(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<DestroyBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let Json(body) = body?;
    let (id, h) = hosted(&state, &community)?;
    let kind = match body.kind.as_str() {
        "soft" => DestroyKind::Soft,
        "hard" => DestroyKind::Hard,
        other => {
            return Err(ApiError::field(
                "kind",
                format!("{other:?}: use soft or hard"),
            ));
        }
    };
    let made = state
        .handle
        .call(move |node, now| node.destroy(now, id, kind))
        .await?;
    created(&state, &h, id, made).await
}

/// GET /api/v1/communities/{community}/members/{member}/permissions
pub async fn member(
    State(state): State<AppState>,
    Path((community, member)): Path<(String, String)>,
) -> ApiResult<Json<MemberPermissions>> {
    let (id, h) = hosted(&state, &community)?;
    let member = parse_member("member", &member)?;
    let master = MemberId(id.0) == member;
    let (global_time, held) = state
        .handle
        .call(move |node, _| {
            let gt = node.global_time(&id).unwrap_or(GlobalTime::ZERO);
            (gt, node.permissions(&id, &member, gt).unwrap_or_default())
        })
        .await?;
    let view = |meta: MetaId, bits: Permissions| PermissionView {
        meta: h.type_name(meta.0),
        permit: bits.contains(Permissions::PERMIT),
        authorize: bits.contains(Permissions::AUTHORIZE),
        revoke: bits.contains(Permissions::REVOKE),
        undo: bits.contains(Permissions::UNDO),
    };
    // Every application meta-message, then the built-ins the member holds something on.
    let mut permissions: Vec<PermissionView> = h
        .def
        .application_metas()
        .map(|m| view(m.id, held.get(&m.id).copied().unwrap_or_default()))
        .collect();
    permissions.extend(
        held.iter()
            .filter(|(m, _)| m.0 > dispersy::community::MAX_APPLICATION_BYTE)
            .map(|(m, b)| view(*m, *b)),
    );
    Ok(Json(MemberPermissions {
        community: id.to_hex(),
        member: member.to_hex(),
        master,
        global_time: global_time.0,
        permissions,
    }))
}
