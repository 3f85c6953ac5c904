//! Tokens against a real SQLite store in a temp folder.

use std::time::Duration;

use livefire_serve::auth::{self, Denied, Role};
use livefire_serve::store::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// The caller's name, or the refusal and its status.
type Want = Result<&'static str, (Denied, u16)>;

#[test]
fn a_token_is_checked_by_its_hash_and_says_why_it_is_refused() {
    let (dir, store) = store();
    let good = auth::create(&store, "alice", Role::Operator, None).unwrap();
    let later = auth::create(
        &store,
        "carol",
        Role::Viewer,
        Some(Duration::from_secs(3600)),
    )
    .unwrap();
    let gone = auth::create(&store, "bob", Role::Admin, None).unwrap();
    assert!(store.revoke_token("bob").unwrap());
    let expired = auth::create(&store, "dave", Role::Operator, Some(Duration::ZERO)).unwrap();
    // (token, expected: Ok(name) or the refusal and its status)
    let cases: Vec<(&str, Want)> = vec![
        (&good, Ok("alice")),
        (&later, Ok("carol")),
        (&gone, Err((Denied::Revoked("bob".into()), 401))),
        (&expired, Err((Denied::Expired("dave".into()), 401))),
        ("lf_0000", Err((Denied::Unknown, 401))),
        ("", Err((Denied::Unknown, 401))),
    ];
    for (token, want) in cases {
        let got = auth::check(&store, token, false);
        match (got, want) {
            (Ok(c), Ok(name)) => assert_eq!(c.name, name),
            (Err(d), Err((denied, status))) => {
                assert_eq!(d, denied, "{token}");
                assert_eq!(d.status(), status);
            }
            (got, want) => panic!("{token}: got {got:?}, want {want:?}"),
        }
    }
    // Only hashes are stored.
    let db = std::fs::read(dir.path().join("serve.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(!db.contains(&good) && db.contains(&auth::hash(&good)));
    // A second token with a taken name is refused, saying so.
    let e = auth::create(&store, "alice", Role::Viewer, None).unwrap_err();
    assert!(e.to_string().contains("`alice` exists already"), "{e}");
}

#[test]
fn each_role_may_do_what_the_ones_below_it_may() {
    let (_dir, store) = store();
    // (role of the token, role needed, allowed)
    let table = [
        (Role::Viewer, Role::Viewer, true),
        (Role::Viewer, Role::Operator, false),
        (Role::Viewer, Role::Admin, false),
        (Role::Operator, Role::Viewer, true),
        (Role::Operator, Role::Operator, true),
        (Role::Operator, Role::Admin, false),
        (Role::Admin, Role::Operator, true),
        (Role::Admin, Role::Admin, true),
    ];
    for (i, (has, needed, allowed)) in table.into_iter().enumerate() {
        let name = format!("t{i}");
        let token = auth::create(&store, &name, has, None).unwrap();
        let caller = auth::check(&store, &token, false).unwrap();
        let got = auth::require(&caller, needed);
        assert_eq!(got.is_ok(), allowed, "{has:?} doing {needed:?}");
        if let Err(d) = got {
            assert_eq!(d.status(), 403);
            assert!(d.to_string().contains(needed.as_str()), "{d}");
        }
    }
}

#[test]
fn the_csrf_token_is_fixed_per_session_and_differs_from_the_token() {
    let (_dir, store) = store();
    let a = auth::create(&store, "a", Role::Operator, None).unwrap();
    let b = auth::create(&store, "b", Role::Operator, None).unwrap();
    let ca = auth::check(&store, &a, true).unwrap();
    assert_eq!(ca.csrf, auth::check(&store, &a, true).unwrap().csrf);
    assert_ne!(ca.csrf, auth::check(&store, &b, true).unwrap().csrf);
    assert!(!ca.csrf.contains(&a[3..]));
}
