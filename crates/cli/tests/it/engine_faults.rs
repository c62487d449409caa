//! The engine against a misbehaving upstream, through the real server and a real simulator.
//!
//! Every test checks the task's end state and — the part that protects money — how many jobs
//! the simulator created for the task (`by_reference[task id]`): a retry must never become a
//! second paid job.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{fast_sim, gen4_turbo, TestApp};
use reelay_engine::UnknownOutcomePolicy;
use reelay_sim::{Fault, SimConfig};
use serde_json::Value;

const ENDPOINT: &str = "image_to_video";

/// Jobs the simulator created with this task id as reference.
fn created(app: &TestApp, id: &str) -> u64 {
    app.sim().stats().by_reference.get(id).copied().unwrap_or(0)
}

/// Polls `check` every 50 ms until it holds, failing after a generous deadline.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_one(app: &TestApp, prompt: &str) -> (String, Value) {
    let id = app.create(ENDPOINT, &gen4_turbo(prompt)).await;
    let t = app.wait_terminal(&id).await;
    (id, t)
}

/// Creates `n` tasks with all requests in flight at once.
async fn create_concurrently(app: &TestApp, n: usize) -> Vec<String> {
    let bodies: Vec<Value> = (0..n).map(|i| gen4_turbo(&format!("cat {i}"))).collect();
    futures::future::join_all(bodies.iter().map(|b| app.create(ENDPOINT, b))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limited_submit_is_retried_and_created_once() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    let (id, t) = run_one(&app, "a cat [sim:429]").await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    assert_eq!(created(&app, &id), 1);
    // The 429 was seen, then the retry got through.
    assert_eq!(app.sim().stats().creates_received, 2);
    // It went back to the queue with a backoff that honours the upstream's `Retry-After: 1`.
    let events = app.server.store.task_events(&id).await.unwrap();
    let requeue = events
        .iter()
        .find(|e| e.to_state == reelay_core::TaskState::Queued && e.from_state.is_some())
        .expect("a requeue event");
    assert!(
        requeue.data["retry_in_ms"].as_u64().unwrap() >= 1000,
        "{:?}",
        requeue.data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moderation_at_submit_fails_without_retry() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    let (id, t) = run_one(&app, "a cat [sim:moderation]").await;
    assert_eq!(t["status"], "FAILED", "{t}");
    let code = t["failureCode"].as_str().unwrap_or_default();
    assert!(code.starts_with("SAFETY"), "{t}");
    assert_eq!(created(&app, &id), 0);
    assert_eq!(
        app.sim().stats().creates_received,
        1,
        "a rejection is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_failure_code_passes_through() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    let (id, t) = run_one(&app, "a cat [sim:fail=SAFETY.OUTPUT.VIDEO]").await;
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["failureCode"], "SAFETY.OUTPUT.VIDEO", "{t}");
    assert_eq!(created(&app, &id), 1);
}

/// An unknown outcome (the upstream took the job, then the answer was lost) is reconciled by
/// lookup: the task is tracked, never submitted a second time.
async fn unknown_outcome_is_reconciled(prompt: &str, request_timeout_ms: Option<u64>) {
    let app = TestApp::with_sim(fast_sim(), |c| {
        if let Some(ms) = request_timeout_ms {
            c.channels[0].request_timeout_ms = ms;
        }
    })
    .await;
    let (id, t) = run_one(&app, prompt).await;
    assert_eq!(t["status"], "SUCCEEDED", "{prompt}: {t}");
    assert_eq!(
        created(&app, &id),
        1,
        "{prompt}: a second paid job was started"
    );
    assert_eq!(
        app.sim().stats().creates_received,
        1,
        "{prompt}: resubmitted although the upstream had it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_after_accept_is_reconciled() {
    unknown_outcome_is_reconciled("a cat [sim:reset_after_accept]", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeout_after_accept_is_reconciled() {
    // The client gives up after 300 ms; the simulator answers after 2 s.
    unknown_outcome_is_reconciled("a cat [sim:timeout_after_accept=2]", Some(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_error_after_accept_is_reconciled() {
    unknown_outcome_is_reconciled("a cat [sim:500_after_accept]", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_before_accept_is_looked_up_then_resubmitted() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    app.sim().push_fault(Fault::ResetBeforeAccept);
    let (id, t) = run_one(&app, "a cat").await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    assert_eq!(created(&app, &id), 1);
    assert_eq!(
        app.sim().stats().creates_received,
        2,
        "the lookup found nothing, so it was resubmitted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fail_policy_fails_an_unknown_outcome_without_resubmitting() {
    let app = TestApp::with_sim(fast_sim(), |c| {
        c.engine.unknown_outcome = UnknownOutcomePolicy::Fail
    })
    .await;
    let (id, t) = run_one(&app, "a cat [sim:reset_after_accept]").await;
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["failureCode"], "INTERNAL.UNKNOWN_OUTCOME", "{t}");
    assert_eq!(created(&app, &id), 1);
    // Give a wrongly scheduled resubmit the time to happen, then check it did not.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sim().stats().creates_received, 1);
    assert_eq!(app.task(&id).await["status"], "FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_channel_fails_over_to_the_next() {
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = TestApp::with_sim(fast_sim(), |c| {
        c.channels[0].priority = 10;
        let mut dead = c.channels[0].clone();
        dead.name = "dead".into();
        dead.base_url = format!("http://127.0.0.1:{dead_port}");
        dead.priority = 0;
        c.channels.insert(0, dead);
    })
    .await;
    let (id, t) = run_one(&app, "a cat").await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    assert_eq!(created(&app, &id), 1);
    let task = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
    assert_eq!(task.channel.as_deref(), Some("sim"));
}

/// How many of these tasks' upstream jobs the simulator reports PENDING, THROTTLED or RUNNING.
async fn sim_live_jobs(app: &TestApp, ids: &[String]) -> usize {
    let sim_url = app.sim.as_ref().unwrap().base_url();
    let mut live = 0;
    for id in ids {
        let task = app.server.store.get_task_by_id(id).await.unwrap().unwrap();
        let Some(upstream_id) = task.upstream_id else {
            continue;
        };
        let t: Value = app
            .client
            .get(format!("{sim_url}/v1/tasks/{upstream_id}"))
            .header("X-Runway-Version", common::VERSION)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if matches!(
            t["status"].as_str(),
            Some("PENDING" | "THROTTLED" | "RUNNING")
        ) {
            live += 1;
        }
    }
    live
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn channel_concurrency_cap_holds_tasks_as_throttled() {
    let app = TestApp::with_sim(
        SimConfig {
            pending_seconds: 0.1,
            run_seconds: 0.8,
            ..SimConfig::default()
        },
        |c| {
            c.channels[0].max_concurrent = Some(1);
        },
    )
    .await;
    let ids = create_concurrently(&app, 3).await;
    let mut seen_throttled = false;
    let mut done = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < ids.len() {
        assert!(Instant::now() < deadline, "tasks did not finish");
        let states: Vec<Value> = futures::future::join_all(ids.iter().map(|id| app.task(id))).await;
        let running = states.iter().filter(|t| t["status"] == "RUNNING").count();
        assert!(
            running <= 1,
            "more than one task running on a channel capped at 1: {states:?}"
        );
        // Upstream, too: at most one of the simulator's jobs is live at a time.
        let live_upstream = sim_live_jobs(&app, &ids).await;
        assert!(
            live_upstream <= 1,
            "the simulator ran {live_upstream} jobs at once: {states:?}"
        );
        seen_throttled |= states.iter().any(|t| t["status"] == "THROTTLED");
        for (id, t) in ids.iter().zip(&states) {
            match t["status"].as_str() {
                Some("SUCCEEDED") => {
                    done.insert(id.clone());
                }
                Some("FAILED" | "CANCELLED") => panic!("task {id} ended {t}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen_throttled,
        "waiting tasks were never reported THROTTLED"
    );
    for id in &ids {
        assert_eq!(created(&app, id), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_running_task_cancels_it_upstream() {
    let app = TestApp::with_sim(
        SimConfig {
            pending_seconds: 0.1,
            run_seconds: 30.0,
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    let id = app.create(ENDPOINT, &gen4_turbo("a long cat")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = app.task(&id).await;
        if t["status"] == "RUNNING" {
            break;
        }
        assert!(Instant::now() < deadline, "never RUNNING: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.delete(&format!("/v1/tasks/{id}")).await.status(), 204);
    assert_eq!(app.get(&format!("/v1/tasks/{id}")).await.status(), 404);
    let sim = app.sim().clone();
    eventually("the simulator saw the cancel", || sim.stats().cancels == 1).await;
    assert_eq!(created(&app, &id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_the_upstream_forgets_fails_as_lost() {
    let app = TestApp::with_sim(
        SimConfig {
            pending_seconds: 0.1,
            run_seconds: 30.0,
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    let id = app.create(ENDPOINT, &gen4_turbo("a forgotten cat")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let upstream_id = loop {
        let task = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
        if let Some(u) = task.upstream_id {
            break u;
        }
        assert!(Instant::now() < deadline, "never submitted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Delete it behind reelay's back: from now on the upstream answers 404 for it.
    let sim_url = app.sim.as_ref().unwrap().base_url();
    let resp = app
        .client
        .delete(format!("{sim_url}/v1/tasks/{upstream_id}"))
        .header("X-Runway-Version", common::VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["failureCode"], "INTERNAL.LOST", "{t}");
    assert_eq!(created(&app, &id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_tasks_each_run_once() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    let ids = create_concurrently(&app, 20).await;
    let ends = futures::future::join_all(ids.iter().map(|id| app.wait_terminal(id))).await;
    for (id, t) in ids.iter().zip(&ends) {
        assert_eq!(t["status"], "SUCCEEDED", "{id}: {t}");
        assert_eq!(created(&app, id), 1, "{id}");
    }
    assert_eq!(app.sim().stats().tasks_created, 20);
}

/// Three upstreams — one answering 503, one 429 with `Retry-After`, one healthy: every task
/// succeeds through the healthy one; the sick one's breaker opens (it stops being asked), and
/// once it recovers a half-open probe closes the breaker and it takes tasks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_breaker_keeps_a_sick_channel_out_until_it_recovers() {
    let spawn = || reelay_sim::spawn(fast_sim(), "127.0.0.1:0".parse().unwrap());
    let (sick, limited, healthy) = (
        spawn().await.unwrap(),
        spawn().await.unwrap(),
        spawn().await.unwrap(),
    );
    sick.sim
        .push_faults(Fault::ServerError { status: 503 }, 10_000);
    limited.sim.push_faults(
        Fault::RateLimit {
            retry_after_secs: 30,
        },
        10_000,
    );
    let mut channels = vec![
        common::sim_channel("sick", &sick),
        common::sim_channel("limited", &limited),
        common::sim_channel("healthy", &healthy),
    ];
    // Tried in this order: the sick one first, until its breaker keeps it out.
    for (i, ch) in channels.iter_mut().enumerate() {
        ch.priority = i as i32;
        ch.breaker.consecutive_failures = 3;
        ch.breaker.open_seconds = 4;
        ch.breaker.max_open_seconds = 4;
    }
    let app = TestApp::spawn_with(move |c| {
        c.sandbox = false;
        c.channels = channels;
    })
    .await;
    // Sequentially, so every task meets the channels' state as the earlier ones left it.
    let started = Instant::now();
    for i in 0..15 {
        let (_, t) = run_one(&app, &format!("task {i}")).await;
        assert_eq!(t["status"], "SUCCEEDED", "{t}");
    }
    assert_eq!(healthy.sim.stats().tasks_created, 15);
    // Open after three failures: from then on it saw one probe per opening (4 s each), not
    // a share of the fifteen tasks.
    let asked = sick.sim.stats().creates_received;
    let probes = started.elapsed().as_secs() / 4 + 1;
    assert!(
        asked >= 3 && asked <= 3 + probes,
        "the sick channel was asked {asked} times in {:?}",
        started.elapsed()
    );
    // Paused by its Retry-After, the limited one was asked once.
    assert_eq!(limited.sim.stats().creates_received, 1);
    assert_eq!(
        limited.sim.stats().tasks_created + sick.sim.stats().tasks_created,
        0
    );

    // The sick one recovers; after its opening a probe gets through and closes the breaker.
    sick.sim.reset();
    tokio::time::sleep(Duration::from_millis(4_100)).await;
    let mut i = 0;
    while sick.sim.stats().tasks_created < 2 {
        i += 1;
        assert!(i < 60, "the recovered channel never took tasks again");
        let (_, t) = run_one(&app, &format!("after {i}")).await;
        assert_eq!(t["status"], "SUCCEEDED", "{t}");
    }
    assert_eq!(channels_view(&app).await["sick"]["breaker"], "closed");
}

/// `GET /admin/v1/channels`, by channel name.
async fn channels_view(app: &TestApp) -> Value {
    let r = app
        .authed(
            reqwest::Method::GET,
            "/admin/v1/channels",
            common::ADMIN_TOKEN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let mut by_name = serde_json::Map::new();
    for ch in v["data"].as_array().unwrap() {
        assert!(ch.get("api_key").is_none(), "{ch}");
        by_name.insert(ch["name"].as_str().unwrap().to_string(), ch.clone());
    }
    Value::Object(by_name)
}
