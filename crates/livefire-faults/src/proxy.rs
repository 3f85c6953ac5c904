//! What every proxy fault (`kinds::toxics`, `kinds::proxy_down`) does to a proxy: on a
//! proxy the run owns (an in-process `livefire_proxy::Proxy`, which dies with the run,
//! so a crash never leaves a toxic behind) or on an existing `livefire proxy` /
//! Toxiproxy server, through its HTTP API (undone via the ledger).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use livefire_core::undo::ProxyOwner;
use livefire_proxy::{Proxy, Toxic};

/// The proxies this run owns, by listen address as written in the experiment.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub proxies: BTreeMap<String, Arc<Proxy>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyFaultError {
    #[error("proxy API {url}: {source}")]
    Api { url: String, source: ApiError },
    #[error("the run's proxy on {0} is not running")]
    NotRunning(String),
    #[error("proxy {listen}: {source}")]
    Proxy {
        listen: String,
        source: livefire_proxy::ProxyError,
    },
}

/// Why a call to an external proxy server's API failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("only http:// proxy APIs are supported")]
    NotHttp,
    #[error("{addr}: {source}")]
    Resolve {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}: no address")]
    NoAddress(String),
    #[error("connect {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("send to {addr}: {source}")]
    Send {
        addr: String,
        source: std::io::Error,
    },
    #[error("read from {addr}: {source}")]
    Read {
        addr: String,
        source: std::io::Error,
    },
    #[error("GET /proxies/{proxy} answered no proxy JSON: {source}")]
    NotProxyJson {
        proxy: String,
        source: serde_json::Error,
    },
    #[error("{0}: not an HTTP answer")]
    NotHttpAnswer(String),
    #[error("{method} {path} answered {status}: {body}")]
    Status {
        method: String,
        path: String,
        status: u16,
        body: String,
    },
}

/// What a proxy fault does: add a toxic, or take the proxy down.
#[derive(Debug, Clone)]
pub enum Change {
    Toxic(Toxic),
    Down,
}

/// Applies a change.
pub fn apply(
    owner: &ProxyOwner,
    proxy_name: &str,
    change: &Change,
    live: &Live,
) -> Result<String, ProxyFaultError> {
    match owner {
        ProxyOwner::Run { listen } => {
            let p = live
                .proxies
                .get(listen)
                .ok_or_else(|| ProxyFaultError::NotRunning(listen.clone()))?;
            let err = |source| ProxyFaultError::Proxy {
                listen: listen.clone(),
                source,
            };
            match change {
                Change::Toxic(t) => {
                    p.add_toxic(t.clone()).map_err(err)?;
                    Ok(format!(
                        "toxic `{}` ({}) added on {listen}",
                        t.name,
                        t.kind.type_name()
                    ))
                }
                Change::Down => {
                    p.set_enabled(false).map_err(err)?;
                    Ok(format!("proxy on {listen} down"))
                }
            }
        }
        ProxyOwner::Api { url } => match change {
            Change::Toxic(t) => {
                expect(
                    url,
                    "POST",
                    &format!("/proxies/{proxy_name}/toxics"),
                    Some(&t.to_json()),
                    &[200],
                )?;
                Ok(format!(
                    "toxic `{}` added to `{proxy_name}` on {url}",
                    t.name
                ))
            }
            Change::Down => {
                expect(
                    url,
                    "POST",
                    &format!("/proxies/{proxy_name}"),
                    Some(&serde_json::json!({"enabled": false})),
                    &[200],
                )?;
                Ok(format!("proxy `{proxy_name}` on {url} disabled"))
            }
        },
    }
}

/// Undoes a change: removes the toxic, or enables the proxy again. A run-owned proxy
/// that is gone (its run ended) has nothing left to undo.
pub fn undo(
    owner: &ProxyOwner,
    proxy_name: &str,
    toxic: Option<&str>,
    live: Option<&Live>,
) -> Result<String, ProxyFaultError> {
    match owner {
        ProxyOwner::Run { listen } => {
            let Some(p) = live.and_then(|l| l.proxies.get(listen)) else {
                return Ok(format!(
                    "the run's proxy on {listen} is gone with its run; nothing to undo"
                ));
            };
            let err = |source| ProxyFaultError::Proxy {
                listen: listen.clone(),
                source,
            };
            match toxic {
                Some(name) => match p.remove_toxic(name) {
                    Ok(()) | Err(livefire_proxy::ProxyError::ToxicNotFound(_)) => {
                        Ok(format!("toxic `{name}` removed on {listen}"))
                    }
                    Err(e) => Err(err(e)),
                },
                None => {
                    p.set_enabled(true).map_err(err)?;
                    Ok(format!("proxy on {listen} up again"))
                }
            }
        }
        ProxyOwner::Api { url } => match toxic {
            Some(name) => {
                // 404: someone removed it already; the state to restore is there.
                expect(
                    url,
                    "DELETE",
                    &format!("/proxies/{proxy_name}/toxics/{name}"),
                    None,
                    &[200, 204, 404],
                )?;
                Ok(format!(
                    "toxic `{name}` removed from `{proxy_name}` on {url}"
                ))
            }
            None => {
                expect(
                    url,
                    "POST",
                    &format!("/proxies/{proxy_name}"),
                    Some(&serde_json::json!({"enabled": true})),
                    &[200],
                )?;
                Ok(format!("proxy `{proxy_name}` on {url} enabled again"))
            }
        },
    }
}

/// The proxy as Toxiproxy's API shows it: `{name, listen, upstream, enabled, toxics}`.
pub fn state(
    owner: &ProxyOwner,
    proxy_name: &str,
    live: &Live,
) -> Result<serde_json::Value, ProxyFaultError> {
    match owner {
        ProxyOwner::Run { listen } => live
            .proxies
            .get(listen)
            .map(|p| p.to_json())
            .ok_or_else(|| ProxyFaultError::NotRunning(listen.clone())),
        ProxyOwner::Api { url } => {
            let text = expect(url, "GET", &format!("/proxies/{proxy_name}"), None, &[200])?;
            serde_json::from_str(&text).map_err(|source| ProxyFaultError::Api {
                url: url.clone(),
                source: ApiError::NotProxyJson {
                    proxy: proxy_name.to_owned(),
                    source,
                },
            })
        }
    }
}

/// Checks that an external proxy exists (before the run applies anything).
pub fn check_exists(url: &str, proxy_name: &str) -> Result<(), ProxyFaultError> {
    expect(url, "GET", &format!("/proxies/{proxy_name}"), None, &[200]).map(|_| ())
}

fn expect(
    url: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    ok: &[u16],
) -> Result<String, ProxyFaultError> {
    let (status, text) =
        request(url, method, path, body).map_err(|source| ProxyFaultError::Api {
            url: url.to_owned(),
            source,
        })?;
    if ok.contains(&status) {
        Ok(text)
    } else {
        Err(ProxyFaultError::Api {
            url: url.to_owned(),
            source: ApiError::Status {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                body: text.trim().to_owned(),
            },
        })
    }
}

/// One blocking HTTP/1.1 request with `Connection: close`; returns status and body.
fn request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, String), ApiError> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or(ApiError::NotHttp)?
        .trim_end_matches('/');
    let addr = hostport.split('/').next().unwrap_or(hostport);
    let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|source| ApiError::Resolve {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    let sock = addrs
        .first()
        .ok_or_else(|| ApiError::NoAddress(addr.to_owned()))?;
    let mut stream =
        TcpStream::connect_timeout(sock, Duration::from_secs(5)).map_err(|source| {
            ApiError::Connect {
                addr: addr.to_owned(),
                source,
            }
        })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: livefire\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(payload.as_bytes()))
        .map_err(|source| ApiError::Send {
            addr: addr.to_owned(),
            source,
        })?;
    let mut raw = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut raw)
        .map_err(|source| ApiError::Read {
            addr: addr.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::NotHttpAnswer(addr.to_owned()))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
