//! Admin operations over a [`Store`], with every rule about their inputs. The HTTP handlers and
//! the `reelay` subcommands both call these, so an amount the API refuses the CLI refuses too,
//! with the same message.

use std::str::FromStr;

use crate::accept::{MAX_PRICE_MULTIPLIER, MIN_PRICE_MULTIPLIER};
use reelay_store::{
    Account, ApiKey, Credited, LedgerEntry, LedgerKind, LedgerViolation, Store, StoreError, Task,
    TaskEvent, WebhookAttempt, WebhookMessage, MAX_BALANCE,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::AdminError;

/// Largest amount one top-up or adjustment may move (and largest initial balance): far above
/// any real purchase, far below where sums of amounts could overflow an `i64`. A larger number
/// is a typo or an attack, not a top-up.
/// The same number bounds a balance (`reelay_store::MAX_BALANCE`).
pub const MAX_CREDITS: i64 = MAX_BALANCE;
pub const MAX_ACTIVE_TASKS_LIMIT: i64 = 1_000_000;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_REASON_CHARS: usize = 500;
pub const DEFAULT_LEDGER_LIMIT: i64 = 100;
pub const MAX_LEDGER_LIMIT: i64 = 1000;
/// Longest grace period of a rotated-out webhook secret: a week.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// A whole number of credits within ±[`MAX_CREDITS`]. Parsed the same way from JSON and from a
/// command-line argument; whether it must be positive depends on the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Credits(i64);

impl utoipa::PartialSchema for Credits {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(-MAX_CREDITS))
            .maximum(Some(MAX_CREDITS))
            .into()
    }
}

impl utoipa::ToSchema for Credits {}

impl Credits {
    pub fn new(n: i64) -> Result<Credits, String> {
        if n.checked_abs().is_some_and(|a| a <= MAX_CREDITS) {
            Ok(Credits(n))
        } else {
            Err(out_of_range(n))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

fn out_of_range(n: impl std::fmt::Display) -> String {
    format!("amount {n} is out of range: at most {MAX_CREDITS} credits at once")
}

fn not_whole(s: impl std::fmt::Display) -> String {
    format!("amount must be a whole number of credits, got {s}")
}

impl FromStr for Credits {
    type Err = String;

    fn from_str(s: &str) -> Result<Credits, String> {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        match s.trim().parse::<i64>() {
            Ok(n) => Credits::new(n),
            Err(e) if matches!(e.kind(), PosOverflow | NegOverflow) => Err(out_of_range(s)),
            Err(_) => Err(not_whole(s)),
        }
    }
}

impl TryFrom<Value> for Credits {
    type Error = String;

    fn try_from(v: Value) -> Result<Credits, String> {
        let Value::Number(n) = &v else {
            return Err(format!("amount must be a JSON integer, got {v}"));
        };
        if let Some(i) = n.as_i64() {
            return Credits::new(i);
        }
        // Not an i64: either beyond it, or written with a fraction or exponent.
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() > MAX_CREDITS as f64 => Err(out_of_range(n)),
            _ if n.is_u64() => Err(out_of_range(n)),
            _ => Err(not_whole(n)),
        }
    }
}

/// `POST /accounts`, `reelay account create`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub name: String,
    #[serde(default)]
    pub credits: Option<Credits>,
    #[serde(default)]
    pub price_multiplier: Option<f64>,
    #[serde(default)]
    pub max_active_tasks: Option<i64>,
}

/// `PATCH /accounts/{id}`, `reelay account set`. In `max_active_tasks`, absent leaves the cap
/// as it is and `null` clears it (back to the configured default).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    #[serde(default)]
    pub price_multiplier: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    pub max_active_tasks: Option<Option<i64>>,
    /// How long the account's media are kept, seconds; `null` = the configured default.
    #[serde(default, deserialize_with = "present")]
    pub retention_seconds: Option<Option<i64>>,
}

/// Longest media retention, configured or per account: ten years.
pub const MAX_RETENTION_SECONDS: u64 = 10 * 365 * 24 * 3600;

fn check_retention(seconds: i64) -> Result<i64, AdminError> {
    reelay_core::setting::in_range(
        "retention_seconds",
        seconds,
        1,
        MAX_RETENTION_SECONDS as i64,
    )
    .map_err(|e| AdminError::invalid(e.to_string()))?;
    Ok(seconds)
}

/// Tells an absent field (`None`, via `default`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Topup {
    pub amount: Credits,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    pub amount: Credits,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountCreated {
    pub account_id: String,
    /// Shown only in this answer; only its hash is stored.
    pub api_key: String,
    /// Signs the account's webhooks (`whsec_...`); shown again by the webhook-secret route.
    pub webhook_secret: String,
    pub account: Account,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyCreated {
    pub key_id: String,
    pub account_id: String,
    /// Shown only in this answer; only its hash is stored.
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerReport {
    pub ok: bool,
    pub violations: Vec<LedgerViolation>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskDetail {
    pub task: Task,
    pub events: Vec<TaskEvent>,
}

fn check_name(name: &str) -> Result<&str, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AdminError::invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name)
}

fn check_multiplier(m: f64) -> Result<f64, AdminError> {
    // NaN fails both comparisons, so it is refused too.
    if (MIN_PRICE_MULTIPLIER..=MAX_PRICE_MULTIPLIER).contains(&m) {
        Ok(m)
    } else {
        Err(AdminError::invalid(format!(
            "price_multiplier must be between {MIN_PRICE_MULTIPLIER} and {MAX_PRICE_MULTIPLIER}, got {m}"
        )))
    }
}

fn check_cap(cap: i64) -> Result<i64, AdminError> {
    if (1..=MAX_ACTIVE_TASKS_LIMIT).contains(&cap) {
        Ok(cap)
    } else {
        Err(AdminError::invalid(format!(
            "max_active_tasks must be between 1 and {MAX_ACTIVE_TASKS_LIMIT}, got {cap}"
        )))
    }
}

fn check_reason(reason: &str) -> Result<&str, AdminError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(AdminError::invalid(format!(
            "reason must be at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason)
}

/// The ledger limit of `GET .../ledger?limit=N` and `reelay ledger show --limit N`.
pub fn check_ledger_limit(limit: Option<i64>) -> Result<i64, AdminError> {
    let limit = limit.unwrap_or(DEFAULT_LEDGER_LIMIT);
    if (1..=MAX_LEDGER_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(AdminError::invalid(format!(
            "limit must be between 1 and {MAX_LEDGER_LIMIT}, got {limit}"
        )))
    }
}

fn no_account(id: &str) -> AdminError {
    AdminError::NotFound(format!("no account {id}"))
}

pub async fn get_account(store: &dyn Store, id: &str) -> Result<Account, AdminError> {
    store.get_account(id).await?.ok_or_else(|| no_account(id))
}

pub async fn list_accounts(store: &dyn Store) -> Result<Vec<Account>, AdminError> {
    Ok(store.list_accounts().await?)
}

/// Creates the account with its first API key. Everything is checked before the first write.
pub async fn create_account(
    store: &dyn Store,
    new: NewAccount,
) -> Result<AccountCreated, AdminError> {
    let name = check_name(&new.name)?;
    let credits = new.credits.map_or(0, Credits::get);
    if credits < 0 {
        return Err(AdminError::invalid(format!(
            "credits must not be negative, got {credits}"
        )));
    }
    let multiplier = new.price_multiplier.map(check_multiplier).transpose()?;
    let cap = new.max_active_tasks.map(check_cap).transpose()?;

    let api_key = reelay_store::generate_api_key();
    let webhook_secret = reelay_store::generate_webhook_secret();
    // One transaction, and nothing read after it: an error answer never hides an account.
    let (account, _) = store
        .open_account(&reelay_store::NewAccount {
            name: name.to_string(),
            credits,
            price_multiplier: multiplier,
            max_active_tasks: cap,
            key: Some(reelay_store::NewKey::for_key(&api_key)),
            webhook_secret: Some(webhook_secret.clone()),
        })
        .await?;
    Ok(AccountCreated {
        account_id: account.id.clone(),
        api_key,
        webhook_secret,
        account,
    })
}

/// Changes an account's price multiplier and/or live-task cap. The caller running an API
/// server should drop its cached key lookups, which carry the account.
pub async fn update_account(
    store: &dyn Store,
    id: &str,
    change: AccountChange,
) -> Result<Account, AdminError> {
    if change.price_multiplier.is_none()
        && change.max_active_tasks.is_none()
        && change.retention_seconds.is_none()
    {
        return Err(AdminError::invalid(
            "nothing to change: give price_multiplier, max_active_tasks and/or retention_seconds",
        ));
    }
    let retention = match change.retention_seconds {
        Some(Some(s)) => Some(Some(check_retention(s)?)),
        other => other,
    };
    let multiplier = change.price_multiplier.map(check_multiplier).transpose()?;
    let cap = match change.max_active_tasks {
        Some(Some(cap)) => Some(Some(check_cap(cap)?)),
        other => other,
    };
    let mut account = store
        .set_account_limits(id, multiplier, cap)
        .await?
        .ok_or_else(|| no_account(id))?;
    if let Some(seconds) = retention {
        // Applies to tasks archived from now on; archived media keep the expiry they got.
        account = store
            .set_account_retention(id, seconds)
            .await?
            .ok_or_else(|| no_account(id))?;
    }
    Ok(account)
}

pub async fn topup(store: &dyn Store, id: &str, topup: Topup) -> Result<Account, AdminError> {
    let amount = topup.amount.get();
    if amount <= 0 {
        return Err(AdminError::invalid(format!(
            "top-up amount must be positive, got {amount} (use an adjustment to take credits away)"
        )));
    }
    let reason = check_reason(topup.reason.as_deref().unwrap_or(""))?;
    let reason = if reason.is_empty() { "top-up" } else { reason };
    credited(
        store.credit(id, LedgerKind::Topup, amount, reason).await?,
        id,
        amount,
    )
}

pub async fn adjust(store: &dyn Store, id: &str, adj: Adjustment) -> Result<Account, AdminError> {
    let amount = adj.amount.get();
    if amount == 0 {
        return Err(AdminError::invalid("adjustment amount must not be zero"));
    }
    let reason = check_reason(&adj.reason)?;
    if reason.is_empty() {
        return Err(AdminError::invalid(
            "an adjustment needs a reason (it is kept in the ledger)",
        ));
    }
    credited(
        store.credit(id, LedgerKind::Adjust, amount, reason).await?,
        id,
        amount,
    )
}

/// A credit's outcome as the operator's answer; a refusal wrote nothing.
fn credited(outcome: Credited, id: &str, amount: i64) -> Result<Account, AdminError> {
    match outcome {
        Credited::Done(account) => Ok(account),
        Credited::NoAccount => Err(no_account(id)),
        Credited::WouldGoNegative { available } => Err(AdminError::InsufficientBalance(format!(
            "adjustment of {amount} would make the balance of {id} negative ({available} available)"
        ))),
        Credited::OverCeiling { balance } => Err(AdminError::BalanceLimit(format!(
            "{amount} more credits would take the balance of {id} ({balance}) past the largest \
             balance an account may have ({MAX_BALANCE})"
        ))),
    }
}

/// Ledger entries of an account, newest first.
pub async fn ledger(
    store: &dyn Store,
    id: &str,
    limit: Option<i64>,
) -> Result<Vec<LedgerEntry>, AdminError> {
    let limit = check_ledger_limit(limit)?;
    get_account(store, id).await?;
    let mut entries = store.ledger(id, limit).await?;
    // The store answers the newest `limit` entries oldest first.
    entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
    Ok(entries)
}

pub async fn create_key(store: &dyn Store, account_id: &str) -> Result<KeyCreated, AdminError> {
    let api_key = reelay_store::generate_api_key();
    let hash = reelay_store::hash_api_key(&api_key);
    let key_id = store
        .create_api_key(account_id, &hash, &api_key[..12])
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => no_account(account_id),
            other => other.into(),
        })?;
    Ok(KeyCreated {
        key_id,
        account_id: account_id.to_string(),
        api_key,
    })
}

pub async fn list_keys(store: &dyn Store, account_id: &str) -> Result<Vec<ApiKey>, AdminError> {
    get_account(store, account_id).await?;
    Ok(store.list_api_keys(account_id).await?)
}

/// Revokes a live key. The caller running an API server should drop its cached key lookups.
pub async fn revoke_key(store: &dyn Store, key_id: &str) -> Result<(), AdminError> {
    if store.revoke_api_key(key_id).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!(
            "no live key {key_id} (unknown or already revoked)"
        )))
    }
}

pub async fn verify_ledger(store: &dyn Store) -> Result<LedgerReport, AdminError> {
    let violations = store.verify_ledger().await?;
    Ok(LedgerReport {
        ok: violations.is_empty(),
        violations,
    })
}

pub async fn task(store: &dyn Store, id: &str) -> Result<TaskDetail, AdminError> {
    let task = existing_task(store, id).await?;
    let events = store.task_events(id).await?;
    Ok(TaskDetail { task, events })
}

/// `GET /accounts/{id}/webhook-secret`, `reelay webhook secret`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookSecretView {
    pub webhook_secret: String,
    /// The rotated-out secret while it still signs (both signatures are sent), else `null`.
    pub previous: Option<String>,
}

/// `POST /accounts/{id}/webhook-secret/rotate`, `reelay webhook secret --rotate`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the old secret keeps signing; default `webhooks.secret_grace_seconds`.
    #[serde(default)]
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub webhook_secret: String,
    /// Until when (ms since the epoch) the old secret keeps signing next to the new one. With
    /// a grace of 0 this is the time of the rotation: the old secret signs nothing more.
    pub previous_valid_until: i64,
}

/// An outbox message with every attempt made at it, oldest first. The message's fields are
/// the store's, except that its attempt counter is the list itself (its length).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookDetail {
    /// `evt_...`: the `webhook-id` header, the same on every attempt and redelivery.
    pub id: String,
    pub account_id: String,
    pub task_id: String,
    pub seq: i64,
    pub event_type: String,
    pub url: String,
    /// The exact body that is signed and sent.
    pub payload: String,
    pub schedule: Option<Vec<u64>>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub attempts: Vec<WebhookAttempt>,
}

impl WebhookDetail {
    fn new(m: WebhookMessage, attempts: Vec<WebhookAttempt>) -> WebhookDetail {
        WebhookDetail {
            id: m.id,
            account_id: m.account_id,
            task_id: m.task_id,
            seq: m.seq,
            event_type: m.event_type,
            url: m.url,
            payload: m.payload,
            schedule: m.schedule,
            state: m.state,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error,
            created_at: m.created_at,
            delivered_at: m.delivered_at,
            attempts,
        }
    }
}

/// `POST /tasks/{id}/webhooks/redeliver`, `reelay webhook redeliver`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redelivery {
    /// One message (delivered or failed) of the task; absent = every failed message.
    #[serde(default)]
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Redelivered {
    pub redelivered: u64,
}

/// Milliseconds since the epoch as RFC 3339 in UTC, for the commands' text output.
pub fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The grace period of a rotation, in milliseconds.
pub fn check_grace(grace_seconds: Option<i64>, default_ms: i64) -> Result<i64, AdminError> {
    match grace_seconds {
        None => Ok(default_ms.max(0)),
        Some(s) if (0..=MAX_GRACE_SECONDS).contains(&s) => Ok(s * 1000),
        Some(s) => Err(AdminError::invalid(format!(
            "grace_seconds must be between 0 and {MAX_GRACE_SECONDS} (a week), got {s}"
        ))),
    }
}

/// The account's webhook signing secrets. An account from before webhooks gets its first
/// secret here.
pub async fn webhook_secret(
    store: &dyn Store,
    account_id: &str,
) -> Result<WebhookSecretView, AdminError> {
    let secrets = store
        .webhook_secrets(account_id)
        .await?
        .ok_or_else(|| no_account(account_id))?;
    Ok(WebhookSecretView {
        webhook_secret: secrets.current,
        previous: secrets.previous,
    })
}

/// A new signing secret; the current one keeps signing (next to it) for the grace period.
/// `default_grace_ms` is the configured `webhooks.secret_grace_seconds`.
pub async fn rotate_webhook_secret(
    store: &dyn Store,
    account_id: &str,
    rotation: Rotation,
    default_grace_ms: i64,
) -> Result<RotatedSecret, AdminError> {
    let grace_ms = check_grace(rotation.grace_seconds, default_grace_ms)?;
    // The store adds the grace to its own clock a moment later: this is never past it.
    let previous_valid_until = reelay_store::now_ms() + grace_ms;
    let webhook_secret = store
        .rotate_webhook_secret(account_id, grace_ms)
        .await?
        .ok_or_else(|| no_account(account_id))?;
    Ok(RotatedSecret {
        webhook_secret,
        previous_valid_until,
    })
}

/// The kie.ai-style callback HMAC key of an account (quick-start dialect): `null` clears it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacKey {
    pub key: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HmacKeySet {
    pub account_id: String,
    pub hmac_key_set: bool,
}

/// Sets or clears the key kie.ai-style `X-Webhook-Signature` headers are made with. The key is
/// a shared secret the account chose: 16 to 256 visible ASCII characters.
pub async fn set_webhook_hmac_key(
    store: &dyn Store,
    account_id: &str,
    body: HmacKey,
) -> Result<HmacKeySet, AdminError> {
    if let Some(k) = &body.key {
        if !(16..=256).contains(&k.len()) || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminError::InvalidRequest(
                "key must be 16 to 256 visible ASCII characters".into(),
            ));
        }
    }
    if !store
        .set_webhook_hmac_key(account_id, body.key.as_deref())
        .await?
    {
        return Err(no_account(account_id));
    }
    Ok(HmacKeySet {
        account_id: account_id.into(),
        hmac_key_set: body.key.is_some(),
    })
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUrl {
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookUrlSet {
    pub account_id: String,
    pub webhook_url: Option<String>,
}

/// Sets or clears the account's webhook URL (events of dialects without a per-request callback
/// URL: OpenAI's `video.completed` / `video.failed`). `check` is the SSRF guard's check on
/// the URL's face; deliveries are checked again when made.
pub async fn set_webhook_url(
    store: &dyn Store,
    check: impl Fn(&str) -> Result<(), String>,
    account_id: &str,
    body: WebhookUrl,
) -> Result<WebhookUrlSet, AdminError> {
    if let Some(u) = &body.url {
        if u.len() > 2048 {
            return Err(AdminError::invalid("url must be at most 2048 characters"));
        }
        check(u).map_err(|r| AdminError::invalid(format!("url is refused: {r}")))?;
    }
    if !store
        .set_webhook_url(account_id, body.url.as_deref())
        .await?
    {
        return Err(no_account(account_id));
    }
    Ok(WebhookUrlSet {
        account_id: account_id.into(),
        webhook_url: body.url,
    })
}

fn no_task(id: &str) -> AdminError {
    AdminError::NotFound(format!("no task {id}"))
}

async fn existing_task(store: &dyn Store, id: &str) -> Result<Task, AdminError> {
    store.get_task_by_id(id).await?.ok_or_else(|| no_task(id))
}

/// The task's outbox messages in order, each with its attempts.
pub async fn task_webhooks(
    store: &dyn Store,
    task_id: &str,
) -> Result<Vec<WebhookDetail>, AdminError> {
    existing_task(store, task_id).await?;
    let mut out = Vec::new();
    for m in store.webhook_messages(task_id).await? {
        let attempts = store.webhook_attempts(&m.id).await?;
        out.push(WebhookDetail::new(m, attempts));
    }
    Ok(out)
}

/// Queues messages again with their ids (receivers dedupe on them): the given one, delivered
/// or failed, or else every failed message of the task. A message still pending is refused
/// (`webhook_pending`): it is going to be sent anyway. The caller running the deliverer
/// should wake it.
pub async fn redeliver_webhooks(
    store: &dyn Store,
    task_id: &str,
    redelivery: Redelivery,
) -> Result<Redelivered, AdminError> {
    existing_task(store, task_id).await?;
    let Some(message_id) = redelivery.message_id else {
        let redelivered = store.redeliver_webhooks(task_id, None).await?;
        return Ok(Redelivered { redelivered });
    };
    let message_of_task = |m: Option<WebhookMessage>| m.filter(|m| m.task_id == task_id);
    let no_message =
        || AdminError::NotFound(format!("no webhook message {message_id} of task {task_id}"));
    let pending = || {
        AdminError::WebhookPending(format!(
            "webhook message {message_id} is pending: it is sent (or retried) without a redelivery"
        ))
    };
    let message =
        message_of_task(store.webhook_message(&message_id).await?).ok_or_else(no_message)?;
    if message.state == "pending" {
        return Err(pending());
    }
    let redelivered = store.redeliver_webhooks(task_id, Some(&message_id)).await?;
    if redelivered == 0 {
        // Someone queued it between the two reads.
        return Err(pending());
    }
    Ok(Redelivered { redelivered })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_json(v: Value) -> Result<Credits, String> {
        Credits::try_from(v)
    }

    #[test]
    fn credits_from_json_and_text_agree() {
        for (text, v) in [("10", json!(10)), ("-5", json!(-5)), ("0", json!(0))] {
            assert_eq!(text.parse::<Credits>(), from_json(v));
        }
        assert_eq!(
            from_json(json!(MAX_CREDITS)).map(Credits::get),
            Ok(MAX_CREDITS)
        );
        assert_eq!(
            from_json(json!(-MAX_CREDITS)).map(Credits::get),
            Ok(-MAX_CREDITS)
        );
    }

    #[test]
    fn credits_refuse_fractions_strings_and_huge_numbers() {
        let whole = |r: Result<Credits, String>| r.unwrap_err().contains("whole number");
        let range = |r: Result<Credits, String>| r.unwrap_err().contains("out of range");
        assert!(whole(from_json(json!(1.5))));
        assert!(whole("1.5".parse()));
        assert!(whole("ten".parse()));
        assert!(from_json(json!("10")).unwrap_err().contains("JSON integer"));
        assert!(from_json(Value::Null).is_err());
        assert!(range(from_json(json!(MAX_CREDITS + 1))));
        assert!(range(from_json(json!(u64::MAX))));
        assert!(range(from_json(json!(1e20))));
        assert!(range(from_json(json!(i64::MIN))));
        assert!(range("99999999999999999999".parse()));
        assert!(range("-1000000000000001".parse()));
    }

    #[test]
    fn credits_deserialize_inside_a_body() {
        let t: Topup = serde_json::from_value(json!({"amount": 7})).unwrap();
        assert_eq!(t.amount.get(), 7);
        let err = serde_json::from_value::<Topup>(json!({"amount": 7.5})).unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
        assert!(serde_json::from_value::<Topup>(json!({"amount": 7, "x": 1})).is_err());
    }

    #[test]
    fn account_change_tells_absent_from_null() {
        let c: AccountChange = serde_json::from_value(json!({})).unwrap();
        assert_eq!(c.max_active_tasks, None);
        let c: AccountChange = serde_json::from_value(json!({"max_active_tasks": null})).unwrap();
        assert_eq!(c.max_active_tasks, Some(None));
        let c: AccountChange = serde_json::from_value(json!({"max_active_tasks": 3})).unwrap();
        assert_eq!(c.max_active_tasks, Some(Some(3)));
    }

    #[test]
    fn limits_and_multipliers() {
        assert_eq!(check_ledger_limit(None).unwrap(), DEFAULT_LEDGER_LIMIT);
        assert!(check_ledger_limit(Some(0)).is_err());
        assert!(check_ledger_limit(Some(MAX_LEDGER_LIMIT + 1)).is_err());
        assert!(check_multiplier(0.0).is_err());
        assert!(check_multiplier(-1.0).is_err());
        assert!(check_multiplier(f64::NAN).is_err());
        assert!(check_multiplier(f64::INFINITY).is_err());
        assert!(check_multiplier(2.0).is_ok());
        assert!(check_multiplier(MIN_PRICE_MULTIPLIER).is_ok());
        assert!(check_multiplier(MAX_PRICE_MULTIPLIER).is_ok());
        assert!(check_multiplier(1e-9).is_err());
        assert!(check_multiplier(5e-324).is_err());
        assert!(check_multiplier(100.5).is_err());
        assert!(check_cap(0).is_err());
        assert!(check_cap(1).is_ok());
    }

    #[test]
    fn grace_periods() {
        assert_eq!(check_grace(None, 5_000).unwrap(), 5_000);
        assert_eq!(check_grace(Some(0), 5_000).unwrap(), 0);
        assert_eq!(
            check_grace(Some(MAX_GRACE_SECONDS), 0).unwrap(),
            MAX_GRACE_SECONDS * 1000
        );
        assert!(check_grace(Some(-1), 0).is_err());
        assert!(check_grace(Some(MAX_GRACE_SECONDS + 1), 0).is_err());
        assert!(serde_json::from_value::<Rotation>(json!({"grace_seconds": 1.5})).is_err());
        assert!(serde_json::from_value::<Rotation>(json!({"grace": 1})).is_err());
        assert!(serde_json::from_value::<Redelivery>(json!({"message_id": 5})).is_err());
    }
}
