//! Posters and last frames derived in process (OpenH264 + an MP4 demuxer), with ffmpeg made
//! unreachable: a real H.264 clip from the simulator, whose first frame is a known colour with
//! a white square at a known spot and whose last frame is another colour, and the derived
//! JPEGs decoded back to pixels. The poster is made at success; the last frame on its first
//! request, then kept.

use crate::common;

use common::files::{FileServer, Reply};
use common::{fast_sim, gen4_turbo, TestApp};
use reelay_core::TaskState;
use reelay_sim::clip::jpeg::{near, pixel, pixels};
use reelay_sim::clip::{self, ClipSpec, FIRST_COLOUR, LAST_COLOUR, MARKER};
use reelay_sim::SimConfig;
use reelay_store::MediaKind;

/// A clip small enough to make in a test, with two GOPs (the last frame needs the second).
fn clip() -> Vec<u8> {
    clip::generate(&ClipSpec {
        width: 320,
        height: 180,
        frames: 30,
        fps: 24,
        keyframe_interval: 12,
    })
    .unwrap()
}

/// A server with no ffmpeg to fall back on, whose upstream serves `video` as every output.
async fn app_without_ffmpeg(video: Vec<u8>) -> TestApp {
    TestApp::with_sim(
        SimConfig {
            output_video: Some(video.into()),
            ..fast_sim()
        },
        |c| c.media.ffmpeg = "/nonexistent/ffmpeg".into(),
    )
    .await
}

/// The task's state once terminal (quick-start ids are the stored ids).
async fn stored_state(app: &TestApp, id: &str) -> TaskState {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let t = app.server.store.get_task_by_id(id).await.unwrap().unwrap();
        if t.state.is_terminal() || std::time::Instant::now() > deadline {
            return t.state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn kinds(app: &TestApp, id: &str) -> Vec<MediaKind> {
    let mut k: Vec<_> = app
        .server
        .store
        .media_objects(id)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.kind)
        .collect();
    k.sort_by_key(|k| format!("{k:?}"));
    k
}

#[tokio::test]
async fn h264_posters_and_last_frames_are_decoded_pictures_without_ffmpeg() {
    let app = app_without_ffmpeg(clip()).await;
    let id = app.create("image_to_video", &gen4_turbo("frames")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    let task = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
    let media = reelay_api::task_media(&app.server.links, &task);

    // At success: the output and its poster; the last frame is not made until asked for.
    assert_eq!(
        kinds(&app, &id).await,
        [MediaKind::Output, MediaKind::Poster]
    );

    let r = app.client.get(media.poster.unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let poster = pixels(&r.bytes().await.unwrap());
    assert_eq!((poster.0, poster.1), (320, 180));
    let centre = pixel(&poster, 160, 90);
    assert!(near(centre, FIRST_COLOUR), "poster centre {centre:?}");
    let (mx, my, side) = MARKER;
    let marker = pixel(&poster, (mx + side / 2) as usize, (my + side / 2) as usize);
    assert!(near(marker, [255, 255, 255]), "the marker: {marker:?}");
    let beside = pixel(&poster, (mx + side * 2) as usize, (my + side / 2) as usize);
    assert!(near(beside, FIRST_COLOUR), "beside the marker: {beside:?}");

    let last_url = media.last_frame.unwrap();
    let r = app.client.get(&last_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let last = pixels(&r.bytes().await.unwrap());
    assert_eq!((last.0, last.1), (320, 180));
    for (x, y) in [
        (160, 90),
        (4, 4),
        (mx as usize + 4, my as usize + 4),
        (315, 175),
    ] {
        let p = pixel(&last, x, y);
        assert!(near(p, LAST_COLOUR), "last frame at {x},{y}: {p:?}");
    }
    // Kept: recorded once derived, and served again without deriving (same object).
    assert_eq!(
        kinds(&app, &id).await,
        [MediaKind::LastFrame, MediaKind::Output, MediaKind::Poster]
    );
    let again = app.client.get(&last_url).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn quickstart_extend_continues_from_an_in_process_last_frame() {
    let app = app_without_ffmpeg(clip()).await;
    let key = &app.key;
    let r = app
        .client
        .post(format!("{}/api/v1/runway/generate", app.server.base_url))
        .bearer_auth(key)
        .json(&serde_json::json!({
            "prompt": "a red room", "duration": 5, "quality": "720p", "aspectRatio": "16:9"
        }))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], 200, "{v}");
    let parent = v["data"]["taskId"].as_str().unwrap().to_string();
    assert_eq!(stored_state(&app, &parent).await, TaskState::Succeeded);
    assert!(!kinds(&app, &parent).await.contains(&MediaKind::LastFrame));

    let r = app
        .client
        .post(format!("{}/api/v1/runway/extend", app.server.base_url))
        .bearer_auth(key)
        .json(&serde_json::json!({"taskId": parent, "prompt": "and then blue", "quality": "720p"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["code"], 200,
        "extend needs the last frame, derived now: {v}"
    );
    assert!(kinds(&app, &parent).await.contains(&MediaKind::LastFrame));
    let child = v["data"]["taskId"].as_str().unwrap().to_string();
    assert_eq!(stored_state(&app, &child).await, TaskState::Succeeded);
}

#[tokio::test]
async fn a_video_no_deriver_reads_succeeds_without_frames() {
    // Not H.264 in MP4 (an MP4 header and noise), and no ffmpeg: the task still succeeds, its
    // output archived, with neither poster nor last frame (and no links to them).
    let mut junk = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    junk.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
    let files = FileServer::start().await;
    files.script(
        "junk.mp4",
        vec![Reply::File("video/mp4", junk.clone().into())],
    );
    let app = TestApp::with_sim(
        SimConfig {
            output_url: Some(files.url("junk.mp4")),
            ..fast_sim()
        },
        |c| {
            c.outbound_allow_cidrs = "127.0.0.1/32".into();
            c.media.ffmpeg = "/nonexistent/ffmpeg".into();
        },
    )
    .await;
    let id = app.create("image_to_video", &gen4_turbo("junk")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    let task = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
    let media = reelay_api::task_media(&app.server.links, &task);
    assert_eq!(
        (media.outputs.len(), media.poster, media.last_frame),
        (1, None, None)
    );
    assert_eq!(kinds(&app, &id).await, [MediaKind::Output]);
    // A frame link we would sign for it still names nothing.
    let forged = app
        .server
        .links
        .url(&id, "0.last.jpg", task.expires_at, reelay_store::now_ms());
    assert_eq!(app.client.get(forged).send().await.unwrap().status(), 404);
}
