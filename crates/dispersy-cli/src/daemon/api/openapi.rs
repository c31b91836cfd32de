//! The OpenAPI 3.1 document, built from the route table and the schemas below.

use std::sync::OnceLock;

use axum::Json;
use axum::http::Method;
use serde_json::{Map, Value, json};

use super::{ROUTES, Route};

/// GET /api/v1/openapi.json
pub async fn serve() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document).clone())
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn operation(r: &Route) -> Value {
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "schema": { "type": if name == "global_time" { "integer" } else { "string" } },
            })
        })
        .collect();
    params.extend(r.query.iter().map(|q| {
        json!({
            "name": q.name, "in": "query", "required": false,
            "description": q.description, "schema": { "type": q.kind },
        })
    }));
    let ok = match r.response {
        None => json!({ "description": "done" }),
        Some(media @ ("text/html" | "text/event-stream")) => json!({
            "description": "ok", "content": { media: { "schema": { "type": "string" } } },
        }),
        Some(schema) => json!({
            "description": "ok",
            "content": { "application/json": { "schema": schema_ref(schema) } },
        }),
    };
    let error = json!({
        "description": "error",
        "content": { "application/json": { "schema": schema_ref("Error") } },
    });
    let mut op = json!({
        "tags": [r.tag],
        "summary": r.summary,
        "operationId": operation_id(r),
        "parameters": params,
        "responses": { r.status.to_string(): ok, "4XX": error.clone(), "5XX": error },
    });
    if let (Some(body), Some(map)) = (r.body, op.as_object_mut()) {
        map.insert(
            "requestBody".into(),
            json!({ "required": true,
                    "content": { "application/json": { "schema": schema_ref(body) } } }),
        );
    }
    op
}

fn operation_id(r: &Route) -> String {
    let mut id = r.method.as_str().to_ascii_lowercase();
    for seg in r
        .path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
    {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.push_str(&seg.replace(['.', '-'], "_"));
    }
    if r.path == "/" {
        id.push_str("_dashboard");
    }
    id
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(map) = entry.as_object_mut() {
            map.insert(r.method.as_str().to_ascii_lowercase(), operation(r));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dispersy node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Drive a dispersy node: communities, candidates, messages, \
                permissions, statistics and live events. Beyond loopback every request needs \
                `Authorization: Bearer <token>` (or `?token=`). See docs/rest-api.md.",
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        },
        "security": [ {}, { "bearer": [] } ],
        "paths": paths,
    })
}

/// Whether the document has an operation for this method and path.
pub fn documents(doc: &Value, method: &Method, path: &str) -> bool {
    doc["paths"][path][method.as_str().to_ascii_lowercase()].is_object()
}

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

fn schemas() -> Value {
    let s = json!({ "type": "string" });
    let so = json!({ "type": ["string", "null"] });
    let i = json!({ "type": "integer", "minimum": 0 });
    let io = json!({ "type": ["integer", "null"], "minimum": 0 });
    let b = json!({ "type": "boolean" });
    let traffic = obj(&["packets", "bytes"], json!({ "packets": i, "bytes": i }));
    let counts = json!({ "type": "object", "additionalProperties": i });
    let sync = obj(
        &[
            "held",
            "estimate",
            "fraction",
            "peers",
            "estimated",
            "catching_up",
            "reconciling",
            "peer_global_time",
            "extension_peers",
        ],
        json!({ "held": i, "estimate": i, "fraction": { "type": "number" }, "peers": i,
                "estimated": b, "catching_up": b, "reconciling": b, "peer_global_time": i,
                "extension_peers": i }),
    );
    let meta = obj(
        &[
            "name",
            "byte",
            "distribution",
            "resolution",
            "payload",
            "undoable",
            "builtin",
        ],
        json!({ "name": s, "byte": i, "distribution": { "enum": ["direct", "full-sync", "last-sync"] },
                "resolution": { "enum": ["public", "linear", "dynamic"] }, "payload": so,
                "undoable": b, "builtin": b }),
    );
    let community = obj(
        &[
            "id",
            "name",
            "founder",
            "master_key",
            "global_time",
            "messages",
            "candidates",
            "delayed",
            "sync",
            "metas",
        ],
        json!({ "id": s, "name": s, "founder": b, "master_key": so, "global_time": i,
                "messages": i, "candidates": i, "delayed": i, "sync": schema_ref("Sync"),
                "metas": { "type": "array", "items": meta }, "spec": s }),
    );
    let message = obj(
        &[
            "community",
            "id",
            "meta",
            "byte",
            "member",
            "global_time",
            "sequence",
            "text",
            "base64",
            "undone",
            "size",
        ],
        json!({ "community": s, "id": so, "meta": s, "byte": i, "member": so,
                "global_time": i, "sequence": io, "text": so, "base64": s, "undone": so,
                "size": i, "source": s }),
    );
    let new_message = obj(
        &["meta"],
        json!({ "meta": s, "payload": s,
                "encoding": { "enum": ["text", "hex", "base64"], "default": "text" } }),
    );
    let type_view = obj(
        &["byte", "name", "received", "sent", "accepted", "created"],
        json!({ "byte": i, "name": s, "received": schema_ref("Traffic"),
                "sent": schema_ref("Traffic"), "accepted": i, "created": i }),
    );
    let counters = obj(
        &["received", "sent", "types", "drops", "delayed"],
        json!({ "received": schema_ref("Traffic"), "sent": schema_ref("Traffic"),
                "types": { "type": "array", "items": type_view }, "drops": counts,
                "delayed": counts }),
    );
    let sample = obj(
        &["t", "received", "sent", "drops", "messages"],
        json!({ "t": i, "received": schema_ref("Traffic"), "sent": schema_ref("Traffic"),
                "drops": i, "messages": i }),
    );
    let permission = obj(
        &["meta", "permit", "authorize", "revoke", "undo"],
        json!({ "meta": s, "permit": b, "authorize": b, "revoke": b, "undo": b }),
    );
    let grant = obj(
        &["meta", "permissions"],
        json!({ "meta": s, "permissions": { "type": "array",
                "items": { "enum": ["permit", "authorize", "revoke", "undo"] } } }),
    );
    let candidate = obj(
        &[
            "address",
            "member",
            "category",
            "tracker",
            "connection_type",
        ],
        json!({ "address": s, "member": so,
                "category": { "enum": ["walk", "stumble", "intro", "discovered", "none"] },
                "tracker": b,
                "connection_type": { "enum": ["public", "symmetric-nat", "unknown"] } }),
    );
    let strings = json!({ "type": "array", "items": s });
    json!({
        "Error": obj(&["error", "detail"], json!({ "error": s, "detail": s })),
        "OpenApi": { "type": "object" },
        "Node": obj(
            &["member", "public_key", "version", "listen", "lan", "wan", "connection_type",
              "trackers", "uptime_secs", "communities", "api", "data_dir", "features"],
            json!({ "member": s, "public_key": s, "version": s, "listen": strings,
                    "lan": strings, "wan": so,
                    "connection_type": { "enum": ["public", "symmetric-nat", "unknown"] },
                    "trackers": strings, "uptime_secs": i, "communities": i, "api": s,
                    "data_dir": s, "features": strings })),
        "Sync": sync,
        "Traffic": traffic,
        "Community": community,
        "CommunityList": obj(&["communities"],
            json!({ "communities": { "type": "array", "items": schema_ref("Community") } })),
        "SpecBody": obj(&["spec"], json!({ "spec": {
            "description": "a community description: TOML text, or an object with its keys",
            "type": ["string", "object"] } })),
        "AddCandidate": obj(&["address"], json!({ "address": s })),
        "CandidateList": obj(&["community", "candidates", "categories"],
            json!({ "community": s, "candidates": { "type": "array", "items": candidate },
                    "categories": counts })),
        "Message": message,
        "MessagePage": obj(&["messages", "next"],
            json!({ "messages": { "type": "array", "items": schema_ref("Message") },
                    "next": so })),
        "NewMessage": new_message,
        "NewMessages": { "oneOf": [
            schema_ref("NewMessage"),
            { "type": "array", "items": schema_ref("NewMessage"), "minItems": 1, "maxItems": 1000 },
        ] },
        "CreatedMessages": { "oneOf": [
            schema_ref("Message"),
            obj(&["messages"], json!({ "messages": { "type": "array", "items": schema_ref("Message") } })),
        ] },
        "Grants": obj(&["member", "grants"],
            json!({ "member": s, "grants": { "type": "array", "items": grant } })),
        "Undo": obj(&["member", "global_time"], json!({ "member": s, "global_time": i })),
        "Destroy": obj(&["kind"], json!({ "kind": { "enum": ["soft", "hard"] } })),
        "MemberPermissions": obj(&["community", "member", "master", "global_time", "permissions"],
            json!({ "community": s, "member": s, "master": b, "global_time": i,
                    "permissions": { "type": "array", "items": permission } })),
        "Counters": counters,
        "Stats": obj(&["node", "driver", "sync"],
            json!({ "node": schema_ref("Counters"), "driver": counts,
                    "sync": { "type": "object", "additionalProperties": schema_ref("Sync") } })),
        "CommunityStats": obj(&["community", "counters", "sync", "delayed"],
            json!({ "community": s, "counters": schema_ref("Counters"),
                    "sync": schema_ref("Sync"), "delayed": i })),
        "History": obj(&["interval_secs", "samples"],
            json!({ "interval_secs": i, "samples": { "type": "array", "items": sample } })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` names a schema that exists.
    #[test]
    fn references_resolve() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut rest = text.as_str();
        let needle = "#/components/schemas/";
        let mut n = 0;
        while let Some(at) = rest.find(needle) {
            rest = &rest[at + needle.len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "missing schema {name}");
            n += 1;
        }
        assert!(n > 20);
    }

    #[test]
    fn every_route_is_documented_once() {
        let doc = document();
        let mut ops = 0;
        for (_, item) in doc["paths"].as_object().unwrap() {
            ops += item.as_object().unwrap().len();
        }
        assert_eq!(
            ops,
            ROUTES.len(),
            "a method and path appear twice in ROUTES"
        );
        let mut ids: Vec<String> = ROUTES.iter().map(operation_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), ROUTES.len());
        for r in ROUTES {
            assert!(
                documents(&doc, &r.method, r.path),
                "{} {}",
                r.method,
                r.path
            );
        }
    }
}
