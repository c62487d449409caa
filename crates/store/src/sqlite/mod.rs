//! SQLite backend: WAL, a busy timeout, one writer and several readers. Every write runs on
//! the writer thread ([`writer`]), which commits the jobs waiting for it together (group
//! commit); reads go through sqlx's pool of read-only connections. Write transactions start
//! with `BEGIN IMMEDIATE` so a read inside them is already under the write lock.

mod checkpoint;
mod credits;
mod lite;
mod media;
mod reader;
mod webhooks;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reelay_core::TaskState;
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::rows::{
    self, account_from_row, key_from_row, ledger_from_row, BalanceCheckRow, ChannelRow, MessageRow,
    SealedSecretsRow, TaskCreditsRow, TaskRow, TASK_COLUMNS,
};
use crate::rules::{self, CancelPlan};
use crate::UploadRecord;
use crate::{
    now_ms, secrets::SecretBox, AcceptOutcome, Acceptance, Account, Activity, ApiKey, Callbacks,
    CancelOutcome, Canceller, ChannelWrite, CreditUsage, Credited, LedgerEntry, LedgerKind,
    LedgerViolation, MediaObject, NewAccount, NewTask, OpsSnapshot, Result, ServedMedia, Store,
    StoreError, StoredChannel, Task, TaskEvent, TaskPage, TaskSearch, TaskUpdate, WebhookAttempt,
    WebhookMessage, WebhookNext, WebhookSecrets,
};
use lite::{all, exec, one, value};
use reader::Readers;
use writer::{Work, WriteCount, Writer};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for a lock another connection holds (another process, or
/// another store opened on the same file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    /// Point reads, inline ([`reader`]).
    readers: Arc<Readers>,
    /// Scans of unbounded length, on sqlx's threads.
    read: SqlitePool,
    ctx: Arc<Ctx>,
    writes: Arc<WriteCount>,
    /// WAL checkpoints, off the writer thread.
    checkpointer: Arc<checkpoint::Checkpointer>,
}

/// What the writer's jobs need besides the connection.
struct Ctx {
    callbacks: Option<Arc<dyn Callbacks>>,
    secrets: SecretBox,
}

impl Ctx {
    /// Writes the callback of a transition, if its dialect reports it (inside the job's tx).
    fn callback(
        &self,
        conn: &Connection,
        task: &Task,
        from: Option<TaskState>,
        to: TaskState,
        now: i64,
    ) -> Result<bool> {
        match &self.callbacks {
            Some(cb) if task.spec.callback_url.is_some() => {
                webhooks::enqueue(conn, cb.as_ref(), task, from, to, now)
            }
            _ => Ok(false),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `url` (`sqlite://path`) and applies
    /// migrations.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let path = opts.get_filename().to_path_buf();
        if path.as_os_str() == ":memory:" {
            // The writer and the readers are separate connections: they must share a file.
            return Err(StoreError::UnsupportedUrl(format!(
                "{url}: an in-memory SQLite database cannot be shared by the writer and the readers; use sqlite://<file>"
            )));
        }
        {
            let migrate = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await?;
            let done = MIGRATOR.run(&migrate).await;
            migrate.close().await;
            done?;
        }
        let conn = tokio::task::spawn_blocking(move || writer_connection(&path))
            .await
            .map_err(|e| StoreError::Corrupt(format!("opening the writer: {e}")))??;
        let writes = Arc::new(WriteCount::default());
        let writer = Writer::start(conn, writes.clone())
            .map_err(|e| StoreError::Corrupt(format!("starting the writer thread: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.clone().read_only(true))
            .await?;
        let readers = Arc::new(Readers::new(opts.get_filename())?);
        let checkpointer = Arc::new(checkpoint::Checkpointer::start(opts.get_filename())?);
        Ok(SqliteStore {
            writer,
            readers,
            read,
            ctx: Arc::new(Ctx {
                callbacks: None,
                secrets: SecretBox::ephemeral(),
            }),
            writes,
            checkpointer,
        })
    }

    /// The dialects' callback rules, consulted in every transition's transaction.
    pub fn with_callbacks(mut self, callbacks: Arc<dyn Callbacks>) -> SqliteStore {
        self.ctx = Arc::new(Ctx {
            callbacks: Some(callbacks),
            secrets: self.ctx.secrets.clone(),
        });
        self
    }

    /// The key sealing secrets at rest. Without one, a key that lives as long as the process
    /// is used (fine for tests, not for a server: secrets would not open after a restart).
    pub fn with_secret_key(mut self, key: [u8; 32]) -> SqliteStore {
        self.ctx = Arc::new(Ctx {
            callbacks: self.ctx.callbacks.clone(),
            secrets: SecretBox::new(key),
        });
        self
    }

    /// Runs `f` on the writer, in the next group commit; after the commit, wakes the
    /// deliverers if it wrote a webhook message.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Work<'_>, &Ctx) -> Result<T> + Send + 'static,
    {
        let ctx = self.ctx.clone();
        let (value, enqueued) = self.writer.run(move |w| f(w, &ctx)).await?;
        if let (true, Some(cb)) = (enqueued, &self.ctx.callbacks) {
            cb.committed();
        }
        Ok(value)
    }

    /// Write transactions committed since the store was opened, and the jobs (accepts,
    /// transitions, ...) committed in them: with group commit, many jobs per commit under
    /// load. A diagnostic for tests and the load tool.
    pub fn commits(&self) -> (u64, u64) {
        self.writes.commits()
    }

    /// Closes every connection (waits for those in use to be returned).
    pub async fn close(&self) {
        self.read.close().await;
        self.checkpointer.stop();
        self.writer.close().await;
    }
}

/// The writer's connection, configured as sqlx configures the readers.
fn writer_connection(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    // Checkpoints run on their own thread (`checkpoint`); this is the backstop.
    conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Tasks holding an upstream slot on channel `?` (see [`rules::IN_FLIGHT`]).
/// `hurry_task`: only a submitted, unleased task that is not due yet.
const HURRY_SQL_LITE: &str = "UPDATE tasks SET next_attempt_at = ?
    WHERE id = ? AND state IN ('running', 'throttled') AND upstream_id IS NOT NULL
      AND lease_owner IS NULL AND next_attempt_at > ?";

fn in_flight_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM tasks WHERE channel = ? AND {}",
        rules::IN_FLIGHT
    )
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn insert_event(
    conn: &Connection,
    task_id: &str,
    from: Option<TaskState>,
    to: TaskState,
    data: &serde_json::Value,
    now: i64,
) -> Result<()> {
    exec(
        conn,
        "INSERT INTO task_events (id, task_id, from_state, to_state, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        params![
            new_id(),
            task_id,
            from.map(TaskState::as_str),
            to.as_str(),
            data.to_string(),
            now
        ],
    )?;
    Ok(())
}

/// The task as the writer's transaction sees it.
fn task_row(conn: &Connection, id: &str) -> Result<Option<Task>> {
    let row: Option<TaskRow> = one(
        conn,
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"),
        [id],
    )?;
    row.map(Task::try_from).transpose()
}

/// A task's state and lease owner, read under the write lock.
fn state_and_owner(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<(TaskState, Option<String>)>> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached(sql)?
        .query_row(params, |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(s, o)| {
        TaskState::parse(&s)
            .map(|st| (st, o))
            .ok_or(StoreError::Corrupt(s))
    })
    .transpose()
}

#[async_trait]
impl Store for SqliteStore {
    fn committed_writes(&self) -> u64 {
        self.writes.committed()
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
        let new = new.clone();
        // Account, initial credits, limits and first key in one job: a failure at any step
        // rolls the whole job back, leaving no half-made account behind an error answer.
        self.write(move |w, ctx| {
            let id = format!("acct_{}", uuid::Uuid::now_v7().simple());
            let now = now_ms();
            let secret = new
                .webhook_secret
                .clone()
                .unwrap_or_else(crate::generate_webhook_secret);
            exec(
                w.conn,
                "INSERT INTO accounts (id, name, credits_available, webhook_secret, created_at,
                                       price_multiplier, max_active_tasks)
                 VALUES (?, ?, 0, ?, ?, ?, ?)",
                params![
                    id,
                    new.name,
                    ctx.secrets.seal(&secret),
                    now,
                    new.price_multiplier.unwrap_or(1.0),
                    new.max_active_tasks
                ],
            )?;
            if credits > 0 {
                credits::credit(w.conn, &id, LedgerKind::Topup, credits, "initial credits")?;
            }
            let key_id = match &new.key {
                Some(key) => {
                    let key_id = format!("kid_{}", uuid::Uuid::now_v7().simple());
                    exec(
                        w.conn,
                        "INSERT INTO api_keys (id, account_id, key_hash, prefix, created_at)
                         VALUES (?, ?, ?, ?, ?)",
                        params![key_id, id, key.hash, key.prefix, now],
                    )?;
                    Some(key_id)
                }
                None => None,
            };
            // Read before the commit: a failure after it would answer an error for a write
            // that stands.
            let account = credits::account(w.conn, &id)?
                .ok_or_else(|| StoreError::Corrupt(format!("account {id} vanished")))?;
            Ok((account, key_id))
        })
        .await
    }

    async fn get_account(&self, id: &str) -> Result<Option<Account>> {
        self.readers
            .with(|c| one(c, "SELECT * FROM accounts WHERE id = ?", [id]))
    }

    async fn count_accounts(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }

    async fn create_api_key(
        &self,
        account_id: &str,
        key_hash: &str,
        prefix: &str,
    ) -> Result<String> {
        let (account_id, key_hash, prefix) = (
            account_id.to_string(),
            key_hash.to_string(),
            prefix.to_string(),
        );
        self.write(move |w, _| {
            let id = format!("kid_{}", uuid::Uuid::now_v7().simple());
            let n = exec(
                w.conn,
                "INSERT INTO api_keys (id, account_id, key_hash, prefix, created_at)
                 SELECT ?, id, ?, ?, ? FROM accounts WHERE id = ?",
                params![id, key_hash, prefix, now_ms(), account_id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("account {account_id}")));
            }
            Ok(id)
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, Account)>> {
        // Every authenticated request asks this: inline, one statement.
        self.readers.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT k.id AS key_id, k.prefix, k.created_at AS key_created_at, a.*
                 FROM api_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE k.key_hash = ? AND k.revoked_at IS NULL",
            )?;
            let mut rows = stmt.query([key_hash])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            // The account's columns by name; the key's own three are not the account's.
            let account: Account = serde_rusqlite::from_row(row)?;
            let key = ApiKey {
                id: row.get("key_id")?,
                account_id: account.id.clone(),
                prefix: row.get("prefix")?,
                created_at: row.get("key_created_at")?,
                revoked_at: None,
                last_used_at: None,
            };
            Ok(Some((key, account)))
        })
    }

    async fn accept_task(&self, task: NewTask, acceptance: Acceptance) -> Result<AcceptOutcome> {
        let spec =
            serde_json::to_string(&task.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.write(move |w, ctx| {
            let now = now_ms();
            let conn = w.conn;
            if let Some(idem) = &acceptance.idempotency {
                let prior: Option<(String, Option<String>, i64, String)> = conn
                    .prepare_cached(
                        "SELECT request_hash, task_id, response_status, response_body
                         FROM idempotency_keys WHERE account_id = ? AND key = ? AND expires_at > ?",
                    )?
                    .query_row(params![task.account_id, idem.key, now], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()?;
                if let Some((hash, task_id, status, body)) = prior {
                    if hash != idem.request_hash {
                        return Ok(AcceptOutcome::IdempotencyMismatch);
                    }
                    return Ok(AcceptOutcome::Replayed {
                        task_id: task_id.unwrap_or_default(),
                        status: status as u16,
                        body,
                    });
                }
            }
            let (available, own_cap, live): (i64, Option<i64>, i64) = conn
                .prepare_cached(
                    "SELECT credits_available, max_active_tasks, live_tasks FROM accounts WHERE id = ?",
                )?
                .query_row([&task.account_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => {
                        StoreError::NotFound(format!("account {}", task.account_id))
                    }
                    e => e.into(),
                })?;
            // `live_tasks` is kept by triggers (migration 0008) in the writes that change it.
            if let Some(limit) = own_cap.or(acceptance.max_active_tasks) {
                if live >= limit {
                    return Ok(AcceptOutcome::TooManyActive { limit });
                }
            }
            let row: Option<TaskRow> = one(
                conn,
                &format!(
                    "INSERT INTO tasks (id, account_id, key_id, dialect, endpoint, model, spec, state,
                                        next_attempt_at, credits_held, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?8, ?8) RETURNING {TASK_COLUMNS}"
                ),
                params![
                    task.id,
                    task.account_id,
                    task.key_id,
                    task.dialect.as_str(),
                    task.spec.endpoint,
                    task.spec.model,
                    spec,
                    now,
                    task.spec.price
                ],
            )?;
            let row = row.ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))?;
            if !credits::hold(conn, &task.account_id, &task.id, task.spec.price)? {
                // The job's writes roll back: nothing was created.
                w.discard();
                return Ok(AcceptOutcome::InsufficientCredits {
                    available,
                    price: task.spec.price,
                });
            }
            insert_event(conn, &task.id, None, TaskState::Queued, &serde_json::json!({}), now)?;
            if let Some(idem) = &acceptance.idempotency {
                exec(
                    conn,
                    "INSERT INTO idempotency_keys (account_id, key, request_hash, task_id, response_status,
                                                   response_body, created_at, expires_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (account_id, key) DO UPDATE SET request_hash = excluded.request_hash,
                        task_id = excluded.task_id, response_status = excluded.response_status,
                        response_body = excluded.response_body, created_at = excluded.created_at,
                        expires_at = excluded.expires_at",
                    params![
                        task.account_id,
                        idem.key,
                        idem.request_hash,
                        task.id,
                        idem.response_status as i64,
                        idem.response_body,
                        now,
                        now + idem.ttl_ms
                    ],
                )?;
            }
            let created = Task::try_from(row)?;
            let enqueued = ctx.callback(conn, &created, None, TaskState::Queued, now)?;
            w.enqueued(enqueued);
            Ok(AcceptOutcome::Created(Box::new(created)))
        })
        .await
    }

    async fn get_task(&self, account_id: &str, id: &str) -> Result<Option<Task>> {
        let row: Option<TaskRow> = self.readers.with(|c| {
            one(
                c,
                &format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ? AND account_id = ? AND deleted = 0"
                ),
                [id, account_id],
            )
        })?;
        row.map(Task::try_from).transpose()
    }

    async fn get_task_by_id(&self, id: &str) -> Result<Option<Task>> {
        self.readers.with(|c| task_row(c, id))
    }

    async fn list_tasks(&self, page: &TaskPage) -> Result<Vec<Task>> {
        let sql = rows::task_page_sql(page);
        let mut q = sqlx::query_as::<_, TaskRow>(&sql)
            .bind(&page.account_id)
            .bind(page.dialect.as_str());
        if let Some(after) = &page.after {
            q = q.bind(after);
        }
        let rows = q.bind(page.limit).fetch_all(&self.read).await?;
        rows.into_iter().map(Task::try_from).collect()
    }

    async fn search_tasks(&self, search: &TaskSearch) -> Result<Vec<Task>> {
        let mut qb = rows::task_search::<sqlx::Sqlite>(search);
        let rows = qb.build_query_as::<TaskRow>().fetch_all(&self.read).await?;
        rows.into_iter().map(Task::try_from).collect()
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
        let owner = owner.to_string();
        self.write(move |w, _| {
            let rows: Vec<TaskRow> = all(
                w.conn,
                &format!(
                    "UPDATE tasks SET lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2
                     WHERE id IN (SELECT id FROM tasks
                                  WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?3
                                  ORDER BY next_attempt_at LIMIT ?4)
                     RETURNING {TASK_COLUMNS}"
                ),
                params![owner, lease_until, now, limit],
            )?;
            rows.into_iter().map(Task::try_from).collect()
        })
        .await
    }

    async fn next_due_at(&self) -> Result<Option<i64>> {
        // MIN over the partial index `tasks_due`: its first entry.
        self.readers.with(|c| {
            Ok(value::<Option<i64>>(
                c,
                "SELECT MIN(next_attempt_at) FROM tasks WHERE next_attempt_at IS NOT NULL",
                [],
            )?
            .flatten())
        })
    }

    async fn release_leases(&self, owner: &str, now: i64, submitting_at: i64) -> Result<u64> {
        let owner = owner.to_string();
        self.write(move |w, _| {
            Ok(exec(
                w.conn,
                crate::sql::RELEASE_LEASES,
                params![submitting_at, now, owner],
            )? as u64)
        })
        .await
    }

    async fn hurry_task(&self, id: &str, now: i64) -> Result<bool> {
        let id = id.to_string();
        self.write(move |w, _| Ok(exec(w.conn, HURRY_SQL_LITE, params![now, id, now])? > 0))
            .await
    }

    async fn in_flight_by_channel(&self) -> Result<std::collections::HashMap<String, i64>> {
        Ok(
            sqlx::query_as::<_, (String, i64)>(&crate::sql::in_flight_by_channel())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .collect(),
        )
    }

    async fn count_in_flight(&self, channel: &str) -> Result<i64> {
        self.readers
            .with(|c| Ok(value(c, &in_flight_sql(), [channel])?.unwrap_or(0)))
    }

    async fn update_task(&self, u: TaskUpdate) -> Result<Option<Task>> {
        self.write(move |w, ctx| {
            let now = now_ms();
            let conn = w.conn;
            let Some((state, owner)) = state_and_owner(
                conn,
                "SELECT state, lease_owner FROM tasks WHERE id = ?",
                [&u.task_id],
            )?
            else {
                return Ok(None);
            };
            if !rules::admits(&u, state, owner.as_deref()) {
                return Ok(None);
            }
            if let (Some(cap), Some(channel)) = (u.channel_cap, &u.channel) {
                // Under the write lock: the count cannot change before the update.
                let others: i64 = value(
                    conn,
                    &format!("{} AND id != ?", in_flight_sql()),
                    params![channel, u.task_id],
                )?
                .unwrap_or(0);
                if others >= cap {
                    return Ok(None);
                }
            }
            for (channel, cap) in &u.unless_room {
                // Under the write lock: a slot freed before this sees the task not yet
                // waiting, so the wait must not start.
                let others: i64 = value(
                    conn,
                    &format!("{} AND id != ?", in_flight_sql()),
                    params![channel, u.task_id],
                )?
                .unwrap_or(0);
                if others < *cap {
                    return Ok(None);
                }
            }
            if let (Some(rate), Some(channel)) = (u.submit_rate, &u.channel) {
                // Counted only if the window has room; the move is refused otherwise.
                let counted = exec(
                    conn,
                    "INSERT INTO channel_submits (channel, slot, count) VALUES (?, ?, 1)
                     ON CONFLICT (channel, slot) DO UPDATE SET count = count + 1
                     WHERE count < ?",
                    params![channel, rate.slot(now), rate.limit],
                )?;
                if counted == 0 {
                    return Ok(None);
                }
            }
            let mut q = crate::sql::LiteQuery::default();
            crate::sql::task_update(&mut q, &u, state, now);
            let row: Option<TaskRow> =
                one(conn, &q.sql, rusqlite::params_from_iter(q.args.iter()))?;
            let Some(row) = row else { return Ok(None) };
            if rules::frees_slot(state, &u) {
                let mut q = crate::sql::LiteQuery::default();
                crate::sql::wake_waiting(&mut q, now, false);
                exec(conn, &q.sql, rusqlite::params_from_iter(q.args.iter()))?;
            }
            let settled = rules::settlement(state, u.to);
            let task = match &settled {
                Some((kind, reason)) => {
                    credits::settle(conn, &u.task_id, *kind, reason)?;
                    task_row(conn, &u.task_id)?.ok_or_else(|| {
                        StoreError::Corrupt(format!("task {} vanished", u.task_id))
                    })?
                }
                None => Task::try_from(row)?,
            };
            if let Some(to) = u.to.filter(|to| *to != state) {
                let data = rules::event_data(&u);
                insert_event(conn, &u.task_id, Some(state), to, &data, now)?;
                let enqueued = ctx.callback(conn, &task, Some(state), to, now)?;
                w.enqueued(enqueued);
            }
            Ok(Some(task))
        })
        .await
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
        let (account_id, reason) = (account_id.to_string(), reason.to_string());
        self.write(move |w, _| {
            let outcome = credits::credit(w.conn, &account_id, kind, amount, &reason)?;
            // Only an applied credit is committed; a refusal leaves nothing behind.
            if !matches!(outcome, Credited::Done(_)) {
                w.discard();
            }
            Ok(outcome)
        })
        .await
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

    async fn task_ledger(&self, task_id: &str) -> Result<Vec<LedgerEntry>> {
        let rows = sqlx::query("SELECT * FROM ledger_entries WHERE task_id = ? ORDER BY seq")
            .bind(task_id)
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
        let account_id = account_id.to_string();
        self.write(move |w, _| {
            if let Some(m) = price_multiplier {
                exec(
                    w.conn,
                    "UPDATE accounts SET price_multiplier = ? WHERE id = ?",
                    params![m, account_id],
                )?;
            }
            if let Some(cap) = max_active_tasks {
                exec(
                    w.conn,
                    "UPDATE accounts SET max_active_tasks = ? WHERE id = ?",
                    params![cap, account_id],
                )?;
            }
            credits::account(w.conn, &account_id)
        })
        .await
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
        let key_id = key_id.to_string();
        self.write(move |w, _| {
            let n = exec(
                w.conn,
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                params![now_ms(), key_id],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn touch_api_keys(&self, used: &[(String, i64)]) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        let used = used.to_vec();
        self.write(move |w, _| {
            for (id, at) in &used {
                exec(
                    w.conn,
                    "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
                    params![at, id],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn purge_idempotency(&self, now: i64, limit: i64) -> Result<u64> {
        self.write(move |w, _| {
            let n = exec(
                w.conn,
                "DELETE FROM idempotency_keys WHERE rowid IN
                   (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)",
                params![now, limit],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn cancel_task(&self, id: &str, by: Canceller<'_>) -> Result<CancelOutcome> {
        let (account_id, id) = (by.account().map(str::to_string), id.to_string());
        let (refund_after_upstream, operator, who) =
            (by.refunds_after_upstream(), by.is_operator(), by.who());
        self.write(move |w, ctx| {
            let now = now_ms();
            let conn = w.conn;
            let Some((state, upstream_id)) = state_and_owner(
                conn,
                "SELECT state, upstream_id FROM tasks
                 WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2) AND deleted = 0",
                params![id, account_id],
            )?
            else {
                return Ok(CancelOutcome::NotFound);
            };
            if operator && state.is_terminal() {
                return Ok(CancelOutcome::NotFound);
            }
            Ok(
                match rules::cancel_plan(state, upstream_id.is_some(), refund_after_upstream) {
                    CancelPlan::Delete => {
                        // A deleted task's media go with it: the sweeper takes them on its next pass.
                        exec(
                            conn,
                            "UPDATE tasks SET deleted = 1, updated_at = ?1,
                                    expires_at = CASE WHEN expires_at IS NULL THEN NULL ELSE MIN(expires_at, ?1) END
                             WHERE id = ?2",
                            params![now, id],
                        )?;
                        CancelOutcome::Deleted
                    }
                    CancelPlan::Cancel {
                        owes_upstream,
                        keep_lease,
                        settle,
                    } => {
                        // While `cancel_upstream` is set the engine owes the upstream its cancel call.
                        exec(
                            conn,
                            "UPDATE tasks SET state = 'cancelled', finished_at = ?1, updated_at = ?1,
                                    deleted = CASE WHEN ?6 THEN deleted ELSE 1 END,
                                    cancel_upstream = ?2,
                                    next_attempt_at = CASE WHEN ?2 THEN
                                        (CASE WHEN upstream_id IS NOT NULL THEN ?1 ELSE next_attempt_at END)
                                        ELSE NULL END,
                                    lease_owner = CASE WHEN ?3 THEN lease_owner ELSE NULL END,
                                    lease_until = CASE WHEN ?3 THEN lease_until ELSE NULL END
                             WHERE id = ?4 AND state = ?5",
                            params![now, owes_upstream as i64, keep_lease as i64, id, state.as_str(), operator],
                        )?;
                        credits::settle(conn, &id, settle, &format!("cancelled by {who}"))?;
                        // A slot given back: as in update_task, the longest waiter may go.
                        let mut q = crate::sql::LiteQuery::default();
                        crate::sql::wake_waiting(&mut q, now, false);
                        exec(conn, &q.sql, rusqlite::params_from_iter(q.args.iter()))?;
                        insert_event(
                            conn,
                            &id,
                            Some(state),
                            TaskState::Cancelled,
                            &serde_json::json!({"by": who}),
                            now,
                        )?;
                        let task = task_row(conn, &id)?
                            .ok_or_else(|| StoreError::Corrupt(format!("task {id} vanished")))?;
                        let enqueued =
                            ctx.callback(conn, &task, Some(state), TaskState::Cancelled, now)?;
                        w.enqueued(enqueued);
                        CancelOutcome::Cancelled
                    }
                },
            )
        })
        .await
    }

    async fn webhook_secrets(&self, account_id: &str) -> Result<Option<WebhookSecrets>> {
        let row: Option<SealedSecretsRow> = self.readers.with(|c| {
            one(
                c,
                "SELECT webhook_secret, webhook_secret_prev, webhook_secret_prev_until, webhook_hmac_key
                 FROM accounts WHERE id = ?",
                [account_id],
            )
        })?;
        let Some(row) = row else { return Ok(None) };
        let current = match row.webhook_secret.clone() {
            Some(sealed) => sealed,
            // Accounts from before webhooks: give them a secret on first use.
            None => {
                let account_id = account_id.to_string();
                self.write(move |w, ctx| {
                    exec(
                        w.conn,
                        "UPDATE accounts SET webhook_secret = ? WHERE id = ? AND webhook_secret IS NULL",
                        params![ctx.secrets.seal(&crate::generate_webhook_secret()), account_id],
                    )?;
                    value::<String>(
                        w.conn,
                        "SELECT webhook_secret FROM accounts WHERE id = ?",
                        [&account_id],
                    )?
                    .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))
                })
                .await?
            }
        };
        Ok(Some(row.open(&self.ctx.secrets, &current, now_ms())?))
    }

    async fn set_webhook_hmac_key(&self, account_id: &str, key: Option<&str>) -> Result<bool> {
        let sealed = key.map(|k| self.ctx.secrets.seal(k));
        let account_id = account_id.to_string();
        self.write(move |w, _| {
            let n = exec(
                w.conn,
                "UPDATE accounts SET webhook_hmac_key = ? WHERE id = ?",
                params![sealed, account_id],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn ops_snapshot(&self, now: i64) -> Result<OpsSnapshot> {
        use crate::sql::{OPS_BACKLOG, OPS_HELD, OPS_QUEUE, OPS_SETTLED, OPS_TASKS_BY_STATE};
        let tasks_by_state = sqlx::query_as::<_, (String, i64)>(OPS_TASKS_BY_STATE)
            .fetch_all(&self.read)
            .await?;
        let (queue_depth, oldest_due_at) = sqlx::query_as::<_, (i64, Option<i64>)>(OPS_QUEUE)
            .bind(now)
            .fetch_one(&self.read)
            .await?;
        let credits_held: i64 = sqlx::query_scalar(OPS_HELD).fetch_one(&self.read).await?;
        let (credits_captured, credits_refunded) = sqlx::query_as::<_, (i64, i64)>(OPS_SETTLED)
            .fetch_one(&self.read)
            .await?;
        let (webhook_backlog, oldest_undelivered_at) =
            sqlx::query_as::<_, (i64, Option<i64>)>(OPS_BACKLOG)
                .fetch_one(&self.read)
                .await?;
        Ok(OpsSnapshot {
            tasks_by_state,
            queue_depth,
            oldest_due_at,
            credits_held,
            credits_captured,
            credits_refunded,
            webhook_backlog,
            oldest_undelivered_at,
        })
    }

    async fn activity(&self, since: i64, bucket_ms: i64, buckets: usize) -> Result<Activity> {
        let rows = sqlx::query_as::<_, (i64, String, i64)>(crate::sql::ACTIVITY_ENDED)
            .bind(since)
            .bind(bucket_ms.max(1))
            .fetch_all(&self.read)
            .await?;
        let settled = sqlx::query_as::<_, (i64, i64)>(crate::sql::ACTIVITY_SETTLED)
            .bind(since)
            .fetch_one(&self.read)
            .await?;
        Ok(crate::sql::activity(rows, buckets, settled))
    }

    async fn list_channels(&self) -> Result<Vec<StoredChannel>> {
        let rows = sqlx::query_as::<_, ChannelRow>("SELECT * FROM channels ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        rows.into_iter()
            .map(|r| r.open(&self.ctx.secrets))
            .collect()
    }

    async fn channels_fingerprint(&self) -> Result<(i64, i64)> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(revision), 0) FROM channels")
            .fetch_one(&self.read)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn put_channel(&self, write: &ChannelWrite) -> Result<()> {
        let (w, secrets) = (write.clone(), self.ctx.secrets.clone());
        self.write(move |work, _| {
            let before: Option<ChannelRow> = one(
                work.conn,
                "SELECT * FROM channels WHERE name = ?",
                [&w.name],
            )?;
            let r = ChannelRow::after(before.as_ref(), &w, &secrets, now_ms());
            exec(
                work.conn,
                "INSERT OR REPLACE INTO channels (name, config, sealed_key, enabled,
                     disabled_reason, source, removed_at, revision, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    r.name,
                    r.config,
                    r.sealed_key,
                    r.enabled,
                    r.disabled_reason,
                    r.source,
                    r.removed_at,
                    r.revision,
                    r.updated_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_channel_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<bool> {
        let (name, reason) = (name.to_string(), reason.map(str::to_string));
        self.write(move |w, _| {
            Ok(exec(
                w.conn,
                "UPDATE channels SET enabled = ?, disabled_reason = ?, revision = revision + 1,
                     updated_at = ?
                 WHERE name = ? AND removed_at IS NULL",
                params![enabled, reason.filter(|_| !enabled), now_ms(), name],
            )? > 0)
        })
        .await
    }

    async fn remove_channel(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.write(move |w, _| {
            let now = now_ms();
            Ok(exec(
                w.conn,
                "UPDATE channels SET removed_at = ?, enabled = 0, revision = revision + 1,
                     updated_at = ?
                 WHERE name = ? AND removed_at IS NULL",
                params![now, now, name],
            )? > 0)
        })
        .await
    }

    async fn purge_channel_submits(&self, before: i64) -> Result<u64> {
        self.write(move |w, _| {
            Ok(exec(
                w.conn,
                "DELETE FROM channel_submits WHERE slot < ?",
                [before],
            )? as u64)
        })
        .await
    }

    async fn record_upload(&self, upload: &UploadRecord) -> Result<()> {
        let u = upload.clone();
        self.write(move |w, _| {
            exec(
                w.conn,
                "INSERT INTO uploads (id, account_id, filename, content_type, size, sha256,
                                      created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    u.id,
                    u.account_id,
                    u.filename,
                    u.content_type,
                    u.size,
                    u.sha256,
                    u.created_at,
                    u.expires_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_upload(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<UploadRecord>> {
        self.readers.with(|c| {
            one(
                c,
                "SELECT * FROM uploads WHERE id = ? AND account_id = ? AND expires_at > ?",
                params![id, account_id, now],
            )
        })
    }

    async fn expired_uploads(&self, now: i64, limit: i64) -> Result<Vec<UploadRecord>> {
        Ok(sqlx::query_as::<_, UploadRecord>(
            "SELECT * FROM uploads WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn forget_uploads(&self, ids: &[String]) -> Result<()> {
        let ids = ids.to_vec();
        self.write(move |w, _| {
            for id in &ids {
                exec(w.conn, "DELETE FROM uploads WHERE id = ?", [id])?;
            }
            Ok(())
        })
        .await
    }

    async fn set_webhook_url(&self, account_id: &str, url: Option<&str>) -> Result<bool> {
        let (url, account_id) = (url.map(str::to_string), account_id.to_string());
        self.write(move |w, _| {
            let n = exec(
                w.conn,
                "UPDATE accounts SET webhook_url = ? WHERE id = ?",
                params![url, account_id],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        account_id: &str,
        grace_ms: i64,
    ) -> Result<Option<String>> {
        let fresh = crate::generate_webhook_secret();
        let sealed = self.ctx.secrets.seal(&fresh);
        let account_id = account_id.to_string();
        let done = self
            .write(move |w, _| {
                exec(
                    w.conn,
                    "UPDATE accounts SET webhook_secret_prev = webhook_secret,
                            webhook_secret_prev_until = ?, webhook_secret = ? WHERE id = ?",
                    params![now_ms() + grace_ms.max(0), sealed, account_id],
                )
            })
            .await?;
        Ok((done == 1).then_some(fresh))
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<WebhookMessage>> {
        let owner = owner.to_string();
        self.write(move |w, _| {
            let rows: Vec<MessageRow> = all(
                w.conn,
                &format!(
                    "UPDATE webhook_messages SET lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2,
                            updated_at = ?3
                     WHERE id IN (SELECT id FROM webhook_messages
                                  WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?3
                                    AND state = 'pending'
                                  ORDER BY next_attempt_at LIMIT ?4)
                     RETURNING {}",
                    rows::MESSAGE_COLUMNS
                ),
                params![owner, lease_until, now, limit],
            )?;
            rows.into_iter().map(WebhookMessage::try_from).collect()
        })
        .await
    }

    async fn next_webhook_due(&self) -> Result<Option<i64>> {
        self.readers.with(|c| {
            Ok(value::<Option<i64>>(
                c,
                "SELECT MIN(next_attempt_at) FROM webhook_messages WHERE next_attempt_at IS NOT NULL",
                [],
            )?
            .flatten())
        })
    }

    async fn finish_webhook_attempt(
        &self,
        owner: &str,
        a: WebhookAttempt,
        next: WebhookNext,
    ) -> Result<bool> {
        let owner = owner.to_string();
        self.write(move |w, _| {
            let now = now_ms();
            let conn = w.conn;
            let (state, due, delivered_at) = match next {
                WebhookNext::Delivered => ("delivered", None, Some(now)),
                WebhookNext::RetryAt(t) => ("pending", Some(t), None),
                WebhookNext::Failed => ("failed", None, None),
            };
            let task_id: Option<String> = value(
                conn,
                "UPDATE webhook_messages SET state = ?, next_attempt_at = ?, delivered_at = ?,
                        attempts = attempts + 1, last_error = ?, lease_owner = NULL,
                        lease_until = NULL, updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state = 'pending'
                 RETURNING task_id",
                params![state, due, delivered_at, a.error, now, a.message_id, owner],
            )?;
            let Some(task_id) = task_id else {
                return Ok(false);
            };
            // Attempt numbers run on across redeliveries (the message's counter restarts).
            exec(
                conn,
                "INSERT INTO webhook_attempts (message_id, n, started_at, status, latency_ms, error,
                                               response_excerpt)
                 VALUES (?1, (SELECT COALESCE(MAX(n), 0) + 1 FROM webhook_attempts WHERE message_id = ?1),
                         ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.message_id,
                    a.started_at,
                    a.status.map(i64::from),
                    a.latency_ms,
                    a.error,
                    a.response_excerpt
                ],
            )?;
            if state != "pending" {
                // Settled: the task's next message may go now.
                webhooks::kick(conn, &task_id, now)?;
            }
            Ok(true)
        })
        .await
    }

    async fn postpone_webhook(&self, id: &str, owner: &str, at: i64) -> Result<bool> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.write(move |w, _| {
            let n = exec(
                w.conn,
                "UPDATE webhook_messages SET next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
                        updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state = 'pending'",
                params![at, now_ms(), id, owner],
            )?;
            Ok(n == 1)
        })
        .await
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
        let (task_id, message_id) = (task_id.to_string(), message_id.map(str::to_string));
        self.write(move |w, _| {
            let now = now_ms();
            // Queued again as waiting; `kick` then makes the task's earliest pending message
            // due, so order per task still holds.
            let n = match &message_id {
                Some(id) => exec(
                    w.conn,
                    "UPDATE webhook_messages SET state = 'pending', next_attempt_at = NULL,
                            delivered_at = NULL, attempts = 0, updated_at = ?
                     WHERE id = ? AND task_id = ? AND lease_owner IS NULL
                       AND state IN ('failed', 'delivered')",
                    params![now, id, task_id],
                )?,
                None => exec(
                    w.conn,
                    "UPDATE webhook_messages SET state = 'pending', next_attempt_at = NULL,
                            attempts = 0, updated_at = ?
                     WHERE task_id = ? AND state = 'failed'",
                    params![now, task_id],
                )?,
            };
            webhooks::kick(w.conn, &task_id, now)?;
            Ok(n as u64)
        })
        .await
    }

    async fn record_media(&self, objects: &[MediaObject]) -> Result<()> {
        let objects = objects.to_vec();
        self.write(move |w, _| media::record(w.conn, &objects))
            .await
    }

    async fn media_objects(&self, task_id: &str) -> Result<Vec<MediaObject>> {
        self.readers.with(|c| media::of_task(c, task_id))
    }

    async fn media_object(&self, task_id: &str, name: &str) -> Result<Option<ServedMedia>> {
        media::served(&self.read, task_id, name).await
    }

    async fn expired_media(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        media::expired(&self.read, now, limit).await
    }

    async fn media_purged(&self, task_id: &str, names: &[String], now: i64) -> Result<()> {
        let (task_id, names) = (task_id.to_string(), names.to_vec());
        self.write(move |w, _| media::purged(w.conn, &task_id, &names, now))
            .await
    }

    async fn expire_media(&self, task_id: &str, at: i64) -> Result<()> {
        let task_id = task_id.to_string();
        self.write(move |w, _| media::expire(w.conn, &task_id, at))
            .await
    }

    async fn set_account_retention(
        &self,
        account_id: &str,
        seconds: Option<i64>,
    ) -> Result<Option<Account>> {
        let account_id = account_id.to_string();
        self.write(move |w, _| {
            if !media::set_retention(w.conn, &account_id, seconds)? {
                return Ok(None);
            }
            credits::account(w.conn, &account_id)
        })
        .await
    }
}
