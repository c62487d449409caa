//! The simulator seen from a client: spawned on port 0, driven over HTTP with reqwest.

use std::time::Duration;

use reelay_sim::{
    spawn, Fault, SimConfig, SimHandle, SimStats, SAMPLE_MP3, SAMPLE_MP4, SAMPLE_PNG,
};
use serde_json::{json, Value};

const VERSION: &str = "2024-11-06";

struct TestSim {
    handle: SimHandle,
    client: reqwest::Client,
}

fn quick() -> SimConfig {
    SimConfig {
        pending_seconds: 0.2,
        run_seconds: 0.5,
        ..SimConfig::default()
    }
}

async fn start(config: SimConfig) -> TestSim {
    let handle = spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind");
    // No pooling: connection-dropping faults must not poison the next request's connection.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    TestSim { handle, client }
}

fn i2v_body(prompt: &str) -> Value {
    json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg", "ratio": "1280:720",
           "duration": 5, "promptText": prompt})
}

impl TestSim {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    fn post(&self, endpoint: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(&format!("/v1/{endpoint}")))
            .header("X-Runway-Version", VERSION)
            .json(body)
    }

    async fn create_ok(&self, endpoint: &str, body: &Value) -> String {
        let res = self.post(endpoint, body).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    async fn get(&self, id: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.url(&format!("/v1/tasks/{id}")))
            .header("X-Runway-Version", VERSION)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// Polls until `done` holds, returning every body seen (the last one satisfies `done`).
    async fn poll_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let (status, v) = self.get(id).await;
            assert_eq!(status, 200, "{v}");
            seen.push(v.clone());
            if done(&v) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("task {id} never got there; last: {:?}", seen.last());
    }

    async fn terminal(&self, id: &str) -> Value {
        let seen = self
            .poll_until(id, |v| {
                matches!(
                    v["status"].as_str(),
                    Some("SUCCEEDED" | "FAILED" | "CANCELLED")
                )
            })
            .await;
        seen.last().unwrap().clone()
    }

    async fn stats(&self) -> SimStats {
        self.client
            .get(self.url("/_sim/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[tokio::test]
async fn a_task_goes_pending_running_succeeded_and_its_output_downloads() {
    // A long PENDING so the first poll surely sees it, a long RUN to see progress rise.
    let sim = start(SimConfig {
        pending_seconds: 1.0,
        run_seconds: 1.0,
        ..quick()
    })
    .await;
    let res = sim
        .post("image_to_video", &i2v_body("a cat"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let created: Value = res.json().await.unwrap();
    assert_eq!(keys(&created), ["estimatedCost", "id"]);
    assert_eq!(created["estimatedCost"], json!({"credits": 25}));
    let id = created["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());

    let (_, first) = sim.get(id).await;
    assert_eq!(first["status"], "PENDING");
    assert_eq!(keys(&first), ["createdAt", "estimatedCost", "id", "status"]);
    let created_at = first["createdAt"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());

    let seen = sim.poll_until(id, |v| v["status"] == "SUCCEEDED").await;
    let progress: Vec<f64> = seen
        .iter()
        .filter(|v| v["status"] == "RUNNING")
        .map(|v| v["progress"].as_f64().unwrap())
        .collect();
    assert!(!progress.is_empty(), "never saw RUNNING");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.iter().all(|p| (0.0..1.0).contains(p)));
    let running = seen.iter().find(|v| v["status"] == "RUNNING").unwrap();
    assert_eq!(
        keys(running),
        ["createdAt", "estimatedCost", "id", "progress", "status"]
    );
    // Statuses only move forward.
    let order = |s: &str| {
        ["PENDING", "RUNNING", "SUCCEEDED"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    let statuses: Vec<usize> = seen
        .iter()
        .map(|v| order(v["status"].as_str().unwrap()))
        .collect();
    assert!(statuses.windows(2).all(|w| w[0] <= w[1]));

    let done = seen.last().unwrap();
    assert_eq!(keys(done), ["cost", "createdAt", "id", "output", "status"]);
    assert_eq!(done["cost"], json!({"credits": 25}));
    assert_eq!(done["createdAt"], first["createdAt"]);
    let url = done["output"][0].as_str().unwrap();
    assert!(url.starts_with(&sim.handle.base_url()), "{url}");
    assert!(url.contains("/output.mp4?"), "{url}");
    let file = sim.client.get(url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "video/mp4");
    assert_eq!(
        file.headers()["content-length"],
        SAMPLE_MP4.len().to_string().as_str()
    );
    assert_eq!(&file.bytes().await.unwrap()[..], SAMPLE_MP4);
}

#[tokio::test]
async fn image_and_audio_endpoints_produce_png_and_mp3() {
    let sim = start(quick()).await;
    let img = sim
        .create_ok(
            "text_to_image",
            &json!({"model": "gen4_image", "promptText": "a cat", "ratio": "1920:1080"}),
        )
        .await;
    let snd = sim
        .create_ok(
            "sound_effect",
            &json!({"model": "eleven_text_to_sound_v2", "promptText": "rain"}),
        )
        .await;
    for (id, ct, bytes) in [
        (img, "image/png", SAMPLE_PNG),
        (snd, "audio/mpeg", SAMPLE_MP3),
    ] {
        let done = sim.terminal(&id).await;
        assert_eq!(done["status"], "SUCCEEDED");
        let file = sim
            .client
            .get(done["output"][0].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(file.headers()["content-type"], ct);
        assert_eq!(&file.bytes().await.unwrap()[..], bytes);
    }
}

#[tokio::test]
async fn invalid_bodies_get_runways_400() {
    let sim = start(quick()).await;
    let res = sim.post("image_to_video", &json!({})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "Validation of body failed");
    assert_eq!(v["docUrl"], "https://docs.dev.runwayml.com/api");
    let issues = v["issues"].as_array().unwrap();
    assert!(!issues.is_empty());
    for i in issues {
        assert!(
            i["code"].is_string() && i["path"].is_array() && i["message"].is_string(),
            "{i}"
        );
    }
    assert_eq!(issues[0]["path"], json!(["model"]));

    let res = sim
        .post(
            "image_to_video",
            &json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg", "ratio": "1:1"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["path"] == json!(["ratio"])),
        "{v}"
    );

    let res = sim
        .client
        .post(sim.url("/v1/text_to_video"))
        .header("X-Runway-Version", VERSION)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"].is_string());
    assert_eq!(sim.stats().await.tasks_created, 0);
}

#[tokio::test]
async fn the_version_header_is_required() {
    let sim = start(quick()).await;
    let res = sim
        .client
        .post(sim.url("/v1/image_to_video"))
        .json(&i2v_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("X-Runway-Version"));
    let res = sim
        .client
        .post(sim.url("/v1/image_to_video"))
        .header("X-Runway-Version", "2023-01-01")
        .json(&i2v_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = sim
        .client
        .get(sim.url("/v1/organization"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_configured_key_is_required() {
    let sim = start(SimConfig {
        api_key: Some("key_secret".into()),
        ..quick()
    })
    .await;
    let res = sim
        .post("image_to_video", &i2v_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    let res = sim
        .post("image_to_video", &i2v_body("x"))
        .bearer_auth("key_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = sim
        .post("image_to_video", &i2v_body("x"))
        .bearer_auth("key_secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = sim
        .client
        .get(sim.url(&format!("/v1/tasks/{id}")))
        .header("X-Runway-Version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let stats = sim.stats().await;
    assert_eq!((stats.creates_received, stats.tasks_created), (3, 1));
}

#[tokio::test]
async fn rate_limit_fault_answers_429_with_retry_after_and_creates_nothing() {
    let sim = start(quick()).await;
    sim.handle.sim.push_fault(Fault::RateLimit {
        retry_after_secs: 7,
    });
    let res = sim
        .post("image_to_video", &i2v_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    assert!(res.headers().contains_key("x-ratelimit-reset"));
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(sim.stats().await.tasks_created, 0);
    // Applies once.
    sim.create_ok("image_to_video", &i2v_body("x")).await;
    let stats = sim.stats().await;
    assert_eq!((stats.creates_received, stats.tasks_created), (2, 1));
}

#[tokio::test]
async fn server_error_faults_before_and_after_accept() {
    let sim = start(quick()).await;
    // Through the HTTP control route, with a count.
    let res = sim
        .client
        .post(sim.url("/_sim/faults"))
        .json(&json!({"kind": "server_error", "status": 503, "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for _ in 0..2 {
        let res = sim
            .post("image_to_video", &i2v_body("x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
    }
    assert_eq!(sim.stats().await.tasks_created, 0);

    sim.handle
        .sim
        .push_fault(Fault::AcceptThenServerError { status: 502 });
    let res = sim
        .post("image_to_video", &i2v_body("x"))
        .header("X-Reelay-Reference", "ref-502")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let stats = sim.stats().await;
    assert_eq!(stats.tasks_created, 1);
    assert_eq!(stats.by_reference.get("ref-502"), Some(&1));
    // The gateway can reconcile the unknown outcome.
    let found: Value = sim
        .client
        .get(sim.url("/_sim/lookup?reference=ref-502"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, task) = sim.get(found["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(task["id"], found["id"]);
}

#[tokio::test]
async fn reset_faults_drop_the_connection() {
    let sim = start(quick()).await;
    sim.handle.sim.push_fault(Fault::ResetBeforeAccept);
    let err = sim
        .post("image_to_video", &i2v_body("x"))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
    assert_eq!(sim.stats().await.tasks_created, 0);

    sim.handle.sim.push_fault(Fault::ResetAfterAccept);
    let err = sim
        .post("image_to_video", &i2v_body("x"))
        .header("X-Reelay-Reference", "r1")
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
    assert_eq!(sim.stats().await.tasks_created, 1);
    assert!(sim.handle.sim.lookup("r1").is_some());
    // The server is still fine afterwards.
    sim.create_ok("image_to_video", &i2v_body("x")).await;
}

#[tokio::test]
async fn timeout_after_accept_outlasts_a_short_client_timeout() {
    let sim = start(quick()).await;
    sim.handle
        .sim
        .push_fault(Fault::TimeoutAfterAccept { secs: 3 });
    let err = sim
        .post("image_to_video", &i2v_body("x"))
        .header("X-Reelay-Reference", "slow-answer")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(sim.stats().await.tasks_created, 1);
    let id = sim.handle.sim.lookup("slow-answer").unwrap();
    assert_eq!(sim.get(&id).await.0, 200);
}

#[tokio::test]
async fn moderation_fault_is_a_400_without_a_task() {
    let sim = start(quick()).await;
    sim.handle.sim.push_fault(Fault::Moderation);
    let res = sim
        .post("image_to_video", &i2v_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"].is_string());
    assert_eq!(sim.stats().await.tasks_created, 0);
}

#[tokio::test]
async fn fail_task_and_slow_progress_faults() {
    let sim = start(quick()).await;
    sim.handle.sim.push_fault(Fault::FailTask {
        code: "SAFETY.OUTPUT.VIDEO".into(),
    });
    let failed = sim.create_ok("image_to_video", &i2v_body("x")).await;
    sim.handle.sim.push_fault(Fault::FailTask {
        code: "SAFETY.INPUT.TEXT".into(),
    });
    let charged = sim.create_ok("image_to_video", &i2v_body("x")).await;
    sim.handle
        .sim
        .push_fault(Fault::SlowProgress { factor: 40.0 });
    let slow = sim.create_ok("image_to_video", &i2v_body("x")).await;
    let normal = sim.create_ok("image_to_video", &i2v_body("x")).await;

    let v = sim.terminal(&failed).await;
    assert_eq!(
        keys(&v),
        [
            "cost",
            "createdAt",
            "failure",
            "failureCode",
            "id",
            "status"
        ]
    );
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["failureCode"], "SAFETY.OUTPUT.VIDEO");
    assert!(v["failure"].as_str().unwrap().len() > 5);
    assert_eq!(v["cost"], json!({"credits": 0}));
    let v = sim.terminal(&charged).await;
    assert_eq!(
        (v["failureCode"].as_str(), &v["cost"]),
        (Some("SAFETY.INPUT.TEXT"), &json!({"credits": 25}))
    );

    assert_eq!(sim.terminal(&normal).await["status"], "SUCCEEDED");
    // 40 × 0.5 s: still going long after the normal one finished.
    let (_, v) = sim.get(&slow).await;
    assert!(
        matches!(v["status"].as_str(), Some("PENDING" | "RUNNING")),
        "{v}"
    );
}

#[tokio::test]
async fn prompt_directives_drive_faults() {
    let sim = start(quick()).await;
    let body = i2v_body("a cat [sim:fail=INTERNAL]");
    let id = sim.create_ok("image_to_video", &body).await;
    let v = sim.terminal(&id).await;
    assert_eq!(
        (v["status"].as_str(), v["failureCode"].as_str()),
        (Some("FAILED"), Some("INTERNAL"))
    );

    // Moderation: every time.
    for _ in 0..2 {
        assert_eq!(
            sim.post("image_to_video", &i2v_body("[sim:moderation]"))
                .send()
                .await
                .unwrap()
                .status(),
            400
        );
    }

    // 429: once per reference, so the client's retry goes through.
    let body = i2v_body("a dog [sim:429]");
    let send = || {
        sim.post("image_to_video", &body)
            .header("X-Reelay-Reference", "t-429")
            .send()
    };
    let res = send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(send().await.unwrap().status(), 200);

    // Reset after accept: the task exists; lookup finds it; a resubmit is answered normally.
    let body = i2v_body("[sim:reset_after_accept]");
    let send = || {
        sim.post("image_to_video", &body)
            .header("X-Reelay-Reference", "t-reset")
            .send()
    };
    assert!(send().await.is_err());
    let first = sim.handle.sim.lookup("t-reset").unwrap();
    assert_eq!(sim.get(&first).await.0, 200);
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(sim.stats().await.by_reference["t-reset"], 2);

    let res = sim
        .post("image_to_video", &i2v_body("[sim:500_after_accept]"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let err = sim
        .post("image_to_video", &i2v_body("[sim:timeout_after_accept=3]"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());

    let slow = sim
        .create_ok("image_to_video", &i2v_body("[sim:slow=40]"))
        .await;
    let normal = sim.create_ok("image_to_video", &i2v_body("plain")).await;
    sim.terminal(&normal).await;
    assert_ne!(sim.get(&slow).await.1["status"], "SUCCEEDED");
}

#[tokio::test]
async fn tasks_beyond_max_concurrent_are_throttled_then_progress() {
    let sim = start(SimConfig {
        max_concurrent: Some(1),
        run_seconds: 1.5,
        ..quick()
    })
    .await;
    let ids = [
        sim.create_ok("image_to_video", &i2v_body("1")).await,
        sim.create_ok("image_to_video", &i2v_body("2")).await,
        sim.create_ok("image_to_video", &i2v_body("3")).await,
    ];
    let (_, third) = sim.get(&ids[2]).await;
    assert_eq!(third["status"], "THROTTLED");
    assert_eq!(keys(&third), ["createdAt", "estimatedCost", "id", "status"]);
    for id in &ids {
        assert_eq!(sim.terminal(id).await["status"], "SUCCEEDED");
    }
    let org: Value = sim
        .client
        .get(sim.url("/v1/organization"))
        .header("X-Runway-Version", VERSION)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        org["tier"]["models"]["gen4_turbo"]["maxConcurrentGenerations"],
        1
    );
}

#[tokio::test]
async fn delete_answers_204_and_the_task_is_gone() {
    let sim = start(quick()).await;
    let id = sim.create_ok("image_to_video", &i2v_body("x")).await;
    let del = || {
        sim.client
            .delete(sim.url(&format!("/v1/tasks/{id}")))
            .header("X-Runway-Version", VERSION)
            .send()
    };
    let res = del().await.unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
    let (status, v) = sim.get(&id).await;
    assert_eq!((status, v), (404, json!({"error": "Could not find Task"})));
    assert_eq!(del().await.unwrap().status(), 404);
    let (status, _) = sim.get("00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, 404);
    let stats = sim.stats().await;
    assert_eq!((stats.cancels, stats.deletes), (1, 1));
}

#[tokio::test]
async fn expired_or_forged_output_urls_are_refused() {
    let sim = start(SimConfig {
        output_ttl_seconds: 0,
        ..quick()
    })
    .await;
    let id = sim.create_ok("image_to_video", &i2v_body("x")).await;
    let url = sim.terminal(&id).await["output"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sim.client.get(&url).send().await.unwrap().status(), 403);

    let sim = start(quick()).await;
    let id = sim.create_ok("image_to_video", &i2v_body("x")).await;
    let url = sim.terminal(&id).await["output"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sim.client.get(&url).send().await.unwrap().status(), 200);
    let forged = format!("{}0", &url[..url.len() - 1]).replace("&sig=", "&sig=f");
    assert_eq!(sim.client.get(&forged).send().await.unwrap().status(), 403);
    let other_task = url.replace(&id, "00000000-0000-0000-0000-000000000000");
    assert_eq!(
        sim.client.get(&other_task).send().await.unwrap().status(),
        403
    );
}

#[tokio::test]
async fn stats_lookup_and_reset() {
    let sim = start(quick()).await;
    let id = sim
        .post(
            "text_to_video",
            &json!({"model": "veo3.1", "promptText": "x", "ratio": "1280:720"}),
        )
        .header("X-Reelay-Reference", "job-1")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    sim.get(&id).await;
    let stats = sim.stats().await;
    assert_eq!(stats.creates_received, 1);
    assert_eq!(stats.tasks_created, 1);
    assert_eq!(stats.by_reference["job-1"], 1);
    assert_eq!(stats.polls, 1);

    let found: Value = sim
        .client
        .get(sim.url("/_sim/lookup?reference=job-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found, json!({"id": id}));
    let missing = sim
        .client
        .get(sim.url("/_sim/lookup?reference=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    sim.handle
        .sim
        .push_fault(Fault::ServerError { status: 500 });
    assert_eq!(
        sim.client
            .post(sim.url("/_sim/reset"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(sim.stats().await, SimStats::default());
    // The queued fault went with the reset.
    sim.create_ok("image_to_video", &i2v_body("x")).await;
}

#[tokio::test]
async fn organization_has_runways_shape() {
    let sim = start(quick()).await;
    sim.create_ok("image_to_video", &i2v_body("x")).await;
    let org: Value = sim
        .client
        .get(sim.url("/v1/organization"))
        .header("X-Runway-Version", VERSION)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(org["creditBalance"].is_i64());
    assert!(org["tier"]["maxMonthlyCreditSpend"].is_i64());
    let m = &org["tier"]["models"]["gen4_turbo"];
    assert!(m
        .as_object()
        .unwrap()
        .contains_key("maxConcurrentGenerations"));
    assert!(
        m["maxConcurrentGenerations"].is_null(),
        "no limit configured"
    );
    assert_eq!(org["usage"]["models"]["gen4_turbo"]["dailyGenerations"], 1);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_failures() {
    async fn pattern(seed: u64) -> Vec<(String, Option<String>)> {
        let sim = start(SimConfig {
            seed,
            failure_rate: 0.5,
            pending_seconds: 0.05,
            run_seconds: 0.2,
            ..quick()
        })
        .await;
        let mut ids = Vec::new();
        for i in 0..16 {
            ids.push(
                sim.create_ok("image_to_video", &i2v_body(&format!("task {i}")))
                    .await,
            );
        }
        let mut out = Vec::new();
        for id in &ids {
            let v = sim.terminal(id).await;
            out.push((
                v["status"].as_str().unwrap().to_string(),
                v["failureCode"].as_str().map(String::from),
            ));
        }
        out
    }
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert!(
        a.iter().any(|(s, _)| s == "FAILED") && a.iter().any(|(s, _)| s == "SUCCEEDED"),
        "{a:?}"
    );
    assert_ne!(a, pattern(43).await);
}

#[tokio::test]
async fn output_url_override_points_outputs_elsewhere() {
    let sim = start(SimConfig {
        output_url: Some("http://files.test/{task_id}/out.mp4".into()),
        ..quick()
    })
    .await;
    let id = sim
        .create_ok("image_to_video", &i2v_body("elsewhere"))
        .await;
    let t = sim.terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED");
    assert_eq!(
        t["output"],
        json!([format!("http://files.test/{id}/out.mp4")])
    );
}

// ---- the resellers' formats ----------------------------------------------------------------

/// A receiver of callbacks on port 0: every POST to `/hook` arrives on the channel.
async fn hook() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, Value)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(v): axum::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, v));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next_callback(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, Value)>,
) -> (axum::http::HeaderMap, Value) {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a callback within the deadline")
        .expect("the receiver is running")
}

impl TestSim {
    async fn reverse(&self, route: &str, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(&format!("/runway/pro/{route}")))
            .json(body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn feed(&self, id: &str) -> Value {
        let res = self
            .client
            .post(self.url("/runway/feed"))
            .json(&json!({"task_id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Polls the feed until the task's status is one of `statuses`.
    async fn feed_until(&self, id: &str, statuses: &[&str]) -> Vec<Value> {
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let v = self.feed(id).await;
            assert_eq!(v["code"], 200, "{v}");
            let done = statuses.contains(&v["data"]["status"].as_str().unwrap_or(""));
            seen.push(v);
            if done {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "task {id} never got to {statuses:?}; last: {:?}",
            seen.last()
        );
    }

    async fn quickstart(&self, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url("/api/v1/runway/generate"))
            .json(body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn detail(&self, id: &str) -> Value {
        let res = self
            .client
            .get(self.url(&format!("/api/v1/runway/record-detail?taskId={id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    async fn detail_until(&self, id: &str, states: &[&str]) -> Vec<Value> {
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let v = self.detail(id).await;
            assert_eq!(v["code"], 200, "{v}");
            let done = states.contains(&v["data"]["state"].as_str().unwrap_or(""));
            seen.push(v);
            if done {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("task {id} never got to {states:?}; last: {:?}", seen.last());
    }
}

fn reverse_body(prompt: &str) -> Value {
    json!({"prompt": prompt, "model": "gen4", "ratio": "16:9", "options": {"seconds": 5}})
}

fn quickstart_body(prompt: &str) -> Value {
    json!({"prompt": prompt, "duration": 5, "quality": "720p", "aspectRatio": "16:9", "waterMark": ""})
}

#[tokio::test]
async fn a_reverse_task_runs_to_status_3_and_its_video_downloads() {
    let sim = start(SimConfig {
        pending_seconds: 0.3,
        run_seconds: 0.5,
        ..quick()
    })
    .await;
    let (status, created) = sim.reverse("generate", &reverse_body("a cat")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        (&created["code"], &created["msg"]),
        (&json!(200), &json!("success"))
    );
    assert!(created["exec_time"].is_f64());
    let data = &created["data"];
    assert_eq!(
        (&data["status"], &data["state"]),
        (&json!("0"), &json!("pending"))
    );
    assert_eq!(
        (&data["point"], &data["refund"]),
        (&json!("160"), &json!("0"))
    );
    assert_eq!(data["prompt"], "a cat");
    let id = data["task_id"].as_str().unwrap().to_string();

    let seen = sim.feed_until(&id, &["2", "3"]).await;
    let statuses: Vec<&str> = seen
        .iter()
        .map(|v| v["data"]["status"].as_str().unwrap())
        .collect();
    assert!(statuses.windows(2).all(|w| w[0] <= w[1]), "{statuses:?}");
    assert!(statuses.contains(&"1"), "never saw status 1: {statuses:?}");
    let done = &seen.last().unwrap()["data"];
    assert_eq!(
        (&done["status"], &done["state"]),
        (&json!("3"), &json!("succeeded"))
    );
    assert!(done["msg"].is_null());
    let created_at: i64 = done["create_time"].as_str().unwrap().parse().unwrap();
    let updated_at: i64 = done["update_time"].as_str().unwrap().parse().unwrap();
    assert!(updated_at >= created_at);
    let file = sim
        .client
        .get(done["video_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(&file.bytes().await.unwrap()[..], SAMPLE_MP4);
    let poster = sim
        .client
        .get(done["poster"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(&poster.bytes().await.unwrap()[..], SAMPLE_PNG);

    // The same task through the GET feed, another prefix, and Runway's own route.
    let v: Value = sim
        .client
        .get(sim.url(&format!("/api/video/runway/feed?task_id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["status"], "3");
    assert_eq!(sim.get(&id).await.1["status"], "SUCCEEDED");

    // An unknown id is `task_not_exist`.
    let res = sim
        .client
        .post(sim.url("/runway/feed"))
        .json(&json!({"task_id": "00000000-0000-0000-0000-000000000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["msg"], "task_not_exist");

    // What the sim saw, for tests of adapters.
    let seen: Value = sim
        .client
        .get(sim.url(&format!("/_sim/tasks/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&seen["format"], &seen["endpoint"], &seen["model"]),
        (&json!("reverse"), &json!("text_to_video"), &json!("gen4"))
    );
    assert_eq!(seen["body"]["options"]["seconds"], 5);
    let stats = sim.stats().await;
    assert_eq!(stats.creates_by_format["reverse"], 1);
}

#[tokio::test]
async fn reverse_routes_check_their_fields() {
    let sim = start(quick()).await;
    for (route, body) in [
        ("generate", json!({"model": "gen4"})),
        ("generate", json!({"prompt": "x", "model": "gen9"})),
        (
            "generate",
            json!({"prompt": "x", "options": {"seconds": 7}}),
        ),
        ("generate", json!({"prompt": "x", "ratio": "wide"})),
        ("generate", json!({"prompt": "x", "image": "not a url"})),
        ("video2video", json!({"prompt": "pixelated"})),
        ("act_one", json!({"video": "https://example.com/v.mp4"})),
    ] {
        let (status, v) = sim.reverse(route, &body).await;
        assert_eq!((status, &v["code"]), (400, &json!(400)), "{body} → {v}");
        assert!(
            v["msg"].as_str().unwrap().starts_with("invalid request"),
            "{v}"
        );
        assert!(v["data"].is_null());
    }
    let (status, v) = sim
        .reverse(
            "video2video",
            &json!({"video": "https://example.com/v.mp4", "prompt": "pixelated", "model": "gen4"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = sim
        .reverse(
            "act_one",
            &json!({"video": "https://example.com/v.mp4", "image": "https://example.com/c.png"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(sim.stats().await.tasks_created, 2);
}

#[tokio::test]
async fn a_quickstart_task_runs_to_success_and_its_video_downloads() {
    let sim = start(SimConfig {
        pending_seconds: 0.3,
        run_seconds: 0.5,
        ..quick()
    })
    .await;
    let (status, created) = sim.quickstart(&quickstart_body("a fluffy cat")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&created["code"], &created["msg"]),
        (&json!(200), &json!("success"))
    );
    let id = created["data"]["taskId"].as_str().unwrap().to_string();

    let seen = sim.detail_until(&id, &["success", "fail"]).await;
    let states: Vec<&str> = seen
        .iter()
        .map(|v| v["data"]["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"generating"), "{states:?}");
    let done = &seen.last().unwrap()["data"];
    assert_eq!(done["state"], "success");
    assert_eq!(done["taskId"], id.as_str());
    assert_eq!(done["generateParam"]["prompt"], "a fluffy cat");
    assert_eq!(
        (&done["failCode"], &done["failMsg"]),
        (&Value::Null, &json!(""))
    );
    assert_eq!(done["expireFlag"], 0);
    let time = done["generateTime"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{time}"
    );
    let file = sim
        .client
        .get(done["videoInfo"]["videoUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(&file.bytes().await.unwrap()[..], SAMPLE_MP4);

    // Unknown task: code 404 in an HTTP 200.
    let v = sim.detail("00000000-0000-0000-0000-000000000000").await;
    assert_eq!((&v["code"], &v["data"]), (&json!(404), &Value::Null));
    // Validation: code 422 in an HTTP 200.
    for body in [
        json!({"prompt": "x", "duration": 10, "quality": "1080p", "aspectRatio": "16:9"}),
        json!({"prompt": "x", "duration": 5, "quality": "720p"}),
        json!({"prompt": "x", "duration": 8, "aspectRatio": "16:9"}),
        json!({"prompt": "x", "model": "runway-duration-5-generate", "duration": 10, "aspectRatio": "16:9"}),
    ] {
        let (status, v) = sim.quickstart(&body).await;
        assert_eq!((status, &v["code"]), (200, &json!(422)), "{body} → {v}");
    }
    // The duration from the model name, the default quality.
    let (_, v) = sim
        .quickstart(
            &json!({"prompt": "x", "model": "runway-duration-10-generate", "aspectRatio": "9:16"}),
        )
        .await;
    assert_eq!(v["code"], 200, "{v}");
    assert_eq!(sim.stats().await.creates_by_format["quickstart"], 6);
}

#[tokio::test]
async fn each_format_answers_a_wrong_key_its_own_way() {
    let sim = start(SimConfig {
        api_key: Some("key_secret".into()),
        ..quick()
    })
    .await;
    let res = sim
        .client
        .post(sim.url("/runway/pro/generate"))
        .bearer_auth("key_wrong")
        .json(&reverse_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], 401);
    // DuomiAPI's bare key works.
    let res = sim
        .client
        .post(sim.url("/runway/pro/generate"))
        .header("Authorization", "key_secret")
        .json(&reverse_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = sim
        .client
        .post(sim.url("/api/v1/runway/generate"))
        .json(&quickstart_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], 401);
    let res = sim
        .client
        .post(sim.url("/api/v1/runway/generate"))
        .bearer_auth("key_secret")
        .json(&quickstart_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["code"], 200);
    let stats = sim.stats().await;
    assert_eq!((stats.creates_received, stats.tasks_created), (4, 2));
}

#[tokio::test]
async fn faults_apply_to_every_format_in_its_own_words() {
    let sim = start(quick()).await;
    let s = &sim.handle.sim;

    // Rate limit: 429 + Retry-After; quick-start's code 429 in an HTTP 200.
    s.push_fault(Fault::RateLimit {
        retry_after_secs: 4,
    });
    let res = sim
        .client
        .post(sim.url("/runway/pro/generate"))
        .json(&reverse_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "4");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], 429);
    s.push_fault(Fault::RateLimit {
        retry_after_secs: 4,
    });
    let res = sim
        .client
        .post(sim.url("/api/v1/runway/generate"))
        .json(&quickstart_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["retry-after"], "4");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], 429);

    // 503: reverse's 503; quick-start's 455 (maintenance). 500: both an HTTP 500.
    s.push_fault(Fault::ServerError { status: 503 });
    assert_eq!(sim.reverse("generate", &reverse_body("x")).await.0, 503);
    s.push_fault(Fault::ServerError { status: 503 });
    assert_eq!(sim.quickstart(&quickstart_body("x")).await.1["code"], 455);
    s.push_fault(Fault::ServerError { status: 500 });
    assert_eq!(sim.quickstart(&quickstart_body("x")).await.0, 500);
    assert_eq!(sim.stats().await.tasks_created, 0);

    // Out of credit: Runway's 400, reverse's 402, quick-start's code 402; nothing created.
    s.push_fault(Fault::OutOfCredit);
    let res = sim
        .post("image_to_video", &i2v_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "You do not have enough credits to run this task."
    );
    let (status, v) = sim
        .reverse("generate", &reverse_body("x [sim:out_of_credit]"))
        .await;
    assert_eq!((status, &v["msg"]), (402, &json!("insufficient points")));
    let (status, v) = sim
        .quickstart(&quickstart_body("[sim:out_of_credit]"))
        .await;
    assert_eq!((status, &v["code"]), (200, &json!(402)));

    // Moderation: the format's rejection.
    let (status, v) = sim
        .reverse("generate", &reverse_body("[sim:moderation]"))
        .await;
    assert_eq!((status, &v["code"]), (400, &json!(400)));
    let (_, v) = sim.quickstart(&quickstart_body("[sim:moderation]")).await;
    assert_eq!(v["code"], 400);
    assert_eq!(sim.stats().await.tasks_created, 0);

    // Accept then 500: the task exists behind the error.
    let (status, _) = sim
        .reverse("generate", &reverse_body("[sim:500_after_accept]"))
        .await;
    assert_eq!(status, 500);
    assert_eq!(sim.stats().await.tasks_created, 1);
    // Reset after accept: no answer at all, a task.
    s.push_fault(Fault::ResetAfterAccept);
    assert!(sim
        .client
        .post(sim.url("/api/v1/runway/generate"))
        .json(&quickstart_body("x"))
        .send()
        .await
        .is_err());
    assert_eq!(sim.stats().await.tasks_created, 2);

    // A task failing mid-run: status "2" with the message and a refund; quick-start's `fail`.
    let (_, v) = sim
        .reverse("generate", &reverse_body("[sim:fail=SAFETY.OUTPUT.VIDEO]"))
        .await;
    let id = v["data"]["task_id"].as_str().unwrap().to_string();
    let done = &sim.feed_until(&id, &["2", "3"]).await.pop().unwrap()["data"];
    assert_eq!(
        (&done["status"], &done["state"]),
        (&json!("2"), &json!("failed"))
    );
    assert_eq!(done["refund"], "1");
    assert!(
        done["msg"].as_str().unwrap().contains("moderation"),
        "{done}"
    );
    let (_, v) = sim
        .quickstart(&quickstart_body("[sim:fail=INTERNAL]"))
        .await;
    let id = v["data"]["taskId"].as_str().unwrap().to_string();
    let done = &sim
        .detail_until(&id, &["success", "fail"])
        .await
        .pop()
        .unwrap()["data"];
    assert_eq!(
        (&done["state"], &done["failCode"]),
        (&json!("fail"), &json!(500))
    );
    assert!(!done["failMsg"].as_str().unwrap().is_empty());
    assert!(done["videoInfo"].is_null());

    let stats = sim.stats().await;
    assert_eq!(stats.creates_by_format["runway"], 1);
    assert_eq!(stats.creates_by_format["reverse"], 6);
    assert_eq!(stats.creates_by_format["quickstart"], 7);
}

#[tokio::test]
async fn throttled_tasks_show_as_status_0_throttled_and_queueing() {
    let sim = start(SimConfig {
        max_concurrent: Some(1),
        run_seconds: 1.0,
        ..quick()
    })
    .await;
    let (_, first) = sim.reverse("generate", &reverse_body("1")).await;
    let (_, second) = sim.reverse("generate", &reverse_body("2")).await;
    let (_, third) = sim.quickstart(&quickstart_body("3")).await;
    assert_eq!(first["data"]["state"], "pending");
    assert_eq!(
        (&second["data"]["status"], &second["data"]["state"]),
        (&json!("0"), &json!("throttled"))
    );
    let third = third["data"]["taskId"].as_str().unwrap().to_string();
    assert_eq!(sim.detail(&third).await["data"]["state"], "queueing");
    // Each still finishes, one at a time.
    sim.detail_until(&third, &["success"]).await;
    assert_eq!(sim.stats().await.peak_concurrent, 1);
}

#[tokio::test]
async fn callbacks_follow_each_formats_rules() {
    let (url, mut rx) = hook().await;
    let sim = start(SimConfig {
        pending_seconds: 0.1,
        run_seconds: 0.3,
        callback_hmac_key: Some("hmac-key".into()),
        ..quick()
    })
    .await;

    // Reverse: one per transition into "1", then "3"; the body is the feed's `data`.
    let mut body = reverse_body("called back");
    body["callback_url"] = json!(url);
    let (_, v) = sim.reverse("generate", &body).await;
    let id = v["data"]["task_id"].as_str().unwrap().to_string();
    let (_, running) = next_callback(&mut rx).await;
    assert_eq!(
        (&running["task_id"], &running["status"]),
        (&json!(id), &json!("1"))
    );
    let (_, done) = next_callback(&mut rx).await;
    assert_eq!(
        (&done["status"], &done["state"]),
        (&json!("3"), &json!("succeeded"))
    );
    assert!(done["video_url"].is_string());

    // Quick-start: once, at the end, snake_case, signed with §6.3's headers.
    let mut body = quickstart_body("called back");
    body["callBackUrl"] = json!(url);
    let (_, v) = sim.quickstart(&body).await;
    let id = v["data"]["taskId"].as_str().unwrap().to_string();
    let (headers, done) = next_callback(&mut rx).await;
    assert_eq!(
        (&done["code"], &done["data"]["task_id"]),
        (&json!(200), &json!(id))
    );
    let file = sim
        .client
        .get(done["data"]["video_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(&file.bytes().await.unwrap()[..], SAMPLE_MP4);
    let ts = headers["x-webhook-timestamp"].to_str().unwrap();
    let sig = headers["x-webhook-signature"].to_str().unwrap();
    {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hmac-key").unwrap();
        mac.update(format!("{id}.{ts}").as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, expected);
    }

    // A failing reverse task: "1" then "2".
    let mut body = reverse_body("[sim:fail=INTERNAL]");
    body["callback_url"] = json!(url);
    sim.reverse("generate", &body).await;
    assert_eq!(next_callback(&mut rx).await.1["status"], "1");
    let (_, failed) = next_callback(&mut rx).await;
    assert_eq!(
        (&failed["status"], &failed["refund"]),
        (&json!("2"), &json!("1"))
    );

    // Nothing more: stats count what was sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sim.stats().await.callbacks_sent < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            sim.stats().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rx.try_recv().is_err());
    let stats = sim.stats().await;
    assert_eq!((stats.callbacks_sent, stats.callbacks_failed), (5, 0));
}
