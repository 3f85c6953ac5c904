//! The kinds that add one Toxiproxy toxic to a proxy: `proxy.latency`,
//! `proxy.bandwidth`, `proxy.slow_close`, `proxy.timeout`, `proxy.reset_peer`,
//! `proxy.slicer`, `proxy.limit_data`, `proxy.drop`, `proxy.corrupt`, `http.abort`,
//! `http.delay`. They share everything but the toxic itself, so each kind is one
//! `impl ToxicFault` below (search for its name) and the rest is written once: the
//! toxic is named after the activity (`livefire_<activity>`, so two faults on one proxy
//! never clash), the undo record removes it by that name, and verify looks it up.

use livefire_core::undo::{ProxyOwner, UndoRecord};
use livefire_proxy::{HttpMatch, Stream, Toxic, ToxicKind};
use livefire_spec::values::{Share, ToxTime};
use livefire_spec::{
    HttpAbort as HttpAbortSpec, HttpDelay as HttpDelaySpec, ProxyBandwidth, ProxyDelay,
    ProxyLatency, ProxyLimitData, ProxyRate, ProxySlicer, ProxyTimeoutToxic,
};

use super::proxy_target;
use crate::proxy::{self, Change};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

/// One toxic kind: its name in the file, its target, and the toxic it adds.
pub(crate) trait ToxicFault {
    const KIND: &'static str;
    fn target(&self) -> &str;
    /// The toxic's kind and attributes, its stream, and its toxicity (0.0 to 1.0).
    fn toxic(&self, seed: u64) -> (ToxicKind, Stream, f32);
}

/// `proxy.latency`: delays each chunk by `latency` ± `jitter` (downstream by default).
pub(crate) struct Latency<'a>(pub &'a ProxyLatency);

impl ToxicFault for Latency<'_> {
    const KIND: &'static str = "proxy.latency";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::Latency {
            latency: ms(&f.latency),
            jitter: f.jitter.as_ref().map(ms).unwrap_or(0),
        };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.bandwidth`: at most `rate` KB/s.
pub(crate) struct Bandwidth<'a>(pub &'a ProxyBandwidth);

impl ToxicFault for Bandwidth<'_> {
    const KIND: &'static str = "proxy.bandwidth";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::Bandwidth { rate: f.rate };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.slow_close`: delays the close of a connection by `delay`.
pub(crate) struct SlowClose<'a>(pub &'a ProxyDelay);

impl ToxicFault for SlowClose<'_> {
    const KIND: &'static str = "proxy.slow_close";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::SlowClose {
            delay: ms(&f.delay),
        };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.timeout`: holds the data and closes after `timeout` (never when 0).
pub(crate) struct Timeout<'a>(pub &'a ProxyTimeoutToxic);

impl ToxicFault for Timeout<'_> {
    const KIND: &'static str = "proxy.timeout";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::Timeout {
            timeout: f.timeout.as_ref().map(ms).unwrap_or(0),
        };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.reset_peer`: resets the connection (TCP RST) after `timeout`.
pub(crate) struct ResetPeer<'a>(pub &'a ProxyTimeoutToxic);

impl ToxicFault for ResetPeer<'_> {
    const KIND: &'static str = "proxy.reset_peer";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::ResetPeer {
            timeout: f.timeout.as_ref().map(ms).unwrap_or(0),
        };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.slicer`: cuts data into chunks of `average_size` ± `size_variation` bytes,
/// `delay` apart.
pub(crate) struct Slicer<'a>(pub &'a ProxySlicer);

impl ToxicFault for Slicer<'_> {
    const KIND: &'static str = "proxy.slicer";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::Slicer {
            average_size: f.average_size,
            size_variation: f.size_variation.unwrap_or(0),
            delay: f
                .delay
                .map(|d| d.to_duration(1e-6).as_micros() as u64)
                .unwrap_or(0),
        };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.limit_data`: closes the connection after `bytes`.
pub(crate) struct LimitData<'a>(pub &'a ProxyLimitData);

impl ToxicFault for LimitData<'_> {
    const KIND: &'static str = "proxy.limit_data";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::LimitData { bytes: f.bytes.0 };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.drop`: drops a `rate` share of the chunks in flight.
pub(crate) struct Drop<'a>(pub &'a ProxyRate);

impl ToxicFault for Drop<'_> {
    const KIND: &'static str = "proxy.drop";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::Drop { rate: f.rate.0 };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `proxy.corrupt`: mutates a `rate` share of the chunks in flight (bit flips,
/// truncation, insertion), seeded from the run's seed.
pub(crate) struct Corrupt<'a>(pub &'a ProxyRate);

impl ToxicFault for Corrupt<'_> {
    const KIND: &'static str = "proxy.corrupt";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, seed: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::Corrupt {
            rate: f.rate.0,
            seed,
        };
        (kind, stream(f.stream), toxicity(f.toxicity))
    }
}

/// `http.abort`: answers a `share` (or the `first` N) of the matching HTTP requests
/// with `status` and `body`, without passing them on.
pub(crate) struct HttpAbort<'a>(pub &'a HttpAbortSpec);

impl ToxicFault for HttpAbort<'_> {
    const KIND: &'static str = "http.abort";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::HttpAbort {
            status: f.status,
            body: f.body.clone().unwrap_or_default(),
            matching: matching(f.match_.as_ref(), f.share, f.first),
        };
        (kind, Stream::Upstream, 1.0)
    }
}

/// `http.delay`: holds a `share` of the matching HTTP requests for `delay`.
pub(crate) struct HttpDelay<'a>(pub &'a HttpDelaySpec);

impl ToxicFault for HttpDelay<'_> {
    const KIND: &'static str = "http.delay";
    fn target(&self) -> &str {
        &self.0.target
    }
    fn toxic(&self, _: u64) -> (ToxicKind, Stream, f32) {
        let f = self.0;
        let kind = ToxicKind::HttpDelay {
            delay: f.delay.as_millis(),
            matching: matching(f.match_.as_ref(), f.share, None),
        };
        (kind, Stream::Upstream, 1.0)
    }
}

// What every toxic kind shares.

impl<T: ToxicFault> Kind for T {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        proxy_target(targets, self.target(), T::KIND).map(drop)
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        let (owner, proxy) = proxy_target(targets, self.target(), T::KIND)?;
        let (kind, stream, toxicity) = self.toxic(targets.seed);
        let toxic = Toxic::new(stream, kind)
            .named(toxic_name(activity))
            .with_toxicity(toxicity);
        let undo = UndoRecord::ProxyToxic {
            owner: owner.clone(),
            proxy: proxy.clone(),
            toxic: toxic.name.clone(),
        };
        Ok(Prepared::new(
            T::KIND,
            self.target(),
            Some(undo.clone()),
            vec![undo.resource()],
            Added {
                owner,
                proxy,
                toxic,
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Added {
    owner: ProxyOwner,
    proxy: String,
    toxic: Toxic,
}

impl Action for Added {
    fn apply(&self, cx: &Cx<'_>) -> Result<String, FaultError> {
        let change = Change::Toxic(self.toxic.clone());
        Ok(proxy::apply(&self.owner, &self.proxy, &change, cx.live)?)
    }

    fn verify(&self, cx: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let state = proxy::state(&self.owner, &self.proxy, cx.live)?;
        let name = self.toxic.name.as_str();
        let on = state["toxics"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == name));
        Ok(Some(Seen {
            applied: on,
            clean: !on,
            detail: format!(
                "toxic `{name}` is {} proxy `{}`",
                if on { "on" } else { "not on" },
                self.proxy
            ),
        }))
    }
}

/// `livefire_<activity>`, with anything but letters, digits, `_` and `-` as `_`.
fn toxic_name(activity: &str) -> String {
    format!("livefire_{activity}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn ms(t: &ToxTime) -> u64 {
    t.to_duration(1e-3).as_millis() as u64
}

/// Toxiproxy's default stream is downstream (server to client).
fn stream(s: Option<livefire_spec::Stream>) -> Stream {
    match s {
        Some(livefire_spec::Stream::Upstream) => Stream::Upstream,
        Some(livefire_spec::Stream::Downstream) | None => Stream::Downstream,
    }
}

fn toxicity(t: Option<Share>) -> f32 {
    t.map(|t| t.0 as f32).unwrap_or(1.0)
}

fn matching(
    m: Option<&livefire_spec::HttpMatch>,
    share: Option<Share>,
    first: Option<u64>,
) -> HttpMatch {
    let m = m.cloned().unwrap_or_default();
    HttpMatch {
        method: m.method.unwrap_or_default(),
        path_prefix: m.path_prefix.unwrap_or_default(),
        header: m
            .header
            .iter()
            .next()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}: {v}")
                }
            })
            .unwrap_or_default(),
        rate: share.map(|s| s.0).unwrap_or(1.0),
        first: first.unwrap_or(0),
    }
}
