//! A proxy: one listener, one upstream, two toxic chains, and the handle that changes
//! them at runtime. Dropping the handle stops the listener and cuts every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::ProxyError;
use crate::link;
use crate::toxic::{Stream, Toxic};

/// What a proxy is: Toxiproxy's proxy fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub name: String,
    /// `host:port` to listen on; port 0 picks a free port, shown afterwards by
    /// [`Proxy::listen`].
    pub listen: String,
    /// `host:port` every accepted connection is forwarded to.
    pub upstream: String,
    pub enabled: bool,
}

impl ProxyConfig {
    pub fn new(
        name: impl Into<String>,
        listen: impl Into<String>,
        upstream: impl Into<String>,
    ) -> ProxyConfig {
        ProxyConfig {
            name: name.into(),
            listen: listen.into(),
            upstream: upstream.into(),
            enabled: true,
        }
    }
}

/// Byte counters of one direction.
#[derive(Debug, Default)]
pub(crate) struct DirStats {
    pub(crate) received: AtomicU64,
    pub(crate) sent: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) up: DirStats,
    pub(crate) down: DirStats,
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_active: AtomicU64,
    pub(crate) upstream_errors: AtomicU64,
}

/// Counters of one direction at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes read from the source side.
    pub received_bytes: u64,
    /// Bytes written to the destination side.
    pub sent_bytes: u64,
}

/// Counters of a proxy at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub upstream: DirectionStats,
    pub downstream: DirectionStats,
    pub connections_total: u64,
    pub connections_active: u64,
    /// Accepted clients closed because the upstream could not be reached.
    pub upstream_errors: u64,
}

/// A toxic in a chain, with an id that survives updates (so per-connection state
/// such as `limit_data`'s byte count does too).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) toxic: Toxic,
    /// Matching requests seen through the whole proxy (for `http.*`'s `first`).
    pub(crate) hits: Arc<AtomicU64>,
}

pub(crate) type Chain = Arc<Vec<Arc<Entry>>>;

/// Both chains, published to every connection through a `watch` channel.
#[derive(Debug, Default)]
pub(crate) struct Chains {
    up: Chain,
    down: Chain,
}

impl Chains {
    pub(crate) fn get(&self, dir: Stream) -> Chain {
        match dir {
            Stream::Upstream => self.up.clone(),
            Stream::Downstream => self.down.clone(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.up.is_empty() && self.down.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.up.iter().chain(self.down.iter())
    }
}

/// What connections share with the handle.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) chains: watch::Sender<Arc<Chains>>,
    /// Bumped after every chain change: a cheap check for pumps in the middle of a
    /// burst (the `watch` wakes idle ones).
    pub(crate) version: AtomicU64,
    pub(crate) stats: Stats,
    next_toxic_id: AtomicU64,
    next_conn_id: AtomicU64,
}

struct State {
    listen: String,
    upstream: String,
    /// Set while enabled: stopping it closes the listener and cuts connections.
    epoch: Option<Epoch>,
}

/// One enabled period of a proxy.
struct Epoch {
    token: CancellationToken,
    listener: Arc<TcpListener>,
}

impl Epoch {
    /// Stops listening now (not when the accept task next runs), so a connect right
    /// after a disable is refused, then cuts every connection of the period.
    fn stop(self) {
        // Cancel first: the shutdown below wakes a pending accept with EINVAL, and the
        // accept loop must see that it was stopped, not report a failed accept.
        self.token.cancel();
        // On Linux, shutdown() on a listening socket leaves the listening state at once.
        let _ = socket2::SockRef::from(self.listener.as_ref()).shutdown(std::net::Shutdown::Both);
    }
}

/// A running proxy. Dropping it stops it: the listener closes and every connection
/// is cut, so a proxy owned by a run cannot outlive it.
pub struct Proxy {
    shared: Arc<Shared>,
    state: Mutex<State>,
    root: CancellationToken,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(epoch) = self.lock().epoch.take() {
            epoch.stop();
        }
        self.root.cancel();
    }
}

impl Proxy {
    /// Starts a proxy (listening at once when `config.enabled`). Must be called inside
    /// a tokio runtime. Fails when the listen address is taken or malformed.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        Self::start_with(config, CancellationToken::new())
    }

    /// Like [`Proxy::start`], and the proxy also stops when `cancel` is cancelled.
    pub fn start_with(config: ProxyConfig, cancel: CancellationToken) -> Result<Proxy, ProxyError> {
        check_addr(&config.upstream)?;
        let (chains, _) = watch::channel(Arc::new(Chains::default()));
        let proxy = Proxy {
            shared: Arc::new(Shared {
                name: config.name,
                chains,
                version: AtomicU64::new(0),
                stats: Stats::default(),
                next_toxic_id: AtomicU64::new(1),
                next_conn_id: AtomicU64::new(1),
            }),
            state: Mutex::new(State {
                listen: config.listen,
                upstream: config.upstream,
                epoch: None,
            }),
            root: cancel.child_token(),
        };
        if config.enabled {
            let mut st = proxy.lock();
            proxy.start_listener(&mut st)?;
        }
        Ok(proxy)
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The listen address; after the first start, the bound address (port 0 resolved).
    pub fn listen(&self) -> String {
        self.lock().listen.clone()
    }

    pub fn upstream(&self) -> String {
        self.lock().upstream.clone()
    }

    pub fn enabled(&self) -> bool {
        self.lock().epoch.is_some()
    }

    /// Enables (listen again) or disables (refuse new connections, cut open ones).
    pub fn set_enabled(&self, enabled: bool) -> Result<(), ProxyError> {
        let mut st = self.lock();
        match (enabled, st.epoch.is_some()) {
            (true, false) => self.start_listener(&mut st),
            (false, true) => {
                if let Some(epoch) = st.epoch.take() {
                    epoch.stop();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Changes listen and upstream addresses; a change restarts the proxy (open
    /// connections are cut, as Toxiproxy does). Then applies `enabled`.
    pub fn update(&self, listen: &str, upstream: &str, enabled: bool) -> Result<(), ProxyError> {
        check_addr(upstream)?;
        let mut st = self.lock();
        let differs = st.upstream != upstream || !same_listen(&st.listen, listen);
        if differs {
            if let Some(epoch) = st.epoch.take() {
                epoch.stop();
            }
            st.listen = listen.to_string();
            st.upstream = upstream.to_string();
        }
        match (enabled, st.epoch.is_some()) {
            (true, false) => self.start_listener(&mut st),
            (false, true) => {
                if let Some(epoch) = st.epoch.take() {
                    epoch.stop();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Adds a toxic at the end of its stream's chain; it acts on open connections too.
    pub fn add_toxic(&self, toxic: Toxic) -> Result<Toxic, ProxyError> {
        let mut result = Ok(());
        self.modify_chains(|chains| {
            if chains.iter().any(|e| e.toxic.name == toxic.name) {
                result = Err(ProxyError::ToxicExists(toxic.name.clone()));
                return false;
            }
            let id = self.shared.next_toxic_id.fetch_add(1, Ordering::Relaxed);
            let entry = Arc::new(Entry {
                id,
                toxic: toxic.clone(),
                hits: Arc::new(AtomicU64::new(0)),
            });
            let mut next = Chains {
                up: chains.up.clone(),
                down: chains.down.clone(),
            };
            let chain = match toxic.stream {
                Stream::Upstream => &mut next.up,
                Stream::Downstream => &mut next.down,
            };
            let mut v = chain.as_ref().clone();
            v.push(entry);
            *chain = Arc::new(v);
            *chains = Arc::new(next);
            true
        });
        result.map(|()| toxic)
    }

    /// Replaces a toxic (found by name) keeping its place and per-connection state.
    pub fn update_toxic(
        &self,
        name: &str,
        f: impl FnOnce(&Toxic) -> Result<Toxic, ProxyError>,
    ) -> Result<Toxic, ProxyError> {
        let mut result = Err(ProxyError::ToxicNotFound(name.to_string()));
        self.modify_chains(|chains| {
            for dir in [Stream::Upstream, Stream::Downstream] {
                let chain = chains.get(dir);
                let Some(i) = chain.iter().position(|e| e.toxic.name == name) else {
                    continue;
                };
                let mut updated = match f(&chain[i].toxic) {
                    Ok(t) => t,
                    Err(e) => {
                        result = Err(e);
                        return false;
                    }
                };
                // Name and stream identify a toxic; an update cannot move it.
                updated.name = chain[i].toxic.name.clone();
                updated.stream = chain[i].toxic.stream;
                let mut v = chain.as_ref().clone();
                v[i] = Arc::new(Entry {
                    id: chain[i].id,
                    toxic: updated.clone(),
                    hits: chain[i].hits.clone(),
                });
                let mut next = Chains {
                    up: chains.up.clone(),
                    down: chains.down.clone(),
                };
                match dir {
                    Stream::Upstream => next.up = Arc::new(v),
                    Stream::Downstream => next.down = Arc::new(v),
                }
                *chains = Arc::new(next);
                result = Ok(updated);
                return true;
            }
            false
        });
        result
    }

    /// Removes a toxic by name. Open connections stop feeling it at once.
    pub fn remove_toxic(&self, name: &str) -> Result<(), ProxyError> {
        let mut found = false;
        self.modify_chains(|chains| {
            let mut next = Chains {
                up: chains.up.clone(),
                down: chains.down.clone(),
            };
            for chain in [&mut next.up, &mut next.down] {
                if chain.iter().any(|e| e.toxic.name == name) {
                    let v: Vec<_> = chain
                        .iter()
                        .filter(|e| e.toxic.name != name)
                        .cloned()
                        .collect();
                    *chain = Arc::new(v);
                    found = true;
                }
            }
            if found {
                *chains = Arc::new(next);
            }
            found
        });
        if found {
            Ok(())
        } else {
            Err(ProxyError::ToxicNotFound(name.to_string()))
        }
    }

    /// Removes every toxic.
    pub fn reset_toxics(&self) {
        self.modify_chains(|chains| {
            if chains.up.is_empty() && chains.down.is_empty() {
                return false;
            }
            *chains = Arc::new(Chains::default());
            true
        });
    }

    /// The toxics, upstream chain first, each in chain order (Toxiproxy's order).
    pub fn toxics(&self) -> Vec<Toxic> {
        self.shared
            .chains
            .borrow()
            .iter()
            .map(|e| e.toxic.clone())
            .collect()
    }

    pub fn toxic(&self, name: &str) -> Option<Toxic> {
        self.shared
            .chains
            .borrow()
            .iter()
            .find(|e| e.toxic.name == name)
            .map(|e| e.toxic.clone())
    }

    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared.stats;
        let dir = |d: &DirStats| DirectionStats {
            received_bytes: d.received.load(Ordering::Relaxed),
            sent_bytes: d.sent.load(Ordering::Relaxed),
        };
        ProxyStats {
            upstream: dir(&s.up),
            downstream: dir(&s.down),
            connections_total: s.connections_total.load(Ordering::Relaxed),
            connections_active: s.connections_active.load(Ordering::Relaxed),
            upstream_errors: s.upstream_errors.load(Ordering::Relaxed),
        }
    }

    /// Toxiproxy's proxy JSON: `{name, listen, upstream, enabled, toxics}`.
    pub fn to_json(&self) -> Value {
        let st = self.lock();
        json!({
            "name": self.shared.name,
            "listen": st.listen,
            "upstream": st.upstream,
            "enabled": st.epoch.is_some(),
            "toxics": self.toxics().iter().map(Toxic::to_json).collect::<Vec<_>>(),
        })
    }

    fn modify_chains(&self, f: impl FnOnce(&mut Arc<Chains>) -> bool) {
        if self.shared.chains.send_if_modified(f) {
            self.shared.version.fetch_add(1, Ordering::Release);
            #[cfg(target_os = "linux")]
            crate::uring::kick();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state itself stays valid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start_listener(&self, st: &mut State) -> Result<(), ProxyError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ProxyError::NoRuntime);
        }
        let std_listener = bind(&st.listen)?;
        let listener =
            TcpListener::from_std(std_listener).map_err(|source| ProxyError::Listen {
                addr: st.listen.clone(),
                source,
            })?;
        if let Ok(addr) = listener.local_addr() {
            st.listen = addr.to_string();
        }
        let listener = Arc::new(listener);
        let epoch = self.root.child_token();
        st.epoch = Some(Epoch {
            token: epoch.clone(),
            listener: listener.clone(),
        });
        let shared = self.shared.clone();
        let upstream = st.upstream.clone();
        tracing::info!(proxy = %shared.name, listen = %st.listen, %upstream, "proxy listening");
        tokio::spawn(accept_loop(shared, listener, upstream, epoch));
        Ok(())
    }
}

/// Accepts clients until `epoch` is cancelled. Connections live in a `JoinSet` the loop
/// owns, so ending the loop aborts them all, and a connection task never has to poll a
/// cancellation future on each of its wake-ups.
async fn accept_loop(
    shared: Arc<Shared>,
    listener: Arc<TcpListener>,
    upstream: String,
    epoch: CancellationToken,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = epoch.cancelled() => return,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((sock, _peer)) => {
                let id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
                conns.spawn(link::serve(shared.clone(), sock, upstream.clone(), id));
            }
            // The listener was shut down by `Epoch::stop`: not a failure.
            Err(_) if epoch.is_cancelled() => return,
            Err(err) => {
                // Out of fds or similar: back off instead of spinning.
                tracing::warn!(proxy = %shared.name, %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn bind(addr: &str) -> Result<std::net::TcpListener, ProxyError> {
    use std::net::ToSocketAddrs;
    let listen_err = |source| ProxyError::Listen {
        addr: addr.to_string(),
        source,
    };
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(listen_err)?.collect();
    let mut last = None;
    for a in addrs {
        let sock = match socket2::Socket::new(
            socket2::Domain::for_address(a),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        ) {
            Ok(s) => s,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        // SO_REUSEADDR so a disabled-then-enabled proxy can listen again at once.
        let r = sock
            .set_reuse_address(true)
            .and_then(|()| sock.bind(&a.into()))
            .and_then(|()| sock.listen(1024))
            .and_then(|()| sock.set_nonblocking(true));
        match r {
            Ok(()) => return Ok(sock.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(listen_err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "address resolved to nothing",
        )
    })))
}

fn check_addr(addr: &str) -> Result<(), ProxyError> {
    let bad = |reason: &str| ProxyError::BadAddress {
        addr: addr.to_string(),
        reason: reason.into(),
    };
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    if host.is_empty() {
        return Err(bad("expected host:port with a host"));
    }
    port.parse::<u16>()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    Ok(())
}

fn same_listen(current: &str, wanted: &str) -> bool {
    if current == wanted {
        return true;
    }
    // "127.0.0.1:0" asks for any port: the current bound port satisfies it.
    match (current.parse::<SocketAddr>(), wanted.parse::<SocketAddr>()) {
        (Ok(c), Ok(w)) => c.ip() == w.ip() && (w.port() == 0 || w.port() == c.port()),
        _ => false,
    }
}
