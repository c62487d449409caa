//! Webhook administration through the real server: signing secrets (shown, rotated, refused
//! without the token), a task's outbox with its attempts, and redelivery with the same ids,
//! through the admin API and through the `reelay` commands on the server's data dir.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::receiver::Receiver;
use common::{admin, gen4_turbo, TestApp, ADMIN_TOKEN};
use reelay::config::Config;
use reelay_engine::signing::sign;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

fn now_ms() -> i64 {
    reelay_store::now_ms()
}

/// A `whsec_` secret whose key is 32 random bytes (webhooks.md §2).
fn assert_secret(s: &Value) -> String {
    let s = s.as_str().unwrap_or_else(|| panic!("not a secret: {s}"));
    let b64 = s
        .strip_prefix("whsec_")
        .unwrap_or_else(|| panic!("no whsec_ prefix: {s}"));
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(key.len(), 32, "{s}");
    s.to_string()
}

async fn default_account_id(app: &TestApp) -> String {
    let (_, v) = admin(app, Method::GET, "/accounts", None).await;
    v["data"][0]["id"].as_str().unwrap().to_string()
}

async fn secret(app: &TestApp, id: &str) -> Value {
    let (status, v) = admin(
        app,
        Method::GET,
        &format!("/accounts/{id}/webhook-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn rotate(app: &TestApp, id: &str, body: Option<Value>) -> (StatusCode, Value) {
    admin(
        app,
        Method::POST,
        &format!("/accounts/{id}/webhook-secret/rotate"),
        body,
    )
    .await
}

#[tokio::test]
async fn webhook_secrets_are_created_shown_and_rotated() {
    let app = TestApp::spawn().await;
    let (status, v) = admin(
        &app,
        Method::POST,
        "/accounts",
        Some(json!({"name": "acme"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let id = v["account_id"].as_str().unwrap().to_string();
    let first = assert_secret(&v["webhook_secret"]);
    assert_eq!(
        secret(&app, &id).await,
        json!({"webhook_secret": first, "previous": null})
    );
    // Each account has its own.
    let (_, other) = admin(&app, Method::POST, "/accounts", Some(json!({"name": "b"}))).await;
    assert_ne!(assert_secret(&other["webhook_secret"]), first);
    // The bootstrap account has one too.
    let default = default_account_id(&app).await;
    assert_secret(&secret(&app, &default).await["webhook_secret"]);

    // No body: the configured grace (24 h by default).
    let before = now_ms();
    let (status, v) = rotate(&app, &id, None).await;
    assert_eq!(status, 200, "{v}");
    let second = assert_secret(&v["webhook_secret"]);
    assert_ne!(second, first);
    let until = v["previous_valid_until"].as_i64().unwrap();
    let day = 24 * 3600 * 1000;
    assert!(
        (before + day..=now_ms() + day).contains(&until),
        "{until} is not a day from now"
    );
    assert_eq!(
        secret(&app, &id).await,
        json!({"webhook_secret": second, "previous": first})
    );

    // A given grace; the previous is the one just replaced.
    let before = now_ms();
    let (status, v) = rotate(&app, &id, Some(json!({"grace_seconds": 60}))).await;
    assert_eq!(status, 200, "{v}");
    let third = assert_secret(&v["webhook_secret"]);
    let until = v["previous_valid_until"].as_i64().unwrap();
    assert!(
        (before + 60_000..=now_ms() + 60_000).contains(&until),
        "{v}"
    );
    assert_eq!(
        secret(&app, &id).await,
        json!({"webhook_secret": third, "previous": second})
    );

    // Grace 0: the old secret stops signing at once.
    let (status, v) = rotate(&app, &id, Some(json!({"grace_seconds": 0}))).await;
    assert_eq!(status, 200, "{v}");
    let fourth = assert_secret(&v["webhook_secret"]);
    assert!(v["previous_valid_until"].as_i64().unwrap() <= now_ms());
    assert_eq!(
        secret(&app, &id).await,
        json!({"webhook_secret": fourth, "previous": null})
    );
    // `{}` is the same as no body.
    let (status, v) = rotate(&app, &id, Some(json!({}))).await;
    assert_eq!(status, 200, "{v}");
    let fifth = assert_secret(&v["webhook_secret"]);
    assert_eq!(secret(&app, &id).await["previous"], fourth.as_str());

    // Bad bodies are refused and change nothing.
    for body in [
        json!({"grace_seconds": -1}),
        json!({"grace_seconds": 604_801}),
        json!({"grace_seconds": 1.5}),
        json!({"grace_seconds": "60"}),
        json!({"grace_seconds": null, "x": 1}),
        json!({"grace": 60}),
        json!([60]),
    ] {
        let (status, v) = rotate(&app, &id, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(error_code(status, &v), "invalid_request", "{body}");
    }
    let resp = app
        .client
        .post(app.url(&format!("/admin/v1/accounts/{id}/webhook-secret/rotate")))
        .bearer_auth(ADMIN_TOKEN)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, v) = read(resp).await;
    assert_eq!(
        (status, error_code(status, &v)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    // The longest grace is accepted.
    let (status, v) = rotate(&app, &id, Some(json!({"grace_seconds": 604_800}))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(secret(&app, &id).await["previous"], fifth.as_str());

    for (method, path) in [
        (Method::GET, "/accounts/acct_nope/webhook-secret"),
        (Method::POST, "/accounts/acct_nope/webhook-secret/rotate"),
    ] {
        let (status, v) = admin(&app, method.clone(), path, None).await;
        assert_eq!(status, 404, "{method} {path}: {v}");
        assert_eq!(error_code(status, &v), "not_found");
    }
    let (status, v) = admin(
        &app,
        Method::DELETE,
        &format!("/accounts/{id}/webhook-secret"),
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(status, &v)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn the_webhook_routes_refuse_a_missing_or_wrong_token_and_change_nothing() {
    let app = TestApp::spawn().await;
    let id = default_account_id(&app).await;
    let task = app.create("image_to_video", &gen4_turbo("x")).await;
    let before = secret(&app, &id).await;
    let routes = [
        (Method::GET, format!("/accounts/{id}/webhook-secret")),
        (
            Method::POST,
            format!("/accounts/{id}/webhook-secret/rotate"),
        ),
        (Method::GET, format!("/tasks/{task}/webhooks")),
        (Method::POST, format!("/tasks/{task}/webhooks/redeliver")),
    ];
    for (method, path) in &routes {
        for auth in [
            None,
            Some(format!("Bearer {ADMIN_TOKEN}x")),
            Some(format!("Bearer {}", app.key)),
        ] {
            let mut req = app
                .client
                .request(method.clone(), app.url(&format!("/admin/v1{path}")))
                .json(&json!({"grace_seconds": 0}));
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            let (status, v) = read(req.send().await.unwrap()).await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {v}");
            assert_eq!(error_code(status, &v), "unauthorized");
        }
    }
    assert_eq!(
        secret(&app, &id).await,
        before,
        "a refused rotation rotated"
    );
}

/// How many requests `receiver` saw carrying `id`.
fn times(receiver: &Receiver, id: &str) -> usize {
    receiver.seen().iter().filter(|s| s.id == id).count()
}

/// A receiver failing (500) until told otherwise.
async fn failing_receiver() -> Receiver {
    Receiver::start(usize::MAX, Duration::ZERO).await
}

fn fast_failures(c: &mut Config) {
    c.webhooks.schedule_seconds = vec![0.05];
    c.outbound_allow_cidrs = "127.0.0.1/32".into();
    c.sandbox_run_seconds = 0.3;
    c.webhooks.timeout_ms = 3_000;
    c.webhooks.connect_timeout_ms = 1_000;
    c.webhooks.lease_seconds = 10;
    // `reelay webhook redeliver` cannot wake the server: it notices at its next look.
    c.webhooks.idle_wakeup_ms = 200;
}

/// A finished task whose callbacks went to `receiver`.
async fn task_with_callback(app: &TestApp, receiver: &Receiver, prompt: &str) -> String {
    let resp = app
        .post_as(
            &app.key,
            "/v1/image_to_video",
            &gen4_turbo(prompt),
            &[("X-Reelay-Callback-Url", receiver.url.as_str())],
        )
        .await;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(app.wait_terminal(&id).await["status"], "SUCCEEDED");
    id
}

async fn webhooks(app: &TestApp, task: &str) -> Vec<Value> {
    let (status, v) = admin(app, Method::GET, &format!("/tasks/{task}/webhooks"), None).await;
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().unwrap().clone()
}

/// Polls the admin list until every message of the task is in `state`.
async fn wait_all(app: &TestApp, task: &str, state: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msgs = webhooks(app, task).await;
        if !msgs.is_empty() && msgs.iter().all(|m| m["state"] == state) {
            return msgs;
        }
        assert!(
            Instant::now() < deadline,
            "the messages of {task} are not all {state}: {msgs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn redeliver(app: &TestApp, task: &str, body: Option<Value>) -> (StatusCode, Value) {
    admin(
        app,
        Method::POST,
        &format!("/tasks/{task}/webhooks/redeliver"),
        body,
    )
    .await
}

#[tokio::test]
async fn failed_webhooks_are_listed_with_their_attempts_and_redelivered_with_the_same_ids() {
    let receiver = failing_receiver().await;
    let app = TestApp::spawn_with(fast_failures).await;
    let task = task_with_callback(&app, &receiver, "x").await;

    // Running and succeeded, each tried twice (the schedule has one retry), then failed.
    let failed = wait_all(&app, &task, "failed").await;
    let types: Vec<&str> = failed
        .iter()
        .map(|m| m["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["task.running", "task.succeeded"]);
    let account = default_account_id(&app).await;
    for (i, m) in failed.iter().enumerate() {
        let id = m["id"].as_str().unwrap();
        assert!(id.starts_with("evt_"), "{m}");
        assert_eq!(m["task_id"], task.as_str());
        assert_eq!(m["account_id"], account.as_str());
        assert_eq!(m["seq"], i as i64 + 1);
        assert_eq!(m["url"], receiver.url.as_str());
        assert_eq!(m["delivered_at"], Value::Null);
        assert_eq!(m["last_error"], "HTTP 500");
        let payload: Value = serde_json::from_str(m["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["type"], m["event_type"]);
        assert_eq!(payload["data"]["id"], task.as_str());
        let attempts = m["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{m:#}");
        for (n, a) in attempts.iter().enumerate() {
            assert_eq!(a["message_id"], id);
            assert_eq!(a["n"], n as i64 + 1);
            assert_eq!(a["status"], 500, "{a}");
            assert_eq!(a["error"], "HTTP 500");
            assert_eq!(a["response_excerpt"], "not yet");
            assert!(a["latency_ms"].as_i64().is_some_and(|l| l >= 0), "{a}");
            assert!(a["started_at"].as_i64().unwrap() >= m["created_at"].as_i64().unwrap());
        }
        assert!(attempts[1]["started_at"].as_i64() >= attempts[0]["started_at"].as_i64());
        assert_eq!(times(&receiver, id), 2);
    }
    assert_eq!(receiver.seen().len(), 4);
    let event_ids = ids(&failed);

    // The secret rotated with a grace: redeliveries carry both signatures.
    let old = secret(&app, &account).await["webhook_secret"].clone();
    let (status, v) = rotate(&app, &account, Some(json!({"grace_seconds": 600}))).await;
    assert_eq!(status, 200, "{v}");
    let new = v["webhook_secret"].clone();

    receiver.set_failures(0);
    let (status, v) = redeliver(&app, &task, None).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"redelivered": 2})));
    let delivered = wait_all(&app, &task, "delivered").await;
    assert_eq!(
        ids(&delivered),
        event_ids,
        "the same messages, the same ids"
    );
    for m in &delivered {
        let id = m["id"].as_str().unwrap();
        assert_eq!(times(&receiver, id), 3, "{id} was not sent again");
        assert!(m["delivered_at"].as_i64().is_some(), "{m}");
        let attempts = m["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 3, "{m:#}");
        assert_eq!(attempts[2]["n"], 3);
        assert_eq!(attempts[2]["status"], 200);
        assert_eq!(attempts[2]["error"], Value::Null);
        assert_eq!(attempts[2]["response_excerpt"], "ok");
    }
    let last = receiver.seen().last().unwrap().clone();
    let expected = [&new, &old]
        .iter()
        .map(|s| {
            sign(
                s.as_str().unwrap(),
                &last.id,
                last.timestamp.parse().unwrap(),
                &last.body,
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(last.signature, expected);

    // Nothing failed any more: nothing to redeliver.
    let (status, v) = redeliver(&app, &task, Some(json!({}))).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"redelivered": 0})));

    // One delivered message again, by id. While it is on its way (the receiver is slow now),
    // asking again is refused: it is pending.
    receiver.set_delay(Duration::from_millis(1_000));
    let first = event_ids[0].clone();
    let (status, v) = redeliver(&app, &task, Some(json!({"message_id": first}))).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"redelivered": 1})));
    let (status, v) = redeliver(&app, &task, Some(json!({"message_id": first}))).await;
    assert_eq!(
        (status, error_code(status, &v)),
        (StatusCode::CONFLICT, "webhook_pending"),
        "{v}"
    );
    let again = wait_all(&app, &task, "delivered").await;
    assert_eq!(ids(&again), event_ids);
    assert_eq!(times(&receiver, &first), 4);
    assert_eq!(times(&receiver, &event_ids[1]), 3, "only the one asked for");
    assert_eq!(again[0]["attempts"].as_array().unwrap().len(), 4);
    assert_eq!(again[0]["attempts"][3]["status"], 200);
    assert!(again[0]["attempts"][3]["latency_ms"].as_i64().unwrap() >= 1_000);

    // Unknown tasks and messages, and messages of another task.
    let other = app.create("image_to_video", &gen4_turbo("y")).await;
    let cases = [
        ("/tasks/nope/webhooks/redeliver".to_string(), json!({})),
        (
            format!("/tasks/{task}/webhooks/redeliver"),
            json!({"message_id": "evt_nope"}),
        ),
        (
            format!("/tasks/{other}/webhooks/redeliver"),
            json!({"message_id": first}),
        ),
    ];
    for (path, body) in cases {
        let (status, v) = admin(&app, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 404, "{path} {body}: {v}");
        assert_eq!(error_code(status, &v), "not_found");
    }
    let (status, v) = admin(&app, Method::GET, "/tasks/nope/webhooks", None).await;
    assert_eq!(
        (status, error_code(status, &v)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    // A task without a callback has no messages.
    assert!(webhooks(&app, &other).await.is_empty());
    for body in [
        json!({"message_id": 5}),
        json!({"message": first}),
        json!([1]),
    ] {
        let (status, v) = redeliver(&app, &task, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(error_code(status, &v), "invalid_request");
    }
    assert_eq!(
        times(&receiver, &first),
        4,
        "a refused redelivery sent something"
    );
}

/// The `reelay` binary on the running server's data dir.
fn reelay(app: &TestApp, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_reelay"))
        .arg("--data-dir")
        .arg(app.dir.path())
        .args(args)
        .env("REELAY_LOG", "warn")
        .env_remove("REELAY_CONFIG")
        .env_remove("REELAY_DATA_DIR")
        .env_remove("REELAY_DATABASE_URL")
        .env_remove("REELAY_SECRET_KEY")
        .env_remove("RUST_LOG")
        .envs(crate::common::process::database_env(app.dir.path()))
        .output()
        .expect("the reelay binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "reelay {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn reelay_json(app: &TestApp, args: &[&str]) -> Value {
    let stdout = reelay(app, args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

#[tokio::test]
async fn the_commands_see_the_servers_secrets_and_outbox_and_redeliver_through_it() {
    let receiver = failing_receiver().await;
    let app = TestApp::spawn_with(fast_failures).await;
    let account = default_account_id(&app).await;

    // The commands open the sealed secrets with the data dir's key: the same secret.
    let shown = reelay_json(
        &app,
        &["webhook", "secret", "--account", &account, "--json"],
    );
    assert_eq!(shown, secret(&app, &account).await);
    let text = reelay(&app, &["webhook", "secret", "--account", &account]);
    assert_eq!(text.trim(), shown["webhook_secret"].as_str().unwrap());

    let task = task_with_callback(&app, &receiver, "x").await;
    let failed = wait_all(&app, &task, "failed").await;
    let listed = reelay_json(&app, &["webhook", "list", "--task", &task, "--json"]);
    assert_eq!(listed, json!({ "data": failed }));
    let text = reelay(&app, &["webhook", "list", "--task", &task]);
    for m in &failed {
        assert!(text.contains(m["id"].as_str().unwrap()), "{text}");
    }
    assert!(
        text.contains("failed") && text.contains("HTTP 500"),
        "{text}"
    );

    receiver.set_failures(0);
    let done = reelay_json(&app, &["webhook", "redeliver", "--task", &task, "--json"]);
    assert_eq!(done, json!({"redelivered": 2}));
    let delivered = wait_all(&app, &task, "delivered").await;
    assert_eq!(ids(&delivered), ids(&failed));
    for id in ids(&failed) {
        assert_eq!(times(&receiver, &id), 3);
    }

    let first = ids(&failed)[0].clone();
    let text = reelay(
        &app,
        &["webhook", "redeliver", "--task", &task, "--message", &first],
    );
    assert_eq!(text.trim(), "1 webhook message(s) queued for redelivery");
    wait_all(&app, &task, "delivered").await;
    assert_eq!(times(&receiver, &first), 4, "not sent again");
}
