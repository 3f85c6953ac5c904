//! One proxied connection: two pumps (client to server, server to client), each either
//! on the fast path (plain copy, no buffer held while idle) or on the toxic path (a
//! queue of timestamped chunks walked through the current toxic chain).
//!
//! Toxics are read from a `watch` channel, so a change reaches every open connection
//! at once: a removed toxic stops acting on the very next wake-up of the pump, and data
//! already queued behind it moves on immediately.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http::{Parsed, RequestParser, abort_response};
use crate::proxy::{Chain, Chains, DirStats, Shared};
use crate::toxic::{Stream, ToxicKind};

/// Bytes read per wake-up on the fast path. Allocated only while data flows.
const FAST_BUF: usize = 64 * 1024;
/// Chunks a toxic pump holds before it stops reading, so TCP pushes back.
const MAX_QUEUED_ITEMS: usize = 1024;
/// How long to wait for the upstream to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a pump (or the whole connection) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The source sent EOF and it was passed on; the other direction may go on.
    Eof,
    /// Close the whole connection (error, limit reached, timeout, proxy disabled).
    Close,
    /// Close both sockets with a TCP RST.
    Reset,
}

/// Serves one accepted client until both directions end (or the task is aborted: the
/// proxy was disabled or dropped).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    client: TcpStream,
    upstream_addr: String,
    conn_id: u64,
) {
    let stats = &shared.stats;
    stats.connections_total.fetch_add(1, Ordering::Relaxed);
    stats.connections_active.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(&shared);

    let upstream = {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&upstream_addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(err)) => {
                stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(proxy = %shared.name, upstream = %upstream_addr, %err,
                    "unable to open connection to upstream; closing the client");
                return;
            }
            Err(_) => {
                stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(proxy = %shared.name, upstream = %upstream_addr,
                    "upstream did not accept within 10s; closing the client");
                return;
            }
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    // Bytes the plane had read from each side (client first) and not yet written on.
    #[cfg(target_os = "linux")]
    let Some((client, upstream, [unsent_up, unsent_down])) =
        to_plane(&shared, client, upstream).await
    else {
        return;
    };
    #[cfg(not(target_os = "linux"))]
    let (unsent_up, unsent_down) = (Vec::new(), Vec::new());

    let up = Pump {
        dir: Stream::Upstream,
        src: &client,
        dst: &upstream,
        rx: shared.chains.subscribe(),
        version: &shared.version,
        stats: &stats.up,
        conn_id,
        unsent: unsent_up,
    }
    .run();
    let down = Pump {
        dir: Stream::Downstream,
        src: &upstream,
        dst: &client,
        rx: shared.chains.subscribe(),
        version: &shared.version,
        stats: &stats.down,
        conn_id,
        unsent: unsent_down,
    }
    .run();
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    let end = loop {
        tokio::select! {
            e = &mut up, if !up_done => match e {
                End::Eof => up_done = true,
                other => break other,
            },
            e = &mut down, if !down_done => match e {
                End::Eof => down_done = true,
                other => break other,
            },
        }
        if up_done && down_done {
            break End::Eof;
        }
    };
    if end == End::Reset {
        // SO_LINGER 0 makes close() send RST instead of FIN.
        // A zero linger never blocks on close, unlike the positive values tokio warns of.
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        let _ = socket2::SockRef::from(&upstream).set_linger(Some(Duration::ZERO));
    }
}

/// Runs a connection with no toxic on the io_uring plane until it ends (`None`) or the
/// toxics change (its sockets come back, mid-stream, for the pumps). Without a plane,
/// or with a toxic already set, the sockets stay here.
#[cfg(target_os = "linux")]
async fn to_plane(
    shared: &Arc<Shared>,
    client: TcpStream,
    upstream: TcpStream,
) -> Option<(TcpStream, TcpStream, [Vec<u8>; 2])> {
    let Some(plane) = crate::uring::plane() else {
        return Some((client, upstream, Default::default()));
    };
    // The version is read first: a toxic added after it is caught by the plane.
    let version = shared.version.load(Ordering::Acquire);
    if !shared.chains.borrow().is_empty() {
        return Some((client, upstream, Default::default()));
    }
    let (client, upstream) = (client.into_std().ok()?, upstream.into_std().ok()?);
    match plane.adopt(client, upstream, shared.clone(), version).await {
        crate::uring::Returned::Ended => None,
        crate::uring::Returned::Back(c, u, unsent) => Some((
            TcpStream::from_std(c).ok()?,
            TcpStream::from_std(u).ok()?,
            unsent,
        )),
    }
}

struct ActiveGuard<'a>(&'a Shared);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0
            .stats
            .connections_active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// One direction of one connection.
struct Pump<'a> {
    dir: Stream,
    src: &'a TcpStream,
    dst: &'a TcpStream,
    rx: watch::Receiver<Arc<Chains>>,
    version: &'a AtomicU64,
    stats: &'a DirStats,
    conn_id: u64,
    /// Bytes read from `src` elsewhere (the io_uring plane) and not yet written to
    /// `dst`: they go first, through the toxics if there are any.
    unsent: Vec<u8>,
}

enum Mode {
    /// The toxic chain changed: pick the path again.
    Switch,
    End(End),
}

impl Pump<'_> {
    async fn run(mut self) -> End {
        loop {
            let chain = self.rx.borrow_and_update().get(self.dir);
            let unsent = Bytes::from(std::mem::take(&mut self.unsent));
            let mode = if chain.is_empty() {
                if !unsent.is_empty() {
                    if write_all(self.dst, &unsent).await.is_err() {
                        return End::Close;
                    }
                    self.stats
                        .sent
                        .fetch_add(unsent.len() as u64, Ordering::Relaxed);
                }
                self.fast().await
            } else {
                ToxicLink::new(self.conn_id, self.dir)
                    .run(&mut self, chain, unsent)
                    .await
            };
            match mode {
                Mode::Switch => continue,
                Mode::End(e) => return e,
            }
        }
    }

    /// Plain copy. While idle the pump holds no buffer: it waits for readiness, then
    /// takes one buffer for the burst and gives it back when the socket would block.
    async fn fast(&mut self) -> Mode {
        let seen = self.version.load(Ordering::Acquire);
        let (src, dst, stats, version) = (self.src, self.dst, self.stats, self.version);
        // One `changed` future for the whole fast period: re-creating it per wake-up
        // would lock the watch's waiter list twice per read.
        let changed = self.rx.changed();
        tokio::pin!(changed);
        loop {
            tokio::select! {
                // Readiness first: the pump that was woken for data does not touch the
                // watch at all (mid-burst changes are caught by `version`).
                biased;
                r = poll_fn(|cx| src.poll_read_ready(cx)) => if r.is_err() {
                    return Mode::End(End::Close);
                },
                c = &mut changed => {
                    if c.is_err() {
                        return Mode::End(End::Close);
                    }
                    return Mode::Switch;
                }
            }
            // A toxic added while this pump slept must see the data that woke it.
            if version.load(Ordering::Acquire) != seen {
                return Mode::Switch;
            }
            let mut buf = take_buf();
            let end = loop {
                buf.clear();
                let (n, drained) = match read_drained(src, &mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                    Err(_) => break Some(Mode::End(End::Close)),
                };
                if n == 0 {
                    shutdown_write(dst);
                    break Some(Mode::End(End::Eof));
                }
                stats.received.fetch_add(n as u64, Ordering::Relaxed);
                if write_all(dst, &buf).await.is_err() {
                    break Some(Mode::End(End::Close));
                }
                stats.sent.fetch_add(n as u64, Ordering::Relaxed);
                if version.load(Ordering::Acquire) != seen {
                    break Some(Mode::Switch);
                }
                if drained {
                    break None;
                }
            };
            give_buf(buf);
            if let Some(mode) = end {
                return mode;
            }
        }
    }
}

thread_local! {
    /// Burst buffers of this worker thread, reused so a small request costs no
    /// allocation. Only buffers of bursts in progress are out; idle pumps hold none.
    static BUFS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers kept per thread; more bursts in flight at once allocate.
const KEPT_BUFS: usize = 16;

fn take_buf() -> Vec<u8> {
    BUFS.with(|b| b.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(FAST_BUF))
}

fn give_buf(buf: Vec<u8>) {
    BUFS.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < KEPT_BUFS && buf.capacity() == FAST_BUF {
            b.push(buf);
        }
    });
}

/// Reads once into `buf`'s spare room. A read that did not fill it emptied the socket's
/// queue, so the readiness observed before the read is cleared without the extra
/// `EAGAIN` read (`drained`); tokio's own `AsyncRead` does the same. The readiness
/// tick is taken before the read, so data that arrives meanwhile is never missed.
fn read_drained(src: &TcpStream, buf: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    let room = buf.capacity() - buf.len();
    let mut partial = 0;
    let r = src.try_io(Interest::READABLE, || match src.try_read_buf(buf) {
        Ok(n) if n > 0 && n < room => {
            partial = n;
            Err(io::ErrorKind::WouldBlock.into())
        }
        other => other,
    });
    match r {
        Ok(n) => Ok((n, false)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && partial > 0 => Ok((partial, true)),
        Err(e) => Err(e),
    }
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match dst.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll_fn(|cx| dst.poll_write_ready(cx)).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn shutdown_write(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write);
}

/// What travels through a toxic pump's queue.
#[derive(Debug)]
enum ItemKind {
    Data(Bytes),
    /// The source's EOF, passed on once everything before it was written.
    Eof,
    /// A pause between slices.
    Pause(Duration),
    /// Close the connection when this point is reached.
    Close,
    /// An answer for the client made by the proxy (`http.abort`), written back to the
    /// source side instead of passed on.
    Reply(Bytes),
}

#[derive(Debug)]
struct Item {
    kind: ItemKind,
    /// Index of the next toxic in the chain to act on this item.
    stage: usize,
    /// When the item was read, advanced by latency toxics.
    ts: Instant,
    /// The instant the toxic at `stage` released this item for, once computed.
    wait: Option<Instant>,
}

/// Per-connection state of one toxic.
struct LinkState {
    toxicity: f32,
    /// Whether the toxicity roll picked this connection.
    active: bool,
    started: Instant,
    transmitted: u64,
    next_free: Instant,
    reset_at: Option<Instant>,
    rng: StdRng,
    /// Request boundaries, for `http.*` toxics.
    http: RequestParser,
    /// Drop body bytes: the request they belong to was answered by `http.abort`.
    http_discard: bool,
}

enum Step {
    Write,
    Reply,
    Eof,
    Wait(Instant),
    Idle,
    End(End),
}

struct ToxicLink {
    conn_id: u64,
    dir: Stream,
    chain: Chain,
    work: VecDeque<Item>,
    states: HashMap<u64, LinkState>,
    eof_read: bool,
}

impl ToxicLink {
    fn new(conn_id: u64, dir: Stream) -> ToxicLink {
        ToxicLink {
            conn_id,
            dir,
            chain: Chain::default(),
            work: VecDeque::new(),
            states: HashMap::new(),
            eof_read: false,
        }
    }

    async fn run(mut self, p: &mut Pump<'_>, chain: Chain, unsent: Bytes) -> Mode {
        if let Some(end) = self.sync(chain, Instant::now()) {
            return Mode::End(end);
        }
        // After `sync`: queued now, these bytes start at the first toxic.
        if !unsent.is_empty() {
            self.push(ItemKind::Data(unsent));
        }
        loop {
            let now = Instant::now();
            let mut want_write = false;
            let mut want_reply = false;
            let mut wait = None;
            match self.advance(now) {
                Step::Write => {
                    let Some(Item {
                        kind: ItemKind::Data(data),
                        ..
                    }) = self.work.front_mut()
                    else {
                        continue;
                    };
                    match p.dst.try_write(data) {
                        Ok(n) => {
                            p.stats.sent.fetch_add(n as u64, Ordering::Relaxed);
                            data.advance(n);
                            if data.is_empty() {
                                self.work.pop_front();
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => want_write = true,
                        Err(_) => return Mode::End(End::Close),
                    }
                }
                Step::Reply => {
                    let Some(Item {
                        kind: ItemKind::Reply(data),
                        ..
                    }) = self.work.front_mut()
                    else {
                        continue;
                    };
                    match p.src.try_write(data) {
                        Ok(n) => {
                            data.advance(n);
                            if data.is_empty() {
                                self.work.pop_front();
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => want_reply = true,
                        Err(_) => return Mode::End(End::Close),
                    }
                }
                Step::Eof => {
                    shutdown_write(p.dst);
                    return Mode::End(End::Eof);
                }
                Step::End(e) => return Mode::End(e),
                Step::Wait(t) => wait = Some(t),
                Step::Idle => {
                    if self.chain.is_empty() {
                        return Mode::Switch;
                    }
                }
            }
            let deadline = self.link_deadline();
            let can_read = !self.eof_read && self.work.len() < MAX_QUEUED_ITEMS;
            tokio::select! {
                biased;
                c = p.rx.changed() => {
                    if c.is_err() {
                        return Mode::End(End::Close);
                    }
                    let chain = p.rx.borrow_and_update().get(self.dir);
                    if let Some(end) = self.sync(chain, Instant::now()) {
                        return Mode::End(end);
                    }
                }
                _ = sleep_opt(deadline.map(|d| d.0)) => {
                    return Mode::End(deadline.map_or(End::Close, |d| d.1));
                }
                _ = sleep_opt(wait) => {}
                r = poll_fn(|cx| p.dst.poll_write_ready(cx)), if want_write => if r.is_err() {
                    return Mode::End(End::Close);
                },
                r = p.src.writable(), if want_reply => if r.is_err() {
                    return Mode::End(End::Close);
                },
                r = poll_fn(|cx| p.src.poll_read_ready(cx)), if can_read => {
                    if r.is_err() {
                        return Mode::End(End::Close);
                    }
                    if let Err(end) = self.read_some(p) {
                        return Mode::End(end);
                    }
                }
            }
        }
    }

    /// Reads what is available (bounded) into the queue, stamping each chunk.
    /// The read buffer comes from the per-thread pool, so an idle connection under a
    /// toxic holds none.
    fn read_some(&mut self, p: &mut Pump<'_>) -> Result<(), End> {
        let mut scratch = take_buf();
        let r = self.read_into(p, &mut scratch);
        give_buf(scratch);
        r
    }

    fn read_into(&mut self, p: &mut Pump<'_>, scratch: &mut Vec<u8>) -> Result<(), End> {
        for _ in 0..16 {
            if self.work.len() >= MAX_QUEUED_ITEMS {
                break;
            }
            scratch.clear();
            match p.src.try_read_buf(scratch) {
                Ok(0) => {
                    self.eof_read = true;
                    self.push(ItemKind::Eof);
                    break;
                }
                Ok(n) => {
                    p.stats.received.fetch_add(n as u64, Ordering::Relaxed);
                    self.push(ItemKind::Data(Bytes::copy_from_slice(&scratch[..n])));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Err(End::Close),
            }
        }
        Ok(())
    }

    fn push(&mut self, kind: ItemKind) {
        self.work.push_back(Item {
            kind,
            stage: 0,
            ts: Instant::now(),
            wait: None,
        });
    }

    /// The earliest connection-wide deadline: a `timeout` toxic closing it, or a
    /// `reset_peer` toxic resetting it.
    fn link_deadline(&self) -> Option<(Instant, End)> {
        let mut best: Option<(Instant, End)> = None;
        for entry in self.chain.iter() {
            let Some(st) = self.states.get(&entry.id).filter(|s| s.active) else {
                continue;
            };
            let cand = match entry.toxic.kind {
                ToxicKind::Timeout { timeout } if timeout > 0 => {
                    Some((st.started + Duration::from_millis(timeout), End::Close))
                }
                ToxicKind::ResetPeer { .. } => st.reset_at.map(|t| (t, End::Reset)),
                _ => None,
            };
            if let Some(c) = cand
                && best.is_none_or(|b| c.0 < b.0)
            {
                best = Some(c);
            }
        }
        best
    }

    /// Adopts a new chain: keeps per-toxic state of toxics still there, rolls the
    /// toxicity of new ones, and moves queued items to the same point in the new chain.
    fn sync(&mut self, chain: Chain, now: Instant) -> Option<End> {
        let old = std::mem::replace(&mut self.chain, chain);
        // A removed http toxic may hold part of a request head: pass it on, in order.
        for (i, e) in old.iter().enumerate() {
            if self.chain.iter().any(|n| n.id == e.id) {
                continue;
            }
            let Some(st) = self.states.get_mut(&e.id) else {
                continue;
            };
            let buf = st.http.take_buffered();
            if !buf.is_empty() {
                let pos = self
                    .work
                    .iter()
                    .position(|it| it.stage <= i)
                    .unwrap_or(self.work.len());
                let item = Item {
                    kind: ItemKind::Data(buf),
                    stage: i + 1,
                    ts: now,
                    wait: None,
                };
                self.work.insert(pos, item);
            }
        }
        for item in self.work.iter_mut() {
            let mut new_stage = self.chain.len();
            for (j, e) in old.iter().enumerate().skip(item.stage) {
                if let Some(k) = self.chain.iter().position(|n| n.id == e.id) {
                    new_stage = k;
                    let same = j == item.stage && Arc::ptr_eq(e, &self.chain[k]);
                    if !same {
                        item.wait = None;
                    }
                    break;
                }
            }
            if new_stage == self.chain.len() {
                item.wait = None;
            }
            item.stage = new_stage;
        }
        let mut ended = None;
        let chain = &self.chain;
        self.states.retain(|id, st| {
            let Some(entry) = chain.iter().find(|e| e.id == *id) else {
                // Toxiproxy closes a connection whose data a timeout toxic dropped when
                // that toxic is removed: the stream is already broken.
                let was_timeout = old
                    .iter()
                    .any(|e| e.id == *id && matches!(e.toxic.kind, ToxicKind::Timeout { .. }));
                if st.active && was_timeout {
                    ended = Some(End::Close);
                }
                return false;
            };
            st.toxicity == entry.toxic.toxicity
        });
        for entry in self.chain.iter() {
            if self.states.contains_key(&entry.id) {
                continue;
            }
            let toxicity = entry.toxic.toxicity;
            let active = toxicity >= 1.0 || rand::rng().random::<f32>() < toxicity;
            let seed = match entry.toxic.kind {
                ToxicKind::Corrupt { seed, .. } => seed,
                _ => rand::random(),
            };
            let dir_salt = if self.dir == Stream::Upstream {
                0x5555
            } else {
                0xaaaa
            };
            let rng = StdRng::seed_from_u64(
                seed ^ self.conn_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ dir_salt,
            );
            self.states.insert(
                entry.id,
                LinkState {
                    toxicity,
                    active,
                    started: now,
                    transmitted: 0,
                    next_free: now,
                    reset_at: None,
                    rng,
                    http: RequestParser::default(),
                    http_discard: false,
                },
            );
        }
        ended
    }

    /// Moves the front of the queue through the chain as far as it can go now.
    fn advance(&mut self, now: Instant) -> Step {
        loop {
            let Some(item) = self.work.front_mut() else {
                return Step::Idle;
            };
            match &item.kind {
                ItemKind::Close => return Step::End(End::Close),
                ItemKind::Reply(_) => return Step::Reply,
                ItemKind::Pause(d) => {
                    let due = *item.wait.get_or_insert(now + *d);
                    if now < due {
                        return Step::Wait(due);
                    }
                    self.work.pop_front();
                    continue;
                }
                ItemKind::Data(_) if item.stage >= self.chain.len() => return Step::Write,
                ItemKind::Eof if item.stage >= self.chain.len() => {
                    self.work.pop_front();
                    return Step::Eof;
                }
                _ => {}
            }
            let entry = self.chain[item.stage].clone();
            let Some(st) = self.states.get_mut(&entry.id) else {
                item.stage += 1;
                continue;
            };
            if !st.active {
                item.stage += 1;
                item.wait = None;
                continue;
            }
            let is_eof = matches!(item.kind, ItemKind::Eof);
            match entry.toxic.kind {
                ToxicKind::Latency { latency, jitter } if !is_eof => {
                    let due = *item.wait.get_or_insert_with(|| {
                        let mut ms = latency as i64;
                        if jitter > 0 {
                            let j = jitter.min(i64::MAX as u64 / 4) as i64;
                            ms += st.rng.random_range(-j..j);
                        }
                        item.ts + Duration::from_millis(ms.max(0) as u64)
                    });
                    if now < due {
                        return Step::Wait(due);
                    }
                    item.ts = due;
                }
                ToxicKind::Bandwidth { rate } if !is_eof && rate > 0 => {
                    let bytes_per_sec = rate.saturating_mul(1000);
                    // Pieces of 50 ms worth, so the rate holds over short windows too.
                    let piece = (bytes_per_sec / 20).max(1) as usize;
                    if item.wait.is_none()
                        && let ItemKind::Data(data) = &mut item.kind
                        && data.len() > piece
                    {
                        let rest = data.split_off(piece);
                        let (stage, ts) = (item.stage, item.ts);
                        self.work.insert(
                            1,
                            Item {
                                kind: ItemKind::Data(rest),
                                stage,
                                ts,
                                wait: None,
                            },
                        );
                        continue;
                    }
                    let len = match &item.kind {
                        ItemKind::Data(d) => d.len(),
                        _ => 0,
                    };
                    let due = *item.wait.get_or_insert_with(|| {
                        let release = st.next_free.max(now);
                        st.next_free =
                            release + Duration::from_secs_f64(len as f64 / bytes_per_sec as f64);
                        release
                    });
                    if now < due {
                        return Step::Wait(due);
                    }
                }
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } if !is_eof => {
                    let avg = average_size.max(1);
                    let var = size_variation.min(avg - 1);
                    if let ItemKind::Data(data) = &item.kind
                        && (data.len() as u64) > avg + var
                    {
                        let mut data = data.clone();
                        let (stage, ts) = (item.stage + 1, item.ts);
                        self.work.pop_front();
                        let mut pieces = Vec::new();
                        while !data.is_empty() {
                            let size = if var > 0 {
                                avg - var + st.rng.random_range(0..=2 * var)
                            } else {
                                avg
                            };
                            let size = (size.max(1) as usize).min(data.len());
                            pieces.push(data.split_to(size));
                        }
                        let pause = Duration::from_micros(delay);
                        for piece in pieces.into_iter().rev() {
                            if !pause.is_zero() {
                                self.work.push_front(Item {
                                    kind: ItemKind::Pause(pause),
                                    stage,
                                    ts,
                                    wait: None,
                                });
                            }
                            self.work.push_front(Item {
                                kind: ItemKind::Data(piece),
                                stage,
                                ts,
                                wait: None,
                            });
                        }
                        continue;
                    }
                }
                ToxicKind::LimitData { bytes } if !is_eof => {
                    let remaining = bytes.saturating_sub(st.transmitted);
                    if remaining == 0 {
                        self.work.pop_front();
                        return Step::End(End::Close);
                    }
                    if let ItemKind::Data(data) = &mut item.kind {
                        data.truncate(remaining.min(usize::MAX as u64) as usize);
                        st.transmitted += data.len() as u64;
                    }
                    if st.transmitted >= bytes {
                        let (stage, ts) = (item.stage + 1, item.ts);
                        item.stage = stage;
                        item.wait = None;
                        self.work.insert(
                            1,
                            Item {
                                kind: ItemKind::Close,
                                stage,
                                ts,
                                wait: None,
                            },
                        );
                        continue;
                    }
                }
                ToxicKind::Timeout { .. } => {
                    if is_eof {
                        return Step::End(End::Close);
                    }
                    self.work.pop_front();
                    continue;
                }
                ToxicKind::ResetPeer { timeout } => {
                    let at = *st
                        .reset_at
                        .get_or_insert(now + Duration::from_millis(timeout));
                    if is_eof {
                        return Step::Wait(at);
                    }
                    self.work.pop_front();
                    continue;
                }
                ToxicKind::SlowClose { delay } if is_eof => {
                    let due = *item.wait.get_or_insert(now + Duration::from_millis(delay));
                    if now < due {
                        return Step::Wait(due);
                    }
                }
                ToxicKind::Drop { rate }
                    if !is_eof && rate > 0.0 && st.rng.random::<f64>() < rate =>
                {
                    self.work.pop_front();
                    continue;
                }
                ToxicKind::HttpAbort { .. } | ToxicKind::HttpDelay { .. } => {
                    let (stage, ts) = (item.stage + 1, item.ts);
                    let mk = |kind| Item {
                        kind,
                        stage,
                        ts,
                        wait: None,
                    };
                    if is_eof {
                        let buf = st.http.take_buffered();
                        if !buf.is_empty() {
                            self.work.push_front(mk(ItemKind::Data(buf)));
                            continue;
                        }
                    } else {
                        let Some(Item {
                            kind: ItemKind::Data(mut data),
                            ..
                        }) = self.work.pop_front()
                        else {
                            continue;
                        };
                        let mut out = Vec::new();
                        while !data.is_empty() {
                            match st.http.next(&mut data) {
                                Parsed::NeedMore => break,
                                Parsed::Body(b) => {
                                    if !st.http_discard {
                                        out.push(mk(ItemKind::Data(b)));
                                    }
                                }
                                Parsed::Head(h) => {
                                    st.http_discard = false;
                                    let (matching, abort, delay) = match &entry.toxic.kind {
                                        ToxicKind::HttpAbort {
                                            status,
                                            body,
                                            matching,
                                        } => (matching, Some((*status, body)), None),
                                        ToxicKind::HttpDelay { delay, matching } => {
                                            (matching, None, Some(*delay))
                                        }
                                        _ => continue,
                                    };
                                    let act = matching.matches(&h) && {
                                        let n = entry.hits.fetch_add(1, Ordering::Relaxed);
                                        (matching.first == 0 || n < matching.first)
                                            && (matching.rate >= 1.0
                                                || st.rng.random::<f64>() < matching.rate)
                                    };
                                    match (act, abort, delay) {
                                        (true, Some((status, body)), _) => {
                                            st.http_discard = true;
                                            let reply = abort_response(status, body, h.close);
                                            out.push(mk(ItemKind::Reply(reply)));
                                            if h.close {
                                                out.push(mk(ItemKind::Close));
                                            }
                                        }
                                        (true, _, Some(ms)) => {
                                            let d = Duration::from_millis(ms);
                                            out.push(mk(ItemKind::Pause(d)));
                                            out.push(mk(ItemKind::Data(h.raw)));
                                        }
                                        _ => out.push(mk(ItemKind::Data(h.raw))),
                                    }
                                }
                            }
                        }
                        for it in out.into_iter().rev() {
                            self.work.push_front(it);
                        }
                        continue;
                    }
                }
                ToxicKind::Corrupt { rate, .. } if !is_eof => {
                    if rate > 0.0
                        && st.rng.random::<f64>() < rate
                        && let ItemKind::Data(data) = &mut item.kind
                    {
                        *data = corrupt(data, &mut st.rng);
                    }
                }
                _ => {}
            }
            item.stage += 1;
            item.wait = None;
        }
    }
}

/// One mutation of a chunk: a flipped bit, a truncation, or an inserted byte.
fn corrupt(data: &Bytes, rng: &mut StdRng) -> Bytes {
    let mut v = data.to_vec();
    if v.is_empty() {
        return Bytes::new();
    }
    match rng.random_range(0..3u8) {
        0 => {
            let i = rng.random_range(0..v.len());
            v[i] ^= 1 << rng.random_range(0..8u8);
        }
        1 => {
            let keep = rng.random_range(0..v.len());
            v.truncate(keep);
        }
        _ => {
            let i = rng.random_range(0..=v.len());
            v.insert(i, rng.random());
        }
    }
    Bytes::from(v)
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
