//! The rules every backend applies the same way: which task updates are legal, how a finished
//! task settles its hold, what a client cancel does, what a ledger entry may be and how large a
//! balance may grow. The backends map these onto guarded SQL; they do not re-derive them.

use reelay_core::TaskState;

use crate::{LedgerKind, Result, StoreError, TaskUpdate};

/// The SQL condition (on `tasks`) of a task holding an upstream slot on its channel:
/// submitting, running, or throttled by the upstream after it took the job. The per-channel
/// cap counts these.
pub const IN_FLIGHT: &str =
    "next_attempt_at IS NOT NULL AND state IN ('submitting', 'running', 'throttled') \
     AND (state != 'throttled' OR upstream_id IS NOT NULL)";

/// The SQL condition of a live task (one the per-account cap counts): not finished, still due.
/// The triggers keeping `accounts.live_tasks` (SQLite migration 0008, PostgreSQL 0002) spell
/// it out; the store's tests check the column against a count with this condition.
pub const LIVE: &str =
    "next_attempt_at IS NOT NULL AND state NOT IN ('succeeded', 'failed', 'cancelled')";

/// Whether `u` applies to a task now in `state`, leased by `owner`: the state is one it
/// expects, the lease (when it names one) is still this worker's, and the move is legal.
pub fn admits(u: &TaskUpdate, state: TaskState, owner: Option<&str>) -> bool {
    u.from.contains(&state)
        && u.lease_owner
            .as_deref()
            .is_none_or(|want| owner == Some(want))
        && u.to.is_none_or(|to| state.can_move_to(to))
}

/// Whether a move from `state` gives back the task's slot on its channel (it ends, or goes
/// back to the queue), so a task waiting for capacity may go now.
pub fn frees_slot(state: TaskState, u: &TaskUpdate) -> bool {
    matches!(
        state,
        TaskState::Submitting | TaskState::Running | TaskState::Throttled
    ) && u
        .to
        .is_some_and(|to| to != state && (to.is_terminal() || to == TaskState::Queued))
}

/// How a task that moves from `from` to `to` settles its hold, if the move finishes it: a
/// success is charged, a failure or an upstream cancellation refunded — in the transaction of
/// the move, so a task never ends without its settlement.
pub fn settlement(from: TaskState, to: Option<TaskState>) -> Option<(LedgerKind, String)> {
    let to = to.filter(|to| *to != from && to.is_terminal())?;
    let kind = if to == TaskState::Succeeded {
        LedgerKind::Capture
    } else {
        LedgerKind::Refund
    };
    Some((kind, format!("task {}", to.as_str())))
}

/// The data of the event a state change appends: the caller's facts and the failure.
pub fn event_data(u: &TaskUpdate) -> serde_json::Value {
    let mut data = u
        .event_data
        .clone()
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some((code, msg)) = &u.failure {
        data["failure_code"] = code.clone().into();
        data["failure"] = msg.clone().into();
    }
    data
}

/// What is wrong with an account's balance, if anything: it must equal what its ledger sums
/// to and never be negative.
pub fn balance_violations(r: &crate::rows::BalanceCheckRow) -> Vec<crate::LedgerViolation> {
    let (avail, held) = (r.credits_available, r.credits_held);
    let mut problems = Vec::new();
    if avail != r.available || held != r.held {
        problems.push(format!(
            "balance available={avail} held={held}, but the ledger sums to available={} held={}",
            r.available, r.held
        ));
    }
    if avail < 0 || held < 0 {
        problems.push(format!("negative balance available={avail} held={held}"));
    }
    problems
        .into_iter()
        .map(|problem| crate::LedgerViolation {
            account_id: r.id.clone(),
            task_id: None,
            problem,
        })
        .collect()
}

/// What is wrong with a task's credits, if anything: its columns equal its ledger entries, a
/// finished task settled exactly what it held, a live one nothing yet.
pub fn task_violations(r: &crate::rows::TaskCreditsRow) -> Vec<crate::LedgerViolation> {
    let terminal = TaskState::parse(&r.state).is_some_and(TaskState::is_terminal);
    let (held, captured, refunded) = (r.credits_held, r.credits_captured, r.credits_refunded);
    let (l_hold, l_capture, l_refund) = (r.l_hold, r.l_capture, r.l_refund);
    let mut problems = Vec::new();
    if (held, captured, refunded) != (l_hold, l_capture, l_refund) {
        problems.push(format!(
            "task columns held={held} captured={captured} refunded={refunded} differ from its ledger hold={l_hold} capture={l_capture} refund={l_refund}"
        ));
    }
    if terminal && held != captured + refunded {
        problems.push(format!(
            "{} task: held {held} != captured {captured} + refunded {refunded}",
            r.state
        ));
    }
    if !terminal && captured + refunded != 0 {
        problems.push(format!(
            "{} task already settled {}",
            r.state,
            captured + refunded
        ));
    }
    problems
        .into_iter()
        .map(|problem| crate::LedgerViolation {
            account_id: r.account_id.clone(),
            task_id: Some(r.id.clone()),
            problem,
        })
        .collect()
}

/// What a client's `DELETE` does to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelPlan {
    /// A finished task is deleted (its media go with it at the sweeper's next pass).
    Delete,
    /// A live task is cancelled and deleted, and its hold settled.
    Cancel {
        /// The engine owes an upstream cancel: the upstream has the job, or a submit is in
        /// flight whose outcome is not known yet.
        owes_upstream: bool,
        /// The in-flight submit keeps its lease, so the worker finishing it sees the cancel.
        keep_lease: bool,
        settle: LedgerKind,
    },
}

/// Once the upstream has the job it charges us whether or not it stops, so such a cancel is
/// charged (unless the operator refunds those too); before that nothing was spent: refunded.
pub fn cancel_plan(
    state: TaskState,
    has_upstream_id: bool,
    refund_after_upstream: bool,
) -> CancelPlan {
    if state.is_terminal() {
        return CancelPlan::Delete;
    }
    CancelPlan::Cancel {
        owes_upstream: has_upstream_id || state == TaskState::Submitting,
        keep_lease: state == TaskState::Submitting,
        settle: if has_upstream_id && !refund_after_upstream {
            LedgerKind::Capture
        } else {
            LedgerKind::Refund
        },
    }
}

/// The largest balance (available + held) an account may have, and the largest amount of one
/// entry. Far below `i64::MAX`, so no sum the ledger or a guard computes can overflow: SQLite
/// turns an integer overflow into a REAL without a word, PostgreSQL fails the statement.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// What became of a top-up or an adjustment.
#[derive(Debug, Clone)]
pub enum Credited {
    Done(crate::Account),
    NoAccount,
    /// The available balance would go below zero.
    WouldGoNegative {
        available: i64,
    },
    /// The balance would pass [`MAX_BALANCE`].
    OverCeiling {
        balance: i64,
    },
}

/// Refuses entries no caller may write: a top-up that is not positive, a zero adjustment, an
/// amount past [`MAX_BALANCE`], or a kind that only task transitions write.
pub fn check_credit(kind: LedgerKind, amount: i64) -> Result<()> {
    let valid = match kind {
        LedgerKind::Topup => amount > 0,
        LedgerKind::Adjust => amount != 0,
        _ => false,
    };
    if !valid || amount.unsigned_abs() > MAX_BALANCE as u64 {
        return Err(StoreError::Invalid(format!(
            "{} of {amount} is not allowed",
            kind.as_str()
        )));
    }
    Ok(())
}

/// Why a guarded credit did not apply, from the balance it saw: only a negative amount can
/// take the balance below zero, only a positive one past the ceiling.
pub fn refusal(available: i64, held: i64, amount: i64) -> Credited {
    if amount < 0 {
        Credited::WouldGoNegative { available }
    } else {
        Credited::OverCeiling {
            balance: available.saturating_add(held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_need_the_expected_state_the_lease_and_a_legal_move() {
        use TaskState::*;
        let u = TaskUpdate::new("t", &[Running])
            .leased_by("w1")
            .to(Succeeded);
        assert!(admits(&u, Running, Some("w1")));
        assert!(!admits(&u, Running, Some("w2")));
        assert!(!admits(&u, Running, None));
        assert!(!admits(&u, Queued, Some("w1")));
        let illegal = TaskUpdate::new("t", &[Succeeded]).to(Running);
        assert!(!admits(&illegal, Succeeded, None));
        let unleased = TaskUpdate::new("t", &[Queued]).to(Cancelled);
        assert!(admits(&unleased, Queued, Some("anyone")));
    }

    #[test]
    fn only_a_finishing_move_settles() {
        use TaskState::*;
        assert_eq!(
            settlement(Running, Some(Succeeded)).unwrap().0,
            LedgerKind::Capture
        );
        assert_eq!(
            settlement(Running, Some(Failed)).unwrap().0,
            LedgerKind::Refund
        );
        assert_eq!(
            settlement(Queued, Some(Cancelled)).unwrap().0,
            LedgerKind::Refund
        );
        assert!(settlement(Running, Some(Running)).is_none());
        assert!(settlement(Succeeded, Some(Succeeded)).is_none());
        assert!(settlement(Queued, Some(Submitting)).is_none());
        assert!(settlement(Queued, None).is_none());
    }

    #[test]
    fn cancels_refund_before_the_upstream_has_the_job_and_charge_after() {
        use TaskState::*;
        assert_eq!(cancel_plan(Succeeded, true, false), CancelPlan::Delete);
        assert_eq!(
            cancel_plan(Queued, false, false),
            CancelPlan::Cancel {
                owes_upstream: false,
                keep_lease: false,
                settle: LedgerKind::Refund
            }
        );
        assert_eq!(
            cancel_plan(Submitting, false, false),
            CancelPlan::Cancel {
                owes_upstream: true,
                keep_lease: true,
                settle: LedgerKind::Refund
            }
        );
        assert_eq!(
            cancel_plan(Running, true, false),
            CancelPlan::Cancel {
                owes_upstream: true,
                keep_lease: false,
                settle: LedgerKind::Capture
            }
        );
        assert_eq!(
            cancel_plan(Running, true, true),
            CancelPlan::Cancel {
                owes_upstream: true,
                keep_lease: false,
                settle: LedgerKind::Refund
            }
        );
    }

    #[test]
    fn entries_are_bounded() {
        assert!(check_credit(LedgerKind::Topup, 1).is_ok());
        assert!(check_credit(LedgerKind::Topup, MAX_BALANCE).is_ok());
        assert!(check_credit(LedgerKind::Topup, MAX_BALANCE + 1).is_err());
        assert!(check_credit(LedgerKind::Topup, 0).is_err());
        assert!(check_credit(LedgerKind::Topup, -1).is_err());
        assert!(check_credit(LedgerKind::Adjust, -MAX_BALANCE).is_ok());
        assert!(check_credit(LedgerKind::Adjust, i64::MIN).is_err());
        assert!(check_credit(LedgerKind::Adjust, 0).is_err());
        assert!(check_credit(LedgerKind::Hold, 5).is_err());
    }

    #[test]
    fn refusals_say_why() {
        assert!(matches!(
            refusal(5, 0, -6),
            Credited::WouldGoNegative { available: 5 }
        ));
        assert!(matches!(
            refusal(MAX_BALANCE, 0, 1),
            Credited::OverCeiling { .. }
        ));
    }
}
