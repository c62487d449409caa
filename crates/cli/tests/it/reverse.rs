//! The reverse (reseller) dialect through the real server: every route from request to
//! callback, the feed under three prefixes, a client following the resellers' "best
//! practices" literally, validation and auth variants, points and refunds.

use crate::common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::TestApp;
use reelay::config::Config;
use serde_json::{json, Value};

fn fast(c: &mut Config) {
    c.sandbox_run_seconds = 0.3;
    c.outbound_allow_cidrs = "127.0.0.1/32".into();
    c.webhooks.schedule_seconds = vec![0.2, 0.2, 0.2];
    c.webhooks.jitter = 0.0;
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    (status, v)
}

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {}", app.key);
    call(app, reqwest::Method::POST, path, Some(&auth), Some(body)).await
}

/// Every field of the feed/callback object, with its JSON type (§6.2: strings stay strings).
fn assert_task_shape(d: &Value) {
    for k in [
        "task_id",
        "state",
        "status",
        "prompt",
        "prompt_en",
        "point",
        "refund",
        "create_time",
        "update_time",
    ] {
        assert!(d[k].is_string(), "{k} must be a string: {d}");
    }
    for k in ["video_url", "poster", "last_frame", "msg"] {
        assert!(
            d[k].is_string() || d[k].is_null(),
            "{k} must be a string or null: {d}"
        );
    }
    assert!(["0", "1", "2", "3"].contains(&d["status"].as_str().unwrap()));
    d["create_time"].as_str().unwrap().parse::<i64>().unwrap();
    d["update_time"].as_str().unwrap().parse::<i64>().unwrap();
    d["point"].as_str().unwrap().parse::<i64>().unwrap();
}

fn assert_envelope(v: &Value, code: i64) {
    assert_eq!(v["code"], code, "{v}");
    assert!(v["msg"].is_string());
    assert!(v["exec_time"].is_f64(), "{v}");
    assert!(v.get("data").is_some());
}

/// Callbacks received for one task, in arrival order.
fn callbacks_for(rx: &Receiver, task: &str) -> Vec<Value> {
    rx.seen()
        .iter()
        .map(|s| s.json())
        .filter(|b| b["task_id"] == task)
        .collect()
}

async fn wait_callbacks(rx: &Receiver, task: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = callbacks_for(rx, task);
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "callbacks for {task}: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_route_runs_from_request_to_callback() {
    let rx = Receiver::start(0, Duration::ZERO).await;
    let app = TestApp::spawn_with(fast).await;
    let cases = [
        (
            "/runway/pro/generate",
            json!({"callback_url": rx.url, "ratio": "16:9", "prompt": "a little kitten chasing yarn",
                   "style": "cinematic", "model": "gen4",
                   "options": {"seconds": 10, "motion_vector": {"x": 0, "y": 0.4, "z": 0, "r": -6, "bg_x_pan": 0, "bg_y_pan": 0}}}),
            "a little kitten chasing yarn",
        ),
        (
            "/runway/pro/generate",
            json!({"callback_url": rx.url, "image": "https://cdn.example.com/in/burger-boy.jpeg",
                   "style": "cinematic", "model": "gen4", "prompt": "he smiles",
                   "options": {"seconds": 5, "image_as_end_frame": false, "flip": false,
                               "motion_vector": {"x": -6.2, "y": 0, "z": 0, "r": 0, "bg_x_pan": 0, "bg_y_pan": 0}}}),
            "he smiles",
        ),
        (
            "/api/video/runway/pro/video2video",
            json!({"callback_url": rx.url, "video": "https://cdn.example.com/in/skate.mp4", "model": "gen4",
                   "prompt": "pixelated style", "options": {"structure_transformation": 0.5, "flip": true, "seconds": 5}}),
            "pixelated style",
        ),
        (
            "/runway/v1/pro/act_one",
            json!({"video": "https://cdn.example.com/in/performance.mp4",
                   "image": "https://cdn.example.com/in/character.jpeg", "callback_url": rx.url}),
            "",
        ),
    ];
    for (path, body, prompt) in cases {
        let (status, v) = post(&app, path, &body).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_envelope(&v, 200);
        assert_eq!(v["msg"], "success");
        let d = &v["data"];
        assert_task_shape(d);
        assert_eq!(
            (d["status"].as_str(), d["state"].as_str()),
            (Some("0"), Some("pending"))
        );
        assert_eq!(d["prompt"], prompt);
        let id = d["task_id"].as_str().unwrap().to_string();
        let point = d["point"].as_str().unwrap().parse::<i64>().unwrap();
        assert!(point > 0);

        let got = wait_callbacks(&rx, &id, 2).await;
        let statuses: Vec<&str> = got.iter().map(|c| c["status"].as_str().unwrap()).collect();
        assert_eq!(
            statuses,
            ["1", "3"],
            "{path}: one callback per transition into 1 and 3"
        );
        for c in &got {
            assert_task_shape(c);
            assert!(
                c.get("code").is_none(),
                "the callback is the bare data object"
            );
        }
        let done = &got[1];
        assert_eq!(done["state"], "succeeded");
        assert_eq!(done["refund"], "0");
        assert_eq!(done["point"], point.to_string());
        assert_eq!(done["prompt_en"], prompt);
        let video = done["video_url"].as_str().unwrap();
        assert!(
            video.starts_with(&app.server.base_url),
            "our own archived URL: {video}"
        );
        let media = app.client.get(video).send().await.unwrap();
        assert_eq!(media.status(), 200);

        // The feed says the same, under each prefix, by POST and by GET.
        for prefix in ["/runway", "/api/video/runway", "/runway/v1"] {
            let (s, f) = post(&app, &format!("{prefix}/feed"), &json!({"task_id": id})).await;
            assert_eq!(s, 200);
            assert_envelope(&f, 200);
            assert_eq!(f["data"]["status"], "3");
            assert_eq!(f["data"]["video_url"], done["video_url"]);
            let auth = format!("Bearer {}", app.key);
            let (s, g) = call(
                &app,
                reqwest::Method::GET,
                &format!("{prefix}/feed?task_id={id}"),
                Some(&auth),
                None,
            )
            .await;
            assert_eq!(s, 200);
            assert_eq!(g["data"], f["data"]);
        }
    }
}

/// The resellers' advice, followed literally: submit, check `code == 200`, wait for the
/// callback, fall back to polling the feed.
#[tokio::test]
async fn a_best_practices_client_works_unchanged() {
    let rx = Receiver::start(0, Duration::ZERO).await;
    let app = TestApp::spawn_with(fast).await;
    let (_, v) = post(
        &app,
        "/runway/pro/generate",
        &json!({"callback_url": rx.url, "prompt": "a cat", "model": "gen3", "options": {"seconds": 5}}),
    )
    .await;
    assert_eq!(v["code"], 200, "decide success by code: {v}");
    let id = v["data"]["task_id"].as_str().unwrap().to_string();
    // Poll-only fallback, as a client whose callback endpoint is down would.
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let (_, f) = post(&app, "/runway/feed", &json!({"task_id": id})).await;
        assert_eq!(f["code"], 200);
        match f["data"]["status"].as_str().unwrap() {
            "3" => break f["data"].clone(),
            "2" => panic!("failed: {f}"),
            _ => {}
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(done["video_url"].is_string());
    let cb = wait_callbacks(&rx, &id, 2).await;
    assert_eq!(
        cb[1], done,
        "the callback body is the feed's data at that moment"
    );
}

#[tokio::test]
async fn a_failed_upstream_task_is_status_2_refunded_and_the_callback_says_so() {
    let rx = Receiver::start(0, Duration::ZERO).await;
    let app = TestApp::spawn_with(fast).await;
    let (account, key) = app.new_account("r", 1_000).await;
    let auth = format!("Bearer {key}");
    let (_, v) = call(
        &app,
        reqwest::Method::POST,
        "/runway/pro/generate",
        Some(&auth),
        Some(&json!({"callback_url": rx.url, "prompt": "a cat [sim:fail=SAFETY.INPUT.TEXT]"})),
    )
    .await;
    assert_eq!(v["code"], 200, "{v}");
    let id = v["data"]["task_id"].as_str().unwrap().to_string();
    let point = v["data"]["point"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = callbacks_for(&rx, &id);
        if got.iter().any(|c| c["status"] == "2") {
            break got;
        }
        assert!(Instant::now() < deadline, "{got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let last = got.last().unwrap();
    assert_eq!(last["status"], "2", "{got:?}");
    assert_eq!(last["state"], "failed");
    assert_eq!(last["refund"], "1");
    assert_eq!(last["point"], point, "point stays the charged amount");
    assert!(last["msg"].as_str().unwrap().len() > 3);
    assert!(last["video_url"].is_null());
    let a = app.account(&account).await;
    assert_eq!(
        (a.credits_available, a.credits_held),
        (1_000, 0),
        "balance restored"
    );
    let (_, f) = call(
        &app,
        reqwest::Method::POST,
        "/runway/feed",
        Some(&auth),
        Some(&json!({"task_id": id})),
    )
    .await;
    assert_eq!(f["data"]["refund"], "1");
    assert_eq!(f["data"]["status"], "2");
}

#[tokio::test]
async fn auth_variants_and_tenant_isolation() {
    let app = TestApp::spawn_with(fast).await;
    let body = json!({"prompt": "x"});
    let bearer = format!("Bearer {}", app.key);
    let bare = app.key.clone();
    for auth in [Some(bearer.as_str()), Some(bare.as_str())] {
        let (s, v) = call(
            &app,
            reqwest::Method::POST,
            "/runway/pro/generate",
            auth,
            Some(&body),
        )
        .await;
        assert_eq!((s, &v["code"]), (200, &json!(200)), "{v}");
    }
    // The key in the body, when there is no Authorization header (DuomiAPI clients).
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/runway/pro/generate",
        None,
        Some(&json!({"prompt": "x", "key": app.key})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["data"]["task_id"].as_str().unwrap().to_string();
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/runway/feed",
        None,
        Some(&json!({"task_id": id, "key": app.key})),
    )
    .await;
    assert_eq!((s, v["code"].clone()), (200, json!(200)));

    for (auth, body) in [
        (None, json!({"prompt": "x"})),
        (Some("Bearer key_nope"), json!({"prompt": "x"})),
        (Some("key_nope"), json!({"prompt": "x"})),
        // A header wins over the body: a wrong header is not rescued by a right body key.
        (Some("Bearer wrong"), json!({"prompt": "x", "key": app.key})),
    ] {
        let (s, v) = call(
            &app,
            reqwest::Method::POST,
            "/runway/pro/generate",
            auth,
            Some(&body),
        )
        .await;
        assert_eq!(s, 401);
        assert_envelope(&v, 401);
        assert_eq!(v["msg"], "invalid api key");
        assert!(v["data"].is_null());
    }

    // Another account's id and an unknown id get the same answer.
    let other = app.other_account().await;
    let theirs = format!("Bearer {other}");
    let (s1, v1) = call(
        &app,
        reqwest::Method::POST,
        "/runway/feed",
        Some(&theirs),
        Some(&json!({"task_id": id})),
    )
    .await;
    let (s2, v2) = post(
        &app,
        "/runway/feed",
        &json!({"task_id": "01a20896-0000-7000-8000-000000000000"}),
    )
    .await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(v1["msg"], "task_not_exist");
    assert_eq!(v1["msg"], v2["msg"]);
    assert_eq!(v1["data"], v2["data"]);
}

#[tokio::test]
async fn every_validation_error_answers_in_the_envelope_and_creates_nothing() {
    let app = TestApp::spawn_with(fast).await;
    let g = "/runway/pro/generate";
    let cases: Vec<(&str, Value, &str)> = vec![
        (g, json!({}), "prompt is required"),
        (g, json!({"prompt": 7}), "prompt must be a string"),
        (g, json!({"prompt": "x", "ratio": "wide"}), "ratio"),
        (g, json!({"prompt": "x", "ratio": "1:1"}), "ratio"),
        (g, json!({"prompt": "x", "model": "gen9"}), "gen9"),
        (
            g,
            json!({"prompt": "x", "options": {"seconds": 7}}),
            "options.seconds",
        ),
        (
            g,
            json!({"prompt": "x", "options": "fast"}),
            "options must be an object",
        ),
        (
            g,
            json!({"prompt": "x", "options": {"flip": "yes"}}),
            "options.flip",
        ),
        (
            g,
            json!({"prompt": "x", "options": {"motion_vector": {"x": "left"}}}),
            "motion_vector.x",
        ),
        (
            g,
            json!({"prompt": "x", "options": {"turbo": true}}),
            "unknown field options.turbo",
        ),
        (
            g,
            json!({"prompt": "x", "colour": "red"}),
            "unknown field colour",
        ),
        (g, json!({"prompt": "x", "seed": -1}), "seed"),
        (g, json!({"image": "http://example.com/a.jpg"}), "image"),
        (g, json!({"image": "https://10.0.0.1/a.jpg"}), "image"),
        (
            g,
            json!({"prompt": "x", "last_image": "https://e.com/b.jpg"}),
            "end frame",
        ),
        (
            g,
            json!({"prompt": "x", "callback_url": "http://10.0.0.1/hook"}),
            "callback_url",
        ),
        (
            g,
            json!({"prompt": "x", "callback_url": "ftp://example.com/"}),
            "callback_url",
        ),
        (
            "/runway/pro/video2video",
            json!({"prompt": "x"}),
            "video is required",
        ),
        (
            "/runway/pro/video2video",
            json!({"video": "https://e.com/v.mp4"}),
            "prompt is required",
        ),
        (
            "/runway/pro/video2video",
            json!({"video": "https://e.com/v.mp4", "prompt": "x",
            "options": {"structure_transformation": 2}}),
            "structure_transformation",
        ),
        (
            "/runway/pro/act_one",
            json!({"video": "https://e.com/v.mp4"}),
            "image",
        ),
        (
            "/runway/pro/act_one",
            json!({"image": "https://e.com/a.jpg"}),
            "video is required",
        ),
        (
            "/runway/pro/act_one",
            json!({"video": "https://e.com/v.mp4", "image": "https://e.com/a.jpg",
            "options": {"expression_intensity": 9}}),
            "expression_intensity",
        ),
        ("/runway/feed", json!({}), "task_id is required"),
        (
            "/runway/feed",
            json!({"task_id": 5}),
            "task_id must be a string",
        ),
    ];
    for (path, body, needle) in cases {
        let (s, v) = post(&app, path, &body).await;
        assert_eq!(s, 400, "{path} {body}: {v}");
        assert_envelope(&v, 400);
        let msg = v["msg"].as_str().unwrap();
        assert!(
            msg.contains(needle),
            "{body}: {msg:?} should mention {needle:?}"
        );
        assert_eq!(v["message"], v["msg"]);
        assert!(v["data"].is_null());
    }
    // Malformed JSON, a non-object body, an unknown route, a wrong method.
    let resp = app
        .client
        .post(app.url("/runway/pro/generate"))
        .header("Authorization", format!("Bearer {}", app.key))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["msg"].as_str().unwrap().contains("malformed JSON"));
    let (s, v) = post(&app, "/runway/pro/generate", &json!(["x"])).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = post(&app, "/runway/pro/extend", &json!({})).await;
    assert_eq!((s, v["code"].clone()), (404, json!(404)));
    let auth = format!("Bearer {}", app.key);
    let (s, v) = call(
        &app,
        reqwest::Method::GET,
        "/runway/pro/generate",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!((s, v["code"].clone()), (405, json!(405)));
    // Nothing above created a task.
    let org: Value = app.get("/v1/organization").await.json().await.unwrap();
    assert_eq!(org["usage"]["models"], json!({}));
}

#[tokio::test]
async fn points_idempotency_and_strict_callback_mode() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.reverse.require_callback_url = true;
    })
    .await;
    let (s, v) = post(&app, "/runway/pro/generate", &json!({"prompt": "x"})).await;
    assert_eq!((s, v["msg"].clone()), (400, json!("callback_url_empty")));

    let (_, poor) = app.new_account("poor", 1).await;
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/runway/pro/generate",
        Some(&format!("Bearer {poor}")),
        Some(&json!({"prompt": "x", "callback_url": "https://hooks.example.com/x"})),
    )
    .await;
    assert_eq!(s, 402);
    assert_envelope(&v, 402);
    assert_eq!(v["msg"], "insufficient points");

    let body = json!({"prompt": "once", "callback_url": "https://hooks.example.com/x"});
    let send = |b: Value| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url("/runway/pro/generate"))
                .header("Authorization", format!("Bearer {}", app.key))
                .header("Idempotency-Key", "rev-1")
                .json(&b)
                .send()
                .await
                .unwrap();
            let s = resp.status().as_u16();
            (s, resp.json::<Value>().await.unwrap())
        }
    };
    let (s1, v1) = send(body.clone()).await;
    let (s2, v2) = send(body.clone()).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(v1, v2, "the first answer, replayed");
    let (s3, v3) =
        send(json!({"prompt": "twice", "callback_url": "https://hooks.example.com/x"})).await;
    assert_eq!(s3, 422);
    assert_eq!(v3["code"], 422);
}
