//! Fuzz campaigns in experiments: a `fuzz:` activity becomes a `livefire_fuzz::FuzzConfig`
//! run on the experiment's clock; every finding is journaled with the faults active when
//! it appeared, counted for `<fuzz>.findings*` metrics, and judged against
//! `settings.fail_on`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use livefire_core::metrics::MetricSource;
use livefire_fuzz::{AuthConfig, FuzzConfig, LoginRequest, Rule, Severity};
use livefire_spec::{Auth, FailOn, Fuzz};

/// Why a `fuzz:` activity cannot run as written; each names the campaign.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("fuzz `{name}`: OpenAPI file {spec} does not exist")]
    NoSpec { name: String, spec: String },
    #[error("fuzz `{0}`: set `base_url` (where the API answers) when `openapi` is a file")]
    NoBaseUrl(String),
    #[error(
        "fuzz `{0}`: a rate cap of 0/s sends nothing: give a cap above 0, or no `rate` for none"
    )]
    ZeroRate(String),
    #[error("fuzz `{name}`: {source}")]
    Check {
        name: String,
        source: livefire_fuzz::finding::NameError,
    },
    #[error("fuzz `{0}`: `auth` needs exactly one of `value` and `login`")]
    Auth(String),
}

fn auth(name: &str, a: &Auth) -> Result<AuthConfig, CampaignError> {
    match (&a.value, &a.login) {
        (Some(value), None) => Ok(AuthConfig::Header {
            header: a.header.clone(),
            value: value.clone(),
        }),
        (None, Some(l)) => Ok(AuthConfig::Login {
            login: LoginRequest {
                method: l.method.clone().unwrap_or_else(|| "POST".into()),
                url: l.url.clone(),
                json: l.json.clone(),
                token: l.token.clone(),
            },
            header: a.header.clone(),
            format: a.format.clone().unwrap_or_else(|| "{token}".into()),
        }),
        _ => Err(CampaignError::Auth(name.to_owned())),
    }
}

/// Builds the campaign's config; errors name the campaign and say what to fix.
pub fn config(
    name: &str,
    f: &Fuzz,
    duration: Duration,
    cwd: &std::path::Path,
    seed: u64,
) -> Result<FuzzConfig, CampaignError> {
    let remote = f.openapi.starts_with("http://") || f.openapi.starts_with("https://");
    let spec = if remote {
        f.openapi.clone()
    } else {
        cwd.join(&f.openapi).display().to_string()
    };
    if !remote && !std::path::Path::new(&spec).exists() {
        return Err(CampaignError::NoSpec {
            name: name.to_owned(),
            spec,
        });
    }
    let base_url = match (&f.base_url, remote) {
        (Some(b), _) => b.clone(),
        (None, true) => {
            // The API is served where its spec is: scheme://host:port.
            let rest = f
                .openapi
                .split_once("://")
                .map(|(s, r)| (s, r.split('/').next().unwrap_or(r)));
            rest.map(|(s, hp)| format!("{s}://{hp}"))
                .unwrap_or_default()
        }
        (None, false) => {
            return Err(CampaignError::NoBaseUrl(name.to_owned()));
        }
    };
    if f.rate.is_some_and(|r| r.per_second <= 0.0) {
        return Err(CampaignError::ZeroRate(name.to_owned()));
    }
    let mut checks = Vec::new();
    for c in &f.checks {
        let text = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        checks.push(
            text.parse::<Rule>()
                .map_err(|source| CampaignError::Check {
                    name: name.to_owned(),
                    source,
                })?,
        );
    }
    Ok(FuzzConfig {
        spec,
        base_url,
        duration,
        max_requests: f.max_requests,
        checks,
        seed,
        rate: f.rate.map(|r| r.per_second),
        auth: f.auth.as_ref().map(|a| auth(name, a)).transpose()?,
        second_identity: f
            .second_identity
            .as_ref()
            .map(|a| auth(name, a))
            .transpose()?,
        ..FuzzConfig::default()
    })
}

/// A window event per sighting of `summary`, with the faults active when it appeared
/// and when it was last seen. `started_ms` and `ended_ms` are the campaign's bounds on the
/// run clock; `history` holds (activity, applied, rolled back) fault windows.
pub fn windows(
    campaign: &str,
    summary: &livefire_fuzz::Summary,
    started_ms: u64,
    ended_ms: u64,
    history: &[(String, u64, Option<u64>)],
) -> Vec<livefire_core::events::Event> {
    let active_at = |t: u64| active_at(history, t);
    summary
        .sightings
        .iter()
        .map(|s| {
            let (first, last) = (started_ms + s.first_ms, started_ms + s.last_ms);
            livefire_core::events::Event::FindingWindow {
                campaign: campaign.to_owned(),
                operation: s.operation.clone(),
                rule: s.rule.name().to_owned(),
                signature: s.signature.clone(),
                first_ms: first,
                last_ms: last,
                count: s.count,
                faults_at_first: active_at(first),
                faults_at_last: active_at(last),
                ended_after: history
                    .iter()
                    .filter(|(_, _, r)| r.is_some_and(|r| r >= last && r <= ended_ms))
                    .filter(|(n, _, _)| active_at(last).contains(n))
                    .map(|(n, _, _)| n.clone())
                    .collect(),
            }
        })
        .collect()
}

/// The faults active at `t` (run-clock ms), by display name, in the order applied.
/// `history` holds (activity, applied, rolled back) fault windows.
pub fn active_at(history: &[(String, u64, Option<u64>)], t: u64) -> Vec<String> {
    history
        .iter()
        .filter(|(_, a, r)| *a <= t && r.is_none_or(|r| t < r))
        .map(|(n, _, _)| n.clone())
        .collect()
}

/// Whether a finding of `severity` fails the verdict under `fail_on` (default high).
pub fn fails(severity: Severity, fail_on: FailOn) -> bool {
    let floor = match fail_on {
        FailOn::None => return false,
        FailOn::Low => Severity::Low,
        FailOn::Medium => Severity::Medium,
        FailOn::High => Severity::High,
        FailOn::Critical => Severity::Critical,
    };
    severity >= floor
}

/// Findings counted per campaign and severity: `<fuzz>.findings`,
/// `<fuzz>.findings.critical|high|medium|low`. Counts are since the run started.
#[derive(Debug, Default)]
pub struct FindingCounts {
    counts: Mutex<BTreeMap<String, BTreeMap<Severity, u64>>>,
}

impl FindingCounts {
    pub fn add(&self, campaign: &str, severity: Severity) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry(campaign.to_owned())
            .or_default()
            .entry(severity)
            .or_default() += 1;
    }
}

impl MetricSource for FindingCounts {
    fn names(&self) -> Vec<String> {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.keys()
            .flat_map(|k| {
                ["", ".critical", ".high", ".medium", ".low"].map(|s| format!("{k}.findings{s}"))
            })
            .collect()
    }

    fn value(&self, metric: &str, _from_ms: u64, _to_ms: u64) -> Option<f64> {
        let (campaign, rest) = metric.split_once(".findings")?;
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let by = c.get(campaign);
        let total = |f: &dyn Fn(Severity) -> bool| {
            by.map(|m| {
                m.iter()
                    .filter(|(s, _)| f(**s))
                    .map(|(_, n)| *n)
                    .sum::<u64>()
            })
            .unwrap_or(0) as f64
        };
        match rest {
            "" => Some(total(&|_| true)),
            ".critical" => Some(total(&|s| s == Severity::Critical)),
            ".high" => Some(total(&|s| s == Severity::High)),
            ".medium" => Some(total(&|s| s == Severity::Medium)),
            ".low" => Some(total(&|s| s == Severity::Low)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use livefire_fuzz::Rule;

    /// The experiment format lists fuzz checks by name (livefire-spec cannot depend on
    /// the fuzzer); this keeps the two lists the same, both ways.
    #[test]
    fn the_format_names_every_fuzzer_rule_and_no_other() {
        let schema = livefire_spec::json_schema();
        let names: Vec<&str> = schema["$defs"]["FuzzCheck"]["enum"]
            .as_array()
            .expect("FuzzCheck is an enum of names in the schema")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let rules: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names, rules);
        for name in names {
            let check: livefire_spec::types::FuzzCheck =
                serde_json::from_value(serde_json::json!(name)).unwrap();
            let back = serde_json::to_value(check).unwrap();
            assert_eq!(back.as_str().unwrap().parse::<Rule>().unwrap().name(), name);
        }
    }
}
