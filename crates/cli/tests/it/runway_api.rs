//! Runway's official API through the real server: every endpoint, every kind of bad input.

use crate::common;

use common::{gen4_turbo, TestApp, VERSION};
use serde_json::{json, Value};

const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const VIDEO: &str = "https://example.com/in.mp4";
const AUDIO: &str = "https://example.com/in.mp3";

/// One valid body per generation endpoint, and the content type its output must have.
fn bodies() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1280:720", "duration": 5}),
            "video/mp4",
        ),
        (
            "text_to_video",
            json!({"model": "veo3.1_fast", "promptText": "a fox", "ratio": "1280:720", "duration": 4}),
            "video/mp4",
        ),
        (
            "video_to_video",
            json!({"model": "aleph2", "videoUri": VIDEO, "promptText": "make it snow"}),
            "video/mp4",
        ),
        (
            "character_performance",
            json!({"model": "act_two", "character": {"type": "image", "uri": PNG},
            "reference": {"type": "video", "uri": VIDEO}, "bodyControl": true, "expressionIntensity": 3}),
            "video/mp4",
        ),
        (
            "video_upscale",
            json!({"model": "magnific_video_upscaler_creative", "videoUri": VIDEO, "resolution": "2k"}),
            "video/mp4",
        ),
        (
            "text_to_image",
            json!({"model": "gen4_image", "promptText": "a castle", "ratio": "1920:1080"}),
            "image/png",
        ),
        (
            "image_upscale",
            json!({"model": "magnific_precision_upscaler_v2", "imageUri": PNG, "scaleFactor": 2}),
            "image/png",
        ),
        (
            "sound_effect",
            json!({"model": "eleven_text_to_sound_v2", "promptText": "rain on a roof", "duration": 3}),
            "audio/mpeg",
        ),
        (
            "text_to_speech",
            json!({"model": "eleven_multilingual_v2", "promptText": "hello",
            "voice": {"type": "runway-preset", "presetId": "Maya"}}),
            "audio/mpeg",
        ),
        (
            "speech_to_speech",
            json!({"model": "eleven_multilingual_sts_v2", "media": {"type": "audio", "uri": AUDIO},
            "voice": {"type": "runway-preset", "presetId": "Noah"}}),
            "audio/mpeg",
        ),
        (
            "voice_dubbing",
            json!({"model": "eleven_voice_dubbing", "audioUri": AUDIO, "targetLang": "fr"}),
            "audio/mpeg",
        ),
        (
            "voice_isolation",
            json!({"model": "eleven_voice_isolation", "audioUri": AUDIO}),
            "audio/mpeg",
        ),
        (
            "video_to_audio",
            json!({"model": "mirelo_sfx_2_0", "videoUri": VIDEO, "duration": 4}),
            "audio/mpeg",
        ),
        (
            "video_to_hdr",
            json!({"model": "ruby", "videoUri": VIDEO}),
            "video/mp4",
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_runs_to_a_downloadable_output() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for (endpoint, body, ct) in bodies() {
        let resp = app.post(&format!("/v1/{endpoint}"), &body).await;
        assert_eq!(resp.status(), 200, "{endpoint}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["estimatedCost"]["credits"].as_i64().unwrap() > 0,
            "{endpoint}: {v}"
        );
        ids.push((endpoint, v["id"].as_str().unwrap().to_string(), ct));
    }
    for (endpoint, id, ct) in ids {
        let t = app.wait_terminal(&id).await;
        assert_eq!(t["status"], "SUCCEEDED", "{endpoint}: {t}");
        assert!(t["cost"]["credits"].as_i64().unwrap() > 0);
        assert!(t["createdAt"].as_str().unwrap().ends_with('Z'));
        let url = t["output"][0].as_str().unwrap();
        // The output is ours, not the upstream's.
        assert!(url.starts_with(&app.server.base_url), "{endpoint}: {url}");
        let resp = app.client.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], ct, "{endpoint}");
        let bytes = resp.bytes().await.unwrap();
        let expected: &[u8] = match ct {
            "video/mp4" => reelay_sim::SAMPLE_MP4,
            "image/png" => reelay_sim::SAMPLE_PNG,
            _ => reelay_sim::SAMPLE_MP3,
        };
        assert_eq!(&bytes[..], expected, "{endpoint}");
    }
}

#[tokio::test]
async fn task_moves_through_pending_running_succeeded_with_progress() {
    let app = TestApp::spawn_with(|c| c.sandbox_run_seconds = 2.0).await;
    let id = app.create("image_to_video", &gen4_turbo("a cat")).await;
    let mut seen = Vec::new();
    loop {
        let t = app.task(&id).await;
        let status = t["status"].as_str().unwrap().to_string();
        if status == "RUNNING" {
            let p = t["progress"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p));
            assert!(t["estimatedCost"]["credits"].is_number());
        }
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "SUCCEEDED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen.contains(&"RUNNING".to_string()), "{seen:?}");
    // The history has one event per transition, in order, ending in `succeeded`.
    let events = app.server.store.task_events(&id).await.unwrap();
    let states: Vec<&str> = events.iter().map(|e| e.to_state.as_str()).collect();
    assert_eq!(states, ["queued", "submitting", "running", "succeeded"]);
}

async fn expect_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn validation_errors_have_runways_shape() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Value, &str, Vec<&str>)> = vec![
        ("image_to_video", json!({}), "invalid_type", vec!["model"]),
        (
            "image_to_video",
            json!({"model": "gen5_mega", "promptImage": PNG, "ratio": "1280:720"}),
            "invalid_union",
            vec!["model"],
        ),
        (
            "image_to_video",
            json!({"model": "gen3a_turbo", "promptImage": PNG, "ratio": "1280:768"}),
            "invalid_union",
            vec!["model"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1:1"}),
            "invalid_value",
            vec!["ratio"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1280:720", "duration": 11}),
            "too_big",
            vec!["duration"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1280:720", "duration": "5"}),
            "invalid_type",
            vec!["duration"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1280:720", "seed": -1}),
            "too_small",
            vec!["seed"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1280:720", "seed": 4294967296u64}),
            "too_big",
            vec!["seed"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1280:720", "watermark": false}),
            "unrecognized_keys",
            vec![],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": PNG, "ratio": "1280:720", "promptText": "ab".repeat(501)}),
            "too_big",
            vec!["promptText"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": "http://example.com/a.jpg", "ratio": "1280:720"}),
            "custom",
            vec!["promptImage"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": "https://192.168.1.1/a.jpg", "ratio": "1280:720"}),
            "custom",
            vec!["promptImage"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": "data:text/plain;base64,aGk=", "ratio": "1280:720"}),
            "custom",
            vec!["promptImage"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": [{"uri": PNG, "position": "last"}], "ratio": "1280:720"}),
            "invalid_value",
            vec!["promptImage", "0", "position"],
        ),
        (
            "image_to_video",
            json!({"model": "gen4_turbo", "ratio": "1280:720"}),
            "invalid_type",
            vec!["promptImage"],
        ),
        (
            "text_to_video",
            json!({"model": "gen4_turbo", "promptText": "x", "ratio": "1280:720"}),
            "invalid_union",
            vec!["model"],
        ),
        (
            "text_to_video",
            json!({"model": "veo3.1", "promptText": "x", "ratio": "1280:720", "duration": 5}),
            "invalid_value",
            vec!["duration"],
        ),
        (
            "character_performance",
            json!({"model": "act_two", "character": {"type": "audio", "uri": AUDIO}, "reference": {"type": "video", "uri": VIDEO}}),
            "invalid_union",
            vec!["character", "type"],
        ),
        (
            "text_to_image",
            json!({"model": "gen4_image_turbo", "promptText": "x", "ratio": "1920:1080"}),
            "invalid_type",
            vec!["referenceImages"],
        ),
        (
            "voice_dubbing",
            json!({"model": "eleven_voice_dubbing", "audioUri": AUDIO, "targetLang": "xx"}),
            "invalid_value",
            vec!["targetLang"],
        ),
    ];
    for (endpoint, body, code, path) in cases {
        let resp = app.post(&format!("/v1/{endpoint}"), &body).await;
        let v = expect_error(resp, 400).await;
        assert_eq!(v["error"], "Validation of body failed", "{body}");
        assert!(v["docUrl"].is_string());
        let issues = v["issues"].as_array().unwrap();
        let found = issues.iter().any(|i| {
            i["code"] == code
                && i["message"].is_string()
                && i["path"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.to_string().trim_matches('"').to_string())
                    .collect::<Vec<_>>()
                    == path
        });
        assert!(
            found,
            "{endpoint} {body}: expected {code} at {path:?}, got {v}"
        );
    }
    // Nothing was created by any of them.
    let (_, account) = app
        .server
        .store
        .find_api_key(&reelay_store::hash_api_key(&app.key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.server
            .store
            .usage_by_model(&account.id, 0)
            .await
            .unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 64 * 1024).await;
    let send = |body: Vec<u8>| {
        app.client
            .post(app.url("/v1/image_to_video"))
            .bearer_auth(&app.key)
            .header("X-Runway-Version", VERSION)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let v = expect_error(send(b"{not json".to_vec()).await.unwrap(), 400).await;
    assert!(v["error"].as_str().unwrap().contains("Invalid JSON"));
    expect_error(send(b"[1,2]".to_vec()).await.unwrap(), 400).await;
    expect_error(send(b"".to_vec()).await.unwrap(), 400).await;
    let big =
        serde_json::to_vec(&json!({"model": "gen4_turbo", "promptText": "x".repeat(100 * 1024)}))
            .unwrap();
    expect_error(send(big).await.unwrap(), 413).await;
}

#[tokio::test]
async fn oversized_data_uri_is_refused() {
    let app = TestApp::spawn().await;
    let uri = format!("data:image/png;base64,{}", "A".repeat(5 * 1024 * 1024 + 4));
    let body = json!({"model": "gen4_turbo", "promptImage": uri, "ratio": "1280:720"});
    let v = expect_error(app.post("/v1/image_to_video", &body).await, 400).await;
    assert!(
        v["issues"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most"),
        "{}",
        v["issues"]
    );
}

#[tokio::test]
async fn auth_and_version_are_checked_on_every_route() {
    let app = TestApp::spawn().await;
    let id = app.create("image_to_video", &gen4_turbo("x")).await;
    for (method, path) in [
        (reqwest::Method::POST, "/v1/image_to_video".to_string()),
        (reqwest::Method::GET, format!("/v1/tasks/{id}")),
        (reqwest::Method::DELETE, format!("/v1/tasks/{id}")),
        (reqwest::Method::GET, "/v1/organization".to_string()),
    ] {
        let no_key = app
            .client
            .request(method.clone(), app.url(&path))
            .header("X-Runway-Version", VERSION)
            .send()
            .await
            .unwrap();
        expect_error(no_key, 401).await;
        let bad_key = app
            .authed(method.clone(), &path, &format!("key_{}", "0".repeat(128)))
            .send()
            .await
            .unwrap();
        expect_error(bad_key, 401).await;
        let basic = app
            .client
            .request(method.clone(), app.url(&path))
            .header("Authorization", format!("Basic {}", app.key))
            .header("X-Runway-Version", VERSION)
            .send()
            .await
            .unwrap();
        expect_error(basic, 401).await;
        let no_version = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap();
        let v = expect_error(no_version, 400).await;
        assert!(v["error"].as_str().unwrap().contains("X-Runway-Version"));
        let old_version = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&app.key)
            .header("X-Runway-Version", "2024-09-13")
            .send()
            .await
            .unwrap();
        expect_error(old_version, 400).await;
    }
    // The task was never deleted by the refused DELETEs.
    assert_eq!(app.get(&format!("/v1/tasks/{id}")).await.status(), 200);
}

#[tokio::test]
async fn tasks_are_invisible_to_other_accounts() {
    let app = TestApp::spawn().await;
    let id = app.create("image_to_video", &gen4_turbo("mine")).await;
    let other = app.other_account().await;
    let path = format!("/v1/tasks/{id}");
    let theirs = app
        .authed(reqwest::Method::GET, &path, &other)
        .send()
        .await
        .unwrap();
    let v = expect_error(theirs, 404).await;
    assert_eq!(v, json!({"error": "Could not find Task"}));
    let unknown = app
        .get("/v1/tasks/01a20896-0000-7000-8000-000000000000")
        .await;
    assert_eq!(
        expect_error(unknown, 404).await,
        v,
        "unknown and foreign ids look the same"
    );
    let del = app
        .authed(reqwest::Method::DELETE, &path, &other)
        .send()
        .await
        .unwrap();
    expect_error(del, 404).await;
    assert_eq!(
        app.get(&path).await.status(),
        200,
        "the owner still sees it"
    );
    expect_error(app.get("/v1/tasks/not-a-uuid").await, 404).await;
}

#[tokio::test]
async fn delete_cancels_a_live_task_and_deletes_a_finished_one() {
    let app = TestApp::spawn_with(|c| c.sandbox_run_seconds = 30.0).await;
    let live = app.create("image_to_video", &gen4_turbo("long")).await;
    let resp = app.delete(&format!("/v1/tasks/{live}")).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    expect_error(app.get(&format!("/v1/tasks/{live}")).await, 404).await;
    expect_error(app.delete(&format!("/v1/tasks/{live}")).await, 404).await;
    let row = app
        .server
        .store
        .get_task_by_id(&live)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state.as_str(), "cancelled");

    let app = TestApp::spawn().await;
    let done = app.create("image_to_video", &gen4_turbo("short")).await;
    assert_eq!(app.wait_terminal(&done).await["status"], "SUCCEEDED");
    assert_eq!(app.delete(&format!("/v1/tasks/{done}")).await.status(), 204);
    expect_error(app.get(&format!("/v1/tasks/{done}")).await, 404).await;
}

#[tokio::test]
async fn organization_reports_balance_limits_and_usage() {
    let app = TestApp::spawn().await;
    app.create("image_to_video", &gen4_turbo("x")).await;
    app.create("image_to_video", &gen4_turbo("y")).await;
    let v: Value = app.get("/v1/organization").await.json().await.unwrap();
    assert!(v["creditBalance"].is_i64());
    assert!(v["tier"]["maxMonthlyCreditSpend"].is_i64());
    assert!(v["tier"]["models"]["gen4_turbo"]
        .as_object()
        .unwrap()
        .contains_key("maxConcurrentGenerations"));
    assert_eq!(v["usage"]["models"]["gen4_turbo"]["dailyGenerations"], 2);
}

#[tokio::test]
async fn unknown_routes_and_health() {
    let app = TestApp::spawn().await;
    expect_error(app.get("/v1/nope").await, 404).await;
    expect_error(app.get("/v1/image_to_video").await, 405).await;
    expect_error(app.post("/v1/organization", &json!({})).await, 405).await;
    let h = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["database"], true);
    assert_eq!(v["workers"], true);
}
