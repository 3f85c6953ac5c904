//! `sql` probes against a real PostgreSQL started by the test in a temporary directory on
//! a free port: what each `expect` key accepts and refuses, the probe's timeout, and a
//! DSN's password kept out of what a sample says.

use livefire_engine::probe::{sample, timeout};
use livefire_spec::{Expect, Probe, SqlProbe};
use livefire_testkit::pg::Pg;

fn probe(dsn: &str, query: &str, timeout: Option<&str>) -> Probe {
    Probe::Sql(SqlProbe {
        dsn: dsn.to_owned(),
        query: query.to_owned(),
        timeout: timeout.map(|t| livefire_spec::values::Duration(parse(t))),
    })
}

fn parse(d: &str) -> std::time::Duration {
    livefire_core::units::parse_duration(d).unwrap()
}

fn expect(yaml: &str) -> Expect {
    livefire_spec::de::from_node(&livefire_spec::yaml::parse(yaml).unwrap())
        .unwrap_or_else(|e| panic!("{yaml}: {e:?}"))
}

#[tokio::test]
async fn sql_probes_judge_rows_values_and_errors() {
    let Some(pg) = Pg::start() else { return };
    let dsn = pg.cluster.admin_dsn();
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.cluster.port);
    // (query, expect, holds, what the sample's detail says)
    let cases: &[(&str, &str, bool, &str)] = &[
        ("select 42", "{ value: 42 }", true, "1 row, first value 42"),
        ("select 42", "{ value: '42' }", true, "first value 42"),
        (
            "select 42",
            "{ value: 7 }",
            false,
            "first value is 42, expected 7",
        ),
        ("select true", "{ value: true }", true, "first value t"),
        (
            "select '{\"a\": [1]}'::jsonb",
            "{ value: { a: [1] } }",
            true,
            "first value {\"a\": [1]}",
        ),
        ("select null::int", "{ rows: 1 }", true, "first value NULL"),
        (
            "select generate_series(1, 3)",
            "{ rows: 3 }",
            true,
            "3 rows",
        ),
        (
            "select generate_series(1, 3)",
            "{ rows: 1 }",
            false,
            "3 rows, expected 1",
        ),
        ("select 1 where false", "{ rows: 0 }", true, "0 rows"),
        (
            "select 1 where false",
            "{ value: 1 }",
            false,
            "no row, expected a first value of 1",
        ),
        // With several statements, the last one that returned rows is judged.
        (
            "select 1; select 2, 3",
            "{ value: 2, rows: 1 }",
            true,
            "first value 2",
        ),
        ("select 1", "{}", true, "1 row"),
        (
            "select * from no_such_table",
            "{}",
            false,
            "relation \"no_such_table\" does not exist (SQLSTATE 42P01)",
        ),
        (
            "select * from no_such_table",
            "{ error_contains: no_such_table }",
            true,
            "does not exist",
        ),
        (
            "select * from no_such_table",
            "{ error_contains: checksum }",
            false,
            "error does not contain \"checksum\"",
        ),
        (
            "select * from no_such_table",
            "{ ok: false }",
            true,
            "does not exist",
        ),
        (
            "select 1",
            "{ error_contains: checksum }",
            false,
            "query answered 1 row, expected an error containing \"checksum\"",
        ),
    ];
    for (query, want, holds, detail) in cases {
        for dsn in [&dsn, &url] {
            let p = probe(dsn, query, None);
            let s = sample(&p, timeout(&p), &expect(want), None).await;
            assert_eq!(s.ok, *holds, "{query} / {want}: {s:?}");
            assert!(s.detail.contains(detail), "{query} / {want}: {s:?}");
        }
    }
}

#[tokio::test]
async fn a_sql_probe_is_bounded_by_its_timeout_and_names_where_it_could_not_connect() {
    let Some(pg) = Pg::start() else { return };
    let p = probe(
        &pg.cluster.admin_dsn(),
        "select pg_sleep(30)",
        Some("300ms"),
    );
    let s = sample(&p, timeout(&p), &Expect::default(), None).await;
    assert!(!s.ok, "{s:?}");
    assert_eq!(s.detail, "no answer within 300ms");

    // Nothing listens on port 1. The password never reaches what a sample says (the
    // journal's `sample` events carry the detail).
    let p = probe(
        "postgres://app:hunter2@127.0.0.1:1/orders",
        "select 1",
        None,
    );
    let s = sample(&p, timeout(&p), &Expect::default(), None).await;
    assert!(!s.ok, "{s:?}");
    assert!(
        s.detail
            .starts_with("connect to host=127.0.0.1 port=1 dbname=orders: "),
        "{s:?}"
    );
    assert!(!s.detail.contains("hunter2"), "{s:?}");
    // A connection that cannot be made is the error an `error_contains` may expect.
    let s = sample(
        &p,
        timeout(&p),
        &expect("{ error_contains: 'connect to' }"),
        None,
    )
    .await;
    assert!(s.ok, "{s:?}");

    // A DSN PostgreSQL's client cannot read is said as such.
    let p = probe("host=127.0.0.1 port=notaport", "select 1", None);
    let s = sample(&p, timeout(&p), &Expect::default(), None).await;
    assert!(s.detail.starts_with("bad connection string: "), "{s:?}");
}
