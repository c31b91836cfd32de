//! Statistics: traffic per message type, drops by reason, sync progress, history.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use dispersy::ids::{CommunityId, MetaId};

use super::communities::{hosted, live, sync_view};
use super::error::ApiResult;
use crate::daemon::state::{AppState, HISTORY_INTERVAL, counters_view, node_type_name};
use crate::daemon::views::{CommunityStatsView, History, StatsView};

/// GET /api/v1/stats
pub async fn node(State(state): State<AppState>) -> ApiResult<Json<StatsView>> {
    let hosted = state.all_hosted();
    let ids: Vec<CommunityId> = hosted.keys().copied().collect();
    // Application bytes are named after the hosted communities when they agree on the name.
    let name = |b: u8| {
        let names: std::collections::BTreeSet<String> = hosted
            .values()
            .filter_map(|h| h.def.meta(MetaId(b)).map(|m| m.name.clone()))
            .collect();
        match (names.len(), names.into_iter().next()) {
            (1, Some(n)) => n,
            _ => node_type_name(b),
        }
    };
    let (counters, lives) = state
        .handle
        .call(move |node, _| {
            (
                node.stats().clone(),
                ids.iter()
                    .map(|id| (*id, live(node, id)))
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    let driver = match serde_json::to_value(state.handle.metrics()) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_u64().map(|v| (k, v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(Json(StatsView {
        node: counters_view(&counters, name),
        driver,
        sync: lives
            .iter()
            .map(|(id, l)| (id.to_hex(), sync_view(l)))
            .collect(),
    }))
}

/// GET /api/v1/communities/{community}/stats
pub async fn community(
    State(state): State<AppState>,
    Path(community): Path<String>,
) -> ApiResult<Json<CommunityStatsView>> {
    let (id, h) = hosted(&state, &community)?;
    let (counters, l) = state
        .handle
        .call(move |node, _| {
            (
                node.community_stats(&id).cloned().unwrap_or_default(),
                live(node, &id),
            )
        })
        .await?;
    Ok(Json(CommunityStatsView {
        community: id.to_hex(),
        counters: counters_view(&counters, |b| h.type_name(b)),
        sync: sync_view(&l),
        delayed: l.delayed,
    }))
}

/// GET /api/v1/stats/history
pub async fn history(State(state): State<AppState>) -> Json<History> {
    Json(History {
        interval_secs: HISTORY_INTERVAL.as_secs(),
        samples: state.history(),
    })
}
