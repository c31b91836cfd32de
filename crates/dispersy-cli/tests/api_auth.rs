//! The access check: a token forced on a loopback API is demanded by every endpoint (header or
//! query parameter, dashboard and event stream included); without a token only loopback Host
//! names are answered.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dispersy_cli::client::Client;
use dispersy_cli::daemon::views::NodeView;

#[test]
fn token_is_required_everywhere_when_forced() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.api.require_token = true;
    let run = Running::start(cfg);
    let token = run.daemon().token().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    let saved = std::fs::read_to_string(dir.path().join("api.token")).unwrap();
    assert_eq!(saved.trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("api.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let addr = run.daemon().api_addr();
    let url = run.daemon().api_url();

    for path in [
        "/",
        "/api/v1/node",
        "/api/v1/openapi.json",
        "/api/v1/events",
        "/api/v1/nowhere",
    ] {
        let (status, body) = raw(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        );
        assert!(status.contains("401"), "{path}: {status}");
        assert!(
            body.contains("\"error\":\"unauthorized\""),
            "{path}: {body}"
        );
        let (status, _) = raw(
            addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong{token}\r\n\
                 Connection: close\r\n\r\n"
            ),
        );
        assert!(status.contains("401"), "{path}: {status}");
    }
    let (s, e, _) = status_of(Client::new(&url, None).get::<NodeView>("/api/v1/node", &[]));
    assert_eq!((s, e.as_str()), (401, "unauthorized"));
    let node: NodeView = Client::new(&url, Some(token.clone()))
        .get("/api/v1/node", &[])
        .unwrap();
    assert_eq!(node.member.len(), 40);

    // The query parameter (the dashboard's first load and its event stream) is accepted and
    // taken out before the handlers see the query.
    let (status, body) = raw(
        addr,
        &format!("GET /?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("<title>dispersy node</title>"));
    let (status, _) = raw(
        addr,
        &format!(
            "GET /api/v1/events?token={token}&types=peer HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    // The stream stays open, so read only its head.
    assert!(status.contains("200"), "{status}");
}

#[test]
fn without_a_token_only_loopback_hosts_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let run = Running::start(config(dir.path()));
    assert!(run.daemon().token().is_none());
    let addr = run.daemon().api_addr();
    for host in ["evil.example", "evil.example:80", "192.0.2.1", ""] {
        let (status, body) = raw(
            addr,
            &format!("GET /api/v1/node HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert!(status.contains("403"), "{host}: {status}");
        assert!(body.contains("loopback"), "{body}");
    }
    for host in ["localhost:1", "127.0.0.1", "[::1]:7760"] {
        let (status, _) = raw(
            addr,
            &format!("GET /api/v1/node HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert!(status.contains("200"), "{host}: {status}");
    }
}
