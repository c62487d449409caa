//! Structured logs of the real binary: JSON lines at debug, a request id on every request
//! (echoed in `x-request-id`, carried by the request's log lines), task steps naming their
//! task, account and channel — and in the whole run's log no API key, upstream key, webhook
//! secret or admin token.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::process::Reelay;
use crate::common::receiver::Receiver;
use crate::common::{self, VERSION};

const UPSTREAM_KEY: &str = "sk-upstream-logs-4b1e7d";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_run_at_debug_logs_json_with_request_ids_and_no_secret() {
    let sim = reelay_sim::spawn(
        reelay_sim::SimConfig {
            api_key: Some(UPSTREAM_KEY.into()),
            ..common::fast_sim()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reelay.toml");
    std::fs::write(
        &path,
        format!(
            r#"sandbox = false
log = "debug"
log_format = "json"
admin_token = "{admin}"
outbound_allow_cidrs = "127.0.0.1/32"

[engine]
poll_min_ms = 100
poll_max_ms = 300

[limits]
requests_per_second = 0

[[channels]]
name = "up"
kind = "sandbox"
base_url = "{base}"
api_key = "{key}"
"#,
            admin = common::ADMIN_TOKEN,
            base = sim.base_url(),
            key = UPSTREAM_KEY,
        ),
    )
    .unwrap();
    let server = tokio::task::block_in_place(|| {
        Reelay::start(&path, &dir.path().join("data"), dir.path().join("log"))
    });
    let api_key = server.first_key.clone().unwrap();
    let client = reqwest::Client::new();
    let admin = |p: &str| {
        client
            .get(format!("{}/admin/v1{p}", server.base_url))
            .bearer_auth(common::ADMIN_TOKEN)
    };
    let accounts: Value = admin("/accounts")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = accounts["data"][0]["id"].as_str().unwrap().to_string();
    let secret: Value = admin(&format!("/accounts/{account}/webhook-secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = secret["webhook_secret"].as_str().unwrap().to_string();

    let r = client
        .post(format!("{}/v1/image_to_video", server.base_url))
        .bearer_auth(&api_key)
        .header("X-Runway-Version", VERSION)
        .header("x-request-id", "req-from-the-client-1")
        .header("X-Reelay-Callback-Url", &receiver.url)
        .json(
            &json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg",
                      "promptText": "logged", "ratio": "1280:720", "duration": 5}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"],
        "req-from-the-client-1",
        "echoed"
    );
    let status = r.status();
    let created: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{created}");
    let task = created["id"].as_str().unwrap().to_string();
    let r = client
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(
        generated.len(),
        36,
        "a UUID when the client sent none: {generated}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.seen().is_empty() {
        assert!(Instant::now() < deadline, "the callback never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Some wrong credentials too: their refusals are logged, the values are not.
    let _ = client
        .get(format!("{}/v1/tasks/{task}", server.base_url))
        .bearer_auth("key_not-a-real-key-but-secret-looking")
        .header("X-Runway-Version", VERSION)
        .send()
        .await
        .unwrap();
    let _ = client
        .get(format!("{}/admin/v1/accounts", server.base_url))
        .bearer_auth("wrong-admin-token-value-123")
        .send()
        .await
        .unwrap();

    let log = server.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "logged at debug"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.to_string().contains("req-from-the-client-1")),
        "the client's request id is on the request's lines"
    );
    assert!(
        lines.iter().any(|l| l["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "step"
                && s["task"] == task.as_str()
                && s["account"] == account.as_str()
                && s["channel"] == "up"))),
        "a step's lines name its task, account and channel: {:?}",
        lines
            .iter()
            .filter(|l| l.to_string().contains("\"step\""))
            .take(3)
            .collect::<Vec<_>>()
    );
    for (what, secret) in [
        ("the API key", api_key.as_str()),
        ("the upstream key", UPSTREAM_KEY),
        ("the webhook secret", secret.as_str()),
        (
            "the webhook secret's key",
            secret.trim_start_matches("whsec_"),
        ),
        ("the admin token", common::ADMIN_TOKEN),
        ("a wrong API key", "key_not-a-real-key-but-secret-looking"),
        ("a wrong admin token", "wrong-admin-token-value-123"),
    ] {
        assert!(!log.contains(secret), "{what} is in the log");
    }
}
