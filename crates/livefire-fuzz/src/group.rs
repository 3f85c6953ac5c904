//! Findings a person reads as one defect become one finding with its instances: the
//! same rule, path and signature on several methods; and `slow` on many operations at
//! once, which is the target slowing down, named with the requests in flight before it.

use std::collections::BTreeMap;

use crate::finding::{Finding, Instance, Rule};

/// `slow` findings sent within this window of each other belong to one burst.
const BURST_WINDOW_MS: u64 = 2_000;
/// A burst needs `slow` on at least this many distinct operations.
const BURST_OPERATIONS: usize = 3;
/// How many requests in flight a slowdown names.
const IN_FLIGHT_SHOWN: usize = 5;

/// Groups findings (in the order they were reported); `long_exchanges` are the
/// campaign's slow exchanges (`Summary::long_exchanges`).
pub fn group(findings: Vec<Finding>, long_exchanges: &[Instance]) -> Vec<Finding> {
    let findings = slow_bursts(findings, long_exchanges);
    by_path(findings)
}

fn path_of(operation: &str) -> &str {
    operation.split_once(' ').map_or(operation, |(_, p)| p)
}

/// One finding per (rule, path, signature): the first seen, listing every method.
fn by_path(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut index: BTreeMap<(Rule, String, String), usize> = BTreeMap::new();
    for f in findings {
        if !f.instances.is_empty() {
            out.push(f);
            continue;
        }
        let key = (
            f.rule,
            path_of(&f.operation).to_string(),
            f.signature.clone(),
        );
        match index.get(&key) {
            Some(&i) => {
                let first = &mut out[i];
                if first.instances.is_empty() {
                    let me = Instance::of(first);
                    first.instances.push(me);
                }
                first.instances.push(Instance::of(&f));
                let methods: Vec<&str> = first
                    .instances
                    .iter()
                    .map(|i| i.operation.split(' ').next().unwrap_or(""))
                    .collect();
                let base = first.title.split(" (on ").next().unwrap_or("").to_string();
                first.title = format!("{base} (on {})", methods.join(", "));
                first.severity = first.severity.max(f.severity);
            }
            None => {
                index.insert(key, out.len());
                out.push(f);
            }
        }
    }
    out
}

/// Replaces each burst of `slow` findings on many operations with one finding.
fn slow_bursts(findings: Vec<Finding>, long_exchanges: &[Instance]) -> Vec<Finding> {
    let mut slow: Vec<usize> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.rule == Rule::Slow)
        .map(|(i, _)| i)
        .collect();
    slow.sort_by_key(|&i| findings[i].sent_ms);
    let mut bursts: Vec<Vec<usize>> = Vec::new();
    for i in slow {
        match bursts.last_mut() {
            Some(b) if findings[i].sent_ms <= findings[b[0]].sent_ms + BURST_WINDOW_MS => b.push(i),
            _ => bursts.push(vec![i]),
        }
    }
    bursts.retain(|b| {
        let mut ops: Vec<&str> = b.iter().map(|&i| findings[i].operation.as_str()).collect();
        ops.sort_unstable();
        ops.dedup();
        ops.len() >= BURST_OPERATIONS
    });
    if bursts.is_empty() {
        return findings;
    }
    let mut burst_of: BTreeMap<usize, usize> = BTreeMap::new();
    for (n, b) in bursts.iter().enumerate() {
        for &i in b {
            burst_of.insert(i, n);
        }
    }
    let mut out = Vec::new();
    let mut slots: Vec<Option<Finding>> = findings.into_iter().map(Some).collect();
    for i in 0..slots.len() {
        let Some(&n) = burst_of.get(&i) else {
            if let Some(f) = slots[i].take() {
                out.push(f);
            }
            continue;
        };
        // The burst takes the place of its first member in report order.
        if bursts[n].iter().any(|&j| j < i) {
            continue;
        }
        let members: Vec<Finding> = bursts[n].iter().filter_map(|&j| slots[j].take()).collect();
        out.push(slowdown(members, long_exchanges));
    }
    out
}

fn slowdown(members: Vec<Finding>, long_exchanges: &[Instance]) -> Finding {
    let start = members.iter().map(|f| f.sent_ms).min().unwrap_or(0);
    let ops: Vec<String> = {
        let mut o: Vec<String> = members.iter().map(|f| f.operation.clone()).collect();
        o.sort();
        o.dedup();
        o
    };
    // In flight just before: sent before the burst began, not yet answered when it did.
    let mut before: Vec<&Instance> = long_exchanges
        .iter()
        .filter(|x| x.sent_ms < start && x.at_ms > start)
        .collect();
    before.sort_by_key(|x| x.sent_ms);
    let named: Vec<String> = before
        .iter()
        .take(IN_FLIGHT_SHOWN)
        .map(|x| format!("{} ({})", x.operation, x.url))
        .collect();
    let instances: Vec<Instance> = members.iter().map(Instance::of).collect();
    let first = (0..members.len())
        .min_by_key(|&i| members[i].sent_ms)
        .unwrap_or(0);
    let Some(mut f) = members.into_iter().nth(first) else {
        unreachable!("a burst has at least {BURST_OPERATIONS} findings")
    };
    f.signature = "slowdown".into();
    // The earliest slow request may be the one that tied the target up (a long
    // `/drip` among quick ones), so it is named too.
    f.title = format!(
        "the target slowed down: {} operations answered slowly within {:.1} s, the first {} ({}); in flight just before: {}",
        ops.len(),
        BURST_WINDOW_MS as f64 / 1000.0,
        f.operation,
        f.request.url,
        if named.is_empty() {
            "no long request".to_string()
        } else {
            named.join(", ")
        }
    );
    f.operation = "the target".into();
    f.instances = instances;
    f.instances.extend(before.into_iter().cloned().map(|mut x| {
        x.input = format!("in flight before the slowdown: {}", x.input);
        x
    }));
    f
}
