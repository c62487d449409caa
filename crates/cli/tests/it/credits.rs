//! Credits through the real server: holds on accept, 402 when short (under a concurrent burst),
//! idempotency keys, per-key rate limits, per-account task caps, price overrides and
//! multipliers, the cancel policy, and the key cache's revocation bound.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{gen4_turbo, TestApp};
use reelay_store::LedgerKind;
use serde_json::{json, Value};

const I2V: &str = "/v1/image_to_video";

async fn body(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn holds(app: &TestApp, account: &str) -> usize {
    app.server
        .store
        .ledger(account, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == LedgerKind::Hold)
        .count()
}

/// The price of the standard test task (`gen4_turbo`, 5 s) as the server quotes it.
async fn unit_price(app: &TestApp) -> i64 {
    let (status, v) = body(app.post(I2V, &gen4_turbo("probe")).await).await;
    assert_eq!(status, 200, "{v}");
    v["estimatedCost"]["credits"].as_i64().unwrap()
}

#[tokio::test]
async fn concurrent_burst_accepts_exactly_what_the_balance_covers() {
    let app = TestApp::spawn_with(|c| c.sandbox_run_seconds = 0.5).await;
    let price = unit_price(&app).await;
    assert!(price > 0);
    let (account, key) = app.new_account("burst", 100 * price).await;

    let results = futures::future::join_all((0..200).map(|i| {
        let app = &app;
        let key = key.clone();
        async move {
            body(
                app.post_as(&key, I2V, &gen4_turbo(&format!("n{i}")), &[])
                    .await,
            )
            .await
        }
    }))
    .await;
    let accepted: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
        .collect();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 402)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(accepted.len(), 100, "accepted");
    assert_eq!(refused.len(), 100, "answered 402");
    for v in &refused {
        assert_eq!(
            v["error"], "You do not have enough credits to run this task.",
            "402 in Runway's shape: {v}"
        );
        assert!(v["docUrl"].is_string());
    }
    let ids: HashSet<&str> = accepted.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 100);

    let a = app.account(&account).await;
    assert_eq!(a.credits_available, 0);
    assert_eq!(a.credits_held, 100 * price);
    assert_eq!(
        holds(&app, &account).await,
        100,
        "one hold per accepted task"
    );

    // The refused requests created nothing; the accepted ones finish and are captured.
    for id in &ids {
        let t = app
            .authed(reqwest::Method::GET, &format!("/v1/tasks/{id}"), &key)
            .send()
            .await
            .unwrap();
        assert_eq!(t.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = app.account(&account).await;
        assert!(a.credits_available >= 0 && a.credits_held >= 0);
        if a.credits_held == 0 {
            assert_eq!(
                a.credits_available, 0,
                "every task succeeded and was captured"
            );
            break;
        }
        assert!(Instant::now() < deadline, "tasks did not finish: {a:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.server.store.verify_ledger().await.unwrap(), vec![]);
    let org: Value = app
        .authed(reqwest::Method::GET, "/v1/organization", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(org["creditBalance"], 0);
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = TestApp::spawn_with(|c| c.sandbox_run_seconds = 30.0).await;
    let (account, key) = app.new_account("idem", 10_000).await;
    let body_a = gen4_turbo("same");
    let first = app
        .post_as(&key, I2V, &body_a, &[("Idempotency-Key", "order-1")])
        .await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (s1, v1) = body(first).await;
    assert_eq!(s1, 200, "{v1}");

    // Same key, same body (keys reordered): the first answer, no second task or hold.
    let reordered: Value = serde_json::from_str(
        r#"{"duration": 5, "ratio": "1280:720", "promptText": "same",
            "promptImage": "https://example.com/a.jpg", "model": "gen4_turbo"}"#,
    )
    .unwrap();
    let again = app
        .post_as(&key, I2V, &reordered, &[("Idempotency-Key", "order-1")])
        .await;
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let (s2, v2) = body(again).await;
    assert_eq!((s2, &v2), (200, &v1));
    assert_eq!(holds(&app, &account).await, 1);

    // Same key, different body: 422 in Runway's shape, nothing written.
    let (s3, v3) = body(
        app.post_as(
            &key,
            I2V,
            &gen4_turbo("different"),
            &[("Idempotency-Key", "order-1")],
        )
        .await,
    )
    .await;
    assert_eq!(s3, 422, "{v3}");
    assert!(v3["error"].as_str().unwrap().contains("Idempotency-Key"));
    // Same body on another endpoint is another request, too.
    let t2v = json!({"model": "gen4.5", "promptText": "same", "ratio": "1280:720", "duration": 5});
    let (s4, _) = body(
        app.post_as(
            &key,
            "/v1/text_to_video",
            &t2v,
            &[("Idempotency-Key", "order-1")],
        )
        .await,
    )
    .await;
    assert_eq!(s4, 422);
    assert_eq!(holds(&app, &account).await, 1);

    // Keys belong to an account: another account may use the same key.
    let (other, other_key) = app.new_account("other", 10_000).await;
    let (s5, v5) = body(
        app.post_as(&other_key, I2V, &body_a, &[("Idempotency-Key", "order-1")])
            .await,
    )
    .await;
    assert_eq!(s5, 200);
    assert_ne!(v5["id"], v1["id"]);
    assert_eq!(holds(&app, &other).await, 1);

    // A malformed key is refused before anything is written.
    let long = "k".repeat(256);
    let (s6, v6) = body(
        app.post_as(&key, I2V, &gen4_turbo("x"), &[("Idempotency-Key", &long)])
            .await,
    )
    .await;
    assert_eq!(s6, 400, "{v6}");
    assert!(v6["error"].as_str().unwrap().contains("Idempotency-Key"));
    let ok = "k".repeat(255);
    let (s7, _) = body(
        app.post_as(&key, I2V, &gen4_turbo("x"), &[("Idempotency-Key", &ok)])
            .await,
    )
    .await;
    assert_eq!(s7, 200);
    assert_eq!(holds(&app, &account).await, 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_task() {
    let app = TestApp::spawn_with(|c| c.sandbox_run_seconds = 30.0).await;
    let (account, key) = app.new_account("idem", 100_000).await;
    let body_a = gen4_turbo("once");
    let results = futures::future::join_all((0..50).map(|_| {
        let app = &app;
        let key = key.clone();
        let body_a = body_a.clone();
        async move {
            body(
                app.post_as(&key, I2V, &body_a, &[("Idempotency-Key", "burst-key")])
                    .await,
            )
            .await
        }
    }))
    .await;
    let ids: HashSet<String> = results
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, 200, "{v}");
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one task for one key");
    assert_eq!(holds(&app, &account).await, 1, "one hold");
    let a = app.account(&account).await;
    assert_eq!(
        a.credits_held,
        results[0].1["estimatedCost"]["credits"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn idempotency_keys_expire_after_the_window() {
    let app = TestApp::spawn_with(|c| {
        c.sandbox_run_seconds = 30.0;
        c.idempotency_ttl_seconds = 1;
    })
    .await;
    let h = [("Idempotency-Key", "short-lived")];
    let (_, v1) = body(app.post_as(&app.key, I2V, &gen4_turbo("a"), &h).await).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s2, v2) = body(app.post_as(&app.key, I2V, &gen4_turbo("a"), &h).await).await;
    assert_eq!(s2, 200);
    assert_ne!(v1["id"], v2["id"], "an expired key is a new request");
}

#[tokio::test]
async fn per_key_rate_limit_answers_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.limits.requests_per_second = 1;
        c.limits.burst = 3;
    })
    .await;
    let (_, other_key) = app.new_account("other", 1000).await;
    let mut statuses = vec![];
    let mut limited = None;
    for _ in 0..5 {
        let resp = app.get("/v1/organization").await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            limited = Some(resp);
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let resp = limited.unwrap();
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"].is_string(), "Runway's shape: {v}");
    // Another key has its own budget.
    let resp = app
        .authed(reqwest::Method::GET, "/v1/organization", &other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A rate-limited create writes nothing (the bucket refills one request per second).
    let accounts = app.server.store.list_accounts().await.unwrap();
    let default = &accounts.iter().find(|a| a.name == "default").unwrap().id;
    let before = holds(&app, default).await;
    let resp = app.post(I2V, &gen4_turbo("limited")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(holds(&app, default).await, before);
}

#[tokio::test]
async fn per_account_task_cap_answers_429_until_a_task_ends() {
    let app = TestApp::spawn_with(|c| {
        c.sandbox_run_seconds = 30.0;
        c.limits.max_active_tasks = Some(2);
    })
    .await;
    let (account, key) = app.new_account("capped", 10_000).await;
    let a = app.post_as(&key, I2V, &gen4_turbo("1"), &[]).await;
    let (_, v) = body(a).await;
    let first = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post_as(&key, I2V, &gen4_turbo("2"), &[]).await.status(),
        200
    );
    let third = app.post_as(&key, I2V, &gen4_turbo("3"), &[]).await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    let (_, v) = body(third).await;
    assert!(v["error"].as_str().unwrap().contains("2"), "{v}");
    assert_eq!(
        holds(&app, &account).await,
        2,
        "the refused task held nothing"
    );
    // The cap is per account: the default account is not affected.
    assert_eq!(app.post(I2V, &gen4_turbo("other")).await.status(), 200);
    // Cancelling one frees a slot.
    let del = app
        .authed(reqwest::Method::DELETE, &format!("/v1/tasks/{first}"), &key)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(
        app.post_as(&key, I2V, &gen4_turbo("4"), &[]).await.status(),
        200
    );
}

#[tokio::test]
async fn prices_come_from_config_overrides_and_account_multipliers() {
    let app = TestApp::spawn_with(|c| {
        c.prices.insert(
            "gen4_turbo".into(),
            serde_json::from_value(json!({"per_second": 7.0, "default_seconds": 5.0})).unwrap(),
        );
    })
    .await;
    let (status, v) = body(app.post(I2V, &gen4_turbo("priced")).await).await;
    assert_eq!(status, 200);
    assert_eq!(v["estimatedCost"]["credits"], 35);
    let mut ten = gen4_turbo("ten");
    ten["duration"] = json!(10);
    let (_, v) = body(app.post(I2V, &ten).await).await;
    assert_eq!(v["estimatedCost"]["credits"], 70);

    let (account, key) = app.new_account("reseller", 1000).await;
    app.server
        .store
        .set_account_limits(&account, Some(1.5), None)
        .await
        .unwrap();
    // The key cache may hold the account as it was: a fresh key sees the change at once.
    let (status, v) = body(app.post_as(&key, I2V, &gen4_turbo("x"), &[]).await).await;
    assert_eq!(status, 200);
    assert_eq!(v["estimatedCost"]["credits"], 53, "35 × 1.5 rounded up");
    assert_eq!(app.account(&account).await.credits_held, 53);
}

#[tokio::test]
async fn unknown_price_override_stops_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::test_config(dir.path());
    c.prices.insert(
        "gen9_imaginary".into(),
        serde_json::from_value(json!({"flat": 1})).unwrap(),
    );
    let err = reelay::serve::start(c).await.err().expect("refused");
    assert!(err.to_string().contains("gen9_imaginary"), "{err}");
}

#[tokio::test]
async fn insufficient_credits_status_can_be_runways_own_400() {
    let app = TestApp::spawn_with(|c| c.runway.insufficient_credits_status = 400).await;
    let (_, key) = app.new_account("poor", 1).await;
    let (status, v) = body(app.post_as(&key, I2V, &gen4_turbo("x"), &[]).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        v["error"],
        "You do not have enough credits to run this task."
    );
}

/// Runway's rule by default: a cancel after the upstream took the job is charged; an operator
/// may refund those too.
#[tokio::test]
async fn cancel_after_the_upstream_took_the_job_follows_the_policy() {
    for refund in [false, true] {
        let app = TestApp::spawn_with(|c| {
            c.sandbox_run_seconds = 30.0;
            c.refund_cancel_after_submit = refund;
        })
        .await;
        let (account, key) = app.new_account("c", 1000).await;
        let (_, v) = body(app.post_as(&key, I2V, &gen4_turbo("run"), &[]).await).await;
        let id = v["id"].as_str().unwrap().to_string();
        let price = v["estimatedCost"]["credits"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while app
            .server
            .store
            .get_task_by_id(&id)
            .await
            .unwrap()
            .unwrap()
            .upstream_id
            .is_none()
        {
            assert!(Instant::now() < deadline, "never submitted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let del = app
            .authed(reqwest::Method::DELETE, &format!("/v1/tasks/{id}"), &key)
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), 204);
        let a = app.account(&account).await;
        let expected = if refund { 1000 } else { 1000 - price };
        assert_eq!((a.credits_available, a.credits_held), (expected, 0));
        assert_eq!(app.server.store.verify_ledger().await.unwrap(), vec![]);
    }
}

#[tokio::test]
async fn a_key_revoked_elsewhere_stops_working_within_the_cache_bound() {
    let app = TestApp::spawn_with(|c| {
        c.limits.key_cache_seconds = 1;
        c.limits.key_touch_seconds = 1;
    })
    .await;
    let (account, key) = app.new_account("rev", 1000).await;
    let org = |k: String| {
        let app = &app;
        async move {
            app.authed(reqwest::Method::GET, "/v1/organization", &k)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(org(key.clone()).await, 200);
    // Revoked directly in the database, as another instance or the CLI would.
    let keys = app.server.store.list_api_keys(&account).await.unwrap();
    assert!(app.server.store.revoke_api_key(&keys[0].id).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        org(key.clone()).await,
        401,
        "refused once the cache bound passed"
    );

    // Last-used times are written in batches, not per request.
    let keys = app.server.store.list_api_keys(&account).await.unwrap();
    assert!(keys[0].last_used_at.is_some(), "{keys:?}");
}

#[tokio::test]
async fn one_account_never_sees_anothers_balance() {
    let app = TestApp::spawn().await;
    let (_, a_key) = app.new_account("a", 777).await;
    let (_, b_key) = app.new_account("b", 555).await;
    for (k, credits) in [(&a_key, 777), (&b_key, 555)] {
        let v: Value = app
            .authed(reqwest::Method::GET, "/v1/organization", k)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["creditBalance"], credits);
    }
}

#[tokio::test]
async fn organization_usage_reports_net_credits_per_day_and_model() {
    let app = TestApp::spawn_with(|c| c.sandbox_run_seconds = 30.0).await;
    let (account, key) = app.new_account("usage", 10_000).await;
    let post = |path: &'static str, body: Value| {
        let app = &app;
        let key = key.clone();
        async move { body_of(app.post_as(&key, path, &body, &[]).await).await }
    };
    let (_, a) = post(I2V, gen4_turbo("kept")).await;
    let (_, b) = post(I2V, gen4_turbo("refunded")).await;
    let price = a["estimatedCost"]["credits"].as_i64().unwrap();
    // Cancelled before any upstream took it (the engine may be quick: then it is charged).
    app.authed(
        reqwest::Method::DELETE,
        &format!("/v1/tasks/{}", b["id"].as_str().unwrap()),
        &key,
    )
    .send()
    .await
    .unwrap();
    let charged_b = 10_000 - price - app.account(&account).await.credits_available;

    let (status, v) = post("/v1/organization/usage", json!({})).await;
    assert_eq!(status, 200, "{v}");
    let today = chrono_today();
    assert_eq!(v["models"], json!(["gen4_turbo"]));
    assert_eq!(
        v["results"],
        json!([{"date": today, "usedCredits": [{"model": "gen4_turbo", "amount": price + charged_b}]}])
    );
    // An empty body is fine too; bad dates and ranges are 400s in Runway's shape.
    let resp = app
        .authed(reqwest::Method::POST, "/v1/organization/usage", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for bad in [
        json!({"startDate": "yesterday"}),
        json!({"startDate": "2026-01-10", "beforeDate": "2026-01-01"}),
        json!({"startDate": "2026-01-01", "beforeDate": "2026-06-01"}),
        json!({"start": "2026-01-01"}),
    ] {
        let (status, v) = post("/v1/organization/usage", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["issues"].is_array(), "{v}");
    }
    // A range in the past has no usage.
    let (_, v) = post(
        "/v1/organization/usage",
        json!({"startDate": "2020-01-01", "beforeDate": "2020-02-01"}),
    )
    .await;
    assert_eq!(v, json!({"models": [], "results": []}));
}

async fn body_of(resp: reqwest::Response) -> (u16, Value) {
    body(resp).await
}

fn chrono_today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}
