//! `net.*` faults through `livefire run`: what is refused before anything is applied.
//! (Apply, rollback and `recover` after kill -9 are the conformance harness's; what the
//! rules do to traffic is livefire-faults' tests'.)

use crate::support::*;

#[test]
fn a_network_namespace_that_does_not_exist_is_refused_before_anything_is_applied() {
    let home = Home::new();
    let ns = format!("lf-t-{}-missing", std::process::id());
    let file = home.file(&format!(
        "version: 1\ntitle: t\ntargets:\n  app: {{ netns: {ns} }}\ntimeline:\n  - {{ at: 0s, for: 1s, name: cut app, fault: {{ net.partition: {{ target: app, peers: [\"10.0.0.2\"] }} }} }}\n"
    ));
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains(&format!(
            "target `app`: network namespace `{ns}` does not exist: create it (`ip netns add {ns}`)"
        )) && err.contains("nothing was applied"),
        "{err}"
    );
    assert!(
        !home.path().join("runs").exists(),
        "no run folder for a refused run"
    );
    assert_eq!(home.ledger_index(), "", "nothing in the ledger");
}
