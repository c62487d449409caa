//! Durable state: accounts, API keys, tasks and their events.
//!
//! The engine and the API see only the [`Store`] trait. Every state change is a conditional
//! update (`WHERE state IN (...) AND lease_owner = ...`) so the invariants hold with many
//! writers, not only because SQLite happens to have one.

mod error;
mod keys;
mod model;
pub mod postgres;
pub(crate) mod rows;
pub mod rules;
mod secrets;
pub(crate) mod sql;
pub mod sqlite;

use async_trait::async_trait;

pub use error::StoreError;
pub use keys::{generate_api_key, hash_api_key};
pub use model::*;
pub use rules::{Credited, MAX_BALANCE};
pub use secrets::{generate_key, generate_webhook_secret, SecretBox};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What another instance just made due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Tasks,
    Webhooks,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Is the database reachable? (`/readyz`)
    async fn ping(&self) -> Result<()>;

    /// Wake-ups from other instances sharing the database (work they made due), for backends
    /// that have them; `None` where one process is the only writer (SQLite).
    fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<Wake>> {
        None
    }

    /// Rows changed by committed transactions since the store was opened. A diagnostic: the
    /// hardening tests check with it that a refused or failed request committed nothing.
    fn committed_writes(&self) -> u64;

    // --- accounts and keys
    async fn create_account(&self, name: &str, credits: i64) -> Result<Account>;
    /// An account with its settings and (optionally) its first API key, all in one
    /// transaction; answers the account and the key's id.
    async fn open_account(&self, new: &NewAccount) -> Result<(Account, Option<String>)>;
    async fn get_account(&self, id: &str) -> Result<Option<Account>>;
    async fn count_accounts(&self) -> Result<i64>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// A `topup` (positive) or `adjust` (either sign) entry; the balance moves in the same
    /// transaction, never below zero and never past [`MAX_BALANCE`] (a refusal writes nothing).
    async fn credit(
        &self,
        account_id: &str,
        kind: LedgerKind,
        amount: i64,
        reason: &str,
    ) -> Result<Credited>;
    async fn ledger(&self, account_id: &str, limit: i64) -> Result<Vec<LedgerEntry>>;
    /// Every ledger entry of one task, oldest first (a hold, then a capture or a refund).
    async fn task_ledger(&self, task_id: &str) -> Result<Vec<LedgerEntry>>;
    /// Recomputes every balance from the ledger and checks held = captured + refunded for
    /// every finished task. Empty means consistent.
    async fn verify_ledger(&self) -> Result<Vec<LedgerViolation>>;
    async fn set_account_limits(
        &self,
        account_id: &str,
        price_multiplier: Option<f64>,
        max_active_tasks: Option<Option<i64>>,
    ) -> Result<Option<Account>>;
    async fn list_api_keys(&self, account_id: &str) -> Result<Vec<ApiKey>>;
    /// Revokes a key; true if it existed and was live.
    async fn revoke_api_key(&self, key_id: &str) -> Result<bool>;
    /// Records last-used times, batched by the caller (not a write per request).
    async fn touch_api_keys(&self, used: &[(String, i64)]) -> Result<()>;
    /// Deletes idempotency records past their expiry; returns how many.
    async fn purge_idempotency(&self, now: i64, limit: i64) -> Result<u64>;
    /// Stores a key's hash; returns the key id.
    async fn create_api_key(
        &self,
        account_id: &str,
        key_hash: &str,
        prefix: &str,
    ) -> Result<String>;
    /// The live (not revoked) key with this hash, with its account.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, Account)>>;

    // --- tasks
    /// Accepts a task: in ONE transaction, checks the idempotency key and the account's live
    /// task cap, holds `task.spec.price` credits (only if the account has them), inserts the
    /// task in `queued` with its first event, and stores the idempotency record.
    async fn accept_task(&self, task: NewTask, acceptance: Acceptance) -> Result<AcceptOutcome>;

    /// `accept_task` without conditions; insufficient credits are an error.
    async fn insert_task(&self, task: NewTask) -> Result<Task> {
        match self.accept_task(task, Acceptance::default()).await? {
            AcceptOutcome::Created(t) => Ok(*t),
            AcceptOutcome::InsufficientCredits { available, price } => {
                Err(StoreError::InsufficientCredits { available, price })
            }
            other => Err(StoreError::Corrupt(format!("unexpected outcome {other:?}"))),
        }
    }
    /// A task of this account (deleted tasks are not found).
    async fn get_task(&self, account_id: &str, id: &str) -> Result<Option<Task>>;
    /// Any task by id, for workers and admin tools.
    async fn get_task_by_id(&self, id: &str) -> Result<Option<Task>>;
    /// One page of an account's tasks of one dialect in id (= creation) order, after a cursor.
    async fn list_tasks(&self, page: &TaskPage) -> Result<Vec<Task>>;
    /// Every account's tasks matching `search`, newest first (the operator's view).
    async fn search_tasks(&self, search: &TaskSearch) -> Result<Vec<Task>>;
    async fn task_events(&self, task_id: &str) -> Result<Vec<TaskEvent>>;

    /// Claims up to `limit` due tasks for `owner` until `lease_until`.
    async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Task>>;
    /// Gives back every claim `owner` holds (a shutdown): the tasks come due at `now`, those in
    /// `submitting` at `submitting_at`. Returns how many.
    async fn release_leases(&self, owner: &str, now: i64, submitting_at: i64) -> Result<u64>;
    /// The earliest time any task is due, to sleep until then.
    async fn next_due_at(&self) -> Result<Option<i64>>;
    /// Makes a submitted task's next poll due now (an upstream's callback said it moved),
    /// unless a worker holds it or it is due already; true when it did.
    async fn hurry_task(&self, id: &str, now: i64) -> Result<bool>;
    /// Tasks on a channel that hold an upstream slot (submitting, running, throttled upstream).
    async fn count_in_flight(&self, channel: &str) -> Result<i64>;
    /// The same for every channel at once (channels with none are absent): one query for an
    /// operator's view of all channels.
    async fn in_flight_by_channel(&self) -> Result<std::collections::HashMap<String, i64>>;

    /// Applies `update` if the task is in one of `update.from` states and (when given) leased
    /// by `update.lease_owner`. A state change appends an event in the same transaction.
    /// Returns the updated task, or `None` when the condition did not hold.
    async fn update_task(&self, update: TaskUpdate) -> Result<Option<Task>>;

    /// Tasks per model this account created since `since_ms` (Runway's `dailyGenerations`).
    async fn usage_by_model(&self, account_id: &str, since_ms: i64) -> Result<Vec<(String, i64)>>;

    /// Net credits charged per UTC day and model in `[start_ms, before_ms)`: holds minus
    /// refunds, by the time of each ledger entry (Runway's `/v1/organization/usage`).
    async fn credit_usage(
        &self,
        account_id: &str,
        start_ms: i64,
        before_ms: i64,
    ) -> Result<Vec<CreditUsage>>;

    // --- webhooks
    /// The account's signing secrets (opened), creating the first one if it has none.
    async fn webhook_secrets(&self, account_id: &str) -> Result<Option<WebhookSecrets>>;
    /// Sets or clears the account's kie.ai-style callback HMAC key; false if no such account.
    async fn set_webhook_hmac_key(&self, account_id: &str, key: Option<&str>) -> Result<bool>;
    /// Records an upload whose bytes are stored.
    async fn record_upload(&self, upload: &UploadRecord) -> Result<()>;
    /// An unexpired upload of this account (another account's looks like none).
    async fn get_upload(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<UploadRecord>>;
    /// Uploads expired by `now`, oldest first, for the sweeper.
    async fn expired_uploads(&self, now: i64, limit: i64) -> Result<Vec<UploadRecord>>;
    /// Forgets uploads whose bytes the sweeper deleted.
    async fn forget_uploads(&self, ids: &[String]) -> Result<()>;
    /// Sets or clears the account-wide webhook URL; false when there is no such account.
    async fn set_webhook_url(&self, account_id: &str, url: Option<&str>) -> Result<bool>;
    /// A new secret; the old one keeps signing for `grace_ms`. Returns the new secret.
    async fn rotate_webhook_secret(
        &self,
        account_id: &str,
        grace_ms: i64,
    ) -> Result<Option<String>>;
    /// Claims up to `limit` due messages for `owner` until `lease_until`.
    async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<WebhookMessage>>;
    async fn next_webhook_due(&self) -> Result<Option<i64>>;
    /// Records an attempt and what follows, if `owner` still holds the message's lease.
    async fn finish_webhook_attempt(
        &self,
        owner: &str,
        attempt: WebhookAttempt,
        next: WebhookNext,
    ) -> Result<bool>;
    /// Gives a claimed message back without an attempt (its destination was busy).
    async fn postpone_webhook(&self, id: &str, owner: &str, at: i64) -> Result<bool>;
    async fn webhook_messages(&self, task_id: &str) -> Result<Vec<WebhookMessage>>;
    async fn webhook_message(&self, id: &str) -> Result<Option<WebhookMessage>>;
    async fn webhook_attempts(&self, message_id: &str) -> Result<Vec<WebhookAttempt>>;
    /// Queues messages again with the same ids and a fresh retry schedule: the given one
    /// (delivered or failed; not one still pending), or every failed message of the task.
    /// Returns how many.
    async fn redeliver_webhooks(&self, task_id: &str, message_id: Option<&str>) -> Result<u64>;

    /// Client cancel (`DELETE`): cancels a live task or deletes a finished one. A cancel before
    /// the upstream took the job refunds the hold; after it, the hold is captured (the upstream
    /// charges us whether or not it stops, and Runway itself refunds nothing once a task runs)
    /// unless `refund_after_upstream` says the operator refunds those too.
    async fn cancel_or_delete(
        &self,
        account_id: &str,
        id: &str,
        refund_after_upstream: bool,
    ) -> Result<CancelOutcome> {
        self.cancel_task(
            id,
            Canceller::Client {
                account_id,
                refund_after_upstream,
            },
        )
        .await
    }

    /// Cancels a task as `by` says (see [`Canceller`]): the state, the hold's settlement, the
    /// event and the callback in one transaction.
    async fn cancel_task(&self, id: &str, by: Canceller<'_>) -> Result<CancelOutcome>;

    /// The figures the operator's metrics take from the database (see [`OpsSnapshot`]).
    /// Scans every task and ledger entry: callers cache it (a scrape every few seconds).
    async fn ops_snapshot(&self, now: i64) -> Result<OpsSnapshot>;
    /// Tasks ended in each of `buckets` spans of `bucket_ms` from `since`, and the credits
    /// captured and refunded since then (both from indexed ranges).
    async fn activity(&self, since: i64, bucket_ms: i64, buckets: usize) -> Result<Activity>;

    // --- channel registry
    /// Every stored channel, removed ones included (tasks may still run on them).
    async fn list_channels(&self) -> Result<Vec<StoredChannel>>;
    /// Changes with every write to the registry: an instance whose copy was read at another
    /// fingerprint reloads it.
    async fn channels_fingerprint(&self) -> Result<(i64, i64)>;
    /// Inserts or replaces a channel (see [`ChannelWrite`]).
    async fn put_channel(&self, write: &ChannelWrite) -> Result<()>;
    /// Switches a channel on or off (with why, when off); false if there is no such channel.
    async fn set_channel_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<bool>;
    /// Marks a channel removed (no new tasks; running ones finish); false if there was none.
    async fn remove_channel(&self, name: &str) -> Result<bool>;
    /// Forgets submit-rate windows that started before `before`.
    async fn purge_channel_submits(&self, before: i64) -> Result<u64>;

    // --- media archive
    /// Records archived objects (again: the same task and name replace the row). Written as
    /// soon as each object is complete, so the sweeper knows every object that exists.
    async fn record_media(&self, objects: &[MediaObject]) -> Result<()>;
    /// A task's archived objects.
    async fn media_objects(&self, task_id: &str) -> Result<Vec<MediaObject>>;
    /// One object, with the task facts serving it depends on.
    async fn media_object(&self, task_id: &str, name: &str) -> Result<Option<ServedMedia>>;
    /// Up to `limit` tasks whose media expired by `now` and are not deleted yet, oldest first.
    async fn expired_media(&self, now: i64, limit: i64) -> Result<Vec<String>>;
    /// After the sweeper deleted these objects: forgets them and marks the task's media purged.
    async fn media_purged(&self, task_id: &str, names: &[String], now: i64) -> Result<()>;
    /// Brings a task's media expiry forward to `at` (media of a task that will never show them).
    async fn expire_media(&self, task_id: &str, at: i64) -> Result<()>;
    /// The account's own media retention (`None` = the configured default).
    async fn set_account_retention(
        &self,
        account_id: &str,
        seconds: Option<i64>,
    ) -> Result<Option<Account>>;
}
