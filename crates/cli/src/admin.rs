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
    let guard = config
        .outbound_guard()
        .map_err(crate::config::ConfigError::from)?;
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

// ---------------------------------------------------------------- channels

/// The fields `reelay channel add` and `set` take. Keys never on the command line (shell
/// history, `ps`): from an environment variable read now, or from stdin; sealed in the store.
#[derive(clap::Args, Debug, Default)]
pub struct ChannelFields {
    /// Read the upstream key from this environment variable (now, by this command).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Read the upstream key from the first line of stdin.
    #[arg(long, conflicts_with = "api_key_env")]
    pub api_key_stdin: bool,
    /// Lower is tried first.
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i32>,
    #[arg(long)]
    pub weight: Option<u32>,
    #[arg(long)]
    pub max_concurrent: Option<i64>,
    #[arg(long)]
    pub max_submits_per_second: Option<f64>,
    #[arg(long)]
    pub task_deadline_seconds: Option<u64>,
    #[arg(long)]
    pub health_probe_seconds: Option<u64>,
    /// A model it serves (repeat); none = every model.
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// `client=upstream` model name mapping (repeat).
    #[arg(long = "map")]
    pub model_map: Vec<String>,
    /// Add it switched off.
    #[arg(long)]
    pub disabled: bool,
}

impl ChannelFields {
    fn key(&self) -> anyhow::Result<Option<String>> {
        if let Some(var) = &self.api_key_env {
            return Ok(Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("--api-key-env: the environment variable {var} is not set")
            })?));
        }
        if self.api_key_stdin {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            return Ok(Some(line.trim().to_string()));
        }
        Ok(None)
    }

    /// The fields given, as the admin API's JSON.
    fn into_json(self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        if let Some(k) = self.key()? {
            m.insert("api_key".into(), json!(k));
        }
        let mut put = |k: &str, v: serde_json::Value| {
            if !v.is_null() {
                m.insert(k.into(), v);
            }
        };
        put("priority", json!(self.priority));
        put("weight", json!(self.weight));
        put("max_concurrent", json!(self.max_concurrent));
        put("max_submits_per_second", json!(self.max_submits_per_second));
        put("task_deadline_seconds", json!(self.task_deadline_seconds));
        put("health_probe_seconds", json!(self.health_probe_seconds));
        if !self.models.is_empty() {
            put("models", json!(self.models));
        }
        if !self.model_map.is_empty() {
            let mut map = serde_json::Map::new();
            for pair in &self.model_map {
                let (client, upstream) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--map {pair:?}: write client=upstream"))?;
                map.insert(client.trim().into(), json!(upstream.trim()));
            }
            put("model_map", serde_json::Value::Object(map));
        }
        if self.disabled {
            put("enabled", json!(false));
        }
        Ok(m)
    }
}

fn print_done(what: &str) {
    println!("{what} (running instances apply it within engine.channels_reload_ms)");
}

pub async fn channel_add(
    config: &Config,
    name: &str,
    kind: &str,
    base_url: &str,
    fields: ChannelFields,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let mut body = fields.into_json()?;
    body.insert("name".into(), name.into());
    body.insert("kind".into(), kind.into());
    body.insert("base_url".into(), base_url.into());
    reelay_api::admin::channels::add(store.as_ref(), serde_json::Value::Object(body)).await?;
    print_done(&format!("channel {name} added"));
    Ok(())
}

pub async fn channel_set(
    config: &Config,
    name: &str,
    fields: ChannelFields,
    clear_key: bool,
    base_url: Option<String>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let mut patch = fields.into_json()?;
    if clear_key {
        patch.insert("api_key".into(), serde_json::Value::Null);
    }
    if let Some(u) = base_url {
        patch.insert("base_url".into(), u.into());
    }
    reelay_api::admin::channels::set(store.as_ref(), name, patch).await?;
    print_done(&format!("channel {name} changed"));
    Ok(())
}

pub async fn channel_switch(
    config: &Config,
    name: &str,
    on: bool,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    reelay_api::admin::channels::switch(store.as_ref(), name, on, reason.as_deref()).await?;
    print_done(&format!(
        "channel {name} {}",
        if on { "enabled" } else { "disabled" }
    ));
    Ok(())
}

pub async fn channel_remove(config: &Config, name: &str) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    reelay_api::admin::channels::remove(store.as_ref(), name).await?;
    print_done(&format!("channel {name} removed"));
    Ok(())
}

/// The running server's view (breaker, rates, latency), when it answers.
async fn live_views(config: &Config) -> Option<Vec<serde_json::Value>> {
    let token = config.admin_token.as_ref()?;
    let url = format!("http://{}/admin/v1/channels", config.listen);
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body: serde_json::Value = resp.json().await.ok()?;
    body.get("data")?.as_array().cloned()
}

pub async fn channel_list(
    config: &Config,
    name: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    let rows: Vec<serde_json::Value> = match live_views(config).await {
        Some(v) => v,
        None => {
            if !as_json {
                eprintln!(
                    "(no running server answered at {} with the admin token: stored configuration only)",
                    config.listen
                );
            }
            let store = open_store(config).await?;
            reelay_api::admin::channels::list_stored(store.as_ref())
                .await?
                .into_iter()
                .map(|v| serde_json::to_value(v).unwrap_or_default())
                .collect()
        }
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| name.is_none_or(|n| r["name"] == n))
        .collect();
    if let Some(n) = name {
        if rows.is_empty() {
            anyhow::bail!("no channel named {n:?}");
        }
    }
    if as_json {
        if name.is_some() {
            println!("{}", serde_json::to_string(&rows[0])?);
        } else {
            println!("{}", serde_json::to_string(&rows)?);
        }
        return Ok(());
    }
    for r in &rows {
        let cfg = r.get("config").unwrap_or(r);
        let recent = &r["recent"];
        println!(
            "{}  kind={} enabled={}{} breaker={} in_flight={} cap={} priority={} weight={}",
            r["name"].as_str().unwrap_or("?"),
            r.get("kind")
                .or(cfg.get("kind"))
                .unwrap_or(&serde_json::Value::Null),
            r["enabled"],
            r["disabled_reason"]
                .as_str()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
            r.get("breaker").and_then(|b| b.as_str()).unwrap_or("-"),
            r["in_flight"],
            cfg["max_concurrent"],
            cfg["priority"],
            cfg["weight"],
        );
        if recent.is_object() {
            println!(
                "    last {}s: submits/min={:.1} polls/min={:.1} success={} latency p50/p95/p99 ms={}/{}/{}",
                recent["window_seconds"],
                recent["submits_per_minute"].as_f64().unwrap_or(0.0),
                recent["polls_per_minute"].as_f64().unwrap_or(0.0),
                recent["success_rate"],
                recent["latency_ms_p50"],
                recent["latency_ms_p95"],
                recent["latency_ms_p99"],
            );
        }
    }
    Ok(())
}
