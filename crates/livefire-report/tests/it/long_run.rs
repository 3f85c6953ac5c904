//! A one-hour run at 10k rps: the report downsamples every series, so the page stays a
//! few hundred KB, and the percentiles in the summary stay exact (merged histograms).

#[path = "../../examples/synthetic_run.rs"]
mod synthetic_run;

#[test]
fn an_hour_at_10k_rps_gives_a_small_page_with_bounded_series() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_run::write_journal(dir.path(), 3600, 10_000).unwrap();
    let journal_size = std::fs::metadata(dir.path().join("journal.jsonl"))
        .unwrap()
        .len();
    let out = livefire_report::write_outputs(dir.path()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    eprintln!(
        "journal {journal_size} bytes -> report.html {} bytes",
        html.len()
    );
    assert!(
        html.len() < 3_000_000,
        "report.html is {} bytes",
        html.len()
    );
    // No line has more points than the downsampling allows.
    for path in html.split("<path class=\"series\" d=\"").skip(1) {
        let d = &path[..path.find('"').unwrap()];
        assert!(
            d.matches(" L").count() < 600,
            "a series with {} points",
            d.matches(" L").count()
        );
    }
    let s = out.summary;
    let load = &s.loads[0];
    assert_eq!(load.seconds, 3600);
    assert_eq!(load.completed, 3600 * 10_000);
    // The fault minute's timeouts are errors: about a tenth of 60 s of traffic.
    let rate = load.error_rate.unwrap();
    assert!(rate > 0.0005 && rate < 0.005, "{rate}");
    let p = load.latency_ms.as_ref().unwrap();
    assert!(p.p50 < 20.0 && p.max >= 200.0, "{p:?}");
    assert_eq!(s.faults[0].time_to_recover_ms, Some(5));
}
