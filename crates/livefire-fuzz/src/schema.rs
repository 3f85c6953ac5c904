//! JSON Schema as OpenAPI 3.0 and 3.1 use it: a tolerant validator for responses.
//!
//! It checks what a spec states plainly (types, required, enum, bounds, lengths,
//! patterns, items, additionalProperties: false) and is lenient where readings differ
//! (`oneOf` is read as `anyOf`, `format` is not enforced), so a correct service is never
//! reported for a matter of interpretation.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

/// The first place an instance breaks its schema: a JSON pointer into the instance
/// and what is wrong there (the message names the rule, not the value, so it is a
/// stable signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub at: String,
    pub message: String,
}

/// Compiled patterns, reused across validations.
#[derive(Debug, Default)]
pub struct Validator {
    patterns: HashMap<String, Option<Regex>>,
}

/// The type names a schema allows (`type: [string, "null"]`, or `nullable: true`).
pub fn types(schema: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !out.is_empty() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        out.push("null");
    }
    out
}

pub fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// Numeric bounds with both spellings of exclusivity (3.0 booleans, 3.1 numbers):
/// `(lower, lower_exclusive, upper, upper_exclusive)`.
pub fn bounds(schema: &Value) -> (Option<f64>, bool, Option<f64>, bool) {
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    let mut lower = num("minimum");
    let mut upper = num("maximum");
    let mut lx = schema
        .get("exclusiveMinimum")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut ux = schema
        .get("exclusiveMaximum")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(x) = num("exclusiveMinimum") {
        lower = Some(x);
        lx = true;
    }
    if let Some(x) = num("exclusiveMaximum") {
        upper = Some(x);
        ux = true;
    }
    (lower, lx, upper, ux)
}

impl Validator {
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Compiles (once) an OpenAPI pattern; `None` when the regex crate cannot read it.
    pub fn pattern(&mut self, pattern: &str) -> Option<&Regex> {
        self.patterns
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok())
            .as_ref()
    }

    /// Checks `instance` against `schema`; `None` when it conforms.
    pub fn validate(&mut self, schema: &Value, instance: &Value) -> Option<Mismatch> {
        self.check(schema, instance, "", 0)
    }

    fn check(&mut self, schema: &Value, v: &Value, at: &str, depth: usize) -> Option<Mismatch> {
        let s = schema.as_object()?;
        if depth > 64 {
            return None;
        }
        let miss = |message: String| {
            Some(Mismatch {
                at: if at.is_empty() { "/".into() } else { at.into() },
                message,
            })
        };
        let ts = types(schema);
        if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        if !ts.is_empty() && !ts.iter().any(|t| type_matches(t, v)) {
            return miss(format!("expected {}", ts.join(" or ")));
        }
        if let Some(Value::Array(allowed)) = s.get("enum")
            && !allowed.iter().any(|a| json_eq(a, v))
        {
            return miss("value not in enum".into());
        }
        if let Some(c) = s.get("const")
            && !json_eq(c, v)
        {
            return miss("value differs from const".into());
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                if let Some(m) = self.check(sub, v, at, depth + 1) {
                    return Some(m);
                }
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(any)) = s.get(key)
                && !any.is_empty()
                && !any
                    .iter()
                    .any(|sub| self.check(sub, v, at, depth + 1).is_none())
            {
                return miss(format!("matches none of {key}"));
            }
        }
        match v {
            Value::String(text) => {
                let len = text.chars().count() as u64;
                if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                    && len < min
                {
                    return miss("shorter than minLength".into());
                }
                if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                    && len > max
                {
                    return miss("longer than maxLength".into());
                }
                if let Some(p) = s.get("pattern").and_then(Value::as_str)
                    && let Some(re) = self.pattern(p)
                    && !re.is_match(text)
                {
                    return miss("does not match pattern".into());
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                let (lower, lx, upper, ux) = bounds(schema);
                if let Some(l) = lower
                    && (x < l || (lx && x == l))
                {
                    return miss("below minimum".into());
                }
                if let Some(u) = upper
                    && (x > u || (ux && x == u))
                {
                    return miss("above maximum".into());
                }
            }
            Value::Array(items) => {
                if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    return miss("fewer items than minItems".into());
                }
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                    && (items.len() as u64) > max
                {
                    return miss("more items than maxItems".into());
                }
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(m) =
                            self.check(item_schema, item, &format!("{at}/{i}"), depth + 1)
                        {
                            // Name the array, not the index, so one defect is one signature.
                            return Some(Mismatch {
                                at: format!("{at}/*{}", m.at.split_at(format!("{at}/{i}").len()).1),
                                message: m.message,
                            });
                        }
                    }
                }
            }
            Value::Object(map) => {
                if let Some(Value::Array(required)) = s.get("required") {
                    for r in required.iter().filter_map(Value::as_str) {
                        if !map.contains_key(r) {
                            return miss(format!("missing required property {r}"));
                        }
                    }
                }
                let props = s.get("properties").and_then(Value::as_object);
                for (k, child) in map {
                    let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    match props.and_then(|p| p.get(k)) {
                        Some(sub) => {
                            if let Some(m) = self.check(sub, child, &here, depth + 1) {
                                return Some(m);
                            }
                        }
                        None => match s.get("additionalProperties") {
                            Some(Value::Bool(false)) => {
                                return miss(format!("unexpected property {k}"));
                            }
                            Some(extra @ Value::Object(_)) => {
                                if let Some(m) = self.check(extra, child, &here, depth + 1) {
                                    return Some(m);
                                }
                            }
                            _ => {}
                        },
                    }
                }
            }
            _ => {}
        }
        None
    }
}

/// JSON equality where `1` and `1.0` are the same number.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_cases() {
        let item = json!({
            "type": "object", "required": ["id", "name"], "additionalProperties": false,
            "properties": {
                "id": { "type": "integer", "minimum": 1 },
                "name": { "type": "string", "maxLength": 3, "pattern": "^[a-z]+$" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "maybe": { "type": ["string", "null"] },
                "old": { "type": "string", "nullable": true },
                "score": { "type": "number", "exclusiveMinimum": 0 }
            }
        });
        let mut v = Validator::new();
        let cases: &[(Value, Option<(&str, &str)>)] = &[
            (json!({"id": 1, "name": "ab"}), None),
            (
                json!({"id": 1.0, "name": "ab", "maybe": null, "old": null}),
                None,
            ),
            (
                json!({"id": "1", "name": "ab"}),
                Some(("/id", "expected integer")),
            ),
            (
                json!({"name": "ab"}),
                Some(("/", "missing required property id")),
            ),
            (
                json!({"id": 0, "name": "ab"}),
                Some(("/id", "below minimum")),
            ),
            (
                json!({"id": 1, "name": "abcd"}),
                Some(("/name", "longer than maxLength")),
            ),
            (
                json!({"id": 1, "name": "AB"}),
                Some(("/name", "does not match pattern")),
            ),
            (
                json!({"id": 1, "name": "a", "x": 1}),
                Some(("/", "unexpected property x")),
            ),
            (
                json!({"id": 1, "name": "a", "tags": ["a", 2]}),
                Some(("/tags/*", "expected string")),
            ),
            (
                json!({"id": 1, "name": "a", "score": 0}),
                Some(("/score", "below minimum")),
            ),
        ];
        for (instance, want) in cases {
            let got = v.validate(&item, instance);
            let got = got.as_ref().map(|m| (m.at.as_str(), m.message.as_str()));
            assert_eq!(got, *want, "{instance}");
        }
    }
}
