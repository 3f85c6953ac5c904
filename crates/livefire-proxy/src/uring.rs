//! The io_uring data plane: connections with no toxic in either direction are moved
//! here and forwarded by one thread that reads with multishot receives into a shared
//! ring of buffers and writes with sends, all batched into one `io_uring_enter` per
//! wake-up instead of a `recv`, a `send` and an `epoll_wait` share per message.
//! (Profiles of the tokio fast path and of haproxy show the same syscalls per request;
//! only fewer syscalls make a proxy cheaper than haproxy per small request. Zero-copy
//! `splice` makes small requests dearer: haproxy with it used 15% more CPU.)
//!
//! A connection leaves the plane when the proxy's toxic chain changes (the plane hands
//! both sockets back to their tokio task, which runs them through the toxics from then
//! on), when it ends, or when its task is dropped (proxy disabled or stopped).
//!
//! The plane starts on first use and only if this kernel lets it: io_uring may be
//! missing or forbidden (seccomp), and a self-test on a socket pair proves multishot
//! receive with a buffer ring works before any connection is trusted to it. Otherwise
//! (or with `LIVEFIRE_PROXY_IO=epoll`) connections stay on the tokio path.
//!
//! This is the only unsafe code of the proxy: io_uring reads memory the kernel was
//! given by address. Every buffer and the buffer ring are leaked for the life of the
//! process, so no operation can outlive its memory.
#![allow(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use tokio::sync::oneshot;

use crate::error::IoUringUnavailable::{self, Failed};
use crate::proxy::{DirStats, Shared};

/// Buffers in the shared ring, and their size: a multishot receive fills one per
/// completion, so the size is also the largest read (64 KiB, as on the tokio path).
const NBUF: u16 = 256;
const BUF_SIZE: usize = 64 * 1024;
const BGID: u16 = 0x1f;
/// Connections the plane holds at most (two fixed-file slots each; a process has at
/// most 20,000 fds here, two per connection and two more upstream). Beyond that, new
/// connections stay on the tokio path.
const FILE_PAIRS: u32 = 8192;
/// Chunks one direction may hold unsent before it stops reading (TCP pushes back).
const MAX_QUEUED: usize = 4;
/// At or below this many free ring buffers, received bytes are copied out and their
/// buffer returned at once: chunks waiting for peers that stopped reading can pin at
/// most `NBUF - LOW_WATER` buffers, and receives never starve.
const LOW_WATER: usize = NBUF as usize / 4;
/// Copy buffers kept for reuse.
const KEPT_HEAP: usize = 64;

const K_WAKE: u64 = 1;
const K_RECV: u64 = 2;
const K_SEND: u64 = 3;
const K_CANCEL: u64 = 4;

const ECANCELED: i32 = 125;
const ENOBUFS: i32 = 105;

fn user_data(kind: u64, conn: u32, side: usize, bid: u16) -> u64 {
    kind | ((side as u64) << 4) | (u64::from(bid) << 8) | (u64::from(conn) << 32)
}

/// Connections the plane has taken (for tests and the startup log).
static ADOPTED: AtomicU64 = AtomicU64::new(0);

/// Connections moved to the plane since the process started.
pub(crate) fn adopted_total() -> u64 {
    ADOPTED.load(Ordering::Relaxed)
}

/// How a connection left the plane.
pub(crate) enum Returned {
    /// The toxic chain changed: the task gets both sockets back, mid-stream, with the
    /// bytes already read from each (client first) and not yet written to the other.
    Back(TcpStream, TcpStream, [Vec<u8>; 2]),
    /// The connection ended (both directions done, or an error closed it).
    Ended,
}

enum Cmd {
    Adopt(Box<Adoption>),
    /// The task holding the connection went away (proxy disabled or dropped).
    Close(u32),
    /// A proxy's toxics changed: release its connections.
    Kick,
}

struct Adoption {
    id: u32,
    client: TcpStream,
    upstream: TcpStream,
    shared: Arc<Shared>,
    version: u64,
    reply: oneshot::Sender<Returned>,
}

pub(crate) struct Plane {
    /// Commands for the driver; `None` once the driver has stopped (an io_uring error
    /// or a bug), so that adoptions are refused instead of waiting forever.
    cmds: Mutex<Option<Vec<Cmd>>>,
    waker: UnixStream,
    next_id: AtomicU32,
}

/// The plane, or what failed when it started (the connections then stay on epoll).
static PLANE: OnceLock<Result<Plane, IoUringUnavailable>> = OnceLock::new();

/// The process's plane, started on first call; `None` when io_uring cannot be used.
pub(crate) fn plane() -> Option<&'static Plane> {
    PLANE.get_or_init(start).as_ref().ok()
}

/// What failed when the plane started (starting it if it has not started), or `None`
/// when it runs.
pub(crate) fn unavailable() -> Option<&'static IoUringUnavailable> {
    PLANE.get_or_init(start).as_ref().err()
}

fn start() -> Result<Plane, IoUringUnavailable> {
    if std::env::var("LIVEFIRE_PROXY_IO").is_ok_and(|v| v == "epoll") {
        tracing::info!("proxy data plane: epoll (LIVEFIRE_PROXY_IO=epoll)");
        return Err(IoUringUnavailable::Disabled);
    }
    let waker_pair = || -> std::io::Result<(UnixStream, UnixStream)> {
        let (waker, wake_rx) = UnixStream::pair()?;
        waker.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok((waker, wake_rx))
    };
    let (waker, wake_rx) =
        waker_pair().map_err(|e| Failed(format!("the plane's wake-up socket pair failed: {e}")))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("livefire-proxy-io".into())
        .spawn(move || match Driver::new(wake_rx) {
            Ok(mut d) => {
                let _ = ready_tx.send(Ok(()));
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.run()));
                if run.is_err() {
                    tracing::error!("proxy data plane panicked; its connections are cut");
                    d.abandon();
                }
                // Sends in flight may still read the driver's buffers: never free them.
                std::mem::forget(d);
                stopped();
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        });
    if let Err(e) = spawned {
        return Err(Failed(format!("the plane's thread did not start: {e}")));
    }
    match ready_rx.recv() {
        Ok(Ok(())) => {
            tracing::info!("proxy data plane: io_uring");
            Ok(Plane {
                cmds: Mutex::new(Some(Vec::new())),
                waker,
                next_id: AtomicU32::new(0),
            })
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "proxy data plane: epoll (io_uring unavailable)");
            Err(e)
        }
        Err(_) => Err(Failed(
            "the plane's thread ended before saying whether io_uring works".into(),
        )),
    }
}

/// Set once the driver thread has stopped, even before `PLANE` holds the plane.
static STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The driver has stopped: refuse new work and hand waiting adoptions back.
fn stopped() {
    STOPPED.store(true, Ordering::SeqCst);
    let Some(Ok(plane)) = PLANE.get() else {
        return;
    };
    let cmds = plane.cmds.lock().unwrap_or_else(|e| e.into_inner()).take();
    for cmd in cmds.into_iter().flatten() {
        if let Cmd::Adopt(a) = cmd {
            let _ = a
                .reply
                .send(Returned::Back(a.client, a.upstream, Default::default()));
        }
    }
}

impl Plane {
    /// Queues a command for the driver; gives it back if the driver has stopped.
    fn send(&self, cmd: Cmd) -> Result<(), Cmd> {
        let mut cmds = self.cmds.lock().unwrap_or_else(|e| e.into_inner());
        match cmds.as_mut() {
            Some(list) if !STOPPED.load(Ordering::SeqCst) => list.push(cmd),
            _ => return Err(cmd),
        }
        drop(cmds);
        // A full socket buffer means a wake-up is already pending.
        let _ = (&self.waker).write(&[1]);
        Ok(())
    }

    /// Hands a connection to the plane until it ends or the toxics change. `version` is
    /// the proxy's chain version read *before* the caller saw both chains empty.
    pub(crate) async fn adopt(
        &'static self,
        client: TcpStream,
        upstream: TcpStream,
        shared: Arc<Shared>,
        version: u64,
    ) -> Returned {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let adoption = Adoption {
            id,
            client,
            upstream,
            shared,
            version,
            reply,
        };
        if let Err(Cmd::Adopt(a)) = self.send(Cmd::Adopt(Box::new(adoption))) {
            return Returned::Back(a.client, a.upstream, Default::default());
        }
        let guard = CloseOnDrop { plane: self, id };
        let r = rx.await.unwrap_or(Returned::Ended);
        std::mem::forget(guard);
        r
    }

    /// Tells the plane a proxy's toxics changed.
    pub(crate) fn kick(&self) {
        let _ = self.send(Cmd::Kick);
    }
}

/// Dropped when the connection's task is aborted mid-adoption: the plane must cut it.
struct CloseOnDrop {
    plane: &'static Plane,
    id: u32,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let _ = self.plane.send(Cmd::Close(self.id));
    }
}

/// Tells a running plane that toxics changed; does nothing when none runs (a plane
/// starts before its first adoption, and an adoption checks the version itself).
pub(crate) fn kick() {
    if let Some(Ok(p)) = PLANE.get() {
        p.kick();
    }
}

/// Connection ids are sequential u32s: one multiply spreads them (SipHash showed in
/// the profile of every completion).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Conns = HashMap<u32, Conn, BuildHasherDefault<IdHasher>>;

/// Bytes `off..len` of ring buffer `bid`.
fn ring_slice(bufs: &'static [u8], bid: u16, off: u32, len: u32) -> &'static [u8] {
    let start = usize::from(bid) * BUF_SIZE;
    &bufs[start + off as usize..start + len as usize]
}

/// Bytes received from one side, waiting to be sent to the other.
enum Chunk {
    /// Still in the ring buffer it was received into (the common case: sent at once).
    Ring { bid: u16, off: u32, len: u32 },
    /// Copied out, so its ring buffer went back at once (the ring ran low).
    Heap { buf: Vec<u8>, off: usize },
}

impl Chunk {
    /// The bytes still to send.
    fn rest<'a>(&'a self, bufs: &'static [u8]) -> &'a [u8] {
        match self {
            Chunk::Ring { bid, off, len } => ring_slice(bufs, *bid, *off, *len),
            Chunk::Heap { buf, off } => &buf[*off..],
        }
    }

    /// Its ring buffer (0 for a copy), part of the user data of its send.
    fn bid(&self) -> u16 {
        match self {
            Chunk::Ring { bid, .. } => *bid,
            Chunk::Heap { .. } => 0,
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Ring { off, .. } => *off += n as u32,
            Chunk::Heap { off, .. } => *off += n,
        }
    }
}

/// One direction of a connection: bytes read from `sock` go to the other side.
struct Side {
    sock: TcpStream,
    /// Received bytes waiting to be sent to the peer; the front one may be in flight.
    queue: VecDeque<Chunk>,
    recv_armed: bool,
    send_in_flight: bool,
    /// The source sent EOF: shut the peer's write side once the queue is empty.
    eof: bool,
    /// Stopped reading (queue full, or releasing) with a cancel in flight.
    cancelling: bool,
}

impl Side {
    fn new(sock: TcpStream) -> Side {
        Side {
            sock,
            queue: VecDeque::new(),
            recv_armed: false,
            send_in_flight: false,
            eof: false,
            cancelling: false,
        }
    }

    fn busy(&self) -> bool {
        self.recv_armed || self.send_in_flight
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Leaving {
    Stay,
    /// Hand the sockets back once nothing is in flight and nothing queued.
    Back,
    /// Cut: sockets shut down, dropped once nothing is in flight.
    Close,
}

struct Conn {
    sides: [Side; 2],
    /// The pair of fixed-file slots of the two sockets: `2 * pair + side`.
    pair: u32,
    shared: Arc<Shared>,
    version: u64,
    reply: Option<oneshot::Sender<Returned>>,
    leaving: Leaving,
}

impl Conn {
    fn stats(&self, side: usize) -> &DirStats {
        if side == 0 {
            &self.shared.stats.up
        } else {
            &self.shared.stats.down
        }
    }
}

struct Driver {
    ring: IoUring,
    wake_rx: UnixStream,
    bufs: &'static [u8],
    ring_entries: *mut types::BufRingEntry,
    /// The ring's tail: the `resv` field of entry 0. Kept as a pointer, so no shared
    /// reference to it lives while `give` writes entry 0's other fields.
    tail: *const AtomicU16,
    local_tail: u16,
    /// Ring buffers the kernel can fill.
    free: usize,
    heap_pool: Vec<Vec<u8>>,
    /// Unused pairs of fixed-file slots.
    free_pairs: Vec<u32>,
    conns: Conns,
    /// Sides whose receive ended for want of a buffer, re-armed after the batch that
    /// saw them (buffers are back by then). A receive takes its buffer before it looks
    /// for data, so one that is issued when the ring is empty fails at once; and the
    /// kernel serves the submissions of an `io_uring_enter` in order, before the wake-ups
    /// of receives already armed. So these go first, as single receives: a bulk
    /// connection's multishot receive takes up to 32 buffers per wake-up, and re-armed
    /// behind a few of those (which are re-armed whenever their sends catch up) a side
    /// would find the ring empty every time, for as long as the bulk lasts.
    starved: Vec<(u32, usize)>,
    pending: Vec<squeue::Entry>,
}

impl Driver {
    /// The driver, or which step of setting up io_uring failed and why.
    fn new(wake_rx: UnixStream) -> Result<Driver, IoUringUnavailable> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(4096)
            .map_err(|e| {
                IoUringUnavailable::Refused(format!(
                    "io_uring_setup with SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1+; \
                     sysctl kernel.io_uring_disabled, seccomp) failed: {e}"
                ))
            })?;
        ring.submitter()
            .register_files_sparse(2 * FILE_PAIRS)
            .map_err(|e| {
                Failed(format!(
                    "registering sparse fixed files (Linux 5.19+) failed: {e}"
                ))
            })?;
        let bufs: &'static [u8] = Vec::leak(vec![0u8; usize::from(NBUF) * BUF_SIZE]);
        let layout = std::alloc::Layout::from_size_align(usize::from(NBUF) * 16, 4096)
            .map_err(|e| Failed(format!("the buffer ring's layout: {e}")))?;
        // SAFETY: the layout has a non-zero size. The memory is never freed (the ring
        // may reference it until the process exits).
        let ring_entries =
            unsafe { std::alloc::alloc_zeroed(layout) }.cast::<types::BufRingEntry>();
        if ring_entries.is_null() {
            return Err(Failed("out of memory for the buffer ring".into()));
        }
        // SAFETY: `ring_entries` is page-aligned, NBUF entries long, zeroed, and lives
        // for the rest of the process.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ring_entries as u64, NBUF, BGID, 0)
                .map_err(|e| {
                    Failed(format!(
                        "registering a provided-buffer ring (Linux 5.19+) failed: {e}"
                    ))
                })?;
        }
        // SAFETY: `ring_entries` points at the first entry of the live allocation; the
        // tail is its `resv` field, a u16 shared with the kernel, accessed atomically.
        let tail = unsafe { types::BufRingEntry::tail(ring_entries) }.cast::<AtomicU16>();
        let mut d = Driver {
            ring,
            wake_rx,
            bufs,
            ring_entries,
            tail,
            local_tail: 0,
            free: 0,
            heap_pool: Vec::new(),
            free_pairs: (0..FILE_PAIRS).rev().collect(),
            conns: Conns::default(),
            starved: Vec::new(),
            pending: Vec::new(),
        };
        for bid in 0..NBUF {
            d.give(bid);
        }
        d.publish();
        d.self_test().map_err(|e| {
            Failed(format!(
                "the multishot receive self-test (Linux 6.0+) failed: {e}"
            ))
        })?;
        d.pending.push(
            opcode::PollAdd::new(types::Fd(d.wake_rx.as_raw_fd()), 0x1 /* POLLIN */)
                .multi(true)
                .build()
                .user_data(K_WAKE),
        );
        d.flush();
        Ok(d)
    }

    /// Proves that this kernel runs a multishot receive into the buffer ring.
    fn self_test(&mut self) -> std::io::Result<()> {
        let (mut a, b) = UnixStream::pair()?;
        self.push(
            opcode::RecvMulti::new(types::Fd(b.as_raw_fd()), BGID)
                .build()
                .user_data(u64::MAX),
        );
        self.flush();
        a.write_all(b"ping")?;
        drop(a);
        let mut got = Vec::new();
        for _ in 0..4 {
            self.ring.submit_and_wait(1)?;
            let cqes: Vec<cqueue::Entry> = self.ring.completion().collect();
            for c in cqes {
                if let Some(bid) = cqueue::buffer_select(c.flags()) {
                    self.free -= 1;
                    self.give(bid);
                    self.publish();
                }
                got.push(c.result());
                if !cqueue::more(c.flags()) {
                    return if got.first() == Some(&4) {
                        Ok(())
                    } else {
                        Err(std::io::Error::other(format!(
                            "it completed with {got:?} where 4 bytes were sent (negative: -errno)"
                        )))
                    };
                }
            }
        }
        Err(std::io::Error::other(
            "it had not completed after four waits",
        ))
    }

    /// Returns a buffer to the ring (visible to the kernel after `publish`).
    fn give(&mut self, bid: u16) {
        let idx = usize::from(self.local_tail & (NBUF - 1));
        let addr = ring_slice(self.bufs, bid, 0, 0).as_ptr() as u64;
        // SAFETY: idx < NBUF, inside the ring allocation. The kernel reads only entries
        // before the published tail, and this one is at or past it.
        let e = unsafe { &mut *self.ring_entries.add(idx) };
        e.set_addr(addr);
        e.set_len(BUF_SIZE as u32);
        e.set_bid(bid);
        self.local_tail = self.local_tail.wrapping_add(1);
        self.free += 1;
    }

    /// A copy of `bytes` in a (reused) heap buffer.
    fn copy_out(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut v = self.heap_pool.pop().unwrap_or_default();
        v.extend_from_slice(bytes);
        v
    }

    /// Lets go of a chunk that will not be sent (any more); true if a ring buffer
    /// went back.
    fn release(&mut self, chunk: Chunk) -> bool {
        match chunk {
            Chunk::Ring { bid, .. } => {
                self.give(bid);
                true
            }
            Chunk::Heap { mut buf, .. } => {
                if self.heap_pool.len() < KEPT_HEAP && buf.capacity() <= BUF_SIZE {
                    buf.clear();
                    self.heap_pool.push(buf);
                }
                false
            }
        }
    }

    fn publish(&self) {
        // SAFETY: `tail` points into the leaked ring allocation, 2-aligned (u16 field);
        // the reference lives only for this store, never beside `give`'s `&mut`.
        unsafe { &*self.tail }.store(self.local_tail, Ordering::Release);
    }

    fn push(&mut self, e: squeue::Entry) {
        self.pending.push(e);
    }

    /// Submits every pending entry (the buffers they point at are leaked, so they
    /// outlive the operation).
    fn flush(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            // SAFETY: every entry points at `self.bufs` (process lifetime), at a heap
            // chunk freed only after its send's completion, or at no memory; its file is
            // a registered slot or fd released only after its completions are seen.
            let pushed = unsafe { self.ring.submission().push(&self.pending[i]) };
            if pushed.is_ok() {
                i += 1;
            } else if self.ring.submit().is_err() {
                break;
            }
        }
        self.pending.drain(..i);
    }

    fn run(&mut self) {
        // Waiting here is not I/O wait: without this flag (6.15+) an idle proxy would
        // show as a CPU stuck in iowait in top.
        let flags = if self.ring.params().is_feature_no_iowait() {
            io_uring::EnterFlags::NO_IOWAIT
        } else {
            io_uring::EnterFlags::empty()
        };
        let args = types::SubmitArgs::new();
        loop {
            self.flush();
            match self
                .ring
                .submitter()
                .submit_with_args_and_flags(1, &args, flags)
            {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(4 /* EINTR */) => {}
                Err(e) if e.raw_os_error() == Some(16 /* EBUSY */) => {}
                Err(e) => {
                    tracing::error!(error = %e, "proxy data plane failed; its connections are cut");
                    self.abandon();
                    return;
                }
            }
            let mut returned = false;
            loop {
                let Some(c) = self.ring.completion().next() else {
                    break;
                };
                returned |= self.complete(&c);
            }
            if returned {
                self.publish();
            }
            if !self.starved.is_empty() && self.free > 0 {
                self.rearm_starved();
            }
        }
    }

    /// Cuts every connection and ends their tasks, without freeing anything an
    /// operation in flight may still read.
    fn abandon(&mut self) {
        for c in self.conns.values_mut() {
            for s in &c.sides {
                let _ = s.sock.shutdown(Shutdown::Both);
            }
            if let Some(r) = c.reply.take() {
                let _ = r.send(Returned::Ended);
            }
        }
        std::mem::forget(std::mem::take(&mut self.conns));
    }

    /// Handles one completion; true when a buffer went back to the ring.
    fn complete(&mut self, c: &cqueue::Entry) -> bool {
        let u = c.user_data();
        let (kind, side, id) = (u & 0xf, ((u >> 4) & 1) as usize, (u >> 32) as u32);
        let res = c.result();
        match kind {
            K_WAKE => {
                self.on_wake(cqueue::more(c.flags()));
                false
            }
            K_RECV => {
                let buf = cqueue::buffer_select(c.flags());
                if buf.is_some() {
                    self.free -= 1;
                }
                let more = cqueue::more(c.flags());
                self.on_recv(id, side, res, buf, more)
            }
            K_SEND => self.on_send(id, side, res),
            _ => false,
        }
    }

    fn on_wake(&mut self, more: bool) {
        let mut sink = [0u8; 256];
        while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        if !more {
            self.push(
                opcode::PollAdd::new(types::Fd(self.wake_rx.as_raw_fd()), 0x1)
                    .multi(true)
                    .build()
                    .user_data(K_WAKE),
            );
        }
        let Some(plane) = plane() else { return };
        let cmds = plane
            .cmds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for cmd in cmds {
            match cmd {
                Cmd::Adopt(a) => self.on_adopt(*a),
                Cmd::Close(id) => self.leave(id, Leaving::Close),
                Cmd::Kick => {
                    let stale: Vec<u32> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| c.shared.version.load(Ordering::Acquire) != c.version)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in stale {
                        self.leave(id, Leaving::Back);
                    }
                }
            }
        }
    }

    fn on_adopt(&mut self, a: Adoption) {
        // Registered (fixed) files spare the kernel a file lookup per operation.
        let fds = [a.client.as_raw_fd(), a.upstream.as_raw_fd()];
        // Ids are u32: after 2^32 adoptions one may come round while its namesake lives.
        let taken = self.conns.contains_key(&a.id);
        let Some(pair) = self.free_pairs.pop().filter(|_| !taken) else {
            let _ = a
                .reply
                .send(Returned::Back(a.client, a.upstream, Default::default()));
            return;
        };
        if self
            .ring
            .submitter()
            .register_files_update(2 * pair, &fds)
            .is_err()
        {
            self.free_pairs.push(pair);
            let _ = a
                .reply
                .send(Returned::Back(a.client, a.upstream, Default::default()));
            return;
        }
        ADOPTED.fetch_add(1, Ordering::Relaxed);
        let conn = Conn {
            pair,
            sides: [Side::new(a.client), Side::new(a.upstream)],
            version: a.version,
            shared: a.shared,
            reply: Some(a.reply),
            leaving: Leaving::Stay,
        };
        let stale = conn.shared.version.load(Ordering::Acquire) != conn.version;
        self.conns.insert(a.id, conn);
        if stale {
            self.leave(a.id, Leaving::Back);
        } else {
            self.arm(a.id, 0);
            self.arm(a.id, 1);
        }
    }

    /// Starts a multishot receive on `side`.
    fn arm(&mut self, id: u32, side: usize) {
        self.arm_with(id, side, false);
    }

    /// Starts a receive on `side`: multishot, or with `once` a single receive, which
    /// takes at most one ring buffer.
    fn arm_with(&mut self, id: u32, side: usize, once: bool) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let s = &mut c.sides[side];
        if s.recv_armed || s.eof || c.leaving != Leaving::Stay || s.queue.len() >= MAX_QUEUED {
            return;
        }
        s.recv_armed = true;
        s.cancelling = false;
        let slot = 2 * c.pair + side as u32;
        let entry = if once {
            opcode::Recv::new(types::Fixed(slot), std::ptr::null_mut(), 0)
                .buf_group(BGID)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        } else {
            opcode::RecvMulti::new(types::Fixed(slot), BGID).build()
        };
        self.push(entry.user_data(user_data(K_RECV, id, side, 0)));
    }

    fn cancel_recv(&mut self, id: u32, side: usize) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let s = &mut c.sides[side];
        if s.recv_armed && !s.cancelling {
            s.cancelling = true;
            self.push(
                opcode::AsyncCancel::new(user_data(K_RECV, id, side, 0))
                    .build()
                    .user_data(K_CANCEL),
            );
        }
    }

    /// Re-arms the sides whose receive found the ring empty: first in the next
    /// submission, and one buffer each (see `starved`).
    fn rearm_starved(&mut self) {
        let later = std::mem::take(&mut self.pending);
        for (id, side) in std::mem::take(&mut self.starved) {
            self.arm_with(id, side, true);
        }
        self.pending.extend(later);
    }

    fn on_recv(&mut self, id: u32, side: usize, res: i32, buf: Option<u16>, more: bool) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            // A completion for a connection already gone: only its buffer matters.
            return buf.map(|b| self.give(b)).is_some();
        };
        if !more {
            c.sides[side].recv_armed = false;
            c.sides[side].cancelling = false;
        }
        let mut returned = false;
        if res > 0 {
            let Some(bid) = buf else { return false };
            c.stats(side)
                .received
                .fetch_add(res as u64, Ordering::Relaxed);
            // Sent from the ring buffer while the ring has plenty; when it runs low
            // (peers that stopped reading pin buffers), copied out so that buffer goes
            // back at once and receives keep flowing for everyone else.
            let chunk = if self.free > LOW_WATER {
                Chunk::Ring {
                    bid,
                    off: 0,
                    len: res as u32,
                }
            } else {
                let buf = self.copy_out(ring_slice(self.bufs, bid, 0, res as u32));
                self.give(bid);
                returned = true;
                Chunk::Heap { buf, off: 0 }
            };
            let Some(c) = self.conns.get_mut(&id) else {
                return returned;
            };
            c.sides[side].queue.push_back(chunk);
            let full = c.sides[side].queue.len() >= MAX_QUEUED;
            self.send_next(id, side);
            if full {
                self.cancel_recv(id, side);
            } else if !more {
                self.arm(id, side);
            }
        } else if res == 0 {
            c.sides[side].eof = true;
            self.send_next(id, side);
        } else if res == -ENOBUFS {
            self.starved.push((id, side));
        } else if res == -ECANCELED {
            // Stopped on purpose: re-armed when the queue drains, unless leaving.
            self.send_next(id, side);
        } else {
            self.leave(id, Leaving::Close);
        }
        self.settle(id);
        returned
    }

    /// Starts the next send of `side`'s queue, passes an EOF on once it is empty, and
    /// re-arms a receive that stopped for a full queue.
    fn send_next(&mut self, id: u32, side: usize) {
        let bufs = self.bufs;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.leaving != Leaving::Stay {
            // Closing, or handing back: what is queued goes back with the sockets.
            return;
        }
        let peer = 2 * c.pair + (1 - side) as u32;
        let s = &mut c.sides[side];
        if s.send_in_flight {
            return;
        }
        if let Some(front) = s.queue.front() {
            s.send_in_flight = true;
            let rest = front.rest(bufs);
            let (ptr, len, bid) = (rest.as_ptr(), rest.len() as u32, front.bid());
            self.push(
                opcode::Send::new(types::Fixed(peer), ptr, len)
                    .flags(0x4000 /* MSG_NOSIGNAL */ | 0x100 /* MSG_WAITALL */)
                    .build()
                    .user_data(user_data(K_SEND, id, side, bid)),
            );
        } else if s.eof {
            let _ = c.sides[1 - side].sock.shutdown(Shutdown::Write);
        } else if !s.recv_armed && !s.cancelling {
            self.arm(id, side);
        }
    }

    fn on_send(&mut self, id: u32, side: usize, res: i32) -> bool {
        let bufs = self.bufs;
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let s = &mut c.sides[side];
        s.send_in_flight = false;
        let mut freed = Vec::new();
        // A send cancelled for a hand-back reports the bytes it had sent, or ECANCELED.
        let res = if res == -ECANCELED && c.leaving == Leaving::Back {
            0
        } else {
            res
        };
        if res < 0 {
            // The peer is gone: drop what is queued.
            freed.extend(s.queue.drain(..));
            self.leave(id, Leaving::Close);
        } else {
            let sent = res.max(0) as usize;
            c.stats(side).sent.fetch_add(sent as u64, Ordering::Relaxed);
            let q = &mut c.sides[side].queue;
            if let Some(front) = q.front_mut() {
                front.advance(sent);
                if front.rest(bufs).is_empty() {
                    freed.extend(q.pop_front());
                }
            }
            self.send_next(id, side);
        }
        let mut returned = false;
        for chunk in freed {
            returned |= self.release(chunk);
        }
        self.settle(id);
        returned
    }

    /// Starts taking a connection off the plane.
    fn leave(&mut self, id: u32, how: Leaving) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.leaving == Leaving::Close || c.leaving == how {
            return;
        }
        c.leaving = how;
        if how == Leaving::Close {
            // Shutting both sockets down fails whatever is in flight at once.
            for s in &c.sides {
                let _ = s.sock.shutdown(Shutdown::Both);
            }
        } else {
            // Stop reading and stop writing: a send stuck on a peer that does not read
            // must not hold the hand-back (its unsent rest goes back with the sockets).
            let mut cancels = Vec::new();
            for (side, s) in c.sides.iter().enumerate() {
                if let (true, Some(front)) = (s.send_in_flight, s.queue.front()) {
                    cancels.push(user_data(K_SEND, id, side, front.bid()));
                }
            }
            for u in cancels {
                self.push(opcode::AsyncCancel::new(u).build().user_data(K_CANCEL));
            }
            self.cancel_recv(id, 0);
            self.cancel_recv(id, 1);
        }
        self.settle(id);
    }

    /// Finishes a connection whose work is done: both directions ended, or it is
    /// leaving and nothing is in flight any more.
    fn settle(&mut self, id: u32) {
        let Some(c) = self.conns.get(&id) else { return };
        let quiet = !c.sides[0].busy() && !c.sides[1].busy();
        let drained = c.sides[0].queue.is_empty() && c.sides[1].queue.is_empty();
        let done = match c.leaving {
            Leaving::Stay => quiet && drained && c.sides[0].eof && c.sides[1].eof,
            Leaving::Back => quiet,
            Leaving::Close => quiet,
        };
        if !done {
            return;
        }
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        // Nothing is in flight, so the slots can go: the table's references to the
        // sockets drop now, before the sockets are returned or closed.
        if self
            .ring
            .submitter()
            .register_files_update(2 * c.pair, &[-1, -1])
            .is_ok()
        {
            self.free_pairs.push(c.pair);
        }
        let mut returned = false;
        let mut unsent: [Vec<u8>; 2] = Default::default();
        for (side, s) in c.sides.iter_mut().enumerate() {
            for chunk in s.queue.drain(..) {
                unsent[side].extend_from_slice(chunk.rest(self.bufs));
                returned |= self.release(chunk);
            }
        }
        if returned {
            self.publish();
        }
        let reply = c.reply.take();
        let [client, upstream] = c.sides;
        let out = if c.leaving == Leaving::Back {
            Returned::Back(client.sock, upstream.sock, unsent)
        } else {
            Returned::Ended
        };
        if let Some(r) = reply {
            let _ = r.send(out);
        }
    }
}
