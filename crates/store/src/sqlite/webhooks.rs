//! The webhook outbox on SQLite: enqueue inside a transition's transaction, claim with a lease,
//! record attempts, keep each task's messages in order.

use reelay_core::TaskState;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::{Callbacks, Result, StoreError, Task, WebhookAttempt, WebhookMessage};

pub const MESSAGE_COLUMNS: &str = "id, account_id, task_id, seq, event_type, url, payload, \
    schedule, hmac_subject, state, attempts, next_attempt_at, last_error, created_at, delivered_at";

pub fn message_from_row(r: &SqliteRow) -> Result<WebhookMessage> {
    let schedule: Option<String> = r.try_get("schedule")?;
    Ok(WebhookMessage {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        task_id: r.try_get("task_id")?,
        seq: r.try_get("seq")?,
        event_type: r.try_get("event_type")?,
        url: r.try_get("url")?,
        payload: r.try_get("payload")?,
        schedule: schedule
            .map(|s| {
                s.split(',')
                    .map(|n| n.trim().parse::<u64>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| StoreError::Corrupt(format!("webhook schedule {s:?}: {e}")))
            })
            .transpose()?,
        hmac_subject: r.try_get("hmac_subject")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

pub fn attempt_from_row(r: &SqliteRow) -> Result<WebhookAttempt> {
    Ok(WebhookAttempt {
        message_id: r.try_get("message_id")?,
        n: r.try_get("n")?,
        started_at: r.try_get("started_at")?,
        status: r.try_get::<Option<i64>, _>("status")?.map(|s| s as u16),
        latency_ms: r.try_get("latency_ms")?,
        error: r.try_get("error")?,
        response_excerpt: r.try_get("response_excerpt")?,
    })
}

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
    .bind(msg.schedule.map(|s| {
        s.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }))
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
