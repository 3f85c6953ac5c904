//! Response checks (status, body contains, JSON path) and the small JSON path subset they
//! use: `$`, `.key`, `['key']`, `[index]`.

use crate::config::{Check, JsonExpect};

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A check ready to run against responses.
#[derive(Debug, Clone)]
pub enum Compiled {
    Status(u16),
    BodyContains(String),
    Json { path: Vec<Step>, expect: JsonExpect },
}

impl Compiled {
    /// Validates a check (its JSON path and expected type) before the run.
    pub fn new(check: &Check) -> Result<Compiled, String> {
        Ok(match check {
            Check::Status(s) => {
                if !(100..=999).contains(s) {
                    return Err(format!(
                        "status check {s} is not an HTTP status; use 100..999"
                    ));
                }
                Compiled::Status(*s)
            }
            Check::BodyContains(s) => Compiled::BodyContains(s.clone()),
            Check::Json { path, expect } => {
                if let JsonExpect::Type(t) = expect
                    && ![
                        "null", "bool", "boolean", "number", "string", "array", "object",
                    ]
                    .contains(&t.as_str())
                {
                    return Err(format!(
                        "json check type `{t}`: use null, bool, number, string, array or object"
                    ));
                }
                Compiled::Json {
                    path: parse_path(path)?,
                    expect: expect.clone(),
                }
            }
        })
    }

    /// Whether this check needs the response body.
    pub fn needs_body(&self) -> bool {
        !matches!(self, Compiled::Status(_))
    }

    /// Whether the response passes.
    pub fn passes(
        &self,
        status: u16,
        body: &[u8],
        json: &mut Option<Option<serde_json::Value>>,
    ) -> bool {
        match self {
            Compiled::Status(s) => status == *s,
            Compiled::BodyContains(s) => memfind(body, s.as_bytes()),
            Compiled::Json { path, expect } => {
                let doc = json.get_or_insert_with(|| serde_json::from_slice(body).ok());
                let Some(doc) = doc.as_ref() else {
                    return false;
                };
                let Some(v) = lookup(doc, path) else {
                    return false;
                };
                match expect {
                    JsonExpect::Exists => true,
                    JsonExpect::Equals(want) => v == want,
                    JsonExpect::Type(t) => match t.as_str() {
                        "null" => v.is_null(),
                        "bool" | "boolean" => v.is_boolean(),
                        "number" => v.is_number(),
                        "string" => v.is_string(),
                        "array" => v.is_array(),
                        _ => v.is_object(),
                    },
                }
            }
        }
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Follows a parsed path.
pub fn lookup<'a>(doc: &'a serde_json::Value, path: &[Step]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(doc, |v, step| match step {
        Step::Key(k) => v.get(k.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

/// Parses `$.a.b[0]['c d']`.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("bad JSON path `{path}`: {why}; write it like $.items[0].id");
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| bad("it must start with `$`"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("empty key after `.`"));
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed `[`"))?;
            let inner = r[..end].trim();
            if let Some(k) = inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) {
                steps.push(Step::Key(k.to_string()));
            } else if let Some(k) = inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
                steps.push(Step::Key(k.to_string()));
            } else {
                let i: usize = inner
                    .parse()
                    .map_err(|_| bad("an index must be a number or a quoted key"))?;
                steps.push(Step::Index(i));
            }
            rest = &r[end + 1..];
        } else {
            return Err(bad("expected `.` or `[`"));
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_checks() {
        let c = Compiled::new(&Check::Json {
            path: "$.items[1]['a b']".into(),
            expect: JsonExpect::Equals(3.into()),
        })
        .unwrap();
        let body = br#"{"items":[{}, {"a b": 3}]}"#;
        assert!(c.passes(200, body, &mut None));
        assert!(!c.passes(200, br#"{"items":[]}"#, &mut None));
        assert!(!c.passes(200, b"not json", &mut None));
        let t = Compiled::new(&Check::Json {
            path: "$.items".into(),
            expect: JsonExpect::Type("array".into()),
        })
        .unwrap();
        assert!(t.passes(200, body, &mut None));
        for bad in ["items", "$..x", "$[x", "$[abc]", "$x"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert!(
            Compiled::new(&Check::Status(200))
                .unwrap()
                .passes(200, b"", &mut None)
        );
        assert!(
            Compiled::new(&Check::BodyContains("ok".into()))
                .unwrap()
                .passes(200, b"is ok", &mut None)
        );
        assert!(Compiled::new(&Check::Status(20)).is_err());
    }
}
