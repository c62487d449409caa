//! `GET /metrics`: a Prometheus text-format parser reads it, and the numbers move as tasks
//! succeed and fail (requests, upstream calls, tasks by state, credits).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, gen4_turbo, TestApp};

/// One scrape: `name{labels}` → value. Every line that is not a comment must parse.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not `series value`: {line:?}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let name_end = series.find('{').unwrap_or(series.len());
            let name = &series[..name_end];
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line:?}"
            );
            if name_end < series.len() {
                assert!(series.ends_with('}'), "unclosed labels in {line:?}");
            }
            out.insert(series.to_string(), value);
        }
        Scrape(out)
    }

    /// The sum over the series of `name` whose labels contain every `k="v"` of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let base = series.split('{').next().unwrap();
                base == name
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    Scrape::parse(&r.text().await.unwrap())
}

/// Scrapes until `check` holds (the database figures are cached for a few seconds).
async fn until(app: &TestApp, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(app).await;
        if check(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_move_as_tasks_succeed_and_fail() {
    let app = TestApp::spawn_with(|c| {
        c.sandbox_run_seconds = 0.3;
        c.metrics_listen = Some("127.0.0.1:0".into());
    })
    .await;
    // Behind the admin token on the main listener; open on metrics_listen.
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let open = app
        .client
        .get(format!(
            "http://{}/metrics",
            app.server.metrics_addr.expect("metrics_listen bound")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    Scrape::parse(&open.text().await.unwrap());

    let before = scrape(&app).await;
    let route = [
        ("dialect", "runway"),
        ("route", "/v1/image_to_video"),
        ("status", "200"),
    ];
    let ok = app.create("image_to_video", &gen4_turbo("metrics")).await;
    let failed = app
        .create(
            "image_to_video",
            &gen4_turbo("metrics [sim:fail=SAFETY.OUTPUT.VIDEO]"),
        )
        .await;
    let t: Value = app.wait_terminal(&ok).await;
    assert_eq!(t["status"], "SUCCEEDED");
    assert_eq!(app.wait_terminal(&failed).await["status"], "FAILED");
    let task = app.server.store.get_task_by_id(&ok).await.unwrap().unwrap();

    let after = until(&app, "tasks by state", |s| {
        s.sum("reelay_tasks", &[("state", "succeeded")]) >= 1.0
            && s.sum("reelay_tasks", &[("state", "failed")]) >= 1.0
    })
    .await;
    assert!(
        after.sum("reelay_http_requests_total", &route)
            >= before.sum("reelay_http_requests_total", &route) + 2.0
    );
    let h = "reelay_http_request_duration_seconds_count";
    assert!(after.sum(h, &[("route", "/v1/image_to_video")]) >= 2.0);
    let submits = [
        ("channel", "sandbox"),
        ("call", "submit"),
        ("outcome", "success"),
    ];
    assert!(
        after.sum("reelay_upstream_requests_total", &submits)
            >= before.sum("reelay_upstream_requests_total", &submits) + 2.0
    );
    assert!(after.sum("reelay_upstream_requests_total", &[("call", "poll")]) >= 2.0);
    // What reelay added to the steps that called the upstream: every submit is in a dispatch
    // step, the success's last poll in an archiving one.
    let overhead = "reelay_gateway_overhead_seconds_count";
    assert!(
        after.sum(overhead, &[("step", "dispatch")])
            >= before.sum(overhead, &[("step", "dispatch")]) + 2.0
    );
    assert!(
        after.sum(overhead, &[("step", "archive")])
            >= before.sum(overhead, &[("step", "archive")]) + 1.0
    );
    let spent = after.sum(
        "reelay_gateway_overhead_seconds_sum",
        &[("step", "dispatch")],
    );
    assert!(spent > 0.0 && spent.is_finite(), "{spent}");
    assert!(after.sum("reelay_archive_bytes_total", &[]) > 0.0);
    // Credits: the success captured its price, the failure was refunded; nothing held.
    assert_eq!(
        after.sum("reelay_credits_captured_total", &[]),
        task.spec.price as f64
    );
    assert!(after.sum("reelay_credits_refunded_total", &[]) >= task.spec.price as f64);
    assert_eq!(after.sum("reelay_credits_held", &[]), 0.0);
    assert_eq!(after.sum("reelay_queue_depth", &[]), 0.0);
    assert_eq!(after.sum("reelay_webhook_backlog", &[]), 0.0);
    // The channel's gauges.
    assert_eq!(
        after.sum("reelay_channel_breaker_state", &[("channel", "sandbox")]),
        0.0
    );
    assert_eq!(
        after.sum("reelay_channel_enabled", &[("channel", "sandbox")]),
        1.0
    );
    assert_eq!(
        after.sum("reelay_channel_in_flight", &[("channel", "sandbox")]),
        0.0
    );
}
