//! The media archive's records: objects per task, what serving needs, the sweeper's work list
//! (expiry, client deletion, late archivers) and per-account retention, on both backends.

#[macro_use]
mod common;

use common::Db;
use reelay_core::{Catalog, TaskSpec, TaskState};
use reelay_store::{now_ms, MediaKind, MediaObject, NewTask, Store, Task, TaskUpdate};
use serde_json::json;

async fn succeeded_task(store: &dyn Store, account: &str, expires_at: i64) -> Task {
    let spec = TaskSpec::parse(
        &Catalog::builtin(),
        "image_to_video",
        &json!({"model":"gen4_turbo","promptImage":"https://example.com/a.jpg","ratio":"1280:720","duration":5}),
    )
    .unwrap();
    let t = store
        .insert_task(NewTask {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: account.into(),
            key_id: None,
            dialect: reelay_core::Dialect::Runway,
            spec,
        })
        .await
        .unwrap();
    for (from, to) in [
        (TaskState::Queued, TaskState::Submitting),
        (TaskState::Submitting, TaskState::Running),
    ] {
        store
            .update_task(TaskUpdate::new(&t.id, &[from]).to(to))
            .await
            .unwrap()
            .unwrap();
    }
    let mut u = TaskUpdate::new(&t.id, &[TaskState::Running]).to(TaskState::Succeeded);
    u.outputs = Some(vec!["0.mp4".into()]);
    u.poster = Some("0.poster.jpg".into());
    u.last_frame = Some("0.last.jpg".into());
    u.expires_at = Some(expires_at);
    u.archive_started_at = Some(now_ms());
    store.update_task(u).await.unwrap().unwrap()
}

fn object(task: &str, name: &str, kind: MediaKind) -> MediaObject {
    MediaObject {
        task_id: task.into(),
        name: name.into(),
        kind,
        output_index: 0,
        content_type: "video/mp4".into(),
        size: 10,
        sha256: "ab".repeat(32),
        source_url: Some("https://cdn.example/x.mp4".into()),
        created_at: now_ms(),
    }
}

async fn objects_are_recorded_served_swept_and_forgotten(db: Db) {
    let store = &*db.store;
    let acct = store.create_account("a", 1000).await.unwrap();
    let past = now_ms() - 1;
    let expired = succeeded_task(store, &acct.id, past).await;
    let live = succeeded_task(store, &acct.id, now_ms() + 3_600_000).await;
    assert_eq!(expired.poster.as_deref(), Some("0.poster.jpg"));
    assert_eq!(expired.last_frame.as_deref(), Some("0.last.jpg"));
    assert_eq!(expired.expires_at, Some(past));
    assert!(expired.archive_started_at.is_some());

    for t in [&expired, &live] {
        store
            .record_media(&[
                object(&t.id, "0.mp4", MediaKind::Output),
                object(&t.id, "0.poster.jpg", MediaKind::Poster),
            ])
            .await
            .unwrap();
    }
    // Recording again replaces the row.
    let mut again = object(&live.id, "0.mp4", MediaKind::Output);
    again.size = 11;
    store.record_media(&[again.clone()]).await.unwrap();
    let served = store
        .media_object(&live.id, "0.mp4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.object, again);
    assert_eq!(served.account_id, acct.id);
    assert!(!served.deleted);
    assert_eq!(served.object.key(), format!("{}/0.mp4", live.id));
    assert!(store
        .media_object(&live.id, "9.mp4")
        .await
        .unwrap()
        .is_none());

    // Only the expired task is on the work list, within the limit.
    assert_eq!(
        store.expired_media(now_ms(), 10).await.unwrap(),
        vec![expired.id.clone()]
    );
    assert_eq!(
        store.expired_media(now_ms(), 0).await.unwrap(),
        Vec::<String>::new()
    );
    let names: Vec<String> = store
        .media_objects(&expired.id)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, vec!["0.mp4", "0.poster.jpg"]);
    store
        .media_purged(&expired.id, &names, now_ms())
        .await
        .unwrap();
    assert!(store.media_objects(&expired.id).await.unwrap().is_empty());
    assert!(store.expired_media(now_ms(), 10).await.unwrap().is_empty());

    // An object recorded after the purge (a late archiver) puts the task back on the list.
    store
        .record_media(&[object(&expired.id, "0.last.jpg", MediaKind::LastFrame)])
        .await
        .unwrap();
    assert_eq!(
        store.expired_media(now_ms(), 10).await.unwrap(),
        vec![expired.id.clone()]
    );
    // A purge that missed it leaves the task listed.
    store
        .media_purged(&expired.id, &[], now_ms())
        .await
        .unwrap();
    assert_eq!(
        store.expired_media(now_ms(), 10).await.unwrap(),
        vec![expired.id.clone()]
    );
}

async fn deleting_a_finished_task_expires_its_media_now(db: Db) {
    let store = &*db.store;
    let acct = store.create_account("a", 1000).await.unwrap();
    let t = succeeded_task(store, &acct.id, now_ms() + 3_600_000).await;
    store
        .record_media(&[object(&t.id, "0.mp4", MediaKind::Output)])
        .await
        .unwrap();
    assert!(store.expired_media(now_ms(), 10).await.unwrap().is_empty());
    store
        .cancel_or_delete(&acct.id, &t.id, false)
        .await
        .unwrap();
    assert_eq!(
        store.expired_media(now_ms(), 10).await.unwrap(),
        vec![t.id.clone()]
    );
    assert!(
        store
            .media_object(&t.id, "0.mp4")
            .await
            .unwrap()
            .unwrap()
            .deleted
    );
}

async fn expire_media_only_brings_expiry_forward(db: Db) {
    let store = &*db.store;
    let acct = store.create_account("a", 1000).await.unwrap();
    let t = succeeded_task(store, &acct.id, 1_000).await;
    store.expire_media(&t.id, 5_000).await.unwrap();
    assert_eq!(
        store
            .get_task_by_id(&t.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        Some(1_000)
    );
    let t2 = succeeded_task(store, &acct.id, 9_000_000_000_000).await;
    store.expire_media(&t2.id, 5_000).await.unwrap();
    assert_eq!(
        store
            .get_task_by_id(&t2.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        Some(5_000)
    );
}

async fn accounts_carry_their_own_retention(db: Db) {
    let store = &*db.store;
    let acct = store.create_account("a", 0).await.unwrap();
    assert_eq!(acct.retention_seconds, None);
    let a = store
        .set_account_retention(&acct.id, Some(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.retention_seconds, Some(60));
    let a = store
        .set_account_retention(&acct.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.retention_seconds, None);
    assert!(store
        .set_account_retention("acct_nope", Some(1))
        .await
        .unwrap()
        .is_none());
}

on_both!(
    objects_are_recorded_served_swept_and_forgotten,
    deleting_a_finished_task_expires_its_media_now,
    expire_media_only_brings_expiry_forward,
    accounts_carry_their_own_retention,
);
