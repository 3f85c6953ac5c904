//! The orders API over SQLite (the store does not matter to these): its document, its
//! authorization, and the two planted defects, each present only with --defects.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::{Api, Dir, text};
use livefire_sandbox::proc::http_get;

#[test]
fn the_api_serves_its_openapi_document_and_checks_tokens() {
    let dir = Dir::new();
    let sb = dir.up(&["--store", "sqlite"]);
    let api = Api::of(&sb, "alice");
    let (code, body) = http_get(&api.addr, "/openapi.json", Duration::from_secs(5)).unwrap();
    assert_eq!(code, 200);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let spec = rt
        .block_on(livefire_fuzz::spec::parse_str(&body, dir.path()))
        .expect("the fuzzer reads the API's document");
    assert_eq!(spec.operations.len(), 4, "health, list, create, get");

    let cases: &[(&str, &str, Option<&str>, u16)] = &[
        ("alice", "POST", Some(r#"{"item":"chair","qty":1}"#), 201),
        ("alice", "POST", Some(r#"{"item":"","qty":1}"#), 400),
        ("alice", "POST", Some(r#"{"item":"chair","qty":0}"#), 400),
        (
            "alice",
            "POST",
            Some(r#"{"item":"chair","qty":1,"admin":true}"#),
            400,
        ),
        ("alice", "POST", Some("not json"), 400),
        ("alice", "GET", None, 200),
        ("alice", "DELETE", None, 405),
        ("nobody", "GET", None, 401),
    ];
    for (user, method, body, want) in cases {
        let caller = Api {
            addr: api.addr.clone(),
            token: if *user == "nobody" {
                "wrong".into()
            } else {
                api.token.clone()
            },
        };
        let (code, v) = caller.call(method, "/orders", *body).unwrap();
        assert_eq!(code, *want, "{user} {method} {body:?}: {v}");
    }
    // Orders belong to their creator.
    let (_, id) = api.create("mine");
    let bob = Api::of(&sb, "bob");
    let (code, _) = bob
        .call("GET", &format!("/orders/{}", id.unwrap()), None)
        .unwrap();
    assert_eq!(code, 404);
}

/// Kill the token service: without --defects the API refuses (503); with them it lets a
/// stranger's token through and shows every user's orders.
#[test]
fn authorization_fails_open_only_with_defects() {
    for defects in [false, true] {
        let dir = Dir::new();
        let args: &[&str] = if defects {
            &["--store", "sqlite", "--defects"]
        } else {
            &["--store", "sqlite"]
        };
        let sb = dir.up(args);
        let alice = Api::of(&sb, "alice");
        assert_eq!(alice.create("secret").0, 201);
        let stranger = Api {
            addr: alice.addr.clone(),
            token: "stolen-or-made-up".into(),
        };
        assert_eq!(
            stranger.call("GET", "/orders", None).unwrap().0,
            401,
            "defects={defects}"
        );

        let token = sb.service("token").unwrap().pid;
        token.signal(Signal::SIGKILL);
        assert!(token.wait_gone(Duration::from_secs(5)));
        let (code, v) = stranger.call("GET", "/orders", None).unwrap();
        if defects {
            assert_eq!(code, 200, "{v}");
            assert!(v.to_string().contains("secret"), "{v}");
        } else {
            assert_eq!(code, 503, "{v}");
            assert!(
                v["error"]
                    .as_str()
                    .unwrap()
                    .contains("authorization unavailable")
            );
        }
    }
}

/// Create an order and kill the API at once: without --defects the order is there after a
/// restart; with them it was acknowledged and is lost.
#[test]
fn acknowledged_writes_are_lost_only_with_defects() {
    for defects in [false, true] {
        let dir = Dir::new();
        let args: &[&str] = if defects {
            &["--store", "sqlite", "--defects"]
        } else {
            &["--store", "sqlite"]
        };
        let sb = dir.up(args);
        let api = Api::of(&sb, "alice");
        let (code, id) = api.create("fragile");
        assert_eq!(code, 201);
        let id = id.unwrap();
        // Read back before the kill: it looks fine either way.
        assert_eq!(
            api.call("GET", &format!("/orders/{id}"), None).unwrap().0,
            200
        );

        let orders = sb.service("orders").unwrap().pid;
        orders.signal(Signal::SIGKILL);
        assert!(orders.wait_gone(Duration::from_secs(5)));
        let restart = dir.run(&["restart", "orders"]);
        assert!(restart.status.success(), "{}", text(&restart.stderr));
        let now = dir.record().service("orders").unwrap().pid;
        assert_ne!(now, orders);
        let pidfile = std::fs::read_to_string(dir.path().join("orders.pid")).unwrap();
        assert_eq!(pidfile.trim(), now.pid.to_string());

        let (code, _) = api.call("GET", &format!("/orders/{id}"), None).unwrap();
        let want = if defects { 404 } else { 200 };
        assert_eq!(
            code, want,
            "defects={defects}: order {id} after kill -9 and restart"
        );
    }
}

/// What a demo's fuzz campaign sees: nothing on the clean API; with --defects and the
/// token service gone, the fuzzer's own auth_enforced check finds the open door.
#[test]
fn the_fuzzer_finds_the_open_door_only_with_defects() {
    // (defects, token service killed, auth_enforced expected)
    let cases = [
        (false, false, false),
        (false, true, false),
        (true, true, true),
    ];
    for (defects, kill_token, expect_open) in cases {
        let dir = Dir::new();
        let args: &[&str] = if defects {
            &["--store", "sqlite", "--defects"]
        } else {
            &["--store", "sqlite"]
        };
        let sb = dir.up(args);
        let alice = Api::of(&sb, "alice");
        let bob = Api::of(&sb, "bob");
        if kill_token {
            let token = sb.service("token").unwrap().pid;
            token.signal(Signal::SIGKILL);
            assert!(token.wait_gone(Duration::from_secs(5)));
        }
        let header = |t: &str| livefire_fuzz::AuthConfig::Header {
            header: "Authorization".into(),
            value: format!("Bearer {t}"),
        };
        let config = livefire_fuzz::FuzzConfig {
            spec: format!("http://{}/openapi.json", alice.addr),
            base_url: format!("http://{}", alice.addr),
            duration: Duration::from_secs(10),
            max_requests: Some(1500),
            seed: 7,
            concurrency: 4,
            auth: Some(header(&alice.token)),
            second_identity: Some(header(&bob.token)),
            ..Default::default()
        };
        let mut findings = Vec::new();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(livefire_fuzz::run(
            config,
            livefire_fuzz::CancellationToken::new(),
            |f| findings.push(f),
        ))
        .unwrap();
        let open = findings
            .iter()
            .any(|f| f.rule == livefire_fuzz::Rule::AuthEnforced);
        assert_eq!(
            open,
            expect_open,
            "defects={defects} token killed={kill_token}: {:?}",
            findings.iter().map(|f| &f.title).collect::<Vec<_>>()
        );
        if !defects && !kill_token {
            assert!(
                findings.is_empty(),
                "the clean API has nothing to find: {:?}",
                findings.iter().map(|f| &f.title).collect::<Vec<_>>()
            );
        }
    }
}

/// `--token-via` is where the API asks (a proxy's address in a drill): pointed at an
/// address where nothing listens, authorization is unavailable though the token
/// service itself is healthy.
#[test]
fn the_api_asks_for_authorization_where_token_via_says() {
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = nowhere.local_addr().unwrap().to_string();
    drop(nowhere);
    let dir = Dir::new();
    let sb = dir.up(&["--store", "sqlite", "--token-via", &addr]);
    let token = sb.service("token").unwrap().listen.clone().unwrap();
    assert_eq!(
        http_get(&token, "/health", Duration::from_secs(5))
            .unwrap()
            .0,
        200
    );
    let (code, v) = Api::of(&sb, "alice").call("GET", "/orders", None).unwrap();
    assert_eq!(code, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains(&addr), "{v}");
}
