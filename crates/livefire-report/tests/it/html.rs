//! report.html: one self-contained page with the verdict, aligned charts and tables;
//! damaged journals still give a page that says where they stop.

use crate::support::*;

/// Asserts the page loads nothing from anywhere: no script, no external URL in any
/// attribute that fetches, and a policy that forbids fetching.
fn assert_self_contained(html: &str) {
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    assert!(!html.contains("<script"), "no script");
    for attr in ["src=\"", "href=\"", "url("] {
        for (i, _) in html.match_indices(attr) {
            let value = &html[i + attr.len()..];
            assert!(
                value.starts_with("data:") || value.starts_with('#'),
                "external reference: {}",
                &html[i..(i + 80).min(html.len())]
            );
        }
    }
}

#[test]
fn a_run_with_load_has_every_chart_the_verdict_and_the_tables() {
    // The journal alone: the report reads nothing else from the run folder.
    let run = Run::fixture("planned-load-a");
    let s = run.report();
    let html = run.read("report.html");
    assert_self_contained(&html);
    assert!(html.contains(r#"<span id="verdict" class="verdict held">held</span>"#));
    for chart in [
        "events",
        "conditions",
        "probe-latency",
        "throughput",
        "latency",
        "error-rate",
    ] {
        assert!(
            html.contains(&format!("data-chart=\"{chart}\"")),
            "chart {chart} missing"
        );
    }
    // The fault window is shaded on every chart.
    let charts = html.matches("<svg class=\"chart\"").count();
    assert_eq!(html.matches("<rect class=\"fault\"").count(), charts);
    for c in &s.conditions {
        assert!(html.contains(&format!("<td>{}</td>", c.name)), "{}", c.name);
    }
    assert!(html.contains("worker paused"));
    // Margins in the metric's unit, against the bound as written.
    assert!(
        html.contains("(browse.latency.p99 below 5s)")
            && html.contains("(browse.rate_achieved at least 95%)"),
        "{html}"
    );
    assert!(html.contains("time to recover"));
    // The experiment as run, from the journal's plan event, escaped.
    let experiment = &html[html
        .find("<pre id=\"experiment\">")
        .expect("the experiment")..];
    assert!(
        experiment.contains("livefire sandbox http --listen 127.0.0.1:18081"),
        "{experiment}"
    );
}

#[test]
fn a_journal_from_before_the_plan_event_says_the_experiment_is_not_in_it() {
    let run = Run::fixture("held-load");
    run.report();
    let html = run.read("report.html");
    assert!(!html.contains("<pre id=\"experiment\">"));
    assert!(html.contains("this journal has no plan event"), "{html}");
    // Margins in canonical units, with the bound the journal carries.
    assert!(html.contains("vs bound 5"), "{html}");
}

#[test]
fn a_run_without_load_says_the_metric_charts_appear_with_one() {
    let run = Run::fixture("held-pause");
    run.report();
    let html = run.read("report.html");
    assert_self_contained(&html);
    assert!(!html.contains("data-chart=\"throughput\""));
    assert!(html.contains("no load metric windows in the journal"));
}

#[test]
fn an_aborted_run_shows_the_trip_across_the_charts() {
    let run = Run::fixture("aborted-guardrail");
    run.report();
    let html = run.read("report.html");
    assert!(html.contains(r#"class="verdict aborted""#));
    assert!(html.contains(r#"id="aborted""#));
    let charts = html.matches("<svg class=\"chart\"").count();
    // The trip and the abort each mark every chart.
    assert_eq!(html.matches("<line class=\"trip\"").count(), 2 * charts);
    assert!(html.contains("tripped"));
    // The timeouts of the frozen worker, by kind.
    assert!(html.contains("data-chart=\"errors-by-kind\""));
    assert!(html.contains("<title>timeout</title>"));
}

#[test]
fn a_truncated_journal_still_gives_a_report_saying_where_it_stops() {
    let run = Run::fixture("held-load");
    let journal = run.read("journal.jsonl");
    // A crash mid-write: the file ends half-way through line 20.
    let cut: usize = journal.lines().take(19).map(|l| l.len() + 1).sum::<usize>() + 30;
    std::fs::write(run.file("journal.jsonl"), &journal[..cut]).unwrap();
    let s = run.report();
    let stopped = s.journal_stopped.clone().unwrap();
    assert!(stopped.starts_with("line 20:"), "{stopped}");
    assert_eq!(s.verdict, None);
    let html = run.read("report.html");
    assert!(html.contains("id=\"journal-stopped\""));
    assert!(html.contains("line 20: the journal stops here"));
    assert!(html.contains(r#"class="verdict unknown""#));
    let xml = run.read("junit.xml");
    assert!(
        xml.contains("<error message=\"the journal is incomplete\""),
        "{xml}"
    );
}

#[test]
fn a_journal_from_a_newer_livefire_says_so() {
    let run = Run::fixture("held-pause");
    let mut journal = run.read("journal.jsonl");
    let lines = journal.lines().count();
    journal.push_str("{\"v\":2,\"seq\":999,\"t\":9999,\"type\":\"teleport\"}\n");
    std::fs::write(run.file("journal.jsonl"), journal).unwrap();
    let s = run.report();
    let stopped = s.journal_stopped.unwrap();
    assert!(
        stopped.starts_with(&format!("line {}:", lines + 1)),
        "{stopped}"
    );
    assert!(
        stopped
            .contains("journal version 2 is newer than this livefire reads (1): upgrade livefire"),
        "{stopped}"
    );
    assert!(
        run.read("report.html")
            .contains("journal version 2 is newer")
    );
}

#[test]
fn garbage_instead_of_a_journal_gives_a_report_not_a_panic() {
    let max = u64::MAX;
    let cases = [
        String::new(),
        "\0\0\0".into(),
        "not json\n".into(),
        "[1,2,3]\n".into(),
        "{\"v\":\"one\"}\n".into(),
        "{\"v\":1,\"type\":\"probe\",\"t\":-5}\n".into(),
        // Regression: a time near u64::MAX overflowed the time axis' arithmetic.
        format!("{{\"v\":1,\"seq\":0,\"t\":{max},\"type\":\"warning\",\"message\":\"x\"}}\n"),
        format!("{{\"v\":1,\"seq\":0,\"t\":5,\"type\":\"window\",\"series\":\"b\",\"second\":{max},\"window\":{{\"counts\":{{}},\"intended\":0,\"sent\":0,\"latency\":\"\"}}}}\n"),
        "{\"v\":1,\"seq\":0,\"t\":5,\"type\":\"probe\",\"condition\":\"c\",\"role\":\"hypothesis\",\"phase\":\"during\",\"ok\":false,\"detail\":\"\",\"latency_ms\":-1e308}\n".into(),
        "{\"v\":1,\"seq\":0,\"t\":5,\"type\":\"window\",\"series\":\"b\",\"second\":1,\"window\":{\"counts\":{\"ok\":3},\"intended\":3,\"sent\":3,\"latency\":\"bm90IGEgaGlzdG9ncmFt\"}}\n".into(),
    ];
    for text in &cases {
        let run = Run::fixture("held-pause");
        std::fs::write(run.file("journal.jsonl"), text).unwrap();
        let s = run.report();
        assert_eq!(s.verdict, None, "{text:?}");
        assert!(run.read("report.html").contains("</html>"));
    }
}

#[test]
fn a_folder_without_a_journal_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = livefire_report::write_outputs(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no journal.jsonl here: pass a run folder"),
        "{err}"
    );
}

#[test]
fn findings_show_with_severity_reproducer_and_the_faults_active() {
    let run = Run::fixture("fuzz-finding");
    let s = run.report();
    // No hypothesis probe: no time to recover to speak of.
    assert_eq!(s.faults[0].time_to_recover_ms, None);
    let html = run.read("report.html");
    assert_self_contained(&html);
    assert!(html.contains(r#"<table id="findings">"#));
    assert_eq!(
        html.matches("<rect class=\"finding sev-critical\"").count(),
        3
    );
    let row = html
        .lines()
        .find(|l| l.contains("<code>GET /account</code>"))
        .expect("the finding on GET /account");
    assert!(row.contains("auth down"), "{row}");
    assert!(
        row.contains("<code class=\"repro\">curl -sS -i -X GET"),
        "{row}"
    );
}

#[test]
fn report_takes_the_run_folder_or_its_journal() {
    let run = Run::fixture("held-pause");
    let args = livefire_report::cli::ReportArgs {
        home: run.path().join("home"),
        run_dir: run.file("journal.jsonl"),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        livefire_report::cli::report(&args, &mut out, &mut err),
        livefire_core::exit::Exit::Ok
    );
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("verdict held (exit 0)"), "{out}");
    assert!(run.file("report.html").exists());
}

#[test]
fn an_unnamed_fault_is_shown_by_its_display_name_from_the_plan() {
    // The pause run as it would journal a timeline entry without `name:`: events carry
    // `timeline[0]`, the plan says what people call it.
    let run = Run::fixture("planned-pause");
    let journal = run
        .read("journal.jsonl")
        .replace(
            r#""name":"worker paused","display":"worker paused""#,
            r#""name":"timeline[0]","display":"process.pause worker""#,
        )
        .replace(
            r#""activity":"worker paused""#,
            r#""activity":"timeline[0]""#,
        );
    std::fs::write(run.file("journal.jsonl"), journal).unwrap();
    run.report();
    let html = run.read("report.html");
    let faults = &html[html.find(r#"<table id="faults">"#).unwrap()..];
    let faults = &faults[..faults.find("</table>").unwrap()];
    assert!(faults.contains("<td>process.pause worker</td>"), "{faults}");
    assert!(!faults.contains("timeline[0]"), "{faults}");
}
