use reelay_core::{TaskSpec, TaskState};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub credits_available: i64,
    pub credits_held: i64,
    /// Prices for this account are multiplied by this (reseller groups).
    pub price_multiplier: f64,
    /// Live tasks this account may have at once; `None` = the configured default.
    pub max_active_tasks: Option<i64>,
    /// How long this account's media are kept, in seconds; `None` = the configured default.
    pub retention_seconds: Option<i64>,
    /// Its live tasks now (what the cap counts), kept by the database.
    pub live_tasks: i64,
    /// Where events of dialects without a per-request callback URL go (OpenAI's).
    #[serde(default)]
    #[sqlx(default)]
    pub webhook_url: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub account_id: String,
    pub prefix: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Topup,
    Hold,
    Capture,
    Refund,
    Adjust,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Topup => "topup",
            LedgerKind::Hold => "hold",
            LedgerKind::Capture => "capture",
            LedgerKind::Refund => "refund",
            LedgerKind::Adjust => "adjust",
        }
    }
    pub fn parse(s: &str) -> Option<LedgerKind> {
        [
            LedgerKind::Topup,
            LedgerKind::Hold,
            LedgerKind::Capture,
            LedgerKind::Refund,
            LedgerKind::Adjust,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    pub account_id: String,
    #[sqlx(try_from = "String")]
    pub kind: LedgerKind,
    pub amount: i64,
    pub task_id: Option<String>,
    pub reason: String,
    pub created_at: i64,
}

/// The first answer to a create carrying an `Idempotency-Key`, to be replayed.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub key: String,
    /// Hash of what identifies "the same request" (dialect, route and body).
    pub request_hash: String,
    pub response_status: u16,
    pub response_body: String,
    pub ttl_ms: i64,
}

/// Conditions of accepting a task, checked in the transaction that inserts it.
#[derive(Debug, Clone, Default)]
pub struct Acceptance {
    pub idempotency: Option<IdempotencyRecord>,
    /// Live tasks the account may have; the account's own setting wins.
    pub max_active_tasks: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum AcceptOutcome {
    Created(Box<Task>),
    /// The same key and request were accepted before: answer as then.
    Replayed {
        task_id: String,
        status: u16,
        body: String,
    },
    /// The key was used before for another request.
    IdempotencyMismatch,
    InsufficientCredits {
        available: i64,
        price: i64,
    },
    TooManyActive {
        limit: i64,
    },
}

/// Net credits one model used on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditUsage {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub model: String,
    pub amount: i64,
}

/// One finding of `verify_ledger`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LedgerViolation {
    pub account_id: String,
    pub task_id: Option<String>,
    pub problem: String,
}

/// Which tasks [`crate::Store::list_tasks`] returns: an account's live (not deleted) tasks of
/// one dialect, ids after `after` in the chosen direction, at most `limit`.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub account_id: String,
    pub dialect: reelay_core::Dialect,
    /// Exclusive cursor: the last id of the previous page.
    pub after: Option<String>,
    pub limit: i64,
    /// Oldest first when true, newest first otherwise.
    pub ascending: bool,
}

/// The operator's search over every account's tasks (the console's list), newest first, a
/// page at a time: `before_id` is the last id of the previous page (ids sort by creation).
/// Every filter is optional; each has an index, so a page stays fast at any table size.
#[derive(Debug, Clone, Default)]
pub struct TaskSearch {
    pub account_id: Option<String>,
    /// Any of these states (empty: any state).
    pub states: Vec<TaskState>,
    pub dialect: Option<reelay_core::Dialect>,
    /// The model as the client named it.
    pub model: Option<String>,
    pub channel: Option<String>,
    /// Created at or after, Unix ms.
    pub created_from: Option<i64>,
    /// Created before, Unix ms.
    pub created_before: Option<i64>,
    pub before_id: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    pub account_id: String,
    pub key_id: Option<String>,
    pub dialect: reelay_core::Dialect,
    pub spec: TaskSpec,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Task {
    pub id: String,
    pub account_id: String,
    pub key_id: Option<String>,
    pub dialect: reelay_core::Dialect,
    pub spec: TaskSpec,
    pub state: TaskState,
    pub progress: f64,
    pub channel: Option<String>,
    pub upstream_id: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub cancel_upstream: bool,
    pub credits_held: i64,
    pub credits_captured: i64,
    pub credits_refunded: i64,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub outputs: Vec<String>,
    pub upstream_outputs: Vec<String>,
    pub deleted: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// When the task's media expire (retention); `None` until they are archived.
    pub expires_at: Option<i64>,
    /// Names (in the task's media) of the first video output's poster and last frame.
    pub poster: Option<String>,
    pub last_frame: Option<String>,
    /// When the upstream first reported success and archiving began.
    pub archive_started_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskEvent {
    pub id: String,
    pub task_id: String,
    pub from_state: Option<TaskState>,
    pub to_state: TaskState,
    pub data: serde_json::Value,
    pub created_at: i64,
}

/// A conditional change to one task. `None` fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct TaskUpdate {
    pub task_id: String,
    /// The update applies only if the task is in one of these states.
    pub from: Vec<TaskState>,
    /// ... and, when set, only if this worker still holds the lease.
    pub lease_owner: Option<String>,
    pub to: Option<TaskState>,
    pub progress: Option<f64>,
    pub channel: Option<String>,
    /// With `channel`: apply only while fewer than this many OTHER tasks hold a slot on that
    /// channel (as [`crate::Store::count_in_flight`] counts them). Checked in the same
    /// transaction as the update, so two workers can never both take the last slot.
    pub channel_cap: Option<i64>,
    /// With `channel`: apply only while the channel's submit rate has room, counting this
    /// move (checked and counted in the same transaction, across instances).
    pub submit_rate: Option<SubmitRate>,
    /// Apply only while each of these channels still has `cap` tasks holding slots: a task
    /// about to wait for capacity must not miss a slot freed since it looked (the freeing
    /// side wakes waiting tasks under the same per-channel serialisation).
    pub unless_room: Vec<(String, i64)>,
    pub upstream_id: Option<String>,
    /// Forgets the upstream job (a task sent back to the queue after a retryable failure).
    pub clear_upstream: bool,
    pub bump_attempts: bool,
    /// `Some(None)` clears the due time (nothing left to do); `Some(Some(t))` sets it.
    pub next_attempt_at: Option<Option<i64>>,
    pub release_lease: bool,
    pub cancel_upstream: Option<bool>,
    pub failure: Option<(String, String)>,
    pub outputs: Option<Vec<String>>,
    pub upstream_outputs: Option<Vec<String>>,
    pub poster: Option<String>,
    pub last_frame: Option<String>,
    /// Sets when the task's media expire.
    pub expires_at: Option<i64>,
    /// Sets when archiving began, unless it is already set.
    pub archive_started_at: Option<i64>,
    /// Extra facts recorded on the event of a state change.
    pub event_data: Option<serde_json::Value>,
}

impl TaskUpdate {
    pub fn new(task_id: impl Into<String>, from: &[TaskState]) -> TaskUpdate {
        TaskUpdate {
            task_id: task_id.into(),
            from: from.to_vec(),
            ..Default::default()
        }
    }
    pub fn leased_by(mut self, owner: &str) -> Self {
        self.lease_owner = Some(owner.to_string());
        self
    }
    pub fn to(mut self, state: TaskState) -> Self {
        self.to = Some(state);
        self
    }
}

/// Who cancels a task, which decides what the cancel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceller<'a> {
    /// The client, through its dialect, for a task of its account: a live task is cancelled and
    /// deleted, a finished one deleted. A job the upstream already took is charged unless
    /// `refund_after_upstream`.
    Client {
        account_id: &'a str,
        refund_after_upstream: bool,
    },
    /// An operator, for a live task of any account: cancelled and refunded (the operator chose
    /// to stop it; the client pays nothing), and it stays visible. A finished task is left as
    /// it is (`NotFound`: nothing live to cancel).
    Operator,
}

impl Canceller<'_> {
    pub(crate) fn account(&self) -> Option<&str> {
        match self {
            Canceller::Client { account_id, .. } => Some(account_id),
            Canceller::Operator => None,
        }
    }

    pub(crate) fn refunds_after_upstream(&self) -> bool {
        match self {
            Canceller::Client {
                refund_after_upstream,
                ..
            } => *refund_after_upstream,
            Canceller::Operator => true,
        }
    }

    pub(crate) fn is_operator(&self) -> bool {
        matches!(self, Canceller::Operator)
    }

    /// Who, in the ledger's reason and the event's data.
    pub(crate) fn who(&self) -> &'static str {
        match self {
            Canceller::Client { .. } => "client",
            Canceller::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    NotFound,
    /// The task was live and is now cancelled.
    Cancelled,
    /// The task had finished and is now deleted (no longer visible).
    Deleted,
}

/// A webhook message in the outbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookMessage {
    /// `evt_...`: the `webhook-id` header, the same on every attempt and redelivery.
    pub id: String,
    pub account_id: String,
    pub task_id: String,
    pub seq: i64,
    pub event_type: String,
    pub url: String,
    /// The exact body that is signed and sent.
    pub payload: String,
    /// Retry delays in seconds; `None` = the configured default.
    pub schedule: Option<Vec<u64>>,
    /// See [`CallbackMessage::hmac_subject`].
    pub hmac_subject: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts since the message was (re)queued; its attempt log keeps them all.
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookAttempt {
    pub message_id: String,
    pub n: i64,
    pub started_at: i64,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// What happens to a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookNext {
    Delivered,
    RetryAt(i64),
    /// Given up (schedule exhausted, or the receiver said 410 Gone).
    Failed,
}

/// An account's signing secrets: the current one, and during a rotation the previous one.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    pub current: String,
    pub previous: Option<String>,
    /// The account's kie.ai-style HMAC key, when it set one (quick-start dialect callbacks).
    pub hmac_key: Option<String>,
}

/// A callback a dialect wants sent for a transition.
#[derive(Debug, Clone)]
pub struct CallbackMessage {
    pub url: String,
    pub event_type: String,
    pub payload: String,
    pub schedule: Option<Vec<u64>>,
    /// The id a kie.ai-style `X-Webhook-Signature` covers, for dialects that send one.
    pub hmac_subject: Option<String>,
}

/// Decides, per dialect, which transitions are reported to a task's callback URL and with what
/// body. The store calls it inside the transaction of the transition, so the message exists
/// exactly when the transition does.
pub trait Callbacks: Send + Sync + 'static {
    fn message(
        &self,
        task: &Task,
        from: Option<TaskState>,
        to: TaskState,
        at_ms: i64,
    ) -> Option<CallbackMessage>;

    /// Called after the commit of a transaction that wrote a message (wakes the deliverers).
    fn committed(&self) {}
}

/// What an archived object is to its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum MediaKind {
    Output,
    Poster,
    LastFrame,
    Spritesheet,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Output => "output",
            MediaKind::Poster => "poster",
            MediaKind::LastFrame => "last_frame",
            MediaKind::Spritesheet => "spritesheet",
        }
    }
    pub fn parse(s: &str) -> Option<MediaKind> {
        [
            MediaKind::Output,
            MediaKind::Poster,
            MediaKind::LastFrame,
            MediaKind::Spritesheet,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One object in the media store, stored under the key `<task_id>/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct MediaObject {
    pub task_id: String,
    /// `0.mp4`, `0.poster.jpg`, ...
    pub name: String,
    #[sqlx(try_from = "String")]
    pub kind: MediaKind,
    /// The output it is (or was derived from).
    pub output_index: i64,
    pub content_type: String,
    pub size: i64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// The upstream URL an output was copied from.
    pub source_url: Option<String>,
    pub created_at: i64,
}

impl MediaObject {
    /// The object's key in the media store.
    pub fn key(&self) -> String {
        format!("{}/{}", self.task_id, self.name)
    }
}

/// An object with what serving it depends on.
#[derive(Debug, Clone)]
pub struct ServedMedia {
    pub object: MediaObject,
    pub account_id: String,
    /// The task's media expiry.
    pub expires_at: Option<i64>,
    /// The task was deleted by its client.
    pub deleted: bool,
}

/// What [`crate::Store::open_account`] creates.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub credits: i64,
    pub price_multiplier: Option<f64>,
    pub max_active_tasks: Option<i64>,
    pub key: Option<NewKey>,
    /// The webhook signing secret (sealed before it is stored); generated when absent.
    pub webhook_secret: Option<String>,
}

/// An API key to store: its hash and the prefix shown in listings, never the key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub hash: String,
    pub prefix: String,
}

impl NewKey {
    pub fn for_key(key: &str) -> NewKey {
        NewKey {
            hash: crate::hash_api_key(key),
            prefix: key[..12.min(key.len())].to_string(),
        }
    }
}

/// A file an account uploaded (Runway's ephemeral uploads), stored in the media store under
/// [`UploadRecord::key`] until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct UploadRecord {
    pub id: String,
    pub account_id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl UploadRecord {
    /// Its key in the media store.
    pub fn key(&self) -> String {
        upload_key(&self.id)
    }
}

/// The media-store key of upload `id`.
pub fn upload_key(id: &str) -> String {
    format!("uploads/{id}")
}

/// Who defines a stored channel: the configuration file (synced at start and on SIGHUP; the
/// file wins on reload) or the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelSource {
    File,
    Admin,
}

impl ChannelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelSource::File => "file",
            ChannelSource::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<ChannelSource> {
        match s {
            "file" => Some(ChannelSource::File),
            "admin" => Some(ChannelSource::Admin),
            _ => None,
        }
    }
}

/// A channel of the registry as stored. The store does not read `config` (the upstream
/// crate's `ChannelConfig` as JSON, without the key); `api_key` is the opened admin-API key.
#[derive(Clone)]
pub struct StoredChannel {
    pub name: String,
    pub config: serde_json::Value,
    pub api_key: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub source: ChannelSource,
    pub removed_at: Option<i64>,
    pub updated_at: i64,
}

// The key must never reach a log line.
impl std::fmt::Debug for StoredChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredChannel")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("enabled", &self.enabled)
            .field("removed_at", &self.removed_at)
            .finish_non_exhaustive()
    }
}

/// What a stored channel's key becomes on a write.
#[derive(Clone, Default)]
pub enum KeyChange {
    #[default]
    Keep,
    Clear,
    Set(String),
}

/// An insert or replacement of a channel (a removed one of that name comes back).
#[derive(Clone)]
pub struct ChannelWrite {
    pub name: String,
    pub config: serde_json::Value,
    pub key: KeyChange,
    /// `None` keeps the stored switch (a new channel: enabled).
    pub enabled: Option<bool>,
    pub source: ChannelSource,
}

/// A per-channel submit rate, checked with the move to `submitting` across instances: at most
/// `limit` moves per `slot_ms` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitRate {
    pub slot_ms: i64,
    pub limit: i64,
}

impl SubmitRate {
    /// `per_second` submits a second: whole windows of one second, or one submit per
    /// `1 / per_second` seconds below one a second.
    pub fn per_second(per_second: f64) -> Option<SubmitRate> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        Some(if per_second >= 1.0 {
            SubmitRate {
                slot_ms: 1000,
                limit: per_second.floor() as i64,
            }
        } else {
            SubmitRate {
                slot_ms: (1000.0 / per_second).ceil() as i64,
                limit: 1,
            }
        })
    }
    /// The start of the window `now` falls in.
    pub fn slot(&self, now: i64) -> i64 {
        now - now.rem_euclid(self.slot_ms)
    }
}

/// What happened recently (the console's overview): tasks ended per time bucket, and credits
/// settled over the whole span.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Oldest first.
    pub buckets: Vec<ActivityBucket>,
    pub credits_captured: i64,
    pub credits_refunded: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityBucket {
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// What the operator's metrics read from the database (every instance's work, not one's):
/// tasks by state, the queue, credits and the webhook backlog.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpsSnapshot {
    /// Every task by state (deleted ones included: they ran).
    pub tasks_by_state: Vec<(String, i64)>,
    /// Tasks due now that wait to be submitted (`queued`, `throttled`).
    pub queue_depth: i64,
    /// When the task that has waited longest became due (ms), if any waits.
    pub oldest_due_at: Option<i64>,
    pub credits_held: i64,
    pub credits_captured: i64,
    pub credits_refunded: i64,
    /// Webhook messages not yet delivered nor given up on.
    pub webhook_backlog: i64,
    /// When the oldest of them was created (ms).
    pub oldest_undelivered_at: Option<i64>,
}
