//! Archived media on PostgreSQL: the objects of each task, what serving one needs, and the
//! sweeper's queries.

use sqlx::{PgPool, Row};

use crate::rows::{object_from_row, served_from_row, MEDIA_COLUMNS as COLUMNS};
use crate::{MediaObject, Result, ServedMedia};

pub(super) async fn record(pool: &PgPool, objects: &[MediaObject]) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    // In key order: two archivers recording overlapping objects lock the rows in the same
    // order, so one waits for the other instead of both deadlocking.
    let mut sorted: Vec<&MediaObject> = objects.iter().collect();
    sorted.sort_by(|a, b| (&a.task_id, &a.name).cmp(&(&b.task_id, &b.name)));
    let mut tx = pool.begin().await?;
    for o in sorted {
        sqlx::query(&format!(
            "INSERT INTO media_objects ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (task_id, name) DO UPDATE SET kind = excluded.kind,
                output_index = excluded.output_index, content_type = excluded.content_type,
                size = excluded.size, sha256 = excluded.sha256, source_url = excluded.source_url,
                created_at = excluded.created_at"
        ))
        .bind(&o.task_id)
        .bind(&o.name)
        .bind(o.kind.as_str())
        .bind(o.output_index)
        .bind(&o.content_type)
        .bind(o.size)
        .bind(&o.sha256)
        .bind(&o.source_url)
        .bind(o.created_at)
        .execute(&mut *tx)
        .await?;
    }
    // Recorded objects of a task that already lost its media (a late archiver after a sweep)
    // must be swept again.
    sqlx::query(
        "UPDATE tasks SET media_purged_at = NULL WHERE id = $1 AND media_purged_at IS NOT NULL",
    )
    .bind(&objects[0].task_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn of_task(pool: &PgPool, task_id: &str) -> Result<Vec<MediaObject>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM media_objects WHERE task_id = $1 ORDER BY output_index, name"
    ))
    .bind(task_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(object_from_row).collect()
}

pub(super) async fn served(
    pool: &PgPool,
    task_id: &str,
    name: &str,
) -> Result<Option<ServedMedia>> {
    let row = sqlx::query(
        "SELECT m.task_id, m.name, m.kind, m.output_index, m.content_type, m.size, m.sha256,
                m.source_url, m.created_at, t.account_id, t.expires_at, t.deleted
         FROM media_objects m JOIN tasks t ON t.id = m.task_id
         WHERE m.task_id = $1 AND m.name = $2",
    )
    .bind(task_id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(served_from_row).transpose()
}

pub(super) async fn expired(pool: &PgPool, now: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM tasks WHERE expires_at IS NOT NULL AND media_purged_at IS NULL
           AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

/// Forgets the objects that were deleted and marks the task purged, unless another object was
/// recorded meanwhile (a late archiver): the task then stays on the sweeper's list.
pub(super) async fn purged(pool: &PgPool, task_id: &str, names: &[String], now: i64) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM media_objects WHERE task_id = $1 AND name = ANY($2)")
        .bind(task_id)
        .bind(names)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE tasks SET media_purged_at = $1 WHERE id = $2
           AND NOT EXISTS (SELECT 1 FROM media_objects WHERE task_id = $2)",
    )
    .bind(now)
    .bind(task_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn expire(pool: &PgPool, task_id: &str, at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE tasks SET expires_at = LEAST(COALESCE(expires_at, $1), $1), media_purged_at = NULL
         WHERE id = $2",
    )
    .bind(at)
    .bind(task_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn set_retention(
    pool: &PgPool,
    account_id: &str,
    seconds: Option<i64>,
) -> Result<bool> {
    let done = sqlx::query("UPDATE accounts SET retention_seconds = $1 WHERE id = $2")
        .bind(seconds)
        .bind(account_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
