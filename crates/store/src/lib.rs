//! Durable state: accounts, API keys, tasks and their events.
//!
//! The engine and the API see only the [`Store`] trait. Every state change is a conditional
//! update (`WHERE state IN (...) AND lease_owner = ...`) so the invariants hold with many
//! writers, not only because SQLite happens to have one.

mod error;
mod keys;
mod model;
pub mod sqlite;

use async_trait::async_trait;

pub use error::StoreError;
pub use keys::{generate_api_key, hash_api_key};
pub use model::*;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Is the database reachable? (`/readyz`)
    async fn ping(&self) -> Result<()>;

    // --- accounts and keys
    async fn create_account(&self, name: &str, credits: i64) -> Result<Account>;
    async fn get_account(&self, id: &str) -> Result<Option<Account>>;
    async fn count_accounts(&self) -> Result<i64>;
    /// Stores a key's hash; returns the key id.
    async fn create_api_key(&self, account_id: &str, key_hash: &str, prefix: &str) -> Result<String>;
    /// The live (not revoked) key with this hash, with its account.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, Account)>>;

    // --- tasks
    /// Inserts a new task in `queued` with its first event, in one transaction.
    async fn insert_task(&self, task: NewTask) -> Result<Task>;
    /// A task of this account (deleted tasks are not found).
    async fn get_task(&self, account_id: &str, id: &str) -> Result<Option<Task>>;
    /// Any task by id, for workers and admin tools.
    async fn get_task_by_id(&self, id: &str) -> Result<Option<Task>>;
    async fn task_events(&self, task_id: &str) -> Result<Vec<TaskEvent>>;

    /// Claims up to `limit` due tasks for `owner` until `lease_until`.
    async fn claim_due(&self, owner: &str, now: i64, lease_until: i64, limit: i64) -> Result<Vec<Task>>;
    /// The earliest time any task is due, to sleep until then.
    async fn next_due_at(&self) -> Result<Option<i64>>;
    /// Tasks on a channel that hold an upstream slot (submitting, running, throttled upstream).
    async fn count_in_flight(&self, channel: &str) -> Result<i64>;

    /// Applies `update` if the task is in one of `update.from` states and (when given) leased
    /// by `update.lease_owner`. A state change appends an event in the same transaction.
    /// Returns the updated task, or `None` when the condition did not hold.
    async fn update_task(&self, update: TaskUpdate) -> Result<Option<Task>>;

    /// Tasks per model this account created since `since_ms` (Runway's `dailyGenerations`).
    async fn usage_by_model(&self, account_id: &str, since_ms: i64) -> Result<Vec<(String, i64)>>;

    /// Client cancel (`DELETE`): cancels a live task or deletes a finished one.
    async fn cancel_or_delete(&self, account_id: &str, id: &str) -> Result<CancelOutcome>;
}
