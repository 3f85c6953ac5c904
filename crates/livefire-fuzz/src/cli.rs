//! `livefire fuzz`: a campaign on its own. Findings are printed as they appear; the run
//! folder under `--out` gets `findings.json`, `findings.sarif` and `fuzz-summary.json`.
//! The only module of this crate that prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use livefire_core::exit::Exit;
use livefire_core::units::{Rate, parse_duration, parse_rate};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthConfig, LoginRequest};
use crate::campaign::{FuzzConfig, run};
use crate::error::FuzzError;
use crate::finding::{Finding, Rule, Severity};

/// Arguments of `livefire fuzz`.
#[derive(Debug, Clone, Args)]
pub struct FuzzArgs {
    /// OpenAPI 3.0 or 3.1 spec (JSON or YAML): a file or an http:// URL.
    #[arg(value_name = "SPEC_OR_URL")]
    pub spec: String,
    /// Where requests go, e.g. http://127.0.0.1:8080 (the spec's servers are ignored).
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// How long to fuzz (e.g. 30s, 2m).
    #[arg(short = 'd', long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Checks to run, comma-separated (default: all but object_access, which needs
    /// --second-header).
    #[arg(long, value_delimiter = ',', value_parser = parse_rule)]
    pub checks: Vec<Rule>,
    /// Seed for every random choice (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// At most this many requests: `50/s`, `600/m` (a bare 50 is per second).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<Rate>,
    /// Requests in flight at once (a request slower than 200 ms stops counting, up to
    /// four times as many; 1 means strictly one at a time).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Stop after this many requests.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Lowest severity that makes the exit code 1: low, medium, high, critical or none.
    #[arg(long, default_value = "high", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Parent folder of run folders.
    #[arg(long, default_value = ".livefire/runs")]
    pub out: PathBuf,
    /// Static credentials sent with every request, e.g. "Authorization: Bearer abc".
    #[arg(long, value_name = "NAME: VALUE")]
    pub header: Option<String>,
    /// A second identity's header, for object_access, e.g. "Authorization: Bearer xyz".
    #[arg(long, value_name = "NAME: VALUE")]
    pub second_header: Option<String>,
    /// Log in with a POST to this URL (absolute, or a path on --base-url) to get a
    /// token; it is fetched again on a 401.
    #[arg(long, value_name = "URL")]
    pub login_url: Option<String>,
    /// JSON body of the login request.
    #[arg(long, value_name = "JSON", requires = "login_url")]
    pub login_json: Option<String>,
    /// Where the token is in the login answer.
    #[arg(long, default_value = "$.token", value_name = "JSON_PATH")]
    pub login_token: String,
    /// Header the token goes into, and its format.
    #[arg(
        long,
        default_value = "Authorization: Bearer {token}",
        value_name = "NAME: FORMAT"
    )]
    pub login_header: String,
    /// Response timeout per request.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Where the index of runs is (`$LIVEFIRE_HOME`): the run is added to its
    /// runs.jsonl so `livefire runs` lists it.
    #[arg(skip = livefire_report::index::home())]
    pub home: PathBuf,
}

/// The `--fail-on` threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    At(Severity),
    Never,
}

/// Why the flags of `livefire fuzz` do not make a campaign; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("--base-url: {0}")]
    BaseUrl(#[source] crate::http::BaseUrlError),
    #[error("{0} 0s: give a time above 0, e.g. 5s")]
    ZeroTime(&'static str),
    #[error("use either --header or --login-url, not both")]
    HeaderAndLogin,
    #[error("{flag} must look like \"Name: value\", got {value:?}")]
    Header { flag: &'static str, value: String },
    #[error("--login-json is not valid JSON: {0}")]
    LoginJson(#[source] serde_json::Error),
    #[error("the object_access check needs --second-header")]
    ObjectAccessNeedsSecond,
}

fn parse_fail_on(s: &str) -> Result<FailOn, crate::finding::NameError> {
    if s == "none" {
        Ok(FailOn::Never)
    } else {
        s.parse().map(FailOn::At)
    }
}

fn parse_rule(s: &str) -> Result<Rule, crate::finding::NameError> {
    s.trim().parse()
}

fn split_header(s: &str, flag: &'static str) -> Result<(String, String), ArgsError> {
    match s.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(ArgsError::Header {
            flag,
            value: s.to_owned(),
        }),
    }
}

impl FuzzArgs {
    /// The campaign configuration these flags describe.
    pub fn to_config(&self, seed: u64) -> Result<FuzzConfig, ArgsError> {
        // The base URL first: a typo there must not read as a problem with the spec.
        crate::http::Target::from_base_url(&self.base_url).map_err(ArgsError::BaseUrl)?;
        // The grammar accepts 0s (a ramp may end at nothing); a campaign cannot use it.
        for (flag, d) in [("--duration", self.duration), ("--timeout", self.timeout)] {
            if d.is_zero() {
                return Err(ArgsError::ZeroTime(flag));
            }
        }
        let auth = match (&self.header, &self.login_url) {
            (Some(_), Some(_)) => return Err(ArgsError::HeaderAndLogin),
            (Some(h), None) => {
                let (header, value) = split_header(h, "--header")?;
                Some(AuthConfig::Header { header, value })
            }
            (None, Some(url)) => {
                let (header, format) = split_header(&self.login_header, "--login-header")?;
                let json = match &self.login_json {
                    Some(j) => Some(serde_json::from_str(j).map_err(ArgsError::LoginJson)?),
                    None => None,
                };
                Some(AuthConfig::Login {
                    login: LoginRequest {
                        method: "POST".into(),
                        url: url.clone(),
                        json,
                        token: self.login_token.clone(),
                    },
                    header,
                    format,
                })
            }
            (None, None) => None,
        };
        let second_identity = match &self.second_header {
            Some(h) => {
                let (header, value) = split_header(h, "--second-header")?;
                Some(AuthConfig::Header { header, value })
            }
            None => None,
        };
        if self.checks.contains(&Rule::ObjectAccess) && second_identity.is_none() {
            return Err(ArgsError::ObjectAccessNeedsSecond);
        }
        Ok(FuzzConfig {
            spec: self.spec.clone(),
            base_url: self.base_url.clone(),
            duration: self.duration,
            max_requests: self.max_requests,
            checks: self.checks.clone(),
            seed,
            rate: self.rate.map(|r| r.as_per_second()),
            concurrency: self.concurrency,
            timeout: self.timeout,
            auth,
            second_identity,
            ..FuzzConfig::default()
        })
    }
}

/// Runs `livefire fuzz`; returns the exit code (0 clean, 1 findings at or above
/// `--fail-on`, 2 stopped by Ctrl-C, 3 invalid spec, flags or setup).
pub fn command(args: &FuzzArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let seed = args.seed.unwrap_or_else(rand::random);
    let config = match args.to_config(seed) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Exit::Invalid;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return Exit::Invalid;
        }
    };
    let _ = writeln!(
        err,
        "livefire fuzz: {} against {} for {:?}, seed {seed}",
        args.spec, args.base_url, args.duration
    );
    let mut findings: Vec<Finding> = Vec::new();
    let cancel = CancellationToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    let result = rt.block_on(async {
        let c2 = cancel.clone();
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                c2.cancel();
            }
        });
        // Findings print once the run ends, grouped (`group::group`).
        run(config, cancel, |f| findings.push(f)).await
    });
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return match e {
                FuzzError::Spec { .. }
                | FuzzError::SpecRead { .. }
                | FuzzError::Config(_)
                | FuzzError::Login(_) => Exit::Invalid,
            };
        }
    };
    let findings = crate::group::group(findings, &summary.long_exchanges);
    summary.findings = findings.len();
    for f in &findings {
        let _ = write!(out, "{}", render_finding(f));
    }
    let secs = (summary.elapsed_ms as f64 / 1000.0).max(0.001);
    let _ = writeln!(
        out,
        "\n{} requests in {:.1} s ({:.0}/s) to {} operations; {} finding(s){}",
        summary.requests,
        secs,
        summary.requests as f64 / secs,
        summary.operations,
        findings.len(),
        by_severity(&findings)
    );
    for w in &summary.warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    match write_outputs(&args.out, &args.spec, &summary, &findings) {
        Ok(dir) => {
            let _ = writeln!(out, "results: {}", dir.display());
            let home = &args.home;
            let id = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let title = format!("fuzz {} against {}", args.spec, args.base_url);
            let kind = livefire_report::index::RunKind::Fuzz;
            if let Err(e) = livefire_report::index::append(home, &id, &dir, &title, kind) {
                let _ = writeln!(
                    err,
                    "warning: cannot add this run to {}: {e}: `livefire runs` will not list it",
                    home.join(livefire_report::index::INDEX_FILE).display()
                );
            }
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "error: cannot write results under {}: {e}",
                args.out.display()
            );
            return Exit::Invalid;
        }
    }
    if interrupted.load(Ordering::SeqCst) {
        return Exit::Aborted;
    }
    let failing = match args.fail_on {
        FailOn::Never => false,
        FailOn::At(t) => findings.iter().any(|f| f.severity >= t),
    };
    if failing { Exit::Deviated } else { Exit::Ok }
}

fn by_severity(findings: &[Finding]) -> String {
    let mut parts = Vec::new();
    for s in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ] {
        let n = findings.iter().filter(|f| f.severity == s).count();
        if n > 0 {
            parts.push(format!("{n} {s}"));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

/// How a finding looks on the terminal.
pub fn render_finding(f: &Finding) -> String {
    let mut text = render_one(f);
    for i in f.instances.iter().take(12) {
        text.push_str(&format!(
            "           instance: {} {} -> {}\n",
            i.operation,
            i.url,
            i.status.map_or("no answer".to_string(), |s| s.to_string())
        ));
    }
    if f.instances.len() > 12 {
        text.push_str(&format!(
            "           ... {} more instances in findings.json\n",
            f.instances.len() - 12
        ));
    }
    text
}

fn render_one(f: &Finding) -> String {
    format!(
        "[{:>7.2}s] {:<8} {:<18} {}  {}\n           input: {}\n           repro: {}\n",
        f.at_ms as f64 / 1000.0,
        f.severity.name().to_uppercase(),
        f.rule.name(),
        f.operation,
        f.title.lines().next().unwrap_or(""),
        f.input,
        if f.curl.len() > 400 {
            format!(
                "{}…",
                &f.curl[..f
                    .curl
                    .char_indices()
                    .nth(400)
                    .map_or(f.curl.len(), |(i, _)| i)]
            )
        } else {
            f.curl.clone()
        },
    )
}

/// A run folder name that sorts by time: `fuzz-20260126T141501Z-1a2b`.
fn run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "fuzz-{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{:04x}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_nanos() & 0xffff
    )
}

/// Writes `findings.json`, `findings.sarif` and `fuzz-summary.json` into a new run
/// folder under `out`; returns the folder.
pub fn write_outputs(
    out: &Path,
    spec: &str,
    summary: &crate::Summary,
    findings: &[Finding],
) -> std::io::Result<PathBuf> {
    let dir = out.join(run_id());
    std::fs::create_dir_all(&dir)?;
    let findings_json = json!({ "version": 1, "findings": findings });
    std::fs::write(
        dir.join("findings.json"),
        serde_json::to_vec_pretty(&findings_json).unwrap_or_default(),
    )?;
    let is_url = spec.starts_with("http://") || spec.starts_with("https://");
    let spec_text = if is_url {
        None
    } else {
        std::fs::read_to_string(spec).ok()
    };
    let sarif = crate::sarif::to_sarif(findings, spec, spec_text.as_deref());
    std::fs::write(
        dir.join("findings.sarif"),
        serde_json::to_vec_pretty(&sarif).unwrap_or_default(),
    )?;
    std::fs::write(
        dir.join("fuzz-summary.json"),
        serde_json::to_vec_pretty(summary).unwrap_or_default(),
    )?;
    Ok(dir)
}
