//! The run's Kubernetes objects, typed: a ConfigMap with the experiment (and the files
//! it reads by relative path) and an Indexed Job whose pod `i` runs segment `i` of N.
//! Pure: no cluster is asked anything, so `livefire k8s render` and the launcher apply
//! exactly the same objects.

use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, KeyToPath, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::names;

/// Where the pods see the ConfigMap: the experiment and its files, as in the
/// experiment's folder on the coordinator.
pub const EXPERIMENT_DIR: &str = "/etc/livefire/experiment";
/// The experiment's key in the ConfigMap and its file name in [`EXPERIMENT_DIR`].
pub const EXPERIMENT_KEY: &str = "experiment.yaml";
/// The most segments one Job holds: pod hostnames carry the index in at most 5 digits.
pub const MAX_SEGMENTS: u32 = 99_999;
/// What a ConfigMap may hold (the API server refuses more than 1 MiB in all; this
/// leaves room for the keys and metadata).
pub const CONFIGMAP_MAX_BYTES: usize = 1_000_000;
/// How long the Job may outlive the end of the timeline before Kubernetes stops it:
/// a safety net for a coordinator that died without `livefire recover`.
const DEADLINE_GRACE: Duration = Duration::from_secs(120);
/// Finished Jobs are removed by Kubernetes after this long even if nobody deletes
/// them. The ConfigMap has no owner reference (it is made before the Job, whose uid
/// it would need): it stays until the coordinator or `livefire recover` deletes it.
const TTL_AFTER_FINISHED: i32 = 600;
/// The uid and gid the agent runs as (distroless's `nonroot`).
const NON_ROOT_UID: i64 = 65_532;

/// What is split across the pods: the run, as the coordinator planned it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The coordinator's run id (`20261203T140000Z-orders`): names and labels.
    pub run_id: String,
    /// The experiment's title (an annotation, for people listing Jobs).
    pub title: String,
    /// The experiment file's text as written: `${env:NAME}` are still placeholders, so
    /// no secret is in the ConfigMap; the pods read them from a Secret.
    pub experiment: String,
    /// Files the experiment reads by a path relative to its folder (load data, OpenAPI
    /// documents): shipped beside it.
    pub files: Vec<ShippedFile>,
    /// `--var NAME=VALUE` given to the coordinator.
    pub vars: Vec<(String, String)>,
    /// `--env NAME` given to the coordinator.
    pub env: Option<String>,
    /// The coordinator's seed: every agent plans with it.
    pub seed: u64,
    /// How many segments (N).
    pub count: u32,
    /// The shared wall-clock start of `during`.
    pub start_at: SystemTime,
    /// The environment variables the file reads (`${env:NAME}`).
    pub secret_env: Vec<String>,
    /// The most the run may last (`settings.max_duration`): bounds the Job's life.
    pub max_duration: Duration,
}

/// A file shipped in the ConfigMap, at `path` relative to the experiment's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// How the pods are placed and sized; everything Kubernetes-specific a user chooses.
#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    pub image: String,
    /// CPU each pod asks for (a Kubernetes quantity: `500m`, `2`).
    pub cpu: String,
    /// Memory each pod asks for, and its limit (`512Mi`).
    pub memory: String,
    /// The Secret whose keys are the `${env:NAME}` the experiment reads.
    pub env_secret: Option<String>,
    /// `Hard`: at most one pod more on a node than on another, or the pod waits;
    /// `Soft`: spread when the scheduler can (a one-node cluster still runs all).
    pub spread: Spread,
}

/// How strictly the pods are spread over nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    Soft,
    Hard,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: "default".into(),
            image: default_image(),
            cpu: "500m".into(),
            memory: "512Mi".into(),
            env_secret: None,
            spread: Spread::Soft,
        }
    }
}

/// `livefire:<version>`: what `docker build -t livefire:<version> .` makes from the
/// repository's Dockerfile.
pub fn default_image() -> String {
    format!("livefire:{}", env!("CARGO_PKG_VERSION"))
}

/// A run's objects, in the order they are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Objects {
    pub config_map: ConfigMap,
    pub job: Job,
}

/// Why the objects cannot be rendered; nothing was applied. Each says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("--segments 0: a split run needs at least one segment: give --segments 1 or more")]
    NoSegments,
    #[error("--segments {0}: one Job holds at most {MAX_SEGMENTS} segments")]
    TooManySegments(u32),
    #[error(
        "namespace `{0}` is not a Kubernetes name: lower-case letters, digits and `-`, at most 63"
    )]
    Namespace(String),
    #[error("the image is empty: give --image REGISTRY/livefire:TAG")]
    Image,
    #[error("{what} `{value}` is not a Kubernetes quantity: write it like `500m`, `2`, `512Mi`")]
    Quantity { what: &'static str, value: String },
    #[error(
        "the experiment reads {}; the pods need them: create a Secret with those keys \
         (kubectl create secret generic NAME --from-literal=KEY=VALUE) and give --env-secret NAME",
        .0.iter().map(|n| format!("${{env:{n}}}")).collect::<Vec<_>>().join(", ")
    )]
    SecretNeeded(Vec<String>),
    #[error("--env-secret `{0}` is not a Kubernetes name: lower-case letters, digits and `-`")]
    SecretName(String),
    #[error(
        "the experiment reads `{0}`, which is not inside its folder: the pods only get the \
         experiment's folder; put the file beside the experiment and name it by a relative path"
    )]
    FileOutside(String),
    #[error(
        "the experiment and its files are {0} bytes; a ConfigMap holds at most {CONFIGMAP_MAX_BYTES}: \
         make the data files smaller, or bake them into the image and name them by absolute path"
    )]
    TooLarge(usize),
    #[error(
        "the start time {0} has passed: a split run starts in the future (leave --start-at out to start in two minutes)"
    )]
    StartInPast(String),
}

/// The objects of `run` placed by `options`. `now` is when they are rendered: the Job
/// gives up (activeDeadlineSeconds) that long after the run's latest possible end.
pub fn render(run: &Run, options: &Options, now: SystemTime) -> Result<Objects, RenderError> {
    check(run, options, now)?;
    let name = names::object_name(&run.run_id);
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(options.namespace.clone()),
        labels: Some(labels(&run.run_id)),
        annotations: Some(BTreeMap::from([
            (names::RUN_ID_ANNOTATION.to_owned(), run.run_id.clone()),
            (names::TITLE_ANNOTATION.to_owned(), run.title.clone()),
        ])),
        ..ObjectMeta::default()
    };
    let (config_map, items) = config_map(run, meta(&name))?;
    let job = Job {
        metadata: meta(&name),
        spec: Some(job_spec(run, options, &name, items, now)),
        status: None,
    };
    Ok(Objects { config_map, job })
}

impl Objects {
    /// The objects as one YAML stream (`---` between them), for `kubectl apply -f -`.
    pub fn to_yaml(&self) -> String {
        // Serializing typed objects into a String cannot fail: no map has non-string
        // keys and no value is a float that YAML cannot write.
        let cm = serde_saphyr::to_string(&self.config_map).unwrap_or_default();
        let job = serde_saphyr::to_string(&self.job).unwrap_or_default();
        format!("---\n{cm}---\n{job}")
    }
}

/// `app.kubernetes.io/name: livefire` and `livefire.dev/run: <run>`.
pub fn labels(run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (names::APP_LABEL.to_owned(), names::APP.to_owned()),
        (names::RUN_LABEL.to_owned(), names::run_label(run_id)),
    ])
}

/// The agent's arguments: the same as every back end's, but the segment comes from the
/// pod's completion index (0-based) through Kubernetes' `$(VAR)` expansion.
pub fn agent_args(run: &Run) -> Vec<String> {
    let mut args = vec![
        "agent".to_owned(),
        "--segment-index".to_owned(),
        "$(JOB_COMPLETION_INDEX)".to_owned(),
        "--segments".to_owned(),
        run.count.to_string(),
        "--start-at".to_owned(),
        rfc3339(run.start_at),
        "--seed".to_owned(),
        run.seed.to_string(),
    ];
    for (k, v) in &run.vars {
        args.push("--var".to_owned());
        // `$$` is how a literal `$(` survives Kubernetes' expansion.
        args.push(format!("{k}={v}").replace("$(", "$$("));
    }
    if let Some(env) = &run.env {
        args.push("--env".to_owned());
        args.push(env.clone());
    }
    args.push(format!("{EXPERIMENT_DIR}/{EXPERIMENT_KEY}"));
    args
}

/// `2026-12-03T14:00:00Z` (UTC; milliseconds when there are any).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    match k8s_openapi::jiff::Timestamp::new(secs, (d.subsec_millis() * 1_000_000) as i32) {
        Ok(ts) => ts.to_string(),
        Err(_) => "9999-12-31T23:59:59Z".to_owned(),
    }
}

fn check(run: &Run, options: &Options, now: SystemTime) -> Result<(), RenderError> {
    if run.count == 0 {
        return Err(RenderError::NoSegments);
    }
    if run.count > MAX_SEGMENTS {
        return Err(RenderError::TooManySegments(run.count));
    }
    if !names::is_dns_label(&options.namespace) {
        return Err(RenderError::Namespace(options.namespace.clone()));
    }
    if options.image.trim().is_empty() || options.image.contains(char::is_whitespace) {
        return Err(RenderError::Image);
    }
    for (what, value) in [("--cpu", &options.cpu), ("--memory", &options.memory)] {
        if !is_quantity(value) {
            return Err(RenderError::Quantity {
                what,
                value: value.clone(),
            });
        }
    }
    match &options.env_secret {
        None if !run.secret_env.is_empty() => {
            return Err(RenderError::SecretNeeded(run.secret_env.clone()));
        }
        Some(s) if !names::is_dns_label(s) => return Err(RenderError::SecretName(s.clone())),
        _ => {}
    }
    if run.start_at <= now {
        return Err(RenderError::StartInPast(rfc3339(run.start_at)));
    }
    Ok(())
}

/// The ConfigMap and the volume items that lay its keys out as the experiment's folder.
fn config_map(run: &Run, metadata: ObjectMeta) -> Result<(ConfigMap, Vec<KeyToPath>), RenderError> {
    let mut data = BTreeMap::from([(EXPERIMENT_KEY.to_owned(), run.experiment.clone())]);
    let mut binary = BTreeMap::new();
    let mut items = vec![KeyToPath {
        key: EXPERIMENT_KEY.to_owned(),
        path: EXPERIMENT_KEY.to_owned(),
        mode: None,
    }];
    let mut size = run.experiment.len();
    for (i, file) in run.files.iter().enumerate() {
        let path =
            relative(&file.path).ok_or_else(|| RenderError::FileOutside(file.path.clone()))?;
        // A key holds no `/`; the item puts the file back at its path.
        let key = format!("file{}-{}", i + 1, key_chars(&path));
        size += file.bytes.len() + key.len();
        match String::from_utf8(file.bytes.clone()) {
            Ok(text) => {
                data.insert(key.clone(), text);
            }
            Err(e) => {
                binary.insert(key.clone(), ByteString(e.into_bytes()));
            }
        }
        items.push(KeyToPath {
            key,
            path,
            mode: None,
        });
    }
    if size > CONFIGMAP_MAX_BYTES {
        return Err(RenderError::TooLarge(size));
    }
    let cm = ConfigMap {
        metadata,
        data: Some(data),
        binary_data: (!binary.is_empty()).then_some(binary),
        immutable: Some(true),
    };
    Ok((cm, items))
}

fn job_spec(
    run: &Run,
    options: &Options,
    name: &str,
    items: Vec<KeyToPath>,
    now: SystemTime,
) -> JobSpec {
    let n = i32::try_from(run.count).unwrap_or(i32::MAX);
    let lead = run.start_at.duration_since(now).unwrap_or_default();
    let deadline = (lead + run.max_duration + DEADLINE_GRACE)
        .as_secs_f64()
        .ceil() as i64;
    JobSpec {
        completion_mode: Some("Indexed".into()),
        completions: Some(n),
        parallelism: Some(n),
        // A segment that fails is reported by the coordinator (settings.segments.min_alive);
        // a retried one would join late with a share already counted as lost.
        backoff_limit: Some(0),
        active_deadline_seconds: Some(deadline),
        ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels(&run.run_id)),
                ..ObjectMeta::default()
            }),
            spec: Some(pod_spec(run, options, name, items)),
        },
        ..JobSpec::default()
    }
}

fn pod_spec(run: &Run, options: &Options, name: &str, items: Vec<KeyToPath>) -> PodSpec {
    let mut env = vec![EnvVar {
        // The Job controller sets it too; naming it here makes `$(JOB_COMPLETION_INDEX)`
        // in the args expand whatever the controller's version does.
        name: "JOB_COMPLETION_INDEX".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    .into(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        value: None,
    }];
    env.push(EnvVar {
        name: "LIVEFIRE_HOME".into(),
        value: Some("/var/lib/livefire".into()),
        value_from: None,
    });
    if let Some(secret) = &options.env_secret {
        for key in &run.secret_env {
            env.push(EnvVar {
                name: key.clone(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.clone(),
                        key: key.clone(),
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
            });
        }
    }
    let requests = BTreeMap::from([
        ("cpu".to_owned(), Quantity(options.cpu.clone())),
        ("memory".to_owned(), Quantity(options.memory.clone())),
    ]);
    // No CPU limit: throttling a load generator delays its sends and shows up as the
    // target's latency. Memory is limited to what was asked, so one pod cannot starve
    // its neighbours.
    let limits = BTreeMap::from([("memory".to_owned(), Quantity(options.memory.clone()))]);
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    let empty_dir = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    PodSpec {
        restart_policy: Some("Never".into()),
        // The agents never talk to the Kubernetes API; only the coordinator does.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(10),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(NON_ROOT_UID),
            run_as_group: Some(NON_ROOT_UID),
            fs_group: Some(NON_ROOT_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        topology_spread_constraints: Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: match options.spread {
                Spread::Soft => "ScheduleAnyway",
                Spread::Hard => "DoNotSchedule",
            }
            .into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(labels(&run.run_id)),
                match_expressions: None,
            }),
            ..TopologySpreadConstraint::default()
        }]),
        containers: vec![Container {
            name: "agent".into(),
            image: Some(options.image.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            command: Some(vec!["livefire".into()]),
            args: Some(agent_args(run)),
            env: Some(env),
            resources: Some(ResourceRequirements {
                requests: Some(requests),
                limits: Some(limits),
                ..ResourceRequirements::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(vec![
                mount("experiment", EXPERIMENT_DIR, true),
                mount("home", "/var/lib/livefire", false),
                mount("tmp", "/tmp", false),
            ]),
            ..Container::default()
        }],
        volumes: Some(vec![
            Volume {
                name: "experiment".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: name.to_owned(),
                    items: Some(items),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            empty_dir("home"),
            empty_dir("tmp"),
        ]),
        ..PodSpec::default()
    }
}

/// `path` as a plain relative path (`data/users.csv`), or `None` when it is absolute or
/// climbs out of the experiment's folder.
fn relative(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The characters a ConfigMap key may hold; others become `_`.
fn key_chars(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A Kubernetes quantity: a decimal number with an optional suffix (`m`, `k`, `Mi`,
/// `G`, `e3`, ...), as the API server accepts it.
fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number != "."
        && number.matches('.').count() <= 1
        && number.parse::<f64>().is_ok_and(|v| v > 0.0);
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
        !exp.is_empty()
            && exp
                .trim_start_matches(['+', '-'])
                .bytes()
                .all(|b| b.is_ascii_digit())
    });
    number_ok && suffix_ok
}
