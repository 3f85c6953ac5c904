//! Test support: a small Kubernetes API server on 127.0.0.1, enough of one for the
//! launcher: access reviews (with rights taken away on purpose), ConfigMaps and Jobs
//! created, listed and deleted, the Job's pods (running, or stuck on an image that
//! cannot be pulled) and their logs. The launcher talks to it over real HTTP through
//! kube's client, exactly as to a cluster.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the Job's pods do.
#[derive(Debug, Clone)]
pub enum Pods {
    /// Every pod runs, prints these lines (the same for each, with its index put in for
    /// `{i}`) and exits 0.
    Run(Vec<String>),
    /// Every pod waits with this container reason and message, forever.
    Stuck { reason: String, message: String },
    /// Every pod prints `lines` and keeps running (its log stays open) until its Job
    /// is deleted, when it prints `last` (an agent's answer to SIGTERM) and ends.
    UntilDeleted { lines: Vec<String>, last: String },
}

/// A response body: the whole of it at once, or a log that goes on (chunks as they
/// come, over a channel).
pub struct LogBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for LogBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn whole(bytes: Bytes) -> LogBody {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = tx.send(bytes);
    LogBody(rx)
}

/// What the fake cluster holds and was asked.
#[derive(Debug, Default)]
pub struct State {
    pub configmaps: BTreeMap<String, Value>,
    pub jobs: BTreeMap<String, Value>,
    pub pods: BTreeMap<String, Value>,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
    /// The body of every DELETE, by path.
    pub deletes: Vec<(String, Value)>,
}

/// A running fake API.
#[derive(Clone)]
pub struct FakeApi {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

struct Config {
    denied: Vec<String>,
    pods: Pods,
}

impl FakeApi {
    /// Serves on an ephemeral port; `denied` are rights the user lacks (`create jobs`,
    /// `get pods/log`).
    pub async fn start(denied: &[&str], pods: Pods) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let config = Arc::new(Config {
            denied: denied.iter().map(|s| s.to_string()).collect(),
            pods,
        });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (st, config) = (st.clone(), config.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (st, config) = (st.clone(), config.clone());
                        async move { Ok::<_, Infallible>(answer(req, &st, &config).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), service)
                        .await;
                });
            }
        });
        FakeApi { url, state }
    }

    /// A cluster handle on it, in namespace `ns`.
    pub fn cluster(&self, ns: &str) -> livefire_k8s::cluster::Cluster {
        let config = kube::Config::new(self.url.parse().expect("url"));
        livefire_k8s::cluster::Cluster::from_config(config, Some(ns)).expect("client")
    }
}

fn reply(status: u16, body: Value) -> Response<LogBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(whole(Bytes::from(body.to_string())))
        .expect("response")
}

fn status(code: u16, reason: &str, message: &str) -> Response<LogBody> {
    reply(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// Whether `obj`'s labels match a `k=v,k2=v2` selector.
fn matches(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": if kind == "JobList" { "batch/v1" } else { "v1" }, "kind": kind,
           "metadata": {"resourceVersion": "1"}, "items": items})
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    shared: &Arc<Mutex<State>>,
    config: &Config,
) -> Response<LogBody> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let selector = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("labelSelector="))
        .map(|s| {
            s.replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
        .unwrap_or_default();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = shared.lock().expect("state");
    st.requests.push(format!("{method} {path}"));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        (
            "POST",
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => {
            let attrs = &body["spec"]["resourceAttributes"];
            let mut right = format!(
                "{} {}",
                attrs["verb"].as_str().unwrap_or(""),
                attrs["resource"].as_str().unwrap_or("")
            );
            if let Some(sub) = attrs["subresource"].as_str() {
                right = format!("{right}/{sub}");
            }
            let mut out = body.clone();
            out["status"] = json!({"allowed": !config.denied.contains(&right)});
            reply(201, out)
        }
        ("POST", ["api", "v1", "namespaces", _ns, "configmaps"]) => {
            let name = body["metadata"]["name"].as_str().unwrap_or("").to_owned();
            if st.configmaps.contains_key(&name) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("configmaps \"{name}\" already exists"),
                );
            }
            st.configmaps.insert(name, body.clone());
            reply(201, body)
        }
        ("POST", ["apis", "batch", "v1", "namespaces", ns, "jobs"]) => {
            let name = body["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let n = body["spec"]["completions"].as_u64().unwrap_or(1);
            for i in 0..n {
                let pod_name = format!("{name}-{i}-x7k2p");
                let status = match &config.pods {
                    Pods::Run(_) | Pods::UntilDeleted { .. } => json!({"phase": "Running"}),
                    Pods::Stuck { reason, message } => json!({"phase": "Pending",
                        "containerStatuses": [{"name": "agent", "image": "x", "imageID": "", "ready": false,
                            "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}]}),
                };
                let pod = json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod_name, "namespace": ns,
                        "labels": {"job-name": name, "batch.kubernetes.io/job-completion-index": i.to_string()},
                        "annotations": {"batch.kubernetes.io/job-completion-index": i.to_string()}},
                    "spec": {"containers": [{"name": "agent"}], "nodeName": format!("node-{}", i % 2)},
                    "status": status});
                st.pods.insert(pod_name, pod);
            }
            st.jobs.insert(name, body.clone());
            reply(201, body)
        }
        ("GET", ["api", "v1", "namespaces", _ns, "pods"]) => {
            let items = st
                .pods
                .values()
                .filter(|p| matches(p, &selector))
                .cloned()
                .collect();
            reply(200, list("PodList", items))
        }
        ("GET", ["api", "v1", "namespaces", _ns, "pods", name]) => match st.pods.get(*name) {
            Some(p) => reply(200, p.clone()),
            None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
        },
        ("GET", ["api", "v1", "namespaces", _ns, "pods", name, "log"]) => {
            let Some(pod) = st.pods.get_mut(*name) else {
                return status(404, "NotFound", &format!("pods \"{name}\" not found"));
            };
            let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap_or("0")
                .to_owned();
            let lines = match &config.pods {
                Pods::Run(lines) => lines
                    .iter()
                    .map(|l| l.replace("{i}", &index))
                    .collect::<Vec<_>>(),
                Pods::Stuck { .. } => Vec::new(),
                Pods::UntilDeleted { lines, last } => {
                    // Its lines now, then `last` once its Job is gone.
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                    let text: String = lines
                        .iter()
                        .map(|l| l.replace("{i}", &index) + "\n")
                        .collect();
                    let _ = tx.send(Bytes::from(text));
                    let last = last.replace("{i}", &index) + "\n";
                    let job = pod["metadata"]["labels"]["job-name"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            if !shared.lock().expect("state").jobs.contains_key(&job) {
                                let _ = tx.send(Bytes::from(last));
                                return;
                            }
                        }
                    });
                    return Response::builder()
                        .status(200)
                        .header("content-type", "text/plain")
                        .body(LogBody(rx))
                        .expect("response");
                }
            };
            // The agent is done once its log is read to the end.
            pod["status"] = json!({"phase": "Succeeded", "containerStatuses": [{"name": "agent", "image": "x",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
            Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(whole(Bytes::from(lines.join("\n") + "\n")))
                .expect("response")
        }
        ("GET", ["apis", "batch", "v1", "namespaces", _ns, "jobs"]) => {
            let items = st
                .jobs
                .values()
                .filter(|j| matches(j, &selector))
                .cloned()
                .collect();
            reply(200, list("JobList", items))
        }
        ("GET", ["api", "v1", "namespaces", _ns, "configmaps"]) => {
            let items = st
                .configmaps
                .values()
                .filter(|c| matches(c, &selector))
                .cloned()
                .collect();
            reply(200, list("ConfigMapList", items))
        }
        ("DELETE", ["apis", "batch", "v1", "namespaces", _ns, "jobs", name]) => {
            st.deletes.push((path.clone(), body));
            match st.jobs.remove(*name) {
                Some(job) => {
                    st.pods
                        .retain(|_, p| p["metadata"]["labels"]["job-name"].as_str() != Some(*name));
                    reply(200, job)
                }
                None => status(404, "NotFound", &format!("jobs.batch \"{name}\" not found")),
            }
        }
        ("DELETE", ["api", "v1", "namespaces", _ns, "configmaps", name]) => {
            st.deletes.push((path.clone(), body));
            match st.configmaps.remove(*name) {
                Some(cm) => reply(200, cm),
                None => status(404, "NotFound", &format!("configmaps \"{name}\" not found")),
            }
        }
        _ => status(
            404,
            "NotFound",
            &format!("the fake API has no {method} {path}"),
        ),
    }
}
