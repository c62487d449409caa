//! The channel registry, the per-channel submit rate and the wake of a task waiting for
//! capacity, on both backends (and across instances where it matters).

#[macro_use]
mod common;

use std::sync::Arc;

use common::{contains_bytes, get, insert, Db};
use reelay_core::TaskState::*;
use reelay_store::{now_ms, ChannelSource, ChannelWrite, KeyChange, Store, SubmitRate, TaskUpdate};
use serde_json::json;

fn write(name: &str, priority: i64, key: KeyChange) -> ChannelWrite {
    ChannelWrite {
        name: name.into(),
        config: json!({"name": name, "kind": "runway", "base_url": "https://up.example", "priority": priority}),
        key,
        enabled: None,
        source: ChannelSource::Admin,
    }
}

/// Adds, replaces, switches, removes and re-adds; the key is sealed at rest and opened on
/// read; every write moves the fingerprint.
async fn registry_round_trip(db: Db) {
    let s = &*db.store;
    let f0 = s.channels_fingerprint().await.unwrap();
    s.put_channel(&write("a", 1, KeyChange::Set("sk-secret-a".into())))
        .await
        .unwrap();
    let f1 = s.channels_fingerprint().await.unwrap();
    assert_ne!(f0, f1);
    let all = s.list_channels().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].api_key.as_deref(), Some("sk-secret-a"));
    assert!(all[0].enabled);
    assert_eq!(all[0].config["priority"], 1);
    assert!(
        !format!("{:?}", all[0]).contains("sk-secret"),
        "Debug never shows the key"
    );
    let bytes = db.raw_contents().await;
    assert!(
        contains_bytes(&bytes, b"up.example"),
        "sanity: the config is in what we read"
    );
    assert!(
        !contains_bytes(&bytes, b"sk-secret-a"),
        "the key is sealed at rest"
    );

    // Replaced, keeping the key; switched off with a reason.
    s.put_channel(&write("a", 2, KeyChange::Keep))
        .await
        .unwrap();
    assert!(s
        .set_channel_enabled("a", false, Some("out of credit"))
        .await
        .unwrap());
    let a = &s.list_channels().await.unwrap()[0];
    assert_eq!(
        (
            a.config["priority"].as_i64(),
            a.api_key.as_deref(),
            a.enabled
        ),
        (Some(2), Some("sk-secret-a"), false)
    );
    assert_eq!(a.disabled_reason.as_deref(), Some("out of credit"));
    // A replacement keeps the operator's switch.
    s.put_channel(&write("a", 3, KeyChange::Keep))
        .await
        .unwrap();
    assert!(!s.list_channels().await.unwrap()[0].enabled);
    assert!(s
        .set_channel_enabled("a", true, Some("ignored"))
        .await
        .unwrap());
    let a = &s.list_channels().await.unwrap()[0];
    assert!(a.enabled && a.disabled_reason.is_none());
    assert!(!s.set_channel_enabled("nope", true, None).await.unwrap());

    // Removed: kept as a row (tasks on it finish), out of service, then back as new.
    let before = s.channels_fingerprint().await.unwrap();
    assert!(s.remove_channel("a").await.unwrap());
    assert!(!s.remove_channel("a").await.unwrap(), "removed once");
    assert_ne!(s.channels_fingerprint().await.unwrap(), before);
    let a = &s.list_channels().await.unwrap()[0];
    assert!(a.removed_at.is_some() && !a.enabled);
    assert!(!s.set_channel_enabled("a", true, None).await.unwrap());
    s.put_channel(&write("a", 4, KeyChange::Clear))
        .await
        .unwrap();
    let a = &s.list_channels().await.unwrap()[0];
    assert!(a.removed_at.is_none() && a.enabled && a.api_key.is_none());
}

/// `limit` submits per window across two handles racing, the rest refused without a write.
async fn submit_rate_holds_across_instances(db: Db) {
    let other = db.open_another().await.store();
    let handles = [db.store.clone(), other];
    let acct = db.store.create_account("a", 1_000_000).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(insert(&*db.store, &acct.id).await.id);
    }
    // A window long enough that the race cannot straddle two.
    let rate = SubmitRate {
        slot_ms: 3_600_000,
        limit: 3,
    };
    let barrier = Arc::new(tokio::sync::Barrier::new(ids.len()));
    let racers: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let store: Arc<dyn Store> = handles[i % 2].clone();
            let u = TaskUpdate {
                channel: Some("ch".into()),
                submit_rate: Some(rate),
                ..TaskUpdate::new(id, &[Queued]).to(Submitting)
            };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.update_task(u).await.expect("update")
            })
        })
        .collect();
    let through = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_some())
        .count();
    assert_eq!(through, 3, "exactly `limit` submits in a window");
    assert_eq!(
        db.store
            .purge_channel_submits(now_ms() - 7_200_000)
            .await
            .unwrap(),
        0,
        "a current window is kept"
    );
    assert_eq!(
        db.store
            .purge_channel_submits(now_ms() + 3_600_001)
            .await
            .unwrap(),
        1
    );
}

#[test]
fn rates_below_one_a_second_get_longer_windows() {
    assert_eq!(
        SubmitRate::per_second(5.0),
        Some(SubmitRate {
            slot_ms: 1000,
            limit: 5
        })
    );
    assert_eq!(
        SubmitRate::per_second(0.25),
        Some(SubmitRate {
            slot_ms: 4000,
            limit: 1
        })
    );
    assert_eq!(SubmitRate::per_second(0.0), None);
    assert_eq!(SubmitRate::per_second(f64::NAN), None);
    let r = SubmitRate::per_second(0.5).unwrap();
    assert_eq!(r.slot(4_100), 4_000);
}

/// A task giving its slot back makes the longest-waiting `throttled` task due now; one
/// still in its lease or already due is left alone.
async fn a_freed_slot_wakes_the_longest_waiting_task(db: Db) {
    let s = &*db.store;
    let acct = s.create_account("a", 1_000_000).await.unwrap();
    let holder = insert(s, &acct.id).await;
    let far = now_ms() + 3_600_000;
    let mut waiting = Vec::new();
    for i in 0..3 {
        let t = insert(s, &acct.id).await;
        let mut u = TaskUpdate::new(&t.id, &[Queued]).to(Throttled);
        u.next_attempt_at = Some(Some(far + i * 1000));
        s.update_task(u).await.unwrap().unwrap();
        waiting.push(t.id);
    }
    let mut u = TaskUpdate::new(&holder.id, &[Queued]).to(Submitting);
    u.channel = Some("ch".into());
    s.update_task(u).await.unwrap().unwrap();
    // Moving within the slot wakes nobody.
    let mut u = TaskUpdate::new(&holder.id, &[Submitting]).to(Running);
    u.upstream_id = Some("up-1".into());
    s.update_task(u).await.unwrap().unwrap();
    assert!(get(s, &waiting[0]).await.next_attempt_at.unwrap() >= far);
    // Counted per channel in one query as one by one (waiting tasks hold no slot).
    let all = s.in_flight_by_channel().await.unwrap();
    assert_eq!(all.get("ch").copied(), Some(1));
    assert_eq!(all.len(), 1);
    assert_eq!(s.count_in_flight("ch").await.unwrap(), 1);
    // Finishing frees it: the first waiter is due now, the others still wait.
    let before = now_ms();
    let mut u = TaskUpdate::new(&holder.id, &[Running]).to(Failed);
    u.failure = Some(("X".into(), "x".into()));
    s.update_task(u).await.unwrap().unwrap();
    assert!(s.in_flight_by_channel().await.unwrap().is_empty());
    let first = get(s, &waiting[0]).await.next_attempt_at.unwrap();
    assert!(first >= before && first <= now_ms(), "woken: due now");
    assert!(get(s, &waiting[1]).await.next_attempt_at.unwrap() >= far);
    assert!(get(s, &waiting[2]).await.next_attempt_at.unwrap() >= far);
}

on_both!(
    registry_round_trip,
    a_freed_slot_wakes_the_longest_waiting_task
);
on_both!(multi: submit_rate_holds_across_instances);

/// A client's cancel of a task holding a slot wakes the longest waiter too.
async fn a_cancel_wakes_the_longest_waiting_task(db: Db) {
    let s = &*db.store;
    let acct = s.create_account("a", 1_000_000).await.unwrap();
    let holder = insert(s, &acct.id).await;
    let waiter = insert(s, &acct.id).await;
    let far = now_ms() + 3_600_000;
    let mut u = TaskUpdate::new(&waiter.id, &[Queued]).to(Throttled);
    u.next_attempt_at = Some(Some(far));
    s.update_task(u).await.unwrap().unwrap();
    let mut u = TaskUpdate::new(&holder.id, &[Queued]).to(Submitting);
    u.channel = Some("ch".into());
    s.update_task(u).await.unwrap().unwrap();
    let mut u = TaskUpdate::new(&holder.id, &[Submitting]).to(Running);
    u.upstream_id = Some("up-1".into());
    s.update_task(u).await.unwrap().unwrap();
    assert_eq!(
        s.cancel_or_delete(&acct.id, &holder.id, false)
            .await
            .unwrap(),
        reelay_store::CancelOutcome::Cancelled
    );
    assert!(get(s, &waiter.id).await.next_attempt_at.unwrap() <= now_ms());
}

on_both!(a_cancel_wakes_the_longest_waiting_task);
