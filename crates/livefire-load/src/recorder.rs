//! Accumulates outcomes into the current second's windows and publishes each finished
//! second to the `WindowStore`; keeps the run's totals for the report. Memory is flat:
//! one histogram per request name for the current second and one for the totals.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::window::{LoadWindow, Outcome, Window, WindowStore};

use crate::config::Segment;
use crate::schedule::RateSchedule;

/// How many sends each second was meant to have.
#[derive(Debug)]
pub(crate) enum Intent {
    /// Open model: from the schedule, this segment's share.
    Schedule(RateSchedule, Segment),
    /// Closed model: whatever the VUs sent is what was intended.
    Sent,
}

impl Intent {
    fn in_second(&self, s: u64, sent: u64) -> u64 {
        match self {
            Intent::Sent => sent,
            Intent::Schedule(sched, seg) => {
                let before = |t: f64| seg.share_of(sched.count_before(t));
                before((s + 1) as f64) - before(s as f64)
            }
        }
    }
}

pub(crate) struct Recorder {
    start: Instant,
    load: String,
    names: Vec<String>,
    intent: Intent,
    store: Arc<WindowStore>,
    inner: Mutex<Inner>,
}

struct Inner {
    second: u64,
    current: Vec<Window>,
    totals: Vec<Window>,
    intended_total: u64,
}

impl Recorder {
    pub(crate) fn new(
        start: Instant,
        load: String,
        names: Vec<String>,
        intent: Intent,
        store: Arc<WindowStore>,
    ) -> Self {
        let n = names.len();
        let fresh = || (0..n).map(|_| Window::default()).collect::<Vec<_>>();
        Recorder {
            start,
            load,
            names,
            intent,
            store,
            inner: Mutex::new(Inner {
                second: 0,
                current: fresh(),
                totals: fresh(),
                intended_total: 0,
            }),
        }
    }

    fn second_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_secs()
    }

    fn with_current(&self, at: Instant, f: impl FnOnce(&mut Inner)) {
        let second = self.second_of(at);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if second > inner.second {
            self.rotate(&mut inner, second);
        }
        f(&mut inner);
    }

    /// A send of request `req` started.
    pub(crate) fn sent(&self, req: usize, at: Instant) {
        self.with_current(at, |i| i.current[req].sent += 1);
    }

    /// A request (or a dropped send) ended with `outcome`, `latency` after its intended
    /// send time.
    pub(crate) fn record(&self, req: usize, outcome: Outcome, latency: Duration, at: Instant) {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        self.with_current(at, |i| i.current[req].record(outcome, us));
    }

    /// Publishes every second that ended before `now` (so quiet seconds publish too).
    pub(crate) fn tick(&self, now: Instant) {
        self.with_current(now, |_| {});
    }

    /// Publishes the seconds up to `end` (the last, partial one included) and returns the
    /// totals per request name, and the intended sends.
    pub(crate) fn finish(&self, end: Instant) -> (Vec<(String, Window)>, u64) {
        let last = self.second_of(end) + 1;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if last > inner.second {
            self.rotate(&mut inner, last);
        }
        let totals = self
            .names
            .iter()
            .cloned()
            .zip(inner.totals.iter().cloned())
            .collect();
        (totals, inner.intended_total)
    }

    fn rotate(&self, inner: &mut Inner, to: u64) {
        while inner.second < to {
            let mut lw = LoadWindow {
                load: self.load.clone(),
                second: inner.second,
                ..Default::default()
            };
            for (i, w) in inner.current.iter_mut().enumerate() {
                let w = std::mem::take(w);
                lw.total.merge(&w);
                inner.totals[i].merge(&w);
                lw.requests.insert(self.names[i].clone(), w);
            }
            lw.total.intended = self.intent.in_second(inner.second, lw.total.sent);
            inner.intended_total += lw.total.intended;
            self.store.publish(&lw);
            inner.second += 1;
        }
    }
}
