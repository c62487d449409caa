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

#[test]
fn open_loop_in_flight_and_a_real_video_with_frames() {
    // Open loop at a fixed rate, tasks that never finish, polled every second: the in-flight
    // window counts the polls the schedule makes due.
    let r = bench(&[
        "--tasks",
        "40",
        "--concurrency",
        "8",
        "--rate",
        "200",
        "--sim-run-seconds",
        "1000",
        "--poll-seconds",
        "1",
        "--hold-seconds",
        "2",
        "--max-seconds",
        "120",
    ]);
    assert_eq!(r["accepted"], 40, "{r}");
    assert_eq!(r["offered_per_second"], 200.0, "{r}");
    let f = &r["in_flight"];
    assert_eq!(f["tasks"], 40, "{r}");
    assert_eq!(f["window_seconds"].as_f64().unwrap().round(), 2.0, "{r}");
    assert_eq!(f["due_polls_per_second"], 40.0, "{r}");
    let polls = f["polls"].as_u64().unwrap();
    assert!(
        (1..=160).contains(&polls),
        "polls in a 2 s window of 40 tasks: {r}"
    );
    assert!(f["server_rss_mb"].as_f64().unwrap() > 1.0, "{r}");

    // The simulator serves a generated H.264 clip; with frames on, every task still ends
    // with its callback (the poster decoded in process).
    let r = bench(&[
        "--tasks",
        "10",
        "--concurrency",
        "4",
        "--mode",
        "e2e",
        "--video-size",
        "320x180",
        "--video-bytes",
        "300000",
        "--frames",
        "--max-seconds",
        "120",
    ]);
    assert_eq!(r["completed"], 10, "{r}");
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
}

#[test]
fn bad_load_options_are_refused_by_name() {
    for (args, says) in [
        (&["--rate", "0"][..], "--rate"),
        (&["--video-size", "1280"][..], "WIDTHxHEIGHT"),
        (&["--video-bytes", "100"][..], "--video-size"),
        (&["--poll-seconds", "0"][..], "--poll-seconds"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
            .arg("bench")
            .args(args)
            .env_remove("REELAY_CONFIG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
}
