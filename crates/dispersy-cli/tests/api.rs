//! Every REST endpoint of an in-process daemon on loopback: communities, candidates, messages
//! (pagination and filters), permissions, statistics, the event stream, bad input, and the
//! OpenAPI document against the router.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dispersy_cli::daemon::api::{ROUTES, openapi};
use dispersy_cli::daemon::state::MAX_STREAMS;
use dispersy_cli::daemon::views::{
    CandidateList, CommunityList, CommunityStatsView, CommunityView, Created, History,
    MemberPermissions, MessagePage, MessageView, NodeView, StatsView,
};
use serde_json::{Value, json};

fn create_chat(client: &dispersy_cli::client::Client) -> CommunityView {
    client
        .post("/api/v1/communities", &json!({ "spec": CHAT }))
        .unwrap()
        .unwrap()
}

#[test]
fn communities_and_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let run = Running::start(config(dir.path()));
    let c = run.client();

    let node: NodeView = c.get("/api/v1/node", &[]).unwrap();
    assert_eq!(node.member.len(), 40);
    assert_eq!(node.listen, run.daemon().udp_addrs());
    assert_eq!(node.api, run.daemon().api_addr());

    let chat = create_chat(&c);
    assert!(chat.founder);
    assert_eq!(chat.name, "chat");
    assert!(chat.master_key.is_some());
    assert!(chat.spec.as_deref().unwrap().contains("master-key"));
    assert!(
        chat.metas
            .iter()
            .any(|m| m.name == "post" && m.payload.as_deref() == Some("text"))
    );
    assert!(
        dir.path()
            .join("masters")
            .join(format!("{}.key", chat.id))
            .exists()
    );

    // Founding with a key, joining without one, joining twice.
    let with_key = chat.spec.clone().unwrap();
    let (s, e, d) =
        status_of(c.post::<_, Value>("/api/v1/communities", &json!({ "spec": with_key })));
    assert_eq!((s, e.as_str()), (400, "bad-request"), "{d}");
    let (s, _, d) =
        status_of(c.post::<_, Value>("/api/v1/communities/join", &json!({ "spec": CHAT })));
    assert_eq!(s, 400);
    assert!(d.contains("master-key or community"), "{d}");
    let (s, e, _) =
        status_of(c.post::<_, Value>("/api/v1/communities/join", &json!({ "spec": with_key })));
    assert_eq!((s, e.as_str()), (409, "conflict"));
    let (s, _, d) =
        status_of(c.post::<_, Value>("/api/v1/communities", &json!({ "spec": "name = 3" })));
    assert_eq!(s, 400);
    assert!(d.starts_with("spec:"), "{d}");
    let (s, _, d) = status_of(c.post::<_, Value>("/api/v1/communities", &json!({ "nope": 1 })));
    assert_eq!(s, 400);
    assert!(d.contains("unknown field"), "{d}");

    // Join a second community known only by id, as a JSON object.
    let other_id = "00112233445566778899aabbccddeeff00112233";
    let other: CommunityView = c
        .post(
            "/api/v1/communities/join",
            &json!({ "spec": { "name": "other", "community": other_id,
                               "message": [{ "name": "note", "byte": 1 }] } }),
        )
        .unwrap()
        .unwrap();
    assert_eq!(other.id, other_id);
    assert!(!other.founder);
    assert!(other.master_key.is_none());
    let list: CommunityList = c.get("/api/v1/communities", &[]).unwrap();
    assert_eq!(list.communities.len(), 2);
    assert!(list.communities.iter().all(|c| c.spec.is_none()));

    let one: CommunityView = c
        .get(&format!("/api/v1/communities/{}", chat.id), &[])
        .unwrap();
    assert_eq!(one.id, chat.id);
    assert!(one.messages >= 1, "our identity message is stored");
    let (s, _, _) = status_of(c.get::<Value>("/api/v1/communities/zz", &[]));
    assert_eq!(s, 400);
    let (s, e, _) =
        status_of(c.get::<Value>(&format!("/api/v1/communities/{}", "ab".repeat(20)), &[]));
    assert_eq!((s, e.as_str()), (404, "not-found"));

    // Candidates: none yet; a peer added by hand is discovered.
    let path = format!("/api/v1/communities/{}/candidates", chat.id);
    let cand: CandidateList = c.get(&path, &[]).unwrap();
    assert!(cand.candidates.is_empty());
    for bad in ["nonsense", "127.0.0.1:0", "0.0.0.0:7", "224.0.0.1:7"] {
        let (s, _, d) = status_of(c.post::<_, Value>(&path, &json!({ "address": bad })));
        assert_eq!(s, 400, "{bad}: {d}");
    }
    c.post::<_, Value>(&path, &json!({ "address": "127.0.0.1:9" }))
        .unwrap();
    let cand: CandidateList = c.get(&path, &[]).unwrap();
    assert_eq!(cand.candidates.len(), 1);
    assert_eq!(cand.candidates[0].category, "discovered");
    assert_eq!(cand.categories.get("discovered"), Some(&1));

    // Leave: gone from the list, and not hosted again after a restart.
    c.delete(
        &format!("/api/v1/communities/{other_id}"),
        &[("forget", "true".into())],
    )
    .unwrap();
    let (s, _, _) = status_of(c.get::<Value>(&format!("/api/v1/communities/{other_id}"), &[]));
    assert_eq!(s, 404);
    let (s, _, _) = status_of(c.delete(&format!("/api/v1/communities/{other_id}"), &[]));
    assert_eq!(s, 404);
    let (s, _, d) = status_of(c.delete(
        &format!("/api/v1/communities/{}", chat.id),
        &[("forget", "maybe".into())],
    ));
    assert_eq!(s, 400, "{d}");
    drop(run);

    let run = Running::start(config(dir.path()));
    let list: CommunityList = run.client().get("/api/v1/communities", &[]).unwrap();
    assert_eq!(
        list.communities.len(),
        1,
        "the founded community is hosted again"
    );
    assert_eq!(list.communities[0].id, chat.id);
    assert!(list.communities[0].founder);
}

#[test]
fn messages_filters_pagination_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = Running::start(config(dir.path()));
    let c = run.client();
    let chat = create_chat(&c);
    let path = format!("/api/v1/communities/{}/messages", chat.id);

    let m: MessageView = c
        .post(&path, &json!({ "meta": "post", "payload": "hello" }))
        .unwrap()
        .unwrap();
    assert_eq!(m.text.as_deref(), Some("hello"));
    assert_eq!(m.meta, "post");
    assert!(m.id.is_some());
    let hex: MessageView = c
        .post(
            &path,
            &json!({ "meta": "blob", "payload": "00ff", "encoding": "hex" }),
        )
        .unwrap()
        .unwrap();
    assert_eq!(hex.base64, "AP8=");
    assert_eq!(hex.text, None, "not UTF-8");
    let b64: MessageView = c
        .post(
            &path,
            &json!({ "meta": "post", "payload": "aMOp", "encoding": "base64" }),
        )
        .unwrap()
        .unwrap();
    assert_eq!(b64.text.as_deref(), Some("hé"));
    let batch: Created = c
        .post(
            &path,
            &json!([
                { "meta": "post", "payload": "one" },
                { "meta": "post", "payload": "two" },
                { "meta": "post", "payload": "three" },
            ]),
        )
        .unwrap()
        .unwrap();
    assert_eq!(batch.messages.len(), 3);
    assert!(
        batch
            .messages
            .windows(2)
            .all(|w| w[0].global_time < w[1].global_time)
    );

    for (body, status, needle) in [
        (
            json!({ "meta": "nope", "payload": "x" }),
            400,
            "no message type \"nope\"",
        ),
        (
            json!({ "meta": "post", "payload": "%%", "encoding": "base64" }),
            400,
            "payload: not base64",
        ),
        (
            json!({ "meta": "post", "payload": "zz", "encoding": "hex" }),
            400,
            "payload: not hexadecimal",
        ),
        (
            json!({ "meta": "post", "payload": "ff", "encoding": "hex" }),
            400,
            "UTF-8",
        ),
        (
            json!({ "meta": "post", "payload": "x", "encoding": "rot13" }),
            400,
            "unknown variant",
        ),
        (json!({ "meta": "dispersy-identity" }), 400, "built-in"),
        (json!([]), 400, "1 to 1000"),
        (
            json!([{ "meta": "post", "payload": "ok" }, { "meta": "nope" }]),
            400,
            "message 1:",
        ),
        (json!("text"), 400, "message object"),
        (
            json!({ "meta": "post", "payload": "x".repeat(70_000) }),
            400,
            "longer than 65535",
        ),
    ] {
        let (s, _, d) = status_of(c.post::<_, Value>(&path, &body));
        assert_eq!(s, status, "{body}: {d}");
        assert!(d.contains(needle), "{needle:?} not in {d:?}");
    }
    // A body that is not JSON, or not declared as JSON.
    let addr = run.daemon().api_addr();
    let (status, body) = raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: 3\r\nConnection: close\r\n\r\n{{x}}"
        ),
    );
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("\"error\":\"bad-request\""), "{body}");
    let (status, body) = raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    );
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("Content-Type: application/json"), "{body}");

    // Listing: everything posted, oldest first, then pages of two.
    let all: MessagePage = c.get(&path, &[]).unwrap();
    let texts: Vec<_> = all.messages.iter().filter_map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["hello", "hé", "one", "two", "three"]);
    assert_eq!(all.messages.len(), 6);
    assert_eq!(all.next, None);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", "2".to_string())];
        if let Some(cur) = &cursor {
            q.push(("cursor", cur.clone()));
        }
        let page: MessagePage = c.get(&path, &q).unwrap();
        assert!(page.messages.len() <= 2);
        seen.extend(page.messages.into_iter().map(|m| m.global_time));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let expected: Vec<u64> = all.messages.iter().map(|m| m.global_time).collect();
    assert_eq!(seen, expected, "pages cover everything once, in order");
    let desc: MessagePage = c
        .get(
            &path,
            &[
                ("order", "desc".into()),
                ("limit", "2".into()),
                ("meta", "post".into()),
            ],
        )
        .unwrap();
    let texts: Vec<_> = desc
        .messages
        .iter()
        .filter_map(|m| m.text.clone())
        .collect();
    assert_eq!(texts, ["three", "two"]);
    let next: MessagePage = c
        .get(
            &path,
            &[
                ("order", "desc".into()),
                ("limit", "2".into()),
                ("meta", "post".into()),
                ("cursor", desc.next.unwrap()),
            ],
        )
        .unwrap();
    let texts: Vec<_> = next
        .messages
        .iter()
        .filter_map(|m| m.text.clone())
        .collect();
    assert_eq!(texts, ["one", "hé"]);
    let blobs: MessagePage = c.get(&path, &[("meta", "blob".into())]).unwrap();
    assert_eq!(blobs.messages.len(), 1);
    let window: MessagePage = c
        .get(
            &path,
            &[
                ("since", batch.messages[0].global_time.to_string()),
                ("until", batch.messages[1].global_time.to_string()),
            ],
        )
        .unwrap();
    assert_eq!(window.messages.len(), 2);
    let mine: MessagePage = c
        .get(&path, &[("member", m.member.clone().unwrap())])
        .unwrap();
    assert_eq!(mine.messages.len(), 6);
    let nobody: MessagePage = c.get(&path, &[("member", "ab".repeat(20))]).unwrap();
    assert!(nobody.messages.is_empty());
    let builtin: MessagePage = c.get(&path, &[("builtin", "true".into())]).unwrap();
    assert!(
        builtin
            .messages
            .iter()
            .any(|m| m.meta == "dispersy-identity")
    );
    for (k, v, needle) in [
        ("order", "sideways", "order"),
        ("limit", "0", "limit"),
        ("limit", "1001", "limit"),
        ("limit", "many", "query string"),
        ("cursor", "nonsense", "cursor"),
        ("member", "xyz", "member"),
        ("meta", "nope", "meta"),
        ("bogus", "1", "query string"),
    ] {
        let (s, _, d) = status_of(c.get::<Value>(&path, &[(k, v.into())]));
        assert_eq!(s, 400, "{k}={v}: {d}");
        assert!(d.contains(needle), "{needle:?} not in {d:?}");
    }
    let (s, _, d) =
        status_of(c.get::<Value>(&path, &[("since", "9".into()), ("until", "3".into())]));
    assert_eq!(s, 400, "{d}");

    // One message by id.
    let id = m.id.clone().unwrap();
    let (member, gt) = id.split_once(':').unwrap();
    let one: MessageView = c.get(&format!("{path}/{member}/{gt}"), &[]).unwrap();
    assert_eq!(one.text.as_deref(), Some("hello"));
    let (s, _, _) = status_of(c.get::<Value>(&format!("{path}/{member}/999999"), &[]));
    assert_eq!(s, 404);
    let (s, _, _) = status_of(c.get::<Value>(&format!("{path}/{member}/x"), &[]));
    assert_eq!(s, 400);

    // Statistics count what was created.
    let stats: StatsView = c.get("/api/v1/stats", &[]).unwrap();
    assert!(stats.driver.contains_key("wakeups"));
    assert!(stats.sync.contains_key(&chat.id));
    let cs: CommunityStatsView = c
        .get(&format!("/api/v1/communities/{}/stats", chat.id), &[])
        .unwrap();
    let post = cs.counters.types.iter().find(|t| t.name == "post").unwrap();
    assert_eq!(post.created, 6 - 1);
    let history: History = c.get("/api/v1/stats/history", &[]).unwrap();
    assert_eq!(history.interval_secs, 5);
}

#[test]
fn permissions_undo_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let run = Running::start(config(dir.path()));
    let c = run.client();
    let chat = create_chat(&c);
    let base = format!("/api/v1/communities/{}", chat.id);
    let me = c.get::<NodeView>("/api/v1/node", &[]).unwrap().member;
    let someone = "ab".repeat(20);
    let perms = |member: &str| -> MemberPermissions {
        c.get(&format!("{base}/members/{member}/permissions"), &[])
            .unwrap()
    };

    let master = perms(&chat.id);
    assert!(master.master);
    assert!(
        master
            .permissions
            .iter()
            .all(|p| p.permit && p.authorize && p.undo)
    );
    // The founder's member got the founder's permissions from the master.
    let founder = perms(&me);
    assert!(!founder.master);
    let post = founder
        .permissions
        .iter()
        .find(|p| p.meta == "post")
        .unwrap();
    assert!(post.authorize && post.revoke && post.undo, "{founder:?}");
    let nobody = perms(&someone);
    assert!(nobody.permissions.iter().all(|p| !p.permit && !p.undo));

    for (body, status, needle) in [
        (
            json!({ "member": "xyz", "grants": [{ "meta": "post", "permissions": ["undo"] }] }),
            400,
            "member",
        ),
        (json!({ "member": me, "grants": [] }), 400, "grants"),
        (
            json!({ "member": me, "grants": [{ "meta": "nope", "permissions": ["undo"] }] }),
            400,
            "meta",
        ),
        (
            json!({ "member": me, "grants": [{ "meta": "post", "permissions": ["fly"] }] }),
            400,
            "permissions",
        ),
        (
            json!({ "member": me, "grants": [{ "meta": "post", "permissions": [] }] }),
            400,
            "permissions",
        ),
        (json!({ "member": me }), 400, "request body"),
        (
            json!({ "member": someone, "grants": [{ "meta": "post", "permissions": ["undo"] }] }),
            404,
            "unknown here",
        ),
    ] {
        for action in ["authorize", "revoke"] {
            let (s, _, d) = status_of(c.post::<_, Value>(&format!("{base}/{action}"), &body));
            assert_eq!(s, status, "{action} {body}: {d}");
            assert!(d.contains(needle), "{needle:?} not in {d:?}");
        }
    }

    // Revoke our own undo on posts, then grant it back; each answer is the signed message.
    let grants = json!({ "member": me, "grants": [{ "meta": "post", "permissions": ["undo"] }] });
    let revoked: MessageView = c.post(&format!("{base}/revoke"), &grants).unwrap().unwrap();
    assert_eq!(revoked.meta, "dispersy-revoke");
    assert!(
        !perms(&me)
            .permissions
            .iter()
            .find(|p| p.meta == "post")
            .unwrap()
            .undo
    );
    let granted: MessageView = c
        .post(&format!("{base}/authorize"), &grants)
        .unwrap()
        .unwrap();
    assert_eq!(granted.meta, "dispersy-authorize");
    assert!(
        perms(&me)
            .permissions
            .iter()
            .find(|p| p.meta == "post")
            .unwrap()
            .undo
    );

    // Undo one of our posts: the listing marks it, the event stream says so.
    let mut events = c.events(&[("types", "undone".into())]).unwrap();
    assert_eq!(events.next().unwrap().unwrap().event, "ready");
    let m: MessageView = c
        .post(
            &format!("{base}/messages"),
            &json!({ "meta": "post", "payload": "oops" }),
        )
        .unwrap()
        .unwrap();
    let undo: MessageView = c
        .post(
            &format!("{base}/undo"),
            &json!({ "member": me, "global_time": m.global_time }),
        )
        .unwrap()
        .unwrap();
    assert_eq!(undo.meta, "dispersy-undo-own");
    let e = events.next().unwrap().unwrap();
    assert_eq!(e.event, "undone");
    let v: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(v["id"], m.id.clone().unwrap());
    assert_eq!(v["by"], undo.id.clone().unwrap());
    let page: MessagePage = c
        .get(&format!("{base}/messages"), &[("meta", "post".into())])
        .unwrap();
    assert_eq!(page.messages[0].undone, undo.id);
    let live: MessagePage = c
        .get(
            &format!("{base}/messages"),
            &[("meta", "post".into()), ("undone", "false".into())],
        )
        .unwrap();
    assert!(live.messages.is_empty());
    let (s, _, d) = status_of(c.post::<_, Value>(
        &format!("{base}/undo"),
        &json!({ "member": someone, "global_time": 5 }),
    ));
    assert_eq!(s, 404, "{d}");
    let (s, _, d) = status_of(c.post::<_, Value>(
        &format!("{base}/undo"),
        &json!({ "member": me, "global_time": granted.global_time }),
    ));
    assert_eq!(s, 400, "an authorize cannot be undone: {d}");

    // Destroy: nothing new is accepted afterwards.
    let (s, _, d) =
        status_of(c.post::<_, Value>(&format!("{base}/destroy"), &json!({ "kind": "medium" })));
    assert_eq!(s, 400, "{d}");
    let destroyed: MessageView = c
        .post(&format!("{base}/destroy"), &json!({ "kind": "soft" }))
        .unwrap()
        .unwrap();
    assert_eq!(destroyed.meta, "dispersy-destroy-community");
    let (s, e, d) = status_of(c.post::<_, Value>(
        &format!("{base}/messages"),
        &json!({ "meta": "post", "payload": "too late" }),
    ));
    assert_eq!((s, e.as_str()), (410, "gone"), "{d}");
    let (s, _, _) = status_of(c.get::<Value>(&format!("{base}/members/xyz/permissions"), &[]));
    assert_eq!(s, 400);
}

#[test]
fn event_stream_carries_new_messages() {
    let dir = tempfile::tempdir().unwrap();
    let run = Running::start(config(dir.path()));
    let c = run.client();
    let chat = create_chat(&c);
    let (s, _, d) = status_of(c.events(&[("types", "message,weather".into())]).map(|_| ()));
    assert_eq!(s, 400, "{d}");
    let (s, _, _) = status_of(c.events(&[("community", "ab".repeat(20))]).map(|_| ()));
    assert_eq!(s, 404);

    let mut events = c
        .events(&[("community", chat.id.clone()), ("types", "message".into())])
        .unwrap();
    let ready = events.next().unwrap().unwrap();
    assert_eq!(ready.event, "ready");
    let path = format!("/api/v1/communities/{}/messages", chat.id);
    c.post::<_, Value>(&path, &json!({ "meta": "post", "payload": "live!" }))
        .unwrap();
    let e = events.next().unwrap().unwrap();
    assert_eq!(e.event, "message");
    let m: MessageView = serde_json::from_str(&e.data).unwrap();
    assert_eq!(m.text.as_deref(), Some("live!"));
    assert_eq!(m.community, chat.id);

    // Peer changes: a candidate added by hand is announced as discovered.
    let mut peers = c.events(&[("types", "peer".into())]).unwrap();
    assert_eq!(peers.next().unwrap().unwrap().event, "ready");
    c.post::<_, Value>(
        &format!("/api/v1/communities/{}/candidates", chat.id),
        &json!({ "address": "127.0.0.1:9" }),
    )
    .unwrap();
    let e = peers.next().unwrap().unwrap();
    assert_eq!(e.event, "peer");
    let v: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(v["address"], "127.0.0.1:9");
    assert_eq!(v["category"], "discovered");
    assert_eq!(v["community"], chat.id.as_str());

    // Event streams are bounded: two are open, so MAX_STREAMS - 2 more fit and the next is refused.
    let more: Vec<_> = (2..MAX_STREAMS).map(|_| c.events(&[]).unwrap()).collect();
    let (s, e, _) = status_of(c.events(&[]).map(|_| ()));
    assert_eq!((s, e.as_str()), (429, "too-many"));
    drop(more);
}

#[test]
fn router_and_document_agree() {
    let dir = tempfile::tempdir().unwrap();
    let run = Running::start(config(dir.path()));
    let c = run.client();
    let chat = create_chat(&c);
    let member = c.get::<NodeView>("/api/v1/node", &[]).unwrap().member;
    let doc: Value = c.get("/api/v1/openapi.json", &[]).unwrap();
    assert_eq!(doc, openapi::document());
    assert_eq!(doc["openapi"], "3.1.0");

    // Every route is in the document, and every documented operation is routed: a request to it
    // never meets the router's "no such endpoint" or "method not allowed".
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method)),
                "{method} {path} documented but not in ROUTES"
            );
            let concrete = path
                .replace("{community}", &chat.id)
                .replace("{member}", &member)
                .replace("{global_time}", "1");
            if path == "/api/v1/events" {
                continue;
            }
            let (status, body) = raw(
                run.daemon().api_addr(),
                &format!(
                    "{} {concrete} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                     Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
                    method.to_uppercase()
                ),
            );
            assert!(!status.contains(" 405 "), "{method} {path}: {status}");
            assert!(
                !body.contains("no such endpoint"),
                "{method} {path}: {body}"
            );
        }
    }
    assert_eq!(operations, ROUTES.len());

    let (s, e, _) = status_of(c.get::<Value>("/api/v1/nothing-here", &[]));
    assert_eq!((s, e.as_str()), (404, "not-found"));
    let (status, body) = raw(
        run.daemon().api_addr(),
        "PUT /api/v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains("405"), "{status}");
    assert!(body.contains("method-not-allowed"), "{body}");
    let (status, body) = raw(
        run.daemon().api_addr(),
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("<title>dispersy node</title>") && body.contains("EventSource"));
}

#[test]
fn configured_communities_are_hosted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let spec_file = dir.path().join("other.toml");
    std::fs::write(
        &spec_file,
        "name = \"other\"\ncommunity = \"00112233445566778899aabbccddeeff00112233\"\n",
    )
    .unwrap();
    let mut cfg = config(&dir.path().join("data"));
    cfg.community_files = vec![spec_file];
    cfg.communities = vec![
        dispersy::community::spec::CommunitySpec::from_toml(
            "name = \"inline\"\ncommunity = \"ffeeddccbbaa99887766554433221100ffeeddcc\"\n",
        )
        .unwrap(),
    ];
    let run = Running::start(cfg);
    let list: CommunityList = run.client().get("/api/v1/communities", &[]).unwrap();
    let mut names: Vec<&str> = list.communities.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["inline", "other"]);
}

#[test]
fn a_slow_event_stream_is_told_it_lagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.api.event_buffer = 4;
    let run = Running::start(cfg);
    let c = run.client();
    let chat = create_chat(&c);
    let mut events = c.events(&[("types", "message".into())]).unwrap();
    assert_eq!(events.next().unwrap().unwrap().event, "ready");
    // One command creates 1,000 messages: the node hands out their events in one burst, far
    // more than the 4 a client may fall behind.
    let batch: Vec<Value> = (0..1000)
        .map(|i| json!({ "meta": "post", "payload": format!("m{i}") }))
        .collect();
    c.post::<_, Value>(&format!("/api/v1/communities/{}/messages", chat.id), &batch)
        .unwrap();
    let mut seen = 0;
    let missed = loop {
        let e = events.next().unwrap().unwrap();
        match e.event.as_str() {
            "lagged" => break serde_json::from_str::<Value>(&e.data).unwrap()["missed"].as_u64(),
            "message" => seen += 1,
            other => panic!("unexpected event {other}"),
        }
        assert!(seen < 1000, "every message arrived and no lag was reported");
    };
    assert!(missed.unwrap() > 0);
}
