//! Uploaded files reaching the upstream: Runway's ephemeral uploads (`runway://` URIs) and the
//! OpenAI dialect's `input_reference` file, both checked at the simulator by the SHA-256 of the
//! bytes it received.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{fast_sim, TestApp};

/// A real 1×1 PNG.
fn png() -> Vec<u8> {
    hex::decode(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000\
         1f15c4890000000d49444154789c6364f8ff9f0100050101007d0e2fd60000000049454e44ae426082",
    )
    .unwrap()
}

/// What the simulator received as inline media for reelay task `task_id`.
fn media_at_sim(app: &TestApp, task_id: &str) -> Vec<String> {
    let sim_id = app
        .sim()
        .lookup(task_id)
        .expect("the task reached the simulator");
    app.sim().media_of(&sim_id).unwrap()
}

/// A slot from reelay, the file posted to it as the runwayml SDK does: the `runway://` URI.
async fn upload(app: &TestApp) -> String {
    let slot: Value = app
        .post(
            "/v1/uploads",
            &json!({"filename": "frame.png", "type": "ephemeral"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let url = slot["uploadUrl"].as_str().unwrap();
    assert!(url.starts_with(&app.server.base_url), "{url}");
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in slot["fields"].as_object().unwrap() {
        form = form.text(k.clone(), v.as_str().unwrap().to_string());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(png()).file_name("frame.png"),
    );
    let r = app.client.post(url).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 204);
    slot["runwayUri"].as_str().unwrap().to_string()
}

async fn image_to_video_from(app: &TestApp, uri: &str) -> String {
    let id = app
        .create(
            "image_to_video",
            &json!({"model": "gen4_turbo", "promptImage": uri, "promptText": "uploaded",
                    "ratio": "1280:720", "duration": 5}),
        )
        .await;
    assert_eq!(app.wait_terminal(&id).await["status"], "SUCCEEDED");
    id
}

#[tokio::test]
async fn an_ephemeral_upload_goes_inline_to_an_upstream_without_uploads() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    let uri = upload(&app).await;
    let id = image_to_video_from(&app, &uri).await;
    assert_eq!(
        media_at_sim(&app, &id),
        [hex::encode(Sha256::digest(png()))]
    );
    assert_eq!(app.sim().stats().uploads_started, 0);
}

#[tokio::test]
async fn an_ephemeral_upload_is_re_uploaded_to_a_runway_channel_through_its_uploads() {
    let app = TestApp::with_sim(fast_sim(), |c| {
        c.channels[0].kind = reelay_upstream::ChannelKind::Runway;
    })
    .await;
    let uri = upload(&app).await;
    let id = image_to_video_from(&app, &uri).await;
    // The simulator resolved its own runway:// URI to the same bytes.
    assert_eq!(
        media_at_sim(&app, &id),
        [hex::encode(Sha256::digest(png()))]
    );
    assert_eq!(app.sim().stats().uploads_started, 1);
}

#[tokio::test]
async fn an_openai_input_reference_file_reaches_the_upstream_as_its_bytes() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    let form = reqwest::multipart::Form::new()
        .text("prompt", "from a file")
        .text("model", "gen4_turbo")
        .text("size", "1280x720")
        .text("seconds", "5")
        .part(
            "input_reference",
            reqwest::multipart::Part::bytes(png())
                .file_name("frame.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let r = app
        .client
        .post(app.url("/v1/videos"))
        .bearer_auth(&app.key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let video: Value = r.json().await.unwrap();
    let video_id = video["id"].as_str().unwrap();
    let hex_id = video_id.strip_prefix("video_").unwrap();
    let task_id = uuid::Uuid::parse_str(hex_id)
        .unwrap()
        .hyphenated()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.sim().lookup(&task_id).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the video never reached the simulator"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        media_at_sim(&app, &task_id),
        [hex::encode(Sha256::digest(png()))]
    );
}

#[tokio::test]
async fn every_dialect_refuses_an_upload_uri_that_is_not_the_accounts() {
    let app = TestApp::spawn_with(|_| {}).await;
    let before = app.writes().await;
    let stranger = "runway://uploads/0190d5b30000700080000000000000aa";
    let r = app
        .post(
            "/runway/pro/generate",
            &json!({"prompt": "x", "image": stranger}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["msg"].as_str().unwrap().contains("runway://"), "{v}");
    let r = app
        .post(
            "/v1/image_to_video",
            &json!({"model": "gen4_turbo", "promptImage": stranger, "ratio": "1280:720"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["issues"][0]["path"], json!(["promptImage"]));
    assert_eq!(app.writes().await, before, "a refusal wrote");
}

#[tokio::test]
async fn an_upload_gone_before_the_submit_fails_the_task_and_refunds_it() {
    let app = TestApp::with_sim(fast_sim(), |_| {}).await;
    let uri = upload(&app).await;
    // The first submit is refused (429, retry in 2 s); the upload is gone by the second.
    app.sim().push_faults(
        reelay_sim::Fault::RateLimit {
            retry_after_secs: 2,
        },
        1,
    );
    let id = app
        .create(
            "image_to_video",
            &json!({"model": "gen4_turbo", "promptImage": uri, "promptText": "late",
                    "ratio": "1280:720", "duration": 5}),
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.sim().stats().creates_received == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no submit reached the simulator"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let upload_id = uri.rsplit('/').next().unwrap().to_string();
    app.server.store.forget_uploads(&[upload_id]).await.unwrap();
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["failureCode"], "INPUT.UPLOAD_EXPIRED", "{t}");
    assert_eq!(app.sim().stats().tasks_created, 0);
    let task = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
    assert_eq!(task.credits_captured, 0);
    assert!(task.credits_refunded > 0, "{task:?}");
}
