//! Toxics: what a proxy does to the bytes of one direction, with Toxiproxy's names,
//! attributes and units, and their JSON shape on the admin API.

use serde_json::{Map, Value, json};

use crate::error::ToxicError;
use crate::http::HttpMatch;

/// The direction a toxic acts on. `Upstream` is client to server, `Downstream` is
/// server to client (Toxiproxy's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Upstream,
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    pub fn parse(s: &str) -> Option<Stream> {
        match s {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

/// One toxic as the admin API and the library see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    /// Unique within a proxy; Toxiproxy's default is `<type>_<stream>`.
    pub name: String,
    pub stream: Stream,
    /// Probability that the toxic acts on a given connection, 0.0 (never) to 1.0.
    pub toxicity: f32,
    pub kind: ToxicKind,
}

impl Toxic {
    /// A toxic with Toxiproxy's defaults: name `<type>_<stream>`, toxicity 1.0.
    pub fn new(stream: Stream, kind: ToxicKind) -> Toxic {
        Toxic {
            name: format!("{}_{}", kind.type_name(), stream.as_str()),
            stream,
            toxicity: 1.0,
            kind,
        }
    }

    pub fn named(mut self, name: impl Into<String>) -> Toxic {
        self.name = name.into();
        self
    }

    pub fn with_toxicity(mut self, toxicity: f32) -> Toxic {
        self.toxicity = toxicity;
        self
    }

    /// The Toxiproxy JSON shape: `{name, type, stream, toxicity, attributes}`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind.type_name(),
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
            "attributes": self.kind.attributes(),
        })
    }

    /// Parses a toxic-creation body the way Toxiproxy does: `type` is required, `stream`
    /// defaults to downstream, `toxicity` to 1.0, the name to `<type>_<stream>`, and
    /// missing attributes to zero (unknown attributes are ignored, as Toxiproxy does).
    pub fn from_json(body: &Value) -> Result<Toxic, ToxicError> {
        let obj = body.as_object().ok_or_else(|| {
            ToxicError::BadBody("expected a JSON object like {\"type\": \"latency\"}".into())
        })?;
        let type_name = opt_str(obj, "type")?.unwrap_or_default();
        let is_http = type_name.starts_with("http.");
        let stream = match opt_str(obj, "stream")? {
            // HTTP toxics act on requests, so their natural stream is upstream.
            None | Some("") if is_http => Stream::Upstream,
            None | Some("") => Stream::Downstream,
            Some(s) => Stream::parse(s).ok_or(ToxicError::InvalidStream)?,
        };
        if is_http && stream == Stream::Downstream {
            return Err(ToxicError::BadBody(format!(
                "{type_name} acts on requests: use stream upstream (or leave it out)"
            )));
        }
        let toxicity = match obj.get("toxicity") {
            None | Some(Value::Null) => 1.0,
            Some(v) => toxicity_value(v)?,
        };
        let empty = Map::new();
        let attrs = match obj.get("attributes") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ToxicError::BadBody(
                    "attributes must be a JSON object".into(),
                ));
            }
        };
        let mut kind = ToxicKind::zero(type_name).ok_or(ToxicError::InvalidType)?;
        kind.merge(attrs)?;
        let name = match opt_str(obj, "name")? {
            None | Some("") => format!("{}_{}", type_name, stream.as_str()),
            Some(n) => n.to_string(),
        };
        Ok(Toxic {
            name,
            stream,
            toxicity,
            kind,
        })
    }

    /// Applies a toxic-update body: `attributes` given are changed, others kept;
    /// `toxicity` is kept unless given. Name, type and stream do not change.
    pub fn patched(&self, body: &Value) -> Result<Toxic, ToxicError> {
        let obj = body.as_object().ok_or_else(|| {
            ToxicError::BadBody("expected a JSON object like {\"attributes\": {...}}".into())
        })?;
        let mut next = self.clone();
        if let Some(v) = obj.get("toxicity").filter(|v| !v.is_null()) {
            next.toxicity = toxicity_value(v)?;
        }
        match obj.get("attributes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => next.kind.merge(m)?,
            Some(_) => {
                return Err(ToxicError::BadBody(
                    "attributes must be a JSON object".into(),
                ));
            }
        }
        Ok(next)
    }
}

/// The toxic kinds and their attributes, in Toxiproxy's units.
#[derive(Debug, Clone, PartialEq)]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ± `jitter` milliseconds.
    Latency { latency: u64, jitter: u64 },
    /// At most `rate` KB/s (1 KB = 1000 bytes, as Toxiproxy); 0 means unlimited.
    Bandwidth { rate: u64 },
    /// Delay the close (EOF) of the stream by `delay` milliseconds.
    SlowClose { delay: u64 },
    /// Let no data through and close the connection after `timeout` milliseconds;
    /// 0 holds the connection open, dropping data, until the toxic is removed.
    Timeout { timeout: u64 },
    /// On the first data, wait `timeout` milliseconds, then reset (RST) the connection.
    ResetPeer { timeout: u64 },
    /// Cut chunks into pieces of about `average_size` ± `size_variation` bytes, with
    /// `delay` microseconds between pieces.
    Slicer {
        average_size: u64,
        size_variation: u64,
        delay: u64,
    },
    /// Close the connection once `bytes` bytes have passed in this direction.
    LimitData { bytes: u64 },
    /// Drop each chunk with probability `rate` (0.0 to 1.0).
    Drop { rate: f64 },
    /// Mutate each chunk with probability `rate`: a bit flip, a truncation or an
    /// inserted byte, drawn from a generator seeded by `seed` and the connection number.
    Corrupt { rate: f64, seed: u64 },
    /// Answer matching HTTP/1.1 requests with `status` and `body` without reaching the
    /// upstream (upstream stream only).
    HttpAbort {
        status: u16,
        body: String,
        matching: HttpMatch,
    },
    /// Hold matching HTTP/1.1 requests for `delay` milliseconds before forwarding them.
    HttpDelay { delay: u64, matching: HttpMatch },
}

/// Every toxic type name the proxy accepts, for error messages and docs.
pub const TOXIC_TYPES: &[&str] = &[
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "drop",
    "corrupt",
    "http.abort",
    "http.delay",
];

impl ToxicKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
            ToxicKind::Drop { .. } => "drop",
            ToxicKind::Corrupt { .. } => "corrupt",
            ToxicKind::HttpAbort { .. } => "http.abort",
            ToxicKind::HttpDelay { .. } => "http.delay",
        }
    }

    /// The kind of the given type name with every attribute zero (Toxiproxy's Go
    /// zero values); `None` for an unknown type. A corrupt toxic gets a fresh seed.
    pub fn zero(type_name: &str) -> Option<ToxicKind> {
        Some(match type_name {
            "latency" => ToxicKind::Latency {
                latency: 0,
                jitter: 0,
            },
            "bandwidth" => ToxicKind::Bandwidth { rate: 0 },
            "slow_close" => ToxicKind::SlowClose { delay: 0 },
            "timeout" => ToxicKind::Timeout { timeout: 0 },
            "reset_peer" => ToxicKind::ResetPeer { timeout: 0 },
            "slicer" => ToxicKind::Slicer {
                average_size: 0,
                size_variation: 0,
                delay: 0,
            },
            "limit_data" => ToxicKind::LimitData { bytes: 0 },
            "drop" => ToxicKind::Drop { rate: 0.0 },
            "corrupt" => ToxicKind::Corrupt {
                rate: 0.0,
                seed: rand::random(),
            },
            // New kinds get useful defaults: every request, 503.
            "http.abort" => ToxicKind::HttpAbort {
                status: 503,
                body: String::new(),
                matching: HttpMatch::default(),
            },
            "http.delay" => ToxicKind::HttpDelay {
                delay: 0,
                matching: HttpMatch::default(),
            },
            _ => return None,
        })
    }

    /// The attributes as Toxiproxy shows them.
    pub fn attributes(&self) -> Value {
        match self {
            ToxicKind::Latency { latency, jitter } => json!({"latency": latency, "jitter": jitter}),
            ToxicKind::Bandwidth { rate } => json!({"rate": rate}),
            ToxicKind::SlowClose { delay } => json!({"delay": delay}),
            ToxicKind::Timeout { timeout } => json!({"timeout": timeout}),
            ToxicKind::ResetPeer { timeout } => json!({"timeout": timeout}),
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => json!({
                "average_size": average_size, "size_variation": size_variation, "delay": delay
            }),
            ToxicKind::LimitData { bytes } => json!({"bytes": bytes}),
            ToxicKind::Drop { rate } => json!({"rate": rate}),
            ToxicKind::Corrupt { rate, seed } => json!({"rate": rate, "seed": seed}),
            ToxicKind::HttpAbort {
                status,
                body,
                matching,
            } => {
                let mut v = match_json(matching);
                v["status"] = json!(status);
                v["body"] = json!(body);
                v
            }
            ToxicKind::HttpDelay { delay, matching } => {
                let mut v = match_json(matching);
                v["delay"] = json!(delay);
                v
            }
        }
    }

    /// Overwrites the attributes present in `attrs`; others keep their value.
    fn merge(&mut self, attrs: &Map<String, Value>) -> Result<(), ToxicError> {
        let int = |key: &str, cur: &mut u64| -> Result<(), ToxicError> {
            if let Some(v) = attrs.get(key) {
                *cur = uint_attr(key, v)?;
            }
            Ok(())
        };
        let frac = |key: &str, cur: &mut f64| -> Result<(), ToxicError> {
            if let Some(v) = attrs.get(key) {
                *cur = rate_attr(key, v)?;
            }
            Ok(())
        };
        match self {
            ToxicKind::Latency { latency, jitter } => {
                int("latency", latency)?;
                int("jitter", jitter)
            }
            ToxicKind::Bandwidth { rate } => int("rate", rate),
            ToxicKind::SlowClose { delay } => int("delay", delay),
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => {
                int("timeout", timeout)
            }
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => {
                int("average_size", average_size)?;
                int("size_variation", size_variation)?;
                int("delay", delay)
            }
            ToxicKind::LimitData { bytes } => int("bytes", bytes),
            ToxicKind::Drop { rate } => frac("rate", rate),
            ToxicKind::Corrupt { rate, seed } => {
                frac("rate", rate)?;
                int("seed", seed)
            }
            ToxicKind::HttpAbort {
                status,
                body,
                matching,
            } => {
                let mut st = u64::from(*status);
                int("status", &mut st)?;
                if !(100..=599).contains(&st) {
                    return Err(ToxicError::BadBody(format!(
                        "attribute status must be an HTTP status from 100 to 599, got {st}"
                    )));
                }
                *status = st as u16;
                string_attr(attrs, "body", body)?;
                merge_match(attrs, matching)
            }
            ToxicKind::HttpDelay { delay, matching } => {
                int("delay", delay)?;
                merge_match(attrs, matching)
            }
        }
    }
}

fn match_json(m: &HttpMatch) -> Value {
    json!({
        "method": m.method, "path_prefix": m.path_prefix, "header": m.header,
        "rate": m.rate, "first": m.first,
    })
}

fn merge_match(attrs: &Map<String, Value>, m: &mut HttpMatch) -> Result<(), ToxicError> {
    string_attr(attrs, "method", &mut m.method)?;
    string_attr(attrs, "path_prefix", &mut m.path_prefix)?;
    string_attr(attrs, "header", &mut m.header)?;
    if let Some(v) = attrs.get("rate") {
        m.rate = rate_attr("rate", v)?;
    }
    if let Some(v) = attrs.get("first") {
        m.first = uint_attr("first", v)?;
    }
    Ok(())
}

fn string_attr(attrs: &Map<String, Value>, key: &str, cur: &mut String) -> Result<(), ToxicError> {
    match attrs.get(key) {
        None => Ok(()),
        Some(Value::Null) => {
            cur.clear();
            Ok(())
        }
        Some(Value::String(s)) => {
            *cur = s.clone();
            Ok(())
        }
        Some(v) => Err(ToxicError::BadBody(format!(
            "attribute {key} must be a string, got {v}"
        ))),
    }
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ToxicError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ToxicError::BadBody(format!("{key} must be a string"))),
    }
}

fn uint_attr(key: &str, v: &Value) -> Result<u64, ToxicError> {
    v.as_u64().ok_or_else(|| {
        ToxicError::BadBody(format!(
            "attribute {key} must be a non-negative integer, got {v}"
        ))
    })
}

fn rate_attr(key: &str, v: &Value) -> Result<f64, ToxicError> {
    match v.as_f64() {
        Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(ToxicError::BadBody(format!(
            "attribute {key} must be a number from 0.0 to 1.0, got {v}"
        ))),
    }
}

fn toxicity_value(v: &Value) -> Result<f32, ToxicError> {
    match v.as_f64() {
        Some(t) if (0.0..=1.0).contains(&t) => Ok(t as f32),
        _ => Err(ToxicError::BadBody(format!(
            "toxicity must be a number from 0.0 to 1.0, got {v}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_toxiproxy() {
        let t =
            Toxic::from_json(&json!({"type": "latency", "attributes": {"latency": 100}})).unwrap();
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.stream, Stream::Downstream);
        assert_eq!(t.toxicity, 1.0);
        assert_eq!(
            t.kind,
            ToxicKind::Latency {
                latency: 100,
                jitter: 0
            }
        );
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let cases = [
            (json!({"type": "nope"}), "invalid toxic type"),
            (json!({}), "invalid toxic type"),
            (
                json!({"type": "latency", "stream": "sideways"}),
                "stream was invalid",
            ),
            (
                json!({"type": "latency", "attributes": {"latency": -1}}),
                "non-negative",
            ),
            (
                json!({"type": "latency", "attributes": {"latency": "5"}}),
                "non-negative",
            ),
            (
                json!({"type": "drop", "attributes": {"rate": 2}}),
                "0.0 to 1.0",
            ),
            (json!({"type": "latency", "toxicity": "x"}), "toxicity"),
            (json!({"type": 5}), "type must be a string"),
            (json!([1]), "expected a JSON object"),
        ];
        for (body, want) in cases {
            let err = Toxic::from_json(&body).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn patch_keeps_what_is_not_given() {
        let t = Toxic::from_json(&json!({"type": "slicer", "stream": "upstream",
            "attributes": {"average_size": 10, "delay": 5}}))
        .unwrap();
        let p = t.patched(&json!({"attributes": {"delay": 7}})).unwrap();
        assert_eq!(
            p.kind,
            ToxicKind::Slicer {
                average_size: 10,
                size_variation: 0,
                delay: 7
            }
        );
        assert_eq!(p.name, "slicer_upstream");
        let p = t.patched(&json!({"toxicity": 0.5})).unwrap();
        assert_eq!(p.toxicity, 0.5);
        assert_eq!(p.kind, t.kind);
    }
}
