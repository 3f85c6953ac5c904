//! The cluster, through the Kubernetes API: the rights checked before anything is
//! created, the run's objects created, its pods waited for (a pod that can never start
//! ends the launch with the reason from its status), their logs followed as the
//! segments' streams, and everything deleted again.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use livefire_engine::segments::{SegmentEvent, SegmentExit};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::names;
use crate::render::Objects;

/// How often the pods are looked at while waiting for them.
const POLL: Duration = Duration::from_millis(500);

/// Why the cluster refused or could not be reached; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no Kubernetes configuration: {0}; set KUBECONFIG (or ~/.kube/config), or run inside a cluster"
    )]
    Config(String),
    #[error(
        "cannot reach the Kubernetes API at {url}: {reason}; check `kubectl cluster-info` with the same kubeconfig"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the Kubernetes API at {url} refused your credentials ({reason}); log in again (`kubectl get pods` shows the same)"
    )]
    Unauthorized { url: String, reason: String },
    #[error(
        "missing rights in namespace `{namespace}`: {}; nothing was created: apply deploy/rbac.yaml \
         (kubectl apply -f deploy/rbac.yaml) and bind its Role to you, or ask your cluster admin",
        .missing.join(", ")
    )]
    Forbidden {
        namespace: String,
        missing: Vec<String>,
    },
    #[error("the Kubernetes API refused to {action}: {reason}")]
    Api { action: String, reason: String },
    #[error("segment {index} (pod {pod}) cannot start: {reason}; the run's objects were deleted")]
    NeverStarts {
        index: u32,
        pod: String,
        reason: String,
    },
    #[error(
        "{pending} of {count} segments were not running in time ({}); the run's objects were deleted",
        .reasons.join("; ")
    )]
    NotInTime {
        pending: u32,
        count: u32,
        reasons: Vec<String>,
    },
}

/// What every split run needs, checked before anything is created: (verb, API group,
/// resource, subresource).
pub const RIGHTS: [(&str, &str, &str, &str); 9] = [
    ("create", "", "configmaps", ""),
    ("delete", "", "configmaps", ""),
    ("create", "batch", "jobs", ""),
    ("delete", "batch", "jobs", ""),
    ("list", "batch", "jobs", ""),
    ("list", "", "configmaps", ""),
    ("list", "", "pods", ""),
    ("get", "", "pods", ""),
    ("get", "", "pods", "log"),
];

/// One namespace of one cluster.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    namespace: String,
    url: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cluster({}, namespace {})", self.url, self.namespace)
    }
}

impl Cluster {
    /// The cluster of the kubeconfig's `context` (`None`: the current context, or the
    /// in-cluster configuration), in `namespace` (`None`: the context's).
    pub async fn connect(
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Cluster, ClusterError> {
        let config = match context {
            Some(ctx) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                context: Some(ctx.to_owned()),
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| ClusterError::Config(e.to_string()))?,
        };
        Cluster::from_config(config, namespace)
    }

    /// The cluster a configuration names (tests give a local API server's URL).
    pub fn from_config(
        config: kube::Config,
        namespace: Option<&str>,
    ) -> Result<Cluster, ClusterError> {
        let url = config.cluster_url.to_string();
        let namespace = namespace
            .map(str::to_owned)
            .unwrap_or_else(|| config.default_namespace.clone());
        let client =
            kube::Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(Cluster {
            client,
            namespace,
            url,
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks the API whether this user has every right in [`RIGHTS`] in the namespace
    /// (SelfSubjectAccessReview: creates nothing). An unreachable API, refused
    /// credentials and each missing right are errors.
    pub async fn check_access(&self) -> Result<(), ClusterError> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let mut missing = Vec::new();
        for (verb, group, resource, sub) in RIGHTS {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(self.namespace.clone()),
                        verb: Some(verb.into()),
                        group: Some(group.into()),
                        resource: Some(resource.into()),
                        subresource: (!sub.is_empty()).then(|| sub.into()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| self.error("check your rights", e))?;
            if !answer.status.is_some_and(|s| s.allowed) {
                missing.push(right_name(verb, group, resource, sub));
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ClusterError::Forbidden {
                namespace: self.namespace.clone(),
                missing,
            })
        }
    }

    /// Creates the ConfigMap, then the Job. If the Job is refused, the ConfigMap is
    /// deleted again before the error returns.
    pub async fn create(&self, objects: &Objects) -> Result<(), ClusterError> {
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = objects.job.metadata.name.clone().unwrap_or_default();
        cms.create(&PostParams::default(), &objects.config_map)
            .await
            .map_err(|e| self.error(&format!("create configmap {name}"), e))?;
        if let Err(e) = jobs.create(&PostParams::default(), &objects.job).await {
            let err = self.error(&format!("create job {name}"), e);
            let _ = self.delete(&name).await;
            return Err(err);
        }
        Ok(())
    }

    /// Waits until every one of the `count` pods of the Job `name` runs (or ran), up to
    /// `deadline`. A pod that can never start (its image cannot be pulled, its
    /// configuration is wrong) ends the wait at once, with the reason from its status;
    /// one that is still unscheduled at the deadline is named with the scheduler's
    /// reason. Returns each segment's pod name by index.
    pub async fn wait_running(
        &self,
        name: &str,
        count: u32,
        deadline: Instant,
    ) -> Result<BTreeMap<u32, (String, String)>, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = ListParams::default().labels(&format!("job-name={name}"));
        loop {
            let list = pods
                .list(&params)
                .await
                .map_err(|e| self.error("list the run's pods", e))?;
            let mut running = BTreeMap::new();
            let mut waiting = Vec::new();
            for pod in &list.items {
                let Some(index) = completion_index(pod) else {
                    continue;
                };
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                match pod_state(pod) {
                    PodState::Started { node } => {
                        running.insert(index, (pod_name, node));
                    }
                    PodState::NeverStarts(reason) => {
                        return Err(ClusterError::NeverStarts {
                            index: index + 1,
                            pod: pod_name,
                            reason,
                        });
                    }
                    PodState::Waiting(reason) => {
                        waiting.push(format!("segment {}: {reason}", index + 1))
                    }
                }
            }
            if running.len() as u32 >= count {
                return Ok(running);
            }
            if Instant::now() >= deadline {
                let missing = (0..count).filter(|i| !running.contains_key(i)).count() as u32;
                if waiting.is_empty() {
                    waiting.push("no pod was created; `kubectl describe job` says why".into());
                }
                return Err(ClusterError::NotInTime {
                    pending: missing,
                    count,
                    reasons: waiting,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Follows pod `pod` (segment `index`): each log line is sent as it comes, then
    /// how the pod ended. Returns when the pod's stream is over.
    pub async fn follow(&self, index: u32, pod: &str, tx: mpsc::UnboundedSender<SegmentEvent>) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = LogParams {
            follow: true,
            container: Some("agent".into()),
            ..LogParams::default()
        };
        match pods.log_stream(pod, &params).await {
            Ok(stream) => {
                let mut lines = stream.lines();
                loop {
                    match lines.try_next().await {
                        Ok(Some(line)) => {
                            let _ = tx.send(SegmentEvent::Line { index, line });
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(pod, error = %e, "log stream of a segment broke");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(pod, error = %e, "cannot follow a segment's log"),
        }
        let (success, detail) = self.ended(pod).await;
        let _ = tx.send(SegmentEvent::Exited {
            index,
            exit: SegmentExit { success, detail },
        });
    }

    /// How pod `pod` ended, once its log stream is over: its phase, or its container's
    /// exit, or that it is gone.
    async fn ended(&self, pod: &str) -> (bool, String) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        // The log ends a moment before the kubelet reports the phase.
        for _ in 0..20 {
            match pods.get_opt(pod).await {
                Ok(Some(p)) => {
                    if let Some(end) = terminated(&p) {
                        return end;
                    }
                }
                Ok(None) => return (false, format!("pod {pod} was deleted")),
                Err(e) => return (false, format!("pod {pod}: {}", describe(&e))),
            }
            tokio::time::sleep(POLL).await;
        }
        (false, format!("pod {pod}: its log ended but it still runs"))
    }

    /// Deletes the Job `name` (its pods with it, in the background) and the ConfigMap
    /// `name`. What is already gone is not an error.
    pub async fn delete(&self, name: &str) -> Result<String, ClusterError> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut gone = Vec::new();
        match jobs.delete(name, &DeleteParams::background()).await {
            Ok(_) => gone.push(format!("job {name}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(self.error(&format!("delete job {name}"), e)),
        }
        match cms.delete(name, &DeleteParams::background()).await {
            Ok(_) => gone.push(format!("configmap {name}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(self.error(&format!("delete configmap {name}"), e)),
        }
        Ok(if gone.is_empty() {
            format!("nothing of {name} was left in namespace {}", self.namespace)
        } else {
            format!(
                "deleted {} in namespace {}",
                gone.join(" and "),
                self.namespace
            )
        })
    }

    /// Deletes every Job and ConfigMap labelled with run `run_label` (what `livefire
    /// recover` does from the ledger): found by label, so nothing of another run is
    /// touched.
    pub async fn delete_run(&self, run_label: &str) -> Result<String, ClusterError> {
        let selector = format!(
            "{}={},{}={run_label}",
            names::APP_LABEL,
            names::APP,
            names::RUN_LABEL
        );
        let params = ListParams::default().labels(&selector);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut found: Vec<String> = jobs
            .list(&params)
            .await
            .map_err(|e| self.error("list the run's jobs", e))?
            .items
            .into_iter()
            .filter_map(|j| j.metadata.name)
            .collect();
        for cm in cms
            .list(&params)
            .await
            .map_err(|e| self.error("list the run's configmaps", e))?
            .items
        {
            if let Some(n) = cm.metadata.name
                && !found.contains(&n)
            {
                found.push(n);
            }
        }
        if found.is_empty() {
            return Ok(format!(
                "nothing of run {run_label} was left in namespace {}",
                self.namespace
            ));
        }
        let mut done = Vec::new();
        for name in found {
            done.push(self.delete(&name).await?);
        }
        Ok(done.join("; "))
    }

    fn error(&self, action: &str, e: kube::Error) -> ClusterError {
        match &e {
            kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized {
                url: self.url.clone(),
                reason: status.message.clone(),
            },
            kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden {
                namespace: self.namespace.clone(),
                missing: vec![format!("{action} ({})", status.message)],
            },
            kube::Error::Api(_) => ClusterError::Api {
                action: action.to_owned(),
                reason: describe(&e),
            },
            _ => ClusterError::Unreachable {
                url: self.url.clone(),
                reason: describe(&e),
            },
        }
    }
}

/// `create jobs.batch`, `get pods/log`.
fn right_name(verb: &str, group: &str, resource: &str, sub: &str) -> String {
    let mut r = resource.to_owned();
    if !group.is_empty() {
        r = format!("{r}.{group}");
    }
    if !sub.is_empty() {
        r = format!("{r}/{sub}");
    }
    format!("{verb} {r}")
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The API's own message, or the transport error and what caused it.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        _ => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                // Layers often repeat the one below them; say each thing once.
                let part = s.to_string();
                if !text.contains(&part) {
                    text = format!("{text}: {part}");
                }
                source = s.source();
            }
            text
        }
    }
}

/// The segment a pod runs: its completion index (0-based).
fn completion_index(pod: &Pod) -> Option<u32> {
    let key = "batch.kubernetes.io/job-completion-index";
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .or_else(|| pod.metadata.labels.as_ref().and_then(|l| l.get(key)))
        .and_then(|v| v.parse().ok())
}

/// What a pod's status says about its start.
#[derive(Debug, PartialEq, Eq)]
enum PodState {
    /// It runs or ran; on this node.
    Started { node: String },
    /// It cannot start without someone changing something: the reason.
    NeverStarts(String),
    /// Still on its way (or unscheduled, which a scaling cluster may fix): the reason.
    Waiting(String),
}

/// Container waiting reasons that do not go away by waiting.
const FATAL_WAITING: [&str; 7] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

fn pod_state(pod: &Pod) -> PodState {
    let status = pod.status.clone().unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    match status.phase.as_deref() {
        Some("Running" | "Succeeded") => return PodState::Started { node },
        Some("Failed") => {
            // Failed before its agent ever ran: the reason is on the pod.
            let reason = status
                .message
                .or(status.reason)
                .unwrap_or_else(|| "the pod failed".into());
            let started = status
                .container_statuses
                .unwrap_or_default()
                .iter()
                .any(|c| {
                    c.state.as_ref().is_some_and(|s| {
                        s.terminated
                            .as_ref()
                            .is_some_and(|t| t.started_at.is_some())
                    })
                });
            return if started {
                PodState::Started { node }
            } else {
                PodState::NeverStarts(reason)
            };
        }
        _ => {}
    }
    for c in status.container_statuses.iter().flatten() {
        if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_default();
            let text = match &w.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason.clone(),
            };
            if FATAL_WAITING.contains(&reason.as_str()) {
                return PodState::NeverStarts(text);
            }
            return PodState::Waiting(text);
        }
    }
    for cond in status.conditions.iter().flatten() {
        if cond.type_ == "PodScheduled" && cond.status == "False" {
            let reason = cond
                .reason
                .clone()
                .unwrap_or_else(|| "not scheduled".into());
            return PodState::Waiting(match &cond.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason,
            });
        }
    }
    PodState::Waiting("Pending".into())
}

/// How a pod ended, once it has: (success, detail).
fn terminated(pod: &Pod) -> Option<(bool, String)> {
    let status = pod.status.as_ref()?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let exit = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref().and_then(|s| s.terminated.clone()));
    match (status.phase.as_deref(), exit) {
        (Some("Succeeded"), _) => Some((true, format!("pod {name}: exit status 0"))),
        (_, Some(t)) => {
            let why = t.reason.map(|r| format!(" ({r})")).unwrap_or_default();
            Some((
                t.exit_code == 0,
                format!("pod {name}: exit status {}{why}", t.exit_code),
            ))
        }
        (Some("Failed"), None) => Some((
            false,
            format!(
                "pod {name} failed: {}",
                status
                    .message
                    .clone()
                    .or(status.reason.clone())
                    .unwrap_or_default()
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    #[test]
    fn pod_states_from_their_status() {
        let cases = [
            (
                serde_json::json!({"spec": {"containers": [], "nodeName": "n1"}, "status": {"phase": "Running"}}),
                PodState::Started { node: "n1".into() },
            ),
            (
                serde_json::json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "agent", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope:1\""}}}]}}),
                PodState::NeverStarts("ImagePullBackOff: Back-off pulling image \"nope:1\"".into()),
            ),
            (
                serde_json::json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "agent", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
                PodState::Waiting("ContainerCreating".into()),
            ),
            (
                serde_json::json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient cpu."}]}}),
                PodState::Waiting(
                    "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.".into(),
                ),
            ),
            (
                serde_json::json!({"status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}}),
                PodState::NeverStarts("The node was low on resource: memory.".into()),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(pod_state(&pod(json.clone())), want, "{json}");
        }
    }
}
