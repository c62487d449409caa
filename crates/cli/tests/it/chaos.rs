//! Three `reelay serve` processes on one PostgreSQL database, one S3 bucket (moto) and one
//! external simulator. 1,000 tasks go round-robin across them with callbacks to a receiver;
//! one instance is killed with SIGKILL mid-run and restarted, another stopped with SIGTERM and
//! left down. Afterwards every task is terminal, the upstream created each exactly once, the
//! ledger balances, every terminal callback arrived, and every output downloads from each
//! surviving instance.
//!
//! Runs in the PostgreSQL pass of the suite (`REELAY_TEST_BACKEND=postgres`); elsewhere it
//! says it was skipped.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::common::process::{ledger_verify, Reelay};
use crate::common::receiver::Receiver;
use crate::common::{postgres_admin_url, VERSION};
use crate::moto::Moto;

const TASKS: usize = 1000;
const ADMIN: &str = "chaos-admin-token-0123456789";

fn write_config(dir: &Path, sim: &str, moto: &str, bucket: &str) -> PathBuf {
    let path = dir.join("reelay.toml");
    let secret = "ab".repeat(32);
    std::fs::write(
        &path,
        format!(
            r#"log = "warn"
sandbox = false
admin_token = "{ADMIN}"
secret_key = "{secret}"
default_account_credits = 1000000000
outbound_allow_cidrs = "127.0.0.1/32"

[limits]
requests_per_second = 0

[engine]
lease_seconds = 3
poll_min_ms = 100
poll_max_ms = 500
reconcile_delay_ms = 200
backoff_base_ms = 50
backoff_max_ms = 500
throttle_recheck_ms = 100
idle_wakeup_ms = 1000

[webhooks]
idle_wakeup_ms = 1000

[media]
storage = "s3"
derive_frames = false

[media.s3]
bucket = "{bucket}"
region = "us-east-1"
endpoint = "{moto}"
access_key_id = "test"
secret_access_key = "test"
path_style = true
prefix = "chaos"

[[channels]]
name = "sim"
kind = "sandbox"
base_url = "{sim}"
request_timeout_ms = 1000
connect_timeout_ms = 1000
"#
        ),
    )
    .unwrap();
    path
}

/// Submits one task, trying the instances from `first` on: a client whose instance died
/// retries elsewhere with the same idempotency key, and gets the same task.
async fn submit(
    client: &reqwest::Client,
    urls: &[String],
    first: usize,
    key: &str,
    callback: &str,
    n: usize,
) -> String {
    let idem = format!("chaos-{n}");
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 0.. {
        let url = &urls[(first + attempt) % urls.len()];
        let sent = client
            .post(format!("{url}/v1/image_to_video"))
            .bearer_auth(key)
            .header("X-Runway-Version", VERSION)
            .header("X-Reelay-Callback-Url", callback)
            .header("Idempotency-Key", &idem)
            .json(
                &json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg",
                          "promptText": format!("chaos {n}"), "ratio": "1280:720", "duration": 5}),
            )
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(r) = sent {
            if r.status() == 200 {
                let v: Value = r.json().await.unwrap();
                return v["id"].as_str().unwrap().to_string();
            }
            assert!(
                r.status().is_server_error(),
                "submit {n} refused: {}",
                r.status()
            );
        }
        assert!(Instant::now() < deadline, "submit {n} found no instance");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

async fn get(client: &reqwest::Client, url: &str, key: &str, id: &str) -> Option<Value> {
    let r = client
        .get(format!("{url}/v1/tasks/{id}"))
        .bearer_auth(key)
        .header("X-Runway-Version", VERSION)
        .send()
        .await
        .ok()?;
    (r.status() == 200).then_some(r.json().await.ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_lose_nothing_when_one_is_killed_and_one_stopped() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "\n*** SKIPPED chaos: runs in the PostgreSQL pass (REELAY_TEST_BACKEND=postgres) ***\n"
        );
        return;
    }
    let Some(moto) = Moto::start("chaos") else {
        return;
    };
    moto.create_bucket("chaos").await;
    let sim = reelay_sim::spawn(
        reelay_sim::SimConfig {
            pending_seconds: 0.2,
            run_seconds: 1.0,
            ..reelay_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.base_url(), &moto.endpoint, "chaos");
    let shared = dir.path().join("cluster");
    let data = |i: usize| dir.path().join(format!("data{i}"));
    let log = |name: &str| dir.path().join(format!("{name}.log"));

    // The first instance creates the account; the others start on the migrated database.
    let (a, first_key) = tokio::task::block_in_place(|| {
        let a = Reelay::start_on(&config, &data(0), &shared, log("a"));
        let key = a
            .first_key
            .clone()
            .expect("the first instance prints the key");
        (a, key)
    });
    let (mut b, mut c) = tokio::task::block_in_place(|| {
        (
            Reelay::start_on(&config, &data(1), &shared, log("b")),
            Reelay::start_on(&config, &data(2), &shared, log("c")),
        )
    });
    let urls = vec![a.base_url.clone(), b.base_url.clone(), c.base_url.clone()];
    let client = reqwest::Client::new();
    let callback = receiver.url.clone();

    let started = Instant::now();
    let mut submitted = futures::stream::iter(0..TASKS)
        .map(|n| {
            let (client, urls, key, cb) = (&client, &urls, &first_key, &callback);
            async move { submit(client, urls, n % 3, key, cb, n).await }
        })
        .buffered(16);
    let mut ids = Vec::with_capacity(TASKS);
    let mut b_restarted = false;
    while let Some(id) = submitted.next().await {
        ids.push(id);
        match ids.len() {
            // SIGKILL mid-run: B's claimed tasks come back when their leases run out.
            300 => tokio::task::block_in_place(|| b.kill9()),
            // SIGTERM, never restarted.
            500 => tokio::task::block_in_place(|| c.terminate()),
            700 => {
                b = tokio::task::block_in_place(|| {
                    Reelay::start_on(&config, &data(1), &shared, log("b2"))
                });
                b_restarted = true;
            }
            _ => {}
        }
    }
    drop(submitted);
    assert!(b_restarted);
    let submit_secs = started.elapsed().as_secs_f64();
    let survivors = [a.base_url.clone(), b.base_url.clone()];
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), TASKS, "a retried submit made a second task");

    // Every task terminal, read through a surviving instance.
    let deadline = Instant::now() + Duration::from_secs(300);
    let views: Vec<Value> = loop {
        let views: Vec<Option<Value>> = futures::stream::iter(ids.iter())
            .map(|id| get(&client, &survivors[0], &first_key, id))
            .buffered(32)
            .collect()
            .await;
        let done = views
            .iter()
            .filter(|v| {
                v.as_ref().is_some_and(|v| {
                    matches!(
                        v["status"].as_str(),
                        Some("SUCCEEDED" | "FAILED" | "CANCELLED")
                    )
                })
            })
            .count();
        if done == TASKS {
            break views.into_iter().map(Option::unwrap).collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {TASKS} tasks terminal after 300 s",
            done
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for v in &views {
        *states
            .entry(v["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(states.get("SUCCEEDED"), Some(&TASKS), "{states:?}");

    // The upstream created each task exactly once.
    let stats = sim.sim.stats();
    let twice: Vec<_> = stats
        .by_reference
        .iter()
        .filter(|(_, n)| **n != 1)
        .collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
    assert_eq!(stats.tasks_created as usize, TASKS, "{stats:?}");

    // The ledger balances.
    tokio::task::block_in_place(|| ledger_verify(&config, &shared));

    // Every task's terminal callback arrived at least once.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let terminal: HashSet<String> = receiver
            .seen()
            .iter()
            .map(|s| s.json())
            .filter(|b| b["data"]["status"] == "SUCCEEDED")
            .filter_map(|b| b["data"]["id"].as_str().map(String::from))
            .collect();
        let missing = unique.iter().filter(|id| !terminal.contains(**id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} tasks have no terminal callback"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every output downloads, from each surviving instance (one bucket, one link key).
    let outputs: Vec<String> = views
        .iter()
        .map(|v| v["output"][0].as_str().unwrap().to_string())
        .collect();
    let fetched = futures::stream::iter(outputs.iter().flat_map(|link| {
        let path = link.splitn(4, '/').nth(3).unwrap().to_string();
        survivors.iter().map(move |base| format!("{base}/{path}"))
    }))
    .map(|url| {
        let client = &client;
        async move {
            let r = client.get(&url).send().await.unwrap();
            let ok = r.status() == 200 && !r.bytes().await.unwrap().is_empty();
            (url, ok)
        }
    })
    .buffered(16)
    .collect::<Vec<_>>()
    .await;
    let failed: Vec<&String> = fetched
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(u, _)| u)
        .collect();
    assert!(
        failed.is_empty(),
        "{} downloads failed, e.g. {}",
        failed.len(),
        failed[0]
    );
    eprintln!(
        "chaos: {TASKS} tasks submitted in {submit_secs:.1} s, all terminal after {:.1} s; \
         states {states:?}; upstream creates {}; callbacks received {}; {} downloads",
        started.elapsed().as_secs_f64(),
        stats.tasks_created,
        receiver.seen().len(),
        fetched.len()
    );
    drop(a);
}
