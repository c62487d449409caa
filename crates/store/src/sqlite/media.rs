//! Archived media: the objects of each task, what serving one needs, and the sweeper's queries.

use rusqlite::{params, Connection};
use sqlx::{Row, SqlitePool};

use super::lite::exec;

use crate::{MediaObject, Result, ServedMedia};

use crate::rows::{served_from_row, MEDIA_COLUMNS as COLUMNS};

/// The `SET` parts of a task update that concern media.
pub(super) fn record(conn: &Connection, objects: &[MediaObject]) -> Result<()> {
    let Some(first) = objects.first() else {
        return Ok(());
    };
    let sql = format!(
        "INSERT INTO media_objects ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (task_id, name) DO UPDATE SET kind = excluded.kind,
            output_index = excluded.output_index, content_type = excluded.content_type,
            size = excluded.size, sha256 = excluded.sha256, source_url = excluded.source_url,
            created_at = excluded.created_at"
    );
    for o in objects {
        exec(
            conn,
            &sql,
            params![
                o.task_id,
                o.name,
                o.kind.as_str(),
                o.output_index,
                o.content_type,
                o.size,
                o.sha256,
                o.source_url,
                o.created_at
            ],
        )?;
    }
    exec(
        conn,
        "UPDATE tasks SET media_purged_at = NULL WHERE id = ? AND media_purged_at IS NOT NULL",
        [&first.task_id],
    )?;
    Ok(())
}

pub(super) fn of_task(c: &Connection, task_id: &str) -> Result<Vec<MediaObject>> {
    super::lite::all(
        c,
        &format!(
            "SELECT {COLUMNS} FROM media_objects WHERE task_id = ? ORDER BY output_index, name"
        ),
        [task_id],
    )
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
pub(super) fn purged(conn: &Connection, task_id: &str, names: &[String], now: i64) -> Result<()> {
    for name in names {
        exec(
            conn,
            "DELETE FROM media_objects WHERE task_id = ? AND name = ?",
            params![task_id, name],
        )?;
    }
    exec(
        conn,
        "UPDATE tasks SET media_purged_at = ?1 WHERE id = ?2
           AND NOT EXISTS (SELECT 1 FROM media_objects WHERE task_id = ?2)",
        params![now, task_id],
    )?;
    Ok(())
}

pub(super) fn expire(conn: &Connection, task_id: &str, at: i64) -> Result<()> {
    exec(
        conn,
        "UPDATE tasks SET expires_at = MIN(COALESCE(expires_at, ?1), ?1), media_purged_at = NULL
         WHERE id = ?2",
        params![at, task_id],
    )?;
    Ok(())
}

pub(super) fn set_retention(
    conn: &Connection,
    account_id: &str,
    seconds: Option<i64>,
) -> Result<bool> {
    let done = exec(
        conn,
        "UPDATE accounts SET retention_seconds = ? WHERE id = ?",
        params![seconds, account_id],
    )?;
    Ok(done == 1)
}
