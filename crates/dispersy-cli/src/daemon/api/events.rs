//! `GET /api/v1/events`: a server-sent-events stream of new messages, undos and peer changes.
//!
//! Each SSE event is named by its type (`message`, `undone`, `redone`, `peer`, `destroyed`) and
//! carries a JSON object. A client that reads too slowly loses the oldest events and is told so
//! by a `lagged` event with the number it missed. The stream starts with a `ready` event and
//! ends when the daemon stops. At most [`MAX_STREAMS`] streams are open at once (each holds a
//! bounded buffer of events); more are refused with `429 too-many`.

use std::collections::BTreeSet;
use std::convert::Infallible;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event as Sse_, KeepAlive, Sse};
use dispersy::ids::CommunityId;
use dispersy::node::Event;
use dispersy::wire::builtin::DestroyKind;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::communities::parse_community;
use super::error::{ApiError, ApiResult};
use crate::daemon::state::{AppState, MAX_STREAMS, StreamSlot, message_id};

/// Event types a client may ask for.
pub const EVENT_TYPES: [&str; 5] = ["message", "undone", "redone", "peer", "destroyed"];

/// Query of `GET /events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this community.
    community: Option<String>,
    /// Comma-separated event types (default: all).
    types: Option<String>,
}

#[derive(Debug, Clone)]
struct Filter {
    community: Option<CommunityId>,
    types: BTreeSet<&'static str>,
}

impl Filter {
    fn new(q: EventsQuery) -> ApiResult<Filter> {
        let community = q.community.as_deref().map(parse_community).transpose()?;
        let types = match q.types.as_deref() {
            None => EVENT_TYPES.into_iter().collect(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    EVENT_TYPES.into_iter().find(|k| *k == t).ok_or_else(|| {
                        ApiError::field("types", format!("{t:?}: use {}", EVENT_TYPES.join(", ")))
                    })
                })
                .collect::<ApiResult<_>>()?,
        };
        Ok(Filter { community, types })
    }
}

/// The SSE name and JSON body of a node event, `None` when filtered out or not exposed.
fn render(state: &AppState, filter: &Filter, event: &Event) -> Option<(&'static str, String)> {
    let (kind, community, body) = match event {
        Event::Message(m) => {
            let h = state.hosted(&m.community)?;
            let view = h.delivered_view(m);
            ("message", m.community, serde_json::to_value(view).ok()?)
        }
        Event::Undone {
            community,
            message,
            meta,
            by,
        } => (
            "undone",
            *community,
            json!({
                "community": community.to_hex(),
                "id": message_id(message),
                "meta": state.hosted(community).map_or_else(|| meta.0.to_string(), |h| h.type_name(meta.0)),
                "by": by.as_ref().map(message_id),
            }),
        ),
        Event::Redone {
            community,
            message,
            meta,
        } => (
            "redone",
            *community,
            json!({
                "community": community.to_hex(),
                "id": message_id(message),
                "meta": state.hosted(community).map_or_else(|| meta.0.to_string(), |h| h.type_name(meta.0)),
            }),
        ),
        Event::PeerChanged {
            community,
            address,
            member,
            category,
        } => (
            "peer",
            *community,
            json!({
                "community": community.to_hex(),
                "address": address,
                "member": member.map(|m| m.to_hex()),
                "category": category,
            }),
        ),
        Event::Destroyed {
            community,
            kind,
            by,
        } => (
            "destroyed",
            *community,
            json!({
                "community": community.to_hex(),
                "kind": match kind { DestroyKind::Soft => "soft", DestroyKind::Hard => "hard" },
                "by": message_id(by),
            }),
        ),
        Event::SignatureRequested { .. } | Event::SignatureCompleted { .. } => return None,
    };
    if !filter.types.contains(kind) || filter.community.is_some_and(|c| c != community) {
        return None;
    }
    Some((kind, body.to_string()))
}

/// GET /api/v1/events
pub async fn stream(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<Sse_, Infallible>>>> {
    let Query(q) = query?;
    let filter = Filter::new(q)?;
    if let Some(c) = filter.community
        && state.hosted(&c).is_none()
    {
        return Err(ApiError::NotFound(format!(
            "this node does not host community {c}"
        )));
    }
    let slot = StreamSlot::take(&state).ok_or_else(|| {
        ApiError::TooMany(format!(
            "{MAX_STREAMS} event streams are open; close one first"
        ))
    })?;
    let ready = Sse_::default()
        .event("ready")
        .data(json!({ "types": filter.types }).to_string());
    let stopped = state.stopped();
    let events = BroadcastStream::new(state.handle.subscribe()).filter_map(move |item| {
        // The slot lives as long as the stream.
        let _slot = &slot;
        let out = match item {
            Ok(e) => render(&state, &filter, &e)
                .map(|(kind, data)| Sse_::default().event(kind).data(data)),
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(
                Sse_::default()
                    .event("lagged")
                    .data(json!({ "missed": n }).to_string()),
            ),
        };
        std::future::ready(out)
    });
    let stream = futures::stream::once(std::future::ready(ready))
        .chain(events)
        .take_until(stopped)
        .map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
