//! The Kubernetes back end of the segments' `Launcher`: `check` asks the cluster for
//! the rights a run needs and renders the objects (creating nothing); `launch` creates
//! the ConfigMap and the Indexed Job, waits until every pod runs (a pod that can never
//! start ends the launch with its reason, and everything is deleted), and follows each
//! pod's log as its segment's stream; `stop_all` deletes the Job and the ConfigMap.

use std::time::{Duration, SystemTime};

use livefire_core::undo::UndoRecord;
use livefire_engine::segments::launch::check_count;
use livefire_engine::segments::{
    LaunchError, LaunchSpec, Launched, Launcher, SegmentEvent, launch::BoxFuture,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, ClusterError};
use crate::names;
use crate::render::{self, Objects, Options};
use crate::ship::Split;

/// How long before the shared start the Job is created: image pulls on fresh nodes
/// and scheduling take most of it.
const BASE_ALLOWANCE: Duration = Duration::from_secs(90);
/// What each segment adds to it (the API server and the scheduler go pod by pod).
const PER_SEGMENT: Duration = Duration::from_millis(100);
/// The most the allowance grows to.
const MAX_ALLOWANCE: Duration = Duration::from_secs(600);
/// Every pod must run this long before the shared start (its agent still has to plan
/// and report ready).
const READY_MARGIN: Duration = Duration::from_secs(10);

/// Where the cluster is: the kubeconfig context (`None`: the current one, or the
/// in-cluster configuration) and the namespace (`None`: the context's).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// Split runs on Kubernetes.
#[derive(Debug)]
pub struct KubernetesLauncher {
    target: Target,
    options: Options,
    /// The cluster: given by the caller (tests: a local API server), else connected
    /// from `target` by the first step that needs it.
    cluster: std::sync::Mutex<Option<Cluster>>,
    running: Option<Running>,
}

/// What `launch` created and follows.
#[derive(Debug)]
struct Running {
    cluster: Cluster,
    name: String,
    run_id: String,
    followers: Vec<JoinHandle<()>>,
}

impl KubernetesLauncher {
    /// A launcher for `target`, placing pods by `options` (its namespace is replaced by
    /// the target's, or the context's).
    pub fn new(target: Target, options: Options) -> Self {
        KubernetesLauncher {
            target,
            options,
            cluster: std::sync::Mutex::new(None),
            running: None,
        }
    }

    /// A launcher on an already connected cluster.
    pub fn with_cluster(cluster: Cluster, options: Options) -> Self {
        KubernetesLauncher {
            target: Target {
                context: None,
                namespace: Some(cluster.namespace().to_owned()),
            },
            options,
            cluster: std::sync::Mutex::new(Some(cluster)),
            running: None,
        }
    }

    fn connected(&self) -> Option<Cluster> {
        self.cluster.lock().ok().and_then(|c| c.clone())
    }

    async fn cluster(&self) -> Result<Cluster, ClusterError> {
        if let Some(c) = self.connected() {
            return Ok(c);
        }
        let c = Cluster::connect(
            self.target.context.as_deref(),
            self.target.namespace.as_deref(),
        )
        .await?;
        if let Ok(mut slot) = self.cluster.lock() {
            *slot = Some(c.clone());
        }
        Ok(c)
    }

    /// The objects of `spec`, rendered now for `cluster`'s namespace, starting at
    /// `start_at`.
    fn objects(
        &self,
        spec: &LaunchSpec,
        cluster: &Cluster,
        start_at: SystemTime,
    ) -> Result<Objects, LaunchError> {
        let plan = livefire_engine::plan::plan(&spec.file, &spec.vars, spec.env.as_deref())
            .map_err(|e| LaunchError::Refused(e.to_string()))?;
        let mut run = Split {
            plan: &plan,
            text: &spec.text,
            run_id: &spec.run_id,
            count: spec.count,
            start_at,
            vars: &spec.vars,
            env: spec.env.as_deref(),
        }
        .run()
        .map_err(|e| LaunchError::Refused(e.to_string()))?;
        // The coordinator's seed (drawn when the file has none): every pod plans with it.
        run.seed = spec.seed;
        run.secret_env = spec.secret_env.clone();
        let options = Options {
            namespace: cluster.namespace().to_owned(),
            ..self.options.clone()
        };
        render::render(&run, &options, SystemTime::now())
            .map_err(|e| LaunchError::Refused(e.to_string()))
    }
}

/// The allowance for `count` segments.
pub fn allowance(count: u32) -> Duration {
    (BASE_ALLOWANCE + PER_SEGMENT * count).min(MAX_ALLOWANCE)
}

impl Launcher for KubernetesLauncher {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn startup_allowance(&self, count: u32) -> Duration {
        allowance(count)
    }

    fn check<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(async move {
            check_count(spec.count)?;
            let cluster = self.cluster().await.map_err(refused)?;
            // The shared start is chosen at launch; the objects' shape is checked now.
            self.objects(spec, &cluster, SystemTime::now() + allowance(spec.count))?;
            cluster.check_access().await.map_err(refused)
        })
    }

    fn launch<'a>(
        &'a mut self,
        spec: &'a LaunchSpec,
    ) -> BoxFuture<'a, Result<Launched, LaunchError>> {
        Box::pin(async move {
            check_count(spec.count)?;
            let cluster = self.cluster().await.map_err(refused)?;
            let objects = self.objects(spec, &cluster, spec.start_at)?;
            let name = objects.job.metadata.name.clone().unwrap_or_default();
            cluster.create(&objects).await.map_err(refused)?;
            let ready_by = spec
                .start_at
                .checked_sub(READY_MARGIN)
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                .unwrap_or_default();
            let deadline = tokio::time::Instant::now() + ready_by;
            let pods = match cluster.wait_running(&name, spec.count, deadline).await {
                Ok(pods) => pods,
                Err(e) => {
                    // Nothing may be left behind: the launch failed as a whole.
                    if let Err(d) = cluster.delete(&name).await {
                        tracing::warn!(job = %name, error = %d, "cannot delete a failed launch");
                    }
                    return Err(start_error(e, spec.count));
                }
            };
            let (tx, events) = mpsc::unbounded_channel();
            let mut followers = Vec::new();
            for (index, (pod, node)) in pods {
                let detail = if node.is_empty() {
                    format!("pod {pod}")
                } else {
                    format!("pod {pod} on {node}")
                };
                let _ = tx.send(SegmentEvent::Started { index, detail });
                let (cluster, tx) = (cluster.clone(), tx.clone());
                followers.push(tokio::spawn(async move {
                    cluster.follow(index, &pod, tx).await;
                }));
            }
            self.running = Some(Running {
                cluster,
                name,
                run_id: spec.run_id.clone(),
                followers,
            });
            Ok(Launched { events })
        })
    }

    fn stop_all<'a>(&'a mut self, grace: Duration) -> BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(async move {
            let Some(mut running) = self.running.take() else {
                return Ok(());
            };
            // Deleting the Job is how a pod is asked to stop: its agent gets SIGTERM,
            // sends what it has and its `done`, and exits. Their logs are followed
            // until then (up to `grace`), so those lines still reach the coordinator.
            let deleted = running.cluster.delete(&running.name).await;
            let until = tokio::time::Instant::now() + grace;
            for f in &mut running.followers {
                if tokio::time::timeout_at(until, &mut *f).await.is_err() {
                    break;
                }
            }
            for f in &running.followers {
                f.abort();
            }
            match deleted {
                Ok(done) => {
                    tracing::info!(job = %running.name, "{done}");
                    Ok(())
                }
                Err(e) => {
                    let err = LaunchError::Stop(format!(
                        "{e}; delete them by hand: kubectl delete job,configmap -n {} -l {}",
                        running.cluster.namespace(),
                        names::selector(&running.run_id)
                    ));
                    // Keep it, so a second stop_all tries again.
                    self.running = Some(running);
                    Err(err)
                }
            }
        })
    }

    fn undo_record(&self, spec: &LaunchSpec) -> Option<UndoRecord> {
        let cluster = self.connected()?;
        Some(UndoRecord::KubernetesRun {
            context: self.target.context.clone(),
            cluster: cluster.url().to_owned(),
            namespace: cluster.namespace().to_owned(),
            run: names::run_label(&spec.run_id),
        })
    }
}

/// Deletes what an `UndoRecord::KubernetesRun` names, from a fresh process (`livefire
/// recover`; the binary hands it to `livefire_faults::external`). Runs on a thread of
/// its own, so it works whether or not the caller is inside a runtime.
pub fn undo(record: &UndoRecord) -> Result<String, String> {
    let UndoRecord::KubernetesRun {
        context,
        namespace,
        run,
        ..
    } = record.clone()
    else {
        return Err(format!("not a Kubernetes record: {}", record.describe()));
    };
    let work = move || -> Result<String, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        rt.block_on(async {
            let delete = async {
                let cluster = Cluster::connect(context.as_deref(), Some(&namespace)).await?;
                cluster.delete_run(&run).await
            };
            match tokio::time::timeout(UNDO_TIMEOUT, delete).await {
                Ok(done) => done.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "the Kubernetes API did not answer within {}s; run `livefire recover` again",
                    UNDO_TIMEOUT.as_secs()
                )),
            }
        })
    };
    std::thread::spawn(work)
        .join()
        .unwrap_or_else(|_| Err("deleting the Kubernetes objects panicked".into()))
}

/// How long `undo` waits for the API.
const UNDO_TIMEOUT: Duration = Duration::from_secs(60);

fn refused(e: ClusterError) -> LaunchError {
    LaunchError::Refused(e.to_string())
}

fn start_error(e: ClusterError, count: u32) -> LaunchError {
    match e {
        ClusterError::NeverStarts { index, pod, reason } => LaunchError::Start {
            index,
            count,
            reason: format!("pod {pod}: {reason}; the run's objects were deleted"),
        },
        other => LaunchError::Refused(other.to_string()),
    }
}
