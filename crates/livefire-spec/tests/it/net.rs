//! The `net.*` attributes validation refuses where they are written: a peer that is not
//! an address, a rate that does nothing or stops everything, and on a `host` target a
//! fault that names no peers, no device, or a range that would cut the machine off.

use livefire_spec::net::Peer;
use livefire_spec::{LoadError, load_str};

const HEAD: &str =
    "version: 1\ntitle: t\ntargets:\n  ns: { netns: lf-app }\n  box: { host: {} }\ntimeline:\n";

/// `LINE:COL: message` of every error in the file, or none.
fn errors(fault: &str) -> Vec<String> {
    let text = format!("{HEAD}  - {{ at: 0s, for: 1s, fault: {{ {fault} }} }}\n");
    match load_str("exp.yaml", &text, &[]) {
        Ok(_) => vec![],
        Err(LoadError::Invalid(report)) => report
            .errors()
            .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
            .collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn net_faults_are_refused_where_the_mistake_is() {
    // (fault, the one error expected as `LINE:COL: fragment`, or "" for none)
    let cases = [
        (
            r#"net.partition: { target: ns, peers: ["10.0.0.2", "10.0.0.2:5432", "[fd00::2]:5432", "10.0.0.0/24", "fd00::/64"] }"#,
            "",
        ),
        ("net.partition: { target: ns }", ""),
        ("net.partition: { target: ns, direction: in }", ""),
        (
            r#"net.partition: { target: ns, peers: ["10.0.0.2", db.internal] }"#,
            "7:82: peer `db.internal` is not an address",
        ),
        (
            r#"net.partition: { target: ns, peers: ["10.0.0.0/40"] }"#,
            "7:70: peer `10.0.0.0/40`: the prefix length must be 0 to 32",
        ),
        (
            r#"net.partition: { target: ns, peers: ["10.0.0.2:0"] }"#,
            "7:70: port 0 matches nothing",
        ),
        (
            "net.partition: { target: box }",
            "7:58: `net.partition` on the host needs explicit `peers`",
        ),
        (
            r#"net.partition: { target: box, peers: ["0.0.0.0/0"] }"#,
            "7:71: peer `0.0.0.0/0` is too wide for the host",
        ),
        (
            r#"net.partition: { target: box, peers: ["10.0.0.0/8", "127.0.0.1:5432"] }"#,
            "",
        ),
        ("net.loss: { target: ns, rate: 30% }", ""),
        (
            "net.loss: { target: ns, rate: 0% }",
            "7:63: a loss rate of 0% drops nothing",
        ),
        (
            "net.loss: { target: box, rate: 5% }",
            "7:53: `net.loss` on the host needs explicit `peers`",
        ),
        ("net.bandwidth: { target: ns, rate: 1MiB }", ""),
        (
            "net.bandwidth: { target: ns, rate: 0B }",
            "7:68: a rate of 0 would stop all traffic",
        ),
        (
            "net.bandwidth: { target: ns, rate: 1MiB, interface: \"eth/0\" }",
            "7:85: `eth/0` is not a network interface name",
        ),
        (
            "net.bandwidth: { target: box, rate: 1MiB }",
            "7:58: `net.bandwidth` on the host needs `interface`",
        ),
        (
            "net.bandwidth: { target: box, rate: 1MiB, interface: eth0 }",
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (fault, expected) in cases {
        let got = errors(fault);
        let ok = match expected {
            "" => got.is_empty(),
            e => {
                let (at, fragment) = e.split_once(": ").unwrap();
                got.len() == 1
                    && got[0].starts_with(&format!("{at}: "))
                    && got[0].contains(fragment)
            }
        };
        if !ok {
            failures.push(format!("{fault}\n  expected {expected:?}\n  got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_peer_reads_back_as_written_with_host_bits_cleared() {
    // (written, shown): what a rule and a message say is what was meant.
    let cases = [
        ("10.0.0.2", "10.0.0.2"),
        ("10.0.0.2:5432", "10.0.0.2:5432"),
        ("[fd00::2]:5432", "[fd00::2]:5432"),
        ("fd00::2", "fd00::2"),
        ("10.0.0.7/24", "10.0.0.0/24"),
        ("10.0.0.2/32", "10.0.0.2"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00:1:2:3::9/48", "fd00:1:2::/48"),
    ];
    for (written, shown) in cases {
        let peer = Peer::parse(written).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(peer.to_string(), shown, "{written}");
        assert_eq!(Peer::parse(shown), Ok(peer), "{shown} parses back");
    }
}
