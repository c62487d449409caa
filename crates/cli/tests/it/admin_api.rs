//! The admin API through the real server: every route, the token, bad inputs (refused with the
//! admin error shape and nothing written), and its effect on the Runway dialect.

use crate::common;

use common::{gen4_turbo, TestApp, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A request to `/admin/v1{path}` with the admin token.
fn admin(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(&format!("/admin/v1{path}")))
        .bearer_auth(ADMIN_TOKEN)
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = admin(app, method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req.send().await.unwrap()).await
}

async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} not JSON: {text}"))
    };
    (status, v)
}

/// Asserts the admin error shape and returns the code.
fn error_code(status: StatusCode, v: &Value) -> &str {
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{status}: {v}"
    );
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("{v}"))
}

async fn default_account_id(app: &TestApp) -> String {
    let (_, v) = call(app, Method::GET, "/accounts", None).await;
    v["data"][0]["id"].as_str().unwrap().to_string()
}

/// An account created through the API: (id, key).
async fn new_account(app: &TestApp, body: Value) -> (String, String) {
    let (status, v) = call(app, Method::POST, "/accounts", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    (
        v["account_id"].as_str().unwrap().to_string(),
        v["api_key"].as_str().unwrap().to_string(),
    )
}

async fn account(app: &TestApp, id: &str) -> Value {
    let (status, v) = call(app, Method::GET, &format!("/accounts/{id}"), None).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn ledger(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, v) = call(app, Method::GET, &format!("/accounts/{id}/ledger"), None).await;
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().unwrap().clone()
}

/// Everything an admin call could have written: accounts, and each one's ledger and keys.
async fn snapshot(app: &TestApp) -> Value {
    let (_, accounts) = call(app, Method::GET, "/accounts", None).await;
    let mut out = Vec::new();
    for a in accounts["data"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let (_, keys) = call(app, Method::GET, &format!("/accounts/{id}/keys"), None).await;
        out.push(json!({"account": a, "ledger": ledger(app, id).await, "keys": keys}));
    }
    Value::Array(out)
}

async fn organization(app: &TestApp, key: &str) -> reqwest::Response {
    app.authed(Method::GET, "/v1/organization", key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_wrong_token_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let id = default_account_id(&app).await;
    let (_, keys) = call(&app, Method::GET, &format!("/accounts/{id}/keys"), None).await;
    let key_id = keys["data"][0]["id"].as_str().unwrap().to_string();
    let before = snapshot(&app).await;

    let routes = [
        (
            Method::POST,
            "/accounts".to_string(),
            json!({"name": "x", "credits": 5}),
        ),
        (Method::GET, "/accounts".into(), Value::Null),
        (Method::GET, format!("/accounts/{id}"), Value::Null),
        (
            Method::PATCH,
            format!("/accounts/{id}"),
            json!({"price_multiplier": 3.0}),
        ),
        (
            Method::POST,
            format!("/accounts/{id}/topup"),
            json!({"amount": 5}),
        ),
        (
            Method::POST,
            format!("/accounts/{id}/adjust"),
            json!({"amount": -5, "reason": "r"}),
        ),
        (Method::GET, format!("/accounts/{id}/ledger"), Value::Null),
        (Method::POST, format!("/accounts/{id}/keys"), Value::Null),
        (Method::GET, format!("/accounts/{id}/keys"), Value::Null),
        (Method::DELETE, format!("/keys/{key_id}"), Value::Null),
        (Method::GET, "/ledger/verify".into(), Value::Null),
        (Method::GET, "/tasks/nope".into(), Value::Null),
        (
            Method::GET,
            format!("/accounts/{id}/webhook-secret"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/accounts/{id}/webhook-secret/rotate"),
            json!({"grace_seconds": 0}),
        ),
        (Method::GET, "/tasks/nope/webhooks".into(), Value::Null),
        (
            Method::POST,
            "/tasks/nope/webhooks/redeliver".into(),
            json!({}),
        ),
        (Method::GET, "/no/such/route".into(), Value::Null),
    ];
    let url = |p: &str| app.url(&format!("/admin/v1{p}"));
    for (method, path, body) in &routes {
        let variants: [(&str, Option<String>); 5] = [
            ("no token", None),
            ("wrong token", Some(format!("Bearer {ADMIN_TOKEN}x"))),
            ("empty bearer", Some("Bearer ".into())),
            ("basic scheme", Some(format!("Basic {ADMIN_TOKEN}"))),
            ("an API key", Some(format!("Bearer {}", app.key))),
        ];
        for (what, auth) in variants {
            let mut req = app.client.request(method.clone(), url(path));
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            if !body.is_null() {
                req = req.json(body);
            }
            let (status, v) = read(req.send().await.unwrap()).await;
            assert_eq!(status, 401, "{method} {path} with {what}: {v}");
            assert_eq!(error_code(status, &v), "unauthorized");
        }
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "a refused call wrote something"
    );
    // The default key was not revoked.
    assert_eq!(organization(&app, &app.key).await.status(), 200);
}

#[tokio::test]
async fn accounts_are_created_listed_shown_and_changed() {
    let app = TestApp::spawn().await;
    let (status, v) = call(
        &app,
        Method::POST,
        "/accounts",
        Some(
            json!({"name": "acme", "credits": 500, "price_multiplier": 1.5, "max_active_tasks": 3}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let id = v["account_id"].as_str().unwrap();
    let key = v["api_key"].as_str().unwrap();
    assert!(key.starts_with("key_"));
    assert!(v["webhook_secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("whsec_")));
    assert_eq!(v["account"]["id"], id);
    assert_eq!(v["account"]["name"], "acme");
    assert_eq!(v["account"]["credits_available"], 500);
    assert_eq!(v["account"]["credits_held"], 0);
    assert_eq!(v["account"]["price_multiplier"], 1.5);
    assert_eq!(v["account"]["max_active_tasks"], 3);

    // The key works, and the initial credits are a top-up in the ledger.
    let org: Value = organization(&app, key).await.json().await.unwrap();
    assert_eq!(org["creditBalance"], 500);
    let entries = ledger(&app, id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "topup");
    assert_eq!(entries[0]["amount"], 500);

    let (status, list) = call(&app, Method::GET, "/accounts", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "acme"]);

    let shown = account(&app, id).await;
    assert_eq!(shown, v["account"]);

    // Minimal body: no credits, the defaults.
    let (plain, _) = new_account(&app, json!({"name": "plain"})).await;
    let plain = account(&app, &plain).await;
    assert_eq!(plain["credits_available"], 0);
    assert_eq!(plain["price_multiplier"], 1.0);
    assert_eq!(plain["max_active_tasks"], Value::Null);
    assert!(ledger(&app, plain["id"].as_str().unwrap()).await.is_empty());

    let path = format!("/accounts/{id}");
    let (status, v) = call(
        &app,
        Method::PATCH,
        &path,
        Some(json!({"price_multiplier": 0.5})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["price_multiplier"], 0.5);
    assert_eq!(v["max_active_tasks"], 3, "an absent field is left alone");
    let (status, v) = call(
        &app,
        Method::PATCH,
        &path,
        Some(json!({"max_active_tasks": 7})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["price_multiplier"].as_f64(),
            v["max_active_tasks"].as_i64()
        ),
        (Some(0.5), Some(7))
    );
    let (status, v) = call(
        &app,
        Method::PATCH,
        &path,
        Some(json!({"max_active_tasks": null})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["max_active_tasks"], Value::Null, "null clears the cap");
    assert_eq!(account(&app, id).await, v);
}

#[tokio::test]
async fn topups_and_adjustments_move_the_balance_and_the_ledger() {
    let app = TestApp::spawn().await;
    let (id, key) = new_account(&app, json!({"name": "acme", "credits": 100})).await;

    let (status, v) = call(
        &app,
        Method::POST,
        &format!("/accounts/{id}/topup"),
        Some(json!({"amount": 250, "reason": "invoice 17"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["credits_available"], 350);
    let org: Value = organization(&app, &key).await.json().await.unwrap();
    assert_eq!(
        org["creditBalance"], 350,
        "the Runway dialect sees the top-up"
    );

    let (status, v) = call(
        &app,
        Method::POST,
        &format!("/accounts/{id}/adjust"),
        Some(json!({"amount": -50, "reason": "goodwill reversed"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["credits_available"], 300);
    let (status, v) = call(
        &app,
        Method::POST,
        &format!("/accounts/{id}/adjust"),
        Some(json!({"amount": 5, "reason": "rounding"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["credits_available"], 305);
    // Taking the balance to exactly zero is allowed.
    let (status, v) = call(
        &app,
        Method::POST,
        &format!("/accounts/{id}/adjust"),
        Some(json!({"amount": -305, "reason": "closing"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["credits_available"], 0);

    // Newest first, with the reasons kept; a top-up without one gets a default.
    let entries = ledger(&app, &id).await;
    let summary: Vec<(&str, i64, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["amount"].as_i64().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("adjust", -305, "closing"),
            ("adjust", 5, "rounding"),
            ("adjust", -50, "goodwill reversed"),
            ("topup", 250, "invoice 17"),
            ("topup", 100, "initial credits"),
        ]
    );
    let (_, v) = call(
        &app,
        Method::POST,
        &format!("/accounts/{id}/topup"),
        Some(json!({"amount": 1})),
    )
    .await;
    assert_eq!(v["credits_available"], 1);
    assert_eq!(ledger(&app, &id).await[0]["reason"], "top-up");

    let (status, v) = call(
        &app,
        Method::GET,
        &format!("/accounts/{id}/ledger?limit=2"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let seqs: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] > seqs[1], "newest first: {seqs:?}");
    assert_eq!(v["data"][0]["amount"], 1);

    let (status, v) = call(&app, Method::GET, "/ledger/verify", None).await;
    assert_eq!(
        (status, v),
        (StatusCode::OK, json!({"ok": true, "violations": []}))
    );
}

#[tokio::test]
async fn bad_amounts_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (id, _) = new_account(&app, json!({"name": "acme", "credits": 100})).await;
    let topup = format!("/accounts/{id}/topup");
    let adjust = format!("/accounts/{id}/adjust");
    let before = snapshot(&app).await;

    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "zero top-up",
            &topup,
            json!({"amount": 0}),
            400,
            "invalid_request",
        ),
        (
            "negative top-up",
            &topup,
            json!({"amount": -5}),
            400,
            "invalid_request",
        ),
        (
            "fractional top-up",
            &topup,
            json!({"amount": 1.5}),
            400,
            "invalid_request",
        ),
        (
            "string top-up",
            &topup,
            json!({"amount": "10"}),
            400,
            "invalid_request",
        ),
        (
            "null top-up",
            &topup,
            json!({"amount": null}),
            400,
            "invalid_request",
        ),
        (
            "missing amount",
            &topup,
            json!({"reason": "x"}),
            400,
            "invalid_request",
        ),
        (
            "huge top-up",
            &topup,
            json!({"amount": 1_000_000_000_000_001_i64}),
            400,
            "invalid_request",
        ),
        (
            "beyond i64",
            &topup,
            json!({"amount": u64::MAX}),
            400,
            "invalid_request",
        ),
        (
            "exponent",
            &topup,
            json!({"amount": 1e20}),
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            &topup,
            json!({"amount": 5, "amonut": 5}),
            400,
            "invalid_request",
        ),
        ("not an object", &topup, json!([5]), 400, "invalid_request"),
        (
            "reason too long",
            &topup,
            json!({"amount": 5, "reason": "r".repeat(501)}),
            400,
            "invalid_request",
        ),
        (
            "unknown account",
            "/accounts/acct_nope/topup",
            json!({"amount": 5}),
            404,
            "not_found",
        ),
        (
            "zero adjustment",
            &adjust,
            json!({"amount": 0, "reason": "r"}),
            400,
            "invalid_request",
        ),
        (
            "adjustment without reason",
            &adjust,
            json!({"amount": 5}),
            400,
            "invalid_request",
        ),
        (
            "blank reason",
            &adjust,
            json!({"amount": 5, "reason": "  "}),
            400,
            "invalid_request",
        ),
        (
            "fractional adjustment",
            &adjust,
            json!({"amount": -1.5, "reason": "r"}),
            400,
            "invalid_request",
        ),
        (
            "below zero",
            &adjust,
            json!({"amount": -101, "reason": "r"}),
            409,
            "insufficient_balance",
        ),
        (
            "unknown account",
            "/accounts/acct_nope/adjust",
            json!({"amount": -1, "reason": "r"}),
            404,
            "not_found",
        ),
    ];
    for (what, path, body, want, code) in cases {
        let (status, v) = call(&app, Method::POST, path, Some(body)).await;
        assert_eq!(status.as_u16(), want, "{what}: {v}");
        assert_eq!(error_code(status, &v), code, "{what}");
    }

    // Malformed JSON and a body that is not declared JSON: 400 in the same shape.
    for (what, content_type, body) in [
        ("broken JSON", Some("application/json"), "{\"amount\": "),
        ("no content type", None, "{\"amount\": 5}"),
        ("text content type", Some("text/plain"), "{\"amount\": 5}"),
    ] {
        let mut req = admin(&app, Method::POST, &topup).body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let (status, v) = read(req.send().await.unwrap()).await;
        assert_eq!(status, 400, "{what}: {v}");
        assert_eq!(error_code(status, &v), "invalid_request", "{what}");
    }

    assert_eq!(
        snapshot(&app).await,
        before,
        "a refused call wrote something"
    );
}

#[tokio::test]
async fn bad_account_inputs_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let id = default_account_id(&app).await;
    let before = snapshot(&app).await;

    let creates = [
        json!({"credits": 5}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "n".repeat(201)}),
        json!({"name": 7}),
        json!({"name": "x", "credits": -1}),
        json!({"name": "x", "credits": 2.5}),
        json!({"name": "x", "credits": "5"}),
        json!({"name": "x", "price_multiplier": 0}),
        json!({"name": "x", "price_multiplier": -1}),
        json!({"name": "x", "price_multiplier": 1e9}),
        json!({"name": "x", "price_multiplier": "2"}),
        json!({"name": "x", "max_active_tasks": 0}),
        json!({"name": "x", "max_active_tasks": 1.5}),
        json!({"name": "x", "webhook": "y"}),
    ];
    for body in creates {
        let (status, v) = call(&app, Method::POST, "/accounts", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(error_code(status, &v), "invalid_request");
    }

    let path = format!("/accounts/{id}");
    for body in [
        json!({}),
        json!({"price_multiplier": 0}),
        json!({"price_multiplier": null}),
        json!({"max_active_tasks": 0}),
        json!({"max_active_tasks": -3}),
        json!({"max_active_tasks": "3"}),
        json!({"credits_available": 1_000_000}),
    ] {
        let (status, v) = call(&app, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(error_code(status, &v), "invalid_request");
    }
    let (status, v) = call(
        &app,
        Method::PATCH,
        "/accounts/acct_nope",
        Some(json!({"price_multiplier": 2.0})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), error_code(status, &v)),
        (404, "not_found")
    );

    for path in [
        "/accounts/acct_nope",
        "/accounts/acct_nope/ledger",
        "/accounts/acct_nope/keys",
        "/tasks/nope",
    ] {
        let (status, v) = call(&app, Method::GET, path, None).await;
        assert_eq!(
            (status.as_u16(), error_code(status, &v)),
            (404, "not_found"),
            "{path}"
        );
    }
    let (status, v) = call(&app, Method::POST, "/accounts/acct_nope/keys", None).await;
    assert_eq!(
        (status.as_u16(), error_code(status, &v)),
        (404, "not_found")
    );

    for q in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "limit=2.5",
        "lmit=3",
    ] {
        let (status, v) = call(
            &app,
            Method::GET,
            &format!("/accounts/{id}/ledger?{q}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{q}: {v}");
        assert_eq!(error_code(status, &v), "invalid_request");
    }

    assert_eq!(
        snapshot(&app).await,
        before,
        "a refused call wrote something"
    );
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_at_once() {
    let app = TestApp::spawn().await;
    let (id, first_key) = new_account(&app, json!({"name": "acme", "credits": 10})).await;

    let (status, v) = call(&app, Method::POST, &format!("/accounts/{id}/keys"), None).await;
    assert_eq!(status, 201, "{v}");
    let key_id = v["key_id"].as_str().unwrap().to_string();
    let key = v["api_key"].as_str().unwrap().to_string();
    assert_eq!(v["account_id"], id.as_str());
    assert_ne!(key, first_key);

    let (status, v) = call(&app, Method::GET, &format!("/accounts/{id}/keys"), None).await;
    assert_eq!(status, 200, "{v}");
    let keys = v["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        assert!(
            k.get("api_key").is_none() && k.get("key_hash").is_none(),
            "secret listed: {k}"
        );
        assert!(
            key.starts_with(k["prefix"].as_str().unwrap())
                || first_key.starts_with(k["prefix"].as_str().unwrap())
        );
    }
    assert!(
        !v.to_string().contains(&key[12..]),
        "the key itself is never listed"
    );

    // Use the key first, so that its lookup is cached: the revoke must still apply at once.
    assert_eq!(organization(&app, &key).await.status(), 200);
    let resp = admin(&app, Method::DELETE, &format!("/keys/{key_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.text().await.unwrap().is_empty());
    let resp = organization(&app, &key).await;
    assert_eq!(resp.status(), 401, "a revoked key still works");
    // The account's other key is untouched.
    assert_eq!(organization(&app, &first_key).await.status(), 200);

    let (_, v) = call(&app, Method::GET, &format!("/accounts/{id}/keys"), None).await;
    let revoked = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].as_i64().is_some(), "{revoked}");

    for path in [format!("/keys/{key_id}"), "/keys/kid_nope".to_string()] {
        let (status, v) = call(&app, Method::DELETE, &path, None).await;
        assert_eq!(
            (status.as_u16(), error_code(status, &v)),
            (404, "not_found"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_price_multiplier_set_by_patch_applies_to_the_next_estimate() {
    let app = TestApp::spawn().await;
    let create = |key: String| {
        let app = &app;
        async move {
            let resp = app
                .authed(Method::POST, "/v1/image_to_video", &key)
                .json(&gen4_turbo("x"))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let v: Value = resp.json().await.unwrap();
            assert_eq!(status, 200, "{v}");
            v["estimatedCost"]["credits"].as_i64().unwrap()
        }
    };
    let base = create(app.key.clone()).await;
    assert!(base > 0);

    let (id, key) = new_account(&app, json!({"name": "reseller", "credits": 10_000})).await;
    // At 1.0 first, so the account is in this instance's key cache when the PATCH lands.
    assert_eq!(create(key.clone()).await, base);
    let (status, v) = call(
        &app,
        Method::PATCH,
        &format!("/accounts/{id}"),
        Some(json!({"price_multiplier": 2.0})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(create(key.clone()).await, 2 * base);
    assert_eq!(
        create(app.key.clone()).await,
        base,
        "other accounts keep their price"
    );
}

#[tokio::test]
async fn tasks_of_any_account_are_shown_with_their_events() {
    let app = TestApp::spawn().await;
    let other_key = app.other_account().await;
    let resp = app
        .authed(Method::POST, "/v1/image_to_video", &other_key)
        .json(&gen4_turbo("x"))
        .send()
        .await
        .unwrap();
    let created: Value = resp.json().await.unwrap();
    let task_id = created["id"].as_str().unwrap();

    let (status, v) = call(&app, Method::GET, &format!("/tasks/{task_id}"), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["task"]["id"], task_id);
    assert_eq!(v["task"]["spec"]["model"], "gen4_turbo", "{v}");
    let events = v["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert_eq!(events[0]["task_id"], task_id);
}

#[tokio::test]
async fn the_ledger_check_reports_a_tampered_balance() {
    let app = TestApp::spawn().await;
    let (status, v) = call(&app, Method::GET, "/ledger/verify", None).await;
    assert_eq!(
        (status, v),
        (StatusCode::OK, json!({"ok": true, "violations": []}))
    );

    let (id, _) = new_account(&app, json!({"name": "acme", "credits": 100})).await;
    crate::common::credit_behind_the_ledger(app.dir.path(), &id, 7).await;

    let (status, v) = call(&app, Method::GET, "/ledger/verify", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], false);
    let violations = v["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{v}");
    assert_eq!(violations[0]["account_id"], id.as_str());
    assert!(
        violations[0]["problem"].as_str().unwrap().contains("107"),
        "{v}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_admin_shape() {
    let app = TestApp::spawn().await;
    // "" is `/admin/v1` itself. `/admin/v1/` is not covered: a nested router's fallback does
    // not see its prefix with a bare trailing slash, so the outer (Runway) fallback answers it.
    for path in ["/nope", "/accounts/a/b/c", "/accounts/", ""] {
        let (status, v) = call(&app, Method::GET, path, None).await;
        assert_eq!(
            (status.as_u16(), error_code(status, &v)),
            (404, "not_found"),
            "{path}"
        );
    }
    let (status, v) = call(&app, Method::DELETE, "/accounts", None).await;
    assert_eq!(
        (status.as_u16(), error_code(status, &v)),
        (405, "method_not_allowed")
    );
    let (status, v) = call(&app, Method::GET, "/keys/kid_x", None).await;
    assert_eq!(
        (status.as_u16(), error_code(status, &v)),
        (405, "method_not_allowed")
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_in_the_admin_shape() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 1024).await;
    let id = default_account_id(&app).await;
    let before = snapshot(&app).await;
    let body = json!({"amount": 5, "reason": "r".repeat(4096)});
    let (status, v) = call(
        &app,
        Method::POST,
        &format!("/accounts/{id}/topup"),
        Some(body),
    )
    .await;
    assert_eq!(
        (status.as_u16(), error_code(status, &v)),
        (413, "payload_too_large")
    );
    assert_eq!(snapshot(&app).await, before);
}
