//! The run's progress on the terminal: in a TTY one line redrawn each second (elapsed /
//! planned, active faults, per load rps with a sparkline, p99 and error rate, findings,
//! hypothesis and guardrail state); otherwise the same facts as a plain line per second,
//! for CI logs; nothing with `--quiet`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::events::Role;
use livefire_core::metrics::MetricSource;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// One line redrawn in place (stderr is a terminal).
    Tty,
    /// A plain line per second.
    Plain,
    /// Nothing.
    #[default]
    Quiet,
}

/// What one status line says.
#[derive(Debug, Default)]
pub struct Status {
    pub elapsed_s: u64,
    pub planned_s: u64,
    pub active: Vec<String>,
    /// The hypothesis's state in words (`holding`, `failing 2s/5s tolerated`, ...).
    pub hypothesis: String,
    /// The guardrails' state in words (`ok`, `failing 3s/10s`).
    pub guardrails: String,
}

/// What the referee's tasks last saw of each condition, for the progress line: the
/// referee writes, the view reads; nothing here decides anything.
#[derive(Debug, Clone, Default)]
pub struct Board(Arc<Mutex<BTreeMap<String, Watch>>>);

#[derive(Debug, Clone, Copy)]
struct Watch {
    role: Role,
    /// How long a failing streak may last (`tolerate`, a probe guardrail's `for`).
    allowed: Duration,
    /// When the current failing streak's first sample was sent.
    failing_since: Option<Instant>,
    deviated: bool,
}

impl Board {
    pub fn watch(&self, name: &str, role: Role, allowed: Duration) {
        self.with(|b| {
            b.insert(
                name.to_owned(),
                Watch {
                    role,
                    allowed,
                    failing_since: None,
                    deviated: false,
                },
            );
        });
    }

    pub fn holds(&self, name: &str) {
        self.with(|b| {
            if let Some(w) = b.get_mut(name) {
                w.failing_since = None;
            }
        });
    }

    pub fn failing(&self, name: &str, since: Instant) {
        self.with(|b| {
            if let Some(w) = b.get_mut(name) {
                w.failing_since = Some(since);
            }
        });
    }

    pub fn deviated(&self, name: &str) {
        self.with(|b| {
            if let Some(w) = b.get_mut(name) {
                w.deviated = true;
            }
        });
    }

    /// The state of one role's conditions in words, as of now: a deviation wins, then
    /// the longest failing streak against what it may last, else all is well.
    pub fn describe(&self, role: Role) -> String {
        self.describe_at(role, Instant::now())
    }

    fn describe_at(&self, role: Role, now: Instant) -> String {
        self.with(|b| {
            let mine: Vec<(&String, &Watch)> = b.iter().filter(|(_, w)| w.role == role).collect();
            let deviated: Vec<&str> = mine
                .iter()
                .filter(|(_, w)| w.deviated)
                .map(|(n, _)| n.as_str())
                .collect();
            if !deviated.is_empty() {
                return format!("DEVIATED ({})", deviated.join(", "));
            }
            let worst = mine
                .iter()
                .filter_map(|(n, w)| Some((n, now.saturating_duration_since(w.failing_since?), w)))
                .max_by_key(|(_, failing, _)| *failing);
            match (worst, role) {
                (None, Role::Hypothesis) => "holding".into(),
                (None, Role::Guardrail) => "ok".into(),
                (Some((name, failing, w)), Role::Hypothesis) => format!(
                    "failing {}/{} tolerated ({name})",
                    whole_seconds(failing),
                    livefire_spec::values::Duration(w.allowed)
                ),
                (Some((name, failing, w)), Role::Guardrail) => format!(
                    "failing {}/{} ({name})",
                    whole_seconds(failing),
                    livefire_spec::values::Duration(w.allowed)
                ),
            }
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Watch>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// `2s`, `0s`, `1m30s`: whole seconds, as a person reads a count-up (the bound it
/// counts towards is shown as written: `1500ms`).
fn whole_seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Keeps the last seconds of each load's throughput for the sparkline.
#[derive(Debug, Default)]
pub struct Progress {
    rps: BTreeMap<String, VecDeque<f64>>,
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn sparkline(values: &VecDeque<f64>) -> String {
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                SPARKS[0]
            } else {
                SPARKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

impl Progress {
    /// The status line. `loads` and `campaigns` are the metric prefixes of the run's
    /// workloads; `now_ms` is the run's clock.
    pub fn line(
        &mut self,
        view: View,
        s: &Status,
        loads: &[String],
        campaigns: &[String],
        metrics: &[std::sync::Arc<dyn MetricSource>],
        now_ms: u64,
    ) -> String {
        let mut out = String::new();
        let clock = |t: u64| format!("{:02}:{:02}", t / 60, t % 60);
        let _ = write!(out, "{} / {}", clock(s.elapsed_s), clock(s.planned_s));
        // The state first: when the line is cut to the terminal's width, it stays.
        let _ = write!(
            out,
            "  hypothesis: {}  guardrails: {}",
            s.hypothesis, s.guardrails
        );
        let _ = write!(
            out,
            "  active: {}",
            if s.active.is_empty() {
                "none".to_string()
            } else {
                s.active.join(", ")
            }
        );
        // The last complete second.
        let to = now_ms / 1000 * 1000;
        let from = to.saturating_sub(1000);
        let value = |m: &str| metrics.iter().find_map(|src| src.value(m, from, to));
        for load in loads {
            let rps = value(&format!("{load}.rps")).unwrap_or(0.0);
            let history = self.rps.entry(load.clone()).or_default();
            history.push_back(rps);
            while history.len() > 10 {
                history.pop_front();
            }
            let _ = write!(out, "  {load}: {rps:.0} rps");
            if view == View::Tty {
                let _ = write!(out, " {}", sparkline(history));
            }
            if let Some(p99) = value(&format!("{load}.latency.p99")) {
                let _ = write!(out, " p99 {:.0}ms", p99 * 1e3);
            }
            if let Some(err) = value(&format!("{load}.error_rate")) {
                let _ = write!(out, " err {:.1}%", err * 100.0);
            }
        }
        for c in campaigns {
            let n = value(&format!("{c}.findings")).unwrap_or(0.0);
            let _ = write!(out, "  {c}: {n:.0} finding(s)");
        }
        out
    }
}

/// Prints one status line the way `view` wants: in a terminal, cut to its width so it
/// never wraps (a wrapped line cannot be redrawn in place); otherwise whole.
pub fn print(view: View, line: &str) {
    match view {
        View::Tty => {
            let width = terminal_size::terminal_size_of(std::io::stderr())
                .map(|(w, _)| usize::from(w.0))
                .unwrap_or(80);
            eprint!("\r\x1b[2K{}", fit(line, width))
        }
        View::Plain => eprintln!("{line}"),
        View::Quiet => {}
    }
}

/// Ends a redrawn line, so what is printed next starts on a line of its own.
pub fn end_line(view: View) {
    if view == View::Tty {
        eprintln!();
    }
}

/// `line` cut to fit `width` columns (one column is kept free for the cursor), with
/// `…` where it was cut. Every character of the line is one column wide.
pub fn fit(line: &str, width: usize) -> String {
    let room = width.saturating_sub(1);
    if line.chars().count() <= room {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(room.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_fits_the_terminal_and_keeps_the_state() {
        let line = "00:12 / 01:00  hypothesis: holding  guardrails: ok  active: proxy.down auth-link, process.pause worker  browse: 200 rps ▁▂▃ p99 3ms err 0.0%";
        let cut = fit(line, 80);
        assert_eq!(cut.chars().count(), 79);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("00:12 / 01:00  hypothesis: holding  guardrails: ok"));
        assert_eq!(fit("short", 80), "short");
    }

    #[test]
    fn the_state_says_failing_within_tolerance_then_deviated() {
        let board = Board::default();
        let now = Instant::now();
        board.watch("health answers", Role::Hypothesis, Duration::from_secs(5));
        board.watch("port open", Role::Guardrail, Duration::from_secs(10));
        assert_eq!(board.describe_at(Role::Hypothesis, now), "holding");
        assert_eq!(board.describe_at(Role::Guardrail, now), "ok");
        board.failing("health answers", now);
        assert_eq!(
            board.describe_at(Role::Hypothesis, now + Duration::from_millis(2300)),
            "failing 2s/5s tolerated (health answers)"
        );
        board.failing("port open", now);
        assert_eq!(
            board.describe_at(Role::Guardrail, now + Duration::from_secs(3)),
            "failing 3s/10s (port open)"
        );
        board.deviated("health answers");
        assert_eq!(
            board.describe_at(Role::Hypothesis, now + Duration::from_secs(6)),
            "DEVIATED (health answers)"
        );
        board.holds("port open");
        assert_eq!(board.describe_at(Role::Guardrail, now), "ok");
    }

    #[test]
    fn sparkline_scales_to_the_highest_second() {
        let v: VecDeque<f64> = [0.0, 50.0, 100.0].into_iter().collect();
        assert_eq!(sparkline(&v), "▁▅█");
    }
}
