//! The operator's task search on both backends: every filter, their combination, and paging
//! newest first without a gap or a repeat.

#[macro_use]
mod common;

use common::{insert, new_task, spec, Db};
use reelay_core::{Dialect, TaskSpec, TaskState::*};
use reelay_store::{CancelOutcome, Canceller, Store, TaskSearch, TaskUpdate};
use serde_json::json;

fn search() -> TaskSearch {
    TaskSearch {
        limit: 100,
        ..TaskSearch::default()
    }
}

async fn ids(s: &dyn Store, q: TaskSearch) -> Vec<String> {
    s.search_tasks(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

async fn every_filter_narrows_and_pages_walk_newest_first(db: Db) {
    let s = &*db.store;
    let a = s.create_account("a", 1_000_000).await.unwrap();
    let b = s.create_account("b", 1_000_000).await.unwrap();
    // Five of a's (runway, gen4_turbo), one of b's from the OpenAI dialect on another model.
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(insert(s, &a.id).await);
    }
    let other_spec = TaskSpec::parse(
        &reelay_core::Catalog::builtin(),
        "text_to_video",
        &json!({"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5}),
    )
    .unwrap();
    let theirs = s
        .insert_task(reelay_store::NewTask {
            dialect: Dialect::Openai,
            spec: other_spec,
            ..new_task(&b.id)
        })
        .await
        .unwrap();
    // One of a's goes to a channel and fails.
    let mut u = TaskUpdate::new(&mine[1].id, &[Queued]).to(Submitting);
    u.channel = Some("ch-1".into());
    s.update_task(u).await.unwrap().unwrap();
    let mut u = TaskUpdate::new(&mine[1].id, &[Submitting]).to(Failed);
    u.failure = Some(("X".into(), "x".into()));
    s.update_task(u).await.unwrap().unwrap();

    let all = ids(s, search()).await;
    let mut expected: Vec<String> = mine.iter().map(|t| t.id.clone()).collect();
    expected.push(theirs.id.clone());
    expected.reverse();
    assert_eq!(all, expected, "newest first");

    let of_a = ids(
        s,
        TaskSearch {
            account_id: Some(a.id.clone()),
            ..search()
        },
    )
    .await;
    assert_eq!(of_a.len(), 5);
    assert!(!of_a.contains(&theirs.id));
    let failed = ids(
        s,
        TaskSearch {
            states: vec![Failed],
            ..search()
        },
    )
    .await;
    assert_eq!(failed, vec![mine[1].id.clone()]);
    let live = ids(
        s,
        TaskSearch {
            states: vec![Queued, Running],
            ..search()
        },
    )
    .await;
    assert_eq!(live.len(), 5);
    let openai = ids(
        s,
        TaskSearch {
            dialect: Some(Dialect::Openai),
            ..search()
        },
    )
    .await;
    assert_eq!(openai, vec![theirs.id.clone()]);
    let model = ids(
        s,
        TaskSearch {
            model: Some(spec().model),
            ..search()
        },
    )
    .await;
    assert_eq!(model.len(), 5);
    let channel = ids(
        s,
        TaskSearch {
            channel: Some("ch-1".into()),
            ..search()
        },
    )
    .await;
    assert_eq!(channel, vec![mine[1].id.clone()]);
    // Filters combine.
    let none = ids(
        s,
        TaskSearch {
            account_id: Some(b.id.clone()),
            states: vec![Failed],
            ..search()
        },
    )
    .await;
    assert!(none.is_empty());
    // A time range: created at or after the third task, before the fifth.
    let ranged = ids(
        s,
        TaskSearch {
            account_id: Some(a.id.clone()),
            created_from: Some(mine[2].created_at),
            created_before: Some(mine[4].created_at + 1),
            ..search()
        },
    )
    .await;
    assert!(ranged.contains(&mine[2].id) && ranged.contains(&mine[4].id));
    assert!(!ranged.contains(&mine[0].id) || mine[0].created_at == mine[2].created_at);
    // Pages of two, each after the last id of the one before: all six, once each, in order.
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let page = ids(
            s,
            TaskSearch {
                before_id: before.clone(),
                limit: 2,
                ..search()
            },
        )
        .await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        before = page.last().cloned();
        walked.extend(page);
    }
    assert_eq!(walked, expected);
}

/// An operator's cancel refunds even a job the upstream took, keeps the task visible, and
/// leaves a finished task alone; the overview's activity counts what ended, per bucket.
async fn operator_cancels_and_activity(db: Db) {
    let s = &*db.store;
    let a = s.create_account("a", 1_000_000).await.unwrap();
    let running = insert(s, &a.id).await;
    let mut u = TaskUpdate::new(&running.id, &[Queued]).to(Submitting);
    u.channel = Some("ch".into());
    s.update_task(u).await.unwrap().unwrap();
    let mut u = TaskUpdate::new(&running.id, &[Submitting]).to(Running);
    u.upstream_id = Some("up-1".into());
    s.update_task(u).await.unwrap().unwrap();
    let start = reelay_store::now_ms() - 10;
    assert_eq!(
        s.cancel_task(&running.id, Canceller::Operator)
            .await
            .unwrap(),
        CancelOutcome::Cancelled
    );
    let t = common::get(s, &running.id).await;
    assert_eq!(t.state, Cancelled);
    assert!(!t.deleted);
    assert_eq!(t.credits_refunded, t.credits_held);
    assert!(t.cancel_upstream, "the upstream is still told to stop");
    assert!(
        s.get_task(&a.id, &t.id).await.unwrap().is_some(),
        "the client still sees it"
    );
    let entries = s.task_ledger(&t.id).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["hold", "refund"]);
    assert_eq!(entries[1].reason, "cancelled by operator");
    assert!(s.task_ledger("no-such-task").await.unwrap().is_empty());
    let events = s.task_events(&t.id).await.unwrap();
    assert_eq!(events.last().unwrap().data["by"], "operator");
    // Finished: nothing to cancel, nothing changes.
    assert_eq!(
        s.cancel_task(&running.id, Canceller::Operator)
            .await
            .unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(
        common::get(s, &running.id).await.credits_refunded,
        t.credits_held
    );
    // One more that fails: activity in one-minute buckets since before both.
    let failed = insert(s, &a.id).await;
    let mut u = TaskUpdate::new(&failed.id, &[Queued]).to(Failed);
    u.failure = Some(("X".into(), "x".into()));
    s.update_task(u).await.unwrap().unwrap();
    let act = s.activity(start, 60_000, 3).await.unwrap();
    assert_eq!(act.buckets.len(), 3);
    assert_eq!(act.buckets[0].cancelled, 1);
    assert_eq!(act.buckets[0].failed, 1);
    assert_eq!(act.buckets[0].succeeded, 0);
    assert_eq!(
        act.buckets[1..]
            .iter()
            .map(|b| b.failed + b.cancelled)
            .sum::<i64>(),
        0
    );
    assert_eq!(act.credits_refunded, t.credits_held + failed.credits_held);
    assert_eq!(act.credits_captured, 0);
    // Nothing ended after now.
    let later = s
        .activity(reelay_store::now_ms() + 60_000, 60_000, 2)
        .await
        .unwrap();
    assert_eq!(
        later
            .buckets
            .iter()
            .map(|b| b.failed + b.cancelled)
            .sum::<i64>(),
        0
    );
}

on_both!(
    every_filter_narrows_and_pages_walk_newest_first,
    operator_cancels_and_activity
);
