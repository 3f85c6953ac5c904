//! summary.json and its committed JSON Schema (schema/summary.json).

use livefire_core::events::{AbortCause, Verdict};

use crate::support::*;

fn committed() -> serde_json::Value {
    let path = repo().join("schema/summary.json");
    if std::env::var_os("LIVEFIRE_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&livefire_report::summary_schema()).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
    }
    serde_json::from_str(&std::fs::read_to_string(&path).expect("schema/summary.json exists"))
        .expect("schema/summary.json is JSON")
}

fn errors(validator: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

#[test]
fn committed_schema_is_current() {
    assert_eq!(
        committed(),
        livefire_report::summary_schema(),
        "schema/summary.json is stale: run `LIVEFIRE_BLESS=1 cargo test -p livefire-report --test it schema`"
    );
}

#[test]
fn real_runs_summaries_validate_against_the_committed_schema() {
    let validator = jsonschema::validator_for(&committed()).expect("a valid JSON Schema");
    for name in FIXTURES {
        let run = Run::fixture(name);
        run.report();
        let doc: serde_json::Value = serde_json::from_str(&run.read("summary.json")).unwrap();
        let errs = errors(&validator, &doc);
        assert!(
            errs.is_empty(),
            "{name}: summary.json does not match:\n{}",
            errs.join("\n")
        );
        // And it reads back as the same summary.
        let back: livefire_report::Summary = serde_json::from_value(doc).unwrap();
        assert_eq!(back, run.report(), "{name}");
    }
}

/// The schema mirrors livefire-core's enums; every variant must validate, so the
/// mirror cannot drift from the real types.
#[test]
fn every_verdict_and_abort_cause_validates() {
    let validator = jsonschema::validator_for(&committed()).unwrap();
    let run = Run::fixture("held-pause");
    let base = serde_json::to_value(run.report()).unwrap();
    let verdicts = [
        Verdict::Held,
        Verdict::Deviated,
        Verdict::Failed,
        Verdict::Aborted,
        Verdict::Invalid,
        Verdict::RollbackIncomplete,
    ];
    let causes = [
        AbortCause::Guardrail {
            condition: "c".into(),
            detail: "d".into(),
        },
        AbortCause::Signal {
            signal: "SIGINT".into(),
        },
        AbortCause::Halt { from: None },
        AbortCause::Halt {
            from: Some("the console by alice".into()),
        },
        AbortCause::MaxDuration,
        AbortCause::Panic {
            activity: "a".into(),
            message: "m".into(),
        },
        AbortCause::Error {
            message: "m".into(),
        },
    ];
    for v in verdicts {
        let mut doc = base.clone();
        doc["verdict"] = serde_json::to_value(v).unwrap();
        assert!(errors(&validator, &doc).is_empty(), "{v:?}");
    }
    for c in causes {
        let mut doc = base.clone();
        doc["aborted"] = serde_json::to_value(&c).unwrap();
        assert!(errors(&validator, &doc).is_empty(), "{c:?}");
    }
    // And the schema is not vacuous: a verdict it does not know is refused.
    let mut doc = base.clone();
    doc["verdict"] = "maybe".into();
    assert!(!errors(&validator, &doc).is_empty());
}

#[test]
fn summaries_of_real_runs_say_what_happened() {
    let s = Run::fixture("held-load").report();
    assert_eq!(s.verdict, Some(Verdict::Held));
    let load = &s.loads[0];
    assert_eq!(load.name, "browse");
    assert_eq!(load.intended, 800, "100/s for 8 s");
    assert_eq!(load.requests[0].name, "health");
    let p = load.latency_ms.as_ref().unwrap();
    assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max, "{p:?}");
    assert!(p.p99 >= 1000.0, "the 2 s pause shows in p99: {p:?}");
    let f = &s.faults[0];
    assert!(
        f.time_to_impact_ms.is_some() && f.time_to_recover_ms.is_some(),
        "{f:?}"
    );

    let s = Run::fixture("aborted-guardrail").report();
    assert_eq!(s.verdict, Some(Verdict::Aborted));
    assert_eq!(s.exit_code, Some(2));
    let reason = s.abort_reason.unwrap();
    assert!(
        reason.contains("guardrail `errors below half` tripped"),
        "{reason}"
    );
    let g = s
        .conditions
        .iter()
        .find(|c| c.name == "errors below half")
        .unwrap();
    assert!(!g.held);
    assert!(g.worst_value.unwrap() > 0.5, "{g:?}");
}
