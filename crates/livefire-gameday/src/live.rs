//! A game day as its journal tells it, folded record by record into what the
//! responders may see ([`Live::view`]: symptoms, never a hidden curveball's kind or target
//! before it ends) and what decides whether a responder's mark is taken
//! ([`Live::check_mark`]). It reads nothing but journal records, so a finished run's
//! journal folds into the same page.

use std::collections::BTreeMap;

use livefire_core::events::{Event, MarkKind, Record};
use serde::Serialize;

/// The start of a curveball's activity id: `scenario.pool[i]`.
const CURVEBALL_ID: &str = "scenario.pool[";

/// The curveball kind that sends a responder away for its duration.
pub const PERSON_AWAY: &str = "person.away";
/// The curveball kind that withdraws a responder's rights for its duration.
pub const PERSON_NO_ACCESS: &str = "person.no_access";

/// Everything the journal said so far, kept as the page needs it.
#[derive(Debug, Default, Clone)]
pub struct Live {
    run_id: String,
    title: String,
    t_ms: u64,
    phase: Option<String>,
    verdict: Option<String>,
    hidden: bool,
    responders: Vec<String>,
    /// By activity name (`curveball 1: worker frozen`), in plan order.
    curveballs: Vec<Curveball>,
    /// By condition name, in plan order.
    conditions: Vec<ConditionView>,
    loads: BTreeMap<String, LoadView>,
    load_names: Vec<String>,
    findings: Vec<FindingView>,
    deviations: Vec<DeviationView>,
    marks: Vec<MarkView>,
}

/// A drawn curveball as planned, and how far it got.
#[derive(Debug, Clone)]
struct Curveball {
    id: String,
    /// `curveball 1: worker frozen`.
    name: String,
    kind: String,
    target: String,
    for_ms: u64,
    started_ms: Option<u64>,
    ended_ms: Option<u64>,
}

impl Curveball {
    fn active(&self) -> bool {
        self.started_ms.is_some() && self.ended_ms.is_none()
    }

    /// `curveball 1`: what people read of it while it is hidden.
    fn short(&self) -> &str {
        self.name.split_once(':').map_or(&self.name, |(s, _)| s)
    }
}

/// What the responders' page shows: the JSON of `GET /api/state` and of each
/// Server-Sent Event. Built only from symptoms: conditions, loads, findings, deviations,
/// marks, and curveballs as the scenario lets them be seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub run_id: String,
    pub title: String,
    /// The last journal record's time: milliseconds since the run started.
    pub t_ms: u64,
    pub phase: Option<String>,
    /// Set once the run ended: `held`, `deviated`, ...
    pub verdict: Option<String>,
    pub hidden: bool,
    pub responders: Vec<String>,
    /// Set when the responder the view is for (`?as=NAME`) is away: a `person.away`
    /// curveball tells them to step out until it ends.
    pub away: Option<AwayView>,
    /// Curveballs as responders may see them: with a hidden scenario only those that
    /// ended are named; active ones are `curveball N`, the rest absent.
    pub curveballs: Vec<CurveballView>,
    pub conditions: Vec<ConditionView>,
    pub loads: Vec<LoadView>,
    pub findings: Vec<FindingView>,
    pub deviations: Vec<DeviationView>,
    pub marks: Vec<MarkView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AwayView {
    /// `curveball 2`.
    pub curveball: String,
    /// When it ends, in run milliseconds: when the responder may come back.
    pub until_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurveballView {
    /// `curveball 1` while hidden; `curveball 1: worker frozen` otherwise.
    pub name: String,
    pub active: bool,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionView {
    pub name: String,
    /// `hypothesis` or `guardrail`.
    pub role: String,
    /// The last sample: `None` before the first.
    pub ok: Option<bool>,
    pub detail: String,
    pub t_ms: u64,
}

/// A load's last complete second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadView {
    pub name: String,
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    /// Share of requests that failed, 0 to 1.
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingView {
    pub t_ms: u64,
    pub campaign: String,
    pub severity: String,
    pub title: String,
    pub operation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviationView {
    pub t_ms: u64,
    pub condition: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MarkView {
    pub t_ms: u64,
    pub mark: MarkKind,
    pub responder: String,
    pub note: Option<String>,
    pub via: String,
}

/// Why a mark is not taken. Each message says what to do; none names what a hidden
/// curveball does beyond what its responder is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("say who marks: pass `--as NAME` (one of the scenario's responders: {known})")]
    NoResponder { known: String },
    #[error("unknown responder `{responder}`: the scenario's responders are {known}")]
    UnknownResponder { responder: String, known: String },
    #[error(
        "{responder} is away ({curveball}: a key person is gone): marks from {responder} are refused until it ends; another responder can mark"
    )]
    Away {
        responder: String,
        curveball: String,
    },
    #[error(
        "{responder} has no access right now ({curveball}): marks from {responder} are refused until it ends; another responder can mark"
    )]
    NoAccess {
        responder: String,
        curveball: String,
    },
    #[error("the game day is over (the run ended): marks are no longer taken")]
    Over,
    #[error("the run has not started its timeline yet: mark once the game day is under way")]
    NotStarted,
}

impl Live {
    /// Folds one journal record in.
    pub fn apply(&mut self, r: &Record) {
        self.t_ms = self.t_ms.max(r.t);
        match &r.event {
            Event::RunStarted { run_id, title, .. } => {
                self.run_id = run_id.clone();
                self.title = title.clone();
            }
            Event::Plan {
                experiment,
                conditions,
                activities,
                ..
            } => {
                let scenario = &experiment["scenario"];
                self.hidden = scenario["hidden"].as_bool().unwrap_or(false);
                self.responders = scenario["responders"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                self.conditions = conditions
                    .iter()
                    .map(|c| ConditionView {
                        name: c.name.clone(),
                        role: c.role.label().into(),
                        ok: None,
                        detail: String::new(),
                        t_ms: 0,
                    })
                    .collect();
                self.curveballs = activities
                    .iter()
                    .filter(|a| a.id.starts_with(CURVEBALL_ID))
                    .map(|a| Curveball {
                        id: a.id.clone(),
                        name: a.name.clone(),
                        kind: a.kind.clone(),
                        target: a.target.clone(),
                        for_ms: a.for_ms,
                        started_ms: None,
                        ended_ms: None,
                    })
                    .collect();
                self.load_names = activities
                    .iter()
                    .filter(|a| a.kind == "load")
                    .map(|a| a.name.clone())
                    .collect();
            }
            Event::PhaseStarted { phase } => {
                self.phase = serde_json::to_value(phase)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
            }
            Event::ActivityStarted { activity, id, .. } => {
                if let Some(c) = self.curveball_mut(activity, id) {
                    c.started_ms = Some(r.t);
                }
            }
            Event::ActivityEnded { activity, id, .. } => {
                if let Some(c) = self.curveball_mut(activity, id) {
                    c.started_ms.get_or_insert(r.t);
                    c.ended_ms = Some(r.t);
                }
            }
            Event::Probe {
                condition,
                ok,
                detail,
                ..
            } => self.sample(condition, *ok, detail.clone(), r.t),
            Event::Metric {
                condition,
                ok,
                value,
                bound,
                metric,
                comparison,
                ..
            } => {
                let detail = match value {
                    Some(v) => format!("{metric} = {v} ({comparison} {bound})"),
                    None => format!("{metric}: no value yet"),
                };
                self.sample(condition, *ok, detail, r.t);
            }
            Event::Deviation {
                condition, detail, ..
            } => self.deviations.push(DeviationView {
                t_ms: r.t,
                condition: condition.clone(),
                detail: detail.clone(),
            }),
            Event::Window {
                series,
                second,
                window,
            } if self.load_names.contains(series) => {
                let second = *second;
                let requests = window.counts.total();
                let errors = window.counts.errors();
                let q = |q: f64| window.latency.quantile_us(q).map(|us| us as f64 / 1e3);
                self.loads.insert(
                    series.clone(),
                    LoadView {
                        name: series.clone(),
                        second,
                        requests,
                        errors,
                        error_rate: if requests == 0 {
                            0.0
                        } else {
                            errors as f64 / requests as f64
                        },
                        p50_ms: q(0.5),
                        p99_ms: q(0.99),
                    },
                );
            }
            Event::Finding {
                campaign,
                severity,
                finding,
                ..
            } => self.findings.push(FindingView {
                t_ms: r.t,
                campaign: campaign.clone(),
                severity: severity.clone(),
                // The finding's own record names the faults active when it appeared:
                // only its title and operation are symptoms.
                title: finding["title"].as_str().unwrap_or_default().into(),
                operation: finding["operation"].as_str().unwrap_or_default().into(),
            }),
            Event::Mark {
                mark,
                responder,
                note,
                via,
            } => self.marks.push(MarkView {
                t_ms: r.t,
                mark: *mark,
                responder: responder.clone(),
                note: note.clone(),
                via: via.clone(),
            }),
            Event::RunEnded { verdict, .. } => self.verdict = Some(verdict.label().into()),
            _ => {}
        }
    }

    fn curveball_mut(&mut self, activity: &str, id: &str) -> Option<&mut Curveball> {
        self.curveballs.iter_mut().find(|c| {
            if id.is_empty() {
                c.name == activity
            } else {
                c.id == id && c.name == activity
            }
        })
    }

    fn sample(&mut self, condition: &str, ok: bool, detail: String, t: u64) {
        if let Some(c) = self.conditions.iter_mut().find(|c| c.name == condition) {
            c.ok = Some(ok);
            c.detail = detail;
            c.t_ms = t;
        }
    }

    /// The run's id, once its first record is read.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The responders the scenario declares (empty: anyone may mark).
    pub fn responders(&self) -> &[String] {
        &self.responders
    }

    /// Whether the run has ended.
    pub fn ended(&self) -> bool {
        self.verdict.is_some()
    }

    /// What the page shows to `responder` (`None`: to anyone).
    pub fn view(&self, responder: Option<&str>) -> View {
        let shown = |c: &Curveball| {
            if self.hidden && c.ended_ms.is_none() {
                c.short().to_owned()
            } else {
                c.name.clone()
            }
        };
        let away = responder.and_then(|who| {
            self.curveballs
                .iter()
                .find(|c| c.active() && c.kind == PERSON_AWAY && c.target == who)
                .map(|c| AwayView {
                    curveball: c.short().to_owned(),
                    until_ms: c.started_ms.unwrap_or(0) + c.for_ms,
                })
        });
        View {
            run_id: self.run_id.clone(),
            title: self.title.clone(),
            t_ms: self.t_ms,
            phase: self.phase.clone(),
            verdict: self.verdict.clone(),
            hidden: self.hidden,
            responders: self.responders.clone(),
            away,
            curveballs: self
                .curveballs
                .iter()
                .filter_map(|c| {
                    Some(CurveballView {
                        name: shown(c),
                        active: c.active(),
                        started_ms: c.started_ms?,
                        ended_ms: c.ended_ms,
                    })
                })
                .collect(),
            conditions: self.conditions.clone(),
            loads: self
                .load_names
                .iter()
                .filter_map(|n| self.loads.get(n).cloned())
                .collect(),
            findings: self.findings.clone(),
            deviations: self.deviations.clone(),
            marks: self.marks.clone(),
        }
    }

    /// Whether `responder` may mark now: a declared responder (when the scenario
    /// declares any), not away, not without access, while the run goes on.
    pub fn check_mark(&self, responder: &str) -> Result<(), Refusal> {
        let known = self.responders.join(", ");
        if self.ended() {
            return Err(Refusal::Over);
        }
        if self.run_id.is_empty() {
            return Err(Refusal::NotStarted);
        }
        if responder.trim().is_empty() {
            return Err(Refusal::NoResponder { known });
        }
        if !self.responders.is_empty() && !self.responders.iter().any(|r| r == responder) {
            return Err(Refusal::UnknownResponder {
                responder: responder.into(),
                known,
            });
        }
        for c in self.curveballs.iter().filter(|c| c.active()) {
            if c.target != responder {
                continue;
            }
            let (responder, curveball) = (responder.to_owned(), c.short().to_owned());
            match c.kind.as_str() {
                PERSON_AWAY => {
                    return Err(Refusal::Away {
                        responder,
                        curveball,
                    });
                }
                PERSON_NO_ACCESS => {
                    return Err(Refusal::NoAccess {
                        responder,
                        curveball,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The curveballs that started or ended since `before` was taken: `(name, kind,
    /// target, started)` for the notify hook (the facilitator's channel sees all).
    pub fn curveball_changes(&self, before: &Live) -> Vec<CurveballChange> {
        let mut out = Vec::new();
        for c in &self.curveballs {
            let old = before
                .curveballs
                .iter()
                .find(|b| b.id == c.id && b.name == c.name);
            let (was_started, was_ended) = old.map_or((None, None), |b| (b.started_ms, b.ended_ms));
            if let (Some(t), None) = (c.started_ms, was_started) {
                out.push(CurveballChange::new(c, true, t));
            }
            if let (Some(t), None) = (c.ended_ms, was_ended) {
                out.push(CurveballChange::new(c, false, t));
            }
        }
        out.sort_by_key(|c| c.t_ms);
        out
    }

    /// The last mark the journal recorded.
    pub fn last_mark(&self) -> Option<&MarkView> {
        self.marks.last()
    }

    /// The marks recorded since `before` was taken.
    pub fn new_marks(&self, before: &Live) -> &[MarkView] {
        &self.marks[before.marks.len().min(self.marks.len())..]
    }
}

/// A curveball that started or ended, as the facilitator's channel hears of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurveballChange {
    /// `curveball 1: worker frozen`.
    pub curveball: String,
    pub kind: String,
    pub target: String,
    /// `started` or `ended`.
    pub state: &'static str,
    pub t_ms: u64,
    /// For `person.away` and `person.no_access`: the responder it is about.
    pub responder: Option<String>,
    /// How long it lasts, as planned.
    pub for_ms: u64,
}

impl CurveballChange {
    fn new(c: &Curveball, started: bool, t_ms: u64) -> CurveballChange {
        let human = c.kind == PERSON_AWAY || c.kind == PERSON_NO_ACCESS;
        CurveballChange {
            curveball: c.name.clone(),
            kind: c.kind.clone(),
            target: c.target.clone(),
            state: if started { "started" } else { "ended" },
            t_ms,
            responder: human.then(|| c.target.clone()),
            for_ms: c.for_ms,
        }
    }
}
