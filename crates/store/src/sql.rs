//! SQL both backends share, built with sqlx's `QueryBuilder` so each backend gets its own
//! placeholders (`?` for SQLite, `$n` for PostgreSQL) from one description.

use reelay_core::TaskState;
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::rows::TASK_COLUMNS;
use crate::TaskUpdate;

/// `UPDATE tasks SET ... WHERE id = _ AND state = _ [AND lease_owner = _] RETURNING ...` for
/// an update already admitted (see [`crate::rules::admits`]) of a task seen in `state`. The
/// condition is repeated in the statement so it holds even where the transaction did not
/// lock the row first.
pub fn task_update<'a, DB>(u: &TaskUpdate, state: TaskState, now: i64) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: 'a + Encode<'a, DB> + Type<DB>,
    Option<i64>: 'a + Encode<'a, DB> + Type<DB>,
    f64: 'a + Encode<'a, DB> + Type<DB>,
    String: 'a + Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new("UPDATE tasks SET updated_at = ");
    q.push_bind(now);
    if let Some(to) = u.to {
        q.push(", state = ").push_bind(to.as_str().to_string());
        if to == TaskState::Submitting {
            q.push(", started_at = COALESCE(started_at, ")
                .push_bind(now)
                .push(")");
        }
        if to.is_terminal() {
            q.push(", finished_at = ").push_bind(now);
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
        q.push(", progress = ").push_bind(p);
    }
    if let Some(c) = &u.channel {
        q.push(", channel = ").push_bind(c.clone());
    }
    if let Some(id) = &u.upstream_id {
        q.push(", upstream_id = ").push_bind(id.clone());
    }
    if u.bump_attempts {
        q.push(", attempts = attempts + 1");
    }
    if let Some(next) = u.next_attempt_at {
        q.push(", next_attempt_at = ").push_bind(next);
    }
    if u.release_lease {
        q.push(", lease_owner = NULL, lease_until = NULL");
    }
    if let Some(c) = u.cancel_upstream {
        q.push(", cancel_upstream = ").push_bind(c as i64);
    }
    if let Some((code, msg)) = &u.failure {
        q.push(", failure_code = ").push_bind(code.clone());
        q.push(", failure_message = ").push_bind(msg.clone());
    }
    if let Some(o) = &u.outputs {
        q.push(", outputs = ")
            .push_bind(serde_json::to_string(o).unwrap_or_default());
    }
    if let Some(o) = &u.upstream_outputs {
        q.push(", upstream_outputs = ")
            .push_bind(serde_json::to_string(o).unwrap_or_default());
    }
    if let Some(p) = &u.poster {
        q.push(", poster = ").push_bind(p.clone());
    }
    if let Some(l) = &u.last_frame {
        q.push(", last_frame = ").push_bind(l.clone());
    }
    if let Some(e) = u.expires_at {
        q.push(", expires_at = ").push_bind(e);
    }
    if let Some(a) = u.archive_started_at {
        q.push(", archive_started_at = COALESCE(archive_started_at, ")
            .push_bind(a)
            .push(")");
    }
    q.push(" WHERE id = ").push_bind(u.task_id.clone());
    q.push(" AND state = ")
        .push_bind(state.as_str().to_string());
    if let Some(owner) = &u.lease_owner {
        q.push(" AND lease_owner = ").push_bind(owner.clone());
    }
    q.push(" RETURNING ").push(TASK_COLUMNS);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_gets_its_own_placeholders() {
        let u = TaskUpdate::new("t1", &[TaskState::Running])
            .leased_by("w")
            .to(TaskState::Succeeded);
        let lite = task_update::<sqlx::Sqlite>(&u, TaskState::Running, 5);
        let pg = task_update::<sqlx::Postgres>(&u, TaskState::Running, 5);
        assert!(lite
            .sql()
            .starts_with("UPDATE tasks SET updated_at = ?, state = ?"));
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
