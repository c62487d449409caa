//! PostgreSQL backend: a connection pool shared by many instances of reelay, each a writer.
//!
//! SQLite has one writer, so a count followed by an insert in one transaction cannot race.
//! Here every such check takes a lock first, always in the same order (task row, then the
//! channel's advisory lock, then the account row), so concurrent writers neither break a cap
//! nor deadlock:
//!
//! - `accept_task` locks the account row before it reads idempotency records and counts live
//!   tasks: accepts of one account are serialised (the live-task cap and an idempotency key
//!   used twice at once both hold);
//! - `update_task` and `cancel_or_delete` lock the task row before they read its state, and a
//!   move that takes a channel slot (`channel_cap`) serialises with every other taker of that
//!   channel on a transaction-scoped advisory lock before it counts the slots in use; a task
//!   about to wait for capacity (`unless_room`) takes the same lock, and a task giving a slot
//!   back takes it shared before it wakes a waiter, so no freed slot goes unseen;
//! - the outbox numbers a task's messages `MAX(seq) + 1` under the task's row lock (every
//!   writer of a task's messages takes it first; `UNIQUE (task_id, seq)` is the backstop);
//! - claims take due rows with `FOR NO KEY UPDATE SKIP LOCKED`, so two instances never claim
//!   the same row and never wait for each other.
//!
//! Rows are locked `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it is the lock an `UPDATE`
//! of non-key columns takes anyway, it serialises the writers above just the same, and unlike
//! `FOR UPDATE` it does not block inserts elsewhere whose foreign keys point at the row (an
//! event, a media object, a ledger entry).
//!
//! Work made due in a transaction is announced with `pg_notify` (delivered at commit, and
//! only then) on [`TASKS_CHANNEL`] or [`WEBHOOKS_CHANNEL`]; every instance listens and hands
//! the news to its workers through [`Store::wakeups`].

mod credits;
mod media;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reelay_core::TaskState;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::broadcast;

use crate::rows::{
    self, account_from_row, key_from_row, ledger_from_row, task_from_row, BalanceCheckRow,
    ChannelRow, SealedSecretsRow, TaskCreditsRow, TASK_COLUMNS,
};
use crate::rules::{self, CancelPlan};
use crate::{
    now_ms, secrets::SecretBox, AcceptOutcome, Acceptance, Account, Activity, ApiKey, Callbacks,
    CancelOutcome, Canceller, ChannelWrite, CreditUsage, Credited, LedgerEntry, LedgerKind,
    LedgerViolation, MediaObject, NewAccount, NewTask, OpsSnapshot, Result, ServedMedia, Store,
    StoreError, StoredChannel, Task, TaskEvent, TaskPage, TaskSearch, TaskUpdate, UploadRecord,
    Wake, WebhookAttempt, WebhookMessage, WebhookNext, WebhookSecrets,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The NOTIFY channel of "tasks are due" (a task accepted, an upstream cancel owed).
pub const TASKS_CHANNEL: &str = "reelay_tasks";
/// The NOTIFY channel of "webhook messages are due" (enqueued, next in line, redelivered).
pub const WEBHOOKS_CHANNEL: &str = "reelay_webhooks";

/// Connections of one instance's pool, unless the caller says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// How long getting a connection may take (including connecting): an unreachable database
/// fails a request with an error after this long instead of hanging it.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one statement may run, waiting for locks included: a lock held by a stuck
/// session fails the statement (and the request) instead of holding a connection forever.
const STATEMENT_TIMEOUT: &str = "30s";
/// Wake-ups a slow subscriber may miss before it is told it lagged (and then looks for both
/// kinds of work).
const WAKE_BUFFER: usize = 64;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    callbacks: Option<Arc<dyn Callbacks>>,
    secrets: SecretBox,
    wake: broadcast::Sender<Wake>,
    listener: Arc<Listener>,
}

/// The LISTEN connection and the task relaying its notifications. It has its own pool of one
/// connection (a listening connection cannot serve queries), closed with the store.
struct Listener {
    pool: PgPool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    async fn start(opts: PgConnectOptions, wake: broadcast::Sender<Wake>) -> Result<Listener> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // The one connection lives as long as it works; reconnecting is the listener's.
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(opts)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener
            .listen_all([TASKS_CHANNEL, WEBHOOKS_CHANNEL])
            .await?;
        let task = tokio::spawn(relay(listener, wake));
        Ok(Listener { pool, task })
    }
}

fn wake_of(channel: &str) -> Option<Wake> {
    match channel {
        TASKS_CHANNEL => Some(Wake::Tasks),
        WEBHOOKS_CHANNEL => Some(Wake::Webhooks),
        _ => None,
    }
}

fn wake_all(wake: &broadcast::Sender<Wake>) {
    // No subscriber is no error: nobody is waiting.
    let _ = wake.send(Wake::Tasks);
    let _ = wake.send(Wake::Webhooks);
}

/// Relays notifications until the store closes. `PgListener` reconnects (and listens again)
/// by itself; notifications sent while it was away are lost, so after every reconnection
/// both kinds of work are announced once, and the workers look for themselves.
async fn relay(mut listener: PgListener, wake: broadcast::Sender<Wake>) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(250);
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = FIRST_BACKOFF;
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => {
                backoff = FIRST_BACKOFF;
                if let Some(w) = wake_of(n.channel()) {
                    let _ = wake.send(w);
                }
            }
            // The connection was lost and is back (reconnected eagerly).
            Ok(None) => wake_all(&wake),
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "postgres notifications: connection lost, reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Any statement reconnects the listener (and listens again) if it must.
                match sqlx::query("SELECT 1").execute(&mut listener).await {
                    Ok(_) => wake_all(&wake),
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(_) => {}
                }
            }
        }
    }
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://...`) with a pool of
    /// [`DEFAULT_MAX_CONNECTIONS`], applies migrations and starts listening for other
    /// instances' wake-ups. An unreachable database fails within seconds, not never.
    pub async fn open(url: &str) -> Result<PgStore> {
        PgStore::open_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// [`PgStore::open`] with a pool of `max_connections`.
    pub async fn open_with(url: &str, max_connections: u32) -> Result<PgStore> {
        let opts = PgConnectOptions::from_str(url)?;
        PgStore::migrate_with(opts.clone()).await?;
        let pool = pool_options(max_connections)
            .connect_with(
                opts.clone()
                    .options([("statement_timeout", STATEMENT_TIMEOUT)]),
            )
            .await?;
        let (wake, _) = broadcast::channel(WAKE_BUFFER);
        let listener = match Listener::start(opts, wake.clone()).await {
            Ok(l) => l,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        Ok(PgStore {
            pool,
            callbacks: None,
            secrets: SecretBox::ephemeral(),
            wake,
            listener: Arc::new(listener),
        })
    }

    /// Applies the migrations and returns (`reelay migrate`). Several instances may run this
    /// at once: sqlx's PostgreSQL migrator holds a session advisory lock (keyed by the
    /// database name) around the whole run (`pg_advisory_lock` in sqlx-postgres 0.8's
    /// `Migrate::lock`), so one applies them and the others then find them applied.
    pub async fn migrate(url: &str) -> Result<()> {
        PgStore::migrate_with(PgConnectOptions::from_str(url)?).await
    }

    /// On a connection of its own, without the statement timeout: a migration (or the wait
    /// for another instance's) may take longer than a request's statement.
    async fn migrate_with(opts: PgConnectOptions) -> Result<()> {
        let pool = pool_options(1).connect_with(opts).await?;
        let done = MIGRATOR.run(&pool).await;
        pool.close().await;
        Ok(done?)
    }

    /// The dialects' callback rules, consulted in every transition's transaction.
    pub fn with_callbacks(mut self, callbacks: Arc<dyn Callbacks>) -> PgStore {
        self.callbacks = Some(callbacks);
        self
    }

    /// The key sealing secrets at rest. Without one, a key that lives as long as the process
    /// is used (fine for tests, not for a server: secrets would not open after a restart, and
    /// instances sharing the database must share the key).
    pub fn with_secret_key(mut self, key: [u8; 32]) -> PgStore {
        self.secrets = SecretBox::new(key);
        self
    }

    /// Closes every connection (waits for those in use to be returned) and stops listening.
    pub async fn close(&self) {
        self.listener.pool.close().await;
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Writes the callback of a transition, if its dialect reports it (inside `conn`'s tx,
    /// which holds the task's row lock).
    async fn callback(
        &self,
        conn: &mut PgConnection,
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

    /// After the commit that wrote a message: wake this instance's deliverers (the others
    /// hear the NOTIFY).
    fn committed(&self, enqueued: bool) {
        if let (true, Some(cb)) = (enqueued, &self.callbacks) {
            cb.committed();
        }
    }
}

/// Serialises, until the commit, every transaction that takes or frees a slot of `channel`
/// (or waits for one).
async fn lock_channel(conn: &mut PgConnection, channel: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('reelay.channel:' || $1, 0))")
        .bind(channel)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`lock_channel`]'s shared form: many holders at once, none while it is held exclusively.
async fn lock_channel_shared(conn: &mut PgConnection, channel: &str) -> Result<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock_shared(hashtextextended('reelay.channel:' || $1, 0))",
    )
    .bind(channel)
    .execute(conn)
    .await?;
    Ok(())
}

/// Announces work to every instance when (and only if) `conn`'s transaction commits.
async fn notify(conn: &mut PgConnection, channel: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks a task's row for the rest of the transaction; false if there is no such task.
async fn lock_task(conn: &mut PgConnection, task_id: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM tasks WHERE id = $1 FOR NO KEY UPDATE")
            .bind(task_id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// Tasks holding an upstream slot on channel `$1` (see [`rules::IN_FLIGHT`]).
fn in_flight_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM tasks WHERE channel = $1 AND {}",
        rules::IN_FLIGHT
    )
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn parse_state(s: String) -> Result<TaskState> {
    TaskState::parse(&s).ok_or(StoreError::Corrupt(s))
}

async fn insert_event(
    conn: &mut PgConnection,
    task_id: &str,
    from: Option<TaskState>,
    to: TaskState,
    data: &serde_json::Value,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO task_events (id, task_id, from_state, to_state, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(task_id)
    .bind(from.map(TaskState::as_str))
    .bind(to.as_str())
    .bind(data.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn task_by_id(conn: &mut PgConnection, id: &str) -> Result<Task> {
    let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
        .bind(id)
        .fetch_one(conn)
        .await?;
    task_from_row(&row)
}

#[async_trait]
impl Store for PgStore {
    /// Not counted on PostgreSQL: always 0. (SQLite counts with its commit hooks; PostgreSQL
    /// has no per-connection equivalent short of a query before every commit, which a
    /// diagnostic is not worth. The tests that use it run on SQLite.)
    fn committed_writes(&self) -> u64 {
        0
    }

    fn wakeups(&self) -> Option<broadcast::Receiver<Wake>> {
        Some(self.wake.subscribe())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
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
             VALUES ($1, $2, 0, $3, $4, $5, $6)",
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
                     VALUES ($1, $2, $3, $4, $5)",
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
        let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
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
        let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    async fn count_accounts(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
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
             SELECT $1, id, $2, $3, $4 FROM accounts WHERE id = $5",
        )
        .bind(&id)
        .bind(key_hash)
        .bind(prefix)
        .bind(now_ms())
        .bind(account_id)
        .execute(&self.pool)
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
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
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
        // The account row first: accepts of one account run one after the other from here,
        // so the live-task count below cannot change before this insert commits, and a key
        // used by two requests at once is recorded by the first and replayed to the second.
        let account = sqlx::query(
            "SELECT credits_available, max_active_tasks, live_tasks FROM accounts WHERE id = $1
             FOR NO KEY UPDATE",
        )
        .bind(&task.account_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("account {}", task.account_id)))?;
        if let Some(idem) = &acceptance.idempotency {
            let prior = sqlx::query(
                "SELECT request_hash, task_id, response_status, response_body FROM idempotency_keys
                 WHERE account_id = $1 AND key = $2 AND expires_at > $3",
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
        let own_cap: Option<i64> = account.try_get("max_active_tasks")?;
        if let Some(limit) = own_cap.or(acceptance.max_active_tasks) {
            // Kept by triggers (migration 0002) in the writes that change it, and read under
            // the account's lock: no other accept of this account is between here and commit.
            let live: i64 = account.try_get("live_tasks")?;
            if live >= limit {
                return Ok(AcceptOutcome::TooManyActive { limit });
            }
        }
        let row = sqlx::query(&format!(
            "INSERT INTO tasks (id, account_id, key_id, dialect, endpoint, model, spec, state,
                                next_attempt_at, credits_held, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $10)
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(&task.id)
        .bind(&task.account_id)
        .bind(&task.key_id)
        .bind(task.dialect.as_str())
        .bind(&task.spec.endpoint)
        .bind(&task.spec.model)
        .bind(spec)
        .bind(now)
        .bind(task.spec.price)
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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
        notify(&mut tx, TASKS_CHANNEL).await?;
        tx.commit().await?;
        self.committed(enqueued);
        Ok(AcceptOutcome::Created(Box::new(created)))
    }

    async fn get_task(&self, account_id: &str, id: &str) -> Result<Option<Task>> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND account_id = $2 AND deleted = 0"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    async fn get_task_by_id(&self, id: &str) -> Result<Option<Task>> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    async fn list_tasks(&self, page: &TaskPage) -> Result<Vec<Task>> {
        let sql = rows::task_page_sql(page);
        let mut q = sqlx::query(&sql)
            .bind(&page.account_id)
            .bind(page.dialect.as_str());
        if let Some(after) = &page.after {
            q = q.bind(after);
        }
        let rows = q.bind(page.limit).fetch_all(&self.pool).await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn search_tasks(&self, search: &TaskSearch) -> Result<Vec<Task>> {
        let mut qb = rows::task_search::<sqlx::Postgres>(search);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn task_events(&self, task_id: &str) -> Result<Vec<TaskEvent>> {
        let rows = sqlx::query("SELECT * FROM task_events WHERE task_id = $1 ORDER BY seq")
            .bind(task_id)
            .fetch_all(&self.pool)
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
        // picks it up then, with no separate sweeper. Rows another instance is claiming or
        // changing right now are skipped, not waited for: they are not free anyway.
        let rows = sqlx::query(&format!(
            "UPDATE tasks SET lease_owner = $1, lease_until = $2, next_attempt_at = $2
             WHERE id IN (SELECT id FROM tasks
                          WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $3
                          ORDER BY next_attempt_at LIMIT $4
                          FOR NO KEY UPDATE SKIP LOCKED)
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn next_due_at(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query("SELECT MIN(next_attempt_at) FROM tasks WHERE next_attempt_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    async fn release_leases(&self, owner: &str, now: i64, submitting_at: i64) -> Result<u64> {
        let sql = crate::sql::RELEASE_LEASES
            .replacen('?', "$1", 1)
            .replacen('?', "$2", 1)
            .replacen('?', "$3", 1);
        let n = sqlx::query(&sql)
            .bind(submitting_at)
            .bind(now)
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n > 0 {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(TASKS_CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(n)
    }

    async fn hurry_task(&self, id: &str, now: i64) -> Result<bool> {
        let hurried = sqlx::query(
            "UPDATE tasks SET next_attempt_at = $1
             WHERE id = $2 AND state IN ('running', 'throttled') AND upstream_id IS NOT NULL
               AND lease_owner IS NULL AND next_attempt_at > $1",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        if hurried {
            // Whichever instance is idle polls it now.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(TASKS_CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(hurried)
    }

    async fn in_flight_by_channel(&self) -> Result<std::collections::HashMap<String, i64>> {
        Ok(
            sqlx::query_as::<_, (String, i64)>(&crate::sql::in_flight_by_channel())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect(),
        )
    }

    async fn count_in_flight(&self, channel: &str) -> Result<i64> {
        Ok(sqlx::query(&in_flight_sql())
            .bind(channel)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    async fn update_task(&self, u: TaskUpdate) -> Result<Option<Task>> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        // Locked until the commit: the state and lease checked here are the ones updated,
        // and the task's outbox numbering below is this transaction's alone.
        let current = sqlx::query(
            "SELECT state, lease_owner, channel FROM tasks WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind(&u.task_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(None);
        };
        let state = parse_state(current.try_get("state")?)?;
        let owner: Option<String> = current.try_get("lease_owner")?;
        if !rules::admits(&u, state, owner.as_deref()) {
            return Ok(None);
        }
        if let (Some(cap), Some(channel)) = (u.channel_cap, &u.channel) {
            // Takers of one channel's slots go one at a time: the count below sees every slot
            // taken by a transaction that held this lock before (it committed to release it),
            // and none can be taken until this one commits.
            lock_channel(&mut tx, channel).await?;
            let others: i64 = sqlx::query(&format!("{} AND id != $2", in_flight_sql()))
                .bind(channel)
                .bind(&u.task_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if others >= cap {
                return Ok(None);
            }
        }
        let mut full: Vec<&(String, i64)> = u.unless_room.iter().collect();
        full.sort();
        for (channel, cap) in full {
            // The freeing side takes this lock before it wakes a waiting task: either it
            // committed before this count (which then sees the room) or it wakes after this
            // commit (and sees this task waiting). Locks in name order: no deadlock.
            lock_channel(&mut tx, channel).await?;
            let others: i64 = sqlx::query(&format!("{} AND id != $2", in_flight_sql()))
                .bind(channel)
                .bind(&u.task_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if others < *cap {
                return Ok(None);
            }
        }
        if let (Some(rate), Some(channel)) = (u.submit_rate, &u.channel) {
            // The window's row is locked by the upsert until the commit: concurrent takers
            // count one after the other, and a full window refuses the move.
            let counted = sqlx::query(
                "INSERT INTO channel_submits (channel, slot, count) VALUES ($1, $2, 1)
                 ON CONFLICT (channel, slot) DO UPDATE SET count = channel_submits.count + 1
                 WHERE channel_submits.count < $3",
            )
            .bind(channel)
            .bind(rate.slot(now))
            .bind(rate.limit)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if counted == 0 {
                return Ok(None);
            }
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new("");
        crate::sql::task_update(&mut q, &u, state, now);
        let row = q.build().fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Ok(None) };
        if rules::frees_slot(state, &u) {
            // Shared: tasks ending on one channel do not wait for each other, only for a
            // task deciding to wait for that channel (which takes it exclusively).
            let held: Option<String> = current.try_get("channel")?;
            if let Some(channel) = &held {
                lock_channel_shared(&mut tx, channel).await?;
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new("");
            crate::sql::wake_waiting(&mut q, now, true);
            if q.build().execute(&mut *tx).await?.rows_affected() > 0 {
                notify(&mut tx, TASKS_CHANNEL).await?;
            }
        }
        let settled = rules::settlement(state, u.to);
        if let Some((kind, reason)) = &settled {
            credits::settle(&mut tx, &u.task_id, *kind, reason).await?;
        }
        let task = if settled.is_some() {
            task_by_id(&mut tx, &u.task_id).await?
        } else {
            task_from_row(&row)?
        };
        let mut enqueued = false;
        if let Some(to) = u.to.filter(|to| *to != state) {
            let data = rules::event_data(&u);
            insert_event(&mut tx, &u.task_id, Some(state), to, &data, now).await?;
            enqueued = self.callback(&mut tx, &task, Some(state), to, now).await?;
        }
        tx.commit().await?;
        self.committed(enqueued);
        Ok(Some(task))
    }

    async fn usage_by_model(&self, account_id: &str, since_ms: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT model, COUNT(*) AS n FROM tasks WHERE account_id = $1 AND created_at >= $2
             GROUP BY model ORDER BY model",
        )
        .bind(account_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
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
        // SUM of BIGINT is NUMERIC on PostgreSQL: cast back (the amounts are bounded far
        // below i64::MAX, see rules::MAX_BALANCE).
        let rows = sqlx::query(
            "SELECT to_char(to_timestamp(l.created_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                    t.model AS model,
                    SUM(CASE l.kind WHEN 'hold' THEN l.amount ELSE -l.amount END)::BIGINT AS amount
             FROM ledger_entries l JOIN tasks t ON t.id = l.task_id
             WHERE l.account_id = $1 AND l.kind IN ('hold', 'refund')
               AND l.created_at >= $2 AND l.created_at < $3
             GROUP BY day, t.model ORDER BY day, t.model",
        )
        .bind(account_id)
        .bind(start_ms)
        .bind(before_ms)
        .fetch_all(&self.pool)
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
        // Ids are time-ordered (UUIDv7): they order accounts created in the same millisecond.
        sqlx::query("SELECT * FROM accounts ORDER BY created_at, id")
            .fetch_all(&self.pool)
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
        rules::check_credit(kind, amount)?;
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
            "SELECT * FROM (SELECT * FROM ledger_entries WHERE account_id = $1
                            ORDER BY seq DESC LIMIT $2) AS recent
             ORDER BY seq",
        )
        .bind(account_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn task_ledger(&self, task_id: &str) -> Result<Vec<LedgerEntry>> {
        let rows = sqlx::query("SELECT * FROM ledger_entries WHERE task_id = $1 ORDER BY seq")
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn verify_ledger(&self) -> Result<Vec<LedgerViolation>> {
        let mut found = Vec::new();
        // One snapshot for both queries: a transition committing between them could
        // otherwise show as a violation that never existed.
        let mut tx = self.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let rows: Vec<BalanceCheckRow> = sqlx::query_as(
            "SELECT a.id, a.credits_available, a.credits_held,
                    COALESCE(SUM(CASE e.kind WHEN 'topup' THEN e.amount WHEN 'adjust' THEN e.amount
                                             WHEN 'hold' THEN -e.amount WHEN 'refund' THEN e.amount ELSE 0 END), 0)::BIGINT AS available,
                    COALESCE(SUM(CASE e.kind WHEN 'hold' THEN e.amount WHEN 'capture' THEN -e.amount
                                             WHEN 'refund' THEN -e.amount ELSE 0 END), 0)::BIGINT AS held
             FROM accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
             GROUP BY a.id ORDER BY a.id",
        )
        .fetch_all(&mut *tx)
        .await?;
        found.extend(rows.iter().flat_map(rules::balance_violations));
        let rows: Vec<TaskCreditsRow> = sqlx::query_as(
            "SELECT t.id, t.account_id, t.state, t.credits_held, t.credits_captured, t.credits_refunded,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.task_id = t.id AND e.kind = 'hold')::BIGINT AS l_hold,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.task_id = t.id AND e.kind = 'capture')::BIGINT AS l_capture,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.task_id = t.id AND e.kind = 'refund')::BIGINT AS l_refund
             FROM tasks t ORDER BY t.id",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
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
            sqlx::query("UPDATE accounts SET price_multiplier = $1 WHERE id = $2")
                .bind(m)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(cap) = max_active_tasks {
            sqlx::query("UPDATE accounts SET max_active_tasks = $1 WHERE id = $2")
                .bind(cap)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
        let account = row.map(|r| account_from_row(&r)).transpose()?;
        tx.commit().await?;
        Ok(account)
    }

    async fn list_api_keys(&self, account_id: &str) -> Result<Vec<ApiKey>> {
        let rows =
            sqlx::query("SELECT * FROM api_keys WHERE account_id = $1 ORDER BY created_at, id")
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<bool> {
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(key_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn touch_api_keys(&self, used: &[(String, i64)]) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        // In key order, once per key: two instances flushing overlapping batches lock the
        // rows in the same order, so they wait for each other instead of deadlocking.
        let mut latest = std::collections::BTreeMap::<&str, i64>::new();
        for (id, at) in used {
            let e = latest.entry(id.as_str()).or_insert(*at);
            *e = (*e).max(*at);
        }
        let mut tx = self.begin().await?;
        for (id, at) in latest {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1)
                 WHERE id = $2",
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
            "DELETE FROM idempotency_keys WHERE (account_id, key) IN
               (SELECT account_id, key FROM idempotency_keys WHERE expires_at <= $1
                LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .bind(limit.max(0))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn cancel_task(&self, id: &str, by: Canceller<'_>) -> Result<CancelOutcome> {
        let (refund_after_upstream, operator, who) =
            (by.refunds_after_upstream(), by.is_operator(), by.who());
        let now = now_ms();
        let mut tx = self.begin().await?;
        // Locked like update_task's read: the plan is made for the state that is changed.
        let row = sqlx::query(
            "SELECT state, upstream_id, channel FROM tasks
             WHERE id = $1 AND ($2::text IS NULL OR account_id = $2) AND deleted = 0
             FOR NO KEY UPDATE",
        )
        .bind(id)
        .bind(by.account())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(CancelOutcome::NotFound);
        };
        let state = parse_state(row.try_get("state")?)?;
        if operator && state.is_terminal() {
            return Ok(CancelOutcome::NotFound);
        }
        let upstream_id: Option<String> = row.try_get("upstream_id")?;
        let mut enqueued = false;
        let outcome = match rules::cancel_plan(state, upstream_id.is_some(), refund_after_upstream)
        {
            CancelPlan::Delete => {
                // A deleted task's media go with it: the sweeper takes them on its next pass.
                sqlx::query(
                    "UPDATE tasks SET deleted = 1, updated_at = $1,
                            expires_at = CASE WHEN expires_at IS NULL THEN NULL
                                              ELSE LEAST(expires_at, $1) END
                     WHERE id = $2",
                )
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
                    "UPDATE tasks SET state = 'cancelled', finished_at = $1,
                            deleted = CASE WHEN $7 THEN deleted ELSE 1 END,
                            updated_at = $1, cancel_upstream = $2,
                            next_attempt_at = CASE WHEN $3 THEN
                                (CASE WHEN upstream_id IS NOT NULL THEN $1 ELSE next_attempt_at END)
                                ELSE NULL END,
                            lease_owner = CASE WHEN $4 THEN lease_owner ELSE NULL END,
                            lease_until = CASE WHEN $4 THEN lease_until ELSE NULL END
                     WHERE id = $5 AND state = $6",
                )
                .bind(now)
                .bind(owes_upstream as i64)
                .bind(owes_upstream)
                .bind(keep_lease)
                .bind(id)
                .bind(state.as_str())
                .bind(operator)
                .execute(&mut *tx)
                .await?;
                credits::settle(&mut tx, id, settle, &format!("cancelled by {who}")).await?;
                // A slot given back: as in update_task, the longest waiter may go.
                if let Some(channel) = row.try_get::<Option<String>, _>("channel")? {
                    lock_channel_shared(&mut tx, &channel).await?;
                    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new("");
                    crate::sql::wake_waiting(&mut q, now, true);
                    if q.build().execute(&mut *tx).await?.rows_affected() > 0 {
                        notify(&mut tx, TASKS_CHANNEL).await?;
                    }
                }
                insert_event(
                    &mut tx,
                    id,
                    Some(state),
                    TaskState::Cancelled,
                    &serde_json::json!({"by": who}),
                    now,
                )
                .await?;
                let task = task_by_id(&mut tx, id).await?;
                enqueued = self
                    .callback(&mut tx, &task, Some(state), TaskState::Cancelled, now)
                    .await?;
                if owes_upstream {
                    notify(&mut tx, TASKS_CHANNEL).await?;
                }
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
             FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let current = match row.webhook_secret.clone() {
            Some(sealed) => sealed,
            // Accounts from before webhooks: give them a secret on first use. Two instances
            // doing so at once: the second's update finds one set and both read the first's.
            None => {
                let fresh = crate::generate_webhook_secret();
                let mut tx = self.begin().await?;
                sqlx::query(
                    "UPDATE accounts SET webhook_secret = $1 WHERE id = $2 AND webhook_secret IS NULL",
                )
                .bind(self.secrets.seal(&fresh))
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
                let sealed: String =
                    sqlx::query("SELECT webhook_secret FROM accounts WHERE id = $1")
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
        let done = sqlx::query("UPDATE accounts SET webhook_hmac_key = $1 WHERE id = $2")
            .bind(key.map(|k| self.secrets.seal(k)))
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ops_snapshot(&self, now: i64) -> Result<OpsSnapshot> {
        use crate::sql::{OPS_BACKLOG, OPS_HELD, OPS_QUEUE, OPS_SETTLED, OPS_TASKS_BY_STATE};
        let tasks_by_state = sqlx::query_as::<_, (String, i64)>(OPS_TASKS_BY_STATE)
            .fetch_all(&self.pool)
            .await?;
        let (queue_depth, oldest_due_at) =
            sqlx::query_as::<_, (i64, Option<i64>)>(&OPS_QUEUE.replace('?', "$1"))
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
        let credits_held: i64 = sqlx::query_scalar(OPS_HELD).fetch_one(&self.pool).await?;
        let (credits_captured, credits_refunded) = sqlx::query_as::<_, (i64, i64)>(OPS_SETTLED)
            .fetch_one(&self.pool)
            .await?;
        let (webhook_backlog, oldest_undelivered_at) =
            sqlx::query_as::<_, (i64, Option<i64>)>(OPS_BACKLOG)
                .fetch_one(&self.pool)
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
            .fetch_all(&self.pool)
            .await?;
        let settled = sqlx::query_as::<_, (i64, i64)>(crate::sql::ACTIVITY_SETTLED)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok(crate::sql::activity(rows, buckets, settled))
    }

    async fn list_channels(&self) -> Result<Vec<StoredChannel>> {
        let rows = sqlx::query_as::<_, ChannelRow>("SELECT * FROM channels ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|r| r.open(&self.secrets)).collect()
    }

    async fn channels_fingerprint(&self) -> Result<(i64, i64)> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(revision), 0)::BIGINT FROM channels")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn put_channel(&self, w: &ChannelWrite) -> Result<()> {
        let mut tx = self.begin().await?;
        // Two writers of one name: the insert of the second waits on the first's key, and
        // the row lock orders replacements.
        let before = sqlx::query_as::<_, ChannelRow>(
            "SELECT * FROM channels WHERE name = $1 FOR NO KEY UPDATE",
        )
        .bind(&w.name)
        .fetch_optional(&mut *tx)
        .await?;
        let r = ChannelRow::after(before.as_ref(), w, &self.secrets, now_ms());
        sqlx::query(
            "INSERT INTO channels (name, config, sealed_key, enabled, disabled_reason, source,
                                   removed_at, revision, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (name) DO UPDATE SET config = excluded.config,
                 sealed_key = excluded.sealed_key, enabled = excluded.enabled,
                 disabled_reason = excluded.disabled_reason, source = excluded.source,
                 removed_at = excluded.removed_at, revision = channels.revision + 1,
                 updated_at = excluded.updated_at",
        )
        .bind(&r.name)
        .bind(&r.config)
        .bind(&r.sealed_key)
        .bind(r.enabled)
        .bind(&r.disabled_reason)
        .bind(&r.source)
        .bind(r.removed_at)
        .bind(r.revision)
        .bind(r.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_channel_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE channels SET enabled = $1, disabled_reason = $2, revision = revision + 1,
                 updated_at = $3
             WHERE name = $4 AND removed_at IS NULL",
        )
        .bind(enabled)
        .bind(reason.filter(|_| !enabled))
        .bind(now_ms())
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    async fn remove_channel(&self, name: &str) -> Result<bool> {
        let now = now_ms();
        Ok(sqlx::query(
            "UPDATE channels SET removed_at = $1, enabled = FALSE, revision = revision + 1,
                 updated_at = $1
             WHERE name = $2 AND removed_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    async fn purge_channel_submits(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM channel_submits WHERE slot < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn record_upload(&self, u: &UploadRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO uploads (id, account_id, filename, content_type, size, sha256,
                                  created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&u.id)
        .bind(&u.account_id)
        .bind(&u.filename)
        .bind(&u.content_type)
        .bind(u.size)
        .bind(&u.sha256)
        .bind(u.created_at)
        .bind(u.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_upload(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<UploadRecord>> {
        Ok(sqlx::query_as::<_, UploadRecord>(
            "SELECT * FROM uploads WHERE id = $1 AND account_id = $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(account_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn expired_uploads(&self, now: i64, limit: i64) -> Result<Vec<UploadRecord>> {
        Ok(sqlx::query_as::<_, UploadRecord>(
            "SELECT * FROM uploads WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn forget_uploads(&self, ids: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM uploads WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_webhook_url(&self, account_id: &str, url: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE accounts SET webhook_url = $1 WHERE id = $2")
            .bind(url)
            .bind(account_id)
            .execute(&self.pool)
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
                    webhook_secret_prev_until = $1, webhook_secret = $2 WHERE id = $3",
        )
        .bind(now_ms() + grace_ms.max(0))
        .bind(self.secrets.seal(&fresh))
        .bind(account_id)
        .execute(&self.pool)
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
        webhooks::claim(&self.pool, owner, now, lease_until, limit).await
    }

    async fn next_webhook_due(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) FROM webhook_messages WHERE next_attempt_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn finish_webhook_attempt(
        &self,
        owner: &str,
        a: WebhookAttempt,
        next: WebhookNext,
    ) -> Result<bool> {
        webhooks::finish(&self.pool, owner, a, next).await
    }

    async fn postpone_webhook(&self, id: &str, owner: &str, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_messages SET next_attempt_at = $1, lease_owner = NULL,
                    lease_until = NULL, updated_at = $2
             WHERE id = $3 AND lease_owner = $4 AND state = 'pending'",
        )
        .bind(at)
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn webhook_messages(&self, task_id: &str) -> Result<Vec<WebhookMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM webhook_messages WHERE task_id = $1 ORDER BY seq",
            rows::MESSAGE_COLUMNS
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::message_from_row).collect()
    }

    async fn webhook_message(&self, id: &str) -> Result<Option<WebhookMessage>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM webhook_messages WHERE id = $1",
            rows::MESSAGE_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::message_from_row).transpose()
    }

    async fn webhook_attempts(&self, message_id: &str) -> Result<Vec<WebhookAttempt>> {
        let rows = sqlx::query("SELECT * FROM webhook_attempts WHERE message_id = $1 ORDER BY n")
            .bind(message_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::attempt_from_row).collect()
    }

    async fn redeliver_webhooks(&self, task_id: &str, message_id: Option<&str>) -> Result<u64> {
        webhooks::redeliver(&self.pool, task_id, message_id).await
    }

    async fn record_media(&self, objects: &[MediaObject]) -> Result<()> {
        media::record(&self.pool, objects).await
    }

    async fn media_objects(&self, task_id: &str) -> Result<Vec<MediaObject>> {
        media::of_task(&self.pool, task_id).await
    }

    async fn media_object(&self, task_id: &str, name: &str) -> Result<Option<ServedMedia>> {
        media::served(&self.pool, task_id, name).await
    }

    async fn expired_media(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        media::expired(&self.pool, now, limit).await
    }

    async fn media_purged(&self, task_id: &str, names: &[String], now: i64) -> Result<()> {
        media::purged(&self.pool, task_id, names, now).await
    }

    async fn expire_media(&self, task_id: &str, at: i64) -> Result<()> {
        media::expire(&self.pool, task_id, at).await
    }

    async fn set_account_retention(
        &self,
        account_id: &str,
        seconds: Option<i64>,
    ) -> Result<Option<Account>> {
        if !media::set_retention(&self.pool, account_id, seconds).await? {
            return Ok(None);
        }
        self.get_account(account_id).await
    }
}
