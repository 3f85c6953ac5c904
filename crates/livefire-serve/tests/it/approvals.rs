//! Approvals against a real store, without a server: who may decide, and a request the
//! server was starting when it died.

use std::path::PathBuf;
use std::sync::Arc;

use livefire_serve::approval::{self, AWAITING, DecideError, Requested};
use livefire_serve::auth::{Caller, Role};
use livefire_serve::runs::{Launch, Runner};
use livefire_serve::store::Store;

const DRILL: &str = "version: 1\ntitle: drill\nenvironments:\n  prod: { production: true }\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"true\" } } }\n";

fn caller(name: &str, role: Role) -> Caller {
    Caller {
        name: name.into(),
        role,
        by_cookie: false,
        csrf: String::new(),
    }
}

/// A request for the drill in prod by alice, waiting.
async fn ask(store: &Store, runner: &Arc<Runner>) -> String {
    let launch = Launch {
        experiment: "drill".into(),
        env: Some("prod".into()),
        vars: Vec::new(),
        by: "alice (operator)".into(),
    };
    match approval::request(store, runner, true, launch, "alice").await {
        Ok(Requested::Awaiting(a)) => {
            assert_eq!(a.state, AWAITING);
            assert_eq!(a.env, "prod");
            a.id
        }
        other => panic!("a production run under --require-approval waits: {other:?}"),
    }
}

#[test]
fn only_a_second_person_decides_and_a_request_cut_off_by_a_crash_waits_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store
        .put_experiment("drill", DRILL, "alice (operator)")
        .unwrap();
    // Nothing here starts a run: the program is never called.
    let runner = Arc::new(Runner::new(
        PathBuf::from("/nonexistent/livefire"),
        dir.path().to_owned(),
        store.clone(),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let id = ask(&store, &runner).await;
        // Alice may neither approve nor reject her own request.
        for approve in [true, false] {
            let e = approval::decide(&store, &runner, &caller("alice", Role::Admin), &id, approve)
                .await
                .unwrap_err();
            assert!(matches!(e, DecideError::OwnRequest(_)), "{e}");
            assert!(e.to_string().contains("a second person"), "{e}");
        }
        // Bob rejects it; then it is decided.
        let row = approval::decide(&store, &runner, &caller("bob", Role::Operator), &id, false)
            .await
            .unwrap();
        assert_eq!(row.state, "rejected");
        assert_eq!(row.decided_by.as_deref(), Some("bob (operator)"));
        let e = approval::decide(&store, &runner, &caller("carol", Role::Operator), &id, true)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("decided already"), "{e}");

        // A server killed while starting an approved run leaves it `starting`: the next
        // start puts it back to waiting, once, and says so.
        let cut = ask(&store, &runner).await;
        let db = rusqlite::Connection::open(dir.path().join("serve.db")).unwrap();
        db.execute(
            "UPDATE approvals SET state = 'starting', decided_by = 'bob (operator)' WHERE id = ?1",
            [&cut],
        )
        .unwrap();
        let lines = approval::waiting_again_at_start(&store);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(&cut) && lines[0].contains("waits for approval again"));
        let row = approval::get(&store, &cut).unwrap().unwrap();
        assert_eq!(row.state, AWAITING);
        assert_eq!(row.decided_by, None);
        assert!(approval::waiting_again_at_start(&store).is_empty());
        let audit = store.audit_log(Some(&format!("approval:{cut}"))).unwrap();
        assert!(audit.iter().any(|a| a.action == "recover"), "{audit:?}");
    });
}
