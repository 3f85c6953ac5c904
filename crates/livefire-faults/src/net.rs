//! The kernel's network tools for the `net.*` kinds: `nft`, `ip` and `tc` run inside a
//! network namespace (`ip netns exec NAME ...`) or on the host, each with a time limit.
//! livefire changes only what it owns: an nftables table it created (family `inet`,
//! named after the activity, its comment a token the undo record holds) and a root `tbf`
//! qdisc it added on a device whose root qdisc was the kernel's default. Undo deletes
//! exactly those, and only while they are still livefire's.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use livefire_spec::net::Peer;
use livefire_spec::{Direction, Target};

use livefire_core::undo::UndoRecord;

use crate::{Action, Cx, FaultError, Prepared, Seen, Targets, target};

/// Why a network tool could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`{tool}` is not installed: install {package} (livefire applies net.* faults with it)")]
    Missing {
        tool: &'static str,
        package: &'static str,
    },
    #[error(
        "network namespace `{0}` does not exist: create it (`ip netns add {0}`) or fix the target's `netns:`"
    )]
    NoNetns(String),
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("`{command}` did not finish within {secs} s and was killed")]
    Timeout { command: String, secs: u64 },
    #[error("this kernel has no {what}, so `{kind}` cannot run here: {hint}")]
    Unsupported {
        what: &'static str,
        kind: &'static str,
        hint: &'static str,
    },
    #[error("interface `{dev}` does not exist in {place}: name one of {known}")]
    NoDevice {
        dev: String,
        place: String,
        known: String,
    },
    #[error("{0} has no network interface besides `lo`: name the device with `interface:`")]
    NoDevices(String),
    #[error(
        "`{dev}` in {place} has a root qdisc `{kind}` (handle {handle}) that is not the kernel's default: livefire never replaces a qdisc it did not put there; remove it or limit another device"
    )]
    ForeignQdisc {
        dev: String,
        place: String,
        kind: String,
        handle: String,
    },
    #[error(
        "nftables table `{table}` already exists in {place}: another run holds it, or a crashed run left it (run `livefire recover`)"
    )]
    TableExists { table: String, place: String },
    #[error("cannot read what `{command}` printed: {why}")]
    Unreadable { command: String, why: String },
}

/// How long one `nft`, `ip` or `tc` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The family of livefire's tables: one table matches IPv4 and IPv6.
pub(crate) const FAMILY: &str = "inet";

/// Where a fault acts: a named network namespace, or the host's own (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place(pub Option<String>);

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(n) => write!(f, "network namespace `{n}`"),
            None => f.write_str("the host"),
        }
    }
}

impl Place {
    /// Whether it is there to act in (the host always is).
    pub(crate) fn exists(&self) -> bool {
        match &self.0 {
            Some(n) => netns_exists(n),
            None => true,
        }
    }

    fn netns(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Whether the network namespace `name` exists (as `ip netns` names them, under
/// /run/netns).
pub fn netns_exists(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('/')
        && name != "."
        && name != ".."
        && Path::new("/run/netns").join(name).exists()
}

/// Refuses a network namespace that does not exist (what `livefire run` checks before
/// anything is applied).
pub fn check_netns(name: &str) -> Result<(), NetError> {
    if netns_exists(name) {
        Ok(())
    } else {
        Err(NetError::NoNetns(name.to_owned()))
    }
}

/// The `netns` or `host` target `name` as a [`Place`].
pub(crate) fn net_target(
    targets: &Targets,
    name: &str,
    kind: &'static str,
) -> Result<(Place, &'static str), FaultError> {
    let t: &Target = target(targets, name)?;
    match (&t.netns, &t.host) {
        (Some(ns), _) => Ok((Place(Some(ns.clone())), "netns")),
        (None, Some(_)) => Ok((Place(None), "host")),
        _ => Err(FaultError::WrongTarget {
            name: name.to_owned(),
            kind,
            wants: "netns or host",
        }),
    }
}

/// The place resolved now: the namespace must exist.
pub(crate) fn resolve(place: &Place) -> Result<(), NetError> {
    match place.netns() {
        Some(n) => check_netns(n),
        None => Ok(()),
    }
}

/// Refuses early when a tool the kind needs is not on PATH.
pub(crate) fn require(tool: &'static str) -> Result<(), NetError> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()));
    if found { Ok(()) } else { Err(missing(tool)) }
}

/// Runs `argv` in `place` with `stdin` fed to it; its stdout, or why it failed.
pub(crate) fn run(place: &Place, argv: &[&str], stdin: Option<&str>) -> Result<String, NetError> {
    let mut full: Vec<&str> = Vec::new();
    if let Some(ns) = place.netns() {
        full.extend(["ip", "netns", "exec", ns]);
    }
    full.extend(argv);
    let command = full.join(" ");
    let mut cmd = Command::new(full[0]);
    cmd.args(&full[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(full[0]),
        _ => NetError::Failed {
            command: command.clone(),
            stderr: e.to_string(),
        },
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes its stdin; what it printed says why.
        let _ = pipe.write_all(text.as_bytes());
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(NetError::Failed {
                command,
                stderr: e.to_string(),
            });
        }
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(NetError::Timeout {
                command,
                secs: TOOL_TIMEOUT.as_secs(),
            });
        }
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Err(NetError::Failed {
        command,
        stderr: if stderr.is_empty() {
            format!("exit status {}", out.status)
        } else {
            stderr.join(" | ")
        },
    })
}

/// The tool `program` is missing, and the package that has it.
fn missing(program: &str) -> NetError {
    match program {
        "nft" => NetError::Missing {
            tool: "nft",
            package: "nftables",
        },
        "tc" => NetError::Missing {
            tool: "tc",
            package: "iproute2",
        },
        _ => NetError::Missing {
            tool: "ip",
            package: "iproute2",
        },
    }
}

/// A token no other run will write: the comment of the table a fault creates, kept in
/// its undo record.
pub(crate) fn token() -> String {
    let mut h = RandomState::new().build_hasher();
    std::process::id().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    format!("livefire {:016x}", h.finish())
}

/// livefire's table for `activity`: `livefire_` and the activity's name made safe for
/// nft (lower-case letters, digits, `_`), then a short hash of the name as written, so
/// two names that read alike never share a table.
pub(crate) fn table_name(activity: &str) -> String {
    let mut slug = String::new();
    for c in activity.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches('_');
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for b in activity.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("livefire_{slug}_{:04x}", hash & 0xffff)
}

/// What `nft -a list table` shows of livefire's table, if it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableSeen {
    pub handle: u64,
    pub comment: Option<String>,
    /// The whole listing, for messages.
    pub listing: String,
}

/// The table `table` in `place`, or `None` when there is none (or the namespace is gone).
pub(crate) fn find_table(place: &Place, table: &str) -> Result<Option<TableSeen>, NetError> {
    if !place.exists() {
        return Ok(None);
    }
    match run(place, &["nft", "-a", "list", "table", FAMILY, table], None) {
        Ok(listing) => parse_table(&listing)
            .map(Some)
            .ok_or_else(|| NetError::Unreadable {
                command: format!("nft -a list table {FAMILY} {table}"),
                why: format!("no `table ... # handle N` line in {listing:?}"),
            }),
        Err(NetError::Failed { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn parse_table(listing: &str) -> Option<TableSeen> {
    let mut lines = listing.lines().map(str::trim);
    let first = lines.find(|l| l.starts_with("table "))?;
    let handle = first.rsplit_once("# handle ")?.1.trim().parse().ok()?;
    let comment = lines
        .take_while(|l| !l.starts_with("chain ") && *l != "}")
        .find_map(|l| l.strip_prefix("comment "))
        .map(|c| c.trim_matches('"').to_owned());
    Some(TableSeen {
        handle,
        comment,
        listing: listing.to_owned(),
    })
}

/// Creates livefire's table in one nft transaction (all of it, or nothing).
pub(crate) fn create_table(place: &Place, script: &str) -> Result<(), NetError> {
    run(place, &["nft", "-f", "-"], Some(script)).map(drop)
}

/// Deletes `table` from `place` if its comment is still `token`. Says what it did.
pub(crate) fn delete_table(place: &Place, table: &str, token: &str) -> Result<String, NetError> {
    if !place.exists() {
        return Ok(format!(
            "{place} is gone, and livefire's table `{table}` with it"
        ));
    }
    let Some(seen) = find_table(place, table)? else {
        return Ok(format!(
            "table `{table}` was not in {place}: nothing to delete"
        ));
    };
    if seen.comment.as_deref() != Some(token) {
        return Ok(format!(
            "table `{table}` in {place} is not this fault's (comment {:?}): left alone",
            seen.comment.unwrap_or_default()
        ));
    }
    // By handle: a table made again under the same name since the listing is not this one.
    let handle = seen.handle.to_string();
    run(
        place,
        &["nft", "delete", "table", FAMILY, "handle", &handle],
        None,
    )?;
    Ok(format!("deleted nftables table `{table}` in {place}"))
}

/// Which hooks a fault's rules go on, and what each matches of a peer.
pub(crate) struct Rules<'a> {
    pub peers: &'a [Peer],
    pub direction: Direction,
    /// `numgen` drops this share (0..1) of the matching packets; `None` drops them all.
    pub share: Option<f64>,
}

/// Parts per million: nft's `numgen random mod 1000000` draws from 0..1000000.
const PPM: u64 = 1_000_000;

impl Rules<'_> {
    /// The nft script for table `table` with comment `token`.
    pub(crate) fn script(&self, table: &str, token: &str) -> String {
        let verdict = match self.share {
            Some(share) => {
                let ppm = ((share * PPM as f64).round() as u64).min(PPM);
                format!("numgen random mod {PPM} < {ppm} drop")
            }
            None => "drop".to_owned(),
        };
        let mut s = format!("table {FAMILY} {table} {{\n  comment \"{token}\"\n");
        let hooks: &[(&str, &str, &str, &str)] = match self.direction {
            Direction::In => &[("input", "saddr", "sport", "iifname")],
            Direction::Out => &[("output", "daddr", "dport", "oifname")],
            Direction::Both => &[
                ("input", "saddr", "sport", "iifname"),
                ("output", "daddr", "dport", "oifname"),
            ],
        };
        for (hook, addr, port, ifname) in hooks {
            s.push_str(&format!(
                "  chain {hook} {{\n    type filter hook {hook} priority -10; policy accept;\n"
            ));
            if self.peers.is_empty() {
                // Every peer: all traffic of the namespace except its own loopback.
                s.push_str(&format!("    {ifname} != \"lo\" {verdict}\n"));
            }
            for p in self.peers {
                let proto = match p.addr {
                    std::net::IpAddr::V4(_) => "ip",
                    std::net::IpAddr::V6(_) => "ip6",
                };
                let net = if p.prefix == max_prefix(p) {
                    p.addr.to_string()
                } else {
                    format!("{}/{}", p.addr, p.prefix)
                };
                let port_match = match p.port {
                    Some(n) => format!(" meta l4proto {{ tcp, udp, sctp }} th {port} {n}"),
                    None => String::new(),
                };
                s.push_str(&format!("    {proto} {addr} {net}{port_match} {verdict}\n"));
            }
            s.push_str("  }\n");
        }
        s.push_str("}\n");
        s
    }

    /// For people: "to and from 10.0.0.2, 10.0.1.0/24".
    pub(crate) fn describe(&self) -> String {
        let peers = if self.peers.is_empty() {
            "every peer (all but loopback)".to_owned()
        } else {
            self.peers
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.direction {
            Direction::In => format!("from {peers}"),
            Direction::Out => format!("to {peers}"),
            Direction::Both => format!("to and from {peers}"),
        }
    }
}

fn max_prefix(p: &Peer) -> u8 {
    if p.addr.is_ipv4() { 32 } else { 128 }
}

/// Parses every `peers` entry, or says which is wrong.
pub(crate) fn peers(written: &[String]) -> Result<Vec<Peer>, FaultError> {
    written
        .iter()
        .map(|p| Peer::parse(p).map_err(|e| FaultError::Invalid(e.to_string())))
        .collect()
}

/// On the host, a fault names its peers and no range that would cut the machine off.
pub(crate) fn check_host_peers(
    kind: &'static str,
    peers: &[Peer],
    host: bool,
) -> Result<(), FaultError> {
    if !host {
        return Ok(());
    }
    if peers.is_empty() {
        return Err(FaultError::Invalid(format!(
            "`{kind}` on the host needs explicit `peers` (it refuses to cut the whole machine off)"
        )));
    }
    match peers.iter().find(|p| p.too_wide_for_host()) {
        Some(p) => Err(FaultError::Invalid(format!(
            "peer `{p}` is too wide for the host (it would cut the machine off): name narrower ranges"
        ))),
        None => Ok(()),
    }
}

/// A root qdisc as `tc -j qdisc show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RootQdisc {
    pub kind: String,
    /// `0:` for the kernel's default qdisc; `4c46:` as tc prints handles.
    pub handle: String,
    /// tbf's rate in bytes per second.
    pub rate: Option<u64>,
}

/// The root qdisc of `dev` in `place`; `None` when the device is gone.
pub(crate) fn root_qdisc(place: &Place, dev: &str) -> Result<Option<RootQdisc>, NetError> {
    let out = match run(place, &["tc", "-j", "qdisc", "show", "dev", dev], None) {
        Ok(out) => out,
        Err(NetError::Failed { stderr, .. })
            if stderr.contains("Cannot find device") || stderr.contains("No such device") =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let unreadable = |why: String| NetError::Unreadable {
        command: format!("tc -j qdisc show dev {dev}"),
        why,
    };
    let list: serde_json::Value =
        serde_json::from_str(out.trim()).map_err(|e| unreadable(e.to_string()))?;
    let root = list
        .as_array()
        .and_then(|l| l.iter().find(|q| q["root"].as_bool() == Some(true)));
    Ok(Some(match root {
        Some(q) => RootQdisc {
            kind: q["kind"].as_str().unwrap_or_default().to_owned(),
            handle: q["handle"].as_str().unwrap_or_default().to_owned(),
            rate: q["options"]["rate"].as_u64(),
        },
        // A device with no root qdisc shown behaves as the default.
        None => RootQdisc {
            kind: "none".to_owned(),
            handle: "0:".to_owned(),
            rate: None,
        },
    }))
}

/// The kernel's default root qdisc has handle `0:`; one a person or a tool added has
/// another.
pub(crate) fn is_default(q: &RootQdisc) -> bool {
    q.handle == "0:"
}

/// The handle `h` as tc prints it (`4c46:`).
pub(crate) fn handle_text(h: u16) -> String {
    format!("{h:x}:")
}

/// The devices of `place` other than `lo`.
pub(crate) fn devices(place: &Place) -> Result<Vec<String>, NetError> {
    let out = run(place, &["ip", "-j", "link", "show"], None)?;
    let list: serde_json::Value =
        serde_json::from_str(out.trim()).map_err(|e| NetError::Unreadable {
            command: "ip -j link show".into(),
            why: e.to_string(),
        })?;
    Ok(list
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|d| d["ifname"].as_str())
                .filter(|n| *n != "lo")
                .map(String::from)
                .collect()
        })
        .unwrap_or_default())
}

/// Adds livefire's tbf as the root qdisc of `dev` (tc refuses to replace a root qdisc
/// that is not the default, so a foreign one is never clobbered).
pub(crate) fn add_tbf(
    place: &Place,
    dev: &str,
    handle: u16,
    rate: u64,
    burst: u64,
) -> Result<(), NetError> {
    let (h, rate, burst) = (handle_text(handle), format!("{rate}bps"), burst.to_string());
    let argv = [
        "tc", "qdisc", "add", "dev", dev, "root", "handle", &h, "tbf", "rate", &rate, "burst",
        &burst, "latency", "200ms",
    ];
    match run(place, &argv, None) {
        Err(NetError::Failed { stderr, .. }) if stderr.contains("qdisc kind is unknown") => {
            Err(NetError::Unsupported {
                what: "tbf qdisc (sch_tbf)",
                kind: "net.bandwidth",
                hint: "load the module (`modprobe sch_tbf`) or use `proxy.bandwidth` on a proxy target",
            })
        }
        other => other.map(drop),
    }
}

/// Removes livefire's tbf (kind `tbf`, handle `handle`) from each of `devices`; a
/// device that is gone or holds another qdisc is left alone. Says what it did.
pub(crate) fn remove_tbf(
    place: &Place,
    devices: &[String],
    handle: u16,
) -> Result<String, NetError> {
    if !place.exists() {
        return Ok(format!("{place} is gone, and livefire's qdiscs with it"));
    }
    let mut done = Vec::new();
    for dev in devices {
        match root_qdisc(place, dev)? {
            None => done.push(format!("{dev} is gone")),
            Some(q) if q.kind == "tbf" && q.handle == handle_text(handle) => {
                run(place, &["tc", "qdisc", "del", "dev", dev, "root"], None)?;
                done.push(format!("{dev}: tbf removed"));
            }
            Some(q) => done.push(format!(
                "{dev}: root qdisc `{}` ({}) is not livefire's, left alone",
                q.kind, q.handle
            )),
        }
    }
    Ok(format!("{} in {place}", done.join("; ")))
}

/// A qdisc handle (major number) for one fault: never 0 (the default) or ffff (root).
pub(crate) fn fresh_handle() -> u16 {
    let mut h = RandomState::new().build_hasher();
    std::process::id().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    (h.finish() % 0xfffe) as u16 + 1
}

/// What `net.partition` and `net.loss` share: check the target and peers, then a table
/// of drop rules.
pub(crate) struct NftFault<'a> {
    pub kind: &'static str,
    pub target: &'a str,
    pub peers: &'a [String],
    pub direction: Option<Direction>,
    /// `net.loss`'s share; `None` for a partition (drop everything that matches).
    pub share: Option<f64>,
}

impl NftFault<'_> {
    /// What the file and the targets alone show is wrong.
    pub(crate) fn check(&self, targets: &Targets) -> Result<(Place, Vec<Peer>), FaultError> {
        let (place, _) = net_target(targets, self.target, self.kind)?;
        let peers = peers(self.peers)?;
        check_host_peers(self.kind, &peers, place.0.is_none())?;
        if self.share == Some(0.0) {
            return Err(FaultError::Invalid(format!(
                "`{}` with a rate of 0% drops nothing: write a rate such as `5%`",
                self.kind
            )));
        }
        Ok((place, peers))
    }

    /// Resolves the namespace and names the table; changes nothing.
    pub(crate) fn prepare(
        &self,
        targets: &Targets,
        activity: &str,
    ) -> Result<Prepared, FaultError> {
        let (place, peers) = self.check(targets)?;
        resolve(&place)?;
        require("nft")?;
        if place.0.is_some() {
            require("ip")?;
        }
        let table = table_name(activity);
        if find_table(&place, &table)?.is_some() {
            return Err(NetError::TableExists {
                table,
                place: place.to_string(),
            }
            .into());
        }
        let token = token();
        let rules = Rules {
            peers: &peers,
            direction: self.direction.unwrap_or(Direction::Both),
            share: self.share,
        };
        let what = match self.share {
            Some(share) => format!(
                "drops {} of packets {} (the kernel's `numgen random`, which no seed controls)",
                livefire_core::units::Percent::from_fraction(share),
                rules.describe()
            ),
            None => format!("drops every packet {}", rules.describe()),
        };
        let undo = UndoRecord::NftTable {
            netns: place.0.clone(),
            table: table.clone(),
            token: token.clone(),
        };
        let resources = vec![undo.resource()];
        Ok(Prepared::new(
            self.kind,
            self.target,
            Some(undo),
            resources,
            NftAction {
                script: rules.script(&table, &token),
                place,
                table,
                what,
            },
            targets,
        ))
    }
}

/// A table of drop rules, ready to create.
#[derive(Debug)]
struct NftAction {
    place: Place,
    table: String,
    script: String,
    what: String,
}

impl Action for NftAction {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        resolve(&self.place)?;
        if find_table(&self.place, &self.table)?.is_some() {
            return Err(NetError::TableExists {
                table: self.table.clone(),
                place: self.place.to_string(),
            }
            .into());
        }
        create_table(&self.place, &self.script)?;
        Ok(format!(
            "nftables table `{}` in {} {}",
            self.table, self.place, self.what
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let seen = find_table(&self.place, &self.table)?;
        Ok(Some(Seen {
            applied: seen.is_some(),
            clean: seen.is_none(),
            detail: match seen {
                Some(_) => format!("table `{}` is in {}", self.table, self.place),
                None => format!("no table `{}` in {}", self.table, self.place),
            },
        }))
    }
}
