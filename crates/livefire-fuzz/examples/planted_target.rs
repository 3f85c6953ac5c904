//! The planted-defect target of the test tree as a process, for `bench/fuzz.sh`.
//!
//! `cargo run --release -p livefire-fuzz --example planted_target -- PORT [correct]
//! [--outage FROM_S TO_S]` serves the spec at `/openapi.yaml` and its counters at
//! `/__stats`; the auth dependency it starts is unreachable from FROM_S to TO_S
//! seconds after start (default 10 to 20), which opens the fail-open window.

#[path = "../tests/it/target.rs"]
mod target;

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.first().and_then(|p| p.parse().ok()).unwrap_or(18080);
    let mode = if args.iter().any(|a| a == "correct") {
        target::Mode::Correct
    } else {
        target::Mode::Defective
    };
    let (from, to) = match args.iter().position(|a| a == "--outage") {
        Some(i) => (
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(10u64),
            args.get(i + 2)
                .and_then(|v| v.parse().ok())
                .unwrap_or(20u64),
        ),
        None => (10, 20),
    };
    let mut dep = target::AuthDep::start().await;
    let t = target::start(mode, Some(dep.addr), &format!("127.0.0.1:{port}")).await;
    eprintln!("planted target ({mode:?}) on {}", t.base_url());
    tokio::time::sleep(Duration::from_secs(from)).await;
    dep.stop();
    tokio::time::sleep(Duration::from_secs(to.saturating_sub(from))).await;
    dep.restart().await;
    std::future::pending::<()>().await;
}
