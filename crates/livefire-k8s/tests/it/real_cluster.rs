//! Against a real cluster, only when asked: `LIVEFIRE_K8S_TEST=1` with a kubeconfig
//! (KUBECONFIG or ~/.kube/config) whose user has deploy/rbac.yaml's rights in
//! `LIVEFIRE_K8S_NAMESPACE` (default `livefire`), and the image `LIVEFIRE_K8S_IMAGE`
//! (default `livefire:<version>`) loaded in the cluster. docs/kubernetes.md has the steps
//! on kind. Otherwise each test says SKIPPED and why.

use std::path::Path;
use std::time::{Duration, SystemTime};

use livefire_engine::segments::{LaunchSpec, Launcher, SegmentEvent};
use livefire_k8s::cluster::Cluster;
use livefire_k8s::launcher::{KubernetesLauncher, Target, allowance};
use livefire_k8s::render::{Options, default_image};

/// The namespace, or `None` (and a SKIPPED line) when no cluster test was asked for.
fn asked() -> Option<String> {
    if std::env::var("LIVEFIRE_K8S_TEST").as_deref() != Ok("1") {
        livefire_testkit::skip_unsupported(
            "needs a Kubernetes cluster: set LIVEFIRE_K8S_TEST=1 with a kubeconfig \
             (docs/kubernetes.md, \"Testing against a cluster\")",
        );
        return None;
    }
    Some(std::env::var("LIVEFIRE_K8S_NAMESPACE").unwrap_or_else(|_| "livefire".into()))
}

fn spec(run_id: &str, count: u32) -> LaunchSpec {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/minimal.yaml");
    LaunchSpec {
        run_id: run_id.into(),
        text: std::fs::read_to_string(&file).expect("fixture"),
        file,
        vars: Vec::new(),
        env: None,
        seed: 1,
        count,
        start_at: SystemTime::now() + allowance(count),
        secret_env: Vec::new(),
        segments_dir: std::env::temp_dir(),
    }
}

fn run_id(what: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("test-{what}-{secs}")
}

#[tokio::test]
async fn two_segments_run_on_the_cluster_stream_their_lines_and_leave_nothing() {
    let Some(namespace) = asked() else { return };
    let image = std::env::var("LIVEFIRE_K8S_IMAGE").unwrap_or_else(|_| default_image());
    let target = Target {
        context: None,
        namespace: Some(namespace.clone()),
    };
    let mut l = KubernetesLauncher::new(
        target,
        Options {
            image,
            ..Options::default()
        },
    );
    let spec = spec(&run_id("run"), 2);
    l.check(&spec).await.expect("rights and objects");
    let mut launched = l.launch(&spec).await.expect("launch");
    let mut lines = [0usize; 2];
    let mut exited = 0;
    let limit = allowance(2) + Duration::from_secs(300);
    while exited < 2 {
        let event = tokio::time::timeout(limit, launched.events.recv())
            .await
            .expect("the segments end")
            .expect("events until every segment exited");
        match event {
            SegmentEvent::Line { index, .. } => lines[index as usize] += 1,
            SegmentEvent::Exited { .. } => exited += 1,
            SegmentEvent::Started { .. } => {}
        }
    }
    assert!(
        lines.iter().all(|n| *n > 0),
        "every segment streamed: {lines:?}"
    );
    l.stop_all(Duration::from_secs(30)).await.expect("stop");
    let cluster = Cluster::connect(None, Some(&namespace))
        .await
        .expect("cluster");
    let left = cluster
        .delete_run(&livefire_k8s::names::run_label(&spec.run_id))
        .await
        .expect("look");
    assert!(left.contains("nothing"), "stop_all left: {left}");
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_ends_the_launch_and_leaves_nothing() {
    let Some(namespace) = asked() else { return };
    let target = Target {
        context: None,
        namespace: Some(namespace.clone()),
    };
    let options = Options {
        image: "livefire.invalid/no-such-image:0".into(),
        ..Options::default()
    };
    let mut l = KubernetesLauncher::new(target, options);
    let spec = spec(&run_id("pull"), 1);
    let err = l.launch(&spec).await.expect_err("cannot pull");
    let text = err.to_string();
    assert!(
        text.contains("ErrImagePull") || text.contains("ImagePullBackOff"),
        "{text}"
    );
    let cluster = Cluster::connect(None, Some(&namespace))
        .await
        .expect("cluster");
    let left = cluster
        .delete_run(&livefire_k8s::names::run_label(&spec.run_id))
        .await
        .expect("look");
    assert!(left.contains("nothing"), "the failed launch left: {left}");
}
