//! `livefire run --metrics-listen ADDR`: the run's live metrics in the Prometheus text
//! format at `GET /metrics`, so an existing Grafana board can watch the drill. Values
//! are those the referee sees: the last complete second of each load, findings so far,
//! the active faults and whether the hypothesis still holds.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use livefire_core::metrics::MetricSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the exporter reads.
#[derive(Clone)]
pub struct Sources {
    pub metrics: Arc<Vec<Arc<dyn MetricSource>>>,
    pub loads: Vec<String>,
    pub campaigns: Vec<String>,
    /// The names of the active faults.
    pub active: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
    pub deviated: Arc<AtomicBool>,
    pub journal: crate::journal::Journal,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text.
pub fn render(s: &Sources) -> String {
    let mut out = String::new();
    let now = s.journal.now_ms();
    let to = now / 1000 * 1000;
    let from = to.saturating_sub(1000);
    let value = |m: &str| s.metrics.iter().find_map(|src| src.value(m, from, to));
    let _ = writeln!(
        out,
        "# HELP livefire_elapsed_seconds Time since the run started.\n# TYPE livefire_elapsed_seconds gauge\nlivefire_elapsed_seconds {}",
        now as f64 / 1e3
    );
    let gauges: [(&str, &str, &str); 3] = [
        (
            "livefire_load_rps",
            "Completed requests per second, last complete second.",
            "rps",
        ),
        (
            "livefire_load_error_rate",
            "Share of requests that failed, last complete second.",
            "error_rate",
        ),
        (
            "livefire_load_rate_achieved",
            "Sent / intended sends, last complete second.",
            "rate_achieved",
        ),
    ];
    for (name, help, suffix) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for load in &s.loads {
            if let Some(v) = value(&format!("{load}.{suffix}")) {
                let _ = writeln!(out, "{name}{{load=\"{}\"}} {v}", escape(load));
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP livefire_load_latency_seconds Latency from the intended send time, last complete second.\n# TYPE livefire_load_latency_seconds gauge"
    );
    for load in &s.loads {
        for (q, suffix) in [
            ("0.5", "p50"),
            ("0.9", "p90"),
            ("0.99", "p99"),
            ("0.999", "p999"),
        ] {
            if let Some(v) = value(&format!("{load}.latency.{suffix}")) {
                let _ = writeln!(
                    out,
                    "livefire_load_latency_seconds{{load=\"{}\",quantile=\"{q}\"}} {v}",
                    escape(load)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP livefire_findings Findings so far, by campaign.\n# TYPE livefire_findings gauge"
    );
    for c in &s.campaigns {
        let v = value(&format!("{c}.findings")).unwrap_or(0.0);
        let _ = writeln!(out, "livefire_findings{{campaign=\"{}\"}} {v}", escape(c));
    }
    let _ = writeln!(
        out,
        "# HELP livefire_fault_active Faults applied and not yet rolled back.\n# TYPE livefire_fault_active gauge"
    );
    for a in (s.active)().iter() {
        let _ = writeln!(out, "livefire_fault_active{{activity=\"{}\"}} 1", escape(a));
    }
    let dev = u8::from(s.deviated.load(Ordering::SeqCst));
    let _ = writeln!(
        out,
        "# HELP livefire_hypothesis_deviated 1 once the hypothesis stopped holding.\n# TYPE livefire_hypothesis_deviated gauge\nlivefire_hypothesis_deviated {dev}"
    );
    out
}

/// Serves `GET /metrics` on an already bound listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, sources: Sources) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let sources = sources.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if head.starts_with("GET /metrics") {
                ("200 OK", render(&sources))
            } else {
                (
                    "404 Not Found",
                    "livefire serves GET /metrics\n".to_string(),
                )
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        });
    }
}
