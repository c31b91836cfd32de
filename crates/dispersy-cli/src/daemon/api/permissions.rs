//! Permissions: authorize, revoke, undo, destroy, and what a member holds.
//!
//! Requests are validated in full here; the node carries them out once it has its permission
//! commands (until then the answer is `501 not-implemented` after validation).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dispersy::ids::{GlobalTime, MemberId, MessageId, MetaId};
use dispersy::wire::builtin::{DestroyKind, Permissions};
use serde::{Deserialize, Serialize};

use super::communities::{hosted, parse_member};
use super::error::{ApiError, ApiResult};
use super::messages::meta_by_name;
use crate::daemon::state::{AppState, Hosted};
use crate::daemon::views::{MemberPermissions, PermissionView};

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

fn not_yet(what: &str) -> ApiError {
    ApiError::NotImplemented(format!(
        "{what} is not available yet: the node gains its permission commands with the \
         permission timeline"
    ))
}

/// POST /api/v1/communities/{community}/authorize
pub async fn authorize(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<GrantBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(body) = body?;
    let (_, h) = hosted(&state, &community)?;
    let _grants = parse_grants(&h, body)?;
    Err(not_yet("authorize"))
}

/// POST /api/v1/communities/{community}/revoke
pub async fn revoke(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<GrantBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(body) = body?;
    let (_, h) = hosted(&state, &community)?;
    let _grants = parse_grants(&h, body)?;
    Err(not_yet("revoke"))
}

/// POST /api/v1/communities/{community}/undo
pub async fn undo(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<UndoBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(body) = body?;
    let (id, _) = hosted(&state, &community)?;
    let target = MessageId {
        member: parse_member("member", &body.member)?,
        global_time: GlobalTime(body.global_time),
    };
    let stored = state
        .handle
        .call(move |node, _| node.store().message(&id, &target))
        .await??;
    if stored.is_none() {
        return Err(ApiError::NotFound(format!(
            "no message {}:{} is stored",
            target.member, target.global_time.0
        )));
    }
    Err(not_yet("undo"))
}

/// POST /api/v1/communities/{community}/destroy
pub async fn destroy(
    State(state): State<AppState>,
    Path(community): Path<String>,
    body: Result<Json<DestroyBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(body) = body?;
    let (_, _) = hosted(&state, &community)?;
    let _kind = match body.kind.as_str() {
        "soft" => DestroyKind::Soft,
        "hard" => DestroyKind::Hard,
        other => {
            return Err(ApiError::field(
                "kind",
                format!("{other:?}: use soft or hard"),
            ));
        }
    };
    Err(not_yet("destroy"))
}

/// GET /api/v1/communities/{community}/members/{member}/permissions
pub async fn member(
    State(state): State<AppState>,
    Path((community, member)): Path<(String, String)>,
) -> ApiResult<Json<MemberPermissions>> {
    let (id, h) = hosted(&state, &community)?;
    let member = parse_member("member", &member)?;
    let master = MemberId(id.0) == member;
    if !master {
        return Err(not_yet("the permissions of a member"));
    }
    let global_time = state
        .handle
        .call(move |node, _| node.global_time(&id))
        .await?
        .map_or(0, |g| g.0);
    Ok(Json(MemberPermissions {
        community: id.to_hex(),
        member: member.to_hex(),
        master,
        global_time,
        permissions: h
            .def
            .metas()
            .map(|m| PermissionView {
                meta: m.name.clone(),
                permit: true,
                authorize: true,
                revoke: true,
                undo: true,
            })
            .collect(),
    }))
}
