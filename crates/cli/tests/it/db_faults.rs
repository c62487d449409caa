//! The database failing: unreachable at start (a clear error naming the host, never the
//! password, and a non-zero exit in time), and lost while serving (503 + Retry-After in each
//! dialect's own shape, `/readyz` failing, nothing half-written, the workers resuming by
//! themselves once it is back).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::proxy::Proxy;
use crate::common::{database_url, gen4_turbo, postgres_admin_url, TestApp, VERSION};

#[test]
fn an_unreachable_database_at_start_is_a_clear_error_and_a_quick_exit() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused.
    let url = "postgres://reelay:hunter2-secret@127.0.0.1:1/reelay";
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("REELAY_DATABASE_URL", url)
        .env_remove("REELAY_CONFIG")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started without a database: {stderr}"
    );
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    // The admin commands say the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
        .args(["account", "list", "--data-dir"])
        .arg(dir.path())
        .env("REELAY_DATABASE_URL", url)
        .env_remove("REELAY_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("127.0.0.1") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}

async fn count_tasks(url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn losing_the_database_answers_503_in_each_dialect_and_work_resumes_when_it_returns() {
    if postgres_admin_url().is_none() {
        eprintln!("\n*** SKIPPED db_faults: runs in the PostgreSQL pass (REELAY_TEST_BACKEND=postgres) ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let direct = database_url(dir.path());
    let parsed = url::Url::parse(&direct).unwrap();
    let target = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target).await;
    let mut proxied = parsed.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let proxied = proxied.to_string();
    // A task runs long enough to be in flight while the database is away; a step cut off by
    // the loss resumes when its lease runs out, short here.
    let sim = reelay_sim::SimConfig {
        pending_seconds: 0.2,
        run_seconds: 3.0,
        ..reelay_sim::SimConfig::default()
    };
    let app = TestApp::with_sim(sim, |c| {
        c.database_url = Some(proxied.clone());
        c.engine.lease_seconds = 4;
    })
    .await;
    let before = app
        .create("image_to_video", &gen4_turbo("before the cut"))
        .await;
    let tasks_before = count_tasks(&direct).await;

    proxy.cut().await;
    let runway = app.post("/v1/image_to_video", &gen4_turbo("during")).await;
    assert_eq!(runway.status(), 503);
    assert!(runway.headers().contains_key("retry-after"));
    let v: Value = runway.json().await.unwrap();
    assert!(v["error"].is_string(), "Runway's shape: {v}");

    let reverse = app
        .post("/runway/pro/generate", &json!({"prompt": "during"}))
        .await;
    let status = reverse.status();
    let retry_after = reverse.headers().contains_key("retry-after");
    let v: Value = reverse.json().await.unwrap();
    assert_eq!(status, 503, "{v}");
    assert!(retry_after);
    assert_eq!(v["code"], 503, "the reverse shape: {v}");

    let qs = app
        .post(
            "/api/v1/runway/generate",
            &json!({"prompt": "during", "duration": 5, "quality": "720p", "aspectRatio": "16:9"}),
        )
        .await;
    let v: Value = qs.json().await.unwrap();
    assert!(v["code"] == 455, "the quick-start shape: {v}");

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    // Nothing the refused requests did was written.
    assert_eq!(count_tasks(&direct).await, tasks_before);
    // The task accepted before the cut finishes without anyone's help.
    let done = app.wait_terminal(&before).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    // And new work is accepted again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app
            .client
            .post(app.url("/v1/image_to_video"))
            .bearer_auth(&app.key)
            .header("X-Runway-Version", VERSION)
            .json(&gen4_turbo("after"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after restore",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// On a shared database, what each instance would make up for itself is said at start: local
/// media (links 404 on other instances), a generated secret key and admin token, the sandbox.
#[test]
fn an_instance_on_postgres_says_what_it_does_not_share() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "\n*** SKIPPED: runs in the PostgreSQL pass (REELAY_TEST_BACKEND=postgres) ***\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reelay.toml");
    std::fs::write(&config, "log = \"warn\"\n").unwrap();
    let log = dir.path().join("server.log");
    let server =
        crate::common::process::Reelay::start(&config, &dir.path().join("data"), log.clone());
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    for needle in [
        "local folder while the database is PostgreSQL",
        "secret_key is not set",
        "admin_token is not set",
        "sandbox channel runs inside this instance",
    ] {
        assert!(text.contains(needle), "no warning {needle:?} in:\n{text}");
    }
}
