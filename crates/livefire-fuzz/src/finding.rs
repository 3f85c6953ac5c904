//! Rules, severities and findings: what a campaign reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a finding is; ordered, so `>= fail_on` works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A severity or a check name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("unknown severity {0:?}: use low, medium, high or critical")]
    Severity(String),
    #[error("unknown check {name:?}: use one of {known}")]
    Rule { name: String, known: String },
}

impl FromStr for Severity {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Severity, NameError> {
        match s {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(NameError::Severity(s.to_owned())),
        }
    }
}

/// A named, selectable check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    ServerError,
    Crash,
    StatusConformance,
    ContentType,
    ResponseSchema,
    NegativeAccepted,
    AuthEnforced,
    ObjectAccess,
    Injection,
    Leak,
    Slow,
}

impl Rule {
    pub const ALL: [Rule; 11] = [
        Rule::ServerError,
        Rule::Crash,
        Rule::StatusConformance,
        Rule::ContentType,
        Rule::ResponseSchema,
        Rule::NegativeAccepted,
        Rule::AuthEnforced,
        Rule::ObjectAccess,
        Rule::Injection,
        Rule::Leak,
        Rule::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::ServerError => "server_error",
            Rule::Crash => "crash",
            Rule::StatusConformance => "status_conformance",
            Rule::ContentType => "content_type",
            Rule::ResponseSchema => "response_schema",
            Rule::NegativeAccepted => "negative_accepted",
            Rule::AuthEnforced => "auth_enforced",
            Rule::ObjectAccess => "object_access",
            Rule::Injection => "injection",
            Rule::Leak => "leak",
            Rule::Slow => "slow",
        }
    }

    /// One line on what the rule reports, for `--help`, docs and SARIF.
    pub fn description(self) -> &'static str {
        match self {
            Rule::ServerError => {
                "a 5xx answer (501 not implemented and 502-504 availability answers excepted)"
            }
            Rule::Crash => "the connection closed without an answer, twice in a row",
            Rule::StatusConformance => "a status the operation does not declare",
            Rule::ContentType => "a content type the declared response does not list",
            Rule::ResponseSchema => "a JSON body that does not match the declared schema",
            Rule::NegativeAccepted => "a 2xx for input the spec rules out unambiguously",
            Rule::AuthEnforced => {
                "a 2xx without credentials or with a garbage token on a secured operation"
            }
            Rule::ObjectAccess => "one identity's object answered 2xx to the second identity",
            Rule::Injection => {
                "an injection payload caused an error signature, evaluation or a delay"
            }
            Rule::Leak => "a stack trace, SQL text, internal address or secret in an error body",
            Rule::Slow => "a response time far outside the live latency baseline, twice",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::AuthEnforced | Rule::Injection => Severity::Critical,
            Rule::ServerError | Rule::Crash | Rule::ObjectAccess => Severity::High,
            Rule::ResponseSchema | Rule::NegativeAccepted | Rule::Leak => Severity::Medium,
            Rule::StatusConformance | Rule::ContentType | Rule::Slow => Severity::Low,
        }
    }

    /// Rules on unless the caller picks a list (`object_access` needs a second identity).
    pub fn defaults() -> Vec<Rule> {
        Rule::ALL
            .iter()
            .copied()
            .filter(|r| *r != Rule::ObjectAccess)
            .collect()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Rule {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Rule, NameError> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                NameError::Rule {
                    name: s.to_owned(),
                    known: names.join(", "),
                }
            })
    }
}

/// The request that showed a finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), cut at 4 KiB.
    pub body: String,
    pub body_bytes: usize,
}

/// What came back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseRecord {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    /// The body as text (lossy), cut at 2 KiB.
    pub body: String,
    pub latency_ms: f64,
    /// Why there was no answer, when there was none.
    pub error: Option<String>,
}

/// One deduplicated finding: (operation, rule, signature) is its identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// `GET /items/{itemId}`.
    pub operation: String,
    /// What makes two sightings the same finding (`500`, `/price: expected integer`).
    pub signature: String,
    /// One line for humans.
    pub title: String,
    /// What the request tried (`query limit = minimum - 1`).
    pub input: String,
    pub request: RequestRecord,
    pub response: ResponseRecord,
    /// A shell command that sends the same request.
    pub curl: String,
    /// Whether optional parts of the first request were removed while the finding held.
    pub minimized: bool,
    /// Milliseconds since the campaign started, when the finding was seen (its
    /// exchange answered).
    pub at_ms: u64,
    /// Milliseconds since the campaign started, when the request of its first sighting
    /// was sent: the engine names the faults active then. Absent in older files.
    #[serde(default)]
    pub sent_ms: u64,
    /// Wall clock, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// When one defect showed on several operations (the same rule and path on several
    /// methods, or a slowdown of the whole target), each sighting; empty for a finding
    /// seen once. The request, response and reproducer are the first instance's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// Faults active when the finding appeared: the engine fills this in.
    pub active_faults: Vec<String>,
}

/// One sighting of a grouped finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    /// `GET /delay/{delay}`.
    pub operation: String,
    /// What the request tried, or for a request in flight, what it was.
    pub input: String,
    pub url: String,
    pub status: Option<u16>,
    pub sent_ms: u64,
    pub at_ms: u64,
}

impl Instance {
    pub fn of(f: &Finding) -> Instance {
        Instance {
            operation: f.operation.clone(),
            input: f.input.clone(),
            url: f.request.url.clone(),
            status: f.response.status,
            sent_ms: f.sent_ms,
            at_ms: f.at_ms,
        }
    }
}

impl Finding {
    pub fn key(&self) -> (String, Rule, String) {
        (self.operation.clone(), self.rule, self.signature.clone())
    }
}
