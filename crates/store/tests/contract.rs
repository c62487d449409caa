//! The store's contract: every test here runs on SQLite and on PostgreSQL (see `common`):
//! claiming, leases, conditional transitions, cancel and delete, the channel cap, API keys,
//! durability across reopen, a property test over random transition sequences, and the
//! concurrency the single-writer SQLite never shows: several instances accepting, taking
//! channel slots, writing one task's outbox and claiming at once.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::{contains_bytes, drive, events, get, insert, new_task, Db, Kind};
use proptest::prelude::*;
use reelay_core::TaskState;
use reelay_store::postgres::PgStore;
use reelay_store::{
    generate_api_key, hash_api_key, now_ms, AcceptOutcome, Acceptance, CallbackMessage, Callbacks,
    CancelOutcome, IdempotencyRecord, NewAccount, Store, StoreError, Task, TaskEvent, TaskUpdate,
    Wake, WebhookAttempt, WebhookNext,
};
use serde_json::json;

use TaskState::*;

// ---------------------------------------------------------------- 1. concurrent claiming

/// `tasks` tasks, 8 workers (spread over `stores` instances on the same database) claiming in
/// batches of 16 until nothing is due: every task is claimed exactly once.
async fn concurrent_claims(db: Db, stores: usize, tasks: usize) {
    let mut handles = vec![db.store.clone()];
    for _ in 1..stores {
        handles.push(db.open_another().await.store());
    }
    let acct = db.store.create_account("a", 1_000_000).await.unwrap();
    let mut ids = HashSet::new();
    for _ in 0..tasks {
        ids.insert(insert(&*db.store, &acct.id).await.id);
    }
    let now = now_ms();
    let lease_until = now + 60_000;

    let workers: Vec<_> = (0..8)
        .map(|w| {
            let store = handles[w % handles.len()].clone();
            tokio::spawn(async move {
                let owner = format!("worker-{w}");
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_due(&owner, now, lease_until, 16)
                        .await
                        .expect("claim");
                    assert!(got.len() <= 16, "claimed {} > limit 16", got.len());
                    if got.is_empty() {
                        break;
                    }
                    for t in got {
                        assert_eq!(t.lease_owner.as_deref(), Some(owner.as_str()));
                        assert_eq!(t.lease_until, Some(lease_until));
                        assert_eq!(
                            t.next_attempt_at,
                            Some(lease_until),
                            "claimed task comes due at lease expiry"
                        );
                        mine.push(t.id);
                    }
                    tokio::task::yield_now().await;
                }
                (owner, mine)
            })
        })
        .collect();

    let mut claimed_by: HashMap<String, Vec<String>> = HashMap::new();
    for (owner, mine) in futures::future::join_all(workers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
    {
        for id in mine {
            claimed_by.entry(id).or_default().push(owner.clone());
        }
    }
    let doubles: Vec<_> = claimed_by.iter().filter(|(_, o)| o.len() > 1).collect();
    assert!(
        doubles.is_empty(),
        "tasks claimed more than once: {doubles:?}"
    );
    let claimed: HashSet<String> = claimed_by.keys().cloned().collect();
    assert_eq!(claimed, ids, "every inserted task is claimed exactly once");

    // The stored lease is the one the claimer saw.
    for (id, owners) in &claimed_by {
        let t = get(&*db.store, id).await;
        assert_eq!(
            t.lease_owner.as_deref(),
            Some(owners[0].as_str()),
            "task {id}"
        );
        assert_eq!(t.state, Queued, "claiming does not change the state");
    }

    // Nothing is due before the leases expire; everything comes due again at `lease_until`.
    assert_eq!(db.store.next_due_at().await.unwrap(), Some(lease_until));
    assert!(db
        .store
        .claim_due("late", lease_until - 1, lease_until + 1, 1000)
        .await
        .unwrap()
        .is_empty());
    let again = db
        .store
        .claim_due("late", lease_until, lease_until + 60_000, 1000)
        .await
        .unwrap();
    assert_eq!(again.len(), tasks, "expired leases are claimable again");
}

async fn concurrent_claims_take_each_task_once(db: Db) {
    concurrent_claims(db, 1, 300).await;
}

/// The same with two store handles on one file (two processes sharing the database).
async fn concurrent_claims_take_each_task_once_across_two_handles(db: Db) {
    concurrent_claims(db, 2, 300).await;
}

// ---------------------------------------------------------------- 2. lease expiry

async fn expired_lease_passes_to_another_owner(db: Db) {
    let s = &*db.store;
    let acct = s.create_account("a", 1_000_000).await.unwrap();
    let t = insert(s, &acct.id).await;
    let now = now_ms();

    // A live lease keeps the task away from others.
    let live = s.claim_due("holder", now, now + 60_000, 10).await.unwrap();
    assert_eq!(live.iter().map(|t| &t.id).collect::<Vec<_>>(), vec![&t.id]);
    assert!(s
        .claim_due("thief", now, now + 60_000, 10)
        .await
        .unwrap()
        .is_empty());

    // Re-lease it to "old" with a lease already in the past (the test clock jumps forward).
    let later = now + 60_000;
    let old = s.claim_due("old", later, later - 1_000, 10).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].lease_owner.as_deref(), Some("old"));
    assert!(s.next_due_at().await.unwrap().unwrap() <= later);

    // The lease has expired: "new" claims it.
    let new = s.claim_due("new", later, later + 60_000, 10).await.unwrap();
    assert_eq!(
        new.len(),
        1,
        "an expired lease is claimable by another owner"
    );
    assert_eq!(new[0].id, t.id);
    assert_eq!(new[0].lease_owner.as_deref(), Some("new"));

    // The old owner can no longer change the task...
    let stale = s
        .update_task(
            TaskUpdate::new(&t.id, &[Queued])
                .leased_by("old")
                .to(Submitting),
        )
        .await
        .unwrap();
    assert!(
        stale.is_none(),
        "update by the previous lease owner must not apply"
    );
    let after = get(s, &t.id).await;
    assert_eq!(after.state, Queued);
    assert_eq!(after.lease_owner.as_deref(), Some("new"));
    assert_eq!(events(s, &t.id).await.len(), 1);
    // ... not even a progress-only update.
    let stale = s
        .update_task(TaskUpdate {
            progress: Some(0.5),
            ..TaskUpdate::new(&t.id, &[Queued]).leased_by("old")
        })
        .await
        .unwrap();
    assert!(stale.is_none());
    assert_eq!(get(s, &t.id).await.progress, 0.0);

    // ... while the new owner's update applies.
    let moved = s
        .update_task(
            TaskUpdate::new(&t.id, &[Queued])
                .leased_by("new")
                .to(Submitting),
        )
        .await
        .unwrap()
        .expect("the current lease owner's update applies");
    assert_eq!(moved.state, Submitting);
    let ev = events(s, &t.id).await;
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[1].from_state, ev[1].to_state),
        (Some(Queued), Submitting)
    );
}

// ---------------------------------------------------------------- 3. conditional transitions

async fn transitions_are_conditional_and_evented(db: Db) {
    let s = &*db.store;
    let acct = s.create_account("a", 1_000_000).await.unwrap();
    let t = insert(s, &acct.id).await;
    let ev0 = events(s, &t.id).await;
    assert_eq!(ev0.len(), 1);
    assert_eq!((ev0[0].from_state, ev0[0].to_state), (None, Queued));

    // Unknown task.
    assert!(s
        .update_task(TaskUpdate::new("nope", &TaskState::ALL).to(Failed))
        .await
        .unwrap()
        .is_none());

    // Wrong `from`: nothing changes, not even updated_at or other fields.
    let before = get(s, &t.id).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = s
        .update_task(TaskUpdate {
            progress: Some(0.9),
            channel: Some("c".into()),
            failure: Some(("X".into(), "x".into())),
            ..TaskUpdate::new(&t.id, &[Running, Submitting]).to(Succeeded)
        })
        .await
        .unwrap();
    assert!(
        r.is_none(),
        "update from a state the task is not in must not apply"
    );
    let after = get(s, &t.id).await;
    assert_eq!(after.state, Queued);
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(after.progress, 0.0);
    assert_eq!(after.channel, None);
    assert_eq!(after.failure_code, None);
    assert_eq!(events(s, &t.id).await.len(), 1);
    // ... also when the move itself would be allowed from the actual state (queued -> failed),
    // and for a progress-only update.
    assert!(Queued.can_move_to(Failed));
    assert!(s
        .update_task(TaskUpdate::new(&t.id, &[Running]).to(Failed))
        .await
        .unwrap()
        .is_none());
    let r = s
        .update_task(TaskUpdate {
            progress: Some(0.3),
            ..TaskUpdate::new(&t.id, &[Running])
        })
        .await
        .unwrap();
    assert!(r.is_none());
    let after = get(s, &t.id).await;
    assert_eq!((after.state, after.progress), (Queued, 0.0));
    assert_eq!(events(s, &t.id).await.len(), 1);

    // `from` matches but the state machine forbids queued -> running.
    assert!(!Queued.can_move_to(Running));
    assert!(s
        .update_task(TaskUpdate::new(&t.id, &[Queued]).to(Running))
        .await
        .unwrap()
        .is_none());
    assert_eq!(get(s, &t.id).await.state, Queued);
    assert_eq!(events(s, &t.id).await.len(), 1);

    // A state change appends exactly one event with the right from/to.
    let sub = s
        .update_task(TaskUpdate {
            event_data: Some(json!({"note": "go"})),
            ..TaskUpdate::new(&t.id, &[Queued, Throttled]).to(Submitting)
        })
        .await
        .unwrap()
        .expect("queued -> submitting");
    assert_eq!(sub.state, Submitting);
    assert!(sub.started_at.is_some());
    let ev = events(s, &t.id).await;
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[1].from_state, ev[1].to_state),
        (Some(Queued), Submitting)
    );
    assert_eq!(ev[1].data["note"], "go");

    drive(s, &t.id, &[Running]).await;
    let ev = events(s, &t.id).await;
    assert_eq!(ev.len(), 3);
    assert_eq!(
        (ev[2].from_state, ev[2].to_state),
        (Some(Submitting), Running)
    );

    // Progress-only updates (running -> running, or no `to`) append no event.
    let p = s
        .update_task(TaskUpdate {
            progress: Some(0.5),
            ..TaskUpdate::new(&t.id, &[Running]).to(Running)
        })
        .await
        .unwrap()
        .expect("running -> running progress update");
    assert_eq!((p.state, p.progress), (Running, 0.5));
    let p = s
        .update_task(TaskUpdate {
            progress: Some(0.75),
            ..TaskUpdate::new(&t.id, &[Running])
        })
        .await
        .unwrap()
        .expect("progress update without a state");
    assert_eq!((p.state, p.progress), (Running, 0.75));
    assert_eq!(
        events(s, &t.id).await.len(),
        3,
        "progress updates append no event"
    );

    // To a terminal state: one event, with the failure facts when failing.
    let done = drive(s, &t.id, &[Succeeded]).await;
    assert_eq!(done.progress, 1.0);
    assert!(done.finished_at.is_some());
    let ev = events(s, &t.id).await;
    assert_eq!(ev.len(), 4);
    assert_eq!(
        (ev[3].from_state, ev[3].to_state),
        (Some(Running), Succeeded)
    );

    // A transition the state machine forbids (succeeded -> running), even with `from` right.
    for to in TaskState::ALL {
        let r = s
            .update_task(TaskUpdate::new(&t.id, &[Succeeded]).to(to))
            .await
            .unwrap();
        assert!(r.is_none(), "succeeded -> {to} must not apply");
    }
    let end = get(s, &t.id).await;
    assert_eq!(end.state, Succeeded);
    assert_eq!(events(s, &t.id).await.len(), 4);

    // Event ids are distinct (receivers de-duplicate on them).
    let ids: HashSet<_> = events(s, &t.id).await.into_iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 4);

    // Failure facts land on the task and the event.
    let f = insert(s, &acct.id).await;
    let failed = s
        .update_task(TaskUpdate {
            failure: Some(("UPSTREAM".into(), "boom".into())),
            ..TaskUpdate::new(&f.id, &[Queued]).to(Failed)
        })
        .await
        .unwrap()
        .expect("queued -> failed");
    assert_eq!(failed.failure_code.as_deref(), Some("UPSTREAM"));
    let ev = events(s, &f.id).await;
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].data["failure_code"], "UPSTREAM");
}

// ---------------------------------------------------------------- 4. conflicting transitions

async fn conflicting_terminal_moves(db: Db, stores: usize) {
    let mut handles = vec![db.store.clone()];
    for _ in 1..stores {
        handles.push(db.open_another().await.store());
    }
    let acct = db.store.create_account("a", 1_000_000).await.unwrap();
    let t = insert(&*db.store, &acct.id).await;
    drive(&*db.store, &t.id, &[Submitting, Running]).await;

    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let store = handles[i % handles.len()].clone();
            let id = t.id.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let to = if i % 2 == 0 { Succeeded } else { Failed };
                barrier.wait().await;
                let r = store
                    .update_task(TaskUpdate::new(&id, &[Running]).to(to))
                    .await
                    .expect("update");
                r.map(|task| (to, task))
            })
        })
        .collect();
    let winners: Vec<_> = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one conflicting transition applies, got {}",
        winners.len()
    );
    let (to, task) = &winners[0];
    assert_eq!(task.state, *to);
    assert_eq!(get(&*db.store, &t.id).await.state, *to);
    let ev = events(&*db.store, &t.id).await;
    let terminal: Vec<_> = ev.iter().filter(|e| e.to_state.is_terminal()).collect();
    assert_eq!(terminal.len(), 1, "exactly one terminal event: {ev:?}");
    assert_eq!(
        (terminal[0].from_state, terminal[0].to_state),
        (Some(Running), *to)
    );
    assert_eq!(ev.len(), 4);
}

async fn conflicting_terminal_moves_one_wins(db: Db) {
    conflicting_terminal_moves(db, 1).await;
}

async fn conflicting_terminal_moves_one_wins_across_two_handles(db: Db) {
    conflicting_terminal_moves(db, 2).await;
}

// ---------------------------------------------------------------- 5. cancel_or_delete

async fn cancel_or_delete_semantics(db: Db) {
    let s = &*db.store;
    let a = s.create_account("a", 1_000_000).await.unwrap();
    let b = s.create_account("b", 1_000_000).await.unwrap();

    // A queued task is cancelled, then gone for the client; the event is recorded.
    let q = insert(s, &a.id).await;
    assert_eq!(
        s.cancel_or_delete(&a.id, &q.id, false).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert!(
        s.get_task(&a.id, &q.id).await.unwrap().is_none(),
        "a cancelled task is not visible"
    );
    let qt = get(s, &q.id).await;
    assert_eq!(qt.state, Cancelled);
    assert!(qt.deleted);
    assert!(qt.finished_at.is_some());
    assert!(
        !qt.cancel_upstream,
        "nothing upstream to cancel for a queued task"
    );
    assert_eq!(
        qt.next_attempt_at, None,
        "nothing left to do for a cancelled queued task"
    );
    let ev = events(s, &q.id).await;
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[1].from_state, ev[1].to_state),
        (Some(Queued), Cancelled)
    );
    // Cancelling twice: the task is gone.
    assert_eq!(
        s.cancel_or_delete(&a.id, &q.id, false).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(events(s, &q.id).await.len(), 2);
    // ... and the engine cannot move it any more.
    assert!(s
        .update_task(TaskUpdate::new(&q.id, &TaskState::ALL).to(Submitting))
        .await
        .unwrap()
        .is_none());

    // A finished task is deleted: no new event, state kept.
    let f = insert(s, &a.id).await;
    drive(s, &f.id, &[Failed]).await;
    assert_eq!(
        s.cancel_or_delete(&a.id, &f.id, false).await.unwrap(),
        CancelOutcome::Deleted
    );
    assert!(s.get_task(&a.id, &f.id).await.unwrap().is_none());
    let ft = get(s, &f.id).await;
    assert_eq!(ft.state, Failed);
    assert!(ft.deleted);
    assert_eq!(events(s, &f.id).await.len(), 2);
    assert_eq!(
        s.cancel_or_delete(&a.id, &f.id, false).await.unwrap(),
        CancelOutcome::NotFound
    );

    // Another account's task: NotFound, and untouched.
    let x = insert(s, &a.id).await;
    assert!(s.get_task(&b.id, &x.id).await.unwrap().is_none());
    assert_eq!(
        s.cancel_or_delete(&b.id, &x.id, false).await.unwrap(),
        CancelOutcome::NotFound
    );
    let xt = s
        .get_task(&a.id, &x.id)
        .await
        .unwrap()
        .expect("still visible to its owner");
    assert_eq!(xt.state, Queued);
    assert!(!xt.deleted);
    assert_eq!(events(s, &x.id).await.len(), 1);

    // Unknown id.
    assert_eq!(
        s.cancel_or_delete(&a.id, "no-such-task", false)
            .await
            .unwrap(),
        CancelOutcome::NotFound
    );

    // A running task with an upstream job, leased by a worker: the upstream cancel is owed and
    // due now, for any worker.
    let r = insert(s, &a.id).await;
    let now = now_ms();
    let claimed = s.claim_due("w1", now, now + 60_000, 100).await.unwrap();
    assert!(claimed.iter().any(|t| t.id == r.id));
    s.update_task(
        TaskUpdate::new(&r.id, &[Queued])
            .leased_by("w1")
            .to(Submitting),
    )
    .await
    .unwrap()
    .unwrap();
    s.update_task(TaskUpdate {
        upstream_id: Some("up_123".into()),
        ..TaskUpdate::new(&r.id, &[Submitting])
            .leased_by("w1")
            .to(Running)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        s.cancel_or_delete(&a.id, &r.id, false).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let after = now_ms();
    let rt = get(s, &r.id).await;
    assert_eq!(rt.state, Cancelled);
    assert!(rt.cancel_upstream, "the engine owes the upstream cancel");
    assert_eq!(rt.upstream_id.as_deref(), Some("up_123"));
    let due = rt
        .next_attempt_at
        .expect("an owed upstream cancel has a due time");
    assert!(
        due <= after,
        "the upstream cancel is due now, not at the old lease expiry ({due} > {after})"
    );
    assert!(s.get_task(&a.id, &r.id).await.unwrap().is_none());
    let ev = events(s, &r.id).await;
    assert_eq!(
        (ev.last().unwrap().from_state, ev.last().unwrap().to_state),
        (Some(Running), Cancelled)
    );
    let picked = s.claim_due("w2", after, after + 60_000, 100).await.unwrap();
    assert!(
        picked.iter().any(|t| t.id == r.id),
        "another worker can pick up the owed cancel"
    );
    // The old worker's in-flight update can no longer apply.
    assert!(s
        .update_task(
            TaskUpdate::new(&r.id, &[Running])
                .leased_by("w1")
                .to(Succeeded)
        )
        .await
        .unwrap()
        .is_none());

    // A submitting task (the submit's outcome unknown) also owes an upstream cancel.
    let sb = insert(s, &a.id).await;
    drive(s, &sb.id, &[Submitting]).await;
    assert_eq!(
        s.cancel_or_delete(&a.id, &sb.id, false).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let sbt = get(s, &sb.id).await;
    assert_eq!(sbt.state, Cancelled);
    assert!(sbt.cancel_upstream);
    assert!(sbt.next_attempt_at.is_some());
}

// ---------------------------------------------------------------- 6. channel cap

async fn channel_cap_lets_exactly_cap_through(db: Db) {
    channel_cap(db, 1).await;
}

/// The same with two store handles on one file: the cap must hold without the single-writer
/// connection of one handle serialising everything.
async fn channel_cap_lets_exactly_cap_through_across_two_handles(db: Db) {
    channel_cap(db, 2).await;
}

async fn channel_cap(db: Db, stores: usize) {
    let mut handles = vec![db.store.clone()];
    for _ in 1..stores {
        handles.push(db.open_another().await.store());
    }
    let acct = db.store.create_account("a", 1_000_000).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(insert(&*db.store, &acct.id).await.id);
    }
    let cap_move = |id: &str| TaskUpdate {
        channel: Some("ch".into()),
        channel_cap: Some(2),
        ..TaskUpdate::new(id, &[Queued]).to(Submitting)
    };

    let barrier = Arc::new(tokio::sync::Barrier::new(ids.len()));
    let racers: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let store = handles[i % handles.len()].clone();
            let update = cap_move(id);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.update_task(update).await.expect("update")
            })
        })
        .collect();
    let through: Vec<Task> = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert_eq!(through.len(), 2, "exactly `cap` tasks get a slot");
    assert_eq!(db.store.count_in_flight("ch").await.unwrap(), 2);
    let through_ids: HashSet<_> = through.iter().map(|t| t.id.clone()).collect();
    for id in &ids {
        let t = get(&*db.store, id).await;
        if through_ids.contains(id) {
            assert_eq!((t.state, t.channel.as_deref()), (Submitting, Some("ch")));
        } else {
            assert_eq!(
                (t.state, t.channel.as_deref()),
                (Queued, None),
                "refused moves change nothing"
            );
            assert_eq!(events(&*db.store, id).await.len(), 1);
        }
    }

    // A slot holder moving on within the channel does not count itself.
    let holder = through[0].id.clone();
    let r = db
        .store
        .update_task(TaskUpdate {
            channel: Some("ch".into()),
            channel_cap: Some(2),
            ..TaskUpdate::new(&holder, &[Submitting]).to(Running)
        })
        .await
        .unwrap();
    assert!(
        r.is_some(),
        "a task already holding a slot counts only OTHER tasks"
    );

    // Another channel has its own slots.
    let waiting: Vec<_> = ids
        .iter()
        .filter(|id| !through_ids.contains(*id))
        .cloned()
        .collect();
    let other = db
        .store
        .update_task(TaskUpdate {
            channel: Some("ch2".into()),
            ..cap_move(&waiting[0])
        })
        .await
        .unwrap();
    assert!(other.is_some());

    // Full: refused. A holder finishing (nothing left to do) frees its slot.
    assert!(db
        .store
        .update_task(cap_move(&waiting[1]))
        .await
        .unwrap()
        .is_none());
    db.store
        .update_task(TaskUpdate {
            next_attempt_at: Some(None),
            ..TaskUpdate::new(&holder, &[Running]).to(Succeeded)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db.store.count_in_flight("ch").await.unwrap(), 1);
    assert!(db
        .store
        .update_task(cap_move(&waiting[1]))
        .await
        .unwrap()
        .is_some());
    assert!(db
        .store
        .update_task(cap_move(&waiting[2]))
        .await
        .unwrap()
        .is_none());
    assert_eq!(db.store.count_in_flight("ch").await.unwrap(), 2);
}

// ---------------------------------------------------------------- 7. API keys

async fn api_keys_are_stored_as_hashes_only(db: Db) {
    let s = &*db.store;
    let key = generate_api_key();
    let hash = hash_api_key(&key);
    let prefix = &key[..12];

    // Unknown account: an error, and nothing stored.
    assert!(s
        .create_api_key("acct_missing", &hash, prefix)
        .await
        .is_err());
    assert!(s.find_api_key(&hash).await.unwrap().is_none());

    let acct = s.create_account("a", 1_000_000).await.unwrap();
    let kid = s
        .create_api_key(&acct.id, &hash, prefix)
        .await
        .expect("create key");

    let (k, a) = s.find_api_key(&hash).await.unwrap().expect("found by hash");
    assert_eq!(k.id, kid);
    assert_eq!(k.account_id, acct.id);
    assert_eq!(k.prefix, prefix);
    assert_eq!(a.id, acct.id);
    assert_eq!(a.name, "a");
    // Only the hash finds it: not the plaintext, not another key's hash.
    assert!(s.find_api_key(&key).await.unwrap().is_none());
    assert!(s
        .find_api_key(&hash_api_key(&generate_api_key()))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_api_key(&hash.to_uppercase())
        .await
        .unwrap()
        .is_none());

    // What is stored (SQLite: the files, main and WAL; PostgreSQL: every row as text) never
    // contains the plaintext key.
    let bytes = db.raw_contents().await;
    assert!(
        contains_bytes(&bytes, hash.as_bytes()),
        "sanity: the hash is in what we read"
    );
    assert!(
        !contains_bytes(&bytes, key.as_bytes()),
        "the plaintext key is stored"
    );
    assert!(
        !contains_bytes(&bytes, &key.as_bytes()["key_".len()..]),
        "the key's secret part is stored"
    );
}

// ---------------------------------------------------------------- 8. property: random transitions

#[derive(Debug, Clone)]
enum Step {
    Move { from: Vec<TaskState>, to: TaskState },
    Progress { from: Vec<TaskState>, progress: f64 },
}

fn state_strategy() -> impl Strategy<Value = TaskState> {
    prop::sample::select(TaskState::ALL.to_vec())
}

fn from_strategy() -> impl Strategy<Value = Vec<TaskState>> {
    prop_oneof![
        Just(TaskState::ALL.to_vec()),
        state_strategy().prop_map(|s| vec![s]),
        prop::sample::subsequence(TaskState::ALL.to_vec(), 0..=TaskState::ALL.len()),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (from_strategy(), state_strategy()).prop_map(|(from, to)| Step::Move { from, to }),
        1 => (from_strategy(), 0.0..1.0f64).prop_map(|(from, progress)| Step::Progress { from, progress }),
    ]
}

/// One random sequence on one task of `s` (the cases of a run share a database: each works
/// on a task of its own).
async fn random_sequence(s: &dyn Store, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let acct = s.create_account("a", 1_000_000).await.unwrap();
    let id = insert(s, &acct.id).await.id;
    let mut state = Queued;
    let mut changes = 0usize;
    for (i, step) in steps.iter().enumerate() {
        let before = state;
        let (applied, expected) = match step {
            Step::Move { from, to } => {
                let r = s
                    .update_task(TaskUpdate::new(&id, from).to(*to))
                    .await
                    .unwrap();
                (r, from.contains(&state) && state.can_move_to(*to))
            }
            Step::Progress { from, progress } => {
                let r = s
                    .update_task(TaskUpdate {
                        progress: Some(*progress),
                        ..TaskUpdate::new(&id, from)
                    })
                    .await
                    .unwrap();
                (r, from.contains(&state))
            }
        };
        prop_assert_eq!(
            applied.is_some(),
            expected,
            "step {}: {:?} from {}",
            i,
            step,
            state
        );
        if let (Some(task), Step::Move { to, .. }) = (&applied, step) {
            prop_assert_eq!(task.state, *to);
            if *to != state {
                changes += 1;
            }
            state = *to;
        }
        let stored = get(s, &id).await;
        prop_assert_eq!(stored.state, state, "step {}: {:?}", i, step);
        if before.is_terminal() {
            prop_assert_eq!(stored.state, before, "terminal state changed at step {}", i);
        }
        let ev = events(s, &id).await;
        prop_assert_eq!(ev.len(), 1 + changes, "step {}: {:?}", i, step);
    }
    // The events form a chain: None -> queued -> ... -> the final state.
    let ev = events(s, &id).await;
    prop_assert_eq!((ev[0].from_state, ev[0].to_state), (None, Queued));
    for w in ev.windows(2) {
        prop_assert_eq!(w[1].from_state, Some(w[0].to_state));
        prop_assert!(w[0].to_state.can_move_to(w[1].to_state));
        prop_assert_ne!(w[0].to_state, w[1].to_state);
    }
    prop_assert_eq!(ev.last().unwrap().to_state, state);
    Ok(())
}

/// The property on `kind`: one database and runtime for the whole run (PostgreSQL cases then
/// cost a task, not a database each); failures persist next to this file as proptest's do.
fn random_transitions(kind: Kind, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(Db::of(kind)) else {
        return;
    };
    let config = ProptestConfig {
        cases,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let outcome = runner.run(&prop::collection::vec(step_strategy(), 1..40), |steps| {
        rt.block_on(random_sequence(&*db.store, steps))
    });
    rt.block_on(db.close());
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[test]
fn random_transition_sequences_follow_the_state_machine_sqlite() {
    random_transitions(Kind::Sqlite, 64);
}

#[test]
fn random_transition_sequences_follow_the_state_machine_postgres() {
    random_transitions(Kind::Postgres, 32);
}

// ---------------------------------------------------------------- 9. durability across reopen

async fn data_survives_reopen_and_migrations_do_not_rerun(mut db: Db) {
    let now = now_ms();

    let (acct, ids, mut snapshot) = {
        let s = &*db.store;
        let acct = s.create_account("durable", 1000).await.unwrap();
        let key_hash = hash_api_key(&generate_api_key());
        s.create_api_key(&acct.id, &key_hash, "key_abc")
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(insert(s, &acct.id).await.id);
        }
        drive(s, &ids[0], &[Submitting, Running]).await;
        drive(s, &ids[1], &[Failed]).await;
        s.cancel_or_delete(&acct.id, &ids[3], false).await.unwrap();
        // A worker claims task 2 and "crashes" holding a lease that is already over.
        let claimed = s
            .claim_due("crashed", now + 1_000_000, now + 1_000, 100)
            .await
            .unwrap();
        assert!(claimed.iter().any(|t| t.id == ids[2]));
        let mut snapshot = Vec::new();
        for id in &ids {
            snapshot.push((get(s, id).await, events(s, id).await));
        }
        (acct, ids, snapshot)
    };

    for round in 0..2 {
        db.reopen().await;
        let s = &*db.store;
        assert_eq!(s.count_accounts().await.unwrap(), 1, "round {round}");
        let a = s
            .get_account(&acct.id)
            .await
            .unwrap()
            .expect("account survives");
        // 5 holds of 25; the failed and the cancelled task were refunded.
        assert_eq!(
            (a.name.as_str(), a.credits_available, a.credits_held),
            ("durable", 925, 75)
        );
        assert_eq!(s.verify_ledger().await.unwrap(), vec![], "round {round}");
        for (id, (task, evs)) in ids.iter().zip(&snapshot) {
            let t = get(s, id).await;
            assert_eq!(t.state, task.state, "round {round}: task {id}");
            assert_eq!(t.deleted, task.deleted);
            assert_eq!(t.lease_owner, task.lease_owner);
            assert_eq!(t.next_attempt_at, task.next_attempt_at);
            assert_eq!(t.spec.model, "gen4_turbo");
            let e = events(s, id).await;
            let pairs = |v: &[TaskEvent]| {
                v.iter()
                    .map(|e| (e.id.clone(), e.from_state, e.to_state))
                    .collect::<Vec<_>>()
            };
            assert_eq!(pairs(&e), pairs(evs), "round {round}: events of {id}");
        }
        // The task whose worker died is picked up again.
        if round == 0 {
            let again = s
                .claim_due("successor", now + 2_000, now + 60_000, 100)
                .await
                .unwrap();
            assert!(
                again.iter().any(|t| t.id == ids[2]),
                "a crashed worker's task comes due again after reopen"
            );
            // Keep the snapshot in step with that claim for the next round.
            for t in again {
                let i = ids.iter().position(|id| *id == t.id).unwrap();
                snapshot[i].0 = t;
            }
        }
    }

    // The migrations ran once and are recorded once.
    let (recorded, files) = db.migrations().await;
    assert_eq!(
        recorded as usize, files,
        "each migration recorded exactly once"
    );
}

async fn a_finished_task_never_comes_due_again(db: Db) {
    let account = db.store.create_account("a", 1_000_000).await.unwrap();
    let task = insert(&*db.store, &account.id).await;
    let done = drive(&*db.store, &task.id, &[Submitting, Running, Succeeded]).await;
    assert_eq!(done.next_attempt_at, None);
    let far = reelay_store::now_ms() + 3_600_000;
    assert!(db
        .store
        .claim_due("w", far, far + 1000, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(db.store.next_due_at().await.unwrap(), None);
}

// ---------------------------------------------------------------- 10. many writers

/// `n` more instances on the database of `db` (separate pools on PostgreSQL).
async fn instances(
    db: &Db,
    n: usize,
    callbacks: Option<Arc<dyn Callbacks>>,
) -> Vec<Arc<dyn Store>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(db.open_with(callbacks.clone()).await.store());
    }
    out
}

/// Runs `racers` at once (released together by a barrier) and collects their answers.
async fn race<T, F, Fut>(racers: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(racers));
    let handles: Vec<_> = (0..racers)
        .map(|i| {
            let barrier = barrier.clone();
            let work = f(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    futures::future::join_all(handles)
        .await
        .into_iter()
        .map(|r| r.expect("racer"))
        .collect()
}

/// 40 accepts for one account with a cap of 5 live tasks, from 4 instances at once: exactly 5
/// are created (the cap is counted under the account's lock, not in a snapshot).
async fn live_task_cap_holds_across_instances(db: Db) {
    let (acct, _) = db
        .store
        .open_account(&NewAccount {
            name: "capped".into(),
            credits: 1_000_000,
            max_active_tasks: Some(5),
            ..NewAccount::default()
        })
        .await
        .unwrap();
    let stores = instances(&db, 4, None).await;
    let outcomes = race(40, |i| {
        let store = stores[i % stores.len()].clone();
        let task = new_task(&acct.id);
        async move {
            store
                .accept_task(task, Acceptance::default())
                .await
                .expect("accept")
        }
    })
    .await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, AcceptOutcome::Created(_)))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, AcceptOutcome::TooManyActive { limit: 5 }))
        .count();
    assert_eq!((created, refused), (5, 35), "created and refused of 40");
    let a = db.store.get_account(&acct.id).await.unwrap().unwrap();
    assert_eq!(a.credits_held, 5 * common::spec().price);
    assert_eq!(db.store.verify_ledger().await.unwrap(), vec![]);
}

/// 20 accepts with one idempotency key and body at once: one task, 19 replays of it.
async fn one_idempotency_key_makes_one_task_across_instances(db: Db) {
    let acct = db.store.create_account("a", 1_000_000).await.unwrap();
    let stores = instances(&db, 4, None).await;
    let outcomes = race(20, |i| {
        let store = stores[i % stores.len()].clone();
        let task = new_task(&acct.id);
        let record = IdempotencyRecord {
            key: "same".into(),
            request_hash: "body".into(),
            response_status: 200,
            response_body: json!({"id": task.id}).to_string(),
            ttl_ms: 3_600_000,
        };
        async move {
            store
                .accept_task(
                    task,
                    Acceptance {
                        idempotency: Some(record),
                        max_active_tasks: None,
                    },
                )
                .await
                .expect("accept")
        }
    })
    .await;
    let created: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            AcceptOutcome::Created(t) => Some(t.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "tasks created for one key");
    for o in &outcomes {
        match o {
            AcceptOutcome::Created(_) => {}
            AcceptOutcome::Replayed { task_id, .. } => assert_eq!(task_id, &created[0]),
            other => panic!("expected a replay, got {other:?}"),
        }
    }
    let a = db.store.get_account(&acct.id).await.unwrap().unwrap();
    assert_eq!(a.credits_held, common::spec().price, "one hold");
}

/// 40 tasks taking a slot on one channel with a cap of 3, from 4 instances at once: 3 get
/// one (the takers of a channel are serialised before they count).
async fn channel_cap_holds_across_instances(db: Db) {
    let acct = db.store.create_account("a", 1_000_000).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(insert(&*db.store, &acct.id).await.id);
    }
    let stores = instances(&db, 4, None).await;
    let through = race(40, |i| {
        let store = stores[i % stores.len()].clone();
        let update = TaskUpdate {
            channel: Some("busy".into()),
            channel_cap: Some(3),
            ..TaskUpdate::new(&ids[i], &[Queued]).to(Submitting)
        };
        async move { store.update_task(update).await.expect("update") }
    })
    .await
    .into_iter()
    .flatten()
    .count();
    assert_eq!(through, 3, "exactly `cap` tasks get a slot");
    assert_eq!(db.store.count_in_flight("busy").await.unwrap(), 3);
}

/// A callback for every transition of a task that has a callback URL.
struct EveryTransition;

impl Callbacks for EveryTransition {
    fn message(
        &self,
        task: &Task,
        from: Option<TaskState>,
        to: TaskState,
        at_ms: i64,
    ) -> Option<CallbackMessage> {
        Some(CallbackMessage {
            url: task.spec.callback_url.clone()?,
            event_type: format!("task.{to}"),
            payload: json!({"id": task.id, "from": from.map(TaskState::as_str), "to": to.as_str(), "at": at_ms})
                .to_string(),
            schedule: None,
            hmac_subject: None,
        })
    }
}

/// Several instances move one task back and forth (running <-> throttled) while two others
/// deliver its callbacks: the messages are numbered 1..n without gap or duplicate (one per
/// applied transition), each is claimed only after every earlier one was delivered, and none
/// is left waiting at the end.
async fn one_tasks_outbox_stays_in_order_across_instances(db: Db) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let cb: Arc<dyn Callbacks> = Arc::new(EveryTransition);
    let stores = instances(&db, 4, Some(cb)).await;
    let acct = db.store.create_account("a", 1_000_000).await.unwrap();
    let mut task = new_task(&acct.id);
    task.spec.callback_url = Some("https://example.com/hook".into());
    let id = task.id.clone();
    stores[0].insert_task(task).await.unwrap();
    drive(&*stores[0], &id, &[Submitting, Running]).await;

    let applied = Arc::new(AtomicUsize::new(0));
    let flipping = Arc::new(AtomicBool::new(true));
    let deliverers: Vec<_> = (0..2)
        .map(|d| {
            let store = stores[(d + 2) % stores.len()].clone();
            let (id, flipping) = (id.clone(), flipping.clone());
            tokio::spawn(async move {
                let owner = format!("deliverer-{d}");
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                let mut delivered = 0usize;
                loop {
                    let now = now_ms();
                    let got = store
                        .claim_webhooks(&owner, now, now + 60_000, 10)
                        .await
                        .expect("claim");
                    for m in &got {
                        let all = store.webhook_messages(&id).await.unwrap();
                        let waiting: Vec<_> = all
                            .iter()
                            .filter(|e| e.seq < m.seq && e.state != "delivered")
                            .map(|e| e.seq)
                            .collect();
                        assert!(
                            waiting.is_empty(),
                            "message {} claimed before {waiting:?}",
                            m.seq
                        );
                        let attempt = WebhookAttempt {
                            message_id: m.id.clone(),
                            n: 0,
                            started_at: now,
                            status: Some(200),
                            latency_ms: 1,
                            error: None,
                            response_excerpt: None,
                        };
                        assert!(store
                            .finish_webhook_attempt(&owner, attempt, WebhookNext::Delivered)
                            .await
                            .expect("finish"));
                        delivered += 1;
                    }
                    if got.is_empty() {
                        let all = store.webhook_messages(&id).await.unwrap();
                        if !flipping.load(SeqCst) && all.iter().all(|m| m.state == "delivered") {
                            return delivered;
                        }
                        assert!(
                            std::time::Instant::now() < deadline,
                            "messages left undelivered: {:?}",
                            all.iter()
                                .filter(|m| m.state != "delivered")
                                .map(|m| (m.seq, m.next_attempt_at))
                                .collect::<Vec<_>>()
                        );
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();

    race(8, |i| {
        let store = stores[i % stores.len()].clone();
        let (id, applied) = (id.clone(), applied.clone());
        async move {
            for round in 0..12 {
                let (from, to) = if (round + i) % 2 == 0 {
                    (Running, Throttled)
                } else {
                    (Throttled, Running)
                };
                let moved = store
                    .update_task(TaskUpdate::new(&id, &[from]).to(to))
                    .await
                    .expect("transition");
                if moved.is_some() {
                    applied.fetch_add(1, SeqCst);
                }
            }
        }
    })
    .await;
    flipping.store(false, SeqCst);
    let delivered: usize = futures::future::join_all(deliverers)
        .await
        .into_iter()
        .map(|r| r.expect("deliverer"))
        .sum();

    let n = 3 + applied.load(SeqCst); // queued, submitting, running, then the flips
    let messages = db.store.webhook_messages(&id).await.unwrap();
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>());
    assert_eq!(delivered, n, "each message delivered once");
    assert_eq!(events(&*db.store, &id).await.len(), n);
}

/// 200 due tasks claimed by 8 workers on 4 instances at once: each claimed exactly once.
async fn concurrent_claims_across_four_instances(db: Db) {
    concurrent_claims(db, 4, 200).await;
}

/// Another instance hears of the work one makes due: a task accepted, a callback enqueued.
async fn other_instances_hear_of_due_work(db: Db) {
    let listener = db.open_another().await.store();
    let Some(mut rx) = listener.wakeups() else {
        assert_eq!(db.kind, Kind::Sqlite, "only SQLite has no wake-ups");
        return;
    };
    let cb: Arc<dyn Callbacks> = Arc::new(EveryTransition);
    let writer = db.open_with(Some(cb)).await.store();
    let acct = writer.create_account("a", 1_000_000).await.unwrap();
    let mut task = new_task(&acct.id);
    task.spec.callback_url = Some("https://example.com/hook".into());
    writer.insert_task(task).await.unwrap();
    let mut heard: Vec<Wake> = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while heard.len() < 2 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(w)) if !heard.contains(&w) => heard.push(w),
            Ok(Ok(_)) => {}
            other => panic!("no wake-up within 10 s (heard {heard:?}): {other:?}"),
        }
    }
    assert!(heard.contains(&Wake::Tasks) && heard.contains(&Wake::Webhooks));
}

/// An unreachable PostgreSQL fails to open within seconds, as a database error (the API
/// answers those 503), instead of hanging. Needs no server.
#[tokio::test]
async fn an_unreachable_postgres_fails_fast_as_a_database_error() {
    let started = std::time::Instant::now();
    let r = PgStore::open("postgres://reelay@127.0.0.1:1/none").await;
    assert!(matches!(r, Err(StoreError::Database(_))), "{:?}", r.err());
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

// ---------------------------------------------------------------- the tests, on both backends

on_both!(multi:
    concurrent_claims_take_each_task_once,
    concurrent_claims_take_each_task_once_across_two_handles,
    concurrent_claims_across_four_instances,
    conflicting_terminal_moves_one_wins,
    conflicting_terminal_moves_one_wins_across_two_handles,
    channel_cap_lets_exactly_cap_through,
    channel_cap_lets_exactly_cap_through_across_two_handles,
    live_task_cap_holds_across_instances,
    one_idempotency_key_makes_one_task_across_instances,
    channel_cap_holds_across_instances,
    one_tasks_outbox_stays_in_order_across_instances,
    other_instances_hear_of_due_work,
);

// ---------------------------------------------------------------- listing an account's tasks

/// Pages walk an account's tasks of one dialect in id order, both ways, without gaps or
/// repeats; other accounts', other dialects' and deleted tasks never appear.
async fn task_pages_follow_the_cursor_and_stay_in_the_account(db: Db) {
    use reelay_core::Dialect;
    let store = &*db.store;
    let a = store.create_account("a", 1_000_000).await.unwrap();
    let b = store.create_account("b", 1_000_000).await.unwrap();
    let mut mine = Vec::new();
    for i in 0..7 {
        let mut t = new_task(&a.id);
        t.dialect = Dialect::Openai;
        mine.push(store.insert_task(t).await.unwrap().id);
        if i % 3 == 0 {
            insert(store, &a.id).await; // a Runway task of the same account
            let mut other = new_task(&b.id);
            other.dialect = Dialect::Openai;
            store.insert_task(other).await.unwrap();
        }
    }
    // A deleted task is gone from the pages.
    let gone = mine.remove(3);
    drive(store, &gone, &[Submitting, Running, Succeeded]).await;
    assert_eq!(
        store.cancel_or_delete(&a.id, &gone, false).await.unwrap(),
        CancelOutcome::Deleted
    );
    mine.sort();
    for ascending in [true, false] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_tasks(&reelay_store::TaskPage {
                    account_id: a.id.clone(),
                    dialect: Dialect::Openai,
                    after: after.clone(),
                    limit: 2,
                    ascending,
                })
                .await
                .unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            seen.extend(page.iter().map(|t| t.id.clone()));
        }
        let mut want = mine.clone();
        if !ascending {
            want.reverse();
        }
        assert_eq!(seen, want, "ascending {ascending}");
    }
}

/// Uploads resolve for their account only and until they expire; the sweeper's query finds
/// the expired ones and forgetting them removes them.
async fn uploads_belong_to_their_account_and_expire(db: Db) {
    let store = &*db.store;
    let a = store.create_account("a", 0).await.unwrap();
    let b = store.create_account("b", 0).await.unwrap();
    let now = now_ms();
    let up = |id: &str, expires_at: i64| reelay_store::UploadRecord {
        id: id.into(),
        account_id: a.id.clone(),
        filename: "f.png".into(),
        content_type: "image/png".into(),
        size: 3,
        sha256: "00".into(),
        created_at: now,
        expires_at,
    };
    store
        .record_upload(&up("live", now + 60_000))
        .await
        .unwrap();
    store.record_upload(&up("old", now - 1)).await.unwrap();
    assert_eq!(
        store.get_upload(&a.id, "live", now).await.unwrap(),
        Some(up("live", now + 60_000))
    );
    assert_eq!(store.get_upload(&b.id, "live", now).await.unwrap(), None);
    assert_eq!(store.get_upload(&a.id, "old", now).await.unwrap(), None);
    let expired = store.expired_uploads(now, 10).await.unwrap();
    assert_eq!(
        expired.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["old"]
    );
    store.forget_uploads(&["old".into()]).await.unwrap();
    assert!(store.expired_uploads(now, 10).await.unwrap().is_empty());
    assert!(store
        .get_upload(&a.id, "live", now)
        .await
        .unwrap()
        .is_some());
}

on_both!(
    uploads_belong_to_their_account_and_expire,
    task_pages_follow_the_cursor_and_stay_in_the_account,
    expired_lease_passes_to_another_owner,
    transitions_are_conditional_and_evented,
    cancel_or_delete_semantics,
    api_keys_are_stored_as_hashes_only,
    data_survives_reopen_and_migrations_do_not_rerun,
    a_finished_task_never_comes_due_again,
);
