//! The media archive on S3 storage (a real S3-compatible server, moto, started by the test):
//! outputs land in the bucket and are served through reelay with ranges, or by redirect to a
//! presigned URL; frames are derived from the bucket; retention deletes from the bucket.

use crate::common;
use crate::moto;

use std::time::{Duration, Instant};

use common::{gen4_turbo, TestApp};
use moto::Moto;
use reelay_media::{S3Config, StorageKind};
use reelay_sim::SAMPLE_MP4;

async fn s3_app(moto: &Moto, bucket: &str, f: impl FnOnce(&mut reelay::config::Config)) -> TestApp {
    moto.create_bucket(bucket).await;
    let s3 = S3Config {
        bucket: bucket.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(moto.endpoint.clone()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        path_style: true,
        prefix: "reelay".into(),
        ..S3Config::default()
    };
    TestApp::spawn_with(|c| {
        c.media.storage = StorageKind::S3;
        c.media.s3 = s3;
        c.media.sweep_interval_ms = 100;
        f(c)
    })
    .await
}

fn ffmpeg_installed() -> bool {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn outputs_are_archived_to_s3_and_served_from_it() {
    let Some(moto) = Moto::start("outputs_are_archived_to_s3_and_served_from_it") else {
        return;
    };
    let app = s3_app(&moto, "served", |_| {}).await;
    let id = app.create("image_to_video", &gen4_turbo("s3")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    // In the bucket, under the prefix; nothing on local disk.
    let info = app
        .server
        .media
        .head(&format!("{id}/0.mp4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.size, SAMPLE_MP4.len() as u64);
    assert!(!app.dir.path().join("media").join(&id).exists());

    let url = t["output"][0].as_str().unwrap();
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.headers()["content-length"], SAMPLE_MP4.len().to_string());
    assert_eq!(&r.bytes().await.unwrap()[..], SAMPLE_MP4);
    let r = app
        .client
        .get(url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &SAMPLE_MP4[..100]);

    // ffmpeg read the video from the bucket (a presigned URL) to derive its frames.
    if ffmpeg_installed() {
        let task = app.server.store.get_task_by_id(&id).await.unwrap().unwrap();
        let media = reelay_api::task_media(&app.server.links, &task);
        let r = app.client.get(media.poster.unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        assert_eq!(&r.bytes().await.unwrap()[..3], b"\xff\xd8\xff");
    }
}

#[tokio::test]
async fn with_redirect_links_send_clients_to_presigned_urls() {
    let Some(moto) = Moto::start("with_redirect_links_send_clients_to_presigned_urls") else {
        return;
    };
    let app = s3_app(&moto, "redirected", |c| {
        c.media.redirect = true;
        c.media.presign_ttl_seconds = 300;
    })
    .await;
    let id = app.create("image_to_video", &gen4_turbo("redirect")).await;
    let t = app.wait_terminal(&id).await;
    let url = t["output"][0].as_str().unwrap();
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow.get(url).send().await.unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&moto.endpoint), "{location}");
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    let r = reqwest::get(&location).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], SAMPLE_MP4);
    // A client that follows redirects just gets the file, ranges included.
    let r = app
        .client
        .get(url)
        .header("range", "bytes=-100")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        &SAMPLE_MP4[SAMPLE_MP4.len() - 100..]
    );
}

#[tokio::test]
async fn retention_deletes_from_the_bucket() {
    let Some(moto) = Moto::start("retention_deletes_from_the_bucket") else {
        return;
    };
    let app = s3_app(&moto, "retained", |c| c.retention_seconds = 1).await;
    let id = app.create("image_to_video", &gen4_turbo("retention")).await;
    let t = app.wait_terminal(&id).await;
    assert_eq!(t["status"], "SUCCEEDED");
    let key = format!("{id}/0.mp4");
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.server.media.head(&key).await.unwrap().is_some()
        || !app
            .server
            .store
            .media_objects(&id)
            .await
            .unwrap()
            .is_empty()
    {
        assert!(Instant::now() < deadline, "the object was not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = app
        .client
        .get(t["output"][0].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
