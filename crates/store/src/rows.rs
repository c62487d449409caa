//! Rows as both backends return them, mapped with `sqlx::FromRow` (derived generically over the
//! row type, so one mapping serves SQLite and PostgreSQL: both schemas use BIGINT for every
//! integer and flag, DOUBLE for reals and TEXT for strings and JSON). The rows the SQLite
//! writer returns (it runs on rusqlite) derive `Deserialize` too, read by `serde_rusqlite`
//! by column name. A row struct holds the
//! columns as stored; the conversion into the model type is where stored text becomes typed.

use reelay_core::TaskState;
use sqlx::FromRow;

use crate::{
    LedgerKind, MediaKind, MediaObject, Result, StoreError, Task, TaskEvent, WebhookAttempt,
    WebhookMessage,
};

pub const TASK_COLUMNS: &str = "id, account_id, key_id, dialect, spec, state, progress, channel, \
    upstream_id, attempts, next_attempt_at, lease_owner, lease_until, cancel_upstream, credits_held, \
    credits_captured, credits_refunded, failure_code, failure_message, outputs, upstream_outputs, \
    deleted, created_at, updated_at, started_at, finished_at, expires_at, poster, last_frame, \
    archive_started_at";

pub const MESSAGE_COLUMNS: &str = "id, account_id, task_id, seq, event_type, url, payload, \
    schedule, hmac_subject, state, attempts, next_attempt_at, last_error, created_at, delivered_at";

pub const MEDIA_COLUMNS: &str =
    "task_id, name, kind, output_index, content_type, size, sha256, source_url, created_at";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn state(s: &str) -> Result<TaskState> {
    TaskState::parse(s).ok_or_else(|| corrupt(format!("unknown task state {s:?}")))
}

impl TryFrom<String> for LedgerKind {
    type Error = StoreError;
    fn try_from(s: String) -> Result<LedgerKind> {
        LedgerKind::parse(&s).ok_or_else(|| corrupt(format!("unknown ledger kind {s:?}")))
    }
}

impl TryFrom<String> for MediaKind {
    type Error = StoreError;
    fn try_from(s: String) -> Result<MediaKind> {
        MediaKind::parse(&s).ok_or_else(|| corrupt(format!("unknown media kind {s:?}")))
    }
}

/// The query of [`crate::Store::list_tasks`], with `$n` placeholders (SQLite reads `$n` too):
/// account, dialect, [cursor,] limit. Both forms walk the `tasks_account (account_id, id)`
/// index in order; the dialect is a filter on that walk.
pub fn task_page_sql(page: &crate::TaskPage) -> String {
    let (cmp, order) = if page.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    let (cursor, limit) = match page.after {
        Some(_) => (format!(" AND id {cmp} $3"), "$4"),
        None => (String::new(), "$3"),
    };
    format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE account_id = $1 AND dialect = $2 AND deleted = 0\
         {cursor} ORDER BY id {order} LIMIT {limit}"
    )
}

/// The query of `Store::search_tasks`, for either backend (QueryBuilder numbers the binds
/// in each one's style).
pub fn task_search<'a, DB: sqlx::Database>(s: &'a crate::TaskSearch) -> sqlx::QueryBuilder<'a, DB>
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE deleted = 0"
    ));
    if let Some(a) = &s.account_id {
        qb.push(" AND account_id = ").push_bind(a.as_str());
    }
    if !s.states.is_empty() {
        qb.push(" AND state IN (");
        let mut list = qb.separated(", ");
        for st in &s.states {
            list.push_bind(st.as_str());
        }
        qb.push(")");
    }
    if let Some(d) = s.dialect {
        qb.push(" AND dialect = ").push_bind(d.as_str());
    }
    if let Some(m) = &s.model {
        qb.push(" AND model = ").push_bind(m.as_str());
    }
    if let Some(c) = &s.channel {
        qb.push(" AND channel = ").push_bind(c.as_str());
    }
    if let Some(t) = s.created_from {
        qb.push(" AND created_at >= ").push_bind(t);
    }
    if let Some(t) = s.created_before {
        qb.push(" AND created_at < ").push_bind(t);
    }
    if let Some(id) = &s.before_id {
        qb.push(" AND id < ").push_bind(id.as_str());
    }
    qb.push(" ORDER BY id DESC LIMIT ")
        .push_bind(s.limit.clamp(1, 1000));
    qb
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct TaskRow {
    id: String,
    account_id: String,
    key_id: Option<String>,
    dialect: String,
    spec: String,
    state: String,
    progress: f64,
    channel: Option<String>,
    upstream_id: Option<String>,
    attempts: i64,
    next_attempt_at: Option<i64>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    cancel_upstream: i64,
    credits_held: i64,
    credits_captured: i64,
    credits_refunded: i64,
    failure_code: Option<String>,
    failure_message: Option<String>,
    outputs: String,
    upstream_outputs: String,
    deleted: i64,
    created_at: i64,
    updated_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    expires_at: Option<i64>,
    poster: Option<String>,
    last_frame: Option<String>,
    archive_started_at: Option<i64>,
}

impl TryFrom<TaskRow> for Task {
    type Error = StoreError;
    fn try_from(r: TaskRow) -> Result<Task> {
        Ok(Task {
            spec: serde_json::from_str(&r.spec).map_err(corrupt)?,
            state: state(&r.state)?,
            outputs: serde_json::from_str(&r.outputs).map_err(corrupt)?,
            upstream_outputs: serde_json::from_str(&r.upstream_outputs).map_err(corrupt)?,
            cancel_upstream: r.cancel_upstream != 0,
            deleted: r.deleted != 0,
            id: r.id,
            account_id: r.account_id,
            key_id: r.key_id,
            dialect: reelay_core::Dialect::parse(&r.dialect)
                .ok_or_else(|| corrupt(format!("unknown dialect {:?}", r.dialect)))?,
            progress: r.progress,
            channel: r.channel,
            upstream_id: r.upstream_id,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until,
            credits_held: r.credits_held,
            credits_captured: r.credits_captured,
            credits_refunded: r.credits_refunded,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            created_at: r.created_at,
            updated_at: r.updated_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            expires_at: r.expires_at,
            poster: r.poster,
            last_frame: r.last_frame,
            archive_started_at: r.archive_started_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct EventRow {
    id: String,
    task_id: String,
    from_state: Option<String>,
    to_state: String,
    data: String,
    created_at: i64,
}

impl TryFrom<EventRow> for TaskEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<TaskEvent> {
        Ok(TaskEvent {
            from_state: r.from_state.as_deref().map(state).transpose()?,
            to_state: state(&r.to_state)?,
            data: serde_json::from_str(&r.data).map_err(corrupt)?,
            id: r.id,
            task_id: r.task_id,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct MessageRow {
    id: String,
    account_id: String,
    task_id: String,
    seq: i64,
    event_type: String,
    url: String,
    payload: String,
    schedule: Option<String>,
    hmac_subject: Option<String>,
    state: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

/// A retry schedule as stored: delays in seconds, comma-separated.
pub fn schedule_text(schedule: Option<&[u64]>) -> Option<String> {
    schedule.map(|s| s.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
}

impl TryFrom<MessageRow> for WebhookMessage {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<WebhookMessage> {
        let schedule = r
            .schedule
            .map(|s| {
                s.split(',')
                    .map(|n| n.trim().parse::<u64>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| corrupt(format!("webhook schedule {s:?}: {e}")))
            })
            .transpose()?;
        Ok(WebhookMessage {
            id: r.id,
            account_id: r.account_id,
            task_id: r.task_id,
            seq: r.seq,
            event_type: r.event_type,
            url: r.url,
            payload: r.payload,
            schedule,
            hmac_subject: r.hmac_subject,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AttemptRow {
    message_id: String,
    n: i64,
    started_at: i64,
    status: Option<i64>,
    latency_ms: i64,
    error: Option<String>,
    response_excerpt: Option<String>,
}

impl TryFrom<AttemptRow> for WebhookAttempt {
    type Error = StoreError;
    fn try_from(r: AttemptRow) -> Result<WebhookAttempt> {
        Ok(WebhookAttempt {
            message_id: r.message_id,
            n: r.n,
            started_at: r.started_at,
            status: r
                .status
                .map(|s| u16::try_from(s).map_err(corrupt))
                .transpose()?,
            latency_ms: r.latency_ms,
            error: r.error,
            response_excerpt: r.response_excerpt,
        })
    }
}

/// A media object with the task facts serving it depends on (`media_object`).
#[derive(sqlx::FromRow)]
pub struct ServedRow {
    #[sqlx(flatten)]
    pub object: MediaObject,
    pub account_id: String,
    pub expires_at: Option<i64>,
    pub deleted: i64,
}

/// An account's sealed webhook secrets as stored.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct SealedSecretsRow {
    pub webhook_secret: Option<String>,
    webhook_secret_prev: Option<String>,
    webhook_secret_prev_until: Option<i64>,
    webhook_hmac_key: Option<String>,
}

impl SealedSecretsRow {
    /// Opens the secrets; `current` is the sealed current secret (the row's own, or the one a
    /// backend just gave an account from before webhooks). The previous secret signs only
    /// until its grace period ends.
    pub fn open(
        self,
        secrets: &crate::SecretBox,
        current: &str,
        now: i64,
    ) -> Result<crate::WebhookSecrets> {
        let previous = match (self.webhook_secret_prev, self.webhook_secret_prev_until) {
            (Some(sealed), Some(until)) if until > now => Some(secrets.open(&sealed)?),
            _ => None,
        };
        Ok(crate::WebhookSecrets {
            current: secrets.open(current)?,
            previous,
            hmac_key: self
                .webhook_hmac_key
                .map(|sealed| secrets.open(&sealed))
                .transpose()?,
        })
    }
}

/// An account's stored balance beside what its ledger sums to (`verify_ledger`).
#[derive(sqlx::FromRow)]
pub struct BalanceCheckRow {
    pub id: String,
    pub credits_available: i64,
    pub credits_held: i64,
    /// What the ledger sums to.
    pub available: i64,
    pub held: i64,
}

/// A task's credit columns beside its ledger entries (`verify_ledger`).
#[derive(sqlx::FromRow)]
pub struct TaskCreditsRow {
    pub id: String,
    pub account_id: String,
    pub state: String,
    pub credits_held: i64,
    pub credits_captured: i64,
    pub credits_refunded: i64,
    pub l_hold: i64,
    pub l_capture: i64,
    pub l_refund: i64,
}

/// Row mappers for fetched rows of either backend (`rows.iter().map(task_from_row)`).
macro_rules! mappers {
    ($($name:ident: $row:ty => $model:ty;)*) => {$(
        pub fn $name<'r, R: sqlx::Row>(r: &'r R) -> Result<$model>
        where
            $row: sqlx::FromRow<'r, R>,
        {
            <$model>::try_from(<$row as sqlx::FromRow<'r, R>>::from_row(r)?)
        }
    )*};
}

mappers! {
    task_from_row: TaskRow => Task;
    event_from_row: EventRow => TaskEvent;
    message_from_row: MessageRow => WebhookMessage;
    attempt_from_row: AttemptRow => WebhookAttempt;
}

/// Mappers of the model types that are rows themselves.
macro_rules! direct {
    ($($name:ident => $model:ty;)*) => {$(
        pub fn $name<'r, R: sqlx::Row>(r: &'r R) -> Result<$model>
        where
            $model: sqlx::FromRow<'r, R>,
        {
            Ok(<$model as sqlx::FromRow<'r, R>>::from_row(r)?)
        }
    )*};
}

direct! {
    account_from_row => crate::Account;
    key_from_row => crate::ApiKey;
    ledger_from_row => crate::LedgerEntry;
    object_from_row => MediaObject;
}

pub fn served_from_row<'r, R: sqlx::Row>(r: &'r R) -> Result<crate::ServedMedia>
where
    ServedRow: sqlx::FromRow<'r, R>,
{
    let s = ServedRow::from_row(r)?;
    Ok(crate::ServedMedia {
        object: s.object,
        account_id: s.account_id,
        expires_at: s.expires_at,
        deleted: s.deleted != 0,
    })
}

/// A channel as stored (`channels`).
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ChannelRow {
    pub name: String,
    pub config: String,
    pub sealed_key: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub source: String,
    pub removed_at: Option<i64>,
    pub revision: i64,
    pub updated_at: i64,
}

impl ChannelRow {
    /// The row a write leaves, given the row before it (if any): both backends store exactly
    /// this. A channel that was removed comes back as new (enabled unless told otherwise).
    pub fn after(
        before: Option<&ChannelRow>,
        w: &crate::ChannelWrite,
        secrets: &crate::SecretBox,
        now: i64,
    ) -> ChannelRow {
        let live = before.filter(|b| b.removed_at.is_none());
        let sealed_key = match &w.key {
            crate::KeyChange::Keep => before.and_then(|b| b.sealed_key.clone()),
            crate::KeyChange::Clear => None,
            crate::KeyChange::Set(k) => Some(secrets.seal(k)),
        };
        let enabled = w.enabled.or(live.map(|b| b.enabled)).unwrap_or(true);
        ChannelRow {
            name: w.name.clone(),
            config: w.config.to_string(),
            sealed_key,
            enabled,
            // A reason says why it is off; switched on, there is none.
            disabled_reason: live
                .and_then(|b| b.disabled_reason.clone())
                .filter(|_| !enabled),
            source: w.source.as_str().to_string(),
            removed_at: None,
            revision: before.map_or(1, |b| b.revision + 1),
            updated_at: now,
        }
    }

    pub fn open(self, secrets: &crate::SecretBox) -> Result<crate::StoredChannel> {
        Ok(crate::StoredChannel {
            config: serde_json::from_str(&self.config)
                .map_err(|e| StoreError::Corrupt(format!("channel {}: {e}", self.name)))?,
            api_key: self.sealed_key.map(|k| secrets.open(&k)).transpose()?,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            source: crate::ChannelSource::parse(&self.source)
                .ok_or_else(|| StoreError::Corrupt(format!("channel source {}", self.source)))?,
            removed_at: self.removed_at,
            updated_at: self.updated_at,
            name: self.name,
        })
    }
}
