//! Response checks (status, body contains, JSON path). The JSON path subset is
//! livefire-core's, re-exported here.

use crate::config::{Check, JsonExpect};

pub use livefire_core::jsonpath::{Step, lookup, parse_path};

/// Why a response check was refused before the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("status check {0} is not an HTTP status; use 100..999")]
    Status(u16),
    #[error("json check type `{0}`: use null, bool, number, string, array or object")]
    JsonType(String),
    #[error(transparent)]
    Path(#[from] livefire_core::jsonpath::PathError),
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
    pub fn new(check: &Check) -> Result<Compiled, CheckError> {
        Ok(match check {
            Check::Status(s) => {
                if !(100..=999).contains(s) {
                    return Err(CheckError::Status(*s));
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
                    return Err(CheckError::JsonType(t.clone()));
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
