//! Probes: each samples one fact and judges it against `expect`. A failed sample is data
//! (`Sample { ok: false, detail }`), never an error that stops the run.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use livefire_spec::{Expect, Probe};
use tokio::net::TcpStream;

/// One sample of a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub ok: bool,
    pub detail: String,
    pub latency: Duration,
}

/// Why a sample failed: a measurement the sample's `detail` shows, not an error that
/// stops the run. Each message says what was seen and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no answer within {0}")]
    NoAnswer(livefire_spec::values::Duration),
    #[error("connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("connect to {0} timed out")]
    ConnectTimeout(String),
    #[error("connected to {0}, expected it to fail")]
    Connected(String),
    #[error(transparent)]
    Exec(#[from] livefire_faults::exec::ExecError),
    #[error("probe task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("bad connection string: {0}")]
    Dsn(String),
    #[error("connect to {dsn}: {message}")]
    SqlConnect { dsn: String, message: String },
    #[error("query failed: {0}")]
    Query(String),
    #[error("query answered {0}, expected an error containing {1:?}")]
    NoError(String, String),
    #[error("error does not contain {want:?}: {got}")]
    ErrorLacks { got: String, want: String },
    #[error("{got} rows, expected {want}")]
    Rows { got: u64, want: u64 },
    #[error("no row, expected a first value of {0}")]
    NoValue(serde_json::Value),
    #[error("first value is {got}, expected {want}")]
    Value {
        got: String,
        want: serde_json::Value,
    },
    #[error("took {ms} ms, expected below {limit}")]
    TooSlow {
        ms: u128,
        limit: livefire_spec::values::Duration,
    },
    #[error("bad URL {url}: {source}")]
    Url {
        url: String,
        source: hyper::http::uri::InvalidUri,
    },
    #[error("{0}: only http:// probes are built in this livefire yet")]
    NotHttp(String),
    #[error("{0} has no host")]
    NoHost(String),
    #[error("HTTP handshake with {address}: {source}")]
    Handshake {
        address: String,
        source: hyper::Error,
    },
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("request to {url}: {source}")]
    Send { url: String, source: hyper::Error },
    #[error("reading the body of {url}: {source}")]
    Body {
        url: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("status {got}, expected {want}")]
    Status { got: u16, want: u16 },
    #[error("body does not contain {0:?}")]
    BodyLacks(String),
    #[error("body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error(transparent)]
    Path(#[from] livefire_core::jsonpath::PathError),
    #[error("{path} is {got}, expected {want}")]
    Json {
        path: String,
        got: serde_json::Value,
        want: serde_json::Value,
    },
    #[error("{0} is absent")]
    JsonAbsent(String),
    #[error("status {0}: answered, expected it to fail")]
    Answered(u16),
    #[error("exited {code}, expected {want}: {stderr}")]
    Exited {
        code: i32,
        want: i32,
        stderr: String,
    },
    #[error("killed by a signal")]
    Signal,
    #[error("stdout does not contain {0:?}")]
    StdoutLacks(String),
}

/// Largest response body a probe reads.
const MAX_BODY: usize = 1 << 20;

/// How long one sample of `probe` may take: its `timeout:`, else its kind's default
/// (2 s for http and tcp, 10 s for a command, 5 s for sql). The plan asks this once.
pub fn timeout(probe: &Probe) -> Duration {
    let (written, default) = match probe {
        Probe::Http(h) => (h.timeout, Duration::from_secs(2)),
        Probe::Tcp(t) => (t.timeout, Duration::from_secs(2)),
        Probe::Command(c) => (c.timeout, Duration::from_secs(10)),
        Probe::Sql(s) => (s.timeout, Duration::from_secs(5)),
    };
    written.map(|d| d.0).unwrap_or(default)
}

/// Takes one sample, bounded by `timeout` (the plan's, see [`timeout`]), and judges it.
pub async fn sample(
    probe: &Probe,
    timeout: Duration,
    expect: &Expect,
    cwd: Option<&str>,
) -> Sample {
    let start = Instant::now();
    let result = match probe {
        Probe::Http(h) => match tokio::time::timeout(timeout, http(h)).await {
            Ok(Ok((status, body))) => judge_http(status, &body, expect),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Failure::NoAnswer(livefire_spec::values::Duration(timeout))),
        },
        Probe::Tcp(t) => {
            let connected =
                match tokio::time::timeout(timeout, TcpStream::connect(&t.address)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(source)) => Err(Failure::Connect {
                        address: t.address.clone(),
                        source,
                    }),
                    Err(_) => Err(Failure::ConnectTimeout(t.address.clone())),
                };
            match (connected, expect.ok.unwrap_or(true)) {
                (Ok(()), true) => Ok(format!("connected to {}", t.address)),
                (Err(e), false) => Ok(format!("refused as expected ({e})")),
                (Ok(()), false) => Err(Failure::Connected(t.address.clone())),
                (Err(e), true) => Err(e),
            }
        }
        Probe::Command(c) => {
            let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            let (run, user, cwd) = (c.run.clone(), c.user.clone(), cwd.map(str::to_owned));
            let out = tokio::task::spawn_blocking(move || {
                livefire_faults::exec::run(&run, user.as_deref(), cwd.as_deref(), timeout)
            })
            .await;
            match out {
                Ok(Ok(out)) => judge_command(&out, expect),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(e.into()),
            }
        }
        Probe::Sql(s) => match tokio::time::timeout(timeout, sql(s)).await {
            Ok(answer) => judge_sql(answer, expect),
            Err(_) => Err(Failure::NoAnswer(livefire_spec::values::Duration(timeout))),
        },
    };
    let latency = start.elapsed();
    let mut result = result;
    if let (Ok(_), Some(limit)) = (&result, expect.latency_below)
        && latency >= limit.0
    {
        result = Err(Failure::TooSlow {
            ms: latency.as_millis(),
            limit,
        });
    }
    match result {
        Ok(detail) => Sample {
            ok: true,
            detail,
            latency,
        },
        Err(failure) => Sample {
            ok: false,
            detail: failure.to_string(),
            latency,
        },
    }
}

async fn http(h: &livefire_spec::HttpProbe) -> Result<(u16, Bytes), Failure> {
    let uri: hyper::Uri = h.url.parse().map_err(|source| Failure::Url {
        url: h.url.clone(),
        source,
    })?;
    if uri.scheme_str() != Some("http") {
        return Err(Failure::NotHttp(h.url.clone()));
    }
    let host = uri
        .host()
        .ok_or_else(|| Failure::NoHost(h.url.clone()))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let address = format!("{host}:{port}");
    let stream = TcpStream::connect((host.trim_matches(|c| c == '[' || c == ']'), port))
        .await
        .map_err(|source| Failure::Connect {
            address: address.clone(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| Failure::Handshake { address, source })?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(h.method.as_deref().unwrap_or("GET"))
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::USER_AGENT, "livefire-probe");
    for (k, v) in &h.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let body = Full::new(Bytes::from(h.body.clone().unwrap_or_default()));
    let req = req.body(body)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|source| Failure::Send {
            url: h.url.clone(),
            source,
        })?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|source| Failure::Body {
            url: h.url.clone(),
            source,
        })?
        .to_bytes();
    Ok((status, body))
}

/// What a sql probe's query answered: the rows of its last statement that returned rows,
/// each column as PostgreSQL's text form (`None` for NULL), as psql shows them.
type Rows = Vec<Vec<Option<String>>>;

/// Runs `s.query` over the simple query protocol (text results, several statements
/// allowed) in a session of its own. `Err` is a failure to connect, or the server's
/// error: whether that is a failure is `expect`'s call (`error_contains`).
async fn sql(s: &livefire_spec::SqlProbe) -> Result<Rows, Failure> {
    use tokio_postgres::SimpleQueryMessage;
    let mut config: tokio_postgres::Config = s.dsn.parse().map_err(|e| Failure::Dsn(said(&e)))?;
    config.application_name("livefire/probe");
    let (client, conn) =
        config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Failure::SqlConnect {
                dsn: where_to(&config),
                message: said(&e),
            })?;
    let conn = tokio::spawn(conn);
    let answer = client.simple_query(&s.query).await;
    drop(client);
    // The connection task ends once the client is gone; the session closes with it.
    let _ = conn.await;
    let (mut last, mut current) = (Vec::new(), Vec::new());
    for message in answer.map_err(|e| Failure::Query(said(&e)))? {
        match message {
            SimpleQueryMessage::Row(row) => current.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            SimpleQueryMessage::CommandComplete(_) if !current.is_empty() => {
                last = std::mem::take(&mut current);
            }
            _ => {}
        }
    }
    if !current.is_empty() {
        last = current;
    }
    Ok(last)
}

fn judge_sql(answer: Result<Rows, Failure>, expect: &Expect) -> Result<String, Failure> {
    // `ok: false` expects any error, as `error_contains` expects one naming its text.
    let want_error = match (&expect.error_contains, expect.ok) {
        (Some(text), _) => Some(text.as_str()),
        (None, Some(false)) => Some(""),
        (None, _) => None,
    };
    let rows = match (answer, want_error) {
        (Err(e), Some(want)) => {
            let got = e.to_string();
            return if got.contains(want) {
                Ok(got)
            } else {
                Err(Failure::ErrorLacks {
                    got,
                    want: want.to_owned(),
                })
            };
        }
        (Err(e), None) => return Err(e),
        (Ok(rows), Some(want)) => {
            return Err(Failure::NoError(count(rows.len()), want.to_owned()));
        }
        (Ok(rows), None) => rows,
    };
    if let Some(want) = expect.rows
        && rows.len() as u64 != want
    {
        return Err(Failure::Rows {
            got: rows.len() as u64,
            want,
        });
    }
    let first = rows.first().and_then(|r| r.first());
    if let Some(want) = &expect.value {
        match first {
            None => return Err(Failure::NoValue(want.clone())),
            Some(got) if sql_equal(got.as_deref(), want) => {}
            Some(got) => {
                return Err(Failure::Value {
                    got: got.clone().unwrap_or_else(|| "NULL".into()),
                    want: want.clone(),
                });
            }
        }
    }
    Ok(match first {
        Some(v) => format!(
            "{}, first value {}",
            count(rows.len()),
            v.as_deref().unwrap_or("NULL")
        ),
        None => count(rows.len()),
    })
}

fn count(rows: usize) -> String {
    if rows == 1 {
        "1 row".into()
    } else {
        format!("{rows} rows")
    }
}

/// Whether PostgreSQL's text form of a value (`None`: NULL) is what `want` says, as a
/// YAML author writes it: `3` matches `3` and `3.0`, `true` matches `t`, a list or map
/// matches a json column holding it. NULL matches
/// nothing (`value: null` is no expectation at all; a query can say `is null`).
fn sql_equal(got: Option<&str>, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (got, want) {
        (None, _) | (Some(_), Value::Null) => false,
        (Some(g), Value::Bool(b)) => {
            matches!((g, b), ("t" | "true", true) | ("f" | "false", false))
        }
        (Some(g), Value::Number(n)) => g.parse::<f64>().ok() == n.as_f64(),
        (Some(g), Value::String(s)) => g == s,
        // A json or jsonb column: compared as JSON.
        (Some(g), other) => serde_json::from_str::<Value>(g).is_ok_and(|v| v == *other),
    }
}

/// The hosts and ports a DSN names, for messages: never its password.
fn where_to(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let db = config.get_dbname().unwrap_or("");
    format!(
        "host={} port={} dbname={db}",
        hosts.join(","),
        ports.join(",")
    )
}

/// A PostgreSQL error as the server said it (with its SQLSTATE), else the client's
/// error and its causes.
fn said(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(&format!(": {c}"));
        }
        source = cause.source();
    }
    s
}

fn judge_http(status: u16, body: &[u8], expect: &Expect) -> Result<String, Failure> {
    let text = String::from_utf8_lossy(body);
    if let Some(want) = expect.status
        && status != want
    {
        return Err(Failure::Status { got: status, want });
    }
    if let Some(needle) = &expect.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(Failure::BodyLacks(needle.clone()));
    }
    if !expect.json.is_empty() {
        let doc: serde_json::Value = serde_json::from_slice(body).map_err(Failure::NotJson)?;
        for (path, want) in &expect.json {
            match json_path(&doc, path)? {
                Some(got) if json_equal(got, want) => {}
                Some(got) => {
                    return Err(Failure::Json {
                        path: path.clone(),
                        got: got.clone(),
                        want: want.clone(),
                    });
                }
                None => return Err(Failure::JsonAbsent(path.clone())),
            }
        }
    }
    if expect.ok == Some(false) {
        return Err(Failure::Answered(status));
    }
    Ok(format!("status {status}"))
}

fn judge_command(out: &livefire_faults::exec::Output, expect: &Expect) -> Result<String, Failure> {
    let want = expect.exit_code.unwrap_or(0);
    match out.code {
        Some(code) if code == want => {}
        Some(code) => {
            return Err(Failure::Exited {
                code,
                want,
                stderr: out.stderr.trim().to_owned(),
            });
        }
        None => return Err(Failure::Signal),
    }
    if let Some(needle) = &expect.stdout_contains
        && !out.stdout.contains(needle.as_str())
    {
        return Err(Failure::StdoutLacks(needle.clone()));
    }
    Ok(format!("exited {want}"))
}

/// Equality that reads `"200"` and `200` alike, as YAML authors expect.
fn json_equal(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    if got == want {
        return true;
    }
    match (got, want) {
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => a.as_f64() == b.as_f64(),
        // A number or boolean read from a probe's output compares with its text form.
        #[allow(
            clippy::cmp_owned,
            reason = "the text form of a JSON value exists only as an owned String"
        )]
        (a, serde_json::Value::String(b)) => a.to_string() == *b,
        _ => false,
    }
}

/// Evaluates a JSON path (`$.a.b[0]`, `$['k-1']`) with the load engine's parser, so a
/// probe and a load check read paths the same way.
pub fn json_path<'a>(
    doc: &'a serde_json::Value,
    path: &str,
) -> Result<Option<&'a serde_json::Value>, livefire_core::jsonpath::PathError> {
    let steps = livefire_load::check::parse_path(path)?;
    Ok(livefire_load::check::lookup(doc, &steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let doc = serde_json::json!({"a": {"b": [1, {"c": "x"}]}, "k-1": true});
        assert_eq!(json_path(&doc, "$.a.b[0]"), Ok(Some(&serde_json::json!(1))));
        assert_eq!(
            json_path(&doc, "$.a.b[1].c"),
            Ok(Some(&serde_json::json!("x")))
        );
        assert_eq!(
            json_path(&doc, "$[\"k-1\"]"),
            Ok(Some(&serde_json::json!(true)))
        );
        assert_eq!(json_path(&doc, "$.nope"), Ok(None));
        assert!(
            json_path(&doc, "a.b")
                .unwrap_err()
                .to_string()
                .contains("must start with `$`")
        );
    }

    #[tokio::test]
    async fn tcp_probe_sees_open_and_closed_ports() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let probe = Probe::Tcp(livefire_spec::TcpProbe {
            address: addr.clone(),
            timeout: None,
        });
        let expect = Expect {
            ok: Some(true),
            ..Default::default()
        };
        assert!(sample(&probe, timeout(&probe), &expect, None).await.ok);
        // Port 1 (tcpmux) is closed on any machine these tests run on; a port just
        // released could be taken again by a parallel test.
        let closed = Probe::Tcp(livefire_spec::TcpProbe {
            address: "127.0.0.1:1".into(),
            timeout: None,
        });
        let s = sample(&closed, timeout(&closed), &expect, None).await;
        assert!(!s.ok, "{s:?}");
        drop(listener);
    }

    #[tokio::test]
    async fn command_probe_judges_exit_code_and_stdout() {
        let probe = Probe::Command(livefire_spec::CommandProbe {
            run: "echo hello; exit 3".into(),
            user: None,
            timeout: None,
        });
        let expect = Expect {
            exit_code: Some(3),
            stdout_contains: Some("hello".into()),
            ..Default::default()
        };
        assert!(sample(&probe, timeout(&probe), &expect, None).await.ok);
        let expect = Expect {
            exit_code: Some(0),
            ..Default::default()
        };
        assert!(!sample(&probe, timeout(&probe), &expect, None).await.ok);
    }
}
