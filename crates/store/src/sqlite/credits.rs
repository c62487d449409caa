//! Ledger writes. Each function runs inside the caller's transaction (a job of the writer),
//! next to the task change it belongs to, and moves the account balance with a conditional
//! update in that same transaction: the balance is never read first and written after.

use rusqlite::{params, Connection, OptionalExtension};

use super::lite::{exec, one};
use crate::rules::{self, Credited, MAX_BALANCE};
use crate::{now_ms, Account, LedgerKind, Result, StoreError};

fn entry(
    conn: &Connection,
    account_id: &str,
    kind: LedgerKind,
    amount: i64,
    task_id: Option<&str>,
    reason: &str,
) -> Result<()> {
    exec(
        conn,
        "INSERT INTO ledger_entries (account_id, kind, amount, task_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        params![account_id, kind.as_str(), amount, task_id, reason, now_ms()],
    )?;
    Ok(())
}

/// Holds `amount` for a task if the account has it available. False when it does not.
pub(super) fn hold(
    conn: &Connection,
    account_id: &str,
    task_id: &str,
    amount: i64,
) -> Result<bool> {
    let moved = exec(
        conn,
        "UPDATE accounts SET credits_available = credits_available - ?1, credits_held = credits_held + ?1
         WHERE id = ?2 AND credits_available >= ?1",
        params![amount, account_id],
    )?;
    if moved == 0 {
        return Ok(false);
    }
    entry(
        conn,
        account_id,
        LedgerKind::Hold,
        amount,
        Some(task_id),
        "task accepted",
    )?;
    Ok(true)
}

/// Ends a task's hold: what is still held is captured or refunded, once. Called in the
/// transaction that moves the task to its terminal state.
pub(super) fn settle(
    conn: &Connection,
    task_id: &str,
    kind: LedgerKind,
    reason: &str,
) -> Result<()> {
    debug_assert!(matches!(kind, LedgerKind::Capture | LedgerKind::Refund));
    let (account_id, remaining): (String, i64) = conn
        .prepare_cached(
            "SELECT account_id, credits_held - credits_captured - credits_refunded FROM tasks WHERE id = ?",
        )?
        .query_row([task_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if remaining < 0 {
        return Err(StoreError::Corrupt(format!(
            "task {task_id} settled more than it held"
        )));
    }
    let (task_sql, account_sql) = match kind {
        LedgerKind::Capture => (
            "UPDATE tasks SET credits_captured = credits_captured + ? WHERE id = ?",
            "UPDATE accounts SET credits_held = credits_held - ?1 WHERE id = ?2",
        ),
        _ => (
            "UPDATE tasks SET credits_refunded = credits_refunded + ? WHERE id = ?",
            "UPDATE accounts SET credits_held = credits_held - ?1, credits_available = credits_available + ?1 WHERE id = ?2",
        ),
    };
    exec(conn, task_sql, params![remaining, task_id])?;
    exec(conn, account_sql, params![remaining, account_id])?;
    entry(conn, &account_id, kind, remaining, Some(task_id), reason)
}

/// A top-up or an adjustment, guarded so the balance stays within `0..=MAX_BALANCE`. On a
/// refusal nothing is written and the outcome says why.
pub(super) fn credit(
    conn: &Connection,
    account_id: &str,
    kind: LedgerKind,
    amount: i64,
    reason: &str,
) -> Result<Credited> {
    rules::check_credit(kind, amount)?;
    let moved = exec(
        conn,
        "UPDATE accounts SET credits_available = credits_available + ?1
         WHERE id = ?2 AND credits_available + ?1 >= 0
           AND credits_available + credits_held + ?1 <= ?3",
        params![amount, account_id, MAX_BALANCE],
    )?;
    if moved == 0 {
        let balance: Option<(i64, i64)> = conn
            .prepare_cached("SELECT credits_available, credits_held FROM accounts WHERE id = ?")?
            .query_row([account_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        return Ok(match balance {
            None => Credited::NoAccount,
            Some((available, held)) => rules::refusal(available, held, amount),
        });
    }
    entry(conn, account_id, kind, amount, None, reason)?;
    Ok(Credited::Done(account(conn, account_id)?.ok_or_else(
        || StoreError::NotFound(format!("account {account_id}")),
    )?))
}

/// The account row, as the writer's transaction sees it.
pub(super) fn account(conn: &Connection, account_id: &str) -> Result<Option<Account>> {
    one(conn, "SELECT * FROM accounts WHERE id = ?", [account_id])
}
