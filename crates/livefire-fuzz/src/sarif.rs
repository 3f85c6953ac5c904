//! Findings as SARIF 2.1.0, for code-scanning UIs: one rule per check, one result per
//! finding, located at the operation's line in the spec when the spec is a file.

use serde_json::{Value, json};

use crate::finding::{Finding, Rule, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// The score code-scanning UIs sort by (0-10).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// The 1-based line where `path` is declared in `spec_text`, if it can be found.
fn line_of(spec_text: &str, path: &str) -> Option<usize> {
    let yaml = format!("{path}:");
    let quoted = format!("\"{path}\"");
    spec_text
        .lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(&yaml) || t.starts_with(&quoted) || t.starts_with(&format!("'{path}'"))
        })
        .map(|i| i + 1)
}

/// Builds the SARIF log. `spec_uri` names the spec (a relative path or URL);
/// `spec_text` (when the spec is a local file) lets results point at lines.
pub fn to_sarif(findings: &[Finding], spec_uri: &str, spec_text: Option<&str>) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.name(),
                "name": r.name(),
                "shortDescription": { "text": r.description() },
                "defaultConfiguration": { "level": level(r.severity()) },
                "properties": { "security-severity": security_severity(r.severity()), "tags": ["security", "api"] },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let path = f.operation.split_once(' ').map(|(_, p)| p).unwrap_or(&f.operation);
            let line = spec_text.and_then(|t| line_of(t, path)).unwrap_or(1);
            json!({
                "ruleId": f.rule.name(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": format!("{}: {} (input: {}). Reproduce: {}", f.operation, f.title, f.input, f.curl) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": spec_uri },
                        "region": { "startLine": line },
                    },
                    "logicalLocations": [{ "name": f.operation, "kind": "function" }],
                }],
                "partialFingerprints": { "livefireFinding/v1": format!("{}|{}|{}", f.operation, f.rule.name(), f.signature) },
                "properties": {
                    "severity": f.severity.name(),
                    "security-severity": security_severity(f.severity),
                    "signature": f.signature,
                    "curl": f.curl,
                    "at_ms": f.at_ms,
                    "active_faults": f.active_faults,
                    "instances": f.instances,
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "livefire",
                "informationUri": "https://github.com/livefire/livefire",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
