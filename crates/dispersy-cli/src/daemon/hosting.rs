//! Joining, founding and leaving communities, and hosting again at start what the store holds.

use dispersy::community::spec::CommunitySpec;
use dispersy::ids::CommunityId;
use dispersy::node::CommandError;

use super::api::error::{ApiError, ApiResult};
use super::state::{AppState, Hosted};

/// Joins an existing community described by `spec` (which names its master key or id).
pub async fn join(state: &AppState, spec: CommunitySpec) -> ApiResult<CommunityId> {
    if spec.master_key.is_none() && spec.community.is_none() {
        return Err(ApiError::field(
            "spec",
            "give master-key or community to join; to found a new community, \
             POST /api/v1/communities",
        ));
    }
    let def = spec
        .to_definition()
        .map_err(|e| ApiError::field("spec", e))?;
    let id = def.id();
    let founder = state
        .data
        .master_key_of(&id)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .is_some();
    host(state, spec, founder).await?;
    Ok(id)
}

/// Founds a new community: the node generates the master key, joins, and the master grants our
/// member the founder's permissions; the master key is kept in the data directory (mode 0600)
/// and given back to the node at every start.
pub async fn create(state: &AppState, spec: CommunitySpec) -> ApiResult<CommunityId> {
    if spec.master_key.is_some() || spec.community.is_some() {
        return Err(ApiError::field(
            "spec",
            "a new community gets a new master key: leave out master-key and community \
             (to join an existing one, POST /api/v1/communities/join)",
        ));
    }
    let (result, def) = state
        .handle
        .call(move |node, now| {
            let r = node.found_spec(now, &spec);
            let def = r
                .as_ref()
                .ok()
                .and_then(|(_, f)| node.community(&f.community).cloned());
            (r, def)
        })
        .await?;
    let (spec, founded) = result.map_err(|e| match e {
        CommandError::Invalid(d) => ApiError::field("spec", d),
        other => other.into(),
    })?;
    let id = founded.community;
    if let Err(e) = state.data.save_master_key(&id, &founded.master) {
        // Without its master key saved the community could not be managed after a restart.
        let _ = state
            .handle
            .call(move |node, _| node.leave(&id, true))
            .await;
        return Err(ApiError::Internal(e.to_string()));
    }
    let def = def.ok_or_else(|| ApiError::Internal("founded community vanished".into()))?;
    remember(state, id, def, spec, true)?;
    Ok(id)
}

async fn host(state: &AppState, spec: CommunitySpec, founder: bool) -> ApiResult<()> {
    let for_node = spec.clone();
    let master = match spec.community_id() {
        Ok(id) if founder => state
            .data
            .master_key_of(&id)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        _ => None,
    };
    let (result, def) = state
        .handle
        .call(move |node, now| {
            let r = node.join_spec(now, &for_node).and_then(|()| {
                let id = for_node
                    .community_id()
                    .map_err(|e| CommandError::Invalid(e.to_string()))?;
                if let Some(key) = master {
                    node.set_master_key(&id, key)?;
                }
                Ok(id)
            });
            let def = r.as_ref().ok().and_then(|id| node.community(id).cloned());
            (r, def)
        })
        .await?;
    let id = result?;
    let def = def.ok_or_else(|| ApiError::Internal("joined community vanished".into()))?;
    remember(state, id, def, spec, founder)
}

fn remember(
    state: &AppState,
    id: CommunityId,
    def: std::sync::Arc<dispersy::community::Definition>,
    spec: CommunitySpec,
    founder: bool,
) -> ApiResult<()> {
    state
        .data
        .set_left(id, false)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    state.set_hosted(
        id,
        Some(Hosted {
            def,
            spec: Some(std::sync::Arc::new(spec)),
            founder,
        }),
    );
    tracing::info!(community = %id, founder, "hosting community");
    Ok(())
}

/// Leaves a community; `forget` also deletes its messages. It is not joined again at start.
pub async fn leave(state: &AppState, id: CommunityId, forget: bool) -> ApiResult<()> {
    let was = state
        .handle
        .call(move |node, _| node.leave(&id, forget))
        .await??;
    if !was {
        return Err(CommandError::UnknownCommunity(id).into());
    }
    state.set_hosted(id, None);
    state
        .data
        .set_left(id, true)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(community = %id, forget, "left community");
    Ok(())
}

/// Hosts the configured communities, then every community recorded in the store that was not
/// left through the API. Returns how many communities are hosted.
pub async fn rejoin(state: &AppState, configured: Vec<CommunitySpec>) -> Result<usize, String> {
    for spec in configured {
        let name = spec.name.clone();
        match join(state, spec).await {
            Ok(_) | Err(ApiError::Conflict(_)) => {}
            Err(e) => return Err(format!("community {name:?}: {e}")),
        }
    }
    let left = state.data.left_communities().map_err(|e| e.to_string())?;
    let records = state
        .handle
        .call(|node, _| node.store().communities())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    for record in records {
        if left.contains(&record.id) || state.hosted(&record.id).is_some() {
            continue;
        }
        let Some(text) = &record.spec else {
            tracing::info!(community = %record.id, kind = %record.kind,
                "not hosting a stored community defined in code");
            continue;
        };
        let spec = match CommunitySpec::from_toml(text) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(community = %record.id, error = %e, "stored description is invalid");
                continue;
            }
        };
        if let Err(e) = join(state, spec).await {
            tracing::warn!(community = %record.id, error = %e, "cannot host stored community");
        }
    }
    Ok(state.all_hosted().len())
}
