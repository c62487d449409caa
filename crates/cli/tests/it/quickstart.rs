//! The quick-start (kie.ai-style) dialect through the real server: generate (text and image) to
//! callback and record-detail, a poll-only client, extend chains from the archived last frame,
//! Aleph, errors with their codes, kie.ai's HMAC headers, and expiry.

use crate::common;

use std::time::{Duration, Instant};

use axum::routing::get;
use base64::Engine;
use common::receiver::Receiver;
use common::TestApp;
use reelay::config::Config;
use serde_json::{json, Value};

const SAMPLE_PNG: &[u8] = include_bytes!("../../../sim/assets/sample.png");
const SAMPLE_MP4: &[u8] = include_bytes!("../../../sim/assets/sample.mp4");

fn fast(c: &mut Config) {
    c.sandbox_run_seconds = 0.3;
    c.outbound_allow_cidrs = "127.0.0.1/32".into();
    c.quickstart.callback_schedule_seconds = vec![1, 1, 1];
}

/// Serves reference media on 127.0.0.1: `/a.png`, `/v.mp4`; anything else 404.
async fn media_server() -> String {
    let app = axum::Router::new()
        .route(
            "/a.png",
            get(|| async { ([("content-type", "image/png")], SAMPLE_PNG) }),
        )
        .route(
            "/v.mp4",
            get(|| async { ([("content-type", "video/mp4")], SAMPLE_MP4) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn call(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn generate(app: &TestApp, body: Value) -> Value {
    call(
        app,
        &app.key,
        reqwest::Method::POST,
        "/api/v1/runway/generate",
        Some(body),
    )
    .await
    .1
}

async fn detail(app: &TestApp, id: &str) -> Value {
    let (s, v) = call(
        app,
        &app.key,
        reqwest::Method::GET,
        &format!("/api/v1/runway/record-detail?taskId={id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    v
}

async fn wait_state(app: &TestApp, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = detail(app, id).await;
        if v["data"]["state"] == state {
            return v["data"].clone();
        }
        assert!(Instant::now() < deadline, "{id} never reached {state}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_callback(rx: &Receiver, id: &str) -> common::receiver::Seen {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = rx.seen().into_iter().find(|s| {
            let b = s.json();
            b["data"]["task_id"] == id || b["taskId"] == id
        }) {
            return s;
        }
        assert!(Instant::now() < deadline, "no callback for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn task_id(v: &Value) -> String {
    assert_eq!(v["code"], 200, "{v}");
    assert_eq!(v["msg"], "success");
    v["data"]["taskId"].as_str().unwrap().to_string()
}

fn assert_detail_types(d: &Value) {
    assert!(d["taskId"].is_string());
    assert!(d["parentTaskId"].is_string());
    assert!(d["generateParam"]["prompt"].is_string());
    assert!(d["generateParam"]["imageUrl"].is_string());
    assert!(d["generateParam"]["expandPrompt"].is_boolean());
    assert!(["wait", "queueing", "generating", "success", "fail"]
        .contains(&d["state"].as_str().unwrap()));
    let t = d["generateTime"].as_str().unwrap();
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap();
    assert!(d["failCode"].is_null() || d["failCode"].is_u64());
    assert!(d["failMsg"].is_string());
    assert!(d["expireFlag"].is_u64());
}

#[tokio::test]
async fn text_and_image_to_video_from_submit_to_callback_and_record_detail() {
    let rx = Receiver::start(0, Duration::ZERO).await;
    let media = media_server().await;
    let app = TestApp::spawn_with(fast).await;

    let text = task_id(
        &generate(
            &app,
            json!({"prompt": "A fluffy orange cat dancing", "duration": 5, "quality": "720p",
                   "aspectRatio": "16:9", "waterMark": "", "callBackUrl": rx.url}),
        )
        .await,
    );
    let image_url = format!("{media}/a.png");
    let image = task_id(
        &generate(
            &app,
            json!({"prompt": "The character walks", "imageUrl": image_url, "duration": "10",
                   "quality": "720p", "expandPrompt": true, "callBackUrl": rx.url}),
        )
        .await,
    );
    for (id, prompt, img, expand) in [
        (&text, "A fluffy orange cat dancing", "", false),
        (&image, "The character walks", image_url.as_str(), true),
    ] {
        let cb = wait_callback(&rx, id).await;
        let body = cb.json();
        assert_eq!(body["code"], 200);
        assert_eq!(body["msg"], "All generated successfully.");
        for k in ["task_id", "video_id", "video_url", "image_url"] {
            assert!(body["data"][k].is_string(), "{k}: {body}");
        }
        assert!(
            cb.header("webhook-signature").is_some(),
            "Standard Webhooks headers always"
        );
        assert!(
            cb.header("x-webhook-signature").is_none(),
            "no kie.ai HMAC without a key"
        );

        let d = wait_state(&app, id, "success").await;
        assert_detail_types(&d);
        assert_eq!(d["taskId"], id.as_str());
        assert_eq!(d["parentTaskId"], "");
        assert_eq!(
            d["generateParam"],
            json!({"prompt": prompt, "imageUrl": img, "expandPrompt": expand})
        );
        assert_eq!(d["failCode"], Value::Null);
        assert_eq!(d["failMsg"], "");
        assert_eq!(d["expireFlag"], 0);
        let info = &d["videoInfo"];
        assert_eq!(info["taskId"], id.as_str());
        assert_eq!(info["videoId"], body["data"]["video_id"]);
        assert_eq!(info["videoUrl"], body["data"]["video_url"]);
        assert_eq!(info["imageUrl"], body["data"]["image_url"]);
        let video = app
            .client
            .get(info["videoUrl"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(video.status(), 200);
    }
    // The image went upstream inline, with the ratio its shape asked for.
    let t = app
        .server
        .store
        .get_task_by_id(&image)
        .await
        .unwrap()
        .unwrap();
    assert!(t.spec.input["promptImage"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert_eq!(t.spec.input["duration"], 10);
}

#[tokio::test]
async fn a_client_that_only_polls_sees_wait_to_success() {
    let app = TestApp::spawn_with(fast).await;
    let id = task_id(
        &generate(
            &app,
            json!({"prompt": "p", "model": "runway-duration-5-generate", "aspectRatio": "9:16"}),
        )
        .await,
    );
    let first = detail(&app, &id).await["data"].clone();
    assert_detail_types(&first);
    assert!(["wait", "queueing", "generating"].contains(&first["state"].as_str().unwrap()));
    assert!(first["videoInfo"].is_null());
    let done = wait_state(&app, &id, "success").await;
    assert!(done["videoInfo"]["videoUrl"].is_string());
    let t = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
    assert_eq!(t.spec.input["duration"], 5, "duration from the model name");
    assert_eq!(t.spec.input["ratio"], "720:1280");
}

#[tokio::test]
async fn extend_chains_continue_from_the_archived_last_frame() {
    let rx = Receiver::start(0, Duration::ZERO).await;
    let app = TestApp::spawn_with(fast).await;
    let root = task_id(
        &generate(
            &app,
            json!({"prompt": "start", "duration": 5, "quality": "720p", "aspectRatio": "16:9"}),
        )
        .await,
    );
    wait_state(&app, &root, "success").await;
    let mut parent = root.clone();
    for round in 0..2 {
        let (s, v) = call(
            &app,
            &app.key,
            reqwest::Method::POST,
            "/api/v1/runway/extend",
            Some(
                json!({"taskId": parent, "prompt": format!("continue {round}"), "quality": "720p",
                        "waterMark": "", "callBackUrl": rx.url}),
            ),
        )
        .await;
        assert_eq!(s, 200);
        let child = task_id(&v);
        let d = wait_state(&app, &child, "success").await;
        assert_detail_types(&d);
        assert_eq!(d["parentTaskId"], parent.as_str());
        // The extension started from the parent's archived last frame: the frame reelay serves
        // is exactly the image that went upstream as the first frame.
        let frame_url = d["generateParam"]["imageUrl"].as_str().unwrap().to_string();
        let served = app.client.get(&frame_url).send().await.unwrap();
        assert_eq!(served.status(), 200);
        let served = served.bytes().await.unwrap();
        let t = app
            .server
            .store
            .get_task_by_id(&child)
            .await
            .unwrap()
            .unwrap();
        let inline = t.spec.input["promptImage"].as_str().unwrap();
        let (_, b64) = inline.split_once(",").unwrap();
        let sent = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(sent, served.to_vec());
        let p = app
            .server
            .store
            .get_task_by_id(&parent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            t.spec.input["ratio"],
            json!(p.spec.input["ratio"]),
            "same ratio as the parent"
        );
        let cb = wait_callback(&rx, &child).await.json();
        assert_eq!(cb["code"], 200);
        parent = child;
    }
}

#[tokio::test]
async fn extend_refuses_missing_foreign_and_failed_parents() {
    let app = TestApp::spawn_with(fast).await;
    let ext = |key: String, id: String| {
        let app = &app;
        async move {
            call(
                app,
                &key,
                reqwest::Method::POST,
                "/api/v1/runway/extend",
                Some(json!({"taskId": id, "prompt": "more", "quality": "720p"})),
            )
            .await
        }
    };
    let (s, v) = ext(
        app.key.clone(),
        "01a20896-0000-7000-8000-000000000000".into(),
    )
    .await;
    assert_eq!((s, v["code"].clone()), (200, json!(404)));
    let mine = task_id(
        &generate(
            &app,
            json!({"prompt": "x", "duration": 5, "aspectRatio": "1:1"}),
        )
        .await,
    );
    wait_state(&app, &mine, "success").await;
    let other = app.other_account().await;
    let (_, v) = ext(other, mine.clone()).await;
    assert_eq!(v["code"], 404, "another account's task is not found: {v}");
    let failed = task_id(&generate(&app, json!({"prompt": "x [sim:fail=SAFETY.INPUT.TEXT]", "duration": 5, "aspectRatio": "16:9"})).await);
    let d = wait_state(&app, &failed, "fail").await;
    assert_eq!(d["failCode"], 400);
    assert!(d["failMsg"].as_str().unwrap().len() > 3);
    let (_, v) = ext(app.key.clone(), failed).await;
    assert_eq!(v["code"], 422, "{v}");
}

#[tokio::test]
async fn errors_have_the_documented_codes_and_create_nothing() {
    let media = media_server().await;
    let app = TestApp::spawn_with(fast).await;
    let cases = vec![
        (
            json!({"prompt": "x", "duration": 10, "quality": "1080p", "aspectRatio": "16:9"}),
            422,
            "1080p",
        ),
        (json!({"prompt": "x", "duration": 5}), 422, "aspectRatio"),
        (
            json!({"prompt": "x", "duration": 5, "aspectRatio": "21:9"}),
            422,
            "aspectRatio",
        ),
        (
            json!({"prompt": "x", "duration": 8, "aspectRatio": "16:9"}),
            422,
            "duration",
        ),
        (
            json!({"prompt": "x", "aspectRatio": "16:9"}),
            422,
            "duration",
        ),
        (
            json!({"prompt": "x", "duration": 5, "model": "runway-duration-10-generate", "aspectRatio": "16:9"}),
            422,
            "model",
        ),
        (
            json!({"prompt": "x", "duration": 5, "quality": "4k", "aspectRatio": "16:9"}),
            422,
            "quality",
        ),
        (
            json!({"prompt": "x".repeat(1801), "duration": 5, "aspectRatio": "16:9"}),
            422,
            "1800",
        ),
        (json!({"duration": 5, "aspectRatio": "16:9"}), 422, "prompt"),
        (
            json!({"prompt": "x", "duration": 5, "aspectRatio": "16:9", "fps": 24}),
            422,
            "unknown field fps",
        ),
        (
            json!({"prompt": "x", "duration": 5, "aspectRatio": "16:9", "callBackUrl": "http://10.0.0.1/h"}),
            422,
            "callBackUrl",
        ),
        (
            json!({"prompt": "x", "duration": 5, "imageUrl": format!("{media}/missing.png")}),
            451,
            "imageUrl",
        ),
        (
            json!({"prompt": "x", "duration": 5, "imageUrl": "http://10.0.0.1/a.png"}),
            451,
            "imageUrl",
        ),
        (
            json!({"prompt": "x", "duration": 5, "imageUrl": "http://192.168.1.1/a.png"}),
            451,
            "refused",
        ),
        (
            json!({"prompt": "x", "duration": 5, "imageUrl": format!("{media}/v.mp4")}),
            422,
            "imageUrl",
        ),
    ];
    for (body, code, needle) in cases {
        let (s, v) = call(
            &app,
            &app.key,
            reqwest::Method::POST,
            "/api/v1/runway/generate",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, 200, "business errors answer HTTP 200: {v}");
        assert_eq!(v["code"], code, "{body}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(needle), "{body}: {v}");
        assert!(v["data"].is_null());
    }
    // Bad key: 401 in the envelope.
    let (s, v) = call(
        &app,
        "key_nope",
        reqwest::Method::POST,
        "/api/v1/runway/generate",
        Some(json!({"prompt": "x", "duration": 5, "aspectRatio": "16:9"})),
    )
    .await;
    assert_eq!((s, v["code"].clone()), (200, json!(401)));
    // Short credits: 402 before any hold, no task.
    let (account, poor) = app.new_account("poor", 1).await;
    let (_, v) = call(
        &app,
        &poor,
        reqwest::Method::POST,
        "/api/v1/runway/generate",
        Some(json!({"prompt": "x", "duration": 5, "aspectRatio": "16:9"})),
    )
    .await;
    assert_eq!(v["code"], 402, "{v}");
    let a = app.account(&account).await;
    assert_eq!((a.credits_available, a.credits_held), (1, 0));
    // Unknown id and unknown route.
    let v = detail(&app, "01a20896-0000-7000-8000-000000000000").await;
    assert_eq!(v["code"], 404);
    let (s, v) = call(
        &app,
        &app.key,
        reqwest::Method::POST,
        "/api/v1/runway/record-info",
        Some(json!({})),
    )
    .await;
    assert_eq!((s, v["code"].clone()), (200, json!(404)));
    let org: Value = app.get("/v1/organization").await.json().await.unwrap();
    assert_eq!(org["usage"]["models"], json!({}), "nothing was created");
}

#[tokio::test]
async fn aleph_runs_to_record_info_and_its_own_callback() {
    let rx = Receiver::start(0, Duration::ZERO).await;
    let media = media_server().await;
    let app = TestApp::spawn_with(fast).await;
    let (s, v) = call(&app, &app.key, reqwest::Method::POST, "/api/v1/aleph/generate",
        Some(json!({"prompt": "watercolor", "videoUrl": format!("{media}/v.mp4"), "aspectRatio": "16:9",
                    "seed": 123456, "referenceImage": format!("{media}/a.png"), "waterMark": "",
                    "uploadCn": false, "callBackUrl": rx.url}))).await;
    assert_eq!(s, 200);
    let id = task_id(&v);
    let cb = wait_callback(&rx, &id).await.json();
    assert_eq!(cb["code"], 200);
    assert_eq!(cb["taskId"], id.as_str());
    assert!(cb["data"]["result_video_url"].is_string());
    assert!(cb["data"]["result_image_url"].is_string());
    let (_, v) = call(
        &app,
        &app.key,
        reqwest::Method::GET,
        &format!("/api/v1/aleph/record-info?taskId={id}"),
        None,
    )
    .await;
    let d = &v["data"];
    assert_eq!(d["taskId"], id.as_str());
    assert_eq!(d["successFlag"], 1);
    assert_eq!(d["errorCode"], 0);
    assert_eq!(d["errorMessage"], "");
    assert_eq!(
        d["response"]["resultVideoUrl"],
        cb["data"]["result_video_url"]
    );
    let params: Value = serde_json::from_str(d["paramJson"].as_str().unwrap()).unwrap();
    assert_eq!(params["prompt"], "watercolor");
    assert!(d["createTime"].as_str().unwrap().ends_with('Z'));
    assert!(d["completeTime"].as_str().unwrap().ends_with('Z'));
    // Aleph tasks are not generate tasks, and the other way round.
    assert_eq!(detail(&app, &id).await["code"], 404);
    // Unfetchable video: 451.
    let (_, v) = call(
        &app,
        &app.key,
        reqwest::Method::POST,
        "/api/v1/aleph/generate",
        Some(json!({"prompt": "x", "videoUrl": format!("{media}/gone.mp4")})),
    )
    .await;
    assert_eq!(v["code"], 451, "{v}");
    let (_, v) = call(
        &app,
        &app.key,
        reqwest::Method::POST,
        "/api/v1/aleph/generate",
        Some(json!({"prompt": "x", "videoUrl": format!("{media}/v.mp4"), "aspectRatio": "2:1"})),
    )
    .await;
    assert_eq!(v["code"], 422);
}

#[tokio::test]
async fn kie_hmac_headers_when_the_account_set_a_key_and_the_dialects_retry_schedule() {
    let rx = Receiver::start(1, Duration::ZERO).await;
    let app = TestApp::spawn_with(fast).await;
    let accounts = app.server.store.list_accounts().await.unwrap();
    let default = accounts
        .iter()
        .find(|a| a.name == "default")
        .unwrap()
        .id
        .clone();
    let admin = |body: Value, token: &str| {
        let app = &app;
        let url = app.url(&format!("/admin/v1/accounts/{default}/webhook-hmac-key"));
        let token = token.to_string();
        async move {
            let resp = app
                .client
                .put(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(
        admin(json!({"key": "s3cret-k3y-0123456"}), "wrong").await.0,
        401
    );
    assert_eq!(
        admin(json!({"key": "short"}), common::ADMIN_TOKEN).await.0,
        400
    );
    let (s, v) = admin(json!({"key": "s3cret-k3y-0123456"}), common::ADMIN_TOKEN).await;
    assert_eq!((s, v["hmac_key_set"].clone()), (200, json!(true)), "{v}");
    let id = task_id(&generate(&app, json!({"prompt": "signed", "duration": 5, "aspectRatio": "16:9", "callBackUrl": rx.url})).await);
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen: Vec<_> = rx
            .seen()
            .into_iter()
            .filter(|s| s.json()["data"]["task_id"] == id.as_str())
            .collect();
        if seen.len() >= 2 {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "retry did not come: {}",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The first attempt failed (500); the retry came about 1 s later, per this dialect's schedule.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(700));
    assert_eq!(seen[0].id, seen[1].id);
    let msgs = app.server.store.webhook_messages(&id).await.unwrap();
    assert_eq!(msgs[0].schedule, Some(vec![1, 1, 1]));
    for s in &seen {
        let ts = s.header("x-webhook-timestamp").unwrap();
        let expected =
            reelay_engine::signing::kie_signature("s3cret-k3y-0123456", &id, ts.parse().unwrap());
        assert_eq!(s.header("x-webhook-signature"), Some(expected.as_str()));
        assert!(s.header("webhook-signature").is_some());
    }
}

#[tokio::test]
async fn after_retention_expire_flag_turns_1_the_urls_stop_and_extend_refuses() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.retention_seconds = 2;
        c.media.sweep_interval_ms = 100;
    })
    .await;
    let id = task_id(
        &generate(
            &app,
            json!({"prompt": "brief", "duration": 5, "aspectRatio": "16:9"}),
        )
        .await,
    );
    let d = wait_state(&app, &id, "success").await;
    assert_eq!(d["expireFlag"], 0);
    let video = d["videoInfo"]["videoUrl"].as_str().unwrap().to_string();
    let poster = d["videoInfo"]["imageUrl"].as_str().unwrap().to_string();
    assert_eq!(app.client.get(&video).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(&poster).send().await.unwrap().status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    let expired = loop {
        let d = detail(&app, &id).await["data"].clone();
        if d["expireFlag"] == 1 {
            break d;
        }
        assert!(Instant::now() < deadline, "expireFlag never turned 1: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        expired["state"], "success",
        "expiry keeps the state (§10.1)"
    );
    // The media are gone: the URLs handed out before answer 404 once swept.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.client.get(&video).send().await.unwrap().status() != 404 {
        assert!(
            Instant::now() < deadline,
            "media still served after retention"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, v) = call(
        &app,
        &app.key,
        reqwest::Method::POST,
        "/api/v1/runway/extend",
        Some(json!({"taskId": id, "prompt": "more", "quality": "720p"})),
    )
    .await;
    assert_eq!(v["code"], 422, "an expired parent cannot be extended: {v}");
    assert!(v["msg"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn the_hmac_key_command_sets_and_clears_the_key() {
    let app = TestApp::spawn_with(fast).await;
    let accounts = app.server.store.list_accounts().await.unwrap();
    let default = accounts
        .iter()
        .find(|a| a.name == "default")
        .unwrap()
        .id
        .clone();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
            .arg("--data-dir")
            .arg(app.dir.path())
            .args(args)
            .env("REELAY_LOG", "warn")
            .envs(crate::common::process::database_env(app.dir.path()))
            .output()
            .unwrap()
    };
    let out = run(&[
        "webhook",
        "hmac-key",
        "--account",
        &default,
        "--key",
        "0123456789abcdef-key",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = app
        .server
        .store
        .webhook_secrets(&default)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.hmac_key.as_deref(), Some("0123456789abcdef-key"));
    let out = run(&[
        "webhook",
        "hmac-key",
        "--account",
        &default,
        "--key",
        "short",
    ]);
    assert!(!out.status.success());
    let out = run(&["webhook", "hmac-key", "--account", "acct_nope", "--clear"]);
    assert!(!out.status.success());
    let out = run(&["webhook", "hmac-key", "--account", &default, "--clear"]);
    assert!(out.status.success());
    let s = app
        .server
        .store
        .webhook_secrets(&default)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.hmac_key, None);
}

/// `waterMark` text is drawn into the archived video (and so shows in its poster and frames).
#[tokio::test]
async fn watermark_text_is_drawn_into_the_archived_video() {
    if std::env::var("REELAY_REQUIRE_FFMPEG").is_err()
        && std::process::Command::new("ffmpeg")
            .arg("-version")
            .output()
            .is_err()
    {
        eprintln!("SKIPPED: ffmpeg is not installed (CI sets REELAY_REQUIRE_FFMPEG=1)");
        return;
    }
    let app = TestApp::spawn_with(fast).await;
    let plain = task_id(
        &generate(
            &app,
            json!({"prompt": "same", "duration": 5, "aspectRatio": "16:9", "waterMark": ""}),
        )
        .await,
    );
    let marked = task_id(&generate(&app, json!({"prompt": "same", "duration": 5, "aspectRatio": "16:9", "waterMark": "reelay: 'quoted' \\ 100% {x}"})).await);
    let a = wait_state(&app, &plain, "success").await;
    let b = wait_state(&app, &marked, "success").await;
    let objects = |id: String| {
        let app = &app;
        async move { app.server.store.media_objects(&id).await.unwrap() }
    };
    let video_sha = |objs: &Vec<reelay_store::MediaObject>| {
        objs.iter()
            .find(|o| o.kind == reelay_store::MediaKind::Output)
            .unwrap()
            .sha256
            .clone()
    };
    let (pa, pb) = (objects(plain.clone()).await, objects(marked.clone()).await);
    assert_ne!(
        video_sha(&pa),
        video_sha(&pb),
        "the watermarked video is another file"
    );
    let fetch = |url: &str| {
        let app = &app;
        let url = url.to_string();
        async move {
            let r = app.client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        }
    };
    // Both posters exist (ffmpeg read the watermarked file) and differ (the text is drawn).
    let poster_a = fetch(a["videoInfo"]["imageUrl"].as_str().unwrap()).await;
    let poster_b = fetch(b["videoInfo"]["imageUrl"].as_str().unwrap()).await;
    assert!(!poster_b.is_empty());
    assert_ne!(poster_a, poster_b);
    let t = app
        .server
        .store
        .get_task_by_id(&marked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.spec.watermark.as_deref(),
        Some("reelay: 'quoted' \\ 100% {x}")
    );
}
