//! The manifests of a split run, as `livefire k8s render` prints them. The golden files
//! in `tests/it/golden/` are what a reviewer would read; after a deliberate change,
//! rewrite them with `LIVEFIRE_BLESS=1 cargo test -p livefire-k8s --test it render`
//! and read the diff.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use livefire_k8s::cli::{RenderArgs, SpreadArg, render_yaml};
use livefire_k8s::render::{Objects, Options, RenderError, Run, ShippedFile, render};

/// A fixed "now", so the goldens do not change between runs.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

fn args(file: &str, segments: u32) -> RenderArgs {
    RenderArgs {
        file: fixture(file),
        segments,
        image: "livefire:0.1.0".into(),
        namespace: "default".into(),
        start_at: Some(now() + Duration::from_secs(90)),
        run_id: Some("20270115T080000Z-health".into()),
        cpu: "500m".into(),
        memory: "512Mi".into(),
        env_secret: None,
        spread: SpreadArg::Soft,
        vars: Vec::new(),
        env: None,
    }
}

/// The YAML stream back as typed objects: k8s-openapi checks `apiVersion` and `kind`
/// and every field's type.
fn parse(yaml: &str) -> Objects {
    let docs: Vec<&str> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    assert_eq!(docs.len(), 2, "a ConfigMap and a Job:\n{yaml}");
    Objects {
        config_map: serde_saphyr::from_str::<ConfigMap>(docs[0]).expect("a ConfigMap"),
        job: serde_saphyr::from_str::<Job>(docs[1]).expect("a Job"),
    }
}

#[test]
fn manifests_match_the_golden_files_and_read_back_as_the_same_objects() {
    let cases: Vec<(&str, RenderArgs)> = vec![
        ("minimal-1.yaml", args("minimal.yaml", 1)),
        (
            "split-load-4.yaml",
            RenderArgs {
                namespace: "load".into(),
                image: "registry.example/livefire:0.1.0".into(),
                run_id: Some("20270115T080000Z-checkout-holds-at-2-000-req-s".into()),
                cpu: "2".into(),
                memory: "1Gi".into(),
                spread: SpreadArg::Hard,
                vars: vec![("shop".into(), "http://shop.load.svc:8080".into())],
                ..args("split-load.yaml", 4)
            },
        ),
    ];
    for (golden, args) in cases {
        let yaml = render_yaml(&args, now()).unwrap_or_else(|e| panic!("{golden}: {e}"));
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/golden")
            .join(golden);
        if std::env::var_os("LIVEFIRE_BLESS").is_some() {
            std::fs::write(&path, &yaml).expect("write golden");
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            yaml == want,
            "{golden} differs from what render prints now; if the change is meant, run \
             `LIVEFIRE_BLESS=1 cargo test -p livefire-k8s --test it render` and review the diff\n\
             --- now:\n{yaml}"
        );
        // What kubectl would send is what render built.
        let objects = parse(&yaml);
        assert_eq!(parse(&objects.to_yaml()), objects, "{golden}: round trip");
        assert_eq!(
            objects.to_yaml(),
            yaml,
            "{golden}: written again, byte for byte"
        );
    }
}

#[test]
fn the_job_runs_every_segment_once_from_its_completion_index() {
    let objects = parse(&render_yaml(&args("split-load.yaml", 4), now()).expect("render"));
    let spec = objects.job.spec.expect("job spec");
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(4), Some(4)));
    assert_eq!(spec.backoff_limit, Some(0));
    let pod = spec.template.spec.expect("pod spec");
    let agent = &pod.containers[0];
    let args = agent.args.clone().unwrap_or_default();
    let flag = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| panic!("{f} in {args:?}"))
    };
    assert_eq!(args[0], "agent");
    assert_eq!(flag("--segment-index"), "$(JOB_COMPLETION_INDEX)");
    assert_eq!(flag("--segments"), "4");
    assert_eq!(
        flag("--seed"),
        "7",
        "the file's seed: every pod plans the same"
    );
    assert_eq!(flag("--start-at"), "2027-01-15T08:01:30Z");
    assert_eq!(
        args.last().map(String::as_str),
        Some("/etc/livefire/experiment/experiment.yaml")
    );
    // `$(JOB_COMPLETION_INDEX)` only expands for a variable the container declares.
    let env = agent.env.clone().unwrap_or_default();
    let index = env
        .iter()
        .find(|e| e.name == "JOB_COMPLETION_INDEX")
        .expect("declared");
    let field = index
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("fieldRef");
    assert!(
        field.field_path.contains("job-completion-index"),
        "{}",
        field.field_path
    );
    // Non-root, and spread over nodes by the run's own labels.
    let sc = pod.security_context.expect("pod security context");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert!(sc.run_as_user.is_some_and(|u| u > 0));
    let spread = &pod.topology_spread_constraints.expect("spread")[0];
    assert_eq!(spread.topology_key, "kubernetes.io/hostname");
    let labels = objects.job.metadata.labels.expect("labels");
    assert_eq!(labels["app.kubernetes.io/name"], "livefire");
    assert_eq!(labels["livefire.dev/run"], "20270115T080000Z-health");
    let selector = spread
        .label_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone());
    assert_eq!(selector.as_ref(), Some(&labels));
    assert!(
        agent
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory"))
    );
}

#[test]
fn the_experiment_and_its_data_file_are_shipped_as_in_its_folder() {
    let objects = parse(&render_yaml(&args("split-load.yaml", 2), now()).expect("render"));
    let data = objects.config_map.data.expect("data");
    let text = std::fs::read_to_string(fixture("split-load.yaml")).expect("fixture");
    assert_eq!(
        data["experiment.yaml"], text,
        "the file as written, not a rendering of it"
    );
    let csv = std::fs::read_to_string(fixture("data/skus.csv")).expect("csv");
    let pod = objects.job.spec.and_then(|s| s.template.spec).expect("pod");
    let volume = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == "experiment")
        .expect("volume");
    let items = volume.config_map.and_then(|c| c.items).unwrap_or_default();
    let item = items
        .iter()
        .find(|i| i.path == "data/skus.csv")
        .expect("data/skus.csv laid out");
    assert_eq!(data[&item.key], csv);
}

/// A run as the launcher would render it, with the secret the file reads.
fn run(count: u32) -> Run {
    Run {
        run_id: "20270115T080000Z-health".into(),
        title: "Health".into(),
        experiment: "version: 1\n".into(),
        files: Vec::new(),
        vars: Vec::new(),
        env: None,
        seed: 3,
        count,
        start_at: now() + Duration::from_secs(60),
        secret_env: vec!["SHOP_TOKEN".into()],
        max_duration: Duration::from_secs(300),
    }
}

#[test]
fn secrets_come_from_a_kubernetes_secret_never_from_the_configmap() {
    let options = Options {
        env_secret: Some("shop-token".into()),
        ..Options::default()
    };
    let objects = render(&run(2), &options, now()).expect("render");
    let yaml = objects.to_yaml();
    let pod = objects.job.spec.and_then(|s| s.template.spec).expect("pod");
    let env = pod.containers[0].env.clone().unwrap_or_default();
    let token = env
        .iter()
        .find(|e| e.name == "SHOP_TOKEN")
        .expect("SHOP_TOKEN");
    let key = token
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("shop-token", "SHOP_TOKEN")
    );
    assert!(token.value.is_none(), "{yaml}");
}

#[test]
fn bad_input_is_refused_with_what_to_do() {
    let ok = Options::default();
    let cases: Vec<(&str, Run, Options, &str)> = vec![
        (
            "no segments",
            Run { count: 0, ..run(1) },
            Options {
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "--segments 1 or more",
        ),
        (
            "too many",
            Run {
                count: 100_000,
                ..run(1)
            },
            Options {
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "at most 99999",
        ),
        ("secret missing", run(2), ok.clone(), "--env-secret NAME"),
        (
            "namespace",
            run(2),
            Options {
                namespace: "Load_Test".into(),
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "namespace `Load_Test`",
        ),
        (
            "image",
            run(2),
            Options {
                image: " ".into(),
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "--image",
        ),
        (
            "cpu",
            run(2),
            Options {
                cpu: "two".into(),
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "--cpu `two`",
        ),
        (
            "memory",
            run(2),
            Options {
                memory: "1GB".into(),
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "--memory `1GB`",
        ),
        (
            "start in the past",
            Run {
                start_at: now() - Duration::from_secs(1),
                ..run(2)
            },
            Options {
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "has passed",
        ),
        (
            "file outside",
            Run {
                files: vec![ShippedFile {
                    path: "../users.csv".into(),
                    bytes: b"id\n".to_vec(),
                }],
                ..run(2)
            },
            Options {
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "`../users.csv`, which is not inside its folder",
        ),
        (
            "too large",
            Run {
                files: vec![ShippedFile {
                    path: "big.csv".into(),
                    bytes: vec![b'x'; 1_000_001],
                }],
                ..run(2)
            },
            Options {
                env_secret: Some("s".into()),
                ..ok.clone()
            },
            "a ConfigMap holds at most",
        ),
    ];
    for (what, run, options, says) in cases {
        let err = render(&run, &options, now()).expect_err(what);
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
    assert_eq!(
        render(&Run { count: 0, ..run(1) }, &Options::default(), now()),
        Err(RenderError::NoSegments)
    );
}

#[test]
fn an_invalid_file_is_refused_with_its_location_and_nothing_is_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "version: 1\ntitle: bad\ntimeline:\n  - at: 0s\n    for: 10s\n    load: { rate: fast, requests: [ { url: \"http://a\" } ] }\n",
    )
    .expect("write");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let cmd = livefire_k8s::cli::K8sCommand::Render(RenderArgs {
        file: file.clone(),
        ..args("minimal.yaml", 2)
    });
    let exit = livefire_k8s::cli::command(&cmd, &mut out, &mut err);
    let err = String::from_utf8_lossy(&err);
    assert_eq!(exit, livefire_core::exit::Exit::Invalid);
    assert!(
        out.is_empty(),
        "nothing printed: {}",
        String::from_utf8_lossy(&out)
    );
    assert!(
        err.contains(&format!("{}:6:", file.display())),
        "located: {err}"
    );
    // N = 0 is said before the file is even read.
    let cmd = livefire_k8s::cli::K8sCommand::Render(args("minimal.yaml", 0));
    let mut err = Vec::new();
    assert_eq!(
        livefire_k8s::cli::command(&cmd, &mut Vec::new(), &mut err),
        livefire_core::exit::Exit::Invalid
    );
    assert!(String::from_utf8_lossy(&err).contains("--segments 0"));
}

#[test]
fn long_or_odd_run_ids_give_valid_distinct_names() {
    use livefire_k8s::names::{is_dns_label, object_name, run_label};
    let ids = [
        "20270115T080000Z-health",
        "20270115T080000Z-checkout-holds-at-2-000-req-s-under-a-degraded-database-primary",
        "20270115T080000Z-checkout-holds-at-2-000-req-s-under-a-degraded-database-primary-2",
        "Ünïcode run / with spaces",
        "---",
    ];
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        let name = object_name(id);
        assert!(is_dns_label(&name) && name.len() <= 52, "{id} -> {name}");
        let label = run_label(id);
        assert!(label.len() <= 63 && !label.is_empty(), "{id} -> {label}");
        assert!(seen.insert(name.clone()), "{id}: {name} given twice");
    }
}
