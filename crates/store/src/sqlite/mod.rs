//! SQLite backend: WAL, a busy timeout, one writer connection (SQLite has one writer anyway;
//! funnelling writes through one connection avoids lock-upgrade deadlocks) and several readers.
//! Write transactions start with `BEGIN IMMEDIATE` so a read inside them is already under the
//! write lock.

mod credits;
mod media;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reelay_core::TaskState;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::rows::{
    self, account_from_row, key_from_row, ledger_from_row, task_from_row, BalanceCheckRow,
    SealedSecretsRow, TaskCreditsRow, TASK_COLUMNS,
};
use crate::rules::{self, CancelPlan};
use crate::{
    now_ms, secrets::SecretBox, AcceptOutcome, Acceptance, Account, ApiKey, Callbacks,
    CancelOutcome, CreditUsage, Credited, LedgerEntry, LedgerKind, LedgerViolation, MediaObject,
    NewAccount, NewTask, Result, ServedMedia, Store, StoreError, Task, TaskEvent, TaskUpdate,
    WebhookAttempt, WebhookMessage, WebhookNext, WebhookSecrets,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    callbacks: Option<Arc<dyn Callbacks>>,
    secrets: SecretBox,
    writes: Arc<WriteCount>,
}

/// Rows changed by committed transactions on the writer, counted by SQLite's own hooks (so no
/// write path can be missed): changes are pending until their transaction commits, and a
/// rollback forgets them.
#[derive(Default)]
struct WriteCount {
    pending: std::sync::atomic::AtomicU64,
    committed: std::sync::atomic::AtomicU64,
}

impl WriteCount {
    fn install(self: &Arc<Self>, handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>) {
        use std::sync::atomic::Ordering::Relaxed;
        let (w1, w2, w3) = (self.clone(), self.clone(), self.clone());
        handle.set_update_hook(move |_| {
            w1.pending.fetch_add(1, Relaxed);
        });
        handle.set_commit_hook(move || {
            w2.committed.fetch_add(w2.pending.swap(0, Relaxed), Relaxed);
            true
        });
        handle.set_rollback_hook(move || {
            w3.pending.store(0, Relaxed);
        });
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and applies migrations.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writes = Arc::new(WriteCount::default());
        let hooks = writes.clone();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let hooks = hooks.clone();
                Box::pin(async move {
                    hooks.install(&mut conn.lock_handle().await?);
                    Ok(())
                })
            })
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(SqliteStore {
            write,
            read,
            callbacks: None,
            secrets: SecretBox::ephemeral(),
            writes,
        })
    }

    /// The dialects' callback rules, consulted in every transition's transaction.
    pub fn with_callbacks(mut self, callbacks: Arc<dyn Callbacks>) -> SqliteStore {
        self.callbacks = Some(callbacks);
        self
    }

    /// The key sealing secrets at rest. Without one, a key that lives as long as the process
    /// is used (fine for tests, not for a server: secrets would not open after a restart).
    pub fn with_secret_key(mut self, key: [u8; 32]) -> SqliteStore {
        self.secrets = SecretBox::new(key);
        self
    }

    /// Writes the callback of a transition, if its dialect reports it (inside `conn`'s tx).
    async fn callback(
        &self,
        conn: &mut sqlx::SqliteConnection,
        task: &Task,
        from: Option<TaskState>,
        to: TaskState,
        now: i64,
    ) -> Result<bool> {
        match &self.callbacks {
            Some(cb) if task.spec.callback_url.is_some() => {
                webhooks::enqueue(conn, cb.as_ref(), task, from, to, now).await
            }
            _ => Ok(false),
        }
    }

    /// After the commit that wrote a message: wake the deliverers.
    fn committed(&self, enqueued: bool) {
        if let (true, Some(cb)) = (enqueued, &self.callbacks) {
            cb.committed();
        }
    }

    /// Closes every connection (waits for those in use to be returned).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Tasks holding an upstream slot on channel `?` (see [`rules::IN_FLIGHT`]).
fn in_flight_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM tasks WHERE channel = ? AND {}",
        rules::IN_FLIGHT
    )
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn insert_event(
    tx: &mut sqlx::SqliteConnection,
    task_id: &str,
    from: Option<TaskState>,
    to: TaskState,
    data: &serde_json::Value,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO task_events (id, task_id, from_state, to_state, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(new_id())
    .bind(task_id)
    .bind(from.map(TaskState::as_str))
    .bind(to.as_str())
    .bind(data.to_string())
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn committed_writes(&self) -> u64 {
        self.writes
            .committed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn create_account(&self, name: &str, credits: i64) -> Result<Account> {
        let new = NewAccount {
            name: name.into(),
            credits,
            ..NewAccount::default()
        };
        Ok(self.open_account(&new).await?.0)
    }

    async fn open_account(&self, new: &NewAccount) -> Result<(Account, Option<String>)> {
        let credits = new.credits;
        if !(0..=crate::MAX_BALANCE).contains(&credits) {
            return Err(StoreError::Invalid(format!(
                "initial credits must be between 0 and {}, got {credits}",
                crate::MAX_BALANCE
            )));
        }
        let id = format!("acct_{}", uuid::Uuid::now_v7().simple());
        let now = now_ms();
        // Account, initial credits, limits and first key in one transaction: a failure at
        // any step leaves no half-made account behind an error answer.
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, name, credits_available, webhook_secret, created_at,
                                   price_multiplier, max_active_tasks)
             VALUES (?, ?, 0, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(
            self.secrets.seal(
                &new.webhook_secret
                    .clone()
                    .unwrap_or_else(crate::generate_webhook_secret),
            ),
        )
        .bind(now)
        .bind(new.price_multiplier.unwrap_or(1.0))
        .bind(new.max_active_tasks)
        .execute(&mut *tx)
        .await?;
        if credits > 0 {
            credits::credit(&mut tx, &id, LedgerKind::Topup, credits, "initial credits").await?;
        }
        let key_id = match &new.key {
            Some(key) => {
                let key_id = format!("kid_{}", uuid::Uuid::now_v7().simple());
                sqlx::query(
                    "INSERT INTO api_keys (id, account_id, key_hash, prefix, created_at)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&key_id)
                .bind(&id)
                .bind(&key.hash)
                .bind(&key.prefix)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                Some(key_id)
            }
            None => None,
        };
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
        // Decoded before the commit: a failure after it would answer an error for a write
        // that stands.
        let account = account_from_row(&row)?;
        tx.commit().await?;
        Ok((account, key_id))
    }

    async fn get_account(&self, id: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    async fn count_accounts(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.write)
            .await?
            .try_get(0)?)
    }

    async fn create_api_key(
        &self,
        account_id: &str,
        key_hash: &str,
        prefix: &str,
    ) -> Result<String> {
        let id = format!("kid_{}", uuid::Uuid::now_v7().simple());
        let res = sqlx::query(
            "INSERT INTO api_keys (id, account_id, key_hash, prefix, created_at)
             SELECT ?, id, ?, ?, ? FROM accounts WHERE id = ?",
        )
        .bind(&id)
        .bind(key_hash)
        .bind(prefix)
        .bind(now_ms())
        .bind(account_id)
        .execute(&self.write)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {account_id}")));
        }
        Ok(id)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, Account)>> {
        let row = sqlx::query(
            "SELECT k.id AS key_id, k.prefix, k.created_at AS key_created_at, a.*
             FROM api_keys k JOIN accounts a ON a.id = k.account_id
             WHERE k.key_hash = ? AND k.revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let account = account_from_row(&row)?;
        let key = ApiKey {
            id: row.try_get("key_id")?,
            account_id: account.id.clone(),
            prefix: row.try_get("prefix")?,
            created_at: row.try_get("key_created_at")?,
            revoked_at: None,
            last_used_at: None,
        };
        Ok(Some((key, account)))
    }

    async fn accept_task(&self, task: NewTask, acceptance: Acceptance) -> Result<AcceptOutcome> {
        let now = now_ms();
        let spec =
            serde_json::to_string(&task.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin().await?;
        if let Some(idem) = &acceptance.idempotency {
            let prior = sqlx::query(
                "SELECT request_hash, task_id, response_status, response_body FROM idempotency_keys
                 WHERE account_id = ? AND key = ? AND expires_at > ?",
            )
            .bind(&task.account_id)
            .bind(&idem.key)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(prior) = prior {
                let hash: String = prior.try_get("request_hash")?;
                if hash != idem.request_hash {
                    return Ok(AcceptOutcome::IdempotencyMismatch);
                }
                return Ok(AcceptOutcome::Replayed {
                    task_id: prior.try_get("task_id")?,
                    status: prior.try_get::<i64, _>("response_status")? as u16,
                    body: prior.try_get("response_body")?,
                });
            }
        }
        let account =
            sqlx::query("SELECT credits_available, max_active_tasks FROM accounts WHERE id = ?")
                .bind(&task.account_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("account {}", task.account_id)))?;
        let own_cap: Option<i64> = account.try_get("max_active_tasks")?;
        if let Some(limit) = own_cap.or(acceptance.max_active_tasks) {
            let active: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) FROM tasks WHERE account_id = ? AND {}",
                rules::LIVE
            ))
            .bind(&task.account_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if active >= limit {
                return Ok(AcceptOutcome::TooManyActive { limit });
            }
        }
        let row = sqlx::query(&format!(
            "INSERT INTO tasks (id, account_id, key_id, dialect, endpoint, model, spec, state,
                                next_attempt_at, credits_held, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING {TASK_COLUMNS}"
        ))
        .bind(&task.id)
        .bind(&task.account_id)
        .bind(&task.key_id)
        .bind(&task.dialect)
        .bind(&task.spec.endpoint)
        .bind(&task.spec.model)
        .bind(spec)
        .bind(now)
        .bind(task.spec.price)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if !credits::hold(&mut tx, &task.account_id, &task.id, task.spec.price).await? {
            // Dropping the transaction rolls the insert back: nothing was created.
            let available: i64 = account.try_get("credits_available")?;
            return Ok(AcceptOutcome::InsufficientCredits {
                available,
                price: task.spec.price,
            });
        }
        insert_event(
            &mut tx,
            &task.id,
            None,
            TaskState::Queued,
            &serde_json::json!({}),
            now,
        )
        .await?;
        if let Some(idem) = &acceptance.idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (account_id, key, request_hash, task_id, response_status,
                                               response_body, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (account_id, key) DO UPDATE SET request_hash = excluded.request_hash,
                    task_id = excluded.task_id, response_status = excluded.response_status,
                    response_body = excluded.response_body, created_at = excluded.created_at,
                    expires_at = excluded.expires_at",
            )
            .bind(&task.account_id)
            .bind(&idem.key)
            .bind(&idem.request_hash)
            .bind(&task.id)
            .bind(idem.response_status as i64)
            .bind(&idem.response_body)
            .bind(now)
            .bind(now + idem.ttl_ms)
            .execute(&mut *tx)
            .await?;
        }
        let created = task_from_row(&row)?;
        let enqueued = self
            .callback(&mut tx, &created, None, TaskState::Queued, now)
            .await?;
        tx.commit().await?;
        self.committed(enqueued);
        Ok(AcceptOutcome::Created(Box::new(created)))
    }

    async fn get_task(&self, account_id: &str, id: &str) -> Result<Option<Task>> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ? AND account_id = ? AND deleted = 0"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    async fn get_task_by_id(&self, id: &str) -> Result<Option<Task>> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    async fn task_events(&self, task_id: &str) -> Result<Vec<TaskEvent>> {
        let rows = sqlx::query("SELECT * FROM task_events WHERE task_id = ? ORDER BY seq")
            .bind(task_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(rows::event_from_row).collect()
    }

    async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Task>> {
        // The claimed task comes due again at the lease expiry: if this worker dies, another
        // picks it up then, with no separate sweeper.
        let rows = sqlx::query(&format!(
            "UPDATE tasks SET lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2
             WHERE id IN (SELECT id FROM tasks
                          WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?3
                          ORDER BY next_attempt_at LIMIT ?4)
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn next_due_at(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query("SELECT MIN(next_attempt_at) FROM tasks WHERE next_attempt_at IS NOT NULL")
                .fetch_one(&self.read)
                .await?
                .try_get(0)?,
        )
    }

    async fn count_in_flight(&self, channel: &str) -> Result<i64> {
        Ok(sqlx::query(&in_flight_sql())
            .bind(channel)
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }

    async fn update_task(&self, u: TaskUpdate) -> Result<Option<Task>> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let current = sqlx::query("SELECT state, lease_owner FROM tasks WHERE id = ?")
            .bind(&u.task_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Ok(None);
        };
        let state_str: String = current.try_get("state")?;
        let state =
            TaskState::parse(&state_str).ok_or_else(|| StoreError::Corrupt(state_str.clone()))?;
        let owner: Option<String> = current.try_get("lease_owner")?;
        if !rules::admits(&u, state, owner.as_deref()) {
            return Ok(None);
        }
        if let (Some(cap), Some(channel)) = (u.channel_cap, &u.channel) {
            // Under the write lock (BEGIN IMMEDIATE): the count cannot change before the update.
            let others: i64 = sqlx::query(&format!("{} AND id != ?", in_flight_sql()))
                .bind(channel)
                .bind(&u.task_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if others >= cap {
                return Ok(None);
            }
        }
        let row = crate::sql::task_update::<sqlx::Sqlite>(&u, state, now)
            .build()
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let settled = rules::settlement(state, u.to);
        if let Some((kind, reason)) = &settled {
            credits::settle(&mut tx, &u.task_id, *kind, reason).await?;
        }
        let row = if settled.is_some() {
            sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"))
                .bind(&u.task_id)
                .fetch_one(&mut *tx)
                .await?
        } else {
            row
        };
        if let Some(to) = u.to.filter(|to| *to != state) {
            let data = rules::event_data(&u);
            insert_event(&mut tx, &u.task_id, Some(state), to, &data, now).await?;
        }
        let task = task_from_row(&row)?;
        let mut enqueued = false;
        if let Some(to) = u.to.filter(|to| *to != state) {
            enqueued = self.callback(&mut tx, &task, Some(state), to, now).await?;
        }
        tx.commit().await?;
        self.committed(enqueued);
        Ok(Some(task))
    }

    async fn usage_by_model(&self, account_id: &str, since_ms: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT model, COUNT(*) AS n FROM tasks WHERE account_id = ? AND created_at >= ?
             GROUP BY model ORDER BY model",
        )
        .bind(account_id)
        .bind(since_ms)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("model")?, r.try_get("n")?)))
            .collect()
    }

    async fn credit_usage(
        &self,
        account_id: &str,
        start_ms: i64,
        before_ms: i64,
    ) -> Result<Vec<CreditUsage>> {
        let rows = sqlx::query(
            "SELECT strftime('%Y-%m-%d', l.created_at / 1000, 'unixepoch') AS day, t.model AS model,
                    SUM(CASE l.kind WHEN 'hold' THEN l.amount ELSE -l.amount END) AS amount
             FROM ledger_entries l JOIN tasks t ON t.id = l.task_id
             WHERE l.account_id = ? AND l.kind IN ('hold', 'refund')
               AND l.created_at >= ? AND l.created_at < ?
             GROUP BY day, t.model ORDER BY day, t.model",
        )
        .bind(account_id)
        .bind(start_ms)
        .bind(before_ms)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CreditUsage {
                    date: r.try_get("day")?,
                    model: r.try_get("model")?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect()
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        sqlx::query("SELECT * FROM accounts ORDER BY created_at, id")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn credit(
        &self,
        account_id: &str,
        kind: LedgerKind,
        amount: i64,
        reason: &str,
    ) -> Result<Credited> {
        crate::rules::check_credit(kind, amount)?;
        let mut tx = self.begin().await?;
        let outcome = credits::credit(&mut tx, account_id, kind, amount, reason).await?;
        // Only an applied credit is committed; a refusal rolls back with the drop.
        if matches!(outcome, Credited::Done(_)) {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    async fn ledger(&self, account_id: &str, limit: i64) -> Result<Vec<LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM ledger_entries WHERE account_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn verify_ledger(&self) -> Result<Vec<LedgerViolation>> {
        let mut found = Vec::new();
        // Both checks read one snapshot (a read transaction under WAL): a transition
        // committing between them must not look like a violation.
        let mut snap = self.read.begin().await?;
        let rows: Vec<BalanceCheckRow> = sqlx::query_as(
            "SELECT a.id, a.credits_available, a.credits_held,
                    COALESCE(SUM(CASE e.kind WHEN 'topup' THEN e.amount WHEN 'adjust' THEN e.amount
                                             WHEN 'hold' THEN -e.amount WHEN 'refund' THEN e.amount ELSE 0 END), 0) AS available,
                    COALESCE(SUM(CASE e.kind WHEN 'hold' THEN e.amount WHEN 'capture' THEN -e.amount
                                             WHEN 'refund' THEN -e.amount ELSE 0 END), 0) AS held
             FROM accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
             GROUP BY a.id",
        )
        .fetch_all(&mut *snap)
        .await?;
        found.extend(rows.iter().flat_map(rules::balance_violations));
        let rows: Vec<TaskCreditsRow> = sqlx::query_as(
            "SELECT t.id, t.account_id, t.state, t.credits_held, t.credits_captured, t.credits_refunded,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.task_id = t.id AND e.kind = 'hold') AS l_hold,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.task_id = t.id AND e.kind = 'capture') AS l_capture,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.task_id = t.id AND e.kind = 'refund') AS l_refund
             FROM tasks t",
        )
        .fetch_all(&mut *snap)
        .await?;
        found.extend(rows.iter().flat_map(rules::task_violations));
        Ok(found)
    }

    async fn set_account_limits(
        &self,
        account_id: &str,
        price_multiplier: Option<f64>,
        max_active_tasks: Option<Option<i64>>,
    ) -> Result<Option<Account>> {
        let mut tx = self.begin().await?;
        if let Some(m) = price_multiplier {
            sqlx::query("UPDATE accounts SET price_multiplier = ? WHERE id = ?")
                .bind(m)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(cap) = max_active_tasks {
            sqlx::query("UPDATE accounts SET max_active_tasks = ? WHERE id = ?")
                .bind(cap)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
        let account = row.map(|r| account_from_row(&r)).transpose()?;
        tx.commit().await?;
        Ok(account)
    }

    async fn list_api_keys(&self, account_id: &str) -> Result<Vec<ApiKey>> {
        let rows =
            sqlx::query("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id")
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<bool> {
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(key_id)
                .execute(&self.write)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn touch_api_keys(&self, used: &[(String, i64)]) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (id, at) in used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn purge_idempotency(&self, now: i64, limit: i64) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM idempotency_keys WHERE rowid IN
               (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)",
        )
        .bind(now)
        .bind(limit)
        .execute(&self.write)
        .await?
        .rows_affected())
    }

    async fn cancel_or_delete(
        &self,
        account_id: &str,
        id: &str,
        refund_after_upstream: bool,
    ) -> Result<CancelOutcome> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT state, upstream_id FROM tasks WHERE id = ? AND account_id = ? AND deleted = 0",
        )
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(CancelOutcome::NotFound);
        };
        let state_str: String = row.try_get("state")?;
        let state =
            TaskState::parse(&state_str).ok_or_else(|| StoreError::Corrupt(state_str.clone()))?;
        let upstream_id: Option<String> = row.try_get("upstream_id")?;
        let mut enqueued = false;
        let outcome = match rules::cancel_plan(state, upstream_id.is_some(), refund_after_upstream)
        {
            CancelPlan::Delete => {
                // A deleted task's media go with it: the sweeper takes them on its next pass.
                sqlx::query(
                "UPDATE tasks SET deleted = 1, updated_at = ?,
                        expires_at = CASE WHEN expires_at IS NULL THEN NULL ELSE MIN(expires_at, ?) END
                 WHERE id = ?",
            )
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                CancelOutcome::Deleted
            }
            CancelPlan::Cancel {
                owes_upstream,
                keep_lease,
                settle,
            } => {
                // While `cancel_upstream` is set the engine owes the upstream its cancel call.
                sqlx::query(
                "UPDATE tasks SET state = 'cancelled', deleted = 1, finished_at = ?, updated_at = ?,
                        cancel_upstream = ?,
                        next_attempt_at = CASE WHEN ? THEN
                            (CASE WHEN upstream_id IS NOT NULL THEN ? ELSE next_attempt_at END)
                            ELSE NULL END,
                        lease_owner = CASE WHEN ? THEN lease_owner ELSE NULL END,
                        lease_until = CASE WHEN ? THEN lease_until ELSE NULL END
                 WHERE id = ? AND state = ?",
            )
            .bind(now)
            .bind(now)
            .bind(owes_upstream as i64)
            .bind(owes_upstream)
            .bind(now)
            .bind(keep_lease)
            .bind(keep_lease)
            .bind(id)
            .bind(state.as_str())
            .execute(&mut *tx)
            .await?;
                credits::settle(&mut tx, id, settle, "cancelled by client").await?;
                insert_event(
                    &mut tx,
                    id,
                    Some(state),
                    TaskState::Cancelled,
                    &serde_json::json!({"by": "client"}),
                    now,
                )
                .await?;
                let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                let task = task_from_row(&row)?;
                enqueued = self
                    .callback(&mut tx, &task, Some(state), TaskState::Cancelled, now)
                    .await?;
                CancelOutcome::Cancelled
            }
        };
        tx.commit().await?;
        self.committed(enqueued);
        Ok(outcome)
    }

    async fn webhook_secrets(&self, account_id: &str) -> Result<Option<WebhookSecrets>> {
        let row: Option<SealedSecretsRow> = sqlx::query_as(
            "SELECT webhook_secret, webhook_secret_prev, webhook_secret_prev_until, webhook_hmac_key
             FROM accounts WHERE id = ?",
        )
        .bind(account_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let current = match row.webhook_secret.clone() {
            Some(sealed) => sealed,
            // Accounts from before webhooks: give them a secret on first use.
            None => {
                let fresh = crate::generate_webhook_secret();
                let mut tx = self.begin().await?;
                sqlx::query(
                    "UPDATE accounts SET webhook_secret = ? WHERE id = ? AND webhook_secret IS NULL",
                )
                .bind(self.secrets.seal(&fresh))
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
                let sealed: String =
                    sqlx::query("SELECT webhook_secret FROM accounts WHERE id = ?")
                        .bind(account_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                tx.commit().await?;
                sealed
            }
        };
        Ok(Some(row.open(&self.secrets, &current, now_ms())?))
    }

    async fn set_webhook_hmac_key(&self, account_id: &str, key: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE accounts SET webhook_hmac_key = ? WHERE id = ?")
            .bind(key.map(|k| self.secrets.seal(k)))
            .bind(account_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_webhook_secret(
        &self,
        account_id: &str,
        grace_ms: i64,
    ) -> Result<Option<String>> {
        let fresh = crate::generate_webhook_secret();
        let done = sqlx::query(
            "UPDATE accounts SET webhook_secret_prev = webhook_secret,
                    webhook_secret_prev_until = ?, webhook_secret = ? WHERE id = ?",
        )
        .bind(now_ms() + grace_ms.max(0))
        .bind(self.secrets.seal(&fresh))
        .bind(account_id)
        .execute(&self.write)
        .await?;
        Ok((done.rows_affected() == 1).then_some(fresh))
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<WebhookMessage>> {
        let rows = sqlx::query(&format!(
            "UPDATE webhook_messages SET lease_owner = ?, lease_until = ?, next_attempt_at = ?,
                    updated_at = ?
             WHERE id IN (SELECT id FROM webhook_messages
                          WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?
                            AND state = 'pending'
                          ORDER BY next_attempt_at LIMIT ?)
             RETURNING {}",
            rows::MESSAGE_COLUMNS
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(rows::message_from_row).collect()
    }

    async fn next_webhook_due(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) FROM webhook_messages WHERE next_attempt_at IS NOT NULL",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn finish_webhook_attempt(
        &self,
        owner: &str,
        a: WebhookAttempt,
        next: WebhookNext,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let (state, due, delivered_at) = match next {
            WebhookNext::Delivered => ("delivered", None, Some(now)),
            WebhookNext::RetryAt(t) => ("pending", Some(t), None),
            WebhookNext::Failed => ("failed", None, None),
        };
        let row = sqlx::query(
            "UPDATE webhook_messages SET state = ?, next_attempt_at = ?, delivered_at = ?,
                    attempts = attempts + 1, last_error = ?, lease_owner = NULL,
                    lease_until = NULL, updated_at = ?
             WHERE id = ? AND lease_owner = ? AND state = 'pending'
             RETURNING task_id",
        )
        .bind(state)
        .bind(due)
        .bind(delivered_at)
        .bind(&a.error)
        .bind(now)
        .bind(&a.message_id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let task_id: String = row.try_get("task_id")?;
        // Attempt numbers run on across redeliveries (the message's counter restarts).
        let n: i64 = sqlx::query(
            "SELECT COALESCE(MAX(n), 0) + 1 FROM webhook_attempts WHERE message_id = ?",
        )
        .bind(&a.message_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        sqlx::query(
            "INSERT INTO webhook_attempts (message_id, n, started_at, status, latency_ms, error,
                                           response_excerpt)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        if state != "pending" {
            // Settled: the task's next message may go now.
            webhooks::kick(&mut tx, &task_id, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn postpone_webhook(&self, id: &str, owner: &str, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_messages SET next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
                    updated_at = ?
             WHERE id = ? AND lease_owner = ? AND state = 'pending'",
        )
        .bind(at)
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn webhook_messages(&self, task_id: &str) -> Result<Vec<WebhookMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM webhook_messages WHERE task_id = ? ORDER BY seq",
            rows::MESSAGE_COLUMNS
        ))
        .bind(task_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(rows::message_from_row).collect()
    }

    async fn webhook_message(&self, id: &str) -> Result<Option<WebhookMessage>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM webhook_messages WHERE id = ?",
            rows::MESSAGE_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(rows::message_from_row).transpose()
    }

    async fn webhook_attempts(&self, message_id: &str) -> Result<Vec<WebhookAttempt>> {
        let rows = sqlx::query("SELECT * FROM webhook_attempts WHERE message_id = ? ORDER BY n")
            .bind(message_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(rows::attempt_from_row).collect()
    }

    async fn redeliver_webhooks(&self, task_id: &str, message_id: Option<&str>) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        // Queued again as waiting; `kick` then makes the task's earliest pending message due,
        // so order per task still holds.
        let done = match message_id {
            Some(id) => {
                sqlx::query(
                    "UPDATE webhook_messages SET state = 'pending', next_attempt_at = NULL,
                        delivered_at = NULL, attempts = 0, updated_at = ?
                 WHERE id = ? AND task_id = ? AND lease_owner IS NULL
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
                        attempts = 0, updated_at = ?
                 WHERE task_id = ? AND state = 'failed'",
                )
                .bind(now)
                .bind(task_id)
                .execute(&mut *tx)
                .await?
            }
        };
        webhooks::kick(&mut tx, task_id, now).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn record_media(&self, objects: &[MediaObject]) -> Result<()> {
        media::record(&self.write, objects).await
    }

    async fn media_objects(&self, task_id: &str) -> Result<Vec<MediaObject>> {
        media::of_task(&self.read, task_id).await
    }

    async fn media_object(&self, task_id: &str, name: &str) -> Result<Option<ServedMedia>> {
        media::served(&self.read, task_id, name).await
    }

    async fn expired_media(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        media::expired(&self.read, now, limit).await
    }

    async fn media_purged(&self, task_id: &str, names: &[String], now: i64) -> Result<()> {
        media::purged(&self.write, task_id, names, now).await
    }

    async fn expire_media(&self, task_id: &str, at: i64) -> Result<()> {
        media::expire(&self.write, task_id, at).await
    }

    async fn set_account_retention(
        &self,
        account_id: &str,
        seconds: Option<i64>,
    ) -> Result<Option<Account>> {
        if !media::set_retention(&self.write, account_id, seconds).await? {
            return Ok(None);
        }
        self.get_account(account_id).await
    }
}
