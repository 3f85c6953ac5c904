//! The target itself: each planted defect fires in defective mode, and correct mode
//! answers the same requests with statuses the spec declares.

use crate::target::{self, AuthDep, Mode};

fn get(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n{headers}\r\n")
}

fn post(path: &str, ctype: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn planted_defects_fire_only_in_defective_mode() {
    let mut dep = AuthDep::start().await;
    for mode in [Mode::Defective, Mode::Correct] {
        let t = target::start(mode, Some(dep.addr), "127.0.0.1:0").await;
        let bad = mode == Mode::Defective;
        let (s, _) = target::raw_request(t.addr, &get("/items?limit=0", "")).await;
        assert_eq!(s, if bad { 500 } else { 400 }, "{mode:?} limit=0");
        let (s, _) = target::raw_request(
            t.addr,
            &post("/items", "application/json", r#"{"price":3}"#),
        )
        .await;
        assert_eq!(s, if bad { 201 } else { 400 }, "{mode:?} missing name");
        let (s, body) = target::raw_request(
            t.addr,
            &post("/items", "application/json", r#"{"name":"a","price":3}"#),
        )
        .await;
        assert_eq!(s, 201, "{mode:?} create: {body}");
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_u64()
            .unwrap();
        let (s, body) = target::raw_request(t.addr, &get(&format!("/items/{id}"), "")).await;
        assert_eq!(s, 200);
        assert_eq!(
            body.contains("\"3.00\""),
            bad,
            "{mode:?} price type: {body}"
        );
        let (s, _) = target::raw_request(
            t.addr,
            &format!("DELETE /items/{id} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(s, if bad { 200 } else { 204 });
        let (s, body) = target::raw_request(t.addr, &get("/search?q=a%27b", "")).await;
        assert_eq!(s, if bad { 500 } else { 200 });
        assert_eq!(body.contains("unterminated quoted string"), bad);
        let (s, body) = target::raw_request(t.addr, &get("/reports/nope", "")).await;
        assert_eq!(s, 404);
        assert_eq!(body.contains("Traceback"), bad);
        let (s, _) = target::raw_request(t.addr, &get("/admin/users", "")).await;
        assert_eq!(s, if bad { 200 } else { 401 });
        let big = format!("{{\"doc\":{{\"k\":\"{}\"}}}}", "x".repeat(5000));
        let (s, _) = target::raw_request(t.addr, &post("/parse", "application/json", &big)).await;
        assert_eq!(
            s,
            if bad { 0 } else { 413 },
            "{mode:?} crash: no status line when it crashes"
        );
        let (s, _) =
            target::raw_request(t.addr, &get("/account", "authorization: Bearer junk\r\n")).await;
        assert_eq!(s, 401, "{mode:?} garbage token while the dependency is up");
        dep.stop();
        let (s, _) =
            target::raw_request(t.addr, &get("/account", "authorization: Bearer junk\r\n")).await;
        assert_eq!(
            s,
            if bad { 200 } else { 503 },
            "{mode:?} garbage token while the dependency is down"
        );
        dep.restart().await;
        let (s, _) = target::raw_request(
            t.addr,
            "TRACE /items HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(s, 501);
        let fired = t.stats.fired.lock().unwrap().len();
        assert_eq!(fired > 0, bad, "{mode:?} fired defects: {}", t.stats.json());
    }
}
