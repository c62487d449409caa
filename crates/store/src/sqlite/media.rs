//! Archived media: the objects of each task, what serving one needs, and the sweeper's queries.

use sqlx::{Row, SqlitePool};

use crate::{MediaObject, Result, ServedMedia};

use crate::rows::{object_from_row, served_from_row, MEDIA_COLUMNS as COLUMNS};

/// The `SET` parts of a task update that concern media.
pub(super) async fn record(write: &SqlitePool, objects: &[MediaObject]) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
    for o in objects {
        sqlx::query(&format!(
            "INSERT INTO media_objects ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        "UPDATE tasks SET media_purged_at = NULL WHERE id = ? AND media_purged_at IS NOT NULL",
    )
    .bind(&objects[0].task_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn of_task(read: &SqlitePool, task_id: &str) -> Result<Vec<MediaObject>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM media_objects WHERE task_id = ? ORDER BY output_index, name"
    ))
    .bind(task_id)
    .fetch_all(read)
    .await?;
    rows.iter().map(object_from_row).collect()
}

pub(super) async fn served(
    read: &SqlitePool,
    task_id: &str,
    name: &str,
) -> Result<Option<ServedMedia>> {
    let row = sqlx::query(
        "SELECT m.task_id, m.name, m.kind, m.output_index, m.content_type, m.size, m.sha256,
                m.source_url, m.created_at, t.account_id, t.expires_at, t.deleted
         FROM media_objects m JOIN tasks t ON t.id = m.task_id
         WHERE m.task_id = ? AND m.name = ?",
    )
    .bind(task_id)
    .bind(name)
    .fetch_optional(read)
    .await?;
    row.as_ref().map(served_from_row).transpose()
}

pub(super) async fn expired(read: &SqlitePool, now: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM tasks WHERE expires_at IS NOT NULL AND media_purged_at IS NULL
           AND expires_at <= ? ORDER BY expires_at LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(read)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

/// Forgets the objects that were deleted and marks the task purged, unless another object was
/// recorded meanwhile (a late archiver): the task then stays on the sweeper's list.
pub(super) async fn purged(
    write: &SqlitePool,
    task_id: &str,
    names: &[String],
    now: i64,
) -> Result<()> {
    let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
    for name in names {
        sqlx::query("DELETE FROM media_objects WHERE task_id = ? AND name = ?")
            .bind(task_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE tasks SET media_purged_at = ? WHERE id = ?
           AND NOT EXISTS (SELECT 1 FROM media_objects WHERE task_id = ?)",
    )
    .bind(now)
    .bind(task_id)
    .bind(task_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn expire(write: &SqlitePool, task_id: &str, at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE tasks SET expires_at = MIN(COALESCE(expires_at, ?), ?), media_purged_at = NULL
         WHERE id = ?",
    )
    .bind(at)
    .bind(at)
    .bind(task_id)
    .execute(write)
    .await?;
    Ok(())
}

pub(super) async fn set_retention(
    write: &SqlitePool,
    account_id: &str,
    seconds: Option<i64>,
) -> Result<bool> {
    let done = sqlx::query("UPDATE accounts SET retention_seconds = ? WHERE id = ?")
        .bind(seconds)
        .bind(account_id)
        .execute(write)
        .await?;
    Ok(done.rows_affected() == 1)
}
