//! The media archive through the real server: outputs copied into reelay's store and served at
//! signed links (type, length, ETag, ranges, 404 after expiry), poster and last frame derived
//! with ffmpeg, the fetcher's retries, the archive-deadline policy (fail and refund), refusals
//! that fail at once (not media, too large, blocked address), and retention.

use crate::common;

use std::time::{Duration, Instant};

use common::files::{FileServer, Reply};
use common::{fast_sim, gen4_turbo, TestApp, ADMIN_TOKEN};
use reelay::config::Config;
use reelay_sim::{SimConfig, SAMPLE_MP4};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A server whose upstream (a simulator) reports `output_url` as every task's output.
async fn app_with_output(output_url: &str, f: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::with_sim(
        SimConfig {
            output_url: Some(output_url.to_string()),
            ..fast_sim()
        },
        |c| {
            c.outbound_allow_cidrs = "127.0.0.1/32".into();
            c.media.sweep_interval_ms = 100;
            f(c)
        },
    )
    .await
}

async fn stored_task(app: &TestApp, id: &str) -> reelay_store::Task {
    app.server.store.get_task_by_id(id).await.unwrap().unwrap()
}

async fn get(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// ffmpeg is needed to derive frames (and to check them). CI installs it and sets
/// `REELAY_REQUIRE_FFMPEG=1`, making its absence a failure; elsewhere the test is skipped
/// with a loud message.
fn ffmpeg_or_skip(test: &str) -> bool {
    let found = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("REELAY_REQUIRE_FFMPEG").as_deref() != Ok("1"),
            "ffmpeg is required (REELAY_REQUIRE_FFMPEG=1) but not installed"
        );
        eprintln!("\n*** SKIPPED {test}: ffmpeg is not installed (apt-get install ffmpeg) ***\n");
    }
    found
}

#[tokio::test]
async fn outputs_are_served_with_type_length_etag_and_ranges() {
    let app = TestApp::spawn().await;
    let id = app.create("image_to_video", &gen4_turbo("ranges")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    let url = t["output"][0].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/media/{id}/0.mp4?exp=", app.server.base_url)),
        "{url}"
    );
    let n = SAMPLE_MP4.len();
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(SAMPLE_MP4)));

    let r = get(&app, &url, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "video/mp4");
    assert_eq!(header(&r, "content-length"), n.to_string());
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert_eq!(&r.bytes().await.unwrap()[..], SAMPLE_MP4);

    let r = get(&app, &url, &[("range", "bytes=0-99")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), format!("bytes 0-99/{n}"));
    assert_eq!(header(&r, "content-length"), "100");
    assert_eq!(&r.bytes().await.unwrap()[..], &SAMPLE_MP4[..100]);

    let r = get(&app, &url, &[("range", "bytes=-100")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes {}-{}/{n}", n - 100, n - 1)
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &SAMPLE_MP4[n - 100..]);

    let r = get(&app, &url, &[("range", "bytes=1000-")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &SAMPLE_MP4[1000..]);

    for past_end in [
        format!("bytes={n}-"),
        format!("bytes={}-{}", n + 10, n + 20),
    ] {
        let r = get(&app, &url, &[("range", &past_end)]).await;
        assert_eq!(r.status(), 416, "{past_end}");
        assert_eq!(header(&r, "content-range"), format!("bytes */{n}"));
    }

    // A stale If-Range means "the whole thing"; a matching one lets the range apply.
    let r = get(
        &app,
        &url,
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get(&app, &url, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(r.status(), 206);

    let r = get(&app, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag"), etag);

    let r = app.client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), n.to_string());
    assert!(r.bytes().await.unwrap().is_empty());

    // Links are capabilities: a forged or misapplied signature finds nothing.
    let (path, query) = url.split_once('?').unwrap();
    let mut forged = url.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in [
        forged,
        path.to_string(),
        format!("{}?{query}", path.replace("0.mp4", "0.poster.jpg")),
        format!(
            "{}/media/{}/0.mp4?{query}",
            app.server.base_url,
            uuid::Uuid::now_v7()
        ),
    ] {
        let r = get(&app, &bad, &[]).await;
        assert_eq!(r.status(), 404, "{bad}");
    }
    // A link past its own expiry: refused, and the client is told to fetch the task again.
    let long_ago = reelay_store::now_ms() - 3 * 86_400_000;
    let old = app.server.links.url(&id, "0.mp4", None, long_ago);
    let r = get(&app, &old, &[]).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("fetch the task again"),
        "{body}"
    );
}

/// A video whose first frame is red and last frame blue.
fn red_then_blue_video(dir: &std::path::Path) -> Vec<u8> {
    let out = dir.join("rb.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=160x96:d=1:r=10",
        ])
        .args(["-f", "lavfi", "-i", "color=c=blue:s=160x96:d=1:r=10"])
        .args([
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[v]",
            "-map",
            "[v]",
        ])
        .args(["-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

/// Decodes the first frame of an image or video file to RGB: (width, height, pixels).
fn decode_rgb(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let dims = String::from_utf8(probe.stdout).unwrap();
    let (w, h) = dims.trim().split_once(',').unwrap();
    let raw = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    (w.parse().unwrap(), h.parse().unwrap(), raw.stdout)
}

fn mean_rgb(px: &[u8]) -> [f64; 3] {
    let mut sum = [0f64; 3];
    for p in px.chunks(3) {
        for c in 0..3 {
            sum[c] += p[c] as f64;
        }
    }
    let n = (px.len() / 3) as f64;
    [sum[0] / n, sum[1] / n, sum[2] / n]
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

#[tokio::test]
async fn poster_and_last_frame_are_the_videos_first_and_last_frames() {
    if !ffmpeg_or_skip("poster_and_last_frame_are_the_videos_first_and_last_frames") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let video = red_then_blue_video(dir.path());
    let files = FileServer::start().await;
    files.script(
        "rb.mp4",
        vec![Reply::File("video/mp4", video.clone().into())],
    );
    let app = app_with_output(&files.url("rb.mp4"), |_| {}).await;
    let id = app.create("image_to_video", &gen4_turbo("frames")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");

    let media = reelay_api::task_media(&app.server.links, &stored_task(&app, &id).await);
    assert!(!media.expired);
    assert_eq!(media.outputs.len(), 1);
    let body = get(&app, &media.outputs[0], &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], &video[..], "the output is a faithful copy");

    let video_path = dir.path().join("rb.mp4");
    let (vw, vh, first) = decode_rgb(&video_path);
    let mut images = Vec::new();
    for (label, url) in [
        ("poster", media.poster.clone()),
        ("last", media.last_frame.clone()),
    ] {
        let url = url.unwrap_or_else(|| panic!("no {label}"));
        let r = get(&app, &url, &[]).await;
        assert_eq!(r.status(), 200, "{label}");
        assert_eq!(header(&r, "content-type"), "image/jpeg");
        let path = dir.path().join(format!("{label}.jpg"));
        std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
        let (w, h, px) = decode_rgb(&path);
        assert_eq!((w, h), (vw, vh), "{label} has the video's dimensions");
        images.push(px);
    }
    let [r, g, b] = mean_rgb(&images[0]);
    assert!(
        r > 200.0 && g < 60.0 && b < 60.0,
        "poster is red: {r} {g} {b}"
    );
    let [r, g, b] = mean_rgb(&images[1]);
    assert!(
        b > 200.0 && r < 60.0 && g < 60.0,
        "last frame is blue: {r} {g} {b}"
    );
    assert!(
        mean_abs_diff(&images[0], &first) < 12.0,
        "poster = the video's first frame"
    );
    assert!(
        mean_abs_diff(&images[0], &images[1]) > 100.0,
        "poster and last frame differ"
    );
}

#[tokio::test]
async fn sandbox_videos_get_a_poster_of_their_size() {
    if !ffmpeg_or_skip("sandbox_videos_get_a_poster_of_their_size") {
        return;
    }
    let app = TestApp::spawn().await;
    let id = app.create("image_to_video", &gen4_turbo("poster")).await;
    assert_eq!(app.wait_terminal(&id).await["status"], "SUCCEEDED");
    let media = reelay_api::task_media(&app.server.links, &stored_task(&app, &id).await);
    let dir = tempfile::tempdir().unwrap();
    for url in [media.poster.unwrap(), media.last_frame.unwrap()] {
        let path = dir.path().join("f.jpg");
        std::fs::write(&path, get(&app, &url, &[]).await.bytes().await.unwrap()).unwrap();
        let (w, h, _) = decode_rgb(&path);
        assert_eq!((w, h), (320, 180));
    }
    // An image output has neither.
    let img = app
        .create(
            "text_to_image",
            &json!({"model": "gen4_image", "promptText": "a cat", "ratio": "1920:1080"}),
        )
        .await;
    assert_eq!(app.wait_terminal(&img).await["status"], "SUCCEEDED");
    let media = reelay_api::task_media(&app.server.links, &stored_task(&app, &img).await);
    assert_eq!(
        (media.outputs.len(), media.poster, media.last_frame),
        (1, None, None)
    );
}

#[tokio::test]
async fn an_output_that_fails_once_is_fetched_on_the_retry() {
    let files = FileServer::start().await;
    files.script(
        "flaky.mp4",
        vec![
            Reply::Status(404),
            Reply::File("video/mp4", SAMPLE_MP4.into()),
        ],
    );
    let app = app_with_output(&files.url("flaky.mp4"), |_| {}).await;
    let id = app.create("image_to_video", &gen4_turbo("flaky")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    assert_eq!(files.hits("flaky.mp4"), 2);
    let body = get(&app, t["output"][0].as_str().unwrap(), &[]).await;
    assert_eq!(&body.bytes().await.unwrap()[..], SAMPLE_MP4);
    let task = stored_task(&app, &id).await;
    assert_eq!(task.credits_captured, task.credits_held);
    assert_eq!(task.upstream_outputs, vec![files.url("flaky.mp4")]);
}

/// Waits (up to 30 s) until `cond`, an expression that may `.await`, holds.
macro_rules! wait_for {
    ($what:expr, $cond:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(30);
        while !$cond {
            assert!(Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }};
}

fn media_files(app: &TestApp, id: &str) -> Vec<String> {
    match std::fs::read_dir(app.dir.path().join("media").join(id)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => vec![],
    }
}

#[tokio::test]
async fn an_output_that_never_works_fails_the_task_and_refunds_it() {
    let files = FileServer::start().await;
    files.script("gone.mp4", vec![Reply::Status(404)]);
    let app = app_with_output(&files.url("gone.mp4"), |c| {
        c.media.archive_deadline_seconds = 2;
    })
    .await;
    let (account, key) = app.new_account("policy", 1000).await;
    let resp = app
        .post_as(&key, "/v1/image_to_video", &gen4_turbo("gone"), &[])
        .await;
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let t = loop {
        let r = app
            .authed(reqwest::Method::GET, &format!("/v1/tasks/{id}"), &key)
            .send()
            .await
            .unwrap();
        let t: Value = r.json().await.unwrap();
        if t["status"] == "FAILED" || t["status"] == "SUCCEEDED" {
            break t;
        }
        assert!(Instant::now() < deadline, "{t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["failureCode"], "INTERNAL.ARCHIVE_FAILED", "{t}");
    assert!(t["failure"].as_str().unwrap().contains("404"), "{t}");
    assert_eq!(t["cost"]["credits"], 0);
    // More tries than one attempt makes: it kept trying until the deadline.
    assert!(
        files.hits("gone.mp4") > 3,
        "{} tries",
        files.hits("gone.mp4")
    );
    let a = app.account(&account).await;
    assert_eq!((a.credits_available, a.credits_held), (1000, 0), "refunded");
    assert!(app.server.store.verify_ledger().await.unwrap().is_empty());
    assert!(t.get("output").is_none());
}

#[tokio::test]
async fn outputs_that_can_never_be_archived_fail_at_once() {
    let files = FileServer::start().await;
    files.script(
        "page.html",
        vec![Reply::File(
            "text/html; charset=utf-8",
            "<html>oops</html>".into(),
        )],
    );
    files.script("huge.mp4", vec![Reply::Generated("video/mp4", 50_000)]);
    files.script(
        "huge-no-length.bin",
        vec![Reply::File(
            "application/octet-stream",
            vec![0u8; 50_000].into(),
        )],
    );
    for (path, why) in [
        ("page.html", "text/html"),
        ("huge.mp4", "cap"),
        ("huge-no-length.bin", "cap"),
    ] {
        let app = app_with_output(&files.url(path), |c| {
            // A long deadline: only a permanent refusal can end the task quickly.
            c.media.archive_deadline_seconds = 3600;
            c.engine.max_output_bytes = 10_000;
        })
        .await;
        let id = app.create("image_to_video", &gen4_turbo(path)).await;
        let t = app.wait_terminal(&id).await;
        assert_eq!(t["status"], "FAILED", "{path}: {t}");
        assert_eq!(t["failureCode"], "INTERNAL.ARCHIVE_FAILED");
        assert!(t["failure"].as_str().unwrap().contains(why), "{path}: {t}");
        assert_eq!(
            files.hits(path),
            1,
            "{path}: no retry of a permanent refusal"
        );
        // Nothing is left behind.
        wait_for!("the partial media to be swept", {
            media_files(&app, &id).is_empty()
        });
    }
}

#[tokio::test]
async fn outputs_on_a_blocked_address_are_refused() {
    // A file server on 127.0.0.2: loopback, but not the allowlisted 127.0.0.1 nor the
    // channel's address. If the guard let the download through, the task would succeed.
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app_files = axum::Router::new().route(
        "/x.mp4",
        axum::routing::get(|| async { ([("content-type", "video/mp4")], SAMPLE_MP4) }),
    );
    tokio::spawn(async move { axum::serve(listener, app_files).await.unwrap() });
    let app = app_with_output(&format!("http://{addr}/x.mp4"), |c| {
        c.media.archive_deadline_seconds = 3600;
    })
    .await;
    let id = app.create("image_to_video", &gen4_turbo("blocked")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["failureCode"], "INTERNAL.ARCHIVE_FAILED");
    assert!(t["failure"].as_str().unwrap().contains("refused"), "{t}");
}

#[tokio::test]
async fn after_retention_media_are_gone_and_the_task_says_expired() {
    let app = TestApp::spawn_with(|c| {
        c.retention_seconds = 1;
        c.media.sweep_interval_ms = 100;
    })
    .await;
    let id = app
        .create("image_to_video", &gen4_turbo("short-lived"))
        .await;
    assert_eq!(app.wait_terminal(&id).await["status"], "SUCCEEDED");
    let task = stored_task(&app, &id).await;
    let media = reelay_api::task_media(&app.server.links, &task);
    let expires = task.expires_at.unwrap();
    assert!(
        expires - task.finished_at.unwrap() <= 1_000 + 50,
        "1 s retention"
    );

    wait_for!("the media to be swept", {
        media_files(&app, &id).is_empty()
            && app
                .server
                .store
                .media_objects(&id)
                .await
                .unwrap()
                .is_empty()
    });
    let task = stored_task(&app, &id).await;
    let after = reelay_api::task_media(&app.server.links, &task);
    assert!(after.expired);
    assert_eq!(after.outputs.len(), 1, "URLs are kept (they answer 404)");
    for url in media
        .outputs
        .iter()
        .chain(&after.outputs)
        .chain(media.poster.iter())
    {
        let r = get(&app, url, &[]).await;
        assert_eq!(r.status(), 404, "{url}");
    }
    // Runway's view: still SUCCEEDED, its output URL answers 404.
    let t = app.task(&id).await;
    assert_eq!(t["status"], "SUCCEEDED");
    let r = get(&app, t["output"][0].as_str().unwrap(), &[]).await;
    assert_eq!(r.status(), 404);
    assert!(
        !app.dir.path().join("media").join(&id).exists(),
        "its folder went too"
    );
}

#[tokio::test]
async fn an_account_may_keep_its_media_longer() {
    let app = TestApp::spawn_with(|c| {
        c.retention_seconds = 1;
        c.media.sweep_interval_ms = 100;
    })
    .await;
    let (account, key) = app.new_account("keeper", 1000).await;
    let r = app
        .client
        .patch(app.url(&format!("/admin/v1/accounts/{account}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"retention_seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["retention_seconds"], 3600, "{a}");

    let resp = app
        .post_as(&key, "/v1/image_to_video", &gen4_turbo("kept"), &[])
        .await;
    let kept = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let short = app.create("image_to_video", &gen4_turbo("not kept")).await;
    assert_eq!(app.wait_terminal(&short).await["status"], "SUCCEEDED");
    wait_for!("the kept task", {
        stored_task(&app, &kept).await.state == reelay_core::TaskState::Succeeded
    });
    wait_for!("the default-retention media to be swept", {
        media_files(&app, &short).is_empty()
    });
    let task = stored_task(&app, &kept).await;
    assert!(task.expires_at.unwrap() - task.finished_at.unwrap() >= 3_599_000);
    let media = reelay_api::task_media(&app.server.links, &task);
    assert!(!media.expired);
    assert_eq!(get(&app, &media.outputs[0], &[]).await.status(), 200);
    assert!(!media_files(&app, &kept).is_empty());

    // Back to the default: `null` clears the override.
    let r = app
        .client
        .patch(app.url(&format!("/admin/v1/accounts/{account}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"retention_seconds": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["retention_seconds"],
        Value::Null
    );
    for bad in [json!(0), json!(-5), json!(1.5), json!("long")] {
        let r = app
            .client
            .patch(app.url(&format!("/admin/v1/accounts/{account}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "retention_seconds": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn deleting_a_finished_task_deletes_its_media() {
    let app = TestApp::spawn_with(|c| c.media.sweep_interval_ms = 100).await;
    let id = app.create("image_to_video", &gen4_turbo("deleted")).await;
    let t = app.wait_terminal(&id).await;
    let url = t["output"][0].as_str().unwrap().to_string();
    assert_eq!(get(&app, &url, &[]).await.status(), 200);
    assert_eq!(app.delete(&format!("/v1/tasks/{id}")).await.status(), 204);
    assert_eq!(get(&app, &url, &[]).await.status(), 404);
    wait_for!("the deleted task's media to be swept", {
        media_files(&app, &id).is_empty()
    });
}

#[test]
fn account_set_changes_the_media_retention_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("REELAY_LOG", "warn")
            .env_remove("REELAY_CONFIG")
            .env_remove("REELAY_DATA_DIR")
            .env_remove("REELAY_DATABASE_URL")
            .envs(crate::common::process::database_env(dir.path()))
            .output()
            .unwrap()
    };
    let json = |args: &[&str]| -> Value {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let created = json(&["account", "create", "--name", "keeper", "--json"]);
    let id = created["account_id"].as_str().unwrap();
    let a = json(&["account", "set", id, "--retention-seconds", "600", "--json"]);
    assert_eq!(a["retention_seconds"], 600);
    let a = json(&["account", "show", id, "--json"]);
    assert_eq!(a["retention_seconds"], 600);
    let a = json(&["account", "set", id, "--no-retention-seconds", "--json"]);
    assert_eq!(a["retention_seconds"], Value::Null);
    let out = run(&["account", "set", id, "--retention-seconds", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention_seconds"));
}

#[tokio::test]
async fn expired_uploads_are_swept_from_the_media_store_and_stop_resolving() {
    let app = TestApp::spawn_with(|c| c.media.sweep_interval_ms = 100).await;
    let (_, account) = app
        .server
        .store
        .find_api_key(&reelay_store::hash_api_key(&app.key))
        .await
        .unwrap()
        .unwrap();
    let acct = account.id;
    // An upload whose day is over: its bytes in the store, its record expired.
    let id = "0190f0c0a0b0c0d0e0f0a0b0c0d0e0f0";
    let path = app.dir.path().join("media").join("uploads");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join(id), b"\x89PNG\r\n\x1a\nold").unwrap();
    let now = reelay_store::now_ms();
    app.server
        .store
        .record_upload(&reelay_store::UploadRecord {
            id: id.into(),
            account_id: acct.clone(),
            filename: "old.png".into(),
            content_type: "image/png".into(),
            size: 11,
            sha256: "00".into(),
            created_at: now - 25 * 3600 * 1000,
            expires_at: now - 3600 * 1000,
        })
        .await
        .unwrap();
    wait_for!("the expired upload to be swept", {
        !path.join(id).exists()
            && app
                .server
                .store
                .expired_uploads(reelay_store::now_ms(), 10)
                .await
                .unwrap()
                .is_empty()
    });
    // Its URI no longer resolves: a validation error at the field, nothing accepted.
    let mut body = gen4_turbo("from an expired upload");
    body["promptImage"] = json!(format!("runway://uploads/{id}"));
    let r = app.post("/v1/image_to_video", &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["issues"][0]["path"], json!(["promptImage"]));
}
