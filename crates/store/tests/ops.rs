//! The operator's figures (`ops_snapshot`) and giving claims back at shutdown
//! (`release_leases`), on both backends.

#[macro_use]
mod common;

use common::{get, insert, Db};
use reelay_core::TaskState::*;
use reelay_store::{now_ms, TaskUpdate};

async fn the_snapshot_counts_tasks_queue_and_credits(db: Db) {
    let s = &*db.store;
    let empty = s.ops_snapshot(now_ms()).await.unwrap();
    assert_eq!((empty.queue_depth, empty.credits_held), (0, 0));
    let a = s.create_account("a", 1_000).await.unwrap();
    let (t1, t2, t3) = (
        insert(s, &a.id).await,
        insert(s, &a.id).await,
        insert(s, &a.id).await,
    );
    let price = t1.credits_held;
    // t2 succeeds (captured), t3 fails (refunded), t1 waits in the queue.
    for (t, to) in [(&t2, Succeeded), (&t3, Failed)] {
        s.update_task(TaskUpdate::new(&t.id, &[Queued]).to(Submitting))
            .await
            .unwrap()
            .unwrap();
        s.update_task(TaskUpdate::new(&t.id, &[Submitting]).to(Running))
            .await
            .unwrap()
            .unwrap();
        s.update_task(TaskUpdate::new(&t.id, &[Running]).to(to))
            .await
            .unwrap()
            .unwrap();
    }
    let snap = s.ops_snapshot(now_ms() + 1).await.unwrap();
    let by = |st: &str| {
        snap.tasks_by_state
            .iter()
            .find(|(s, _)| s == st)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!((by("queued"), by("succeeded"), by("failed")), (1, 1, 1));
    assert_eq!(snap.queue_depth, 1);
    assert_eq!(snap.oldest_due_at, get(s, &t1.id).await.next_attempt_at);
    assert_eq!(snap.credits_held, price);
    assert_eq!(snap.credits_captured, price);
    assert_eq!(snap.credits_refunded, price);
}

async fn released_claims_are_due_again_and_submitting_ones_later(db: Db) {
    let s = &*db.store;
    let a = s.create_account("a", 1_000_000).await.unwrap();
    let (q, sub) = (insert(s, &a.id).await, insert(s, &a.id).await);
    let now = now_ms();
    let claimed = s.claim_due("w1", now + 10, now + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    s.update_task(
        TaskUpdate::new(&sub.id, &[Queued])
            .leased_by("w1")
            .to(Submitting),
    )
    .await
    .unwrap()
    .unwrap();
    // Another owner's claims are not touched.
    assert_eq!(s.release_leases("w2", now, now + 5_000).await.unwrap(), 0);
    assert_eq!(s.release_leases("w1", now, now + 5_000).await.unwrap(), 2);
    let (q, sub) = (get(s, &q.id).await, get(s, &sub.id).await);
    assert_eq!((q.lease_owner, q.next_attempt_at), (None, Some(now)));
    assert_eq!(
        (sub.lease_owner, sub.next_attempt_at),
        (None, Some(now + 5_000))
    );
    assert_eq!(
        s.claim_due("w3", now + 10, now + 60_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

on_both!(
    the_snapshot_counts_tasks_queue_and_credits,
    released_claims_are_due_again_and_submitting_ones_later
);
