//! `MediaStore` against a real S3-compatible server (moto): streamed multipart upload with size
//! and hash, ranged reads, presigned URLs, prefixes, aborts and deletes.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use reelay_media::{MediaStore, S3Config};
use sha2::{Digest, Sha256};
use support::moto::Moto;

fn config(moto: &Moto, bucket: &str, prefix: &str) -> S3Config {
    S3Config {
        bucket: bucket.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(moto.endpoint.clone()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        path_style: true,
        prefix: prefix.into(),
        ..S3Config::default()
    }
}

#[tokio::test]
async fn s3_upload_range_presign_delete() {
    let Some(moto) = Moto::start("s3_upload_range_presign_delete") else {
        return;
    };
    moto.create_bucket("media").await;
    let store = MediaStore::s3(&config(&moto, "media", "")).unwrap();
    assert!(store.is_s3());

    // 12 MiB in 64 KiB chunks: three parts of a multipart upload.
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut up = store.upload("t1/0.mp4", "video/mp4").await.unwrap();
    for chunk in data.chunks(64 * 1024) {
        up.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert!(
        store.head("t1/0.mp4").await.unwrap().is_none(),
        "invisible before finish"
    );
    let stored = up.finish().await.unwrap();
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(
        store.head("t1/0.mp4").await.unwrap().unwrap().size,
        data.len() as u64
    );

    // A range across the first part boundary.
    let start = 5 * 1024 * 1024 - 10;
    let got: Vec<Bytes> = store
        .get("t1/0.mp4", Some(start as u64..start as u64 + 20))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.concat(), &data[start..start + 20]);

    // Presigned: fetchable without credentials, with the content type set at upload.
    let url = store
        .presign_get("t1/0.mp4", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);
    let r = reqwest::Client::new()
        .get(&url)
        .header("range", "bytes=-100")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[data.len() - 100..]);
    // ffmpeg reads S3 objects through such a URL.
    assert!(store
        .reader_input("t1/0.mp4")
        .await
        .unwrap()
        .starts_with(&moto.endpoint));

    // Small objects in one request.
    store
        .put(
            "t1/0.poster.jpg",
            "image/jpeg",
            Bytes::from_static(b"\xff\xd8\xffjpeg"),
        )
        .await
        .unwrap();
    assert_eq!(
        &store.get_bytes("t1/0.poster.jpg").await.unwrap()[..],
        b"\xff\xd8\xffjpeg"
    );

    store.delete("t1/0.mp4").await.unwrap();
    store.delete("t1/0.mp4").await.unwrap();
    assert!(store.head("t1/0.mp4").await.unwrap().is_none());
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(
        r.status(),
        404,
        "deleted objects are gone for presigned URLs too"
    );
}

#[tokio::test]
async fn s3_prefixes_and_aborted_uploads() {
    let Some(moto) = Moto::start("s3_prefixes_and_aborted_uploads") else {
        return;
    };
    moto.create_bucket("shared").await;
    let prefixed = MediaStore::s3(&config(&moto, "shared", "/reelay/")).unwrap();
    let root = MediaStore::s3(&config(&moto, "shared", "")).unwrap();
    prefixed
        .put("t2/0.png", "image/png", Bytes::from_static(b"png"))
        .await
        .unwrap();
    assert!(root.head("reelay/t2/0.png").await.unwrap().is_some());
    assert!(root.head("t2/0.png").await.unwrap().is_none());

    let mut up = prefixed.upload("t2/1.mp4", "video/mp4").await.unwrap();
    up.write(Bytes::from(vec![1u8; 6 * 1024 * 1024]))
        .await
        .unwrap();
    up.abort().await;
    assert!(prefixed.head("t2/1.mp4").await.unwrap().is_none());
    assert!(prefixed.upload("../escape", "video/mp4").await.is_err());
}
