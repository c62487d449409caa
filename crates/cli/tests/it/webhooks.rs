//! The webhook outbox through the real server: retries until the receiver succeeds, attempts
//! recorded, backoff respected, order per task, signatures, SSRF refusals at submit time and
//! after resolution, and a slow receiver that does not stall the others.

use crate::common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{gen4_turbo, TestApp};
use reelay::config::Config;
use serde_json::Value;

fn fast_webhooks(c: &mut Config) {
    c.sandbox_run_seconds = 0.3;
    c.outbound_allow_cidrs = "127.0.0.1/32".into();
    c.webhooks.schedule_seconds = vec![0.3, 0.3, 0.3];
    c.webhooks.jitter = 0.0;
    c.webhooks.timeout_ms = 2_000;
    c.webhooks.connect_timeout_ms = 1_000;
    c.webhooks.lease_seconds = 10;
}

async fn create_with_callback(app: &TestApp, url: &str, prompt: &str) -> reqwest::Response {
    app.post_as(
        &app.key,
        "/v1/image_to_video",
        &gen4_turbo(prompt),
        &[("X-Reelay-Callback-Url", url)],
    )
    .await
}

async fn create_id(app: &TestApp, url: &str, prompt: &str) -> String {
    let resp = create_with_callback(app, url, prompt).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Waits until every message of the task is settled (delivered or failed); returns them.
async fn settled(app: &TestApp, task: &str, want: usize) -> Vec<reelay_store::WebhookMessage> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msgs = app.server.store.webhook_messages(task).await.unwrap();
        if msgs.len() >= want && msgs.iter().all(|m| m.state != "pending") {
            return msgs;
        }
        assert!(
            Instant::now() < deadline,
            "messages did not settle: {msgs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn account_secret(app: &TestApp) -> String {
    let accounts = app.server.store.list_accounts().await.unwrap();
    let default = accounts.iter().find(|a| a.name == "default").unwrap();
    app.server
        .store
        .webhook_secrets(&default.id)
        .await
        .unwrap()
        .unwrap()
        .current
}

#[tokio::test]
async fn retried_until_the_receiver_succeeds_in_order_with_attempts_recorded() {
    let rx = Receiver::start(2, Duration::ZERO).await;
    let app = TestApp::spawn_with(fast_webhooks).await;
    let task = create_id(&app, &rx.url, "hooked").await;
    let msgs = settled(&app, &task, 2).await;
    let types: Vec<&str> = msgs.iter().map(|m| m.event_type.as_str()).collect();
    assert_eq!(types, ["task.running", "task.succeeded"]);
    assert!(msgs.iter().all(|m| m.state == "delivered"), "{msgs:#?}");

    // The first message took three attempts (500, 500, 200); the second waited its turn.
    let first = &msgs[0];
    assert_eq!(first.attempts, 3);
    let attempts = app.server.store.webhook_attempts(&first.id).await.unwrap();
    let statuses: Vec<Option<u16>> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    assert_eq!(attempts[0].response_excerpt.as_deref(), Some("not yet"));
    assert!(attempts.iter().all(|a| a.latency_ms >= 0));
    assert_eq!(msgs[1].attempts, 1);

    let seen = rx.seen();
    let ids: Vec<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [&first.id, &first.id, &first.id, &msgs[1].id],
        "same id on every retry"
    );
    // Backoff respected: the schedule says 0.3 s between attempts.
    for w in seen[..3].windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_millis(280),
            "retried too soon"
        );
    }
    // The later state was not delivered before the earlier one was settled.
    assert!(seen[3].at >= seen[2].at);
    assert_eq!(seen[3].json()["data"]["status"], "SUCCEEDED");
    assert_eq!(seen[3].json()["data"]["id"], task.as_str());
    assert_eq!(seen[0].json()["type"], "task.running");
}

#[tokio::test]
async fn deliveries_are_signed_with_the_accounts_secret_and_rotation_signs_twice() {
    let rx = Receiver::start(0, Duration::ZERO).await;
    let app = TestApp::spawn_with(fast_webhooks).await;
    let secret = account_secret(&app).await;
    let task = create_id(&app, &rx.url, "signed").await;
    settled(&app, &task, 2).await;
    for s in rx.seen() {
        let ts: i64 = s.timestamp.parse().unwrap();
        assert!((ts - chrono::Utc::now().timestamp()).abs() < 60);
        assert!(s.id.starts_with("evt_") && !s.id.contains('.'));
        let expected = reelay_engine::signing::sign(&secret, &s.id, ts, &s.body);
        assert_eq!(s.signature, expected);
    }

    // During a rotation both secrets sign; a receiver holding either verifies.
    let accounts = app.server.store.list_accounts().await.unwrap();
    let default = &accounts.iter().find(|a| a.name == "default").unwrap().id;
    let new = app
        .server
        .store
        .rotate_webhook_secret(default, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(new, secret);
    let task = create_id(&app, &rx.url, "rotated").await;
    settled(&app, &task, 2).await;
    let last = rx.seen().pop().unwrap();
    let ts: i64 = last.timestamp.parse().unwrap();
    let entries: Vec<&str> = last.signature.split(' ').collect();
    assert_eq!(
        entries,
        [
            reelay_engine::signing::sign(&new, &last.id, ts, &last.body),
            reelay_engine::signing::sign(&secret, &last.id, ts, &last.body),
        ]
    );
}

#[tokio::test]
async fn callback_urls_refused_on_their_face_are_rejected_at_submit() {
    let app = TestApp::spawn_with(fast_webhooks).await;
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        // 127.0.0.1 is allowlisted here; other notations of private addresses are not.
        "http://167772161/",
        "http://012.0.0.1/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://127.0.0.2/",
        "http://[::ffff:192.168.0.1]/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pass@example.com/hook",
        "not a url",
    ] {
        let resp = create_with_callback(&app, url, "refused").await;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 400, "{url}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("X-Reelay-Callback-Url"),
            "{v}"
        );
    }
    // Allowlisted loopback is accepted; nothing else was created.
    let ok = create_with_callback(&app, "http://127.0.0.1:9/hook", "ok").await;
    assert_eq!(ok.status(), 200);
    let usage = app
        .get("/v1/organization")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        usage["usage"]["models"]["gen4_turbo"]["dailyGenerations"],
        1
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_a_private_address_is_refused_at_delivery_and_recorded() {
    let resolver = reelay_outbound::StaticResolver::new().host(
        "hooks.partner.test",
        ["10.0.0.9".parse::<IpAddr>().unwrap()],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    fast_webhooks(&mut config);
    config.webhooks.schedule_seconds = vec![0.1];
    let server = reelay::serve::start_with(
        config,
        reelay::serve::Extras {
            resolver: Some(Arc::new(resolver)),
        },
    )
    .await
    .unwrap();
    let app = TestApp::from_server(server, dir).await;
    let task = create_id(&app, "http://hooks.partner.test/hook", "sneaky").await;
    let msgs = settled(&app, &task, 2).await;
    for m in &msgs {
        assert_eq!(m.state, "failed");
        assert_eq!(m.attempts, 2, "the schedule still runs: DNS answers change");
        let attempts = app.server.store.webhook_attempts(&m.id).await.unwrap();
        for a in &attempts {
            assert_eq!(a.status, None);
            assert!(
                a.error
                    .as_deref()
                    .unwrap()
                    .starts_with("blocked_destination"),
                "{a:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_slow_receiver_does_not_stall_the_others() {
    let slow = Receiver::start(0, Duration::from_secs(3)).await;
    let fast = Receiver::start(0, Duration::ZERO).await;
    let app = TestApp::spawn_with(|c| {
        fast_webhooks(c);
        c.webhooks.workers = 4;
        c.webhooks.per_destination = 2;
        c.webhooks.timeout_ms = 10_000;
        c.webhooks.lease_seconds = 30;
    })
    .await;
    let started = Instant::now();
    for i in 0..8 {
        create_id(&app, &slow.url, &format!("slow {i}")).await;
    }
    let quick = create_id(&app, &fast.url, "fast").await;
    let msgs = settled(&app, &quick, 2).await;
    assert!(msgs.iter().all(|m| m.state == "delivered"));
    let took = started.elapsed();
    // 16 slow deliveries at 2 at a time take ≥ 24 s; the fast receiver is served meanwhile.
    assert!(
        took < Duration::from_secs(8),
        "fast receiver waited {took:?}"
    );
    assert!(
        slow.seen().len() < 16,
        "the slow receiver is still being served"
    );
}
