//! SQL both backends share, written once against [`Sink`]: sqlx's `QueryBuilder` (PostgreSQL,
//! `$n` placeholders) and [`LiteQuery`] (the SQLite writer's rusqlite statement, `?`).

use reelay_core::TaskState;
use rusqlite::types::Value;
use sqlx::{Database, Encode, QueryBuilder, Type};

/// Where a statement is written: SQL text and bound values, in order.
pub trait Sink {
    fn push(&mut self, sql: &str) -> &mut Self;
    fn push_int(&mut self, v: i64) -> &mut Self;
    fn push_opt_int(&mut self, v: Option<i64>) -> &mut Self;
    fn push_real(&mut self, v: f64) -> &mut Self;
    fn push_text(&mut self, v: String) -> &mut Self;
}

impl<'a, DB> Sink for QueryBuilder<'a, DB>
where
    DB: Database,
    i64: 'a + Encode<'a, DB> + Type<DB>,
    Option<i64>: 'a + Encode<'a, DB> + Type<DB>,
    f64: 'a + Encode<'a, DB> + Type<DB>,
    String: 'a + Encode<'a, DB> + Type<DB>,
{
    fn push(&mut self, sql: &str) -> &mut Self {
        QueryBuilder::push(self, sql)
    }
    fn push_int(&mut self, v: i64) -> &mut Self {
        self.push_bind(v)
    }
    fn push_opt_int(&mut self, v: Option<i64>) -> &mut Self {
        self.push_bind(v)
    }
    fn push_real(&mut self, v: f64) -> &mut Self {
        self.push_bind(v)
    }
    fn push_text(&mut self, v: String) -> &mut Self {
        self.push_bind(v)
    }
}

/// A statement for rusqlite: `?` placeholders and rusqlite's own value type.
#[derive(Default)]
pub struct LiteQuery {
    pub sql: String,
    pub args: Vec<Value>,
}

impl Sink for LiteQuery {
    fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }
    fn push_int(&mut self, v: i64) -> &mut Self {
        self.sql.push('?');
        self.args.push(Value::Integer(v));
        self
    }
    fn push_opt_int(&mut self, v: Option<i64>) -> &mut Self {
        self.sql.push('?');
        self.args.push(v.map_or(Value::Null, Value::Integer));
        self
    }
    fn push_real(&mut self, v: f64) -> &mut Self {
        self.sql.push('?');
        self.args.push(Value::Real(v));
        self
    }
    fn push_text(&mut self, v: String) -> &mut Self {
        self.sql.push('?');
        self.args.push(Value::Text(v));
        self
    }
}

use crate::rows::TASK_COLUMNS;
use crate::TaskUpdate;

/// `UPDATE tasks SET ... WHERE id = _ AND state = _ [AND lease_owner = _] RETURNING ...` for
/// an update already admitted (see [`crate::rules::admits`]) of a task seen in `state`. The
/// condition is repeated in the statement so it holds even where the transaction did not
/// lock the row first.
pub fn task_update<S: Sink>(q: &mut S, u: &TaskUpdate, state: TaskState, now: i64) {
    q.push("UPDATE tasks SET updated_at = ").push_int(now);
    if let Some(to) = u.to {
        q.push(", state = ").push_text(to.as_str().to_string());
        if to == TaskState::Submitting {
            q.push(", started_at = COALESCE(started_at, ")
                .push_int(now)
                .push(")");
        }
        if to.is_terminal() {
            q.push(", finished_at = ").push_int(now);
            if to == TaskState::Succeeded {
                q.push(", progress = 1");
            }
            // A finished task has nothing left to do unless the caller says otherwise (an
            // owed upstream cancel), so it never comes due again by accident.
            if u.next_attempt_at.is_none() {
                q.push(", next_attempt_at = NULL");
            }
        }
    }
    if let Some(p) = u.progress {
        q.push(", progress = ").push_real(p);
    }
    if let Some(c) = &u.channel {
        q.push(", channel = ").push_text(c.clone());
    }
    if let Some(id) = &u.upstream_id {
        q.push(", upstream_id = ").push_text(id.clone());
    } else if u.clear_upstream {
        q.push(", upstream_id = NULL");
    }
    if u.bump_attempts {
        q.push(", attempts = attempts + 1");
    }
    if let Some(next) = u.next_attempt_at {
        q.push(", next_attempt_at = ").push_opt_int(next);
    }
    if u.release_lease {
        q.push(", lease_owner = NULL, lease_until = NULL");
    }
    if let Some(c) = u.cancel_upstream {
        q.push(", cancel_upstream = ").push_int(c as i64);
    }
    if let Some((code, msg)) = &u.failure {
        q.push(", failure_code = ").push_text(code.clone());
        q.push(", failure_message = ").push_text(msg.clone());
    }
    if let Some(o) = &u.outputs {
        q.push(", outputs = ")
            .push_text(serde_json::to_string(o).unwrap_or_default());
    }
    if let Some(o) = &u.upstream_outputs {
        q.push(", upstream_outputs = ")
            .push_text(serde_json::to_string(o).unwrap_or_default());
    }
    if let Some(p) = &u.poster {
        q.push(", poster = ").push_text(p.clone());
    }
    if let Some(l) = &u.last_frame {
        q.push(", last_frame = ").push_text(l.clone());
    }
    if let Some(e) = u.expires_at {
        q.push(", expires_at = ").push_int(e);
    }
    if let Some(a) = u.archive_started_at {
        q.push(", archive_started_at = COALESCE(archive_started_at, ")
            .push_int(a)
            .push(")");
    }
    q.push(" WHERE id = ").push_text(u.task_id.clone());
    q.push(" AND state = ")
        .push_text(state.as_str().to_string());
    if let Some(owner) = &u.lease_owner {
        q.push(" AND lease_owner = ").push_text(owner.clone());
    }
    q.push(" RETURNING ").push(TASK_COLUMNS);
}

/// The statements of `ops_snapshot`, the same on both backends; `?` is the current time
/// (written `$1` for PostgreSQL by the caller).
pub const OPS_TASKS_BY_STATE: &str =
    "SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state";
pub const OPS_QUEUE: &str = "SELECT COUNT(*), MIN(next_attempt_at) FROM tasks \
     WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? AND state IN ('queued', 'throttled') \
     AND upstream_id IS NULL";
// Sums cast back to BIGINT: PostgreSQL sums BIGINTs as NUMERIC.
pub const OPS_HELD: &str = "SELECT CAST(COALESCE(SUM(credits_held), 0) AS BIGINT) FROM accounts";
pub const OPS_SETTLED: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END), 0) AS BIGINT) \
     FROM ledger_entries WHERE kind IN ('capture', 'refund')";
pub const OPS_BACKLOG: &str =
    "SELECT COUNT(*), MIN(created_at) FROM webhook_messages WHERE state = 'pending'";

/// `activity`: tasks ended per bucket and end state since `$1`, buckets `$2` ms wide.
pub const ACTIVITY_ENDED: &str = "SELECT CAST((finished_at - $1) / $2 AS BIGINT), state, COUNT(*) \
     FROM tasks WHERE finished_at >= $1 AND state IN ('succeeded', 'failed', 'cancelled') \
     GROUP BY 1, 2";
/// `activity`: credits captured and refunded since `$1`.
pub const ACTIVITY_SETTLED: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END), 0) AS BIGINT) \
     FROM ledger_entries WHERE created_at >= $1 AND kind IN ('capture', 'refund')";

/// The rows of `ACTIVITY_ENDED` as buckets, oldest first, every bucket present.
pub fn activity(
    rows: Vec<(i64, String, i64)>,
    buckets: usize,
    settled: (i64, i64),
) -> crate::Activity {
    let mut out = vec![crate::ActivityBucket::default(); buckets];
    for (i, state, n) in rows {
        let Some(b) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        match state.as_str() {
            "succeeded" => b.succeeded += n,
            "failed" => b.failed += n,
            _ => b.cancelled += n,
        }
    }
    crate::Activity {
        buckets: out,
        credits_captured: settled.0,
        credits_refunded: settled.1,
    }
}

/// `in_flight_by_channel`.
pub fn in_flight_by_channel() -> String {
    format!(
        "SELECT channel, COUNT(*) FROM tasks WHERE channel IS NOT NULL AND {} GROUP BY channel",
        crate::rules::IN_FLIGHT
    )
}

/// `release_leases`: `?` = submitting_at, now, owner.
pub const RELEASE_LEASES: &str = "UPDATE tasks SET lease_owner = NULL, lease_until = NULL, \
     next_attempt_at = CASE WHEN state = 'submitting' THEN ? ELSE ? END \
     WHERE lease_owner = ? AND next_attempt_at IS NOT NULL";

/// Makes the task that has waited longest for channel capacity due now (a slot just freed).
/// The waiting tasks are found through their own partial index (`tasks_waiting`), so this
/// costs the same with ten or ten thousand of them.
/// `skip_locked` (PostgreSQL): a waiting row another transaction holds is passed over rather
/// than waited for, so two transactions each freeing a slot never wait on each other.
pub fn wake_waiting<S: Sink>(q: &mut S, now: i64, skip_locked: bool) {
    q.push("UPDATE tasks SET next_attempt_at = ")
        .push_int(now)
        .push(
            " WHERE id = (SELECT id FROM tasks WHERE state = 'throttled' \
             AND upstream_id IS NULL AND next_attempt_at IS NOT NULL AND next_attempt_at > ",
        )
        .push_int(now)
        .push(" AND (lease_until IS NULL OR lease_until <= ")
        .push_int(now)
        .push(") ORDER BY next_attempt_at LIMIT 1")
        .push(if skip_locked {
            " FOR NO KEY UPDATE SKIP LOCKED)"
        } else {
            ")"
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_gets_its_own_placeholders() {
        let u = TaskUpdate::new("t1", &[TaskState::Running])
            .leased_by("w")
            .to(TaskState::Succeeded);
        let mut lite = LiteQuery::default();
        task_update(&mut lite, &u, TaskState::Running, 5);
        let mut pg = QueryBuilder::<sqlx::Postgres>::new("");
        task_update(&mut pg, &u, TaskState::Running, 5);
        assert!(lite
            .sql
            .starts_with("UPDATE tasks SET updated_at = ?, state = ?"));
        assert_eq!(lite.args.len(), 6);
        assert!(pg
            .sql()
            .starts_with("UPDATE tasks SET updated_at = $1, state = $2"));
        assert!(
            pg.sql().contains("AND lease_owner = $6 RETURNING"),
            "{}",
            pg.sql()
        );
    }
}
