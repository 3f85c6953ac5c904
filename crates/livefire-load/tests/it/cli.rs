//! `livefire load` from flags: exit codes and the summary.

use clap::Parser;
use livefire_load::cli::{LoadArgs, command};

use crate::server::{Opts, start};

#[derive(Parser)]
struct Top {
    #[command(flatten)]
    load: LoadArgs,
}

fn exec(args: &[&str]) -> (u8, String, String) {
    let top = Top::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
        .expect("flags parse");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = command(&top.load, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn bad_input_exits_3_with_a_message() {
    for (args, want) in [
        (vec!["notaurl"], "bad URL"),
        (vec!["ftp://127.0.0.1/"], "scheme"),
        (vec!["http://127.0.0.1:9/", "-r", "fast"], "bad rate"),
        (vec!["http://127.0.0.1:9/", "-r", "0"], "bad rate"),
        (vec!["http://127.0.0.1:9/", "-d", "10"], "bad duration"),
        (
            vec!["http://127.0.0.1:9/", "--segment", "5/4"],
            "bad segment",
        ),
        (
            vec!["http://127.0.0.1:9/", "--data", "/nonexistent/users.csv"],
            "data file",
        ),
        (vec!["http://127.0.0.1:9/${nope}"], "unknown template"),
    ] {
        let (code, out, err) = exec(&args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn prints_a_summary_and_json() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start(Opts::default()));
    let url = srv.url("/ok");
    let (code, out, err) = exec(&[&url, "-r", "100", "-d", "500ms"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "Throughput:",
        "Rate achieved:  100.0 %",
        "99.9%",
        "Percentile spectrum",
        "ok               50",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
    let (code, out, _) = exec(&[&url, "-c", "2", "-d", "300ms", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["outcomes"]["ok"].as_u64().unwrap() > 0);
    assert!(v["latency_secs"]["percentiles"]["p99"].as_f64().unwrap() > 0.0);
    // The embedded report merges exactly with another segment's.
    let rep: livefire_load::LoadReport = serde_json::from_value(v["report"].clone()).unwrap();
    assert_eq!(
        rep.total.counts.get(livefire_core::window::Outcome::Ok),
        v["outcomes"]["ok"].as_u64().unwrap()
    );
    drop(srv);
}
