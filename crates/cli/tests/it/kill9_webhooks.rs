//! The real binary killed with SIGKILL while callbacks are committed but undelivered, and while
//! deliveries are in flight: after a restart every message is delivered at least once, with the
//! id it had before the crash.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::{ledger_verify, Reelay};
use common::receiver::Receiver;
use common::{gen4_turbo, VERSION};
use serde_json::Value;

const TASKS: usize = 6;

/// The upstream runs outside the process (an in-process sandbox would die with it).
fn write_config(dir: &Path, sim: &str) -> PathBuf {
    let path = dir.join("reelay.toml");
    std::fs::write(
        &path,
        format!(
            r#"log = "warn"
sandbox = false
outbound_allow_cidrs = "127.0.0.1/32"

[[channels]]
name = "sim"
kind = "sandbox"
base_url = "{sim}"
request_timeout_ms = 1000
connect_timeout_ms = 500

[limits]
requests_per_second = 0

[engine]
lease_seconds = 3
poll_min_ms = 100
poll_max_ms = 300
idle_wakeup_ms = 300

[webhooks]
schedule_seconds = [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
jitter = 0.0
timeout_ms = 2000
connect_timeout_ms = 500
lease_seconds = 5
idle_wakeup_ms = 300
"#
        ),
    )
    .unwrap();
    path
}

async fn submit(client: &reqwest::Client, r: &Reelay, key: &str, hook: &str) -> Vec<String> {
    let mut ids = vec![];
    for i in 0..TASKS {
        let resp = client
            .post(format!("{}/v1/image_to_video", r.base_url))
            .bearer_auth(key)
            .header("X-Runway-Version", VERSION)
            .header("X-Reelay-Callback-Url", hook)
            .json(&gen4_turbo(&format!("hook {i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Messages of every task, read from the database file beside the running process.
async fn messages(data_dir: &Path, ids: &[String]) -> Vec<reelay_store::WebhookMessage> {
    let store = common::open_store(data_dir).await;
    let mut all = vec![];
    for id in ids {
        all.extend(store.webhook_messages(id).await.unwrap());
    }
    all
}

enum Crash {
    /// Committed, not delivered: the receiver fails every attempt when the process dies.
    BeforeDelivery,
    /// The receiver holds the requests open when the process dies.
    DuringDelivery,
}

async fn crash_and_recover(crash: Crash) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let sim = reelay_sim::spawn(
        reelay_sim::SimConfig {
            pending_seconds: 0.1,
            run_seconds: 0.3,
            ..reelay_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let config = write_config(dir.path(), &sim.base_url());
    let rx = Receiver::start(0, Duration::ZERO).await;
    match crash {
        Crash::BeforeDelivery => rx.set_failures(usize::MAX),
        Crash::DuringDelivery => rx.set_delay(Duration::from_secs(60)),
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let mut first = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("first.log"))
    });
    let key = first.first_key.clone().unwrap();
    let ids = submit(&client, &first, &key, &rx.url).await;
    // Wait until the receiver has been reached for every task (a request per task at least).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks_seen: HashSet<String> = rx
            .seen()
            .iter()
            .map(|s| s.json()["data"]["id"].as_str().unwrap().to_string())
            .collect();
        if tasks_seen.len() == TASKS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "receiver reached for {tasks_seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    let before = messages(&data_dir, &ids).await;
    assert!(!before.is_empty());
    assert!(
        before.iter().any(|m| m.state == "pending"),
        "the crash left undelivered messages: {before:#?}"
    );
    ledger_verify(&config, &data_dir);

    rx.set_failures(0);
    rx.set_delay(Duration::ZERO);
    let second = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("second.log"))
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let msgs = messages(&data_dir, &ids).await;
        let done = msgs.len() >= 2 * TASKS && msgs.iter().all(|m| m.state == "delivered");
        if done {
            break msgs;
        }
        assert!(Instant::now() < deadline, "not all delivered: {msgs:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Every message written before the crash kept its id and was delivered.
    let after_ids: HashSet<&str> = after.iter().map(|m| m.id.as_str()).collect();
    for m in &before {
        assert!(after_ids.contains(m.id.as_str()), "{} lost", m.id);
    }
    // Every message reached the receiver, under its one id (delivered = it answered 2xx).
    let delivered_ok: HashSet<String> = rx.seen().iter().map(|s| s.id.clone()).collect();
    for m in &after {
        assert!(
            delivered_ok.contains(&m.id),
            "{} never reached the receiver",
            m.id
        );
    }
    // Each task: running then succeeded, one message per transition.
    for id in &ids {
        let types: Vec<&str> = after
            .iter()
            .filter(|m| &m.task_id == id)
            .map(|m| m.event_type.as_str())
            .collect();
        assert_eq!(types, ["task.running", "task.succeeded"], "task {id}");
    }
    drop(second);
    ledger_verify(&config, &data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_between_commit_and_delivery_delivers_every_message_after_restart() {
    crash_and_recover(Crash::BeforeDelivery).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_delivery_delivers_every_message_after_restart_with_the_same_id() {
    crash_and_recover(Crash::DuringDelivery).await;
}
