//! The load tool works (a smoke run, never a timed assertion): on its own server, simulator
//! and receiver it reports every figure, and against a running server it names why submits
//! failed.

use serde_json::Value;

use crate::common::TestApp;

fn bench(args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .env_remove("REELAY_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn on_its_own_servers_it_reports_everything_end_to_end() {
    for dialect in ["runway", "reverse"] {
        let r = bench(&[
            "--tasks",
            "120",
            "--concurrency",
            "16",
            "--mode",
            "e2e",
            "--dialect",
            dialect,
            "--max-seconds",
            "120",
        ]);
        assert_eq!(r["accepted"], 120, "{r}");
        assert_eq!(r["completed"], 120, "{r}");
        assert_eq!(r["unfinished"], 0, "{r}");
        assert_eq!(r["errors"], serde_json::json!({}), "{r}");
        assert!(r["accepted_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["accept_to_callback_ms"]["p99"].as_f64().unwrap() > 0.0);
        assert_eq!(r["upstream"]["creates"], 120, "{r}");
        assert!(r["upstream"]["requests_per_task"].as_f64().unwrap() >= 2.0);
        assert!(r["server"]["peak_rss_mb"].as_f64().unwrap() > 1.0, "{r}");
        assert!(r["server"]["cpu_seconds"].as_f64().is_some(), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_running_server_it_names_the_cause_of_each_error() {
    let app = TestApp::spawn_with(|c| {
        c.limits.requests_per_second = 1;
        c.limits.burst = 5;
    })
    .await;
    let (url, key) = (app.server.base_url.clone(), app.key.clone());
    let r = tokio::task::spawn_blocking(move || {
        bench(&[
            "--url",
            &url,
            "--key",
            &key,
            "--tasks",
            "40",
            "--concurrency",
            "8",
        ])
    })
    .await
    .unwrap();
    let accepted = r["accepted"].as_u64().unwrap();
    let errors = r["errors"].as_object().unwrap();
    assert!((1..40).contains(&accepted), "{r}");
    let limited: u64 = errors
        .iter()
        .filter(|(k, _)| k.starts_with("429"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        accepted + limited,
        40,
        "every failure is named as the rate limit: {r}"
    );
}
