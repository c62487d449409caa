//! Admin subcommands that work on the data dir or the configured database directly. The
//! checks and the operations are `reelay_api::admin::ops`, the same code the admin HTTP API
//! calls; this module only opens the store and prints.

use reelay_api::admin::ops::{
    self, AccountChange, Adjustment, Credits, NewAccount, Redelivery, Rotation, Topup,
    WebhookDetail,
};
use reelay_store::{Account, ApiKey, LedgerEntry};
use serde::Serialize;

use crate::config::Config;
use crate::serve::open_store;

/// Prints `value` as one line of JSON, or else the human form.
fn emit<T: Serialize>(as_json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        human(value);
    }
    Ok(())
}

fn cap_text(cap: Option<i64>) -> String {
    cap.map_or_else(|| "default".to_string(), |c| c.to_string())
}

fn account_line(a: &Account) -> String {
    format!(
        "{}  {}  available={} held={} price_multiplier={} max_active_tasks={} retention_seconds={}",
        a.id,
        a.name,
        a.credits_available,
        a.credits_held,
        a.price_multiplier,
        cap_text(a.max_active_tasks),
        cap_text(a.retention_seconds)
    )
}

pub struct AccountOptions {
    pub name: String,
    pub credits: Credits,
    pub price_multiplier: Option<f64>,
    pub max_active_tasks: Option<i64>,
}

pub async fn account_create(
    config: &Config,
    opts: AccountOptions,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let new = NewAccount {
        name: opts.name,
        credits: Some(opts.credits),
        price_multiplier: opts.price_multiplier,
        max_active_tasks: opts.max_active_tasks,
    };
    let created = ops::create_account(store.as_ref(), new).await?;
    emit(as_json, &created, |c| {
        println!(
            "account {} ({}) created with {} credits",
            c.account_id, c.account.name, c.account.credits_available
        );
        println!("API key (shown only this once): {}", c.api_key);
        println!(
            "webhook signing secret (`reelay webhook secret` shows it again): {}",
            c.webhook_secret
        );
    })
}

pub async fn account_list(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let accounts = ops::list_accounts(store.as_ref()).await?;
    emit(as_json, &serde_json::json!({ "data": accounts }), |_| {
        for a in &accounts {
            println!("{}", account_line(a));
        }
    })
}

pub async fn account_show(config: &Config, id: &str, as_json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let account = ops::get_account(store.as_ref(), id).await?;
    emit(as_json, &account, |a| println!("{}", account_line(a)))
}

/// Changes the multiplier and/or cap. A running server sees the change when its cached key
/// lookups expire (`limits.key_cache_seconds`), not at once as through the admin API.
pub async fn account_set(
    config: &Config,
    id: &str,
    change: AccountChange,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let account = ops::update_account(store.as_ref(), id, change).await?;
    emit(as_json, &account, |a| println!("{}", account_line(a)))
}

pub async fn topup(
    config: &Config,
    account_id: &str,
    amount: Credits,
    reason: Option<String>,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let account = ops::topup(store.as_ref(), account_id, Topup { amount, reason }).await?;
    emit(as_json, &account, |a| println!("{}", account_line(a)))
}

pub async fn adjust(
    config: &Config,
    account_id: &str,
    amount: Credits,
    reason: String,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let account = ops::adjust(store.as_ref(), account_id, Adjustment { amount, reason }).await?;
    emit(as_json, &account, |a| println!("{}", account_line(a)))
}

pub async fn key_create(config: &Config, account_id: &str, as_json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let created = ops::create_key(store.as_ref(), account_id).await?;
    emit(as_json, &created, |c| {
        println!(
            "API key {} for {} (shown only this once): {}",
            c.key_id, c.account_id, c.api_key
        );
    })
}

fn key_line(k: &ApiKey) -> String {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else {
        "live"
    };
    format!("{}  {}...  {state}", k.id, k.prefix)
}

pub async fn key_list(config: &Config, account_id: &str, as_json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let keys = ops::list_keys(store.as_ref(), account_id).await?;
    emit(as_json, &serde_json::json!({ "data": keys }), |_| {
        for k in &keys {
            println!("{}", key_line(k));
        }
    })
}

/// Revokes a key. A running server stops accepting it when its cached lookup expires
/// (seconds); the admin API's revoke takes effect on that instance at once.
pub async fn key_revoke(config: &Config, key_id: &str) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    ops::revoke_key(store.as_ref(), key_id).await?;
    println!("key {key_id} revoked");
    Ok(())
}

fn entry_line(e: &LedgerEntry) -> String {
    format!(
        "{}  {}  {:<7} {:>12}  {}  {}",
        e.seq,
        e.created_at,
        e.kind.as_str(),
        e.amount,
        e.task_id.as_deref().unwrap_or("-"),
        e.reason
    )
}

pub async fn ledger_show(
    config: &Config,
    account_id: &str,
    limit: Option<i64>,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let entries = ops::ledger(store.as_ref(), account_id, limit).await?;
    emit(as_json, &serde_json::json!({ "data": entries }), |_| {
        for e in &entries {
            println!("{}", entry_line(e));
        }
    })
}

/// Exits non-zero when the ledger is inconsistent, so scripts and cron jobs can alert on it.
pub async fn ledger_verify(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let report = ops::verify_ledger(store.as_ref()).await?;
    emit(as_json, &report, |r| {
        if r.ok {
            println!("ledger OK");
        }
        for v in &r.violations {
            println!(
                "account {} task {}: {}",
                v.account_id,
                v.task_id.as_deref().unwrap_or("-"),
                v.problem
            );
        }
    })?;
    if !report.ok {
        anyhow::bail!("the ledger has {} violation(s)", report.violations.len());
    }
    Ok(())
}

pub async fn task_show(config: &Config, id: &str) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let detail = ops::task(store.as_ref(), id).await?;
    println!("{}", serde_json::to_string_pretty(&detail)?);
    Ok(())
}

/// Shows the account's webhook signing secret or, with `rotate`, replaces it; the old one
/// keeps signing for `grace_seconds` (default `webhooks.secret_grace_seconds`).
pub async fn webhook_secret(
    config: &Config,
    account_id: &str,
    rotate: bool,
    grace_seconds: Option<i64>,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    if !rotate {
        let view = ops::webhook_secret(store.as_ref(), account_id).await?;
        return emit(as_json, &view, |v| {
            println!("{}", v.webhook_secret);
            if let Some(p) = &v.previous {
                println!("previous (still signing): {p}");
            }
        });
    }
    let default_ms = (config.webhooks.secret_grace_seconds as i64).saturating_mul(1000);
    let rotation = Rotation { grace_seconds };
    let rotated =
        ops::rotate_webhook_secret(store.as_ref(), account_id, rotation, default_ms).await?;
    emit(as_json, &rotated, |r| {
        println!("{}", r.webhook_secret);
        println!(
            "the previous secret keeps signing until {}",
            ops::time_text(r.previous_valid_until)
        );
    })
}

pub async fn webhook_hmac_key(
    config: &Config,
    account_id: &str,
    key: Option<String>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let done = ops::set_webhook_hmac_key(store.as_ref(), account_id, ops::HmacKey { key }).await?;
    if done.hmac_key_set {
        println!("callbacks of {account_id} now carry X-Webhook-Signature");
    } else {
        println!("callbacks of {account_id} no longer carry X-Webhook-Signature");
    }
    Ok(())
}

pub async fn webhook_url(
    config: &Config,
    account_id: &str,
    url: Option<String>,
) -> anyhow::Result<()> {
    let guard = reelay_outbound::Guard::new(&config.outbound_allow_cidrs)
        .map_err(|e| anyhow::anyhow!("invalid configuration: outbound_allow_cidrs: {e}"))?;
    let check = |u: &str| guard.check_url(u).map(|_| ()).map_err(|r| r.to_string());
    let store = open_store(config).await?;
    let done =
        ops::set_webhook_url(store.as_ref(), check, account_id, ops::WebhookUrl { url }).await?;
    match done.webhook_url {
        Some(u) => println!("events of {account_id} now go to {u}"),
        None => println!("{account_id} has no webhook URL now"),
    }
    Ok(())
}

fn webhook_lines(w: &WebhookDetail) {
    println!(
        "{}  #{} {}  {}  attempts={}  {}",
        w.id,
        w.seq,
        w.event_type,
        w.state,
        w.attempts.len(),
        w.url
    );
    for a in &w.attempts {
        println!(
            "    {}  {}  {}  {}ms  {}",
            a.n,
            ops::time_text(a.started_at),
            a.status.map_or_else(|| "-".to_string(), |s| s.to_string()),
            a.latency_ms,
            a.error.as_deref().unwrap_or("ok")
        );
    }
}

pub async fn webhook_list(config: &Config, task_id: &str, as_json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let messages = ops::task_webhooks(store.as_ref(), task_id).await?;
    emit(as_json, &serde_json::json!({ "data": messages }), |_| {
        for w in &messages {
            webhook_lines(w);
        }
    })
}

/// Queues the task's failed messages (or one message) again with the same ids. A running
/// server sends them at its next look at the outbox (`webhooks.idle_wakeup_ms`, 5 s by
/// default); the admin API's redelivery wakes it at once.
pub async fn webhook_redeliver(
    config: &Config,
    task_id: &str,
    message_id: Option<String>,
    as_json: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let done = ops::redeliver_webhooks(store.as_ref(), task_id, Redelivery { message_id }).await?;
    emit(as_json, &done, |d| {
        println!("{} webhook message(s) queued for redelivery", d.redelivered)
    })
}
