//! The REST API (axum): one table of routes from which both the router and the OpenAPI document
//! are built, so the document always lists exactly the routes that exist.
//!
//! Every request passes the access check first: when a token is required (the API listens
//! beyond loopback, or one is configured) it must come as `Authorization: Bearer <token>` or as
//! a `token` query parameter (for the dashboard's first load and its event stream; the parameter
//! is removed before routing). Without a token the API answers only requests whose `Host` is a
//! loopback name, so a web page cannot reach it through DNS rebinding.

pub mod communities;
pub mod error;
pub mod events;
pub mod messages;
pub mod openapi;
pub mod permissions;
pub mod stats;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use self::error::ApiError;
use super::dashboard;
use super::state::AppState;

/// Largest request body (a batch of messages).
pub const MAX_BODY: usize = 4 << 20;

/// A query parameter in the OpenAPI document.
#[derive(Debug)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// `string`, `integer` or `boolean`.
    pub kind: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// One route: how it is served and how it is documented.
#[derive(Debug)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{name}` captures.
    pub path: &'static str,
    /// Group in the document.
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Query parameters.
    pub query: &'static [Param],
    /// Schema of the JSON request body, if any.
    pub body: Option<&'static str>,
    /// Success status.
    pub status: u16,
    /// Schema of the success body (`None`: empty); `text/html` and `text/event-stream` name
    /// those media types.
    pub response: Option<&'static str>,
    /// The handler.
    pub handler: fn() -> MethodRouter<AppState>,
}

const fn p(name: &'static str, kind: &'static str, description: &'static str) -> Param {
    Param {
        name,
        kind,
        description,
    }
}

const C: &str = "/api/v1/communities/{community}";

/// Every route of the daemon.
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/",
        tag: "dashboard",
        summary: "The web dashboard (one page, assets inline)",
        query: &[],
        body: None,
        status: 200,
        response: Some("text/html"),
        handler: || get(dashboard::page),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/openapi.json",
        tag: "meta",
        summary: "This document",
        query: &[],
        body: None,
        status: 200,
        response: Some("OpenApi"),
        handler: || get(openapi::serve),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/node",
        tag: "node",
        summary: "Our identity, addresses, WAN address and connection type",
        query: &[],
        body: None,
        status: 200,
        response: Some("Node"),
        handler: || get(communities::node),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/communities",
        tag: "communities",
        summary: "The joined communities",
        query: &[],
        body: None,
        status: 200,
        response: Some("CommunityList"),
        handler: || get(communities::list),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities",
        tag: "communities",
        summary: "Found a new community from a description (this node holds its master key)",
        query: &[],
        body: Some("SpecBody"),
        status: 201,
        response: Some("Community"),
        handler: || post(communities::create),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities/join",
        tag: "communities",
        summary: "Join an existing community from a description naming its master key or id",
        query: &[],
        body: Some("SpecBody"),
        status: 201,
        response: Some("Community"),
        handler: || post(communities::join),
    },
    Route {
        method: Method::GET,
        path: C,
        tag: "communities",
        summary: "One community, with its description",
        query: &[],
        body: None,
        status: 200,
        response: Some("Community"),
        handler: || get(communities::get),
    },
    Route {
        method: Method::DELETE,
        path: C,
        tag: "communities",
        summary: "Leave a community (it is not joined again at the next start)",
        query: &[p("forget", "boolean", "also delete its stored messages")],
        body: None,
        status: 204,
        response: None,
        handler: || delete(communities::leave),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/communities/{community}/candidates",
        tag: "candidates",
        summary: "Candidates of a community with their categories and addresses",
        query: &[],
        body: None,
        status: 200,
        response: Some("CandidateList"),
        handler: || get(communities::candidates),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities/{community}/candidates",
        tag: "candidates",
        summary: "Add a peer address to a community (bootstrap by hand)",
        query: &[],
        body: Some("AddCandidate"),
        status: 204,
        response: None,
        handler: || post(communities::add_candidate),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/communities/{community}/messages",
        tag: "messages",
        summary: "Stored messages, filtered, paginated by global time",
        query: &[
            p(
                "meta",
                "string",
                "meta-message names, comma-separated (default: the application's)",
            ),
            p("member", "string", "only this author (member id, hex)"),
            p("since", "integer", "lowest global time, inclusive"),
            p("until", "integer", "highest global time, inclusive"),
            p("order", "string", "asc (default) or desc"),
            p("limit", "integer", "page size, 1-1000 (default 100)"),
            p("cursor", "string", "the next of the previous page"),
            p(
                "builtin",
                "boolean",
                "include built-in meta-messages when meta is not given",
            ),
            p(
                "undone",
                "boolean",
                "include undone messages (default true)",
            ),
        ],
        body: None,
        status: 200,
        response: Some("MessagePage"),
        handler: || get(messages::list),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities/{community}/messages",
        tag: "messages",
        summary: "Create one message (an object; answers the message) or a batch (an array; \
                  answers {messages})",
        query: &[],
        body: Some("NewMessages"),
        status: 201,
        response: Some("CreatedMessages"),
        handler: || post(messages::create),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/communities/{community}/messages/{member}/{global_time}",
        tag: "messages",
        summary: "One stored message by author and global time",
        query: &[],
        body: None,
        status: 200,
        response: Some("Message"),
        handler: || get(messages::get),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/communities/{community}/members/{member}/permissions",
        tag: "permissions",
        summary: "What a member may do now, per meta-message",
        query: &[],
        body: None,
        status: 200,
        response: Some("MemberPermissions"),
        handler: || get(permissions::member),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities/{community}/authorize",
        tag: "permissions",
        summary: "Grant permissions to a member",
        query: &[],
        body: Some("Grants"),
        status: 201,
        response: Some("Message"),
        handler: || post(permissions::authorize),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities/{community}/revoke",
        tag: "permissions",
        summary: "Revoke permissions of a member",
        query: &[],
        body: Some("Grants"),
        status: 201,
        response: Some("Message"),
        handler: || post(permissions::revoke),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities/{community}/undo",
        tag: "permissions",
        summary: "Undo a message (our own, or another's with the undo permission)",
        query: &[],
        body: Some("Undo"),
        status: 201,
        response: Some("Message"),
        handler: || post(permissions::undo),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/communities/{community}/destroy",
        tag: "permissions",
        summary: "Destroy the community (soft: keep history; hard: remove everything)",
        query: &[],
        body: Some("Destroy"),
        status: 201,
        response: Some("Message"),
        handler: || post(permissions::destroy),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/stats",
        tag: "statistics",
        summary: "Packets and bytes per message type, drops by reason, driver counters, sync \
                  progress",
        query: &[],
        body: None,
        status: 200,
        response: Some("Stats"),
        handler: || get(stats::node),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/stats/history",
        tag: "statistics",
        summary: "Traffic totals sampled every 5 s over the last hour",
        query: &[],
        body: None,
        status: 200,
        response: Some("History"),
        handler: || get(stats::history),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/communities/{community}/stats",
        tag: "statistics",
        summary: "One community's counters and sync progress",
        query: &[],
        body: None,
        status: 200,
        response: Some("CommunityStats"),
        handler: || get(stats::community),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/events",
        tag: "events",
        summary: "Server-sent events: message, undone, redone, peer, destroyed (and lagged)",
        query: &[
            p("community", "string", "only this community"),
            p(
                "types",
                "string",
                "event types, comma-separated (default: all)",
            ),
        ],
        body: None,
        status: 200,
        response: Some("text/event-stream"),
        handler: || get(events::stream),
    },
];

/// The router: every route of [`ROUTES`], JSON answers for unknown paths and methods, the body
/// limit, and the access check.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for r in ROUTES {
        if r.path == "/" && !state.dashboard {
            continue;
        }
        router = router.route(r.path, (r.handler)());
    }
    router
        .fallback(|| async {
            ApiError::NotFound("no such endpoint (see /api/v1/openapi.json)".into())
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), access))
        .with_state(state)
}

/// Compares tokens in constant time (over their hashes, so the length leaks nothing either).
pub fn tokens_equal(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// Whether a `Host` header names this machine's loopback (`localhost`, `127.x.y.z`, `[::1]`).
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Removes the `token` parameter from a query, returning it (percent-decoded) and the rest.
fn take_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("token=") {
            Some(v) => {
                token = Some(percent_decode(v));
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    (token, rest.join("&"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn access(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let (query_token, rest) = take_token(req.uri().query().unwrap_or(""));
    match &state.token {
        Some(expected) => {
            let header_token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let ok = header_token
                .or(query_token.as_deref())
                .is_some_and(|t| tokens_equal(t, expected));
            if !ok {
                return ApiError::Unauthorized.into_response();
            }
        }
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            if !is_loopback_host(host) {
                return ApiError::Forbidden(format!(
                    "Host {host:?} is not a loopback name; without a token this API answers \
                     only localhost, 127.0.0.1 and [::1]"
                ))
                .into_response();
            }
        }
    }
    if query_token.is_some() {
        let path = req.uri().path();
        let pq = if rest.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{rest}")
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("", "abc"));
    }

    #[test]
    fn token_parameter_is_taken_out() {
        assert_eq!(
            take_token("a=1&token=x%2By&b=2"),
            (Some("x+y".into()), "a=1&b=2".into())
        );
        assert_eq!(take_token("token=abc"), (Some("abc".into()), String::new()));
        assert_eq!(take_token("a=1"), (None, "a=1".into()));
        assert_eq!(take_token(""), (None, String::new()));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:7760",
            "127.0.0.1:1",
            "127.9.9.9",
            "[::1]:7760",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "",
            "evil.example",
            "evil.example:7760",
            "10.0.0.1:7760",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
