//! Joining, founding and leaving communities, and hosting again at start what the store holds.

use dispersy::community::spec::CommunitySpec;
use dispersy::crypto::PrivateKey;
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

/// Founds a new community: a fresh master key (kept in the data directory), then joins it.
pub async fn create(state: &AppState, mut spec: CommunitySpec) -> ApiResult<CommunityId> {
    if spec.master_key.is_some() || spec.community.is_some() {
        return Err(ApiError::field(
            "spec",
            "a new community gets a new master key: leave out master-key and community \
             (to join an existing one, POST /api/v1/communities/join)",
        ));
    }
    let master = PrivateKey::generate(&mut rand::rngs::OsRng);
    spec.master_key = Some(hex::encode(master.public().to_bin()));
    let id = spec
        .community_id()
        .map_err(|e| ApiError::field("spec", e))?;
    spec.to_definition()
        .map_err(|e| ApiError::field("spec", e))?;
    state
        .data
        .save_master_key(&id, &master)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    host(state, spec, true).await?;
    Ok(id)
}

async fn host(state: &AppState, spec: CommunitySpec, founder: bool) -> ApiResult<()> {
    let for_node = spec.clone();
    let (result, def) = state
        .handle
        .call(move |node, now| {
            let r = node.join_spec(now, &for_node);
            let id = for_node.community_id().ok();
            (r, id.and_then(|id| node.community(&id).cloned()))
        })
        .await?;
    result?;
    let def = def.ok_or_else(|| ApiError::Internal("joined community vanished".into()))?;
    let id = def.id();
    state
        .data
        .set_left(id, false)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    state.set_hosted(
        id,
        Some(Hosted {
            def,
            spec: Some(spec),
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
