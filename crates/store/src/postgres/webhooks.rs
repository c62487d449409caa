//! The webhook outbox on PostgreSQL: enqueue inside a transition's transaction, claim with a
//! lease, record attempts, keep each task's messages in order.
//!
//! Every transaction that changes which of a task's messages is due (a transition enqueuing
//! one, an attempt settling one, a redelivery) holds the task's row lock first. Without it, a
//! transition's `kick` could pick the message an attempt is settling at that moment (still
//! pending in its snapshot), mark that one due after it was delivered, and leave the new
//! message waiting for ever; and `MAX(seq) + 1` could number two messages alike.

use reelay_core::TaskState;
use sqlx::{PgConnection, PgPool};

use super::{lock_task, notify, WEBHOOKS_CHANNEL};
use crate::{now_ms, rows, Callbacks, Result, Task, WebhookAttempt, WebhookMessage, WebhookNext};

/// Writes the callback for a transition, if the task's dialect reports it. Runs inside the
/// transition's transaction, which holds the task's row lock.
pub async fn enqueue(
    conn: &mut PgConnection,
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
         VALUES ($1, $2, $3,
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_messages WHERE task_id = $3),
                 $4, $5, $6, $7, $8, 'pending', $9, $9)",
    )
    .bind(&id)
    .bind(&task.account_id)
    .bind(&task.id)
    .bind(&msg.event_type)
    .bind(&msg.url)
    .bind(&msg.payload)
    .bind(rows::schedule_text(msg.schedule.as_deref()))
    .bind(&msg.hmac_subject)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    kick(conn, &task.id, now).await?;
    // Another instance's deliverers may be the idle ones.
    notify(conn, WEBHOOKS_CHANNEL).await?;
    Ok(true)
}

/// Makes the task's earliest pending message due, if it is waiting; true if it did. A message
/// waits (no due time) while an earlier message of its task is pending, so a later state is
/// never delivered before an earlier one is settled. The caller holds the task's row lock.
pub async fn kick(conn: &mut PgConnection, task_id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_messages SET next_attempt_at = $1, updated_at = $1
         WHERE id = (SELECT id FROM webhook_messages WHERE task_id = $2 AND state = 'pending'
                     ORDER BY seq LIMIT 1)
           AND next_attempt_at IS NULL AND state = 'pending'",
    )
    .bind(now)
    .bind(task_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Claims up to `limit` due messages; messages another instance is claiming or settling right
/// now are skipped, not waited for.
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<WebhookMessage>> {
    let rows = sqlx::query(&format!(
        "UPDATE webhook_messages SET lease_owner = $1, lease_until = $2, next_attempt_at = $2,
                updated_at = $3
         WHERE id IN (SELECT id FROM webhook_messages
                      WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $3
                        AND state = 'pending'
                      ORDER BY next_attempt_at LIMIT $4
                      FOR NO KEY UPDATE SKIP LOCKED)
         RETURNING {}",
        rows::MESSAGE_COLUMNS
    ))
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::message_from_row).collect()
}

/// Records an attempt and what follows, if `owner` still holds the message's lease.
pub async fn finish(
    pool: &PgPool,
    owner: &str,
    a: WebhookAttempt,
    next: WebhookNext,
) -> Result<bool> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let task_id: Option<String> =
        sqlx::query_scalar("SELECT task_id FROM webhook_messages WHERE id = $1")
            .bind(&a.message_id)
            .fetch_optional(&mut *tx)
            .await?;
    // The task before the message, in the order transitions lock them (no deadlock).
    let Some(task_id) = task_id else {
        return Ok(false);
    };
    lock_task(&mut tx, &task_id).await?;
    let (state, due, delivered_at) = match next {
        WebhookNext::Delivered => ("delivered", None, Some(now)),
        WebhookNext::RetryAt(t) => ("pending", Some(t), None),
        WebhookNext::Failed => ("failed", None, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_messages SET state = $1, next_attempt_at = $2, delivered_at = $3,
                attempts = attempts + 1, last_error = $4, lease_owner = NULL,
                lease_until = NULL, updated_at = $5
         WHERE id = $6 AND lease_owner = $7 AND state = 'pending'",
    )
    .bind(state)
    .bind(due)
    .bind(delivered_at)
    .bind(&a.error)
    .bind(now)
    .bind(&a.message_id)
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // Attempt numbers run on across redeliveries (the message's counter restarts). The
    // message's row lock (taken by the update above) makes this the only writer of them.
    let n: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(n), 0) + 1 FROM webhook_attempts WHERE message_id = $1",
    )
    .bind(&a.message_id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (message_id, n, started_at, status, latency_ms, error,
                                       response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&a.message_id)
    .bind(n)
    .bind(a.started_at)
    .bind(a.status.map(i64::from))
    .bind(a.latency_ms)
    .bind(&a.error)
    .bind(&a.response_excerpt)
    .execute(&mut *tx)
    .await?;
    // Settled: the task's next message may go now.
    if !matches!(next, WebhookNext::RetryAt(_)) && kick(&mut tx, &task_id, now).await? {
        notify(&mut tx, WEBHOOKS_CHANNEL).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Queues messages again with the same ids and a fresh retry schedule: the given one
/// (delivered or failed, not leased), or every failed message of the task.
pub async fn redeliver(pool: &PgPool, task_id: &str, message_id: Option<&str>) -> Result<u64> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    lock_task(&mut tx, task_id).await?;
    // Queued again as waiting; `kick` then makes the task's earliest pending message due,
    // so order per task still holds.
    let done = match message_id {
        Some(id) => {
            sqlx::query(
                "UPDATE webhook_messages SET state = 'pending', next_attempt_at = NULL,
                        delivered_at = NULL, attempts = 0, updated_at = $1
                 WHERE id = $2 AND task_id = $3 AND lease_owner IS NULL
                   AND state IN ('failed', 'delivered')",
            )
            .bind(now)
            .bind(id)
            .bind(task_id)
            .execute(&mut *tx)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE webhook_messages SET state = 'pending', next_attempt_at = NULL,
                        attempts = 0, updated_at = $1
                 WHERE task_id = $2 AND state = 'failed'",
            )
            .bind(now)
            .bind(task_id)
            .execute(&mut *tx)
            .await?
        }
    };
    let kicked = kick(&mut tx, task_id, now).await?;
    if done.rows_affected() > 0 || kicked {
        notify(&mut tx, WEBHOOKS_CHANNEL).await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected())
}
