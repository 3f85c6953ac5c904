//! Approvals against a real store, without a server: who may decide, a request the
//! server was starting when it died, reasons, expiry and what others see of variables.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use livefire_serve::approval::{self, AWAITING, DecideError, EXPIRED, Policy, Requested};
use livefire_serve::auth::{Caller, Role};
use livefire_serve::runs::{Launch, Runner};
use livefire_serve::store::Store;

const DRILL: &str = "version: 1\ntitle: drill\nvars: { password: none }\nenvironments:\n  prod: { production: true }\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"true\" } } }\n";

fn caller(name: &str, role: Role) -> Caller {
    Caller {
        name: name.into(),
        role,
        by_cookie: false,
        csrf: String::new(),
    }
}

const DAY: Policy = Policy {
    required: true,
    expires: Duration::from_secs(24 * 3600),
};

/// A request for the drill in prod by alice, waiting.
async fn ask(store: &Store, runner: &Arc<Runner>) -> String {
    ask_with(store, runner, DAY, Vec::new()).await
}

async fn ask_with(
    store: &Store,
    runner: &Arc<Runner>,
    policy: Policy,
    vars: Vec<(String, String)>,
) -> String {
    let launch = Launch {
        experiment: "drill".into(),
        env: Some("prod".into()),
        vars,
        by: "alice (operator)".into(),
    };
    match approval::request(store, runner, policy, launch, "alice").await {
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
            let e = approval::decide(
                &store,
                &runner,
                &caller("alice", Role::Admin),
                &id,
                approve,
                None,
            )
            .await
            .unwrap_err();
            assert!(matches!(e, DecideError::OwnRequest { .. }), "{e}");
            assert!(e.to_string().contains("a second person"), "{e}");
        }
        // Bob rejects it; then it is decided.
        let row = approval::decide(
            &store,
            &runner,
            &caller("bob", Role::Operator),
            &id,
            false,
            None,
        )
        .await
        .unwrap();
        assert_eq!(row.state, "rejected");
        assert_eq!(row.decided_by.as_deref(), Some("bob (operator)"));
        let e = approval::decide(
            &store,
            &runner,
            &caller("carol", Role::Operator),
            &id,
            true,
            None,
        )
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

fn store_and_runner(dir: &std::path::Path) -> (Arc<Store>, Arc<Runner>) {
    let store = Arc::new(Store::open(dir).unwrap());
    store
        .put_experiment("drill", DRILL, "alice (operator)")
        .unwrap();
    let runner = Arc::new(Runner::new(
        PathBuf::from("/nonexistent/livefire"),
        dir.to_owned(),
        store.clone(),
    ));
    (store, runner)
}

#[test]
fn a_rejection_keeps_its_reason_and_others_see_variable_names_only() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runner) = store_and_runner(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let vars = vec![("password".to_owned(), "hunter2".to_owned())];
        let id = ask_with(&store, &runner, DAY, vars).await;
        let row = approval::get(&store, &id).unwrap().unwrap();
        let shown = serde_json::to_value(&row).unwrap();
        assert_eq!(shown["vars"], serde_json::json!({"password": "***"}));
        assert!(row.expires.is_some(), "{row:?}");
        let row = approval::decide(
            &store,
            &runner,
            &caller("bob", Role::Operator),
            &id,
            false,
            Some("not during the sale"),
        )
        .await
        .unwrap();
        assert_eq!(row.reason.as_deref(), Some("not during the sale"));
        let audit = store.audit_log(Some(&format!("approval:{id}"))).unwrap();
        let reject = audit.iter().find(|a| a.action == "reject").unwrap();
        assert!(reject.detail.contains("not during the sale"), "{reject:?}");
        let request = audit.iter().find(|a| a.action == "request").unwrap();
        assert!(request.detail.contains("password=***"), "{request:?}");
        let all = serde_json::to_string(&store.audit_log(None).unwrap()).unwrap();
        assert!(!all.contains("hunter2"), "a value in the audit log: {all}");
    });
}

#[test]
fn a_request_nobody_decides_in_time_expires_and_cannot_be_approved() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runner) = store_and_runner(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let now = Policy {
            required: true,
            expires: Duration::ZERO,
        };
        let gone = ask_with(&store, &runner, now, Vec::new()).await;
        let kept = ask(&store, &runner).await;
        assert_eq!(approval::expire_due(&store).unwrap(), 1);
        assert_eq!(approval::expire_due(&store).unwrap(), 0, "expired once");
        assert_eq!(
            approval::get(&store, &gone).unwrap().unwrap().state,
            EXPIRED
        );
        assert_eq!(
            approval::get(&store, &kept).unwrap().unwrap().state,
            AWAITING
        );
        let e = approval::decide(
            &store,
            &runner,
            &caller("bob", Role::Operator),
            &gone,
            true,
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, DecideError::Expired { .. }), "{e}");
        assert!(e.to_string().contains("ask for the run again"), "{e}");
        let audit = store.audit_log(Some(&format!("approval:{gone}"))).unwrap();
        assert!(
            audit
                .iter()
                .any(|a| a.action == "expire" && a.who == "livefire serve"),
            "{audit:?}"
        );
    });
}

#[test]
fn an_approval_body_is_nothing_or_a_reason() {
    use serde_json::json;
    // (body, the reason, or words of the refusal)
    let cases: Vec<(serde_json::Value, Result<Option<&str>, &str>)> = vec![
        (json!(null), Ok(None)),
        (json!({}), Ok(None)),
        (json!({"reason": "  "}), Ok(None)),
        (
            json!({"reason": "after the freeze"}),
            Ok(Some("after the freeze")),
        ),
        (json!({"reason": "a\nb"}), Ok(Some("a\nb"))),
        (json!({"reason": 3}), Err("`reason` is text")),
        (json!({"why": "x"}), Err("unknown field `why`")),
        (json!(["reason"]), Err("send a JSON object")),
        (json!({"reason": "x".repeat(1001)}), Err("at most 1000")),
        (json!({"reason": "a\u{7}b"}), Err("control characters")),
    ];
    for (body, want) in cases {
        match (approval::reason_of(&body), want) {
            (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{body}"),
            (Err(got), Err(words)) => assert!(got.contains(words), "{body}: {got}"),
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }
}

/// A schedule asks for one production run at a time. Asking is one step with looking
/// for the request still waiting, so two firings at the same moment cannot both ask:
/// one waits for approval, the other is skipped saying so.
#[test]
fn two_firings_of_a_schedule_at_once_make_one_waiting_request_and_one_skip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store
        .put_experiment("drill", DRILL, "alice (operator)")
        .unwrap();
    livefire_serve::auth::create(&store, "ops-lead", Role::Admin, None).unwrap();
    // Nothing here starts a run: the program is never called.
    let runner = Arc::new(Runner::new(
        PathBuf::from("/nonexistent/livefire"),
        dir.path().to_owned(),
        store.clone(),
    ));
    let launch = || Launch {
        experiment: "drill".into(),
        env: Some("prod".into()),
        vars: Vec::new(),
        by: "schedule monthly".into(),
    };
    let waiting_for = |by: &str| -> Vec<String> {
        approval::list(&store)
            .unwrap()
            .into_iter()
            .filter(|a| a.requested_by == by && a.state == AWAITING)
            .map(|a| a.id)
            .collect()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The request itself: the second, asked as if its look came before the first's
        // insert, asks nothing and names the request that waits.
        let (a, b) = tokio::join!(
            approval::request_once(&store, &runner, DAY, launch(), "ops-lead"),
            approval::request_once(&store, &runner, DAY, launch(), "ops-lead"),
        );
        let (asked, still) = match (a.unwrap(), b.unwrap()) {
            (Requested::Awaiting(x), Requested::StillWaits(y))
            | (Requested::StillWaits(y), Requested::Awaiting(x)) => (x, y),
            other => panic!("one request waits, the other is told so: {other:?}"),
        };
        assert_eq!(asked.id, still.id);
        assert_eq!(waiting_for("schedule monthly"), vec![asked.id.clone()]);
        // A person's requests are not one at a time.
        ask(&store, &runner).await;
        ask(&store, &runner).await;
        assert_eq!(waiting_for("alice (operator)").len(), 2);
    });

    // Two firings of a schedule at once, on two threads: one request, one skip.
    let schedule = livefire_serve::schedule::ScheduleRow {
        name: "weekly".into(),
        cron: "0 9 * * 1".into(),
        experiment: "drill".into(),
        env: Some("prod".into()),
        vars: Default::default(),
        created: "2026-12-01T09:00:00Z".into(),
        created_by: "ops-lead (admin)".into(),
        owner: "ops-lead".into(),
        last_fired: None,
        last_result: None,
    };
    livefire_serve::schedule::create(&store, &runner, &schedule).unwrap();
    let at: jiff::Timestamp = "2026-12-07T09:00:00Z".parse().unwrap();
    rt.block_on(async {
        let fires: Vec<_> = (0..2)
            .map(|_| {
                let (store, runner, schedule) = (store.clone(), runner.clone(), schedule.clone());
                tokio::spawn(async move {
                    livefire_serve::schedule::fire(&store, &runner, DAY, &schedule, at).await
                })
            })
            .collect();
        for f in fires {
            f.await.unwrap();
        }
    });
    let waiting = waiting_for("schedule weekly");
    assert_eq!(waiting.len(), 1, "one request waits: {waiting:?}");
    let audit = store.audit_log(Some("schedule:weekly")).unwrap();
    let of = |action: &str| -> Vec<String> {
        audit
            .iter()
            .filter(|a| a.action == action)
            .map(|a| a.detail.clone())
            .collect()
    };
    assert_eq!(of("fire").len(), 1, "{audit:?}");
    let skips = of("skip");
    assert_eq!(skips.len(), 1, "{audit:?}");
    assert!(
        skips[0].contains("skipped: the approval for the firing at")
            && skips[0].contains(&format!("({}) still waits", waiting[0])),
        "{skips:?}"
    );
}
