//! The rules: each looks at one exchange (the case, the operation's spec, what came
//! back, the live latency baseline) and says what is wrong, as `Draft`s. Rules that a
//! noisy target could trip by chance (`crash`, `slow`, time-based `injection`) ask for a
//! confirmation before they become findings.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::finding::Rule;
use crate::generate::{Case, Creds, Expect, Origin};
use crate::http::{FailKind, Outcome, Response};
use crate::schema::Validator;
use crate::signatures::{self, PAYLOADS};
use crate::spec::{Operation, ParamIn};

/// What a rule saw, before deduplication.
#[derive(Debug, Clone)]
pub struct Draft {
    pub rule: Rule,
    pub signature: String,
    pub title: String,
    pub confirm: Confirm,
}

/// What must happen before a draft is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Report as is.
    No,
    /// Send the same request again; report if it is slow again.
    Slow { threshold: Duration },
    /// Send the payload again and a benign control; report if the payload is slow again
    /// and the control is not.
    Delay { threshold: Duration },
}

/// Latency of recent ordinary answers, the yardstick for `slow` and time-based
/// `injection`: a degraded target raises the baseline, so it raises the bar too.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline {
    pub samples: usize,
    pub p50: Duration,
    pub p99: Duration,
}

/// Everything a rule needs besides the exchange.
#[derive(Debug)]
pub struct Context<'a> {
    pub rules: &'a HashSet<Rule>,
    pub baseline: Baseline,
    /// The floor under which nothing is slow.
    pub slow_floor: Duration,
    /// Signatures this operation showed for benign input (so they are not injection).
    pub benign: &'a HashSet<&'static str>,
}

fn draft(rule: Rule, signature: impl Into<String>, title: impl Into<String>) -> Draft {
    Draft {
        rule,
        signature: signature.into(),
        title: title.into(),
        confirm: Confirm::No,
    }
}

/// Statuses that are limits of the transport or of capacity rather than answers about
/// the input: never judged against the operation's declared statuses.
fn transport_status(status: u16) -> bool {
    matches!(status, 413 | 414 | 429 | 431) || status >= 500
}

fn media(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn media_matches(declared: &str, actual: &str) -> bool {
    if declared == actual || declared == "*/*" {
        return true;
    }
    match declared.strip_suffix("/*") {
        Some(prefix) => actual.split('/').next() == Some(prefix),
        None => false,
    }
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// Runs every enabled rule on one exchange. `crash_confirmed` says the request closed
/// the connection twice in a row (once on a fresh connection).
/// Whether the request itself carried the status code as a path or query value (an
/// echo endpoint such as `/status/{codes}` answering the 500 it was asked for).
pub fn asked_for(case: &Case, status: u16) -> bool {
    let code = status.to_string();
    case.params.iter().any(|(at, _, value)| {
        matches!(at, ParamIn::Path | ParamIn::Query)
            && match value {
                Value::String(s) => s
                    .split(|c: char| !c.is_ascii_digit())
                    .any(|part| part == code),
                Value::Number(n) => n.to_string() == code,
                _ => false,
            }
    })
}

/// Parameter names that ask the service to take time (httpbin's `/delay/{delay}` and
/// `/drip?duration=`, a `sleep` or `timeout` knob).
const TIME_PARAMS: [&str; 6] = ["delay", "duration", "sleep", "wait", "timeout", "seconds"];

/// Whether the request itself asked for time: a path or query value above zero in a
/// parameter named for it. Its slowness, or a server cutting it off, is not a finding.
pub fn asks_for_time(case: &Case) -> bool {
    case.params.iter().any(|(at, name, value)| {
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        matches!(at, ParamIn::Path | ParamIn::Query)
            && TIME_PARAMS.contains(&name.to_ascii_lowercase().as_str())
            && number.is_some_and(|n| n > 0.0)
    })
}

pub fn evaluate(
    ctx: &Context<'_>,
    validator: &mut Validator,
    op: &Operation,
    case: &Case,
    outcome: &Outcome,
    crash_confirmed: bool,
) -> Vec<Draft> {
    let on = |r: Rule| ctx.rules.contains(&r);
    let mut out = Vec::new();
    let resp = match outcome {
        Outcome::Failed { error, .. } => {
            if asks_for_time(case) {
                return out;
            }
            if on(Rule::Crash) && crash_confirmed && *error != FailKind::Timeout {
                out.push(draft(
                    Rule::Crash,
                    "connection closed",
                    format!("the request closed the connection without an answer ({error}), twice"),
                ));
            }
            if *error == FailKind::Timeout && on(Rule::Slow) && ctx.baseline.samples >= 20 {
                let threshold = slow_threshold(ctx);
                let mut d = draft(
                    Rule::Slow,
                    "timeout",
                    "no answer within the response timeout",
                );
                d.confirm = Confirm::Slow { threshold };
                out.push(d);
            }
            return out;
        }
        Outcome::Response(r) => r,
    };
    let status = resp.status;
    let declared_method = case.method == op.method;
    let judged_by_spec =
        declared_method && case.origin != Origin::Auth && case.creds != Creds::Second;

    if on(Rule::ServerError)
        && status >= 500
        && !(501..=504).contains(&status)
        && !asked_for(case, status)
    {
        out.push(draft(
            Rule::ServerError,
            status.to_string(),
            format!("server error {status}"),
        ));
    }
    if on(Rule::AuthEnforced) && case.origin == Origin::Auth && (200..300).contains(&status) {
        let how = if case.creds == Creds::Missing {
            "no credentials"
        } else {
            "garbage token"
        };
        out.push(draft(
            Rule::AuthEnforced,
            how,
            format!("secured operation answered {status} with {how}"),
        ));
    }
    if on(Rule::ObjectAccess)
        && case.origin == Origin::OtherIdentity
        && (200..300).contains(&status)
    {
        out.push(draft(
            Rule::ObjectAccess,
            "second identity",
            format!("an object fetched by one identity answered {status} to the second identity"),
        ));
    }
    if on(Rule::NegativeAccepted)
        && judged_by_spec
        && case.expect == (Expect::Invalid { unambiguous: true })
        && (200..300).contains(&status)
    {
        out.push(draft(
            Rule::NegativeAccepted,
            case.note.clone(),
            format!("invalid input accepted with {status}: {}", case.note),
        ));
    }
    // An undeclared 4xx to input the spec rules out is the service rejecting it, and an
    // undeclared 404 to a path naming something is "no such thing" (valid or not): OpenAPI
    // does not ask a document to list every error status, so neither is a finding.
    let rejected_invalid = (matches!(case.expect, Expect::Invalid { .. })
        && (400..500).contains(&status))
        || (status == 404
            && case
                .params
                .iter()
                .any(|(at, _, _)| matches!(at, ParamIn::Path)));
    if judged_by_spec && !transport_status(status) {
        match op.response_for(status) {
            None => {
                if on(Rule::StatusConformance) && !rejected_invalid {
                    let declared: Vec<&str> =
                        op.responses.iter().map(|r| r.status.as_str()).collect();
                    out.push(draft(
                        Rule::StatusConformance,
                        status.to_string(),
                        format!(
                            "status {status} is not declared (declared: {})",
                            declared.join(", ")
                        ),
                    ));
                }
            }
            Some(declared) => check_body(ctx, validator, declared, resp, &mut out),
        }
    }
    let text = String::from_utf8_lossy(&resp.body);
    if let Origin::Injection(i) = case.origin
        && on(Rule::Injection)
        && let Some(d) = injection(ctx, i, resp, &text)
    {
        out.push(d);
    }
    if on(Rule::Leak) && status >= 400 {
        let found = signatures::find(signatures::leaks(), &text)
            .or_else(|| signatures::find(signatures::sql_errors(), &text));
        if let Some(kind) = found {
            out.push(draft(
                Rule::Leak,
                kind,
                format!(
                    "error body leaks {}",
                    kind.replace(':', " (").replace('_', " ")
                        + if kind.contains(':') { ")" } else { "" }
                ),
            ));
        }
    }
    if on(Rule::Slow)
        && !matches!(case.origin, Origin::Injection(_))
        && !asks_for_time(case)
        && ctx.baseline.samples >= 20
    {
        let threshold = slow_threshold(ctx);
        if resp.latency > threshold {
            let mut d = draft(
                Rule::Slow,
                "slow",
                format!(
                    "answered in {} ms; recent p99 is {} ms",
                    resp.latency.as_millis(),
                    ctx.baseline.p99.as_millis()
                ),
            );
            d.confirm = Confirm::Slow { threshold };
            out.push(d);
        }
    }
    out
}

/// Slow means ten times the recent p99, and never under the floor.
pub fn slow_threshold(ctx: &Context<'_>) -> Duration {
    (ctx.baseline.p99 * 10).max(ctx.slow_floor)
}

fn check_body(
    ctx: &Context<'_>,
    validator: &mut Validator,
    declared: &crate::spec::ResponseSpec,
    resp: &Response,
    out: &mut Vec<Draft>,
) {
    if declared.content.is_empty() || resp.body.is_empty() || resp.status == 204 {
        return;
    }
    let actual = resp.content_type().map(|c| media(&c));
    let matching = actual
        .as_deref()
        .and_then(|a| declared.content.iter().find(|(m, _)| media_matches(m, a)));
    if ctx.rules.contains(&Rule::ContentType) && matching.is_none() {
        let shown = actual.clone().unwrap_or_else(|| "(none)".into());
        let listed: Vec<&str> = declared.content.iter().map(|(m, _)| m.as_str()).collect();
        out.push(draft(
            Rule::ContentType,
            shown.clone(),
            format!(
                "content type {shown} for status {} is not declared (declared: {})",
                resp.status,
                listed.join(", ")
            ),
        ));
    }
    if !ctx.rules.contains(&Rule::ResponseSchema) || resp.truncated {
        return;
    }
    let Some((media_type, Some(schema))) = matching else {
        return;
    };
    if !is_json(media_type) {
        return;
    }
    match serde_json::from_slice::<Value>(&resp.body) {
        Err(_) => out.push(draft(
            Rule::ResponseSchema,
            format!("{} not JSON", resp.status),
            format!("status {} body is not valid JSON", resp.status),
        )),
        Ok(body) => {
            if let Some(m) = validator.validate(schema, &body) {
                out.push(draft(
                    Rule::ResponseSchema,
                    format!("{} {}: {}", resp.status, m.at, m.message),
                    format!(
                        "status {} body does not match its schema at {}: {}",
                        resp.status, m.at, m.message
                    ),
                ));
            }
        }
    }
}

fn injection(ctx: &Context<'_>, index: usize, resp: &Response, text: &str) -> Option<Draft> {
    let payload = PAYLOADS.get(index)?;
    let family = payload.family;
    if let Some(kind) = signatures::find(signatures::sql_errors(), text)
        && family == "sql"
        && !ctx.benign.contains(kind)
    {
        return Some(draft(
            Rule::Injection,
            kind,
            format!(
                "SQL payload {:?} caused a database error ({kind})",
                payload.text
            ),
        ));
    }
    if let Some(kind) = signatures::find(signatures::evaluation(), text)
        && family != "sql"
        && family != "xss"
        && !ctx.benign.contains(kind)
    {
        return Some(draft(
            Rule::Injection,
            format!("{family}:{kind}"),
            format!("{family} payload {:?} was evaluated ({kind})", payload.text),
        ));
    }
    if family == "xss" {
        let html = resp
            .content_type()
            .is_some_and(|c| media(&c) == "text/html");
        if html && text.contains(payload.text) {
            return Some(draft(
                Rule::Injection,
                "xss:reflected",
                "HTML answer reflects markup from the request unescaped",
            ));
        }
    }
    if let Some(sleep) = payload.sleep {
        // Slow by at least the requested sleep above the usual, and far above the p99.
        let threshold = (ctx.baseline.p50 + sleep.mul_f64(0.9)).max(ctx.baseline.p99 * 5);
        if ctx.baseline.samples >= 20 && resp.latency >= threshold {
            let mut d = draft(
                Rule::Injection,
                format!("{family}:delay"),
                format!(
                    "{family} payload {:?} delayed the answer by about {} s",
                    payload.text,
                    sleep.as_secs()
                ),
            );
            d.confirm = Confirm::Delay { threshold };
            return Some(d);
        }
    }
    None
}

/// Signatures an ordinary answer shows: these are not evidence of injection there.
pub fn benign_signatures(text: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    out.extend(signatures::find(signatures::sql_errors(), text));
    out.extend(signatures::find(signatures::evaluation(), text));
    out
}
