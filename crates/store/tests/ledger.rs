//! A state-machine property test of the credit ledger: random sequences of top-ups,
//! adjustments, submits (with and without idempotency keys), upstream acceptance, success,
//! failure, client cancels and restarts (the store closed and reopened on the same file). A
//! plain model predicts every balance and the account's live-task count; after each step the
//! store must agree with it, the ledger must verify, and no balance may be negative. On SQLite and on PostgreSQL (fewer
//! cases there: each has a database of its own).

mod common;

use std::collections::HashMap;

use common::Db;
use proptest::prelude::*;
use reelay_core::{Catalog, TaskSpec, TaskState};
use reelay_store::{
    AcceptOutcome, Acceptance, CancelOutcome, Credited, IdempotencyRecord, LedgerKind, NewTask,
    Store, TaskUpdate,
};
use serde_json::json;

use TaskState::*;

#[derive(Debug, Clone)]
enum Op {
    Topup(i64),
    Adjust(i64),
    /// Submit at `price`; with `Some((key, body))` an idempotency key and a body variant.
    Submit(i64, Option<(u8, u8)>),
    /// The upstream takes the n-th task (modulo the number of tasks).
    Accept(usize),
    Succeed(usize),
    Fail(usize),
    Cancel(usize, bool),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1i64..300).prop_map(Op::Topup),
        1 => (-150i64..150).prop_filter("non-zero", |a| *a != 0).prop_map(Op::Adjust),
        5 => (0i64..120, prop::option::of((0u8..4, 0u8..2))).prop_map(|(p, k)| Op::Submit(p, k)),
        2 => any::<usize>().prop_map(Op::Accept),
        2 => any::<usize>().prop_map(Op::Succeed),
        2 => any::<usize>().prop_map(Op::Fail),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, r)| Op::Cancel(i, r)),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone)]
struct ModelTask {
    id: String,
    price: i64,
    state: TaskState,
    upstream: bool,
    deleted: bool,
}

#[derive(Debug, Default)]
struct Model {
    available: i64,
    held: i64,
    tasks: Vec<ModelTask>,
    /// idempotency key → (body variant, task index)
    keys: HashMap<u8, (u8, usize)>,
}

impl Model {
    fn settle(&mut self, i: usize, refund: bool) {
        let price = self.tasks[i].price;
        self.held -= price;
        if refund {
            self.available += price;
        }
    }
}

fn spec(price: i64) -> TaskSpec {
    let mut spec = TaskSpec::parse(
        &Catalog::builtin(),
        "image_to_video",
        &json!({"model":"gen4_turbo","promptImage":"https://example.com/a.jpg","ratio":"1280:720","duration":5}),
    )
    .expect("valid spec");
    spec.price = price;
    spec
}

async fn check(store: &dyn Store, account: &str, m: &Model, step: usize, op: &Op) {
    let a = store.get_account(account).await.unwrap().unwrap();
    assert_eq!(
        (a.credits_available, a.credits_held),
        (m.available, m.held),
        "balance after step {step}: {op:?}"
    );
    assert!(a.credits_available >= 0 && a.credits_held >= 0);
    // The live-task count the database keeps (triggers) is the count of unfinished tasks.
    let live = m
        .tasks
        .iter()
        .filter(|t| !t.deleted && !t.state.is_terminal())
        .count() as i64;
    assert_eq!(a.live_tasks, live, "live tasks after step {step}: {op:?}");
    assert_eq!(store.verify_ledger().await.unwrap(), vec![], "step {step}");
    for t in &m.tasks {
        let s = store.get_task_by_id(&t.id).await.unwrap().unwrap();
        assert_eq!(s.state, t.state, "task state after step {step}: {op:?}");
        if t.state.is_terminal() {
            assert_eq!(s.credits_held, s.credits_captured + s.credits_refunded);
        } else {
            assert_eq!(s.credits_captured + s.credits_refunded, 0);
        }
    }
}

/// The live task picked by `n`, if any.
fn pick(m: &Model, n: usize, live: bool) -> Option<usize> {
    let idx: Vec<usize> = (0..m.tasks.len())
        .filter(|&i| !m.tasks[i].deleted && (!live || !m.tasks[i].state.is_terminal()))
        .collect();
    (!idx.is_empty()).then(|| idx[n % idx.len()])
}

async fn run(mut db: Db, ops: Vec<Op>) {
    let mut store = db.store.clone();
    let account = store.create_account("a", 100).await.unwrap().id;
    let mut m = Model {
        available: 100,
        ..Model::default()
    };
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Topup(a) => {
                let r = store
                    .credit(&account, LedgerKind::Topup, *a, "t")
                    .await
                    .unwrap();
                assert!(matches!(r, Credited::Done(_)));
                m.available += a;
            }
            Op::Adjust(a) => {
                let r = store
                    .credit(&account, LedgerKind::Adjust, *a, "adj")
                    .await
                    .unwrap();
                let ok = m.available + a >= 0;
                assert_eq!(
                    matches!(r, Credited::Done(_)),
                    ok,
                    "adjust {a} with {} available",
                    m.available
                );
                if ok {
                    m.available += a;
                }
            }
            Op::Submit(price, idem) => {
                let id = uuid::Uuid::now_v7().to_string();
                let record = idem.map(|(k, body)| IdempotencyRecord {
                    key: format!("key-{k}"),
                    request_hash: format!("body-{body}"),
                    response_status: 200,
                    response_body: json!({"id": id}).to_string(),
                    ttl_ms: 3_600_000,
                });
                let out = store
                    .accept_task(
                        NewTask {
                            id: id.clone(),
                            account_id: account.clone(),
                            key_id: None,
                            dialect: reelay_core::Dialect::Runway,
                            spec: spec(*price),
                        },
                        Acceptance {
                            idempotency: record,
                            max_active_tasks: None,
                        },
                    )
                    .await
                    .unwrap();
                let prior = idem.and_then(|(k, _)| m.keys.get(&k).copied());
                match (prior, idem) {
                    (Some((body, i)), Some((_, b))) if body == *b => match out {
                        AcceptOutcome::Replayed { task_id, .. } => {
                            assert_eq!(task_id, m.tasks[i].id)
                        }
                        other => panic!("step {step}: expected a replay, got {other:?}"),
                    },
                    (Some(_), _) => {
                        assert!(matches!(out, AcceptOutcome::IdempotencyMismatch), "{out:?}")
                    }
                    (None, _) if m.available >= *price => {
                        assert!(matches!(out, AcceptOutcome::Created(_)), "{out:?}");
                        m.available -= price;
                        m.held += price;
                        m.tasks.push(ModelTask {
                            id,
                            price: *price,
                            state: Queued,
                            upstream: false,
                            deleted: false,
                        });
                        if let Some((k, b)) = idem {
                            m.keys.insert(*k, (*b, m.tasks.len() - 1));
                        }
                    }
                    (None, _) => {
                        assert!(
                            matches!(out, AcceptOutcome::InsufficientCredits { .. }),
                            "{out:?}"
                        );
                        assert!(store.get_task_by_id(&id).await.unwrap().is_none());
                    }
                }
            }
            Op::Accept(n) => {
                if let Some(i) = pick(&m, *n, true) {
                    let t = &mut m.tasks[i];
                    if t.state == Queued {
                        let r = store
                            .update_task(TaskUpdate::new(&t.id, &[Queued]).to(Submitting))
                            .await
                            .unwrap();
                        assert!(r.is_some());
                        let r = store
                            .update_task(TaskUpdate {
                                upstream_id: Some(format!("up-{}", t.id)),
                                ..TaskUpdate::new(&t.id, &[Submitting]).to(Running)
                            })
                            .await
                            .unwrap();
                        assert!(r.is_some());
                        t.state = Running;
                        t.upstream = true;
                    }
                }
            }
            Op::Succeed(n) | Op::Fail(n) => {
                if let Some(i) = pick(&m, *n, false) {
                    let to = if matches!(op, Op::Succeed(_)) {
                        Succeeded
                    } else {
                        Failed
                    };
                    let from = [Queued, Submitting, Running, Throttled];
                    let r = store
                        .update_task(TaskUpdate::new(&m.tasks[i].id, &from).to(to))
                        .await
                        .unwrap();
                    // A finished task does not move again, and is not settled twice; a task
                    // the upstream never took cannot succeed.
                    let state = m.tasks[i].state;
                    assert_eq!(r.is_some(), !state.is_terminal() && state.can_move_to(to));
                    if r.is_some() {
                        m.tasks[i].state = to;
                        m.settle(i, to == Failed);
                    }
                }
            }
            Op::Cancel(n, refund_after_upstream) => {
                if let Some(i) = pick(&m, *n, false) {
                    let out = store
                        .cancel_or_delete(&account, &m.tasks[i].id, *refund_after_upstream)
                        .await
                        .unwrap();
                    if m.tasks[i].state.is_terminal() {
                        assert_eq!(out, CancelOutcome::Deleted);
                    } else {
                        assert_eq!(out, CancelOutcome::Cancelled);
                        m.tasks[i].state = Cancelled;
                        let refund = !m.tasks[i].upstream || *refund_after_upstream;
                        m.settle(i, refund);
                    }
                    m.tasks[i].deleted = true;
                }
            }
            Op::Restart => {
                drop(store);
                db.reopen().await;
                store = db.store.clone();
            }
        }
        check(&*store, &account, &m, step, op).await;
    }
    // The ledger itself adds up to the balance the model predicts.
    let entries = store.ledger(&account, 100_000).await.unwrap();
    let sum: i64 = entries
        .iter()
        .map(|e| match e.kind {
            LedgerKind::Topup | LedgerKind::Adjust | LedgerKind::Refund => e.amount,
            LedgerKind::Hold => -e.amount,
            LedgerKind::Capture => 0,
        })
        .sum();
    assert_eq!(
        sum, m.available,
        "available = topups + adjusts - holds + refunds"
    );
    drop(store);
    db.close().await;
}

fn histories() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ledger_invariants_hold_over_random_histories(ops in histories()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move { run(Db::sqlite().await, ops).await });
    }
}

/// The same state machine on PostgreSQL: one runtime for the run (the pools live on it), a
/// database per case; failures persist next to this file as the SQLite run's do.
#[test]
fn ledger_invariants_hold_over_random_histories_on_postgres() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if !common::postgres_configured() {
        return;
    }
    let config = ProptestConfig {
        cases: 16,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let outcome = runner.run(&histories(), |ops| {
        rt.block_on(async move {
            let db = Db::postgres().await.expect("postgres is configured");
            run(db, ops).await;
        });
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
