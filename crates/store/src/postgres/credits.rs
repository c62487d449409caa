//! Ledger writes on PostgreSQL. Each function runs inside the caller's transaction, next to the
//! task change it belongs to, and moves the account balance with a conditional update in that
//! same transaction: the balance is never read first and written after. The update's row lock
//! serialises concurrent movers of one balance; its guard is evaluated on the newest row.

use sqlx::{PgConnection, Row};

use crate::rules::{self, Credited, MAX_BALANCE};
use crate::{now_ms, LedgerKind, Result, StoreError};

async fn entry(
    conn: &mut PgConnection,
    account_id: &str,
    kind: LedgerKind,
    amount: i64,
    task_id: Option<&str>,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_entries (account_id, kind, amount, task_id, reason, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account_id)
    .bind(kind.as_str())
    .bind(amount)
    .bind(task_id)
    .bind(reason)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Holds `amount` for a task if the account has it available. False when it does not.
pub async fn hold(
    conn: &mut PgConnection,
    account_id: &str,
    task_id: &str,
    amount: i64,
) -> Result<bool> {
    let moved = sqlx::query(
        "UPDATE accounts SET credits_available = credits_available - $1,
                credits_held = credits_held + $1
         WHERE id = $2 AND credits_available >= $1",
    )
    .bind(amount)
    .bind(account_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
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
    )
    .await?;
    Ok(true)
}

/// Ends a task's hold: what is still held is captured or refunded, once. Called in the
/// transaction that moves the task to its terminal state (which holds the task's row lock).
pub async fn settle(
    conn: &mut PgConnection,
    task_id: &str,
    kind: LedgerKind,
    reason: &str,
) -> Result<()> {
    debug_assert!(matches!(kind, LedgerKind::Capture | LedgerKind::Refund));
    let row = sqlx::query(
        "SELECT account_id, credits_held - credits_captured - credits_refunded AS remaining
         FROM tasks WHERE id = $1",
    )
    .bind(task_id)
    .fetch_one(&mut *conn)
    .await?;
    let account_id: String = row.try_get("account_id")?;
    let remaining: i64 = row.try_get("remaining")?;
    if remaining < 0 {
        return Err(StoreError::Corrupt(format!(
            "task {task_id} settled more than it held"
        )));
    }
    let (task_sql, account_sql) = match kind {
        LedgerKind::Capture => (
            "UPDATE tasks SET credits_captured = credits_captured + $1 WHERE id = $2",
            "UPDATE accounts SET credits_held = credits_held - $1 WHERE id = $2",
        ),
        _ => (
            "UPDATE tasks SET credits_refunded = credits_refunded + $1 WHERE id = $2",
            "UPDATE accounts SET credits_held = credits_held - $1,
                    credits_available = credits_available + $1 WHERE id = $2",
        ),
    };
    sqlx::query(task_sql)
        .bind(remaining)
        .bind(task_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(account_sql)
        .bind(remaining)
        .bind(&account_id)
        .execute(&mut *conn)
        .await?;
    entry(conn, &account_id, kind, remaining, Some(task_id), reason).await
}

/// A top-up or an adjustment, guarded so the balance stays within `0..=MAX_BALANCE`. On a
/// refusal nothing is written and the outcome says why.
pub async fn credit(
    conn: &mut PgConnection,
    account_id: &str,
    kind: LedgerKind,
    amount: i64,
    reason: &str,
) -> Result<Credited> {
    rules::check_credit(kind, amount)?;
    let moved = sqlx::query(
        "UPDATE accounts SET credits_available = credits_available + $1
         WHERE id = $2 AND credits_available + $1 >= 0
           AND credits_available + credits_held + $1 <= $3",
    )
    .bind(amount)
    .bind(account_id)
    .bind(MAX_BALANCE)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 0 {
        let row = sqlx::query("SELECT credits_available, credits_held FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?;
        return Ok(match row {
            None => Credited::NoAccount,
            Some(r) => rules::refusal(r.try_get(0)?, r.try_get(1)?, amount),
        });
    }
    entry(conn, account_id, kind, amount, None, reason).await?;
    let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Credited::Done(crate::rows::account_from_row(&row)?))
}
