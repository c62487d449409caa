//! The channel registry on a running server: channels added, changed, switched off and removed
//! through the admin API take effect without a restart (and reach another instance through
//! the database); a channel's cap holds across instances; an upstream key is never answered.

use reelay_sim::SimConfig;
use serde_json::{json, Value};

use crate::common::{self, admin, fast_sim, gen4_turbo, sim_channel, TestApp};

const ENDPOINT: &str = "/v1/image_to_video";
const UPSTREAM_KEY: &str = "sk-upstream-b-5d1f0c9a7e";

async fn run_one(app: &TestApp, prompt: &str) -> Value {
    let id = app.create("image_to_video", &gen4_turbo(prompt)).await;
    app.wait_terminal(&id).await
}

/// Every answer's text, to check that no key was ever in one.
#[derive(Default)]
struct Seen(String);

impl Seen {
    fn note(&mut self, v: &Value) {
        self.0.push_str(&v.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn channels_added_changed_and_disabled_through_the_admin_api_apply_at_once() {
    let spawn = |c: SimConfig| reelay_sim::spawn(c, "127.0.0.1:0".parse().unwrap());
    let a = spawn(fast_sim()).await.unwrap();
    let b = spawn(SimConfig {
        api_key: Some(UPSTREAM_KEY.into()),
        ..fast_sim()
    })
    .await
    .unwrap();
    let mut file_channel = sim_channel("a", &a);
    file_channel.priority = 0;
    let app = TestApp::spawn_with(move |c| {
        c.sandbox = false;
        c.channels = vec![file_channel];
    })
    .await;
    let mut seen = Seen::default();

    // Added: tried first (lower priority number), with its key.
    let (status, v) = admin(
        &app,
        reqwest::Method::POST,
        "/channels",
        Some(json!({
            "name": "b", "kind": "sandbox", "base_url": b.base_url(), "api_key": UPSTREAM_KEY,
            "priority": -1, "request_timeout_ms": 2000, "connect_timeout_ms": 1000,
        })),
    )
    .await;
    seen.note(&v);
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["has_key"].as_bool(), v["source"].as_str()),
        (Some(true), Some("admin"))
    );
    assert_eq!(run_one(&app, "to b").await["status"], "SUCCEEDED");
    assert_eq!(
        (a.sim.stats().tasks_created, b.sim.stats().tasks_created),
        (0, 1)
    );

    // Changed: now after `a`.
    let (status, v) = admin(
        &app,
        reqwest::Method::PATCH,
        "/channels/b",
        Some(json!({"priority": 10})),
    )
    .await;
    seen.note(&v);
    assert_eq!((status.as_u16(), v["priority"].as_i64()), (200, Some(10)));
    assert_eq!(run_one(&app, "to a").await["status"], "SUCCEEDED");
    assert_eq!(a.sim.stats().tasks_created, 1);

    // Back first, then switched off: new tasks avoid it.
    admin(
        &app,
        reqwest::Method::PATCH,
        "/channels/b",
        Some(json!({"priority": -1})),
    )
    .await;
    let (status, v) = admin(
        &app,
        reqwest::Method::POST,
        "/channels/b/disable",
        Some(json!({"reason": "maintenance"})),
    )
    .await;
    seen.note(&v);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["enabled"].as_bool(), v["disabled_reason"].as_str()),
        (Some(false), Some("maintenance"))
    );
    assert_eq!(run_one(&app, "avoids b").await["status"], "SUCCEEDED");
    assert_eq!(
        (a.sim.stats().tasks_created, b.sim.stats().tasks_created),
        (2, 1)
    );
    let (_, v) = admin(&app, reqwest::Method::POST, "/channels/b/enable", None).await;
    seen.note(&v);
    assert_eq!(v["enabled"], true, "{v}");
    assert_eq!(run_one(&app, "to b again").await["status"], "SUCCEEDED");
    assert_eq!(b.sim.stats().tasks_created, 2);

    // A new key replaces the old one (the upstream refuses anything else): tasks fail over.
    admin(
        &app,
        reqwest::Method::PATCH,
        "/channels/b",
        Some(json!({"api_key": "sk-wrong"})),
    )
    .await;
    assert_eq!(run_one(&app, "wrong key").await["status"], "SUCCEEDED");
    assert_eq!(
        (a.sim.stats().tasks_created, b.sim.stats().tasks_created),
        (3, 2),
        "a 401 is not taken: on to the next channel at once"
    );

    // Refusals in the admin shape, and none of them writes.
    let writes = app.writes().await;
    for (method, path, body, want) in [
        (
            reqwest::Method::POST,
            "/channels",
            json!({"name": "b", "kind": "sandbox", "base_url": "http://127.0.0.1:1"}),
            409,
        ),
        (
            reqwest::Method::POST,
            "/channels",
            json!({"name": "sandbox", "kind": "sandbox", "base_url": "http://127.0.0.1:1"}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/channels",
            json!({"name": "c", "kind": "sandbox", "base_url": "ftp://x"}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/channels",
            json!({"name": "c", "kind": "nope", "base_url": "http://x"}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/channels",
            json!({"name": "c", "kind": "runway", "base_url": "http://x", "colour": 1}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/channels",
            json!({"name": "c d", "kind": "runway", "base_url": "http://x"}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/channels",
            json!({"name": "c", "kind": "runway", "base_url": "http://x", "weight": 0}),
            400,
        ),
        (
            reqwest::Method::PATCH,
            "/channels/b",
            json!({"max_concurrent": -1}),
            400,
        ),
        (
            reqwest::Method::PATCH,
            "/channels/b",
            json!({"name": "renamed"}),
            400,
        ),
        (
            reqwest::Method::PATCH,
            "/channels/a",
            json!({"priority": 1}),
            409,
        ),
        (
            reqwest::Method::PATCH,
            "/channels/zz",
            json!({"priority": 1}),
            404,
        ),
        (
            reqwest::Method::POST,
            "/channels/zz/disable",
            json!({}),
            404,
        ),
        (reqwest::Method::DELETE, "/channels/a", Value::Null, 409),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (status, v) = admin(&app, method.clone(), path, body).await;
        assert_eq!(status.as_u16(), want, "{method} {path}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    assert_eq!(
        app.writes().await,
        writes,
        "a refused change writes nothing"
    );

    // Removed: no new tasks; it stays visible as removed.
    let (status, _) = admin(&app, reqwest::Method::DELETE, "/channels/b", None).await;
    assert_eq!(status, 204);
    assert_eq!(run_one(&app, "after removal").await["status"], "SUCCEEDED");
    assert_eq!(b.sim.stats().tasks_created, 2);
    let (_, list) = admin(&app, reqwest::Method::GET, "/channels", None).await;
    seen.note(&list);
    let b_view = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "b")
        .unwrap();
    assert_eq!(b_view["removed"], true);
    // Every channel view carries the recent call figures.
    let a_view = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "a")
        .unwrap();
    assert!(
        a_view["recent"]["submits_per_minute"].as_f64().unwrap() > 0.0,
        "{a_view}"
    );
    assert!(a_view["recent"]["latency_ms_p50"].is_u64(), "{a_view}");
    assert_eq!(a_view["recent"]["success_rate"], 1.0, "{a_view}");

    assert!(
        !seen.0.contains(UPSTREAM_KEY) && !seen.0.contains("sk-wrong"),
        "an upstream key was answered"
    );
}

/// A channel's cap is never exceeded, whichever instance submits (two on PostgreSQL, where
/// they share the database; one on SQLite): tasks over it wait `throttled`, then finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_cap_holds_across_instances_and_waiting_tasks_finish() {
    let sim = reelay_sim::spawn(
        SimConfig {
            pending_seconds: 0.1,
            run_seconds: 0.8,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut ch = sim_channel("capped", &sim);
    ch.max_concurrent = Some(2);
    let configure = |c: &mut reelay::config::Config| {
        c.sandbox = false;
        c.channels = vec![ch.clone()];
        c.secret_key = Some("11".repeat(32));
        // Only the wake of a freed slot dispatches a waiting task: were one missed, the task
        // would wait ten minutes and the test fail at its deadline.
        c.engine.throttle_fallback_ms = 600_000;
    };
    let app = TestApp::spawn_with(configure).await;
    let mut bases = vec![app.server.base_url.clone()];
    let _second = if common::postgres_admin_url().is_some() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = common::test_config(dir.path());
        configure(&mut c);
        c.database_url = Some(common::database_url(app.dir.path()));
        let s = reelay::serve::start(c)
            .await
            .expect("second instance starts");
        bases.push(s.base_url.clone());
        Some((s, dir))
    } else {
        None
    };
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = app
            .client
            .post(format!("{}{ENDPOINT}", bases[i % bases.len()]))
            .bearer_auth(&app.key)
            .header("X-Runway-Version", common::VERSION)
            .json(&gen4_turbo(&format!("capped {i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        assert_eq!(app.wait_terminal(id).await["status"], "SUCCEEDED");
    }
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 10);
    assert!(stats.peak_concurrent <= 2, "{stats:?}");
    assert_eq!(stats.peak_concurrent, 2, "the cap was used: {stats:?}");
    let mut throttled = 0;
    for id in &ids {
        let events = app.server.store.task_events(id).await.unwrap();
        throttled += events
            .iter()
            .any(|e| e.to_state == reelay_core::TaskState::Throttled) as usize;
    }
    assert!(throttled >= 5, "only {throttled} tasks waited");
}

/// `GET /admin/v1/channels/{name}`.
async fn channel(app: &TestApp, name: &str) -> Value {
    let (status, v) = admin(
        app,
        reqwest::Method::GET,
        &format!("/channels/{name}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Two file channels: `a` first, `b` after it.
async fn two_channels(
    a_sim: SimConfig,
    f: impl FnOnce(&mut reelay::config::Config) + Send,
) -> (TestApp, reelay_sim::SimHandle, reelay_sim::SimHandle) {
    let spawn = |c: SimConfig| reelay_sim::spawn(c, "127.0.0.1:0".parse().unwrap());
    let (a, b) = (
        spawn(a_sim).await.unwrap(),
        spawn(fast_sim()).await.unwrap(),
    );
    let mut ca = sim_channel("a", &a);
    ca.priority = 0;
    let mut cb = sim_channel("b", &b);
    cb.priority = 1;
    let app = TestApp::spawn_with(move |c| {
        c.sandbox = false;
        c.channels = vec![ca, cb];
        f(c);
    })
    .await;
    (app, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_out_of_credit_upstream_is_disabled_until_an_operator_enables_it() {
    let (app, a, b) = two_channels(fast_sim(), |_| {}).await;
    a.sim.push_faults(reelay_sim::Fault::OutOfCredit, 10_000);
    // Not taken by `a` (it said so): on to `b` at once, and `a` is switched off.
    assert_eq!(run_one(&app, "first").await["status"], "SUCCEEDED");
    assert_eq!(
        (a.sim.stats().tasks_created, b.sim.stats().tasks_created),
        (0, 1)
    );
    let v = channel(&app, "a").await;
    assert_eq!(v["enabled"], false, "{v}");
    assert!(
        v["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("out of credit"),
        "{v}"
    );
    // It stays off (not asked again) until an operator switches it on.
    assert_eq!(run_one(&app, "second").await["status"], "SUCCEEDED");
    assert_eq!(a.sim.stats().creates_received, 1);
    a.sim.reset();
    let (status, v) = admin(&app, reqwest::Method::POST, "/channels/a/enable", None).await;
    assert_eq!(
        (status.as_u16(), v["enabled"].as_bool()),
        (200, Some(true)),
        "{v}"
    );
    assert!(v["disabled_reason"].is_null(), "{v}");
    assert_eq!(run_one(&app, "third").await["status"], "SUCCEEDED");
    assert_eq!(a.sim.stats().tasks_created, 1, "back in service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retryable_upstream_failure_moves_to_another_channel_and_charges_once() {
    let (app, a, b) = two_channels(fast_sim(), |c| {
        c.engine.retry_failure_codes = vec!["INTERNAL.BAD_OUTPUT".into()];
    })
    .await;
    a.sim.push_faults(
        reelay_sim::Fault::FailTask {
            code: "INTERNAL.BAD_OUTPUT.CODE01".into(),
        },
        1,
    );
    let before = app.server.store.list_accounts().await.unwrap().remove(0);
    let id = app.create("image_to_video", &gen4_turbo("retry me")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    assert_eq!(
        (a.sim.stats().tasks_created, b.sim.stats().tasks_created),
        (1, 1),
        "failed on a, retried on b"
    );
    let events = app.server.store.task_events(&id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.data["retry_after_failure"] == "INTERNAL.BAD_OUTPUT.CODE01"),
        "{events:?}"
    );
    let task = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
    assert_eq!(task.channel.as_deref(), Some("b"));
    let after = app.account(&task.account_id).await;
    assert_eq!(
        before.credits_available - after.credits_available,
        task.credits_captured,
        "charged once"
    );
    assert_eq!(task.credits_captured, task.spec.price);
    // A code not listed fails the task (and refunds it).
    a.sim.push_faults(
        reelay_sim::Fault::FailTask {
            code: "SAFETY.OUTPUT.VIDEO".into(),
        },
        1,
    );
    let t = run_one(&app, "not retried").await;
    assert_eq!(t["failureCode"], "SAFETY.OUTPUT.VIDEO", "{t}");
    assert_eq!(b.sim.stats().tasks_created, 1);
}

/// `max_submits_per_second`: the moves to `submitting` on the channel, bucketed by second,
/// never exceed it, and every task still finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_submit_rate_is_never_exceeded() {
    let sim = reelay_sim::spawn(fast_sim(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut ch = sim_channel("slow", &sim);
    ch.max_submits_per_second = Some(2.0);
    let app = TestApp::spawn_with(move |c| {
        c.sandbox = false;
        c.channels = vec![ch];
    })
    .await;
    let bodies: Vec<Value> = (0..6).map(|i| gen4_turbo(&format!("rate {i}"))).collect();
    let ids =
        futures::future::join_all(bodies.iter().map(|b| app.create("image_to_video", b))).await;
    let mut per_second = std::collections::BTreeMap::<i64, u32>::new();
    for id in &ids {
        assert_eq!(app.wait_terminal(id).await["status"], "SUCCEEDED");
        for e in app.server.store.task_events(id).await.unwrap() {
            if e.to_state == reelay_core::TaskState::Submitting {
                *per_second.entry(e.created_at / 1000).or_default() += 1;
            }
        }
    }
    assert!(per_second.values().all(|n| *n <= 2), "{per_second:?}");
    assert_eq!(per_second.values().sum::<u32>(), 6);
    assert!(per_second.len() >= 3, "{per_second:?}");
}

/// A channel's health probe feeds its breaker without any task: a wrong key opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_health_probes_open_the_breaker_with_no_task_at_risk() {
    let sim = reelay_sim::spawn(
        SimConfig {
            api_key: Some("sk-right".into()),
            ..fast_sim()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut ch = sim_channel("probed", &sim);
    ch.api_key = Some("sk-wrong".into());
    ch.health_probe_seconds = Some(1);
    ch.breaker.consecutive_failures = 2;
    let app = TestApp::spawn_with(move |c| {
        c.sandbox = false;
        c.channels = vec![ch];
    })
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v = channel(&app, "probed").await;
        if v["breaker"] == "open" {
            assert_eq!(v["recent"]["success_rate"], 0.0, "{v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never opened: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sim.sim.stats().creates_received, 0);
}

/// The real binary: the file's channels applied again on SIGHUP (a broken file changes
/// nothing), and an upstream key in the file never in a response or a log line, at debug.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_applies_the_files_channels_and_keys_stay_out_of_logs() {
    use crate::common::process::Reelay;
    let sim = reelay_sim::spawn(
        SimConfig {
            api_key: Some(UPSTREAM_KEY.into()),
            ..fast_sim()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let path = dir.path().join("reelay.toml");
    let write = |extra: &str, priority: i32| {
        let toml = format!(
            r#"sandbox = false
log = "debug"
admin_token = "{admin}"

[limits]
requests_per_second = 0

[[channels]]
name = "main"
kind = "sandbox"
base_url = "{base}"
api_key = "{key}"
priority = {priority}
{extra}"#,
            admin = common::ADMIN_TOKEN,
            base = sim.base_url(),
            key = UPSTREAM_KEY,
        );
        std::fs::write(&path, toml).unwrap();
    };
    write("", 5);
    let server =
        tokio::task::block_in_place(|| Reelay::start(&path, &data_dir, dir.path().join("log")));
    let client = reqwest::Client::new();
    let channels = || async {
        let r = client
            .get(format!("{}/admin/v1/channels", server.base_url))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        assert!(!text.contains(UPSTREAM_KEY), "a key answered: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["data"].as_array().unwrap().clone()
    };
    // A task runs on it with its key (the upstream refuses any other).
    let key = server.first_key.clone().unwrap();
    let created: Value = client
        .post(format!("{}/v1/image_to_video", server.base_url))
        .bearer_auth(&key)
        .header("X-Runway-Version", common::VERSION)
        .json(&gen4_turbo("over sighup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.sim.stats().tasks_created < 1 {
        assert!(std::time::Instant::now() < deadline, "never submitted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(channels().await[0]["priority"], 5);

    // Changed and extended in the file, then SIGHUP.
    write(
        &format!(
            "\n[[channels]]\nname = \"second\"\nkind = \"reverse\"\nbase_url = \"{}\"\n",
            sim.base_url()
        ),
        7,
    );
    server.hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let list = channels().await;
        if list.len() == 2
            && list
                .iter()
                .any(|c| c["name"] == "main" && c["priority"] == 7)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP not applied: {list:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A broken file: nothing changes.
    std::fs::write(
        &path,
        "sandbox = false\n[[channels]]\nname = \"x\"\nkind = \"nope\"\n",
    )
    .unwrap();
    server.hangup();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(channels().await.len(), 2);
    // The channel dropped from the file goes (after a good file again).
    write("", 7);
    server.hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let list = channels().await;
        let second = list.iter().find(|c| c["name"] == "second");
        if second.is_some_and(|c| c["removed"] == true) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not removed: {list:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A key given to the admin API: sealed, used, never logged either.
    let admin_key = "sk-admin-given-93be01";
    let r = client
        .post(format!("{}/admin/v1/channels", server.base_url))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(
            &json!({"name": "added", "kind": "quickstart", "base_url": sim.base_url(),
                      "api_key": admin_key, "priority": -5}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(!r.text().await.unwrap().contains(admin_key));
    let created: Value = client
        .post(format!("{}/v1/image_to_video", server.base_url))
        .bearer_auth(&key)
        .header("X-Runway-Version", common::VERSION)
        .json(&gen4_turbo("via the added channel"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sim.sim.stats().creates_by_format.contains_key("quickstart") {
        assert!(
            std::time::Instant::now() < deadline,
            "never submitted on `added`"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = server.log_text();
    assert!(!log.contains(admin_key), "an admin-given key in the log");
    assert!(log.contains("SIGHUP"), "the reload is logged");
    assert!(log.contains("DEBUG"), "the run logged at debug");
    assert!(!log.contains(UPSTREAM_KEY), "an upstream key in the log");
}
