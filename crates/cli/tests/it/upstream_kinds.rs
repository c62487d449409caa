//! The three upstream formats behind the same engine: Runway's (the sandbox kind), a reseller
//! speaking the reverse format and one speaking the quick-start format, each against the
//! simulator serving that format. The same lifecycle and faults for each; for the two that
//! take a callback URL, the upstream's callbacks drive the task (polling is then ten minutes
//! apart, so only a callback can finish it in time) and a forged callback changes nothing.

use reelay_sim::SimHandle;
use reelay_upstream::ChannelKind;
use serde_json::{json, Value};

use crate::common::{self, fast_sim, gen4_turbo, sim_channel, TestApp};

const KINDS: [ChannelKind; 3] = [
    ChannelKind::Sandbox,
    ChannelKind::Reverse,
    ChannelKind::Quickstart,
];

fn format_of(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Reverse => "reverse",
        ChannelKind::Quickstart => "quickstart",
        _ => "runway",
    }
}

async fn app_on(kind: ChannelKind) -> (TestApp, SimHandle) {
    let sim = reelay_sim::spawn(fast_sim(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut ch = sim_channel("up", &sim);
    ch.kind = kind;
    let app = TestApp::spawn_with(move |c| {
        c.sandbox = false;
        c.channels = vec![ch];
        if kind != ChannelKind::Sandbox {
            // Polls of a channel that calls back come 6,000 times less often: 10 minutes.
            c.engine.callback_poll_factor = 6_000.0;
            c.engine.poll_max_ms = 100;
        }
    })
    .await;
    (app, sim)
}

async fn run(app: &TestApp, prompt: &str) -> (String, Value) {
    let id = app.create("image_to_video", &gen4_turbo(prompt)).await;
    let t = app.wait_terminal(&id).await;
    (id, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_upstream_format_runs_a_task_to_an_archived_success() {
    for kind in KINDS {
        let (app, sim) = app_on(kind).await;
        let (id, t) = run(&app, "a lighthouse at dusk").await;
        assert_eq!(t["status"], "SUCCEEDED", "{kind:?}: {t}");
        // The output is ours (archived), not the upstream's URL.
        let out = t["output"][0].as_str().unwrap();
        assert!(out.starts_with(&app.server.base_url), "{kind:?}: {out}");
        let video = app.client.get(out).send().await.unwrap();
        assert_eq!(video.status(), 200, "{kind:?}");
        let stats = sim.sim.stats();
        assert_eq!(stats.tasks_created, 1, "{kind:?}: {stats:?}");
        assert_eq!(
            stats.creates_by_format.get(format_of(kind)).copied(),
            Some(1),
            "{kind:?}: {stats:?}"
        );
        if kind != ChannelKind::Sandbox {
            assert!(stats.callbacks_sent >= 1, "{kind:?}: {stats:?}");
        }
        let acct = app
            .server
            .store
            .get_task_by_id(&id)
            .await
            .unwrap()
            .unwrap()
            .account_id;
        let credits = app.account(&acct).await;
        assert_eq!(credits.credits_held, 0, "{kind:?}: settled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_upstream_format_meets_the_same_faults_the_same_way() {
    for kind in KINDS {
        let (app, sim) = app_on(kind).await;
        // A 429 (Retry-After: 1): not taken, retried, created once.
        let (_, t) = run(&app, "a cat [sim:429]").await;
        assert_eq!(t["status"], "SUCCEEDED", "{kind:?}: {t}");
        assert_eq!(sim.sim.stats().tasks_created, 1, "{kind:?}");
        // A 503 before accepting: retried.
        let (_, t) = run(&app, "a cat [sim:503]").await;
        assert_eq!(t["status"], "SUCCEEDED", "{kind:?}: {t}");
        assert_eq!(sim.sim.stats().tasks_created, 2, "{kind:?}");
        // Moderation at submit: failed for good, never created, refunded.
        let (_, t) = run(&app, "a cat [sim:moderation]").await;
        assert_eq!(t["status"], "FAILED", "{kind:?}: {t}");
        assert!(
            t["failureCode"]
                .as_str()
                .unwrap_or("")
                .starts_with("SAFETY"),
            "{kind:?}: {t}"
        );
        assert_eq!(sim.sim.stats().tasks_created, 2, "{kind:?}");
        // A failure mid-run: failed with a code, refunded.
        let (_, t) = run(&app, "a cat [sim:fail=SAFETY.OUTPUT.VIDEO]").await;
        assert_eq!(t["status"], "FAILED", "{kind:?}: {t}");
        assert!(
            t["failureCode"]
                .as_str()
                .unwrap_or("")
                .starts_with("SAFETY"),
            "{kind:?}: {t}"
        );
        // Accepted, then the connection dropped: the upstream has the task. Never a second
        // job: reconciled where the upstream can be asked (the sandbox), failed and refunded
        // where it cannot.
        let before = sim.sim.stats().tasks_created;
        let (_, t) = run(&app, "a cat [sim:reset_after_accept]").await;
        assert_eq!(
            sim.sim.stats().tasks_created,
            before + 1,
            "{kind:?}: submitted once: {t}"
        );
        let want = if kind == ChannelKind::Sandbox {
            "SUCCEEDED"
        } else {
            "FAILED"
        };
        assert_eq!(t["status"], want, "{kind:?}: {t}");
        let (_, accounts) = common::admin(&app, reqwest::Method::GET, "/accounts", None).await;
        for a in accounts["data"].as_array().unwrap() {
            assert_eq!(a["credits_held"], 0, "{kind:?}: every hold settled: {a}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_upstream_callback_changes_nothing() {
    for kind in [ChannelKind::Reverse, ChannelKind::Quickstart] {
        let (app, sim) = app_on(kind).await;
        // Slow (40× the run time), so it is still running while we forge.
        let id = app
            .create("image_to_video", &gen4_turbo("a slow cat [sim:slow=40]"))
            .await;
        let task = loop {
            let t = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
            if t.upstream_id.is_some() {
                break t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let seen = sim
            .sim
            .task_request(task.upstream_id.as_deref().unwrap())
            .unwrap();
        let real = seen["callback_url"]
            .as_str()
            .expect("a callback URL was sent")
            .to_string();
        assert!(real.starts_with(&format!("{}/upstream-callbacks/{id}/", app.server.base_url)));
        let token = real.rsplit('/').next().unwrap();
        let events = app.server.store.task_events(&id).await.unwrap().len();
        let claims_success = json!({"code": 200, "status": "3", "state": "succeeded",
            "video_url": "https://evil.example/x.mp4",
            "data": {"task_id": task.upstream_id, "state": "success", "video_url": "https://evil.example/x.mp4"}});
        let other = app
            .create("image_to_video", &gen4_turbo("another [sim:slow=40]"))
            .await;
        let polls = sim.sim.stats().polls;
        for (path, want) in [
            (format!("/upstream-callbacks/{id}/{}", "0".repeat(64)), 404),
            (format!("/upstream-callbacks/{id}/not-hex"), 404),
            (format!("/upstream-callbacks/{other}/{token}"), 404),
            (format!("/upstream-callbacks/{id}/{}", &token[..32]), 404),
            // The real URL with a forged body: only a hint to poll; the poll says running.
            (
                real.trim_start_matches(&app.server.base_url).to_string(),
                200,
            ),
        ] {
            let r = app
                .client
                .post(app.url(&path))
                .json(&claims_success)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), want, "{kind:?} {path}");
        }
        // The hint brings a poll (polls are otherwise ten minutes apart); still running after it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while sim.sim.stats().polls == polls {
            assert!(
                std::time::Instant::now() < deadline,
                "the hint brought no poll"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let t = app.task(&id).await;
        assert!(
            matches!(t["status"].as_str(), Some("RUNNING" | "PENDING")),
            "{kind:?}: {t}"
        );
        let after = app.server.store.task_events(&id).await.unwrap();
        assert!(
            after.len() <= events + 1,
            "{kind:?}: at most the pending→running move: {after:?}"
        );
        assert!(after.iter().all(|e| !e.to_state.is_terminal()), "{kind:?}");
    }
}
