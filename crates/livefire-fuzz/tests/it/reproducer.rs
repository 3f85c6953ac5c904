//! Curl reproducers run as pasted: each is run through `sh -c` against a small local
//! server, which must receive the very request the fuzzer sent. A secret is read from
//! the environment (`"${API_TOKEN}"`), never printed, and a missing variable is named.

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use livefire_fuzz::http::{Prepared, Target};

/// A server that answers one request with 200 and hands over what it received.
fn one_shot_server() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The request as sent: its head and exactly its Content-Length bytes.
        let got = match livefire_testkit::http::read_message(&mut s) {
            Ok(Some((head, body))) => {
                format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body))
            }
            _ => String::new(),
        };
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = tx.send(got);
    });
    (format!("http://{addr}"), rx)
}

/// The characters a shell treats specially, in a secret and around it.
const SECRET: &str = "t0k'en\"$HOME`id`\\!*";
const NOTE: &str = "it's $HOME `id` \\ \"q\" ! $(id)";

/// A request to reproduce: method, headers, body.
type Case = (&'static str, Vec<(String, String)>, String);

#[test]
fn a_reproducer_with_a_secret_sends_the_same_request_when_the_variable_is_set() {
    // (method, headers, body): the secret in a header, and in a JSON body.
    let cases: [Case; 2] = [
        (
            "GET",
            vec![
                ("authorization".into(), format!("Bearer {SECRET}")),
                ("x-note".into(), NOTE.into()),
            ],
            String::new(),
        ),
        (
            "POST",
            vec![("content-type".into(), "application/json".into())],
            format!(r#"{{"token":"{SECRET}","note":"{NOTE}","again":"{SECRET}"}}"#),
        ),
    ];
    for (method, headers, body) in cases {
        let (base, received) = one_shot_server();
        let mut target = Target::from_base_url(&base).unwrap();
        target.secrets = vec![(SECRET.into(), "API_TOKEN".into())];
        let req = Prepared {
            method: method.parse().unwrap(),
            path_and_query: "/items?q=1".into(),
            headers: headers.clone(),
            body: body.clone().into(),
        };
        let curl = livefire_fuzz::render::curl(&req, &target);
        assert!(!curl.contains(SECRET), "the secret is printed: {curl}");
        assert!(curl.contains("\"${API_TOKEN}\""), "{curl}");

        // Without the variable: the shell says which one to export, nothing is sent.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&curl)
            .env_remove("API_TOKEN")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{curl}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("export API_TOKEN"), "{err}");
        assert!(
            received.recv_timeout(Duration::from_millis(300)).is_err(),
            "a request was sent without the secret"
        );

        // With it: the server gets the request the fuzzer sent, byte for byte.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&curl)
            .env("API_TOKEN", SECRET)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{curl}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            got.starts_with(&format!("{method} /items?q=1 HTTP/1.1\r\n")),
            "{got}"
        );
        for (k, v) in &headers {
            assert!(
                got.contains(&format!("\r\n{k}: {v}\r\n")),
                "{k}: {v} in {got}"
            );
        }
        assert!(got.ends_with(&format!("\r\n\r\n{body}")), "{body} in {got}");
    }
}

#[test]
fn a_reproducer_without_secrets_is_single_quoted_and_needs_nothing() {
    let (base, received) = one_shot_server();
    let target = Target::from_base_url(&base).unwrap();
    let req = Prepared {
        method: "GET".parse().unwrap(),
        path_and_query: "/".into(),
        headers: vec![("x-note".into(), NOTE.into())],
        body: Default::default(),
    };
    let curl = livefire_fuzz::render::curl(&req, &target);
    assert!(curl.starts_with("curl "), "{curl}");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&curl)
        .output()
        .unwrap();
    assert!(out.status.success(), "{curl}");
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(got.contains(&format!("\r\nx-note: {NOTE}\r\n")), "{got}");
}
