//! The PostgreSQL pair: a write on the primary is read on the replica; a killed primary
//! is replaced by the failover helper and the API writes again; `rejoin` brings the old
//! primary back as a standby, never as a second primary.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::{Api, Dir, eventually, have_postgres, postmaster, sql, text};

#[test]
fn a_write_on_the_primary_is_read_on_the_replica() {
    if !have_postgres() {
        return;
    }
    let dir = Dir::new();
    let sb = dir.up(&[]);
    let primary = sb.node("primary").unwrap();
    let replica = sb.node("replica").unwrap();
    assert_eq!(
        sql(primary.port, "select pg_is_in_recovery()").unwrap(),
        ["f"]
    );
    assert_eq!(
        sql(replica.port, "select pg_is_in_recovery()").unwrap(),
        ["t"]
    );
    assert_eq!(
        sql(primary.port, "select current_setting('data_checksums')").unwrap(),
        ["on"]
    );

    let (code, id) = Api::of(&sb, "alice").create("replicated");
    assert_eq!(code, 201);
    let query = format!("select item from orders where id = {}", id.unwrap());
    let seen = eventually(Duration::from_secs(10), || {
        sql(replica.port, &query).ok().filter(|r| !r.is_empty())
    });
    assert_eq!(seen.unwrap(), ["replicated"]);
    // The replica refuses writes: it is a standby.
    let refused = sql(
        replica.port,
        "insert into orders(owner, item, qty) values ('x', 'y', 1)",
    );
    assert!(refused.unwrap_err().contains("read-only"));
}

#[test]
fn a_killed_primary_is_replaced_and_rejoins_as_a_standby() {
    if !have_postgres() {
        return;
    }
    let dir = Dir::new();
    let sb = dir.up(&["--failover-after", "1s"]);
    let api = Api::of(&sb, "alice");
    let (code, before) = api.create("before");
    assert_eq!(code, 201);
    let primary = sb.node("primary").unwrap().clone();
    let replica = sb.node("replica").unwrap().clone();

    postmaster(&primary.data_dir)
        .unwrap()
        .signal(Signal::SIGKILL);
    // The helper promotes the replica; the API's multi-host DSN finds it.
    let after = eventually(Duration::from_secs(20), || match api.create("after") {
        (201, id) => id,
        _ => None,
    })
    .expect("POST /orders succeeds again after the failover");
    assert_eq!(
        sql(replica.port, "select pg_is_in_recovery()").unwrap(),
        ["f"]
    );
    let log = dir.path().join("failover.log");
    let promoted = eventually(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.contains("promoted replica").then_some(())
    });
    assert!(
        promoted.is_some(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Synchronous replication: the order acknowledged before the kill survived it.
    let (code, _) = api
        .call("GET", &format!("/orders/{}", before.unwrap()), None)
        .unwrap();
    assert_eq!(code, 200);

    let rejoin = dir.run(&["rejoin", "primary"]);
    assert!(
        rejoin.status.success(),
        "{}{}",
        text(&rejoin.stdout),
        text(&rejoin.stderr)
    );
    assert!(
        text(&rejoin.stdout).contains("standby of replica"),
        "{}",
        text(&rejoin.stdout)
    );
    assert_eq!(
        sql(primary.port, "select pg_is_in_recovery()").unwrap(),
        ["t"]
    );
    // It follows the new primary: the order written after the failover reaches it.
    let query = format!("select item from orders where id = {after}");
    let seen = eventually(Duration::from_secs(10), || {
        sql(primary.port, &query).ok().filter(|r| !r.is_empty())
    });
    assert_eq!(seen.unwrap(), ["after"]);
    // Asked again, rejoin changes nothing.
    let again = dir.run(&["rejoin", "primary"]);
    assert!(
        text(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(
        sql(primary.port, "select pg_is_in_recovery()").unwrap(),
        ["t"]
    );
}
