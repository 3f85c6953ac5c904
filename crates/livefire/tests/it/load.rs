//! `livefire load`: the binary runs a load and exits 0, or refuses bad flags with 3.

use crate::support::{livefire, run};

#[test]
fn load_measures_a_refused_port_and_refuses_bad_flags() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let (code, out, err) = run(livefire().args(["load", &url, "-r", "20", "-d", "500ms"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("connect_refused  10"), "{out}");
    let (code, _, err) = run(livefire().args(["load", &url, "-r", "lots"]));
    assert_eq!(code, 3);
    assert!(err.contains("invalid rate `lots`"), "{err}");
}

/// Mistakes a new user made on purpose: each is refused with what to write instead,
/// and nothing is sent.
#[test]
fn url_typos_are_refused_with_what_to_write() {
    let cases: &[(&[&str], &str)] = &[
        // Ran and exited 0 with every request counted as "other".
        (
            &["load", "http://:28010/", "-d", "1s"],
            "the URL has no host",
        ),
        // Said "invalid format".
        (
            &["load", "htp:/x", "-d", "1s"],
            "it is not a URL (no `://`)",
        ),
        // The fuzzer read the spec first and blamed it.
        (
            &[
                "fuzz",
                "/no/such/spec.yaml",
                "--base-url",
                "htp:/x",
                "-d",
                "1s",
            ],
            "--base-url: base URL \"htp:/x\" must start with http://",
        ),
        (
            &[
                "fuzz",
                "/no/such/spec.yaml",
                "--base-url",
                "http://:28010",
                "-d",
                "1s",
            ],
            "has no host",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = run(livefire().args(*args));
        assert_eq!(code, 3, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.contains("write it like http://"), "{args:?}: {err}");
    }
}

/// `--rps` is what k6 users type; clap's hint to pass it after `--` was wrong.
#[test]
fn rps_is_another_name_of_rate() {
    let url = format!("http://127.0.0.1:{}/", crate::support::free_port());
    let (code, out, err) = run(livefire().args(["load", &url, "--rps", "20", "-d", "500ms"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("connect_refused  10"), "{out}");
}
