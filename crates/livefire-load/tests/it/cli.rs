//! `livefire load` from flags: exit codes and the summary.

use clap::Parser;
use livefire_core::exit::Exit;
use livefire_load::cli::{LoadArgs, command};

use crate::server::{Opts, start};

#[derive(Parser)]
struct Top {
    #[command(flatten)]
    load: LoadArgs,
}

/// Parses the flags and runs the load; a flag clap refuses is exit 3 with its message,
/// as `livefire load` does.
fn exec(args: &[&str]) -> (u8, String, String) {
    let top = match Top::try_parse_from(std::iter::once("load").chain(args.iter().copied())) {
        Ok(top) => top,
        Err(e) => return (Exit::Invalid.code(), String::new(), e.to_string()),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = command(&top.load, &mut out, &mut err).code();
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
        (
            vec!["http://127.0.0.1:9/", "-r", "fast"],
            "invalid rate `fast`",
        ),
        (vec!["http://127.0.0.1:9/", "-r", "0"], "the rate is 0"),
        (
            vec!["http://127.0.0.1:9/", "-d", "10"],
            "a duration needs a unit",
        ),
        (
            vec!["http://127.0.0.1:9/", "--segment", "5/4"],
            "bad segment",
        ),
        (
            vec!["http://127.0.0.1:9/", "--data", "/nonexistent/users.csv"],
            "data file",
        ),
        (vec!["http://127.0.0.1:9/${nope}"], "unknown template"),
        (
            vec!["http://127.0.0.1:9/", "-r", "5", "--stage", "10/s"],
            "bad stage",
        ),
        (
            vec!["http://127.0.0.1:9/", "-c", "5", "--stage", "x:1s"],
            "VU count",
        ),
        (
            vec!["http://127.0.0.1:9/", "-r", "5", "--think", "1s"],
            "closed model",
        ),
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

#[derive(Parser)]
struct MergeTop {
    #[command(flatten)]
    merge: livefire_load::cli::MergeArgs,
}

fn merge(args: &[&str]) -> (u8, String, String) {
    let top = MergeTop::try_parse_from(std::iter::once("merge").chain(args.iter().copied()))
        .expect("flags parse");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = livefire_load::cli::merge_command(&top.merge, &mut out, &mut err).code();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn segments_written_with_out_merge_into_the_whole_load() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start(Opts::default()));
    let url = srv.url("/ok");
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut histos = Vec::new();
    for seg in ["1/2", "2/2"] {
        let dir = tmp.path().join(seg.replace('/', "of"));
        let (code, _, err) = exec(&[
            &url,
            "-r",
            "100",
            "-d",
            "1s",
            "--segment",
            seg,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("load.json")).unwrap()).unwrap();
        assert_eq!(v["intended"], 50, "each segment takes half of 100");
        let rep: livefire_load::LoadReport = serde_json::from_value(v["report"].clone()).unwrap();
        histos.push(rep.total.latency.clone());
        dirs.push(dir.to_str().unwrap().to_string());
    }
    // A run folder's journal works too: its load_ended events carry the same summary.
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let seg1 = std::fs::read_to_string(tmp.path().join("1of2/load.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&seg1).unwrap();
    let line = serde_json::json!({"v": 1, "seq": 9, "t": 1000, "type": "load_ended", "load": "load", "report": summary});
    std::fs::write(
        run_dir.join("journal.jsonl"),
        format!("{{\"v\":1,\"seq\":0,\"t\":0,\"type\":\"run_started\"}}\n{line}\n"),
    )
    .unwrap();

    let args: Vec<&str> = dirs.iter().map(String::as_str).chain(["--json"]).collect();
    let (code, out, err) = merge(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["intended"], 100);
    assert_eq!(v[0]["outcomes"]["ok"], 100);
    let merged: livefire_load::LoadReport = serde_json::from_value(v[0]["report"].clone()).unwrap();
    let mut whole = histos[0].clone();
    whole.merge(&histos[1]);
    assert_eq!(
        merged.total.latency, whole,
        "the merged histogram is the sum of the segments'"
    );

    let (code, out, err) = merge(&[&dirs[1], run_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("100 completed, 100 sent, 100 intended"),
        "{out}"
    );

    let (code, _, err) = merge(&[tmp.path().to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(err.contains("no load.json or journal.jsonl"), "{err}");
    drop(srv);
}

#[test]
fn stages_ramp_the_ad_hoc_load() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start(Opts::default()));
    let url = srv.url("/ok");
    // 100/s ramping to 200/s over 1 s, then down to 0 over 1 s: 150 + 100 sends.
    let (code, out, err) = exec(&[
        &url, "-r", "100", "--stage", "200/s:1s", "--stage", "0/s:1s", "-d", "2s", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["intended"], 250);
    assert_eq!(v["outcomes"]["ok"], 250);
    // VUs ramping from 1 to 3 with think time.
    let (code, out, err) = exec(&[
        &url, "-c", "1", "--stage", "3:300ms", "--think", "20ms", "-d", "600ms", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["outcomes"]["ok"].as_u64().unwrap() >= 10, "{v}");
    drop(srv);
}
