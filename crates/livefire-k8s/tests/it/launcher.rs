//! The Kubernetes launcher through the `Launcher` trait the coordinator uses, against
//! the fake API (`fake_api.rs`) over real HTTP: a launch that runs, streams and cleans
//! up; a pod that can never start; rights missing; no cluster at all; and what
//! `livefire recover` deletes after a crash.

use std::path::Path;
use std::time::{Duration, SystemTime};

use livefire_engine::segments::{LaunchError, LaunchSpec, Launcher, SegmentEvent};
use livefire_k8s::launcher::KubernetesLauncher;
use livefire_k8s::render::Options;

use crate::fake_api::{FakeApi, Pods};

fn spec(count: u32) -> LaunchSpec {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/minimal.yaml");
    LaunchSpec {
        run_id: "20270115T080000Z-health".into(),
        text: std::fs::read_to_string(&file).expect("fixture"),
        file,
        vars: Vec::new(),
        env: None,
        seed: 42,
        count,
        start_at: SystemTime::now() + Duration::from_secs(60),
        secret_env: Vec::new(),
        segments_dir: std::env::temp_dir(),
    }
}

fn launcher(api: &FakeApi) -> KubernetesLauncher {
    KubernetesLauncher::with_cluster(api.cluster("load"), Options::default())
}

#[tokio::test]
async fn a_launch_runs_every_segment_streams_its_lines_and_deletes_everything_at_the_end() {
    let api = FakeApi::start(
        &[],
        Pods::Run(vec!["{\"ready\":{i}}".into(), "{\"done\":{i}}".into()]),
    )
    .await;
    let mut l = launcher(&api);
    let spec = spec(3);
    l.check(&spec).await.expect("check");
    assert!(
        api.state.lock().expect("state").configmaps.is_empty(),
        "check creates nothing"
    );
    let mut launched = l.launch(&spec).await.expect("launch");
    {
        let st = api.state.lock().expect("state");
        let job = st.jobs.values().next().expect("a job");
        assert_eq!(job["spec"]["completions"], 3);
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        let cm = st.configmaps.values().next().expect("a configmap");
        assert_eq!(
            cm["data"]["experiment.yaml"].as_str(),
            Some(spec.text.as_str())
        );
    }
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); 3];
    let mut started = 0;
    let mut exited = 0;
    while exited < 3 {
        let event = tokio::time::timeout(Duration::from_secs(30), launched.events.recv())
            .await
            .expect("events keep coming")
            .expect("the channel stays open until every segment exited");
        match event {
            SegmentEvent::Started { index, detail } => {
                started += 1;
                assert!(
                    detail.contains(&format!("-{index}-")) && detail.contains("node-"),
                    "{detail}"
                );
            }
            SegmentEvent::Line { index, line } => lines[index as usize].push(line),
            SegmentEvent::Exited { index, exit } => {
                exited += 1;
                assert!(exit.success, "segment {index}: {}", exit.detail);
                assert_eq!(lines[index as usize].len(), 2, "all lines before the exit");
            }
        }
    }
    assert_eq!(started, 3);
    for (i, got) in lines.iter().enumerate() {
        assert_eq!(
            got,
            &vec![format!("{{\"ready\":{i}}}"), format!("{{\"done\":{i}}}")]
        );
    }
    let record = l.undo_record(&spec).expect("a ledger record");
    assert!(
        record.resource().contains("/load/20270115T080000Z-health"),
        "{}",
        record.resource()
    );

    l.stop_all(Duration::from_secs(5)).await.expect("stop");
    {
        let st = api.state.lock().expect("state");
        assert!(
            st.jobs.is_empty() && st.configmaps.is_empty() && st.pods.is_empty(),
            "nothing left: {:?}",
            st.requests
        );
        let job_delete = st
            .deletes
            .iter()
            .find(|(p, _)| p.contains("/jobs/"))
            .expect("job deleted");
        assert_eq!(
            job_delete.1["propagationPolicy"], "Background",
            "pods go with the job"
        );
    }
    l.stop_all(Duration::from_secs(1))
        .await
        .expect("a second stop is harmless");
}

/// Stopping segments that are still running (an abort, or past the end) asks them to
/// stop by deleting the Job, then keeps reading their logs: what each agent sends on
/// its way out (its `done`) reaches the coordinator, and nothing is left.
#[tokio::test]
async fn stopping_running_segments_deletes_the_job_first_and_still_reads_their_last_lines() {
    let api = FakeApi::start(
        &[],
        Pods::UntilDeleted {
            lines: vec!["{\"ready\":{i}}".into()],
            last: "{\"done\":{i}}".into(),
        },
    )
    .await;
    let mut l = launcher(&api);
    let spec = spec(2);
    let mut launched = l.launch(&spec).await.expect("launch");
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); 2];
    while lines.iter().any(|l| l.is_empty()) {
        let event = tokio::time::timeout(Duration::from_secs(30), launched.events.recv())
            .await
            .expect("events keep coming")
            .expect("open");
        if let SegmentEvent::Line { index, line } = event {
            lines[index as usize].push(line);
        }
    }
    l.stop_all(Duration::from_secs(10)).await.expect("stop");
    let mut exited = 0;
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_secs(5), launched.events.recv()).await
    {
        match event {
            SegmentEvent::Line { index, line } => lines[index as usize].push(line),
            SegmentEvent::Exited { index, .. } => {
                exited += 1;
                assert_eq!(
                    lines[index as usize].len(),
                    2,
                    "its last line before its exit"
                );
            }
            SegmentEvent::Started { .. } => {}
        }
    }
    assert_eq!(exited, 2);
    for (i, got) in lines.iter().enumerate() {
        assert_eq!(
            got,
            &vec![format!("{{\"ready\":{i}}}"), format!("{{\"done\":{i}}}")]
        );
    }
    let st = api.state.lock().expect("state");
    assert!(st.jobs.is_empty() && st.configmaps.is_empty() && st.pods.is_empty());
}

#[tokio::test]
async fn a_pod_that_cannot_pull_its_image_ends_the_launch_with_its_reason_and_leaves_nothing() {
    let api = FakeApi::start(
        &[],
        Pods::Stuck {
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"registry.example/livefire:nope\"".into(),
        },
    )
    .await;
    let mut l = launcher(&api);
    let err = l.launch(&spec(2)).await.expect_err("cannot start");
    let text = err.to_string();
    assert!(
        matches!(err, LaunchError::Start { count: 2, .. }),
        "{err:?}"
    );
    assert!(
        text.contains("ImagePullBackOff") && text.contains("livefire:nope"),
        "{text}"
    );
    let st = api.state.lock().expect("state");
    assert!(
        st.jobs.is_empty() && st.configmaps.is_empty(),
        "deleted again: {:?}",
        st.requests
    );
}

#[tokio::test]
async fn missing_rights_are_refused_before_anything_is_created() {
    for denied in ["create jobs", "get pods/log", "delete configmaps"] {
        let api = FakeApi::start(&[denied], Pods::Run(Vec::new())).await;
        let l = launcher(&api);
        let err = l.check(&spec(2)).await.expect_err(denied);
        let text = err.to_string();
        let (verb, resource) = denied.split_once(' ').expect("verb resource");
        assert!(
            text.contains(verb) && text.contains(resource.split('/').next().unwrap_or("")),
            "{denied}: {text}"
        );
        assert!(
            text.contains("deploy/rbac.yaml") && text.contains("namespace `load`"),
            "{text}"
        );
        let st = api.state.lock().expect("state");
        assert!(
            st.requests
                .iter()
                .all(|r| r.contains("selfsubjectaccessreviews")),
            "only questions were asked: {:?}",
            st.requests
        );
    }
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_clear_error() {
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().expect("url"));
    let cluster =
        livefire_k8s::cluster::Cluster::from_config(config, Some("load")).expect("client");
    let l = KubernetesLauncher::with_cluster(cluster, Options::default());
    let err = l.check(&spec(2)).await.expect_err("unreachable");
    assert!(
        err.to_string().contains(&format!(
            "cannot reach the Kubernetes API at http://127.0.0.1:{port}"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_the_cluster_is_asked() {
    let api = FakeApi::start(&[], Pods::Run(Vec::new())).await;
    let l = launcher(&api);
    let cases = [
        (
            LaunchSpec {
                count: 0,
                ..spec(1)
            },
            "--segments 0",
        ),
        (
            LaunchSpec {
                secret_env: vec!["API_TOKEN".into()],
                ..spec(2)
            },
            "--env-secret",
        ),
    ];
    for (spec, says) in cases {
        let err = l.check(&spec).await.expect_err(says);
        assert!(err.to_string().contains(says), "{err}");
    }
    assert!(api.state.lock().expect("state").requests.is_empty());
    // The coordinator fills the start in after check (regression: check refused every
    // run because the start was still unset).
    let unset = LaunchSpec {
        start_at: SystemTime::UNIX_EPOCH,
        ..spec(2)
    };
    l.check(&unset)
        .await
        .expect("check does not judge the start");
    // launch does: a start already past is refused before anything is created.
    let mut l = launcher(&api);
    let past = LaunchSpec {
        start_at: SystemTime::now() - Duration::from_secs(5),
        ..spec(2)
    };
    let err = l.launch(&past).await.expect_err("past");
    assert!(err.to_string().contains("has passed"), "{err}");
    assert!(api.state.lock().expect("state").jobs.is_empty());
}

#[tokio::test]
async fn recover_deletes_exactly_the_crashed_runs_objects() {
    let api = FakeApi::start(&[], Pods::Run(Vec::new())).await;
    // Two runs launched; the coordinator of the first died.
    let mut first = launcher(&api);
    let mut second = launcher(&api);
    let crashed = LaunchSpec {
        run_id: "20270115T080000Z-crashed".into(),
        ..spec(2)
    };
    let alive = LaunchSpec {
        run_id: "20270115T080100Z-alive".into(),
        ..spec(2)
    };
    let _a = first.launch(&crashed).await.expect("launch");
    let _b = second.launch(&alive).await.expect("launch");
    let cluster = api.cluster("load");
    let done = cluster
        .delete_run("20270115T080000Z-crashed")
        .await
        .expect("delete");
    assert!(
        done.contains("deleted job") && done.contains("configmap"),
        "{done}"
    );
    {
        let st = api.state.lock().expect("state");
        assert_eq!(st.jobs.len(), 1, "the other run's job stays");
        assert!(st.jobs.keys().all(|k| k.contains("alive")));
        assert!(st.configmaps.keys().all(|k| k.contains("alive")));
    }
    // Nothing left is not an error: recover may run twice.
    let again = cluster
        .delete_run("20270115T080000Z-crashed")
        .await
        .expect("again");
    assert!(again.contains("nothing"), "{again}");
    second.stop_all(Duration::from_secs(1)).await.expect("stop");
}

#[test]
fn recover_routes_a_kubernetes_record_here_once_the_binary_installs_it() {
    let record = livefire_core::undo::UndoRecord::KubernetesRun {
        context: Some("livefire-test-no-such-context".into()),
        cluster: "https://127.0.0.1:6443".into(),
        namespace: "load".into(),
        run: "20270115T080000Z-crashed".into(),
    };
    // A livefire built without the feature says so and what to do, changing nothing.
    let without = livefire_faults::undo(&record).expect_err("not built in");
    assert!(
        without.to_string().contains("--features kubernetes"),
        "{without}"
    );
    livefire_faults::external::set_kubernetes_undo(livefire_k8s::launcher::undo);
    // With it, the record reaches the cluster code: this context exists nowhere.
    let with = livefire_faults::undo(&record).expect_err("no such context");
    assert!(
        with.to_string().contains("no Kubernetes configuration"),
        "{with}"
    );
}
