//! Request generation from schemas: valid values, boundary values first (`minimum - 1`,
//! `maxLength + 1`, empty, over-long), then invalid inputs (wrong types, missing required,
//! extra properties, malformed JSON, huge and deeply nested bodies). Every choice comes
//! from the caller's seeded RNG, so the same seed gives the same cases.

use std::collections::HashMap;

use bytes::Bytes;
use http::Method;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};

use crate::schema::{self, Validator};
use crate::spec::{BodyKind, Operation, ParamIn};

/// Which credentials a case is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creds {
    /// The configured identity (if any).
    Primary,
    /// None at all.
    Missing,
    /// A token no server issued.
    Garbage,
    /// The second identity (for `object_access`).
    Second,
}

/// What the spec says about a case's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The input conforms to the spec.
    Valid,
    /// The input breaks the spec; `unambiguous` when no reading of the spec allows it
    /// (a required field missing, a wrong JSON type), so a 2xx is a finding.
    Invalid { unambiguous: bool },
}

/// Why a case exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Valid,
    Boundary,
    Invalid,
    /// An `auth_enforced` probe.
    Auth,
    /// An `injection` payload (index into `inject::PAYLOADS`).
    Injection(usize),
    /// A method the path does not declare.
    UndeclaredMethod,
    /// Values from an earlier response (links, Location, ids).
    FollowUp,
    /// Same request as an earlier 2xx one, sent with the second identity.
    OtherIdentity,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseBody {
    Json(Value),
    Form(Vec<(String, String)>),
    Raw { content_type: String, bytes: Bytes },
}

/// One request to send, before rendering.
#[derive(Debug, Clone)]
pub struct Case {
    pub op: usize,
    pub method: Method,
    /// `(in, name, value)`; a `Value::String` is sent verbatim.
    pub params: Vec<(ParamIn, String, Value)>,
    pub body: Option<CaseBody>,
    pub expect: Expect,
    pub origin: Origin,
    pub creds: Creds,
    /// What this case tries, for reports (`query limit = minimum - 1`).
    pub note: String,
}

/// Values seen in responses, by parameter name, that later requests reuse.
#[derive(Debug, Default)]
pub struct Pool {
    values: HashMap<String, Vec<Value>>,
}

impl Pool {
    pub fn add(&mut self, name: &str, value: Value) {
        let list = self.values.entry(name.to_ascii_lowercase()).or_default();
        if !list.contains(&value) {
            if list.len() >= 64 {
                list.remove(0);
            }
            list.push(value);
        }
    }

    /// A value for a parameter named `name` (`itemId` also takes plain `id`s).
    pub fn pick(&self, name: &str, rng: &mut StdRng) -> Option<Value> {
        let lower = name.to_ascii_lowercase();
        let list = self.values.get(&lower).or_else(|| {
            if lower.ends_with("id") {
                self.values.get("id")
            } else {
                None
            }
        })?;
        list.choose(rng).cloned()
    }
}

const MAX_DEPTH: usize = 6;
/// Caps on what a schema can make the generator build: a spec asking for a billion
/// characters or items gets these many (and an invalid value), never an abort.
const MAX_TEXT: u64 = 100_000;
const MAX_ITEMS: u64 = 1000;

/// Resolves `allOf` into one schema (properties and required merged).
fn merged(schema: &Value) -> Value {
    let Some(all) = schema.get("allOf").and_then(Value::as_array) else {
        return schema.clone();
    };
    let mut out = schema.as_object().cloned().unwrap_or_default();
    out.remove("allOf");
    let mut props = out
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut required: Vec<Value> = out
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for sub in all {
        let sub = merged(sub);
        if let Some(p) = sub.get("properties").and_then(Value::as_object) {
            props.extend(p.clone());
        }
        if let Some(r) = sub.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
        for (k, v) in sub.as_object().into_iter().flatten() {
            if !["properties", "required"].contains(&k.as_str()) {
                out.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
    if !props.is_empty() {
        out.insert("properties".into(), Value::Object(props));
        out.entry("type").or_insert("object".into());
    }
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    Value::Object(out)
}

/// The main type of a schema (first non-null type, else inferred from its keywords).
pub fn main_type(schema: &Value) -> &'static str {
    let ts = schema::types(schema);
    for t in ["object", "array", "integer", "number", "string", "boolean"] {
        if ts.contains(&t) {
            return t;
        }
    }
    if schema.get("properties").is_some() {
        "object"
    } else if schema.get("items").is_some() {
        "array"
    } else if ts.contains(&"null") {
        "null"
    } else if schema.get("minimum").is_some() || schema.get("maximum").is_some() {
        "number"
    } else {
        "string"
    }
}

/// The generator: stateless apart from a pattern cache.
#[derive(Debug, Default)]
pub struct Generator {
    validator: Validator,
    regex_gens: HashMap<String, Option<rand_regex::Regex>>,
}

impl Generator {
    pub fn new() -> Generator {
        Generator::default()
    }

    /// A value that conforms to `schema`.
    pub fn value(&mut self, schema: &Value, rng: &mut StdRng, depth: usize) -> Value {
        let schema = &merged(schema);
        if let Some(Value::Array(options)) = schema.get("enum")
            && let Some(v) = options.choose(rng)
        {
            return v.clone();
        }
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(options)) = schema.get(key)
                && let Some(sub) = options.choose(rng)
            {
                return self.value(sub, rng, depth + 1);
            }
        }
        if let Some(example) = schema.get("example")
            && rng.random_bool(0.25)
            && self.validator.validate(schema, example).is_none()
        {
            return example.clone();
        }
        match main_type(schema) {
            "object" => {
                let mut out = Map::new();
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (name, sub) in props {
                        let is_required = required.contains(&name.as_str());
                        if sub.get("readOnly").and_then(Value::as_bool) == Some(true)
                            && !is_required
                        {
                            continue;
                        }
                        if is_required || (depth < MAX_DEPTH && rng.random_bool(0.5)) {
                            out.insert(name.clone(), self.value(sub, rng, depth + 1));
                        }
                    }
                }
                Value::Object(out)
            }
            "array" => {
                let min = schema
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(MAX_ITEMS);
                let max = schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(min + 3)
                    .min(min + 3);
                let n = if depth >= MAX_DEPTH {
                    min
                } else {
                    rng.random_range(min..=max.max(min))
                };
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                Value::Array((0..n).map(|_| self.value(&items, rng, depth + 1)).collect())
            }
            "integer" => {
                let (lo, hi) = int_range(schema);
                let mut x = rng.random_range(lo..=hi);
                if let Some(m) = schema
                    .get("multipleOf")
                    .and_then(Value::as_i64)
                    .filter(|m| *m > 0)
                {
                    x = (x / m) * m;
                    if x < lo {
                        x += m;
                    }
                }
                json!(x)
            }
            "number" => {
                let (lo, lx, hi, hx) = schema::bounds(schema);
                // Bounded so the range cannot overflow the sampler.
                let lo = lo.unwrap_or(0.0).clamp(-1e15, 1e15);
                let hi = hi.unwrap_or(lo + 1000.0).clamp(-1e15, 1e15).max(lo);
                let mut x = rng.random_range(lo..=hi);
                if (lx && x <= lo) || (hx && x >= hi) {
                    x = (lo + hi) / 2.0;
                }
                json!(x)
            }
            "boolean" => json!(rng.random_bool(0.5)),
            "null" => Value::Null,
            _ => Value::String(self.string(schema, rng)),
        }
    }

    fn string(&mut self, schema: &Value, rng: &mut StdRng) -> String {
        let min = schema
            .get("minLength")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(MAX_TEXT) as usize;
        let max = schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .map(|m| m as usize)
            .unwrap_or(min + 12);
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            let sampler = self
                .regex_gens
                .entry(p.to_string())
                .or_insert_with(|| {
                    // rand_regex refuses anchors; generated strings match whole anyway.
                    let body = p.strip_prefix('^').unwrap_or(p);
                    if huge_repeat(p) {
                        return None;
                    }
                    let body = if body.ends_with('$') && !body.ends_with("\\$") {
                        &body[..body.len() - 1]
                    } else {
                        body
                    };
                    rand_regex::Regex::compile(body, 8).ok()
                })
                .clone();
            if let Some(sampler) = sampler {
                for _ in 0..16 {
                    let s: String = rng.sample(&sampler);
                    let n = s.chars().count();
                    if n >= min
                        && n <= max
                        && self.validator.pattern(p).is_none_or(|re| re.is_match(&s))
                    {
                        return s;
                    }
                }
            }
        }
        let formatted = match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Some(format!(
                "2024-0{}-1{}T10:2{}:00Z",
                rng.random_range(1..=9),
                rng.random_range(0..=9),
                rng.random_range(0..=9)
            )),
            Some("date") => Some(format!(
                "2024-0{}-1{}",
                rng.random_range(1..=9),
                rng.random_range(0..=9)
            )),
            Some("time") => Some(format!(
                "1{}:3{}:00",
                rng.random_range(0..=9),
                rng.random_range(0..=9)
            )),
            Some("email") => Some(format!("user{}@example.com", rng.random_range(0..10_000))),
            Some("uuid") => {
                let b: [u8; 16] = rng.random();
                Some(format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    u16::from_be_bytes([b[4], b[5]]),
                    u16::from_be_bytes([b[6], b[7]]) & 0xfff,
                    u16::from_be_bytes([b[8], b[9]]) & 0xfff,
                    u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
                ))
            }
            Some("uri") | Some("url") => {
                Some(format!("http://example.com/p{}", rng.random_range(0..1000)))
            }
            Some("hostname") => Some(format!("host{}.example.com", rng.random_range(0..1000))),
            Some("ipv4") => Some(format!("192.0.2.{}", rng.random_range(1..255))),
            Some("ipv6") => Some(format!("2001:db8::{:x}", rng.random_range(1..0xffff))),
            Some("byte") => Some("bGl2ZWZpcmU=".into()),
            _ => None,
        };
        if let Some(s) = formatted {
            let n = s.chars().count();
            if n >= min && n <= max {
                return s;
            }
        }
        let n = rng.random_range(min..=max.max(min).min(min + 24));
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    /// Boundary and invalid values for one schema, boundaries first:
    /// `(value, expectation, note)`. `in_json` says whether JSON types are visible
    /// (bodies) or everything travels as text (parameters).
    pub fn edge_values(&mut self, schema: &Value, in_json: bool) -> Vec<(Value, Expect, String)> {
        let schema = &merged(schema);
        let mut out = Vec::new();
        let invalid = Expect::Invalid { unambiguous: false };
        let wrong_type = Expect::Invalid { unambiguous: true };
        if let Some(Value::Array(options)) = schema.get("enum") {
            for o in options.iter().take(8) {
                out.push((o.clone(), Expect::Valid, format!("enum value {o}")));
            }
            out.push((
                json!("lf-not-in-enum"),
                invalid.clone(),
                "a value outside the enum".into(),
            ));
            return out;
        }
        match main_type(schema) {
            "integer" | "number" => {
                let integer = main_type(schema) == "integer";
                let (lo, lx, hi, hx) = schema::bounds(schema);
                let num = |x: f64| if integer { json!(x as i64) } else { json!(x) };
                let step = if integer { 1.0 } else { 0.5 };
                if let Some(lo) = lo {
                    let first_ok = if lx { lo + step } else { lo };
                    out.push((num(first_ok), Expect::Valid, "minimum".into()));
                    out.push((num(first_ok - step), invalid.clone(), "minimum - 1".into()));
                }
                if let Some(hi) = hi {
                    let last_ok = if hx { hi - step } else { hi };
                    out.push((num(last_ok), Expect::Valid, "maximum".into()));
                    out.push((num(last_ok + step), invalid.clone(), "maximum + 1".into()));
                }
                let fits = |x: f64| {
                    lo.is_none_or(|l| x > l || (!lx && x == l))
                        && hi.is_none_or(|h| x < h || (!hx && x == h))
                };
                for (x, note) in [
                    (0.0, "zero"),
                    (-1.0, "minus one"),
                    (i64::MAX as f64, "largest 64-bit integer"),
                ] {
                    let expect = if fits(x) {
                        Expect::Valid
                    } else {
                        invalid.clone()
                    };
                    out.push((num(x), expect, note.into()));
                }
                if integer {
                    out.push((
                        json!(1.5),
                        wrong_type.clone(),
                        "a fraction for an integer".into(),
                    ));
                }
                if in_json {
                    out.push((
                        json!("lf-not-a-number"),
                        wrong_type.clone(),
                        "a string for a number".into(),
                    ));
                } else {
                    out.push((
                        json!("lf-not-a-number"),
                        wrong_type.clone(),
                        "text for a number".into(),
                    ));
                }
            }
            "string" => {
                let min = schema.get("minLength").and_then(Value::as_u64);
                let max = schema.get("maxLength").and_then(Value::as_u64);
                if let Some(min) = min.filter(|m| *m > 0 && *m <= MAX_TEXT) {
                    out.push((
                        json!("a".repeat(min as usize)),
                        Expect::Valid,
                        "minLength".into(),
                    ));
                    out.push((
                        json!("a".repeat(min as usize - 1)),
                        invalid.clone(),
                        "minLength - 1".into(),
                    ));
                } else {
                    let expect = if min.unwrap_or(0) > 0 {
                        invalid.clone()
                    } else {
                        Expect::Valid
                    };
                    out.push((json!(""), expect, "empty string".into()));
                }
                if let Some(max) = max.filter(|m| *m < 100_000) {
                    out.push((
                        json!("a".repeat(max as usize)),
                        Expect::Valid,
                        "maxLength".into(),
                    ));
                    out.push((
                        json!("a".repeat(max as usize + 1)),
                        invalid.clone(),
                        "maxLength + 1".into(),
                    ));
                }
                let long = 5000usize;
                let expect = if max.is_some_and(|m| (m as usize) < long) {
                    invalid.clone()
                } else {
                    Expect::Valid
                };
                out.push((json!("a".repeat(long)), expect, "over-long string".into()));
                if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                    let candidate = "LF NOT MATCHING ~!";
                    if self
                        .validator
                        .pattern(p)
                        .is_some_and(|re| !re.is_match(candidate))
                    {
                        out.push((
                            json!(candidate),
                            invalid.clone(),
                            "a string outside the pattern".into(),
                        ));
                    }
                }
                if in_json {
                    out.push((
                        json!(12345),
                        wrong_type.clone(),
                        "a number for a string".into(),
                    ));
                }
                out.push((
                    json!("ü∂ 😀 \u{202e}"),
                    Expect::Valid,
                    "non-ASCII text".into(),
                ));
            }
            "boolean" => {
                out.push((json!(true), Expect::Valid, "true".into()));
                out.push((json!(false), Expect::Valid, "false".into()));
                if in_json {
                    out.push((
                        json!("lf-not-a-bool"),
                        wrong_type.clone(),
                        "a string for a boolean".into(),
                    ));
                } else {
                    out.push((
                        json!("lf-not-a-bool"),
                        wrong_type.clone(),
                        "text for a boolean".into(),
                    ));
                }
            }
            "array" if in_json => {
                out.push((
                    json!([]),
                    if schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) > 0 {
                        invalid.clone()
                    } else {
                        Expect::Valid
                    },
                    "empty array".into(),
                ));
                out.push((
                    json!("lf-not-an-array"),
                    wrong_type.clone(),
                    "a string for an array".into(),
                ));
            }
            "object" if in_json => {
                out.push((
                    json!("lf-not-an-object"),
                    wrong_type.clone(),
                    "a string for an object".into(),
                ));
            }
            _ => {}
        }
        out
    }

    /// A conforming request for operation `op` (pool values preferred for path ids).
    pub fn valid_case(
        &mut self,
        index: usize,
        op: &Operation,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> Case {
        let mut params = Vec::new();
        for p in &op.params {
            let optional_header = !p.required && p.location == ParamIn::Header;
            let share = if optional_header {
                OPTIONAL_HEADER_SHARE
            } else {
                0.5
            };
            if !p.required && !rng.random_bool(share) {
                continue;
            }
            let from_pool = if p.location == ParamIn::Path && rng.random_bool(0.8) {
                pool.pick(&p.name, rng)
            } else {
                None
            };
            let declared = optional_header
                .then(|| self.declared_value(&p.schema))
                .flatten();
            let value = from_pool
                .or(declared)
                .unwrap_or_else(|| self.value(&p.schema, rng, 1));
            params.push((p.location, p.name.clone(), value));
        }
        let body = op.body.as_ref().and_then(|b| {
            if !b.required && rng.random_bool(0.2) {
                return None;
            }
            let value = self.value(&b.schema, rng, 0);
            Some(encode_body(&b.kind, &b.media_type, value))
        });
        Case {
            op: index,
            method: op.method.clone(),
            params,
            body,
            expect: Expect::Valid,
            origin: Origin::Valid,
            creds: Creds::Primary,
            note: "valid request".into(),
        }
    }

    /// The value a schema declares as usual (`default`, else `example`), when it conforms.
    fn declared_value(&mut self, schema: &Value) -> Option<Value> {
        ["default", "example"]
            .iter()
            .filter_map(|k| schema.get(*k))
            .find(|v| self.validator.validate(schema, v).is_none())
            .cloned()
    }

    /// Boundary values, then invalid inputs, for every parameter and top-level body
    /// property of `op`, each in an otherwise valid request.
    pub fn edge_cases(
        &mut self,
        index: usize,
        op: &Operation,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> Vec<Case> {
        let mut boundary = Vec::new();
        let mut invalid = Vec::new();
        let base = |g: &mut Generator, rng: &mut StdRng| {
            let mut c = g.valid_case(index, op, rng, pool);
            // Edge cases carry every parameter, so the one changed is the only change;
            // but not optional headers (see `fill_params`).
            fill_params(g, &mut c, op, rng);
            c
        };
        for p in &op.params {
            let where_ = format!("{} {}", location_name(p.location), p.name);
            for (value, expect, note) in self.edge_values(&p.schema, false) {
                let mut c = base(self, rng);
                c.params
                    .retain(|(l, n, _)| !(*l == p.location && *n == p.name));
                c.params.push((p.location, p.name.clone(), value));
                c.note = format!("{where_} = {note}");
                push_edge(&mut boundary, &mut invalid, c, expect);
            }
            if p.required && p.location != ParamIn::Path {
                let mut c = base(self, rng);
                c.params
                    .retain(|(l, n, _)| !(*l == p.location && *n == p.name));
                c.note = format!("required {where_} missing");
                push_edge(
                    &mut boundary,
                    &mut invalid,
                    c,
                    Expect::Invalid { unambiguous: true },
                );
            }
        }
        if let Some(b) = &op.body {
            let schema = merged(&b.schema);
            let required: Vec<String> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let valid_object = |g: &mut Generator, rng: &mut StdRng| -> Map<String, Value> {
                let mut obj = match g.value(&schema, rng, 0) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                for (name, sub) in schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if !obj.contains_key(name)
                        && sub.get("readOnly").and_then(Value::as_bool) != Some(true)
                    {
                        obj.insert(name.clone(), g.value(sub, rng, 1));
                    }
                }
                obj
            };
            let body_case = |g: &mut Generator, rng: &mut StdRng, body: CaseBody, note: String| {
                let mut c = base(g, rng);
                c.body = Some(body);
                c.note = note;
                c
            };
            let is_object = main_type(&schema) == "object";
            let typed = b.kind == BodyKind::Json;
            if is_object && b.kind != BodyKind::Raw {
                for (name, sub) in schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    for (value, expect, note) in self.edge_values(sub, typed) {
                        let mut obj = valid_object(self, rng);
                        obj.insert(name.clone(), value);
                        let body = encode_body(&b.kind, &b.media_type, Value::Object(obj));
                        let c = body_case(self, rng, body, format!("body {name} = {note}"));
                        push_edge(&mut boundary, &mut invalid, c, expect);
                    }
                }
                for name in &required {
                    let mut obj = valid_object(self, rng);
                    obj.remove(name);
                    let body = encode_body(&b.kind, &b.media_type, Value::Object(obj));
                    let c = body_case(
                        self,
                        rng,
                        body,
                        format!("required body property {name} missing"),
                    );
                    push_edge(
                        &mut boundary,
                        &mut invalid,
                        c,
                        Expect::Invalid { unambiguous: true },
                    );
                }
                if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                    let mut obj = valid_object(self, rng);
                    obj.insert("lf_extra".into(), json!("x"));
                    let body = encode_body(&b.kind, &b.media_type, Value::Object(obj));
                    let c = body_case(
                        self,
                        rng,
                        body,
                        "an extra property (additionalProperties: false)".into(),
                    );
                    push_edge(
                        &mut boundary,
                        &mut invalid,
                        c,
                        Expect::Invalid { unambiguous: false },
                    );
                }
            }
            if b.required {
                let mut c = base(self, rng);
                c.body = None;
                c.note = "required body missing".into();
                push_edge(
                    &mut boundary,
                    &mut invalid,
                    c,
                    Expect::Invalid { unambiguous: true },
                );
            }
            if typed {
                let raw = |s: Vec<u8>| CaseBody::Raw {
                    content_type: b.media_type.clone(),
                    bytes: Bytes::from(s),
                };
                let c = body_case(
                    self,
                    rng,
                    raw(b"{\"lf\": [1, 2,".to_vec()),
                    "malformed JSON".into(),
                );
                push_edge(
                    &mut boundary,
                    &mut invalid,
                    c,
                    Expect::Invalid {
                        unambiguous: b.required,
                    },
                );
                // Huge: a valid object with a 256 KiB string beside it.
                let mut obj = valid_object(self, rng);
                obj.insert("lf_padding".into(), json!("x".repeat(256 * 1024)));
                let c = body_case(
                    self,
                    rng,
                    encode_body(&b.kind, &b.media_type, Value::Object(obj)),
                    "huge body (256 KiB)".into(),
                );
                push_edge(
                    &mut boundary,
                    &mut invalid,
                    c,
                    Expect::Invalid { unambiguous: false },
                );
                let depth = 2000;
                let nested = format!("{{\"lf\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
                let c = body_case(
                    self,
                    rng,
                    raw(nested.into_bytes()),
                    "deeply nested body (2000 levels)".into(),
                );
                push_edge(
                    &mut boundary,
                    &mut invalid,
                    c,
                    Expect::Invalid { unambiguous: false },
                );
            }
        }
        boundary.extend(invalid);
        boundary
    }
}

/// Whether a pattern repeats something more than 10,000 times (`a{1000000}`).
/// How often a conforming request carries an optional header. Services check headers
/// their documents describe loosely (a version header typed only `string`, refused
/// with 400 unless it names a version): a header on every request would stop most of
/// them at the door, before any handler runs.
const OPTIONAL_HEADER_SHARE: f64 = 0.2;

/// Adds every parameter `c` does not carry, except optional headers (sent only in their
/// share of conforming requests, or when a case changes that header).
pub fn fill_params(g: &mut Generator, c: &mut Case, op: &Operation, rng: &mut StdRng) {
    for p in &op.params {
        if !p.required && p.location == ParamIn::Header {
            continue;
        }
        if !c
            .params
            .iter()
            .any(|(l, n, _)| *l == p.location && *n == p.name)
        {
            let v = g.value(&p.schema, rng, 1);
            c.params.push((p.location, p.name.clone(), v));
        }
    }
}

fn huge_repeat(pattern: &str) -> bool {
    pattern.split('{').skip(1).any(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.len() > 4
    })
}

fn push_edge(boundary: &mut Vec<Case>, invalid: &mut Vec<Case>, mut c: Case, expect: Expect) {
    let is_valid = expect == Expect::Valid;
    c.expect = expect;
    let near_bound =
        c.note.contains("minimum") || c.note.contains("maximum") || c.note.contains("Length");
    c.origin = if is_valid || near_bound {
        Origin::Boundary
    } else {
        Origin::Invalid
    };
    if c.origin == Origin::Boundary {
        boundary.push(c)
    } else {
        invalid.push(c)
    }
}

fn int_range(schema: &Value) -> (i64, i64) {
    let (lo, lx, hi, hx) = schema::bounds(schema);
    let mut lo = lo
        .map(|l| (l.ceil() as i64).saturating_add(i64::from(lx)))
        .unwrap_or(i64::MIN);
    let mut hi = hi
        .map(|h| (h.floor() as i64).saturating_sub(i64::from(hx)))
        .unwrap_or(i64::MAX);
    if lo == i64::MIN && hi == i64::MAX {
        lo = 1;
        hi = 1000;
    } else if lo == i64::MIN {
        lo = hi.saturating_sub(1000);
    } else if hi == i64::MAX {
        hi = lo.saturating_add(1000);
    }
    if hi < lo {
        hi = lo;
    }
    (lo, hi)
}

pub fn location_name(l: ParamIn) -> &'static str {
    match l {
        ParamIn::Path => "path",
        ParamIn::Query => "query",
        ParamIn::Header => "header",
        ParamIn::Cookie => "cookie",
    }
}

/// Encodes a generated body value for the operation's media type.
pub fn encode_body(kind: &BodyKind, media_type: &str, value: Value) -> CaseBody {
    match kind {
        BodyKind::Json => CaseBody::Json(value),
        BodyKind::Form => {
            let pairs = match value {
                Value::Object(m) => m.into_iter().map(|(k, v)| (k, text(&v))).collect(),
                other => vec![("value".into(), text(&other))],
            };
            CaseBody::Form(pairs)
        }
        BodyKind::Raw => CaseBody::Raw {
            content_type: media_type.to_string(),
            bytes: Bytes::from(text(&value)),
        },
    }
}

/// How a generated value travels as text (parameters, form fields).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
