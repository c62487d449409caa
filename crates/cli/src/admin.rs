//! Admin subcommands that work on the data dir or the configured database directly.

use serde_json::json;

use crate::config::Config;
use crate::serve::open_store;

pub async fn account_create(
    config: &Config,
    name: &str,
    credits: i64,
    as_json: bool,
) -> anyhow::Result<()> {
    if credits < 0 {
        anyhow::bail!("--credits must not be negative");
    }
    let store = open_store(config).await?;
    let account = store.create_account(name, credits).await?;
    let key = reelay_store::generate_api_key();
    store
        .create_api_key(&account.id, &reelay_store::hash_api_key(&key), &key[..12])
        .await?;
    if as_json {
        println!("{}", json!({"account_id": account.id, "api_key": key}));
    } else {
        println!(
            "account {} ({name}) created with {credits} credits",
            account.id
        );
        println!("API key (shown only this once): {key}");
    }
    Ok(())
}

pub async fn key_create(config: &Config, account_id: &str, as_json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let key = reelay_store::generate_api_key();
    store
        .create_api_key(account_id, &reelay_store::hash_api_key(&key), &key[..12])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if as_json {
        println!("{}", json!({"account_id": account_id, "api_key": key}));
    } else {
        println!("API key for {account_id} (shown only this once): {key}");
    }
    Ok(())
}

pub async fn task_show(config: &Config, id: &str) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let task = store
        .get_task_by_id(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no task {id}"))?;
    let events = store.task_events(id).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"task": task, "events": events}))?
    );
    Ok(())
}
