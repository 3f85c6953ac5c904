//! junit.xml: a test case per condition and guardrail, failures carry the detail.

use crate::support::*;

fn attr(xml: &str, tag: &str, name: &str) -> String {
    let start = xml
        .find(&format!("<{tag} "))
        .unwrap_or_else(|| panic!("no <{tag}>"));
    let rest = &xml[start..];
    let key = format!(" {name}=\"");
    let i = rest
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} on <{tag}>"))
        + key.len();
    rest[i..].split('"').next().unwrap().to_owned()
}

#[test]
fn a_held_run_is_a_passing_suite_with_a_case_per_condition() {
    let run = Run::fixture("held-load");
    let s = run.report();
    let xml = run.read("junit.xml");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert_eq!(attr(&xml, "testsuites", "failures"), "0");
    assert_eq!(attr(&xml, "testsuites", "errors"), "0");
    // Every condition, plus "every fault rolled back" and "run completed".
    assert_eq!(
        attr(&xml, "testsuite", "tests"),
        (s.conditions.len() + 2).to_string()
    );
    for c in &s.conditions {
        assert!(xml.contains(&format!("name=\"{}\"", c.name)), "{}", c.name);
    }
    assert!(xml.contains(r#"classname="livefire.guardrail""#));
    assert_eq!(
        xml.matches("<testcase ").count(),
        xml.matches("</testcase>").count()
    );
}

#[test]
fn a_tripped_guardrail_is_a_failure_with_its_detail_and_the_abort_an_error() {
    let run = Run::fixture("aborted-guardrail");
    run.report();
    let xml = run.read("junit.xml");
    assert_eq!(attr(&xml, "testsuites", "failures"), "1", "{xml}");
    assert_eq!(attr(&xml, "testsuites", "errors"), "1", "{xml}");
    let case = &xml[xml.find(r#"name="errors below half""#).unwrap()..];
    let case = &case[..case.find("</testcase>").unwrap()];
    assert!(
        case.contains(
            "<failure message=\"guardrail `errors below half` tripped and aborted the run\""
        ),
        "{case}"
    );
    assert!(
        case.contains("browse.error_rate = 0.775, expected below 50%"),
        "{case}"
    );
    assert!(
        xml.contains("aborted: guardrail `errors below half` tripped"),
        "{xml}"
    );
}

#[test]
fn conditions_declared_but_never_judged_are_skipped_cases() {
    let run = Run::fixture("planned-pause");
    // Add a condition to the journal's plan that the run never sampled.
    let journal = run.read("journal.jsonl");
    let lines: Vec<String> = journal
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["type"] == "plan" {
                v["conditions"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({
                        "name": "never sampled", "role": "hypothesis", "kind": "metric",
                        "subject": "x.rps", "expect": "above 1"
                    }));
            }
            v.to_string()
        })
        .collect();
    std::fs::write(run.file("journal.jsonl"), lines.join("\n")).unwrap();
    run.report();
    let xml = run.read("junit.xml");
    assert_eq!(attr(&xml, "testsuites", "skipped"), "1", "{xml}");
    let case = &xml[xml.find(r#"name="never sampled""#).unwrap()..];
    assert!(case[..case.find("</testcase>").unwrap()].contains("<skipped message=\"never judged"));
    // Every condition of the plan that was judged is a case of its own.
    assert!(xml.contains(r#"name="guardrails[0]""#), "{xml}");
}

#[test]
fn findings_are_a_case_per_campaign_and_rule_with_their_reproducers() {
    let run = Run::fixture("fuzz-finding");
    let s = run.report();
    assert_eq!(s.findings.len(), 3);
    let xml = run.read("junit.xml");
    let case = &xml[xml
        .find(r#"<testcase classname="livefire.finding" name="api-fuzz: auth_enforced">"#)
        .expect("a case for the rule")..];
    let case = &case[..case.find("</testcase>").unwrap()];
    assert!(
        case.contains("<failure message=\"3 finding(s) at or above settings.fail_on\""),
        "{case}"
    );
    assert!(case.contains("GET /account: secured operation answered 200 with garbage token (faults active: auth down)"), "{case}");
    assert!(case.contains("curl -sS -i -X GET"), "{case}");
}
