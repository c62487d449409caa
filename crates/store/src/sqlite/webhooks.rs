//! The webhook outbox on SQLite: enqueue inside a transition's transaction, claim with a lease,
//! record attempts, keep each task's messages in order.

use reelay_core::TaskState;
use rusqlite::{params, Connection};

use super::lite::exec;
use crate::{Callbacks, Result, Task};

/// Writes the callback for a transition, if the task's dialect reports it. Runs inside the
/// transition's transaction.
pub(super) fn enqueue(
    conn: &Connection,
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
    exec(
        conn,
        "INSERT INTO webhook_messages (id, account_id, task_id, seq, event_type, url, payload,
                                       schedule, hmac_subject, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_messages WHERE task_id = ?3),
                 ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9)",
        params![
            id,
            task.account_id,
            task.id,
            msg.event_type,
            msg.url,
            msg.payload,
            crate::rows::schedule_text(msg.schedule.as_deref()),
            msg.hmac_subject,
            now,
        ],
    )?;
    kick(conn, &task.id, now)?;
    Ok(true)
}

/// Makes the task's earliest pending message due, if it is waiting. A message waits (no due
/// time) while an earlier message of its task is pending, so a later state is never delivered
/// before an earlier one is settled.
pub(super) fn kick(conn: &Connection, task_id: &str, now: i64) -> Result<()> {
    exec(
        conn,
        "UPDATE webhook_messages SET next_attempt_at = ?1, updated_at = ?1
         WHERE id = (SELECT id FROM webhook_messages WHERE task_id = ?2 AND state = 'pending'
                     ORDER BY seq LIMIT 1)
           AND next_attempt_at IS NULL",
        params![now, task_id],
    )?;
    Ok(())
}
