//! Time to impact from the run's own loads: the first second, while a fault was active,
//! in which a load's latency, errors or throughput moved clearly away from the seconds
//! just before the fault. The hypothesis probes are one signal; a `proxy.latency` that
//! takes p99 from 2 ms to 220 ms is an impact even when no probe fails.

use livefire_core::window::Window;

use crate::journal::Journal;
use crate::summary::num;

/// How many seconds before a fault make its baseline.
const BASELINE_SECONDS: u64 = 5;
/// A p99 counts as changed when it is at least this many times the baseline's and at
/// least [`MIN_LATENCY_STEP_MS`] above it (a 0.2 ms -> 0.5 ms wobble is not an impact).
const LATENCY_FACTOR: f64 = 2.0;
const MIN_LATENCY_STEP_MS: f64 = 5.0;
/// An error rate counts as changed when it rises by this much (absolute fraction).
const ERROR_RATE_STEP: f64 = 0.05;
/// Throughput counts as changed when a second completes less than this share of the
/// baseline's mean.
const THROUGHPUT_SHARE: f64 = 0.5;

/// The first load signal that showed a fault: when (run-clock ms, the start of the
/// second) and what, in words (`load browse: p99 2.1 ms -> 220 ms`).
pub(crate) fn first_load_impact(
    journal: &Journal,
    applied_ms: u64,
    until_ms: u64,
) -> Option<(u64, String)> {
    let first_second = applied_ms / 1000;
    let mut best: Option<(u64, String)> = None;
    // Only the seconds from the baseline to the rollback matter: each is decoded when
    // it is looked at and dropped after (a decoded histogram is ~190 KB; a fault of a
    // long run must not hold every second of every load, nor decode them).
    let from_second = first_second.saturating_sub(BASELINE_SECONDS);
    let until_second = until_ms.div_ceil(1000);
    for load in journal.loads() {
        let mut seconds: Vec<(u64, usize)> = load
            .total
            .iter()
            .map(|&i| (journal.windows[i].second, i))
            .filter(|(s, _)| (from_second..=until_second).contains(s))
            .collect();
        seconds.sort_unstable();
        let decode = |i: usize| journal.windows[i].decode();
        let mut base = Window::default();
        let mut base_seconds = 0u64;
        for &(s, i) in &seconds {
            if s + BASELINE_SECONDS >= first_second
                && s < first_second
                && let Some(w) = decode(i)
            {
                base.merge(&w);
                base_seconds += 1;
            }
        }
        if base_seconds == 0 || base.counts.completed() == 0 {
            continue;
        }
        let base_p99 = p99_ms(&base);
        let base_err = error_rate(&base);
        let base_rps = base.counts.completed() as f64 / base_seconds as f64;
        for &(s, i) in &seconds {
            // A second that starts after the fault was applied and before it was
            // rolled back (the second it was applied in is mixed: skip it).
            let start = s * 1000;
            if s <= first_second || start >= until_ms {
                continue;
            }
            let Some(w) = decode(i) else { continue };
            let signal = changed(&w, base_p99, base_err, base_rps);
            if let Some(what) = signal {
                let at = start.max(applied_ms);
                if best.as_ref().is_none_or(|(t, _)| at < *t) {
                    best = Some((at, format!("load `{}`: {what}", load.name)));
                }
                break;
            }
        }
    }
    best
}

/// What moved in one second against the baseline, if anything did.
fn changed(w: &Window, base_p99: Option<f64>, base_err: f64, base_rps: f64) -> Option<String> {
    let done = w.counts.completed() as f64;
    if done < base_rps * THROUGHPUT_SHARE {
        return Some(format!("throughput {}/s -> {}/s", num(base_rps), num(done)));
    }
    let err = error_rate(w);
    if err - base_err >= ERROR_RATE_STEP {
        return Some(format!(
            "errors {}% -> {}%",
            num(base_err * 100.0),
            num(err * 100.0)
        ));
    }
    match (base_p99, p99_ms(w)) {
        (Some(b), Some(p)) if p >= b * LATENCY_FACTOR && p - b >= MIN_LATENCY_STEP_MS => {
            Some(format!("p99 {} ms -> {} ms", num(b), num(p)))
        }
        _ => None,
    }
}

fn p99_ms(w: &Window) -> Option<f64> {
    w.latency.quantile_us(0.99).map(|us| us as f64 / 1e3)
}

fn error_rate(w: &Window) -> f64 {
    let done = w.counts.completed();
    if done == 0 {
        0.0
    } else {
        w.counts.errors() as f64 / done as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livefire_core::window::Outcome;

    fn window(ok: u64, errors: u64, latency_ms: u64) -> Window {
        let mut w = Window::default();
        for _ in 0..ok {
            w.record(Outcome::Ok, latency_ms * 1000);
        }
        for _ in 0..errors {
            w.record(Outcome::Http5xx, latency_ms * 1000);
        }
        w
    }

    #[test]
    fn each_signal_is_named_and_noise_is_not() {
        let base = window(100, 0, 2);
        let (b99, berr, brps) = (p99_ms(&base), error_rate(&base), 100.0);
        let cases: &[(Window, Option<&str>)] = &[
            (window(100, 0, 2), None),
            (window(100, 0, 3), None),
            (window(100, 0, 220), Some("p99 2")),
            (window(80, 20, 2), Some("errors 0% -> 20%")),
            (window(10, 0, 2), Some("throughput 100/s -> 10/s")),
        ];
        for (w, want) in cases {
            let got = changed(w, b99, berr, brps);
            match want {
                None => assert_eq!(got, None),
                Some(prefix) => {
                    let got = got.expect("a change");
                    assert!(got.starts_with(prefix), "{got} should start with {prefix}");
                }
            }
        }
    }
}
