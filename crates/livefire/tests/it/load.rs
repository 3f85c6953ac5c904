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
    assert!(err.contains("bad rate"), "{err}");
}
