//! Proxy faults in experiments: on a proxy the run owns (it dies with the run) and on an
//! existing `livefire proxy` server through its Toxiproxy API (undone via the ledger).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// One HTTP/1.1 request with Connection: close; returns (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn latency_on_a_run_owned_proxy_shows_in_the_load_and_the_proxy_dies_with_the_run() {
    let home = Home::new();
    let (app, link) = (free_port(), free_port());
    let file = home.file(&format!(
        "version: 1\ntitle: slow dependency\nsetup:\n  - {{ name: app, command: \"livefire sandbox http --listen 127.0.0.1:{app}\", ready: {{ tcp: {{ address: \"127.0.0.1:{app}\" }} }} }}\ntargets:\n  link: {{ proxy: {{ listen: \"127.0.0.1:{link}\", upstream: \"127.0.0.1:{app}\" }} }}\nhypothesis:\n  - {{ name: p99, metric: browse.latency.p99, below: 10s }}\ntimeline:\n  - {{ at: 0s, for: 4s, load: {{ name: browse, rate: 20/s, requests: [ {{ url: \"http://${{link}}/health\" }} ] }} }}\n  - {{ at: 1s, for: 2s, name: slow link, fault: {{ proxy.latency: {{ target: link, latency: 600ms }} }} }}\n"
    ));
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 0, "{err}");
    let journal = home.journal();
    let p99 = journal
        .lines()
        .filter(|l| l.contains("\"condition\":\"p99\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["value"].as_f64())
        .fold(0.0, f64::max);
    assert!(p99 >= 0.6, "the 600 ms toxic must show in p99, got {p99}");
    let s = home.summary();
    assert_eq!(s["faults"][0]["kind"], "proxy.latency");
    assert_eq!(s["faults"][0]["rollback_ok"], true);
    assert!(
        TcpStream::connect(("127.0.0.1", link)).is_err(),
        "the run's proxy stops with the run"
    );
}

#[test]
fn a_toxic_on_an_external_proxy_is_removed_after_the_run_and_by_recover_after_a_crash() {
    let home = Home::new();
    let (api, listen, upstream) = (free_port(), free_port(), free_port());
    let mut server = livefire()
        .args(["proxy", "--port", &api.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(api);
    let (status, body) = http(
        api,
        "POST",
        "/proxies",
        &format!(
            "{{\"name\":\"db\",\"listen\":\"127.0.0.1:{listen}\",\"upstream\":\"127.0.0.1:{upstream}\"}}"
        ),
    );
    assert_eq!(status, 201, "{body}");
    let file = home.file(&format!(
        "version: 1\ntitle: ext\ntargets:\n  db: {{ proxy: {{ api: \"http://127.0.0.1:{api}\", name: db }} }}\ntimeline:\n  - {{ at: 0s, for: 30s, name: slow db, fault: {{ proxy.latency: {{ target: db, latency: 100 }} }} }}\n"
    ));
    let toxics = || http(api, "GET", "/proxies/db/toxics", "").1;
    let wait_for_toxic = || {
        let start = Instant::now();
        while !toxics().contains("livefire_slow_db") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the toxic never appeared"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // A normal (halted) run removes its toxic.
    let child = home
        .run(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_toxic();
    signal(&child, "TERM");
    let (code, _, err) = finish(child);
    assert_eq!(code, 2, "{err}");
    assert_eq!(toxics().trim(), "[]");
    // kill -9 leaves it; recover removes it through the API.
    let mut child = home
        .run(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_toxic();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        toxics().contains("livefire_slow_db"),
        "a crash leaves the toxic"
    );
    let (code, out, err) = run(home.livefire().arg("recover"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("remove toxic `livefire_slow_db`"), "{out}");
    assert_eq!(toxics().trim(), "[]");
    // An external proxy that does not exist is an error before anything is applied.
    let missing = home.file(&format!(
        "version: 1\ntitle: ext\ntargets:\n  db: {{ proxy: {{ api: \"http://127.0.0.1:{api}\", name: nope }} }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ proxy.down: {{ target: db }} }} }}\n"
    ));
    let (code, _, err) = run(&mut home.run(&missing));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("404"), "{err}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn an_occupied_proxy_listen_port_is_a_setup_error() {
    let home = Home::new();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let file = home.file(&format!(
        "version: 1\ntitle: t\ntargets:\n  link: {{ proxy: {{ listen: \"127.0.0.1:{port}\", upstream: \"127.0.0.1:9\" }} }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ proxy.down: {{ target: link }} }} }}\n"
    ));
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("nothing was applied"),
        "{err}"
    );
}
