//! The campaign: the engine-facing entry point `run`, which schedules requests (boundary
//! values first, then invalid inputs, auth probes, undeclared methods, injection
//! payloads, then seeded random cases), feeds values from answers into later requests
//! (links, `Location`, ids), applies the rules, confirms and minimizes, and reports each
//! deduplicated finding through a callback.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;
use livefire_core::units;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthConfig, Identity};
use crate::checks::{self, Baseline, Confirm, Context, Draft};
use crate::error::FuzzError;
use crate::finding::{Finding, RequestRecord, ResponseRecord, Rule};
use crate::generate::{self, Case, CaseBody, Creds, Expect, Generator, Origin, Pool};
use crate::http::{Client, FailKind, Outcome, Prepared, Target};
use crate::render;
use crate::schema::Validator;
use crate::signatures::PAYLOADS;
use crate::spec::{self, Operation, ParamIn, SecurityScheme, Spec};

/// What a campaign needs; plain data so the engine can build it from an experiment.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    /// Spec file path or `http://` URL.
    pub spec: String,
    /// Where requests go: `http://host:port[/base]`.
    pub base_url: String,
    /// Wall-clock budget.
    pub duration: Duration,
    /// Stop after this many scheduled requests (for reproducible runs).
    pub max_requests: Option<u64>,
    /// Rules to apply; empty means `Rule::defaults()` (plus `object_access` when a
    /// second identity is given).
    pub checks: Vec<Rule>,
    /// Every random choice derives from it.
    pub seed: u64,
    /// Requests per second at most (all requests, confirmations included).
    pub rate: Option<f64>,
    /// Requests in flight at once (above 1, one slower than 200 ms stops counting, up
    /// to four times as many). With 1, the same seed sends the same requests in the
    /// same order against a deterministic target.
    pub concurrency: usize,
    /// Response time cap per request.
    pub timeout: Duration,
    /// Response body cap in bytes.
    pub max_body: usize,
    pub auth: Option<AuthConfig>,
    /// A second identity for `object_access`.
    pub second_identity: Option<AuthConfig>,
    /// Interval between `auth_enforced` probe rounds while the campaign runs (each
    /// round sends one secured operation without credentials and with a garbage
    /// token, operations in turn), so a fail-open window that lasts only while a
    /// fault is active is caught.
    pub auth_probe_every: Duration,
    /// Nothing faster than this is `slow`.
    pub slow_floor: Duration,
    /// Secret values and the environment variables they came from (`${env:NAME}` in an
    /// experiment): a reproducer writes `"${NAME}"` for them, so the shell fills the
    /// value in and the secret is never printed.
    pub secrets: Vec<(String, String)>,
    /// The instant that findings' and sightings' times (`at_ms`, `sent_ms`, `first_ms`,
    /// `last_ms`) count from; the campaign's start (after the spec is loaded) when
    /// absent. The engine passes the instant it starts the campaign on its own clock,
    /// so it can tell which faults were active when a request was sent.
    pub epoch: Option<Instant>,
}

impl Default for FuzzConfig {
    fn default() -> FuzzConfig {
        FuzzConfig {
            spec: String::new(),
            base_url: String::new(),
            duration: Duration::from_secs(60),
            max_requests: None,
            checks: Vec::new(),
            seed: 0,
            rate: None,
            concurrency: 16,
            timeout: Duration::from_secs(5),
            max_body: 1 << 20,
            auth: None,
            second_identity: None,
            auth_probe_every: Duration::from_millis(100),
            slow_floor: Duration::from_millis(500),
            secrets: Vec::new(),
            epoch: None,
        }
    }
}

/// What a campaign did, for the run summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub spec: String,
    pub base_url: String,
    pub seed: u64,
    pub checks: Vec<Rule>,
    pub operations: usize,
    pub requests: u64,
    pub elapsed_ms: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Exchanges without an answer, by kind.
    pub failures: BTreeMap<String, u64>,
    pub findings: usize,
    /// Skipped constructs and operations.
    pub warnings: Vec<String>,
    /// `duration`, `max_requests` or `cancelled`.
    pub stopped_by: String,
    /// Every (operation, rule, signature) seen, with when it was first and last seen
    /// and how often: an `auth_enforced` window's end is its `last_ms`.
    pub sightings: Vec<Sighting>,
    /// The last exchanges that took longer than the slow floor, oldest first (at most
    /// 256): what was in flight when the target slowed down (`group::group`).
    #[serde(default)]
    pub long_exchanges: Vec<crate::finding::Instance>,
}

/// How often and when a finding's signature showed up during the campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sighting {
    pub operation: String,
    pub rule: Rule,
    pub signature: String,
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
}

enum JobKind {
    Send,
    ConfirmSlow {
        draft: Draft,
        threshold: Duration,
    },
    ConfirmDelay {
        draft: Draft,
        threshold: Duration,
        control: Box<Case>,
    },
    Minimize {
        draft: Draft,
    },
}

struct Job {
    case: Case,
    kind: JobKind,
    /// Already resent once after a token refresh.
    retried: bool,
}

struct Done {
    client: Client,
    job: Job,
    prepared: Prepared,
    outcome: Outcome,
    crash_confirmed: bool,
    /// For confirmations: whether the draft held.
    confirmed: bool,
    /// For minimization: the smallest case that still shows the finding.
    minimized: Option<(Case, Prepared, Outcome)>,
    sent: u64,
    /// Given back once the main loop has taken in the result, so with concurrency 1
    /// the next request is chosen knowing this answer.
    slot: Slot,
}

/// Spaces requests evenly when a rate cap is set.
struct Limiter {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Limiter {
    async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A request in flight longer than this stops counting against `concurrency`, so a
/// few slow operations cannot starve the rest (up to `STRAGGLER_FACTOR` times as many
/// requests in flight).
const STRAGGLER: Duration = Duration::from_millis(200);
const STRAGGLER_FACTOR: usize = 4;

/// Counts requests that hold a concurrency slot.
struct Slots {
    used: AtomicUsize,
    notify: Notify,
}

/// One held slot; released when the request turns straggler or the job ends.
struct Slot {
    slots: Arc<Slots>,
    held: bool,
    /// Whether a straggler gives its slot back early (not with concurrency 1, which
    /// promises one request at a time).
    early: bool,
}

impl Slot {
    fn release(&mut self) {
        if self.held {
            self.held = false;
            self.slots.used.fetch_sub(1, Ordering::SeqCst);
            self.slots.notify.notify_one();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// What a worker needs to evaluate rules on its own (minimization).
#[derive(Clone)]
struct RuleCtx {
    rules: HashSet<Rule>,
    baseline: Baseline,
    slow_floor: Duration,
    benign: HashSet<&'static str>,
}

/// Runs a campaign until the duration ends, `max_requests` are sent, or `cancel`
/// fires. Each new finding goes to `on_finding` as soon as it is known (confirmed and
/// minimized where that applies). Errors are for what stops a campaign before it
/// starts: an invalid spec, an unusable base URL, a failed login.
pub async fn run(
    config: FuzzConfig,
    cancel: CancellationToken,
    on_finding: impl FnMut(Finding),
) -> Result<Summary, FuzzError> {
    let spec = spec::load(&config.spec).await?;
    run_spec(spec, config, cancel, on_finding).await
}

/// `run` with an already loaded spec.
pub async fn run_spec(
    spec: Spec,
    config: FuzzConfig,
    cancel: CancellationToken,
    mut on_finding: impl FnMut(Finding),
) -> Result<Summary, FuzzError> {
    let mut target =
        Target::from_base_url(&config.base_url).map_err(|e| FuzzError::Config(e.to_string()))?;
    target.secrets = config.secrets.clone();
    if config.concurrency == 0 {
        return Err(FuzzError::Config("concurrency must be at least 1".into()));
    }
    // The bounds of every written rate (livefire-core's grammar), without its 0: a
    // campaign capped at nothing would never send.
    if let Some(rate) = config.rate
        && !(units::Rate::MIN_PER_SECOND..=units::Rate::MAX_PER_SECOND).contains(&rate)
    {
        return Err(FuzzError::Config(format!(
            "a fuzz rate of {rate}/s is out of range: give at least 1/h and at most 10000000/s"
        )));
    }
    let mut identity = match &config.auth {
        Some(a) => Some(Identity::new(a.clone(), &target, config.timeout).await?),
        None => None,
    };
    let second = match &config.second_identity {
        Some(a) => Some(Identity::new(a.clone(), &target, config.timeout).await?),
        None => None,
    };
    let mut rules: HashSet<Rule> = if config.checks.is_empty() {
        let mut r: HashSet<Rule> = Rule::defaults().into_iter().collect();
        if second.is_some() {
            r.insert(Rule::ObjectAccess);
        }
        r
    } else {
        config.checks.iter().copied().collect()
    };
    if second.is_none() {
        rules.remove(&Rule::ObjectAccess);
    }
    let mut checks_list: Vec<Rule> = rules.iter().copied().collect();
    checks_list.sort();

    let spec = Arc::new(spec);
    let start = Instant::now();
    let epoch = config.epoch.unwrap_or(start);
    // A budget too large for the clock means "until cancelled".
    let deadline = start
        .checked_add(config.duration)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400));
    let probe_every = config.auth_probe_every.max(Duration::from_millis(10));
    let limiter = Arc::new(Limiter {
        interval: config.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
        next: Mutex::new(Instant::now()),
    });
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut generator = Generator::new();
    let mut validator = Validator::new();
    let mut pool = Pool::default();

    // The deterministic plan, prepared an operation at a time as the campaign reaches
    // it (see `Plan`).
    let n_ops = spec.operations.len();
    let secured: Vec<usize> = (0..n_ops)
        .filter(|&i| spec.operations[i].secured())
        .collect();
    let mut plan = Plan::new(
        &spec,
        rules.contains(&Rule::Injection),
        rules.contains(&Rule::AuthEnforced),
        &mut generator,
        &mut rng,
        &pool,
    );

    let mut summary = Summary {
        spec: spec.source.clone(),
        base_url: config.base_url.clone(),
        seed: config.seed,
        checks: checks_list,
        operations: n_ops,
        warnings: spec.warnings.clone(),
        ..Summary::default()
    };
    let mut idle: Vec<Client> = (0..config.concurrency)
        .map(|_| Client::new(target.clone(), config.timeout, config.max_body))
        .collect();
    let mut inflight: JoinSet<Done> = JoinSet::new();
    let slots = Arc::new(Slots {
        used: AtomicUsize::new(0),
        notify: Notify::new(),
    });
    let mut urgent: VecDeque<Job> = VecDeque::new();
    let mut seen: HashSet<(String, Rule, String)> = HashSet::new();
    let mut pending: HashMap<(String, Rule, String), Finding> = HashMap::new();
    let mut confirm_tries: HashMap<(String, Rule, String), u32> = HashMap::new();
    let mut latencies: VecDeque<Duration> = VecDeque::with_capacity(512);
    let mut baseline = Baseline::default();
    let mut since_baseline = 0usize;
    let mut benign: Vec<HashSet<&'static str>> = vec![HashSet::new(); n_ops];
    let mut other_identity_sent = vec![0u32; n_ops];
    let probes_on = rules.contains(&Rule::AuthEnforced) && !secured.is_empty();
    let mut next_probe = start + probe_every;
    let mut probe_index = 0usize;
    let mut scheduled: u64 = 0;
    let mut sightings: BTreeMap<(String, Rule, String), (u64, u64, u64)> = BTreeMap::new();

    loop {
        if cancel.is_cancelled() {
            summary.stopped_by = "cancelled".into();
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            summary.stopped_by = "duration".into();
            break;
        }
        let budget_left = config.max_requests.is_none_or(|m| scheduled < m);
        if !budget_left && inflight.is_empty() {
            summary.stopped_by = "max_requests".into();
            break;
        }
        if probes_on && now >= next_probe && budget_left {
            // One round: one secured operation, without credentials and with garbage.
            let i = secured[probe_index % secured.len()];
            probe_index += 1;
            for creds in [Creds::Garbage, Creds::Missing] {
                let case = auth_probe(
                    &mut generator,
                    i,
                    &spec.operations[i],
                    creds,
                    &mut rng,
                    &pool,
                );
                urgent.push_front(Job {
                    case,
                    kind: JobKind::Send,
                    retried: false,
                });
            }
            next_probe = now + probe_every;
        }
        while config.max_requests.is_none_or(|m| scheduled < m)
            && slots.used.load(Ordering::SeqCst) < config.concurrency
            && inflight.len() < config.concurrency * STRAGGLER_FACTOR
        {
            let client = idle
                .pop()
                .unwrap_or_else(|| Client::new(target.clone(), config.timeout, config.max_body));
            let job = match urgent.pop_front() {
                Some(job) => job,
                None => {
                    let case = match plan.next(&spec, &mut generator, &mut rng, &pool) {
                        Some(c) => c,
                        None => plan.random_case(&spec, &mut generator, &mut rng, &pool),
                    };
                    Job {
                        case,
                        kind: JobKind::Send,
                        retried: false,
                    }
                }
            };
            scheduled += 1;
            let auth = credentials(&spec, &job.case, identity.as_ref(), second.as_ref());
            let ctx = RuleCtx {
                rules: rules.clone(),
                baseline,
                slow_floor: config.slow_floor,
                benign: benign[job.case.op].clone(),
            };
            let spec = spec.clone();
            let target = target.clone();
            let limiter = limiter.clone();
            slots.used.fetch_add(1, Ordering::SeqCst);
            let slot = Slot {
                slots: slots.clone(),
                held: true,
                early: config.concurrency > 1,
            };
            inflight.spawn(async move {
                work(client, spec, target, job, auth, limiter, ctx, slot).await
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = tokio::time::sleep_until(next_probe.into()), if probes_on => {}
            _ = slots.notify.notified() => {}
            joined = inflight.join_next(), if !inflight.is_empty() => {
                let done = match joined {
                    Some(Ok(done)) => done,
                    Some(Err(_)) => {
                        // A worker panicked or was aborted: replace its connection.
                        idle.push(Client::new(target.clone(), config.timeout, config.max_body));
                        continue;
                    }
                    None => continue,
                };
                let Done { client, job, prepared, outcome, crash_confirmed, confirmed, minimized, sent, slot } = done;
                // Released when this arm ends: the next request is scheduled after it.
                let _slot = slot;
                idle.push(client);
                summary.requests += sent;
                let op = &spec.operations[job.case.op];
                match &outcome {
                    Outcome::Response(r) => *summary.statuses.entry(r.status).or_default() += 1,
                    Outcome::Failed { error, .. } => *summary.failures.entry(fail_name(*error).into()).or_default() += 1,
                }
                let at_ms = epoch.elapsed().as_millis() as u64;
                let took = match &outcome {
                    Outcome::Response(r) => r.latency,
                    Outcome::Failed { latency, .. } => *latency,
                };
                if took >= config.slow_floor {
                    if summary.long_exchanges.len() == 256 {
                        summary.long_exchanges.remove(0);
                    }
                    summary.long_exchanges.push(crate::finding::Instance {
                        operation: op.name.clone(),
                        input: job.case.note.clone(),
                        url: format!("http://{}{}", target.authority, prepared.path_and_query),
                        status: match &outcome {
                            Outcome::Response(r) => Some(r.status),
                            Outcome::Failed { .. } => None,
                        },
                        sent_ms: at_ms.saturating_sub(response_latency_ms(&outcome)),
                        at_ms,
                    });
                }
                match job.kind {
                    JobKind::ConfirmSlow { draft, .. } | JobKind::ConfirmDelay { draft, .. } => {
                        let key = (op.name.clone(), draft.rule, draft.signature.clone());
                        if confirmed {
                            let f = finding(&draft, op, &job.case, &prepared, &outcome, &target, false, at_ms);
                            summary.findings += 1;
                            on_finding(f);
                        } else {
                            seen.remove(&key);
                        }
                        continue;
                    }
                    JobKind::Minimize { draft } => {
                        let key = (op.name.clone(), draft.rule, draft.signature.clone());
                        if let Some(first) = pending.remove(&key) {
                            let f = match minimized {
                                Some((case, prepared, outcome)) => {
                                    let mut f = finding(&draft, op, &case, &prepared, &outcome, &target, true, first.at_ms);
                                    f.unix_ms = first.unix_ms;
                                    f.sent_ms = first.sent_ms;
                                    f
                                }
                                None => first,
                            };
                            summary.findings += 1;
                            on_finding(f);
                        }
                        continue;
                    }
                    JobKind::Send => {}
                }
                let case = job.case;
                let resp = match &outcome {
                    Outcome::Response(r) => Some(r),
                    Outcome::Failed { .. } => None,
                };
                if let Some(r) = resp {
                    let ordinary = matches!(case.origin, Origin::Valid | Origin::FollowUp | Origin::Boundary);
                    if ordinary && r.status < 500 {
                        if latencies.len() == 512 {
                            latencies.pop_front();
                        }
                        latencies.push_back(r.latency);
                        since_baseline += 1;
                        if since_baseline >= 32 || baseline.samples < 32 {
                            baseline = compute_baseline(&latencies);
                            since_baseline = 0;
                        }
                    }
                    if !matches!(case.origin, Origin::Injection(_)) {
                        for s in checks::benign_signatures(&String::from_utf8_lossy(&r.body)) {
                            benign[case.op].insert(s);
                        }
                    }
                    // An expired token: log in again and resend once.
                    if r.status == 401 && case.creds == Creds::Primary && !job.retried
                        && let Some(id) = identity.as_mut()
                            && let Ok(true) = id.refresh(&target, config.timeout).await {
                                urgent.push_front(Job { case: case.clone(), kind: JobKind::Send, retried: true });
                                continue;
                            }
                }
                let ctx = Context { rules: &rules, baseline, slow_floor: config.slow_floor, benign: &benign[case.op] };
                for draft in checks::evaluate(&ctx, &mut validator, op, &case, &outcome, crash_confirmed) {
                    let key = (op.name.clone(), draft.rule, draft.signature.clone());
                    let seen_at = sightings.entry(key.clone()).or_insert((at_ms, at_ms, 0));
                    seen_at.1 = at_ms;
                    seen_at.2 += 1;
                    if seen.contains(&key) {
                        continue;
                    }
                    match draft.confirm {
                        Confirm::Slow { threshold } => {
                            let tries = confirm_tries.entry(key.clone()).or_default();
                            if *tries >= 3 {
                                continue;
                            }
                            *tries += 1;
                            seen.insert(key);
                            urgent.push_front(Job { case: case.clone(), kind: JobKind::ConfirmSlow { draft, threshold }, retried: true });
                        }
                        Confirm::Delay { threshold } => {
                            let tries = confirm_tries.entry(key.clone()).or_default();
                            if *tries >= 3 {
                                continue;
                            }
                            *tries += 1;
                            seen.insert(key);
                            let control = Box::new(benign_control(&mut generator, op, &case, &mut rng));
                            urgent.push_front(Job { case: case.clone(), kind: JobKind::ConfirmDelay { draft, threshold, control }, retried: true });
                        }
                        Confirm::No => {
                            seen.insert(key.clone());
                            let f = finding(&draft, op, &case, &prepared, &outcome, &target, false, at_ms);
                            if minimizable(&draft, &case, op) {
                                pending.insert(key, f);
                                urgent.push_back(Job { case: case.clone(), kind: JobKind::Minimize { draft }, retried: true });
                            } else {
                                summary.findings += 1;
                                on_finding(f);
                            }
                        }
                    }
                }
                if let Some(r) = resp
                    && (200..300).contains(&r.status) && !matches!(case.origin, Origin::Auth | Origin::OtherIdentity) {
                        follow_ups(&spec, op, &case, r, &mut generator, &mut rng, &mut pool, &mut urgent);
                        let wants_other = rules.contains(&Rule::ObjectAccess)
                            && second.is_some()
                            && op.secured()
                            && op.method == Method::GET
                            && case.creds == Creds::Primary
                            && op.params.iter().any(|p| p.location == ParamIn::Path)
                            && other_identity_sent[case.op] < 16;
                        if wants_other {
                            other_identity_sent[case.op] += 1;
                            let mut other = case.clone();
                            other.creds = Creds::Second;
                            other.origin = Origin::OtherIdentity;
                            other.note = "the same request with the second identity".into();
                            urgent.push_back(Job { case: other, kind: JobKind::Send, retried: true });
                        }
                    }
            }
        }
    }
    inflight.abort_all();
    // Findings still being minimized are reported as first seen.
    let mut left: Vec<Finding> = pending.into_values().collect();
    left.sort_by_key(|f| f.at_ms);
    for f in left {
        summary.findings += 1;
        on_finding(f);
    }
    summary.elapsed_ms = start.elapsed().as_millis() as u64;
    summary.sightings = sightings
        .into_iter()
        .filter(|(key, _)| seen.contains(key))
        .map(
            |((operation, rule, signature), (first_ms, last_ms, count))| Sighting {
                operation,
                rule,
                signature,
                first_ms,
                last_ms,
                count,
            },
        )
        .collect();
    Ok(summary)
}

fn fail_name(kind: FailKind) -> &'static str {
    match kind {
        FailKind::Refused => "refused",
        FailKind::Closed => "closed",
        FailKind::Timeout => "timeout",
        FailKind::Protocol => "protocol",
        FailKind::Io => "io",
    }
}

fn compute_baseline(latencies: &VecDeque<Duration>) -> Baseline {
    let mut sorted: Vec<Duration> = latencies.iter().copied().collect();
    sorted.sort();
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Baseline {
        samples: sorted.len(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// The campaign's plan: a conforming request for every operation (creating ones first,
/// so ids exist before they are needed), then every operation's boundary and invalid
/// cases round-robin (the first of each operation, then the second, ...), the auth
/// probes and undeclared methods, then the injection cases round-robin; after that,
/// random picks among all of them. An operation's edge and injection cases are
/// prepared when the plan first reaches it, not all before the first request: on a
/// large document (hundreds of operations with big schemas) preparing everything up
/// front took seconds of CPU before anything was sent, and cases prepared later can
/// use the ids that the requests before them created.
struct Plan {
    ready: VecDeque<Case>,
    stage: Stage,
    edges: Vec<Option<Vec<Case>>>,
    injections: Vec<Option<Vec<Case>>>,
    injection_on: bool,
    auth_on: bool,
}

#[derive(Clone, Copy)]
enum Stage {
    /// Round `k` of one kind of an operation's cases, at operation `i`.
    RoundRobin {
        cases: Cases,
        k: usize,
        i: usize,
    },
    /// The auth probes and the undeclared methods.
    Extras,
    Done,
}

/// Which of an operation's case lists a round-robin stage walks.
#[derive(Clone, Copy)]
enum Cases {
    /// Boundary and invalid cases.
    Edges,
    /// Injection cases.
    Injections,
}

impl Cases {
    /// The stage after the last round of these cases.
    fn then(self) -> Stage {
        match self {
            Cases::Edges => Stage::Extras,
            Cases::Injections => Stage::Done,
        }
    }
}

impl Plan {
    fn new(
        spec: &Spec,
        injection_on: bool,
        auth_on: bool,
        g: &mut Generator,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> Plan {
        let n_ops = spec.operations.len();
        let mut order: Vec<usize> = (0..n_ops).collect();
        order.sort_by_key(|&i| u8::from(spec.operations[i].method != Method::POST));
        Plan {
            ready: order
                .into_iter()
                .map(|i| g.valid_case(i, &spec.operations[i], rng, pool))
                .collect(),
            stage: Stage::RoundRobin {
                cases: Cases::Edges,
                k: 0,
                i: 0,
            },
            edges: vec![None; n_ops],
            injections: vec![None; n_ops],
            injection_on,
            auth_on,
        }
    }

    fn edges(
        &mut self,
        i: usize,
        spec: &Spec,
        g: &mut Generator,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> &[Case] {
        self.edges[i].get_or_insert_with(|| g.edge_cases(i, &spec.operations[i], rng, pool))
    }

    fn injections(
        &mut self,
        i: usize,
        spec: &Spec,
        g: &mut Generator,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> &[Case] {
        let on = self.injection_on;
        self.injections[i].get_or_insert_with(|| {
            if on {
                injection_cases(g, i, &spec.operations[i], rng, pool)
            } else {
                Vec::new()
            }
        })
    }

    /// Operation `i`'s cases of kind `cases`, prepared when first asked for.
    fn cases(
        &mut self,
        cases: Cases,
        i: usize,
        spec: &Spec,
        g: &mut Generator,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> &[Case] {
        match cases {
            Cases::Edges => self.edges(i, spec, g, rng, pool),
            Cases::Injections => self.injections(i, spec, g, rng, pool),
        }
    }

    /// The case lists of kind `cases` prepared so far, by operation.
    fn prepared(&self, cases: Cases) -> &[Option<Vec<Case>>] {
        match cases {
            Cases::Edges => &self.edges,
            Cases::Injections => &self.injections,
        }
    }

    /// The next planned case, `None` once the plan is done.
    fn next(
        &mut self,
        spec: &Spec,
        g: &mut Generator,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> Option<Case> {
        let n_ops = spec.operations.len();
        let longest =
            |lists: &[Option<Vec<Case>>]| lists.iter().flatten().map(Vec::len).max().unwrap_or(0);
        loop {
            if let Some(c) = self.ready.pop_front() {
                return Some(c);
            }
            self.stage = match self.stage {
                // Round 0 prepares every operation, so the longest list is known after it.
                Stage::RoundRobin { cases, k, i } if i == n_ops => {
                    if k + 1 < longest(self.prepared(cases)) {
                        Stage::RoundRobin {
                            cases,
                            k: k + 1,
                            i: 0,
                        }
                    } else {
                        cases.then()
                    }
                }
                Stage::RoundRobin { cases, k, i } => {
                    if let Some(c) = self.cases(cases, i, spec, g, rng, pool).get(k).cloned() {
                        self.ready.push_back(c);
                    }
                    Stage::RoundRobin { cases, k, i: i + 1 }
                }
                Stage::Extras => {
                    if self.auth_on {
                        for i in (0..n_ops).filter(|&i| spec.operations[i].secured()) {
                            for creds in [Creds::Missing, Creds::Garbage] {
                                let c = auth_probe(g, i, &spec.operations[i], creds, rng, pool);
                                self.ready.push_back(c);
                            }
                        }
                    }
                    self.ready
                        .extend(undeclared_method_cases(spec, g, rng, pool));
                    Stage::RoundRobin {
                        cases: Cases::Injections,
                        k: 0,
                        i: 0,
                    }
                }
                Stage::Done => return None,
            };
        }
    }

    /// A random pick once the plan is done: an edge case, an injection, or a fresh
    /// conforming request, of a random operation.
    fn random_case(
        &mut self,
        spec: &Spec,
        g: &mut Generator,
        rng: &mut StdRng,
        pool: &Pool,
    ) -> Case {
        let i = rng.random_range(0..spec.operations.len());
        let roll: f64 = rng.random();
        if roll < 0.25 {
            let edges = self.edges(i, spec, g, rng, pool);
            if !edges.is_empty() {
                let pick = rng.random_range(0..edges.len());
                return edges[pick].clone();
            }
        }
        if roll < 0.35 {
            let injections = self.injections(i, spec, g, rng, pool);
            if !injections.is_empty() {
                let pick = rng.random_range(0..injections.len());
                return injections[pick].clone();
            }
        }
        g.valid_case(i, &spec.operations[i], rng, pool)
    }
}

fn auth_probe(
    g: &mut Generator,
    i: usize,
    op: &Operation,
    creds: Creds,
    rng: &mut StdRng,
    pool: &Pool,
) -> Case {
    let mut c = g.valid_case(i, op, rng, pool);
    c.creds = creds;
    c.origin = Origin::Auth;
    c.expect = Expect::Invalid { unambiguous: false };
    c.note = if creds == Creds::Missing {
        "no credentials".into()
    } else {
        "a garbage token".into()
    };
    c
}

fn undeclared_method_cases(
    spec: &Spec,
    g: &mut Generator,
    rng: &mut StdRng,
    pool: &Pool,
) -> Vec<Case> {
    let mut out = Vec::new();
    let mut paths: Vec<&str> = spec.operations.iter().map(|o| o.path.as_str()).collect();
    paths.dedup();
    for path in paths {
        let declared: Vec<&Method> = spec
            .operations
            .iter()
            .filter(|o| o.path == path)
            .map(|o| &o.method)
            .collect();
        let Some(i) = spec.operations.iter().position(|o| o.path == path) else {
            continue;
        };
        for m in [
            Method::TRACE,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
            Method::POST,
        ] {
            if declared.contains(&&m) {
                continue;
            }
            let mut c = g.valid_case(i, &spec.operations[i], rng, pool);
            c.body = None;
            c.method = m.clone();
            c.origin = Origin::UndeclaredMethod;
            c.expect = Expect::Invalid { unambiguous: false };
            c.note = format!("undeclared method {m}");
            out.push(c);
            if m != Method::TRACE {
                break;
            }
        }
    }
    out
}

/// One case per (string field, payload): path, query and header parameters and
/// top-level string properties of the body.
fn injection_cases(
    g: &mut Generator,
    i: usize,
    op: &Operation,
    rng: &mut StdRng,
    pool: &Pool,
) -> Vec<Case> {
    let mut out = Vec::new();
    for (pi, payload) in PAYLOADS.iter().enumerate() {
        for p in op
            .params
            .iter()
            .filter(|p| p.location != ParamIn::Cookie && generate::main_type(&p.schema) == "string")
        {
            let mut c = full_valid(g, i, op, rng, pool);
            c.params
                .retain(|(l, n, _)| !(*l == p.location && *n == p.name));
            c.params.push((
                p.location,
                p.name.clone(),
                Value::String(payload.text.into()),
            ));
            c.origin = Origin::Injection(pi);
            c.expect = Expect::Invalid { unambiguous: false };
            c.note = format!(
                "{} {} = {} payload {:?}",
                generate::location_name(p.location),
                p.name,
                payload.family,
                payload.text
            );
            out.push(c);
        }
        if let Some(b) = &op.body {
            let props = b
                .schema
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (name, sub) in props
                .iter()
                .filter(|(_, s)| generate::main_type(s) == "string")
            {
                let mut c = full_valid(g, i, op, rng, pool);
                let mut obj = match g.value(&b.schema, rng, 0) {
                    Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                let _ = sub;
                obj.insert(name.clone(), Value::String(payload.text.into()));
                c.body = Some(generate::encode_body(
                    &b.kind,
                    &b.media_type,
                    Value::Object(obj),
                ));
                c.origin = Origin::Injection(pi);
                c.expect = Expect::Invalid { unambiguous: false };
                c.note = format!(
                    "body {name} = {} payload {:?}",
                    payload.family, payload.text
                );
                out.push(c);
            }
        }
    }
    out
}

fn full_valid(g: &mut Generator, i: usize, op: &Operation, rng: &mut StdRng, pool: &Pool) -> Case {
    let mut c = g.valid_case(i, op, rng, pool);
    generate::fill_params(g, &mut c, op, rng);
    c
}

/// The same request with the injected field back to an ordinary value.
fn benign_control(g: &mut Generator, op: &Operation, case: &Case, rng: &mut StdRng) -> Case {
    let mut c = case.clone();
    c.origin = Origin::Valid;
    for (l, n, v) in c.params.iter_mut() {
        if PAYLOADS.iter().any(|p| v.as_str() == Some(p.text))
            && let Some(p) = op.params.iter().find(|p| p.location == *l && p.name == *n)
        {
            *v = g.value(&p.schema, rng, 1);
        }
    }
    if let (Some(CaseBody::Json(Value::Object(obj))), Some(b)) = (&mut c.body, &op.body) {
        for (k, v) in obj.iter_mut() {
            if PAYLOADS.iter().any(|p| v.as_str() == Some(p.text))
                && let Some(sub) = b.schema.get("properties").and_then(|p| p.get(k))
            {
                *v = g.value(sub, rng, 1);
            }
        }
    }
    c
}

/// The headers (and query parameters) a case's credentials add.
fn credentials(
    spec: &Spec,
    case: &Case,
    primary: Option<&Identity>,
    second: Option<&Identity>,
) -> Vec<(String, String)> {
    match case.creds {
        Creds::Primary => primary.map(|i| i.headers().to_vec()).unwrap_or_default(),
        Creds::Second => second.map(|i| i.headers().to_vec()).unwrap_or_default(),
        Creds::Missing => Vec::new(),
        Creds::Garbage => {
            let op = &spec.operations[case.op];
            let mut out: Vec<(String, String)> = Vec::new();
            for name in &op.security {
                match spec.security_schemes.get(name) {
                    Some(SecurityScheme::Http { scheme }) if scheme == "basic" => {
                        out.push(("authorization".into(), "Basic bGY6Z2FyYmFnZQ==".into()));
                    }
                    Some(SecurityScheme::ApiKey {
                        name,
                        location: ParamIn::Header,
                    }) => {
                        out.push((name.to_ascii_lowercase(), "lf-garbage-key".into()));
                    }
                    _ => out.push(("authorization".into(), "Bearer lf-garbage-token".into())),
                }
            }
            if let Some(id) = primary {
                let h = id.header_name().to_ascii_lowercase();
                if !out.iter().any(|(k, _)| *k == h) {
                    out.push((h, "lf-garbage-token".into()));
                }
            }
            out.sort();
            out.dedup_by(|a, b| a.0 == b.0);
            out
        }
    }
}

fn minimizable(draft: &Draft, case: &Case, op: &Operation) -> bool {
    let rule_ok = matches!(
        draft.rule,
        Rule::ServerError
            | Rule::StatusConformance
            | Rule::ContentType
            | Rule::ResponseSchema
            | Rule::NegativeAccepted
            | Rule::Leak
            | Rule::Injection
    );
    let optional_params = case.params.iter().any(|(l, n, _)| {
        op.params
            .iter()
            .any(|p| p.location == *l && p.name == *n && !p.required)
    });
    let optional_body =
        matches!(&case.body, Some(CaseBody::Json(Value::Object(m))) if !m.is_empty());
    rule_ok && (optional_params || optional_body)
}

/// Smaller variants of a case: one optional parameter or one body property fewer.
fn reductions(case: &Case, op: &Operation) -> Vec<Case> {
    let mut out = Vec::new();
    for (k, (l, n, _)) in case.params.iter().enumerate() {
        if op
            .params
            .iter()
            .any(|p| p.location == *l && p.name == *n && !p.required)
        {
            let mut c = case.clone();
            c.params.remove(k);
            out.push(c);
        }
    }
    if let Some(CaseBody::Json(Value::Object(obj))) = &case.body {
        let required: Vec<&str> = op
            .body
            .as_ref()
            .and_then(|b| b.schema.get("required"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for key in obj.keys().filter(|k| !required.contains(&k.as_str())) {
            let mut smaller = obj.clone();
            smaller.remove(key);
            let mut c = case.clone();
            c.body = Some(CaseBody::Json(Value::Object(smaller)));
            out.push(c);
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn work(
    mut client: Client,
    spec: Arc<Spec>,
    target: Target,
    job: Job,
    auth: Vec<(String, String)>,
    limiter: Arc<Limiter>,
    ctx: RuleCtx,
    mut slot: Slot,
) -> Done {
    let op = &spec.operations[job.case.op];
    let prepared = render::render(&job.case, op, &target, &auth);
    limiter.acquire().await;
    let outcome = {
        let send = client.send(&prepared);
        tokio::pin!(send);
        tokio::select! {
            outcome = &mut send => outcome,
            _ = tokio::time::sleep(STRAGGLER), if slot.early => {
                slot.release();
                send.await
            }
        }
    };
    let mut sent = 1;
    let mut crash_confirmed = false;
    let mut confirmed = false;
    let mut minimized = None;
    match &job.kind {
        JobKind::Send => {
            if matches!(
                outcome,
                Outcome::Failed {
                    error: FailKind::Closed,
                    ..
                }
            ) {
                // A stale keep-alive connection closes too: only a fresh connection
                // closing again on the same request counts.
                client.reset();
                limiter.acquire().await;
                let again = client.send(&prepared).await;
                sent += 1;
                crash_confirmed = matches!(
                    again,
                    Outcome::Failed {
                        error: FailKind::Closed | FailKind::Refused,
                        ..
                    }
                );
            }
        }
        JobKind::ConfirmSlow { threshold, .. } => {
            confirmed = outcome.latency() > *threshold;
        }
        JobKind::ConfirmDelay {
            threshold, control, ..
        } => {
            let control_req = render::render(control, op, &target, &auth);
            limiter.acquire().await;
            let control_outcome = client.send(&control_req).await;
            sent += 1;
            confirmed =
                outcome.latency() >= *threshold && control_outcome.latency() < *threshold / 2;
        }
        JobKind::Minimize { draft } => {
            let mut best: Option<(Case, Prepared, Outcome)> = None;
            let mut current = job.case.clone();
            let mut validator = Validator::new();
            let context = Context {
                rules: &ctx.rules,
                baseline: ctx.baseline,
                slow_floor: ctx.slow_floor,
                benign: &ctx.benign,
            };
            let mut tries = 0;
            'outer: loop {
                let mut progressed = false;
                for candidate in reductions(&current, op) {
                    if tries >= 8 {
                        break 'outer;
                    }
                    tries += 1;
                    let req = render::render(&candidate, op, &target, &auth);
                    limiter.acquire().await;
                    let out = client.send(&req).await;
                    sent += 1;
                    let holds =
                        checks::evaluate(&context, &mut validator, op, &candidate, &out, false)
                            .iter()
                            .any(|d| d.rule == draft.rule && d.signature == draft.signature);
                    if holds {
                        current = candidate.clone();
                        best = Some((candidate, req, out));
                        progressed = true;
                        break;
                    }
                }
                if !progressed {
                    break;
                }
            }
            minimized = best;
        }
    }
    Done {
        client,
        job,
        prepared,
        outcome,
        crash_confirmed,
        confirmed,
        minimized,
        sent,
        slot,
    }
}

/// Feeds values from a 2xx answer into later requests: declared links first, else the
/// create -> get -> delete convention on `{path}/{id}`; ids also go to the pool.
#[allow(clippy::too_many_arguments)]
fn follow_ups(
    spec: &Spec,
    op: &Operation,
    case: &Case,
    resp: &crate::http::Response,
    g: &mut Generator,
    rng: &mut StdRng,
    pool: &mut Pool,
    urgent: &mut VecDeque<Job>,
) {
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    if let Some(Value::Object(obj)) = &body {
        for (k, v) in obj {
            let idish = k == "id" || k.ends_with("Id") || k.ends_with("_id");
            if idish && (v.is_number() || v.is_string()) {
                pool.add(k, v.clone());
            }
        }
    }
    let location_id = resp
        .header("location")
        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
        .map(|s| {
            s.parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(s.to_string()))
        });
    if let Some(id) = &location_id {
        pool.add("id", id.clone());
    }
    if urgent.len() > 256 {
        return;
    }
    let mut links = op
        .response_for(resp.status)
        .map(|r| r.links.clone())
        .unwrap_or_default();
    // Reads before changes before deletes, whatever order the spec lists links in.
    links.sort_by_key(|l| {
        spec.operations
            .iter()
            .find(|o| o.id == l.operation_id)
            .map_or(3, |o| method_rank(&o.method))
    });
    if !links.is_empty() {
        for link in links {
            let Some(ti) = spec
                .operations
                .iter()
                .position(|o| o.id == link.operation_id)
            else {
                continue;
            };
            let target_op = &spec.operations[ti];
            let mut c = full_valid(g, ti, target_op, rng, pool);
            for (name, expr) in &link.parameters {
                let name = name.rsplit('.').next().unwrap_or(name);
                let Some(value) = link_value(expr, body.as_ref(), resp, case) else {
                    continue;
                };
                if let Some((_, _, v)) = c.params.iter_mut().find(|(_, n, _)| n == name) {
                    *v = value;
                }
            }
            c.origin = Origin::FollowUp;
            c.note = format!("follow-up of {} via link to {}", op.name, target_op.id);
            urgent.push_back(Job {
                case: c,
                kind: JobKind::Send,
                retried: false,
            });
        }
        return;
    }
    if !(op.method == Method::POST || op.method == Method::PUT) {
        return;
    }
    let id = body
        .as_ref()
        .and_then(|b| b.get("id").cloned())
        .filter(|v| v.is_number() || v.is_string())
        .or(location_id);
    let Some(id) = id else { return };
    let prefix = format!("{}/{{", op.path.trim_end_matches('/'));
    let mut next: Vec<usize> = (0..spec.operations.len())
        .filter(|&j| {
            let p = &spec.operations[j].path;
            p.starts_with(&prefix) && p.ends_with('}') && p[prefix.len()..].find('/').is_none()
        })
        .collect();
    next.sort_by_key(|&j| method_rank(&spec.operations[j].method));
    for j in next {
        let target_op = &spec.operations[j];
        let mut c = full_valid(g, j, target_op, rng, pool);
        let param = target_op
            .path
            .rsplit('{')
            .next()
            .unwrap_or("")
            .trim_end_matches('}')
            .to_string();
        for (l, n, v) in c.params.iter_mut() {
            if *l == ParamIn::Path && *n == param {
                *v = id.clone();
            }
        }
        c.origin = Origin::FollowUp;
        c.note = format!("follow-up of {} with id {}", op.name, generate::text(&id));
        urgent.push_back(Job {
            case: c,
            kind: JobKind::Send,
            retried: false,
        });
    }
}

fn method_rank(m: &Method) -> u8 {
    match *m {
        Method::GET | Method::HEAD => 0,
        Method::DELETE => 2,
        _ => 1,
    }
}

fn link_value(
    expr: &Value,
    body: Option<&Value>,
    resp: &crate::http::Response,
    case: &Case,
) -> Option<Value> {
    let Value::String(s) = expr else {
        return Some(expr.clone());
    };
    if let Some(ptr) = s.strip_prefix("$response.body#") {
        return body?.pointer(ptr).cloned();
    }
    if s == "$response.body" {
        return body.cloned();
    }
    if let Some(h) = s.strip_prefix("$response.header.") {
        return resp.header(h).map(|v| Value::String(v.to_string()));
    }
    for (prefix, loc) in [
        ("$request.path.", ParamIn::Path),
        ("$request.query.", ParamIn::Query),
        ("$request.header.", ParamIn::Header),
    ] {
        if let Some(name) = s.strip_prefix(prefix) {
            return case
                .params
                .iter()
                .find(|(l, n, _)| *l == loc && n == name)
                .map(|(_, _, v)| v.clone());
        }
    }
    if s.starts_with('$') {
        None
    } else {
        Some(expr.clone())
    }
}

/// How long an exchange took from send to answer (or failure), in whole milliseconds
/// rounded up, so `at_ms - latency` is never later than the send.
fn response_latency_ms(outcome: &Outcome) -> u64 {
    let latency = match outcome {
        Outcome::Response(r) => r.latency,
        Outcome::Failed { latency, .. } => *latency,
    };
    latency.as_micros().div_ceil(1000) as u64
}

#[allow(clippy::too_many_arguments)]
fn finding(
    draft: &Draft,
    op: &Operation,
    case: &Case,
    prepared: &Prepared,
    outcome: &Outcome,
    target: &Target,
    minimized: bool,
    at_ms: u64,
) -> Finding {
    let body_text = String::from_utf8_lossy(&prepared.body);
    let request = RequestRecord {
        method: prepared.method.to_string(),
        url: format!("http://{}{}", target.authority, prepared.path_and_query),
        headers: prepared.headers.clone(),
        body: cut(&body_text, 4096),
        body_bytes: prepared.body.len(),
    };
    let response = match outcome {
        Outcome::Response(r) => ResponseRecord {
            status: Some(r.status),
            content_type: r.content_type(),
            body: cut(&String::from_utf8_lossy(&r.body), 2048),
            latency_ms: r.latency.as_secs_f64() * 1000.0,
            error: None,
        },
        Outcome::Failed { error, latency } => ResponseRecord {
            status: None,
            content_type: None,
            body: String::new(),
            latency_ms: latency.as_secs_f64() * 1000.0,
            error: Some(error.to_string()),
        },
    };
    Finding {
        rule: draft.rule,
        severity: draft.rule.severity(),
        operation: op.name.clone(),
        signature: draft.signature.clone(),
        title: draft.title.clone(),
        input: case.note.clone(),
        request,
        response,
        curl: render::curl(prepared, target),
        minimized,
        at_ms,
        sent_ms: at_ms.saturating_sub(response_latency_ms(outcome)),
        instances: Vec::new(),
        unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        active_faults: Vec::new(),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}
