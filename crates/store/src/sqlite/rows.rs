use reelay_core::TaskState;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::{Account, ApiKey, LedgerEntry, LedgerKind, Result, StoreError, Task, TaskEvent};

pub const TASK_COLUMNS: &str = "id, account_id, key_id, dialect, spec, state, progress, channel, \
    upstream_id, attempts, next_attempt_at, lease_owner, lease_until, cancel_upstream, credits_held, \
    credits_captured, credits_refunded, failure_code, failure_message, outputs, upstream_outputs, \
    deleted, created_at, updated_at, started_at, finished_at, expires_at, poster, last_frame, \
    archive_started_at";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub fn account_from_row(r: &SqliteRow) -> Result<Account> {
    Ok(Account {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        credits_available: r.try_get("credits_available")?,
        credits_held: r.try_get("credits_held")?,
        price_multiplier: r.try_get("price_multiplier")?,
        max_active_tasks: r.try_get("max_active_tasks")?,
        retention_seconds: r.try_get("retention_seconds")?,
        created_at: r.try_get("created_at")?,
    })
}

pub fn ledger_from_row(r: &SqliteRow) -> Result<LedgerEntry> {
    let kind: String = r.try_get("kind")?;
    Ok(LedgerEntry {
        seq: r.try_get("seq")?,
        account_id: r.try_get("account_id")?,
        kind: LedgerKind::parse(&kind).ok_or_else(|| corrupt(&kind))?,
        amount: r.try_get("amount")?,
        task_id: r.try_get("task_id")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
    })
}

pub fn key_from_row(r: &SqliteRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

pub fn task_from_row(r: &SqliteRow) -> Result<Task> {
    let state: String = r.try_get("state")?;
    let spec: String = r.try_get("spec")?;
    let outputs: String = r.try_get("outputs")?;
    let upstream_outputs: String = r.try_get("upstream_outputs")?;
    Ok(Task {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        key_id: r.try_get("key_id")?,
        dialect: r.try_get("dialect")?,
        spec: serde_json::from_str(&spec).map_err(corrupt)?,
        state: TaskState::parse(&state).ok_or_else(|| corrupt(&state))?,
        progress: r.try_get("progress")?,
        channel: r.try_get("channel")?,
        upstream_id: r.try_get("upstream_id")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
        cancel_upstream: r.try_get::<i64, _>("cancel_upstream")? != 0,
        credits_held: r.try_get("credits_held")?,
        credits_captured: r.try_get("credits_captured")?,
        credits_refunded: r.try_get("credits_refunded")?,
        failure_code: r.try_get("failure_code")?,
        failure_message: r.try_get("failure_message")?,
        outputs: serde_json::from_str(&outputs).map_err(corrupt)?,
        upstream_outputs: serde_json::from_str(&upstream_outputs).map_err(corrupt)?,
        deleted: r.try_get::<i64, _>("deleted")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        expires_at: r.try_get("expires_at")?,
        poster: r.try_get("poster")?,
        last_frame: r.try_get("last_frame")?,
        archive_started_at: r.try_get("archive_started_at")?,
    })
}

pub fn event_from_row(r: &SqliteRow) -> Result<TaskEvent> {
    let from: Option<String> = r.try_get("from_state")?;
    let to: String = r.try_get("to_state")?;
    let data: String = r.try_get("data")?;
    Ok(TaskEvent {
        id: r.try_get("id")?,
        task_id: r.try_get("task_id")?,
        from_state: from
            .map(|s| TaskState::parse(&s).ok_or_else(|| corrupt(&s)))
            .transpose()?,
        to_state: TaskState::parse(&to).ok_or_else(|| corrupt(&to))?,
        data: serde_json::from_str(&data).map_err(corrupt)?,
        created_at: r.try_get("created_at")?,
    })
}
