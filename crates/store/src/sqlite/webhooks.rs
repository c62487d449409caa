//! The webhook outbox on SQLite: enqueue inside a transition's transaction, claim with a lease,
//! record attempts, keep each task's messages in order.

use reelay_core::TaskState;
use sqlx::SqliteConnection;

use crate::{Callbacks, Result, Task};

/// Writes the callback for a transition, if the task's dialect reports it. Runs inside the
/// transition's transaction.
pub async fn enqueue(
    conn: &mut SqliteConnection,
    callbacks: &dyn Callbacks,
    task: &Task,
    from: Option<TaskState>,
    to: TaskState,
    now: i64,
) -> Result<bool> {
    let Some(msg) = callbacks.message(task, from, to, now) else {
        return Ok(false);
    };
    let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(
        "INSERT INTO webhook_messages (id, account_id, task_id, seq, event_type, url, payload,
                                       schedule, hmac_subject, state, created_at, updated_at)
         VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_messages WHERE task_id = ?),
                 ?, ?, ?, ?, ?, 'pending', ?, ?)",
    )
    .bind(&id)
    .bind(&task.account_id)
    .bind(&task.id)
    .bind(&task.id)
    .bind(&msg.event_type)
    .bind(&msg.url)
    .bind(&msg.payload)
    .bind(crate::rows::schedule_text(msg.schedule.as_deref()))
    .bind(&msg.hmac_subject)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    kick(conn, &task.id, now).await?;
    Ok(true)
}

/// Makes the task's earliest pending message due, if it is waiting. A message waits (no due
/// time) while an earlier message of its task is pending, so a later state is never delivered
/// before an earlier one is settled.
pub async fn kick(conn: &mut SqliteConnection, task_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_messages SET next_attempt_at = ?, updated_at = ?
         WHERE id = (SELECT id FROM webhook_messages WHERE task_id = ? AND state = 'pending'
                     ORDER BY seq LIMIT 1)
           AND next_attempt_at IS NULL",
    )
    .bind(now)
    .bind(now)
    .bind(task_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
