//! `livefire_engine::held`: which pending undo record holds which target, for every kind
//! of record against every kind of target, by the resource and not the name.

use std::collections::BTreeSet;

use livefire_core::undo::{PgCluster, ProcessId, ProxyOwner, UndoRecord};
use livefire_engine::held::{Claim, in_ledger};
use livefire_engine::ledger::Pending;
use livefire_spec::Target;
use serde_json::json;

const VICTIM: ProcessId = ProcessId {
    pid: 4242,
    start_time: 7,
};

/// One target of each kind (PostgreSQL and proxies in their spellings), as a file
/// declares them: (name, target).
fn targets() -> Vec<(&'static str, Target)> {
    let t = |v: serde_json::Value| serde_json::from_value::<Target>(v).unwrap();
    vec![
        ("victim", t(json!({ "process": { "pid": 4242 } }))),
        (
            "pg-dir",
            t(json!({ "postgres": {
                "dsn": "postgres://app:secret@localhost:5433/shop",
                "data_dir": "/srv/pg/"
            } })),
        ),
        (
            "pg-dsn",
            t(json!({ "postgres": { "dsn": "host=127.0.0.1 port=5433 dbname=other" } })),
        ),
        (
            "pg-other",
            t(json!({ "postgres": { "dsn": "host=127.0.0.1 port=5434" } })),
        ),
        (
            "proxy-run",
            t(json!({ "proxy": { "listen": "127.0.0.1:7000", "upstream": "127.0.0.1:7001" } })),
        ),
        (
            "proxy-api",
            t(json!({ "proxy": { "api": "http://127.0.0.1:8474/", "name": "db" } })),
        ),
        ("blue", t(json!({ "netns": "blue" }))),
        ("box", t(json!({ "host": {} }))),
        ("data", t(json!({ "path": "/srv/data/" }))),
        ("api", t(json!({ "http": "http://127.0.0.1:8080" }))),
    ]
}

fn claims() -> Vec<Claim> {
    targets()
        .iter()
        .filter_map(|(name, t)| {
            let process = t.process.is_some().then_some(VICTIM);
            Claim::of(name, t, process)
        })
        .collect()
}

fn entry(record: UndoRecord, resources: &[&str]) -> Pending {
    Pending {
        file: "/home/sre/.livefire/ledger/crashed.jsonl".into(),
        id: 0,
        run_id: "crashed".into(),
        activity: "timeline[0]".into(),
        activity_id: Some("timeline[0]".into()),
        display: None,
        kind: None,
        since: None,
        run_dir: None,
        record,
        resources: resources.iter().map(|r| r.to_string()).collect(),
        failure: None,
    }
}

fn command(run: &str) -> UndoRecord {
    UndoRecord::Command {
        run: run.into(),
        user: None,
        cwd: None,
        timeout_ms: 1000,
    }
}

fn pg_dsn(kind: &str, dsn: &str) -> UndoRecord {
    match kind {
        "login" => UndoRecord::PostgresLogin {
            dsn: dsn.into(),
            role: "app".into(),
            had_login: true,
        },
        _ => UndoRecord::PostgresSessions {
            dsn: dsn.into(),
            tag: "lf-exhaust".into(),
            since: "2026-12-03 07:00:00+00".into(),
            what: "40 connections held".into(),
        },
    }
}

fn saved_page(data_dir: &str) -> UndoRecord {
    UndoRecord::SavedPage {
        pg: PgCluster {
            data_dir: data_dir.into(),
            bin_dir: "/usr/lib/postgresql/15/bin".into(),
            user: Some("postgres".into()),
            options: String::new(),
            log: "/srv/pg/log".into(),
        },
        file: "/srv/pg/base/5/16384".into(),
        offset: 0,
        len: 8192,
        copy: "/home/sre/.livefire/saved/x".into(),
    }
}

#[test]
fn every_kind_of_undo_record_holds_exactly_the_targets_of_its_resource() {
    let run_proxy = |listen: &str| ProxyOwner::Run {
        listen: listen.into(),
    };
    let api_proxy = |url: &str| ProxyOwner::Api { url: url.into() };
    // (what, record, its resources, the targets it holds)
    let cases: Vec<(&str, UndoRecord, Vec<&str>, Vec<&str>)> = vec![
        (
            "SIGCONT to the victim",
            UndoRecord::Signal {
                process: VICTIM,
                signal: 18,
            },
            vec!["process:4242@7"],
            vec!["victim"],
        ),
        (
            "a reused pid is another process",
            UndoRecord::Signal {
                process: ProcessId {
                    pid: 4242,
                    start_time: 8,
                },
                signal: 18,
            },
            vec!["process:4242@8"],
            vec![],
        ),
        (
            "a kill's restart names the process in its resources",
            command("systemctl start victim"),
            vec!["process:4242@7"],
            vec!["victim", "box"],
        ),
        (
            "a command fault's rollback",
            command("true"),
            vec![],
            vec!["box"],
        ),
        (
            "a toxic on a run's proxy",
            UndoRecord::ProxyToxic {
                owner: run_proxy("127.0.0.1:7000"),
                proxy: "proxy-run".into(),
                toxic: "latency".into(),
            },
            vec![],
            vec!["proxy-run"],
        ),
        (
            "a run's proxy on another port",
            UndoRecord::ProxyEnable {
                owner: run_proxy("127.0.0.1:7002"),
                proxy: "other".into(),
            },
            vec![],
            vec![],
        ),
        (
            "a proxy of an API, its URL without the slash",
            UndoRecord::ProxyEnable {
                owner: api_proxy("http://127.0.0.1:8474"),
                proxy: "db".into(),
            },
            vec![],
            vec!["proxy-api"],
        ),
        (
            "another proxy of the same API",
            UndoRecord::ProxyToxic {
                owner: api_proxy("http://127.0.0.1:8474"),
                proxy: "cache".into(),
                toxic: "latency".into(),
            },
            vec![],
            vec![],
        ),
        (
            "a stress worker",
            UndoRecord::StressWorker {
                token: "lf-stress-1".into(),
            },
            vec![],
            vec!["box"],
        ),
        (
            "a fill file under the path",
            UndoRecord::FillFile {
                path: "/srv/data/lf-fill-1".into(),
                marker: "m".into(),
                size: 1,
            },
            vec![],
            vec!["data"],
        ),
        (
            "a fill file beside the path, sharing its prefix as text",
            UndoRecord::FillFile {
                path: "/srv/database/lf-fill-1".into(),
                marker: "m".into(),
                size: 1,
            },
            vec![],
            vec![],
        ),
        (
            "an nftables table in the namespace",
            UndoRecord::NftTable {
                netns: Some("blue".into()),
                table: "livefire_1".into(),
                token: "t".into(),
            },
            vec![],
            vec!["blue"],
        ),
        (
            "an nftables table on the host",
            UndoRecord::NftTable {
                netns: None,
                table: "livefire_1".into(),
                token: "t".into(),
            },
            vec![],
            vec!["box"],
        ),
        (
            "a qdisc in another namespace",
            UndoRecord::Qdisc {
                netns: Some("red".into()),
                devices: vec!["veth0".into()],
                handle: 0x1f,
            },
            vec![],
            vec![],
        ),
        (
            "a qdisc on the host",
            UndoRecord::Qdisc {
                netns: None,
                devices: vec!["eth0".into()],
                handle: 0x1f,
            },
            vec![],
            vec!["box"],
        ),
        (
            "a role of the server on local port 5433, in the record's own DSN form",
            pg_dsn("login", "host=localhost port=5433 user=app dbname=shop"),
            vec![],
            vec!["pg-dir", "pg-dsn"],
        ),
        (
            "sessions through the Unix socket of the same port",
            pg_dsn("sessions", "host=/var/run/postgresql port=5433 dbname=shop"),
            vec![],
            vec!["pg-dir", "pg-dsn"],
        ),
        (
            "a role of the server on port 5434",
            pg_dsn("login", "host=localhost port=5434"),
            vec![],
            vec!["pg-other"],
        ),
        (
            "sessions of a server on another machine",
            pg_dsn("sessions", "host=db.example port=5433"),
            vec![],
            vec![],
        ),
        (
            "a saved page of the cluster's data_dir",
            saved_page("/srv/pg"),
            vec!["postgres:/srv/pg"],
            vec!["pg-dir"],
        ),
        (
            "a saved page of another cluster",
            saved_page("/srv/pg2"),
            vec!["postgres:/srv/pg2"],
            vec![],
        ),
        (
            "a split run's Kubernetes objects",
            UndoRecord::KubernetesRun {
                context: None,
                cluster: "https://k8s.example".into(),
                namespace: "load".into(),
                run: "r".into(),
            },
            vec![],
            vec![],
        ),
    ];
    let claims = claims();
    for (what, record, resources, expected) in cases {
        let e = entry(record, &resources);
        let held: BTreeSet<&str> = claims
            .iter()
            .filter(|c| c.held_by(&e))
            .map(|c| c.target.as_str())
            .collect();
        let expected: BTreeSet<&str> = expected.into_iter().collect();
        assert_eq!(held, expected, "{what}");
    }
}

#[test]
fn an_http_target_is_never_held_and_the_same_resource_shares_a_key() {
    let claims = claims();
    let names: Vec<&str> = claims.iter().map(|c| c.target.as_str()).collect();
    assert!(!names.contains(&"api"), "http is only probed: {names:?}");
    let keys = |name: &str| -> BTreeSet<String> {
        let c = claims.iter().find(|c| c.target == name).unwrap();
        c.keys.iter().cloned().collect()
    };
    // Two spellings of the server on local port 5433: one run going on either holds both.
    assert!(
        keys("pg-dir").intersection(&keys("pg-dsn")).count() > 0,
        "{:?} {:?}",
        keys("pg-dir"),
        keys("pg-dsn")
    );
    assert_eq!(keys("pg-dsn").intersection(&keys("pg-other")).count(), 0);
    // No key of any claim gives away the DSN's password.
    for c in &claims {
        assert!(
            c.keys.iter().all(|k| !k.contains("secret")) && !c.what.contains("secret"),
            "{c:?}"
        );
    }
}

#[test]
fn in_ledger_names_the_target_as_written_and_the_entry_that_holds_it() {
    let claims = claims();
    let pending = vec![
        entry(command("true"), &[]),
        entry(saved_page("/srv/pg/"), &[]),
    ];
    let held = in_ledger(&claims[1..2], &pending).expect("pg-dir is held");
    assert_eq!(held.claim.target, "pg-dir");
    assert_eq!(held.claim.what, "PostgreSQL cluster /srv/pg/");
    assert!(matches!(held.entry.record, UndoRecord::SavedPage { .. }));
    assert!(
        in_ledger(&claims[2..3], &pending).is_none(),
        "pg-dsn is free"
    );
}
