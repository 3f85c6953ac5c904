//! One-second metric windows (counts by outcome, sent vs intended, an HDR latency
//! histogram), their exact merge, and `WindowStore`, the `MetricSource` that answers
//! `<load>.rps`, `<load>.latency.p99`, ... from them.
//!
//! A window is the unit every load publishes once a second and every journal carries, so
//! windows from many processes or machines add up exactly: counts add, histograms add
//! bucket by bucket, and a percentile over several seconds comes from the merged
//! histogram, never from averaging percentiles.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Deserializer as SerdeDeserializer, Serialize, Serializer};

use crate::metrics::MetricSource;

/// Lowest latency the histogram tells apart, in microseconds.
pub const LATENCY_LOW_US: u64 = 1;
/// Highest latency the histogram tracks (one hour), in microseconds; longer ones are
/// clamped to it.
pub const LATENCY_HIGH_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the histogram.
pub const LATENCY_SIGFIG: u8 = 3;

/// How one request (or one intended send) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A response that passed every check.
    Ok,
    /// A 4xx response.
    Http4xx,
    /// A 5xx response.
    Http5xx,
    /// No complete response within the request's timeout.
    Timeout,
    /// The connection was refused (nothing listening, or a fault refusing it).
    ConnectRefused,
    /// The connection was reset or closed before a complete response.
    Reset,
    /// The TLS handshake failed.
    Tls,
    /// A response arrived but one of the request's checks failed.
    CheckFailed,
    /// The send never started: the in-flight cap was reached for longer than the timeout.
    Dropped,
    /// Any other failure (DNS, protocol error, ...).
    Other,
}

impl Outcome {
    /// Every outcome, in a fixed order (the order of `Counts`).
    pub const ALL: [Outcome; 10] = [
        Outcome::Ok,
        Outcome::Http4xx,
        Outcome::Http5xx,
        Outcome::Timeout,
        Outcome::ConnectRefused,
        Outcome::Reset,
        Outcome::Tls,
        Outcome::CheckFailed,
        Outcome::Dropped,
        Outcome::Other,
    ];

    /// The snake_case name used in JSON and in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Http4xx => "http_4xx",
            Outcome::Http5xx => "http_5xx",
            Outcome::Timeout => "timeout",
            Outcome::ConnectRefused => "connect_refused",
            Outcome::Reset => "reset",
            Outcome::Tls => "tls",
            Outcome::CheckFailed => "check_failed",
            Outcome::Dropped => "dropped",
            Outcome::Other => "other",
        }
    }

    /// Whether this outcome is an error (everything but `ok` and `dropped`, which is
    /// counted on its own because the request never reached the target).
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Dropped)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts by outcome. Serialized as a map that omits zero counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; 10]);

impl Counts {
    /// The count of one outcome.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome.index()]
    }

    /// Adds `n` to one outcome.
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        self.0[outcome.index()] += n;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Requests that reached an end at the target: every outcome but `dropped`.
    pub fn completed(&self) -> u64 {
        self.total() - self.get(Outcome::Dropped)
    }

    /// Completed requests that were errors.
    pub fn errors(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| o.is_error())
            .map(|o| self.get(*o))
            .sum()
    }

    /// Every outcome added up, `dropped` included.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The non-zero counts, in the fixed order of `Outcome::ALL`.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL
            .iter()
            .map(|o| (*o, self.get(*o)))
            .filter(|(_, n)| *n > 0)
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<Outcome, u64> = self.iter().collect();
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: SerdeDeserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<Outcome, u64>::deserialize(d)?;
        let mut counts = Counts::default();
        for (o, n) in map {
            counts.add(o, n);
        }
        Ok(counts)
    }
}

/// An HDR latency histogram in microseconds (1 µs .. 1 h, 3 significant digits).
/// Serialized as base64 of the HdrHistogram V2 encoding, which any HdrHistogram
/// implementation can read.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latency")
            .field("len", &self.0.len())
            .field("max_us", &self.0.max())
            .finish()
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts, so this cannot fail.
        let h = Histogram::new_with_bounds(LATENCY_LOW_US, LATENCY_HIGH_US, LATENCY_SIGFIG)
            .expect("constant histogram bounds are valid");
        Latency(h)
    }

    /// Records one latency; values above one hour are clamped to one hour.
    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.max(LATENCY_LOW_US));
    }

    /// Records one latency `n` times.
    pub fn record_us_n(&mut self, us: u64, n: u64) {
        let v = us.clamp(LATENCY_LOW_US, LATENCY_HIGH_US);
        // In range by the clamp above, so this cannot fail.
        let _ = self.0.record_n(v, n);
    }

    /// Adds every recorded value of `other` (exact: same bounds, bucket by bucket).
    pub fn merge(&mut self, other: &Latency) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// How many values were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0..=1) in microseconds, or `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(q))
    }

    /// The largest recorded value in microseconds (to the histogram's precision).
    pub fn max_us(&self) -> Option<u64> {
        (!self.0.is_empty()).then(|| self.0.max())
    }

    /// The smallest recorded value in microseconds.
    pub fn min_us(&self) -> Option<u64> {
        (!self.0.is_empty()).then(|| self.0.min())
    }

    /// The mean in microseconds.
    pub fn mean_us(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.mean())
    }

    /// The underlying histogram, for callers that want the full distribution.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.0
    }

    /// The HdrHistogram V2 encoding (compact for the sparse histograms of latencies).
    pub fn to_v2_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = V2Serializer::new().serialize(&self.0, &mut buf);
        buf
    }

    /// Decodes a V2 encoding; refuses histograms whose bounds are not livefire's, since
    /// those could not be merged exactly.
    pub fn from_v2_bytes(bytes: &[u8]) -> Result<Self, WindowError> {
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| WindowError::Histogram(format!("{e:?}")))?;
        let mut out = Latency::new();
        out.0
            .add(&h)
            .map_err(|e| WindowError::Histogram(format!("values out of 1us..1h: {e:?}")))?;
        Ok(out)
    }
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.to_v2_bytes()))
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: SerdeDeserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|e| {
                serde::de::Error::custom(format!("latency histogram is not base64: {e}"))
            })?;
        Latency::from_v2_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// Errors reading windows that came from outside (journals, other processes).
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// A histogram that does not decode, or whose values are outside 1 µs .. 1 h.
    #[error("bad latency histogram: {0}; the window was not written by livefire")]
    Histogram(String),
}

/// One second (or, after merging, any span) of one series: a load or one of its requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Counts by outcome.
    pub counts: Counts,
    /// Sends the schedule asked for in this window (open model), or the sends that
    /// started (closed model, where the intent is whatever the VUs manage).
    pub intended: u64,
    /// Sends that actually started.
    pub sent: u64,
    /// Latency of every completed request, and the lateness of every dropped send,
    /// measured from the intended send time.
    pub latency: Latency,
}

impl Window {
    /// Records one outcome with its latency (from the intended send time).
    pub fn record(&mut self, outcome: Outcome, latency_us: u64) {
        self.counts.add(outcome, 1);
        self.latency.record_us(latency_us);
    }

    /// Adds `other` exactly: counts, sent, intended and every histogram bucket.
    pub fn merge(&mut self, other: &Window) {
        self.counts.merge(&other.counts);
        self.intended += other.intended;
        self.sent += other.sent;
        self.latency.merge(&other.latency);
    }
}

/// What a load publishes each second: its total and a window per request name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadWindow {
    /// The load's name (metrics are named after it).
    pub load: String,
    /// Which second since the run's start this window covers: `[second, second + 1)` s.
    pub second: u64,
    /// The whole load.
    pub total: Window,
    /// Per request name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Window>,
}

impl LoadWindow {
    /// Adds `other` (same load, same second) exactly.
    pub fn merge(&mut self, other: &LoadWindow) {
        self.total.merge(&other.total);
        for (name, w) in &other.requests {
            self.requests.entry(name.clone()).or_default().merge(w);
        }
    }
}

/// A window with its histogram kept as its V2 encoding (a few hundred bytes instead of
/// the ~190 KB of a live histogram): how the store keeps an hour of windows small, and
/// how a split run's merge hands over a merged second without building a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedWindow {
    /// Counts by outcome.
    pub counts: Counts,
    /// As in [`Window`].
    pub intended: u64,
    /// As in [`Window`].
    pub sent: u64,
    latency_v2: Vec<u8>,
    latency_len: u64,
}

impl PackedWindow {
    /// The packed form of a window.
    pub fn from_window(w: &Window) -> Self {
        PackedWindow {
            counts: w.counts,
            intended: w.intended,
            sent: w.sent,
            latency_v2: w.latency.to_v2_bytes(),
            latency_len: w.latency.len(),
        }
    }

    /// A window from its parts, the histogram as a V2 encoding of livefire's layout
    /// holding `latency_len` values. The caller vouches for the encoding (one that does
    /// not decode unpacks as an empty histogram).
    pub fn from_v2(
        counts: Counts,
        intended: u64,
        sent: u64,
        latency_v2: Vec<u8>,
        latency_len: u64,
    ) -> Self {
        PackedWindow {
            counts,
            intended,
            sent,
            latency_v2,
            latency_len,
        }
    }

    /// The histogram's V2 encoding.
    pub fn latency_v2(&self) -> &[u8] {
        &self.latency_v2
    }

    /// How many latencies the histogram holds.
    pub fn latency_len(&self) -> u64 {
        self.latency_len
    }

    /// The window, its histogram decoded.
    pub fn to_window(&self) -> Window {
        let latency = if self.latency_len == 0 {
            Latency::new()
        } else {
            // Encoded by livefire (`from_window`, or the merge's encoder), so it decodes.
            Latency::from_v2_bytes(&self.latency_v2).unwrap_or_default()
        };
        Window {
            counts: self.counts,
            intended: self.intended,
            sent: self.sent,
            latency,
        }
    }
}

/// The metrics a series answers, after `<series>.`.
pub const METRIC_SUFFIXES: [&str; 10] = [
    "rps",
    "latency.p50",
    "latency.p90",
    "latency.p99",
    "latency.p999",
    "latency.max",
    "error_rate",
    "dropped",
    "rate_achieved",
    "requests",
];

/// Holds the windows published by loads (one process's, or merged from many) and
/// answers metrics over any time range. Cheap to share: put it in an `Arc`.
#[derive(Debug, Default)]
pub struct WindowStore {
    // series name ("browse", "browse.search") -> second -> window
    series: Mutex<BTreeMap<String, BTreeMap<u64, PackedWindow>>>,
    // whole-run facts known only at the end (`browse.writes.lost`), by full metric name
    facts: Mutex<BTreeMap<String, f64>>,
    // series that are another's windows with nothing intended (`browse.search`, the one
    // request of load `browse`) -> that other series
    aliases: Mutex<BTreeMap<String, String>>,
}

impl WindowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares series `alias` to be series `of`'s windows with nothing intended: the
    /// one request of a load (`browse.search` of `browse`) records exactly what its
    /// load does, so the store keeps, and a segment sends, its windows once. Windows
    /// published under `alias` from then on are not kept: they are `of`'s.
    pub fn same_as(&self, alias: &str, of: &str) {
        let mut aliases = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        aliases.insert(alias.to_owned(), of.to_owned());
    }

    /// The series `name` reads from, and whether it is an alias (its windows then have
    /// nothing intended).
    fn resolve(&self, name: &str) -> (String, bool) {
        let aliases = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        match aliases.get(name) {
            Some(of) => (of.clone(), true),
            None => (name.to_owned(), false),
        }
    }

    fn is_alias(&self, name: &str) -> bool {
        let aliases = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        aliases.contains_key(name)
    }

    /// Adds a load's window. A window for a second the store already has is merged into
    /// it exactly, so many processes can publish into one store.
    pub fn publish(&self, w: &LoadWindow) {
        let aliases = self
            .aliases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        put(&mut series, w.load.clone(), w.second, &w.total);
        for (name, rw) in &w.requests {
            let name = format!("{}.{}", w.load, name);
            if !aliases.contains_key(&name) {
                put(&mut series, name, w.second, rw);
            }
        }
    }

    /// Adds one series' window (`browse` or `browse.search`) for one second, merged
    /// exactly into what the store has there: how a split run's coordinator publishes
    /// the windows its segments streamed.
    pub fn publish_series(&self, series_name: &str, second: u64, w: &Window) {
        if self.is_alias(series_name) {
            return;
        }
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        put(&mut series, series_name.to_owned(), second, w);
    }

    /// Adds one series' window for one second in packed form: kept as it is when the
    /// store has nothing there (no histogram is built), merged exactly otherwise. How a
    /// split run's coordinator publishes the seconds its merge released.
    pub fn publish_packed(&self, series_name: &str, second: u64, w: PackedWindow) {
        if self.is_alias(series_name) {
            return;
        }
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = series.entry(series_name.to_owned()).or_default();
        match s.get_mut(&second) {
            Some(existing) => {
                let mut merged = existing.to_window();
                merged.merge(&w.to_window());
                *existing = PackedWindow::from_window(&merged);
            }
            None => {
                s.insert(second, w);
            }
        }
    }

    /// The merged window of one series (`browse` or `browse.search`) over the seconds
    /// starting in `[from_ms, to_ms)`, and how many seconds that covers; `None` when the
    /// store has no window there.
    pub fn merged(&self, series_name: &str, from_ms: u64, to_ms: u64) -> Option<(Window, u64)> {
        let (series_name, alias) = self.resolve(series_name);
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = series.get(&series_name)?;
        let from_s = from_ms.div_ceil(1000);
        let to_s = to_ms.div_ceil(1000);
        if from_s >= to_s {
            return None;
        }
        let mut out = Window::default();
        let mut n = 0;
        for stored in s.range(from_s..to_s).map(|(_, w)| w) {
            n += 1;
            out.counts.merge(&stored.counts);
            if !alias {
                out.intended += stored.intended;
            }
            out.sent += stored.sent;
            if stored.latency_len > 0 {
                out.latency.merge(&stored.to_window().latency);
            }
        }
        (n > 0).then_some((out, n))
    }

    /// Sets a whole-run fact (`browse.writes.lost`): it answers for any time range, since
    /// it is known only once, after the run (write tracking's read-back).
    pub fn set_fact(&self, metric: &str, value: f64) {
        let mut facts = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        facts.insert(metric.to_string(), value);
    }

    /// A whole-run fact, if set.
    pub fn fact(&self, metric: &str) -> Option<f64> {
        let facts = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        facts.get(metric).copied()
    }

    /// Every series name (loads and `load.request`), aliases included.
    pub fn series(&self) -> Vec<String> {
        let mut names = self.stored_series();
        let aliases = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        let known: Vec<String> = aliases
            .iter()
            .filter(|(_, of)| names.contains(of))
            .map(|(alias, _)| alias.clone())
            .collect();
        names.extend(known);
        names.sort();
        names.dedup();
        names
    }

    /// The series whose windows the store keeps (not the aliases [`same_as`] declared):
    /// what a segment sends.
    ///
    /// [`same_as`]: WindowStore::same_as
    pub fn stored_series(&self) -> Vec<String> {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series.keys().cloned().collect()
    }

    /// The windows of a series for the seconds in `[from, to)`, in order of seconds.
    /// Only those are decoded: a caller that follows a run second by second asks for
    /// the new ones, never the whole run again.
    pub fn windows(&self, series_name: &str, from: u64, to: u64) -> Vec<(u64, Window)> {
        if from >= to {
            return Vec::new();
        }
        let (series_name, alias) = self.resolve(series_name);
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series
            .get(&series_name)
            .map(|s| {
                s.range(from..to)
                    .map(|(sec, w)| {
                        let mut w = w.to_window();
                        if alias {
                            w.intended = 0;
                        }
                        (*sec, w)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn split_metric<'a>(&self, metric: &'a str) -> Option<(&'a str, &'a str)> {
        METRIC_SUFFIXES.iter().find_map(|suffix| {
            let series = metric.strip_suffix(suffix)?.strip_suffix('.')?;
            Some((series, *suffix))
        })
    }
}

fn put(
    series: &mut BTreeMap<String, BTreeMap<u64, PackedWindow>>,
    name: String,
    second: u64,
    w: &Window,
) {
    let s = series.entry(name).or_default();
    match s.get_mut(&second) {
        Some(existing) => {
            let mut merged = existing.to_window();
            merged.merge(w);
            *existing = PackedWindow::from_window(&merged);
        }
        None => {
            s.insert(second, PackedWindow::from_window(w));
        }
    }
}

/// The value of one metric (`suffix` is one of `METRIC_SUFFIXES`) from a merged window
/// spanning `seconds` seconds. Latencies in seconds, rates as fractions.
pub fn metric_value(w: &Window, seconds: u64, suffix: &str) -> Option<f64> {
    let us = |q: f64| w.latency.quantile_us(q).map(|v| v as f64 / 1e6);
    match suffix {
        "rps" => Some(w.counts.completed() as f64 / seconds.max(1) as f64),
        "latency.p50" => us(0.50),
        "latency.p90" => us(0.90),
        "latency.p99" => us(0.99),
        "latency.p999" => us(0.999),
        "latency.max" => w.latency.max_us().map(|v| v as f64 / 1e6),
        "error_rate" => {
            let done = w.counts.completed();
            (done > 0).then(|| w.counts.errors() as f64 / done as f64)
        }
        "dropped" => Some(w.counts.get(Outcome::Dropped) as f64),
        "rate_achieved" => (w.intended > 0).then(|| w.sent as f64 / w.intended as f64),
        "requests" => Some(w.counts.completed() as f64),
        _ => None,
    }
}

impl MetricSource for WindowStore {
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .series()
            .into_iter()
            .flat_map(|s| METRIC_SUFFIXES.iter().map(move |m| format!("{s}.{m}")))
            .collect();
        let facts = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        names.extend(facts.keys().cloned());
        names
    }

    fn value(&self, metric: &str, from_ms: u64, to_ms: u64) -> Option<f64> {
        if let Some(v) = self
            .facts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(metric)
        {
            return Some(*v);
        }
        let (series, suffix) = self.split_metric(metric)?;
        let (w, seconds) = self.merged(series, from_ms, to_ms)?;
        metric_value(&w, seconds, suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(values: &[u64], outcome: Outcome) -> Window {
        let mut w = Window::default();
        for v in values {
            w.record(outcome, *v);
        }
        w.sent = values.len() as u64;
        w.intended = values.len() as u64;
        w
    }

    #[test]
    fn merge_is_exact_against_recording_everything_in_one() {
        let a_vals: Vec<u64> = (1..5000).map(|i| i * 37 % 100_000 + 1).collect();
        let b_vals: Vec<u64> = (1..3000).map(|i| i * 1_013 % 2_000_000 + 1).collect();
        let a = window(&a_vals, Outcome::Ok);
        let b = window(&b_vals, Outcome::Http5xx);
        let mut merged = a.clone();
        merged.merge(&b);

        let mut whole = Window::default();
        for v in &a_vals {
            whole.record(Outcome::Ok, *v);
        }
        for v in &b_vals {
            whole.record(Outcome::Http5xx, *v);
        }
        whole.sent = (a_vals.len() + b_vals.len()) as u64;
        whole.intended = whole.sent;
        assert_eq!(merged, whole);
        assert_eq!(
            merged.latency.quantile_us(0.99),
            whole.latency.quantile_us(0.99)
        );
    }

    #[test]
    fn serde_round_trip_keeps_every_bucket_and_is_compact() {
        let mut lw = LoadWindow {
            load: "browse".into(),
            second: 7,
            ..Default::default()
        };
        lw.total = window(
            &[100, 2_000, 30_000, 3_600_000_000, 7_200_000_000],
            Outcome::Ok,
        );
        lw.total.counts.add(Outcome::Timeout, 2);
        lw.requests.insert("search".into(), lw.total.clone());
        let json = serde_json::to_string(&lw).unwrap();
        assert!(
            json.len() < 1_000,
            "a sparse window should serialize small, got {} bytes",
            json.len()
        );
        let back: LoadWindow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, lw);
        assert_eq!(back.total.counts.get(Outcome::Timeout), 2);
        // Values above one hour are clamped to one hour.
        assert!(back.total.latency.max_us().unwrap() <= LATENCY_HIGH_US * 1001 / 1000);
    }

    #[test]
    fn bad_histogram_is_an_error_not_a_panic() {
        let json = r#"{"counts":{},"intended":0,"sent":0,"latency":"bm90IGEgaGlzdG9ncmFt"}"#;
        assert!(serde_json::from_str::<Window>(json).is_err());
        let json = r#"{"counts":{},"intended":0,"sent":0,"latency":"***"}"#;
        assert!(serde_json::from_str::<Window>(json).is_err());
    }

    #[test]
    fn store_hands_out_the_windows_of_the_seconds_asked_for() {
        let store = WindowStore::new();
        for second in 0..5 {
            store.publish_series("browse", second, &window(&[second + 1], Outcome::Ok));
        }
        let got = store.windows("browse", 1, 3);
        let seconds: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(seconds, [1, 2]);
        assert_eq!(got[1].1.latency.max_us(), Some(3));
        assert_eq!(store.windows("browse", 3, u64::MAX).len(), 2);
        assert!(store.windows("browse", 3, 3).is_empty());
        assert!(
            store.windows("browse", 4, 2).is_empty(),
            "an empty range, not a panic"
        );
        assert!(store.windows("search", 0, u64::MAX).is_empty());
    }

    /// A load of one request: with the request declared the same as the load, the store
    /// keeps one series and answers for the request exactly as a store that kept both.
    #[test]
    fn a_request_declared_the_same_as_its_load_answers_as_if_kept_apart() {
        let (shared, apart) = (WindowStore::new(), WindowStore::new());
        shared.same_as("browse.search", "browse");
        for second in 0..3u64 {
            let mut lw = LoadWindow {
                load: "browse".into(),
                second,
                ..Default::default()
            };
            let mut w = window(&[100 * (second + 1), 2_000, 30_000], Outcome::Ok);
            w.counts.add(Outcome::Http5xx, second);
            w.intended = 0;
            lw.total = w.clone();
            lw.total.intended = 5;
            lw.requests.insert("search".into(), w);
            shared.publish(&lw);
            apart.publish(&lw);
        }
        assert_eq!(shared.stored_series(), ["browse"], "kept once");
        assert_eq!(shared.series(), apart.series());
        assert_eq!(
            shared.windows("browse.search", 0, u64::MAX),
            apart.windows("browse.search", 0, u64::MAX)
        );
        assert_eq!(
            shared.merged("browse.search", 0, 3000),
            apart.merged("browse.search", 0, 3000)
        );
        for m in METRIC_SUFFIXES {
            for name in ["browse", "browse.search"] {
                let metric = format!("{name}.{m}");
                assert_eq!(
                    shared.value(&metric, 1000, 3000),
                    apart.value(&metric, 1000, 3000),
                    "{metric}"
                );
            }
        }
        assert_eq!(shared.value("browse.search.rate_achieved", 0, 3000), None);
        assert_eq!(shared.value("browse.rate_achieved", 0, 3000), Some(0.6));
        // What is published under the alias is not kept twice: it is the load's.
        shared.publish_series("browse.search", 0, &window(&[7], Outcome::Ok));
        assert_eq!(
            shared.merged("browse.search", 0, 1000),
            apart.merged("browse.search", 0, 1000)
        );
    }

    #[test]
    fn store_answers_metrics_over_merged_seconds() {
        let store = WindowStore::new();
        // Second 0: 90 ok at 10 ms, 10 http 5xx at 10 ms; sent 100 of 100.
        // Second 1: 100 ok at 10 ms except one at 2 s; 5 dropped; sent 100 of 105.
        let mut w0 = LoadWindow {
            load: "browse".into(),
            second: 0,
            ..Default::default()
        };
        for i in 0..100 {
            w0.total.record(
                if i < 90 {
                    Outcome::Ok
                } else {
                    Outcome::Http5xx
                },
                10_000,
            );
        }
        w0.total.sent = 100;
        w0.total.intended = 100;
        let mut w1 = LoadWindow {
            load: "browse".into(),
            second: 1,
            ..Default::default()
        };
        for i in 0..100 {
            w1.total
                .record(Outcome::Ok, if i == 0 { 2_000_000 } else { 10_000 });
        }
        for _ in 0..5 {
            w1.total.record(Outcome::Dropped, 1_000_000);
        }
        w1.total.sent = 100;
        w1.total.intended = 105;
        w1.requests.insert("search".into(), w1.total.clone());
        store.publish(&w0);
        store.publish(&w1);

        let v = |m: &str, from: u64, to: u64| store.value(m, from, to);
        assert_eq!(v("browse.rps", 0, 2000), Some(100.0));
        assert_eq!(v("browse.error_rate", 0, 1000), Some(0.1));
        assert_eq!(v("browse.error_rate", 0, 2000), Some(0.05));
        assert_eq!(v("browse.dropped", 0, 2000), Some(5.0));
        assert_eq!(v("browse.rate_achieved", 1000, 2000), Some(100.0 / 105.0));
        assert_eq!(v("browse.requests", 0, 2000), Some(200.0));
        let p50 = v("browse.latency.p50", 0, 2000).unwrap();
        assert!((p50 - 0.010).abs() < 0.0001, "p50 {p50}");
        let max = v("browse.latency.max", 0, 2000).unwrap();
        assert!((max - 2.0).abs() < 0.003, "max {max}");
        // 6 of 205 values are >= 1 s, so p99 is one of them.
        let p99 = v("browse.latency.p99", 1000, 2000).unwrap();
        assert!(p99 >= 0.999, "p99 {p99}");
        assert_eq!(v("browse.search.dropped", 0, 5000), Some(5.0));
        assert_eq!(
            v("browse.search.rps", 0, 1000),
            None,
            "no window for search in second 0"
        );
        assert_eq!(v("browse.rps", 5000, 9000), None);
        assert_eq!(v("nope.rps", 0, 9000), None);
        assert_eq!(v("browse.bogus", 0, 9000), None);
        assert!(
            store
                .names()
                .contains(&"browse.search.latency.p999".to_string())
        );
        store.set_fact("browse.writes.lost", 2.0);
        assert_eq!(v("browse.writes.lost", 0, 1), Some(2.0));
        assert!(store.names().contains(&"browse.writes.lost".to_string()));

        // The same second published again (another process) merges exactly.
        store.publish(&w1);
        assert_eq!(v("browse.dropped", 1000, 2000), Some(10.0));
        assert_eq!(v("browse.rps", 1000, 2000), Some(200.0));
    }
}
