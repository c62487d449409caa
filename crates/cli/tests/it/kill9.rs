//! The real binary killed with SIGKILL mid-work and started again on the same data dir: every
//! accepted task still reaches a terminal state (no lost task), and none is submitted upstream
//! twice (no second paid job), whatever it was doing when the process died.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::{ledger_verify, Reelay};
use common::VERSION;
use reelay_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};
const TASKS: usize = 50;

/// A fast engine for crash tests; the channels follow.
const ENGINE_TOML: &str = r#"sandbox = false
log = "warn"

[engine]
lease_seconds = 3
poll_min_ms = 100
poll_max_ms = 500
reconcile_delay_ms = 200
backoff_base_ms = 50
backoff_max_ms = 500
throttle_recheck_ms = 100
idle_wakeup_ms = 500

[limits]
requests_per_second = 0
"#;

fn write_config(dir: &Path, sim: &SimHandle) -> PathBuf {
    let path = dir.join("reelay.toml");
    let toml = format!(
        r#"{ENGINE_TOML}
[[channels]]
name = "sim"
kind = "sandbox"
base_url = "{}"
request_timeout_ms = 1000
connect_timeout_ms = 1000
"#,
        sim.base_url()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

struct Api {
    client: reqwest::Client,
    base_url: String,
    key: String,
}

impl Api {
    async fn create(&self, i: usize) -> String {
        let body = json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg",
                          "promptText": format!("cat number {i}"), "ratio": "1280:720", "duration": 5});
        let resp = self
            .client
            .post(format!("{}/v1/image_to_video", self.base_url))
            .bearer_auth(&self.key)
            .header("X-Runway-Version", VERSION)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "create answered {status}: {v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn status(&self, id: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}/v1/tasks/{id}", self.base_url))
            .bearer_auth(&self.key)
            .header("X-Runway-Version", VERSION)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "task {id} is not visible");
        resp.json().await.unwrap()
    }

    /// Waits until every task is terminal; returns their final views.
    async fn wait_all_terminal(&self, ids: &[String]) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let views = futures::future::join_all(ids.iter().map(|id| self.status(id))).await;
            let live: Vec<&Value> = views
                .iter()
                .filter(|t| {
                    !matches!(
                        t["status"].as_str(),
                        Some("SUCCEEDED" | "FAILED" | "CANCELLED")
                    )
                })
                .collect();
            if live.is_empty() {
                return views;
            }
            assert!(
                Instant::now() < deadline,
                "{} tasks never finished, e.g. {}",
                live.len(),
                live[0]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What the dead process left in the database, to show which paths the restart exercised.
async fn state_histogram(
    data_dir: &Path,
    ids: &[String],
) -> std::collections::BTreeMap<String, usize> {
    let store = common::open_store(data_dir).await;
    let mut out = std::collections::BTreeMap::new();
    for id in ids {
        let t = store
            .get_task_by_id(id)
            .await
            .unwrap()
            .expect("an accepted task is in the database");
        *out.entry(t.state.to_string()).or_default() += 1;
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// Once the simulator has created about half of the jobs: tasks submitting, running, queued.
    MidWork,
    /// Right after the 50 creates returned, as soon as the first submit reached the
    /// simulator: a burst of submits in flight, most tasks queued or `submitting`.
    AfterBurst,
}

async fn kill9_and_restart(kill_at: KillAt) {
    let sim = reelay_sim::spawn(
        SimConfig {
            pending_seconds: 0.2,
            run_seconds: 1.5,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = write_config(dir.path(), &sim);

    let mut first = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("first.log"))
    });
    let key = first
        .first_key
        .clone()
        .expect("the first start prints a key");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let api = Api {
        client: client.clone(),
        base_url: first.base_url.clone(),
        key: key.clone(),
    };

    let ids: Vec<String> = futures::future::join_all((0..TASKS).map(|i| api.create(i))).await;
    let wanted = match kill_at {
        KillAt::MidWork => TASKS / 2,
        KillAt::AfterBurst => 1,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while (sim.sim.stats().creates_received as usize) < wanted {
        assert!(
            Instant::now() < deadline,
            "the simulator never got {wanted} creates: {:?}",
            sim.sim.stats()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.kill9();
    let at_kill = sim.sim.stats();
    eprintln!(
        "{kill_at:?}: killed with {} jobs created upstream ({} create requests); states in the store: {:?}",
        at_kill.tasks_created,
        at_kill.creates_received,
        state_histogram(&data_dir, &ids).await
    );

    // A crash leaves the ledger consistent at that very moment, not only after recovery.
    ledger_verify(&config, &data_dir);

    let second = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("second.log"))
    });
    assert!(
        second.first_key.is_none(),
        "a restart must not create and print another key"
    );
    let api = Api {
        client,
        base_url: second.base_url.clone(),
        key,
    };

    let views = api.wait_all_terminal(&ids).await;
    let stats = sim.sim.stats();
    for (id, t) in ids.iter().zip(&views) {
        assert_eq!(t["status"], "SUCCEEDED", "{kill_at:?}: task {id} ended {t}");
        assert_eq!(
            stats.by_reference.get(id).copied().unwrap_or(0),
            1,
            "{kill_at:?}: task {id} was not submitted upstream exactly once"
        );
    }
    assert_eq!(
        stats.tasks_created as usize, TASKS,
        "{kill_at:?}: {stats:?}"
    );
    drop(second);
    ledger_verify(&config, &data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_mid_work_loses_nothing_and_submits_nothing_twice() {
    kill9_and_restart(KillAt::MidWork).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_right_after_a_burst_of_submits_loses_nothing_and_submits_nothing_twice() {
    kill9_and_restart(KillAt::AfterBurst).await;
}

fn two_channel_config(dir: &Path, a: &SimHandle, b: &SimHandle) -> PathBuf {
    let path = dir.join("two.toml");
    let toml = format!(
        r#"{ENGINE_TOML}
[[channels]]
name = "a"
kind = "sandbox"
base_url = "{}"
priority = 0
max_concurrent = 10
request_timeout_ms = 1000
connect_timeout_ms = 1000

[[channels]]
name = "b"
kind = "sandbox"
base_url = "{}"
priority = 1
request_timeout_ms = 1000
connect_timeout_ms = 1000
"#,
        a.base_url(),
        b.base_url()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// Killed while tasks are submitting or running on channel `a`, restarted with `a` refusing
/// every new submit: the tasks `a` took finish on `a` (found again by reconciling, polled
/// again), the others go to `b`, and no task is ever created on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_a_task_taken_by_channel_a_is_not_resubmitted_to_b() {
    let spawn = || {
        reelay_sim::spawn(
            SimConfig {
                pending_seconds: 0.2,
                run_seconds: 1.5,
                ..SimConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
    };
    let (a, b) = (spawn().await.unwrap(), spawn().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = two_channel_config(dir.path(), &a, &b);
    let mut first = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("first.log"))
    });
    let key = first.first_key.clone().expect("a first key");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let api = Api {
        client: client.clone(),
        base_url: first.base_url.clone(),
        key: key.clone(),
    };
    let ids: Vec<String> = futures::future::join_all((0..30).map(|i| api.create(i))).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.sim.stats().creates_received < 10 {
        assert!(Instant::now() < deadline, "a never got 10 creates");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.kill9();
    let on_a_at_kill = a.sim.stats().tasks_created;
    // From now on `a` takes nothing new: a gateway that resubmitted what it had sent to `a`
    // would send it to `b`.
    a.sim
        .push_faults(reelay_sim::Fault::ServerError { status: 503 }, 1_000_000);
    let second = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("second.log"))
    });
    let api = Api {
        client,
        base_url: second.base_url.clone(),
        key,
    };
    let views = api.wait_all_terminal(&ids).await;
    let (sa, sb) = (a.sim.stats(), b.sim.stats());
    for (id, t) in ids.iter().zip(&views) {
        assert_eq!(t["status"], "SUCCEEDED", "task {id} ended {t}");
        let on_a = sa.by_reference.get(id).copied().unwrap_or(0);
        let on_b = sb.by_reference.get(id).copied().unwrap_or(0);
        assert_eq!(
            (on_a + on_b, on_a.max(on_b)),
            (1, 1),
            "task {id}: created {on_a} times on a and {on_b} on b"
        );
    }
    assert_eq!(
        sa.tasks_created, on_a_at_kill,
        "a took nothing after the kill"
    );
    assert!(on_a_at_kill > 0 && sb.tasks_created > 0, "{sa:?} {sb:?}");
    drop(second);
    ledger_verify(&config, &data_dir);
}

/// SIGTERM in the middle of a burst: every create answered 200 is a task that finishes after
/// the restart, submitted upstream once, and the stopped process left no claim behind for a
/// lease to run out on (its tasks were due again at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_burst_loses_no_task_and_leaves_no_lease() {
    let sim = reelay_sim::spawn(
        SimConfig {
            pending_seconds: 0.2,
            run_seconds: 1.0,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = write_config(dir.path(), &sim);
    let mut first = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("first.log"))
    });
    let key = first.first_key.clone().expect("a first key");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = first.base_url.clone();
    // Creates keep coming while the process stops: those answered 200 are accepted tasks.
    let creates: Vec<_> = (0..60)
        .map(|i| {
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 10)).await;
                let body = json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg",
                                  "promptText": format!("burst {i}"), "ratio": "1280:720", "duration": 5});
                let r = client
                    .post(format!("{base}/v1/image_to_video"))
                    .bearer_auth(&key)
                    .header("X-Runway-Version", VERSION)
                    .json(&body)
                    .send()
                    .await
                    .ok()?;
                if r.status() != 200 {
                    return None;
                }
                let v: Value = r.json().await.ok()?;
                v["id"].as_str().map(str::to_string)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.sim.stats().creates_received < 10 {
        assert!(
            Instant::now() < deadline,
            "no submits reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::block_in_place(|| first.terminate());
    let accepted: Vec<String> = futures::future::join_all(creates)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert!(accepted.len() >= 10, "only {} accepted", accepted.len());
    let store = common::open_store(&data_dir).await;
    let now = reelay_store::now_ms();
    for id in &accepted {
        let t = store
            .get_task_by_id(id)
            .await
            .unwrap()
            .expect("accepted = stored");
        assert!(
            t.lease_owner.is_none(),
            "task {id} ({}) still claimed by the stopped process",
            t.state
        );
        if let Some(due) = t.next_attempt_at {
            // Due now, or (submitting) once the longest request could have ended.
            assert!(
                due <= now + 1_500,
                "task {id} ({}) due only in {} ms",
                t.state,
                due - now
            );
        }
    }
    drop(store);
    let second = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("second.log"))
    });
    let api = Api {
        client,
        base_url: second.base_url.clone(),
        key,
    };
    let views = api.wait_all_terminal(&accepted).await;
    let stats = sim.sim.stats();
    for (id, t) in accepted.iter().zip(&views) {
        assert_eq!(t["status"], "SUCCEEDED", "task {id} ended {t}");
        assert_eq!(
            stats.by_reference.get(id).copied().unwrap_or(0),
            1,
            "task {id}"
        );
    }
    drop(second);
    ledger_verify(&config, &data_dir);
}
