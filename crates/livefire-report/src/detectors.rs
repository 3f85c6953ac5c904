//! "See who notices": for each fault, which detectors noticed it and how long after it
//! was applied (each hypothesis condition and guardrail, each load's errors, each fuzz
//! campaign's findings, PostgreSQL itself and each `watch:` command, from their
//! `watching` and `noticed` events), from the journal alone; a fault nobody noticed is a
//! finding.

use std::collections::BTreeMap;

use livefire_core::events::Event;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::summary::{FaultSummary, FindingSummary};

/// One fault and what noticed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FaultDetectors {
    /// The fault's display name.
    pub fault: String,
    pub applied_ms: u64,
    /// Every detector the run had, the ones that noticed first (earliest first), then
    /// the ones that did not.
    pub detectors: Vec<Detector>,
    /// Whether no detector noticed the fault while it was active.
    pub nobody_noticed: bool,
}

/// One detector's view of one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Detector {
    /// The condition, load or campaign (`health answers`, `orders`, `api-fuzz`).
    pub name: String,
    /// `hypothesis`, `guardrail`, `load errors`, `findings`, `postgresql` (the server a
    /// fault acts on: `TARGET checksums`, `TARGET server log`) or `watch` (a `watch:`
    /// command).
    pub kind: String,
    /// From the fault's start to the detector's first sign of it; `None`: it did not
    /// notice while the fault was active.
    pub noticed_after_ms: Option<u64>,
    /// What it saw, in words (`503 Service Unavailable`, `12 errors in second 6`).
    #[serde(default)]
    pub how: String,
}

/// A sign from one detector, on the run's clock: when it began (a probe's send time)
/// and when it was seen (its answer).
struct Sign {
    at: u64,
    done: u64,
    how: String,
}

/// Each fault's detectors. A sign counts for a fault when it came while the fault was
/// active: at or after its apply began (one seen before the apply returned noticed it
/// after 0 ms), at or before its rollback.
pub fn who_noticed(journal: &Journal, faults: &[FaultSummary]) -> Vec<FaultDetectors> {
    let streams = streams(journal);
    faults
        .iter()
        .map(|f| {
            let from = f.applied_ms;
            let opened = crate::summary::apply_began(from, f.applying_ms);
            let until = f.rolled_back_ms.unwrap_or(u64::MAX);
            let mut detectors: Vec<Detector> = streams
                .iter()
                .map(|(key, signs)| {
                    // A sign under way when the fault began (a probe sent before it and
                    // answered after it) counts from the fault's start.
                    let first = signs.iter().find(|s| s.done >= opened && s.at <= until);
                    Detector {
                        name: key.1.clone(),
                        kind: key.0.clone(),
                        noticed_after_ms: first.map(|s| s.at.max(from) - from),
                        how: first.map(|s| s.how.clone()).unwrap_or_default(),
                    }
                })
                .collect();
            detectors.sort_by_key(|d| (d.noticed_after_ms.is_none(), d.noticed_after_ms));
            FaultDetectors {
                fault: f.activity.clone(),
                applied_ms: from,
                nobody_noticed: detectors.iter().all(|d| d.noticed_after_ms.is_none()),
                detectors,
            }
        })
        .collect()
}

/// The finding that a fault went unnoticed: severity high. It does not fail the
/// verdict on its own: a fault a resilient system absorbs is unnoticed too, so it is
/// listed for people to judge (and to add a `watch:` or a probe that would notice).
pub fn unnoticed_findings(
    detectors: &[FaultDetectors],
    faults: &[FaultSummary],
) -> Vec<FindingSummary> {
    detectors
        .iter()
        .zip(faults)
        .filter(|(d, _)| d.nobody_noticed)
        .map(|(d, f)| FindingSummary {
            campaign: "detectors".into(),
            severity: "high".into(),
            fails: false,
            at_ms: f.rolled_back_ms.unwrap_or(f.applied_ms),
            rule: "nobody_noticed".into(),
            operation: format!("{} {}", f.kind, f.target).trim().to_owned(),
            title: format!(
                "nobody noticed `{}`: no hypothesis condition, guardrail, load error, finding, PostgreSQL check or watch while it was active{}",
                d.fault,
                if d.detectors.is_empty() {
                    " (the experiment declares no detector)"
                } else {
                    ""
                }
            ),
            reproducer: String::new(),
            active_faults: vec![d.fault.clone()],
        })
        .collect()
}

/// Adds the `nobody_noticed` findings among `findings` to a SARIF log (the run's
/// findings.sarif, built from its fuzz findings): the rule once, and a result per
/// unnoticed fault, located at the experiment file, so code scanning lists them beside
/// what the fuzzer found.
pub fn add_to_sarif(sarif: &mut serde_json::Value, findings: &[FindingSummary], experiment: &str) {
    let unnoticed: Vec<&FindingSummary> = findings
        .iter()
        .filter(|f| f.rule == "nobody_noticed")
        .collect();
    let Some(run) = sarif
        .get_mut("runs")
        .and_then(|r| r.get_mut(0))
        .filter(|_| !unnoticed.is_empty())
    else {
        return;
    };
    let rules = run
        .pointer_mut("/tool/driver/rules")
        .and_then(|r| r.as_array_mut());
    let index = match rules {
        Some(rules) => {
            rules.push(serde_json::json!({
                "id": "nobody_noticed",
                "name": "nobody_noticed",
                "shortDescription": { "text": "a fault no detector noticed while it was active" },
                "defaultConfiguration": { "level": "error" },
                "properties": { "tags": ["resilience", "observability"] },
            }));
            rules.len() - 1
        }
        None => return,
    };
    let results: Vec<serde_json::Value> = unnoticed
        .iter()
        .map(|f| {
            serde_json::json!({
                "ruleId": "nobody_noticed",
                "ruleIndex": index,
                "level": "error",
                "message": { "text": f.title },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": experiment },
                        "region": { "startLine": 1 },
                    },
                    "logicalLocations": [{ "name": f.operation, "kind": "resource" }],
                }],
                "partialFingerprints": { "livefireFinding/v1": format!("{}|nobody_noticed", f.operation) },
                "properties": {
                    "severity": f.severity,
                    "at_ms": f.at_ms,
                    "active_faults": f.active_faults,
                },
            })
        })
        .collect();
    if let Some(list) = run.get_mut("results").and_then(|r| r.as_array_mut()) {
        list.extend(results);
    }
}

/// The text lines of the end-of-run summary: `who noticed `primary killed`: health
/// answers after 0.12s, load orders after 0.02s; nobody: api-fuzz`.
pub fn lines(detectors: &[FaultDetectors]) -> Vec<String> {
    detectors
        .iter()
        .map(|f| {
            if f.nobody_noticed {
                return format!("who noticed `{}`: nobody", f.fault);
            }
            let noticed: Vec<String> = f
                .detectors
                .iter()
                .filter_map(|d| {
                    d.noticed_after_ms
                        .map(|ms| format!("{} after {}", d.name, crate::summary::dur(ms)))
                })
                .collect();
            format!("who noticed `{}`: {}", f.fault, noticed.join(", "))
        })
        .collect()
}

/// Every detector's signs, in time order, by (kind, name).
fn streams(journal: &Journal) -> BTreeMap<(String, String), Vec<Sign>> {
    let mut out: BTreeMap<(String, String), Vec<Sign>> = BTreeMap::new();
    // Every declared condition is a detector, even one that never failed.
    if let Some(plan) = journal.plan() {
        for c in &plan.conditions {
            out.entry((c.role.label().into(), c.name.clone()))
                .or_default();
        }
    }
    for r in &journal.records {
        match &r.event {
            Event::Probe {
                condition,
                role: who,
                ok,
                detail,
                latency_ms,
                ..
            } => {
                let signs = out
                    .entry((who.label().into(), condition.clone()))
                    .or_default();
                if !ok {
                    // At its send time: a probe that hung noticed when it was sent.
                    signs.push(Sign {
                        at: crate::summary::sent_at(r.t, *latency_ms),
                        done: r.t,
                        how: detail.clone(),
                    });
                }
            }
            Event::Metric {
                condition,
                role: who,
                ok,
                value,
                metric,
                comparison,
                bound,
                ..
            } => {
                let signs = out
                    .entry((who.label().into(), condition.clone()))
                    .or_default();
                if !ok {
                    signs.push(Sign {
                        at: r.t,
                        done: r.t,
                        how: match value {
                            Some(v) => format!(
                                "{metric} = {} ({comparison} {} expected)",
                                crate::summary::num(*v),
                                crate::summary::num(*bound)
                            ),
                            None => format!("{metric} has no value"),
                        },
                    });
                }
            }
            Event::Watching { detector, kind } => {
                out.entry((kind.clone(), detector.clone())).or_default();
            }
            Event::Noticed {
                detector,
                kind,
                how,
            } => out
                .entry((kind.clone(), detector.clone()))
                .or_default()
                .push(Sign {
                    at: r.t,
                    done: r.t,
                    how: how.clone(),
                }),
            Event::Finding {
                campaign, finding, ..
            } => out
                .entry(("findings".into(), campaign.clone()))
                .or_default()
                .push(Sign {
                    at: r.t,
                    done: r.t,
                    how: finding
                        .get("title")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                }),
            _ => {}
        }
    }
    // Fuzz campaigns that found nothing are detectors too.
    if let Some(plan) = journal.plan() {
        for a in plan.activities.iter().filter(|a| a.kind == "fuzz") {
            out.entry(("findings".into(), a.name.clone())).or_default();
        }
    }
    for (name, signs) in load_errors(journal) {
        out.insert(("load errors".into(), name), signs);
    }
    for signs in out.values_mut() {
        signs.sort_by_key(|s| s.at);
    }
    out
}

/// Each load's errors: a sign per second with errors (at the second's end: the window
/// says no more), and, for loads that track writes, each run of failed writes from the
/// time its first write ended (finer).
fn load_errors(journal: &Journal) -> Vec<(String, Vec<Sign>)> {
    let mut loads: Vec<(&str, &[(u64, livefire_core::window::Counts)])> = journal
        .metrics
        .loads
        .iter()
        .map(|l| (l.name.as_str(), l.error_seconds.as_slice()))
        .collect();
    // A load that tracked writes is a detector even when its windows are missing.
    for r in &journal.records {
        if let Event::WriteOutcomes { load, .. } = &r.event
            && !loads.iter().any(|l| l.0 == load.as_str())
        {
            loads.push((load, &[]));
        }
    }
    let mut out = Vec::new();
    for (name, error_seconds) in loads {
        let mut signs = Vec::new();
        for (second, counts) in error_seconds {
            let kinds: Vec<String> = counts
                .iter()
                .filter(|(o, _)| o.is_error())
                .map(|(o, n)| format!("{n} {o}"))
                .collect();
            let end = second * 1000 + 999;
            signs.push(Sign {
                at: end,
                done: end,
                how: format!("by the end of second {second}: {}", kinds.join(", ")),
            });
        }
        for r in &journal.records {
            if let Event::WriteOutcomes { load, runs, .. } = &r.event
                && load == name
            {
                for run in runs.iter().filter(|run| !run.ok) {
                    signs.push(Sign {
                        at: run.first_done_ms,
                        done: run.last_done_ms,
                        how: format!("{} tracked write(s) failed", run.n),
                    });
                }
            }
        }
        out.push((name.to_owned(), signs));
    }
    out
}

#[cfg(test)]
mod tests {
    use livefire_core::events::{Event, Phase, Record, Role, WriteRun};

    use crate::journal::parse_journal;
    use crate::summary::summarize;

    fn line(seq: u64, t: u64, event: Event) -> String {
        serde_json::to_string(&Record {
            v: 1,
            seq,
            t,
            event,
        })
        .unwrap()
    }

    fn probe(ok: bool, latency_ms: f64) -> Event {
        Event::Probe {
            condition: "health answers".into(),
            role: Role::Hypothesis,
            phase: Phase::During,
            ok,
            detail: if ok { "status 200" } else { "status 503" }.into(),
            latency_ms,
        }
    }

    fn fault(name: &str) -> Event {
        Event::FaultApplied {
            activity: name.into(),
            kind: "process.kill".into(),
            target: "primary".into(),
            detail: String::new(),
            applying_ms: None,
        }
    }

    fn back(name: &str) -> Event {
        Event::FaultRolledBack {
            activity: name.into(),
            kind: "process.kill".into(),
            ok: true,
            detail: String::new(),
            by: "engine".into(),
        }
    }

    /// A kill felt by the probe and the writes, then a slow link nobody felt.
    fn journal() -> String {
        let events = [
            (1000, probe(true, 2.0)),
            (5000, fault("primary killed")),
            // Sent at 4.9 s, answered failing at 5.3 s: under way at the kill.
            (5300, probe(false, 400.0)),
            (6000, probe(false, 1.0)),
            (
                20_000,
                Event::WriteOutcomes {
                    load: "orders".into(),
                    runs: vec![
                        WriteRun {
                            ok: true,
                            n: 100,
                            first_sent_ms: 0,
                            last_sent_ms: 4990,
                            first_done_ms: 5,
                            last_done_ms: 4995,
                        },
                        WriteRun {
                            ok: false,
                            n: 60,
                            first_sent_ms: 5002,
                            last_sent_ms: 7990,
                            first_done_ms: 5120,
                            last_done_ms: 7995,
                        },
                    ],
                    truncated_ms: None,
                },
            ),
            (9000, probe(true, 2.0)),
            (15_000, back("primary killed")),
            (16_000, fault("link slow")),
            (17_000, probe(true, 2.0)),
            (18_000, back("link slow")),
        ];
        let mut out = String::new();
        for (seq, (t, e)) in events.into_iter().enumerate() {
            out.push_str(&line(seq as u64, t, e));
            out.push('\n');
        }
        out
    }

    #[test]
    fn each_fault_says_who_noticed_it_and_when_and_nobody_is_a_finding() {
        let s = summarize(&parse_journal(&journal()));
        let kill = &s.detectors[0];
        assert_eq!(kill.fault, "primary killed");
        assert!(!kill.nobody_noticed);
        let noticed: Vec<(&str, Option<u64>)> = kill
            .detectors
            .iter()
            .map(|d| (d.name.as_str(), d.noticed_after_ms))
            .collect();
        // The probe under way at the kill counts from the kill; the first failed write
        // ended 120 ms after it.
        assert_eq!(
            noticed,
            vec![("health answers", Some(0)), ("orders", Some(120))]
        );
        let slow = &s.detectors[1];
        assert!(slow.nobody_noticed, "{slow:?}");
        let finding = s
            .findings
            .iter()
            .find(|f| f.rule == "nobody_noticed")
            .expect("nobody noticed is a finding");
        assert_eq!(finding.severity, "high");
        assert_eq!(finding.active_faults, vec!["link slow".to_owned()]);
        assert_eq!(
            super::lines(&s.detectors),
            vec![
                "who noticed `primary killed`: health answers after 0 ms, orders after 120 ms",
                "who noticed `link slow`: nobody",
            ]
        );
    }

    #[test]
    fn postgresql_and_watch_commands_are_detectors_from_their_events() {
        let watching = |detector: &str, kind: &str| Event::Watching {
            detector: detector.into(),
            kind: kind.into(),
        };
        let noticed = |detector: &str, kind: &str, how: &str| Event::Noticed {
            detector: detector.into(),
            kind: kind.into(),
            how: how.into(),
        };
        let events = [
            (0, watching("disk-alert", "watch")),
            (1000, watching("orders-db checksums", "postgresql")),
            (1000, watching("orders-db server log", "postgresql")),
            (1100, fault("page damaged")),
            (
                2500,
                noticed(
                    "orders-db server log",
                    "postgresql",
                    "ERROR:  invalid page in block 0 of relation base/5/16390",
                ),
            ),
            (
                3100,
                noticed(
                    "orders-db checksums",
                    "postgresql",
                    "pg_stat_database.checksum_failures rose from 0 to 1",
                ),
            ),
            (9000, back("page damaged")),
            // After the rollback: too late to count for it.
            (9500, noticed("disk-alert", "watch", "exited 1")),
        ];
        let text: String = events
            .into_iter()
            .enumerate()
            .map(|(seq, (t, e))| line(seq as u64, t, e) + "\n")
            .collect();
        let s = summarize(&parse_journal(&text));
        let got: Vec<(&str, &str, Option<u64>)> = s.detectors[0]
            .detectors
            .iter()
            .map(|d| (d.kind.as_str(), d.name.as_str(), d.noticed_after_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                ("postgresql", "orders-db server log", Some(1400)),
                ("postgresql", "orders-db checksums", Some(2000)),
                ("watch", "disk-alert", None),
            ]
        );
        assert!(s.detectors[0].detectors[0].how.contains("base/5/16390"));
        assert!(!s.detectors[0].nobody_noticed);
    }

    /// A watch that fires while the fault is still being applied (the flag file exists
    /// before the apply's command returns) noticed it, after 0 ms; one that was already
    /// firing before the apply began did not.
    #[test]
    fn a_sign_while_the_fault_is_being_applied_counts_as_noticed_at_once() {
        let events = [
            (
                0,
                Event::Watching {
                    detector: "flag-alert".into(),
                    kind: "watch".into(),
                },
            ),
            (
                0,
                Event::Watching {
                    detector: "old-alert".into(),
                    kind: "watch".into(),
                },
            ),
            (
                900,
                Event::Noticed {
                    detector: "old-alert".into(),
                    kind: "watch".into(),
                    how: "exited 1".into(),
                },
            ),
            (
                1030,
                Event::Noticed {
                    detector: "flag-alert".into(),
                    kind: "watch".into(),
                    how: "exited 2".into(),
                },
            ),
            (
                1045,
                Event::FaultApplied {
                    activity: "maintenance on".into(),
                    kind: "command".into(),
                    target: String::new(),
                    detail: String::new(),
                    applying_ms: Some(1000),
                },
            ),
            (4000, back("maintenance on")),
        ];
        let text: String = events
            .into_iter()
            .enumerate()
            .map(|(seq, (t, e))| line(seq as u64, t, e) + "\n")
            .collect();
        let s = summarize(&parse_journal(&text));
        let d = &s.detectors[0];
        let got: Vec<(&str, Option<u64>)> = d
            .detectors
            .iter()
            .map(|d| (d.name.as_str(), d.noticed_after_ms))
            .collect();
        assert_eq!(got, vec![("flag-alert", Some(0)), ("old-alert", None)]);
        assert!(!d.nobody_noticed);
        assert_eq!(s.faults[0].applying_ms, Some(1000));
    }

    #[test]
    fn nobody_noticed_is_a_sarif_result_beside_the_fuzz_findings() {
        let s = summarize(&parse_journal(&journal()));
        let mut sarif = serde_json::json!({
            "runs": [{ "tool": { "driver": { "rules": [{ "id": "server_error" }] } }, "results": [] }]
        });
        super::add_to_sarif(&mut sarif, &s.findings, "experiment.yaml");
        let run = &sarif["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"][1]["id"], "nobody_noticed");
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{results:?}");
        assert_eq!(results[0]["ruleId"], "nobody_noticed");
        assert_eq!(results[0]["ruleIndex"], 1);
        assert!(
            results[0]["message"]["text"]
                .as_str()
                .unwrap()
                .contains("nobody noticed `link slow`"),
            "{results:?}"
        );
        assert_eq!(results[0]["properties"]["active_faults"][0], "link slow");
        // Nothing unnoticed: the log is left as it was.
        let mut clean = serde_json::json!({ "runs": [{ "tool": { "driver": { "rules": [] } }, "results": [] }] });
        super::add_to_sarif(&mut clean, &[], "experiment.yaml");
        assert_eq!(
            clean["runs"][0]["tool"]["driver"]["rules"],
            serde_json::json!([])
        );
    }
}
