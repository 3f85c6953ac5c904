//! The `net.*` kinds on a real network the test builds: two network namespaces joined by
//! a veth pair (`a` 10.77.0.1, `b` 10.77.0.2), real TCP and UDP sockets made inside them
//! (a thread enters the namespace with setns; its sockets stay there). A partition stops
//! what it names and nothing else, loss drops its share, the rate limit holds, and the
//! undo record alone (after a trip through JSON, as `livefire recover` reads it) leaves
//! no livefire table or qdisc behind. Bad input is an error with nothing applied.
//! Needs root, nft, ip and tc: skips loudly without them (fails under CI=true).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use livefire_core::undo::UndoRecord;
use livefire_faults::{Prepared, Targets, check, prepare, undo};
use livefire_spec::{Fault, Target};

const A_IP: &str = "10.77.0.1";
const B_IP: &str = "10.77.0.2";

/// Two namespaces joined by a veth pair, deleted (with everything in them) when dropped.
struct Net {
    a: String,
    b: String,
}

impl Net {
    /// The network, or `None` after saying loudly why this machine cannot build one.
    fn new(tag: &str) -> Option<Net> {
        if !prerequisites() {
            return None;
        }
        let pid = std::process::id();
        let net = Net {
            a: format!("lf-t-{pid}-{tag}-a"),
            b: format!("lf-t-{pid}-{tag}-b"),
        };
        for ns in [&net.a, &net.b] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n", &net.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns",
            &net.b,
        ]);
        for (ns, dev, addr) in [(&net.a, "va", A_IP), (&net.b, "vb", B_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        Some(net)
    }

    /// The targets a run would declare: `a` and `b` as netns targets.
    fn targets(&self) -> Targets {
        let mut targets = Targets::default();
        for (name, ns) in [("a", &self.a), ("b", &self.b)] {
            targets.targets.insert(
                name.into(),
                Target {
                    netns: Some(ns.clone()),
                    ..Default::default()
                },
            );
        }
        targets
    }

    fn ns(&self, which: &str) -> &str {
        if which == "a" { &self.a } else { &self.b }
    }

    /// livefire's tables and root qdiscs left in either namespace (none, when clean).
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for ns in [&self.a, &self.b] {
            let tables = sh(&["ip", "netns", "exec", ns, "nft", "list", "tables"]);
            left.extend(
                tables
                    .lines()
                    .filter(|l| l.contains("livefire_"))
                    .map(|l| format!("{ns}: {l}")),
            );
            let qdiscs = sh(&["ip", "netns", "exec", ns, "tc", "qdisc", "show"]);
            left.extend(
                qdiscs
                    .lines()
                    .filter(|l| l.contains("tbf"))
                    .map(|l| format!("{ns}: {l}")),
            );
        }
        left
    }
}

/// Whether this machine has what the tests need (root, nft, ip, tc); says loudly why
/// not when it does not.
fn prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        livefire_testkit::skip_missing("root (network namespaces)", "run the tests as root");
        return false;
    }
    for (tool, package) in [("nft", "nftables"), ("ip", "iproute2"), ("tc", "iproute2")] {
        if Command::new(tool).arg("-V").output().is_err() {
            livefire_testkit::skip_missing(
                &format!("`{tool}` not found"),
                &format!("apt-get install {package}"),
            );
            return false;
        }
    }
    true
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread inside network namespace `ns`: sockets it makes live there.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn spec<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    livefire_spec::de::from_node(&livefire_spec::yaml::parse(yaml).unwrap())
        .unwrap_or_else(|e| panic!("{yaml}: {e:?}"))
}

/// Prepares `fault` under activity `name` and applies it; the prepared fault.
fn apply(net: &Net, fault: &str, name: &str) -> Prepared {
    let fault: Fault = spec(fault);
    let p =
        prepare(&fault, &net.targets(), name).unwrap_or_else(|e| panic!("{name}: prepare: {e}"));
    p.apply(None)
        .unwrap_or_else(|e| panic!("{name}: apply: {e}"));
    let seen = p.verify().unwrap().unwrap();
    assert!(seen.applied && !seen.clean, "{name}: {seen:?}");
    p
}

/// Undoes `p` from its record alone, after a trip through JSON (as `recover` reads the
/// ledger), and checks nothing of livefire's is left.
fn undo_from_record(net: &Net, p: &Prepared, name: &str) {
    let json = serde_json::to_string(p.undo.as_ref().unwrap()).unwrap();
    let record: UndoRecord = serde_json::from_str(&json).unwrap();
    undo(&record).unwrap_or_else(|e| panic!("{name}: undo: {e}"));
    let seen = p.verify().unwrap().unwrap();
    assert!(seen.clean && !seen.applied, "{name}: after undo: {seen:?}");
    assert_eq!(net.leftovers(), Vec::<String>::new(), "{name}: left behind");
    // Undo is idempotent: the engine retries, and recover may run after a rollback.
    undo(&record).unwrap_or_else(|e| panic!("{name}: second undo: {e}"));
}

/// A TCP server in `b` on an ephemeral port that accepts and drops connections.
fn tcp_server(net: &Net) -> SocketAddr {
    let l = in_ns(net.ns("b"), || TcpListener::bind((B_IP, 0)).unwrap());
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    addr
}

/// Whether a TCP connection from `a` to `to` is set up within a second.
fn tcp_ok(net: &Net, to: SocketAddr) -> bool {
    in_ns(net.ns("a"), move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok()
    })
}

/// Whether a UDP datagram from `a` reaches `rx` (bound in `b`) within half a second.
fn udp_ok(net: &Net, rx: &UdpSocket) -> bool {
    let to = rx.local_addr().unwrap();
    let tx = in_ns(net.ns("a"), || UdpSocket::bind((A_IP, 0)).unwrap());
    // A datagram dropped on its way out fails the send (EPERM): it did not get through.
    if tx.send_to(b"ping", to).is_err() {
        return false;
    }
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0; 16];
    let got = rx.recv_from(&mut buf).is_ok();
    // Drain anything late, so the next check starts empty.
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while rx.recv_from(&mut buf).is_ok() {}
    got
}

/// What gets through from `a`: TCP to b's first server, TCP to its second, UDP to b.
type Reach = (bool, bool, bool);

#[test]
fn a_partition_stops_what_it_names_and_its_undo_restores_it() {
    let Some(net) = Net::new("part") else { return };
    let p1 = tcp_server(&net);
    let p2 = tcp_server(&net);
    let udp = in_ns(net.ns("b"), || UdpSocket::bind((B_IP, 0)).unwrap());
    let reach = |net: &Net| (tcp_ok(net, p1), tcp_ok(net, p2), udp_ok(net, &udp));
    assert_eq!(
        reach(&net),
        (true, true, true),
        "the network works before any fault"
    );

    // (name, target, attributes, what still gets through: TCP to p1, TCP to p2, UDP a->b)
    let cases: Vec<(&str, &str, String, Reach)> = vec![
        (
            "cut from b",
            "a",
            format!("peers: [\"{B_IP}\"]"),
            (false, false, false),
        ),
        (
            "cut from b's first port",
            "a",
            format!("peers: [\"{p1}\"]"),
            (false, true, true),
        ),
        (
            "cut from the subnet, egress",
            "a",
            "peers: [\"10.77.0.0/24\"], direction: out".into(),
            (false, false, false),
        ),
        // Inbound only: the datagram a sends goes out, but no SYN-ACK comes back.
        (
            "cut from b, ingress",
            "a",
            format!("peers: [\"{B_IP}\"], direction: in"),
            (false, false, true),
        ),
        (
            "b cut from everyone",
            "b",
            String::new(),
            (false, false, false),
        ),
        (
            "cut from another address",
            "a",
            "peers: [\"10.77.0.9\"]".into(),
            (true, true, true),
        ),
    ];
    for (name, target, attrs, through) in cases {
        let fault = if attrs.is_empty() {
            format!("net.partition: {{ target: {target} }}")
        } else {
            format!("net.partition: {{ target: {target}, {attrs} }}")
        };
        let f: Fault = spec(&fault);
        let prepared = prepare(&f, &net.targets(), name).unwrap();
        assert_eq!(
            reach(&net),
            (true, true, true),
            "{name}: prepare changed nothing"
        );
        prepared
            .apply(None)
            .unwrap_or_else(|e| panic!("{name}: apply: {e}"));
        assert_eq!(reach(&net), through, "{name}: during the partition");
        undo_from_record(&net, &prepared, name);
        assert_eq!(reach(&net), (true, true, true), "{name}: after undo");
    }
}

/// How many of `n` datagrams sent from `a` arrive at a socket in `b`.
fn datagrams_arriving(net: &Net, n: usize) -> usize {
    let rx = in_ns(net.ns("b"), || UdpSocket::bind((B_IP, 0)).unwrap());
    let to = rx.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0; 64];
        // Ends half a second after the last datagram.
        while rx.recv_from(&mut buf).is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let tx = in_ns(net.ns("a"), || UdpSocket::bind((A_IP, 0)).unwrap());
    for i in 0..n {
        // A datagram dropped on its way out fails its send (EPERM): it is lost.
        let _ = tx.send_to(format!("datagram {i}").as_bytes(), to);
        if i % 25 == 24 {
            // Paced by the receiver, not by a clock: the next 25 go only once it has
            // read what arrived (its count held still for 10 ms), so a busy machine never
            // overflows its buffer and only the fault drops.
            let mut last = usize::MAX;
            loop {
                let now = count.load(Ordering::SeqCst);
                if now == last {
                    break;
                }
                last = now;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    reader.join().unwrap();
    count.load(Ordering::SeqCst)
}

#[test]
fn loss_drops_its_share_of_packets() {
    let Some(net) = Net::new("loss") else { return };
    const N: usize = 2000;
    assert_eq!(
        datagrams_arriving(&net, N),
        N,
        "without a fault every datagram arrives"
    );
    // (name, attributes, share set); a datagram meets one hook either way.
    let cases = [
        (
            "lose 30% into b",
            "target: b, rate: 30%, direction: in",
            0.30,
        ),
        (
            "lose 50% to b",
            &*format!("target: a, rate: 50%, peers: [\"{B_IP}\"]"),
            0.50,
        ),
    ];
    for (name, attrs, share) in cases {
        let p = apply(&net, &format!("net.loss: {{ {attrs} }}"), name);
        let arrived = datagrams_arriving(&net, N);
        let lost = (N - arrived) as f64 / N as f64;
        // 5 standard deviations of a binomial draw of 2000 at these shares is < 0.06.
        assert!(
            (lost - share).abs() <= 0.06,
            "{name}: lost {lost:.3} of {N} datagrams, set {share}"
        );
        undo_from_record(&net, &p, name);
        assert_eq!(
            datagrams_arriving(&net, N),
            N,
            "{name}: after undo every datagram arrives"
        );
    }
}

/// Bytes per second `a` reads from a TCP sender in `b` over about `secs`, measured from
/// the first 64 KiB on (what queued before the limit is not counted). Returns (bytes,
/// seconds) as measured.
fn throughput(net: &Net, secs: f64) -> (u64, f64) {
    let l = in_ns(net.ns("b"), || TcpListener::bind((B_IP, 0)).unwrap());
    let addr = l.local_addr().unwrap();
    let sender = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while s.write_all(&chunk).is_ok() {}
    });
    let mut s = in_ns(net.ns("a"), move || TcpStream::connect(addr).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut skipped = 0;
    while skipped < 64 * 1024 {
        skipped += s.read(&mut buf).unwrap();
    }
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes += n as u64,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(s);
    sender.join().unwrap();
    (bytes, elapsed)
}

#[test]
fn the_bandwidth_limit_holds_and_its_undo_lifts_it() {
    let Some(net) = Net::new("bw") else { return };
    const RATE: u64 = 256 * 1024;
    let (bytes, secs) = throughput(&net, 0.5);
    assert!(
        bytes as f64 > 4.0 * RATE as f64 * secs,
        "without a limit the link is far faster than the limit: {bytes} B in {secs:.2} s"
    );
    let p = apply(
        &net,
        "net.bandwidth: { target: b, rate: 256KiB }",
        "limit b",
    );
    let (bytes, secs) = throughput(&net, 2.0);
    // The bucket may hold one burst (a tenth of a second's worth, at least 16 KiB) more.
    let burst = (RATE / 10).max(16 * 1024) as f64;
    let allowed = RATE as f64 * secs * 1.15 + burst;
    assert!(bytes > 0, "the limit is a limit, not a partition");
    assert!(
        bytes as f64 <= allowed,
        "{bytes} B in {secs:.2} s is more than {RATE} B/s allows ({allowed:.0} B)"
    );
    undo_from_record(&net, &p, "limit b");
    let (bytes, secs) = throughput(&net, 0.5);
    assert!(
        bytes as f64 > 4.0 * RATE as f64 * secs,
        "after undo the limit is gone: {bytes} B in {secs:.2} s"
    );
}

#[test]
fn a_foreign_qdisc_is_never_replaced() {
    let Some(net) = Net::new("qd") else { return };
    // Someone else's root qdisc on b's device.
    ip(&[
        "netns", "exec", &net.b, "tc", "qdisc", "add", "dev", "vb", "root", "handle", "1:", "pfifo",
    ]);
    let fault: Fault = spec("net.bandwidth: { target: b, rate: 1MiB }");
    let err = prepare(&fault, &net.targets(), "limit b").unwrap_err();
    assert!(
        err.to_string().contains("`vb` in network namespace")
            && err.to_string().contains("root qdisc `pfifo` (handle 1:)"),
        "{err}"
    );
    let shown = sh(&[
        "ip", "netns", "exec", &net.b, "tc", "qdisc", "show", "dev", "vb",
    ]);
    assert!(
        shown.contains("pfifo 1: root"),
        "the foreign qdisc is untouched: {shown}"
    );
    // A record for it (as a run whose apply failed would leave) removes nothing foreign.
    let detail = undo(&UndoRecord::Qdisc {
        netns: Some(net.b.clone()),
        devices: vec!["vb".into()],
        handle: 1,
    })
    .unwrap();
    assert!(detail.contains("not livefire's, left alone"), "{detail}");
    let shown = sh(&[
        "ip", "netns", "exec", &net.b, "tc", "qdisc", "show", "dev", "vb",
    ]);
    assert!(
        shown.contains("pfifo 1: root"),
        "the foreign qdisc is untouched: {shown}"
    );
}

#[test]
fn a_table_of_the_same_name_that_is_not_this_faults_is_left_alone() {
    let Some(net) = Net::new("tbl") else { return };
    let fault: Fault = spec("net.partition: { target: a }");
    let p = prepare(&fault, &net.targets(), "cut a").unwrap();
    let Some(UndoRecord::NftTable { table, .. }) = p.undo.clone() else {
        panic!("a partition's record names its table: {:?}", p.undo)
    };
    // Another run made the table between this prepare and apply.
    let script = format!("table inet {table} {{ comment \"another run\"; }}");
    let out = Command::new("ip")
        .args(["netns", "exec", &net.a, "nft", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = p.apply(None).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    // The failed apply is rolled back from its record: the other run's table stays.
    let detail = undo(p.undo.as_ref().unwrap()).unwrap();
    assert!(detail.contains("not this fault's"), "{detail}");
    let tables = sh(&["ip", "netns", "exec", &net.a, "nft", "list", "tables"]);
    assert!(tables.contains(&table), "{tables}");
    // And a new prepare refuses while it is there.
    let err = prepare(&fault, &net.targets(), "cut a").unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

/// What is refused, and by which step, with nothing applied. Needs no network: only the
/// first case looks for a namespace (that does not exist).
#[test]
fn bad_input_is_refused_with_nothing_applied() {
    let mut targets = Targets::default();
    for (name, yaml) in [
        ("gone", "{ netns: lf-t-does-not-exist }"),
        ("box", "{ host: {} }"),
        ("proc", "{ process: { pid: 1 } }"),
    ] {
        targets.targets.insert(name.into(), spec(yaml));
    }
    // (fault, what the error says)
    let cases = [
        (
            "net.partition: { target: gone, peers: [\"10.0.0.2\"] }",
            "network namespace `lf-t-does-not-exist` does not exist",
        ),
        (
            "net.partition: { target: box, peers: [db.internal] }",
            "peer `db.internal` is not an address",
        ),
        (
            "net.partition: { target: box, peers: [\"10.0.0.300\"] }",
            "peer `10.0.0.300` is not an address",
        ),
        (
            "net.partition: { target: box, peers: [\"10.0.0.0/33\"] }",
            "prefix length must be 0 to 32",
        ),
        (
            "net.partition: { target: box }",
            "on the host needs explicit `peers`",
        ),
        (
            "net.loss: { target: box, rate: 5% }",
            "on the host needs explicit `peers`",
        ),
        (
            "net.partition: { target: box, peers: [\"0.0.0.0/0\"] }",
            "too wide for the host",
        ),
        (
            "net.loss: { target: box, rate: 0%, peers: [\"10.0.0.2\"] }",
            "drops nothing",
        ),
        (
            "net.bandwidth: { target: box, rate: 0 }",
            "rate of 0 would stop all traffic",
        ),
        (
            "net.bandwidth: { target: box, rate: 1MiB }",
            "on the host needs `interface`",
        ),
        (
            "net.bandwidth: { target: proc, rate: 1MiB }",
            "acts on a netns or host target",
        ),
    ];
    let before = sh_or_empty(&["nft", "list", "tables"]);
    for (fault, says) in cases {
        let f: Fault = spec(fault);
        let err = match check(&f, &targets) {
            Err(e) => e,
            Ok(()) => prepare(&f, &targets, "bad").unwrap_err(),
        };
        assert!(
            err.to_string().contains(says),
            "{fault}: wanted `{says}`, got: {err}"
        );
    }
    assert_eq!(
        sh_or_empty(&["nft", "list", "tables"]),
        before,
        "nothing was applied"
    );
}

/// stdout of `argv`, or nothing where it cannot run (no nft, not root).
fn sh_or_empty(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn an_interface_the_namespace_lacks_is_refused_naming_those_it_has() {
    let Some(net) = Net::new("dev") else { return };
    let fault: Fault = spec("net.bandwidth: { target: b, rate: 1MiB, interface: eth9 }");
    let err = prepare(&fault, &net.targets(), "limit b").unwrap_err();
    assert!(
        err.to_string()
            .contains("interface `eth9` does not exist in network namespace")
            && err.to_string().contains("name one of `vb`"),
        "{err}"
    );
    assert_eq!(net.leftovers(), Vec::<String>::new());
}

#[test]
fn a_partition_on_the_host_cuts_only_the_port_it_names() {
    // The host's own ruleset: only a peer port this test listens on is dropped, so no
    // other traffic of this machine is touched while the test runs.
    if !prerequisites() {
        return;
    }
    let cut = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let (cut_addr, open_addr) = (cut.local_addr().unwrap(), open.local_addr().unwrap());
    for l in [cut, open] {
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c)
            }
        });
    }
    let ok = |a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok();
    assert!(
        ok(cut_addr) && ok(open_addr),
        "both answer before the fault"
    );
    let mut targets = Targets::default();
    targets.targets.insert("box".into(), spec("{ host: {} }"));
    let fault: Fault = spec(&format!(
        "net.partition: {{ target: box, peers: [\"{cut_addr}\"] }}"
    ));
    let name = format!("cut host port {}", std::process::id());
    let p = prepare(&fault, &targets, &name).unwrap();
    p.apply(None).unwrap_or_else(|e| panic!("apply: {e}"));
    let (cut_ok, open_ok) = (ok(cut_addr), ok(open_addr));
    let json = serde_json::to_string(p.undo.as_ref().unwrap()).unwrap();
    undo(&serde_json::from_str(&json).unwrap()).unwrap();
    assert!(!cut_ok, "the named port is cut off");
    assert!(open_ok, "another port of the same address still answers");
    assert!(ok(cut_addr), "after undo the named port answers again");
    let tables = sh(&["nft", "list", "tables"]);
    let Some(UndoRecord::NftTable { table, netns, .. }) = &p.undo else {
        panic!("{:?}", p.undo)
    };
    assert_eq!(netns, &None, "the host's ruleset, not a namespace's");
    assert!(!tables.contains(table.as_str()), "{tables}");
}
