//! SQLite's group commit: many concurrent writes share commits, and each still holds or fails
//! on its own as if it had committed alone (402 exactness, idempotency, a failing job in the
//! middle of a batch).

mod common;

use std::sync::Arc;

use common::new_task;
use reelay_store::sqlite::SqliteStore;
use reelay_store::{AcceptOutcome, Acceptance, IdempotencyRecord, Store};

async fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    (dir, Arc::new(SqliteStore::open(&url).await.unwrap()))
}

/// Accepts the tasks at once; what each accept returned.
async fn try_accept_all(
    store: &Arc<SqliteStore>,
    tasks: Vec<(reelay_store::NewTask, Acceptance)>,
) -> Vec<reelay_store::Result<AcceptOutcome>> {
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|(t, a)| {
            let s = store.clone();
            tokio::spawn(async move { s.accept_task(t, a).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Accepts the tasks at once; their outcomes (none may fail).
async fn accept_all(
    store: &Arc<SqliteStore>,
    tasks: Vec<(reelay_store::NewTask, Acceptance)>,
) -> Vec<AcceptOutcome> {
    let results = try_accept_all(store, tasks).await;
    results.into_iter().map(|r| r.unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_accepts_share_commits_and_hold_exactly_the_credits_there_are() {
    let (_dir, store) = open().await;
    let price = common::spec().price;
    // Credits for exactly 100 of the 300 tasks.
    let acct = store.create_account("a", price * 100).await.unwrap();
    let (commits_before, jobs_before) = store.commits();
    let tasks = (0..300)
        .map(|_| (new_task(&acct.id), Acceptance::default()))
        .collect();
    let outcomes = accept_all(&store, tasks).await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, AcceptOutcome::Created(_)))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, AcceptOutcome::InsufficientCredits { .. }))
        .count();
    assert_eq!((created, refused), (100, 200));
    let a = store.get_account(&acct.id).await.unwrap().unwrap();
    assert_eq!((a.credits_available, a.credits_held), (0, price * 100));
    assert_eq!(store.verify_ledger().await.unwrap(), vec![]);
    let (commits, jobs) = store.commits();
    let (commits, jobs) = (commits - commits_before, jobs - jobs_before);
    assert_eq!(jobs, 300, "every accept is one job of some commit");
    assert!(
        commits < jobs,
        "300 concurrent accepts took {commits} commits: nothing was grouped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_in_one_batch_makes_one_task() {
    let (_dir, store) = open().await;
    let acct = store.create_account("a", 1_000_000).await.unwrap();
    let idem = IdempotencyRecord {
        key: "k1".into(),
        request_hash: "h".into(),
        response_status: 200,
        response_body: "{}".into(),
        ttl_ms: 60_000,
    };
    let tasks = (0..64)
        .map(|_| {
            (
                new_task(&acct.id),
                Acceptance {
                    idempotency: Some(idem.clone()),
                    ..Acceptance::default()
                },
            )
        })
        .collect();
    let outcomes = accept_all(&store, tasks).await;
    let created: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            AcceptOutcome::Created(t) => Some(t.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1);
    for o in &outcomes {
        match o {
            AcceptOutcome::Created(_) => {}
            AcceptOutcome::Replayed { task_id, .. } => assert_eq!(task_id, &created[0]),
            other => panic!("unexpected {other:?}"),
        }
    }
    let a = store.get_account(&acct.id).await.unwrap().unwrap();
    assert_eq!(a.credits_held, common::spec().price);
}

/// A job that fails (here: a task id that exists already) rolls back alone; the jobs around it
/// in the same commit stand, and nothing of the failed one is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_in_a_batch_fails_alone() {
    let (_dir, store) = open().await;
    let acct = store.create_account("a", 1_000_000).await.unwrap();
    let taken = new_task(&acct.id);
    store.insert_task(taken.clone()).await.unwrap();
    let before = store.get_account(&acct.id).await.unwrap().unwrap();
    let mut tasks: Vec<_> = (0..100)
        .map(|_| (new_task(&acct.id), Acceptance::default()))
        .collect();
    for i in [10, 50, 90] {
        let mut dup = new_task(&acct.id);
        dup.id = taken.id.clone();
        tasks[i] = (dup, Acceptance::default());
    }
    let (mut ok, mut failed) = (0, 0);
    for r in try_accept_all(&store, tasks).await {
        match r {
            Ok(AcceptOutcome::Created(_)) => ok += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => failed += 1,
        }
    }
    assert_eq!((ok, failed), (97, 3));
    let after = store.get_account(&acct.id).await.unwrap().unwrap();
    let price = common::spec().price;
    assert_eq!(after.credits_held - before.credits_held, 97 * price);
    assert_eq!(store.verify_ledger().await.unwrap(), vec![]);
    assert_eq!(store.task_events(&taken.id).await.unwrap().len(), 1);
}

/// WAL checkpoints run on their own thread: after a burst of writes, with no further commit
/// (so the writer's own checkpoint, a backstop at a far larger WAL, never runs), the pages
/// reach the database file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_off_the_writer_thread() {
    let (dir, store) = open().await;
    let acct = store.create_account("a", 1_000_000_000).await.unwrap();
    let db = dir.path().join("g.db");
    let size = || std::fs::metadata(&db).unwrap().len();
    let tasks = (0..400)
        .map(|_| (new_task(&acct.id), Acceptance::default()))
        .collect();
    accept_all(&store, tasks).await;
    let wal = std::fs::metadata(dir.path().join("g.db-wal"))
        .unwrap()
        .len();
    assert!(wal > 100 * 4096, "the burst went to the WAL: {wal} bytes");
    let before = size();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 30 s: the database file stayed at {before} bytes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Every task is readable through the checkpointed file too.
    assert_eq!(store.verify_ledger().await.unwrap(), vec![]);
}
