//! Channel registry operations with every rule about their inputs, for the admin HTTP API and
//! `reelay channel ...` alike. Writes go to the store; a running server applies them at once
//! when they came through its API (and every instance within `engine.channels_reload_ms`).
//!
//! A channel's key is write-only: it is sealed at rest and never answered. Channels defined
//! in the configuration file belong to the file (edit it and send SIGHUP); through the API
//! they may only be switched on and off.

use reelay_store::{ChannelSource, ChannelWrite, KeyChange, Store, StoredChannel};
use reelay_upstream::ChannelConfig;
use serde::Serialize;
use serde_json::{Map, Value};

use super::AdminError;

/// The built-in channel's name; no stored channel may take it.
pub const RESERVED_NAME: &str = "sandbox";
/// Longest reason an operator gives for switching a channel off.
pub const MAX_REASON_CHARS: usize = 500;

/// A stored channel as the CLI shows it without a running server: its configuration, never
/// its key.
#[derive(Debug, Serialize)]
pub struct StoredView {
    pub name: String,
    pub source: ChannelSource,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub removed: bool,
    pub has_key: bool,
    pub config: Value,
    pub in_flight: i64,
}

fn bad(e: impl std::fmt::Display) -> AdminError {
    AdminError::invalid(e.to_string())
}

/// Reads a channel from a JSON object as the file's `[[channels]]` entries are read (unknown
/// fields refused), and checks it.
fn parse_config(body: Value) -> Result<ChannelConfig, AdminError> {
    // serde's message for a wrong kind does not say which field it is about.
    const KINDS: [&str; 4] = ["runway", "reverse", "quickstart", "sandbox"];
    if let Some(kind) = body
        .get("kind")
        .filter(|k| !k.as_str().is_some_and(|k| KINDS.contains(&k)))
    {
        return Err(AdminError::invalid(format!(
            "kind: one of {} (not {kind})",
            KINDS.join(", ")
        )));
    }
    let cfg: ChannelConfig = serde_json::from_value(body).map_err(bad)?;
    cfg.validate().map_err(bad)?;
    if cfg.api_key_env.is_some() {
        // An environment variable of which instance? Keys given here are sealed in the store.
        return Err(AdminError::invalid(
            "api_key_env: not through the admin API; send api_key (it is sealed at rest)",
        ));
    }
    Ok(cfg)
}

async fn live(store: &dyn Store, name: &str) -> Result<StoredChannel, AdminError> {
    store
        .list_channels()
        .await?
        .into_iter()
        .find(|c| c.name == name && c.removed_at.is_none())
        .ok_or_else(|| AdminError::NotFound(format!("no channel named {name:?}")))
}

fn owned_by_admin(c: &StoredChannel) -> Result<(), AdminError> {
    match c.source {
        ChannelSource::Admin => Ok(()),
        ChannelSource::File => Err(AdminError::Conflict(format!(
            "channel {:?} is defined in the configuration file: change it there and send SIGHUP \
             (it can be enabled and disabled here)",
            c.name
        ))),
    }
}

/// Adds a channel. 409 when a live channel has the name.
pub async fn add(store: &dyn Store, body: Value) -> Result<ChannelConfig, AdminError> {
    let mut cfg = parse_config(body)?;
    if cfg.name == RESERVED_NAME {
        return Err(AdminError::invalid(
            "name: `sandbox` is reserved for the built-in channel",
        ));
    }
    if store
        .list_channels()
        .await?
        .iter()
        .any(|c| c.name == cfg.name && c.removed_at.is_none())
    {
        return Err(AdminError::Conflict(format!(
            "a channel named {:?} exists",
            cfg.name
        )));
    }
    let key = cfg.api_key.take();
    store
        .put_channel(&ChannelWrite {
            name: cfg.name.clone(),
            config: serde_json::to_value(&cfg).map_err(bad)?,
            key: key.map_or(KeyChange::Clear, KeyChange::Set),
            enabled: Some(cfg.enabled),
            source: ChannelSource::Admin,
        })
        .await?;
    Ok(cfg)
}

/// Changes some fields of an admin channel: `api_key` a string sets the key, `null` clears
/// it; `enabled` switches it; the rest replace the configuration's fields.
pub async fn set(
    store: &dyn Store,
    name: &str,
    patch: Map<String, Value>,
) -> Result<(), AdminError> {
    let current = live(store, name).await?;
    owned_by_admin(&current)?;
    if patch.is_empty() {
        return Err(AdminError::invalid("nothing to change"));
    }
    let mut merged = current.config.as_object().cloned().unwrap_or_default();
    let mut key = KeyChange::Keep;
    let mut enabled = None;
    for (k, v) in patch {
        match k.as_str() {
            "name" if v.as_str() != Some(name) => {
                return Err(AdminError::invalid(
                    "name: a channel cannot be renamed; add another",
                ))
            }
            "api_key" => {
                key = match v {
                    Value::Null => KeyChange::Clear,
                    Value::String(s) if !s.is_empty() && s.len() <= 4096 => KeyChange::Set(s),
                    _ => {
                        return Err(AdminError::invalid(
                            "api_key: a string of 1 to 4096 characters, or null",
                        ))
                    }
                }
            }
            "enabled" => {
                enabled = Some(
                    v.as_bool()
                        .ok_or_else(|| AdminError::invalid("enabled: true or false"))?,
                );
                merged.insert(k, v);
            }
            _ => {
                merged.insert(k, v);
            }
        }
    }
    let cfg = parse_config(Value::Object(merged))?;
    store
        .put_channel(&ChannelWrite {
            name: name.to_string(),
            config: serde_json::to_value(&cfg).map_err(bad)?,
            key,
            enabled,
            source: ChannelSource::Admin,
        })
        .await?;
    Ok(())
}

/// Switches a stored channel on (clearing an out-of-credit stop) or off, with why.
pub async fn switch(
    store: &dyn Store,
    name: &str,
    enabled: bool,
    reason: Option<&str>,
) -> Result<(), AdminError> {
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(AdminError::invalid(format!(
            "reason: at most {MAX_REASON_CHARS} characters"
        )));
    }
    let reason = reason.unwrap_or("disabled by an operator");
    if !store
        .set_channel_enabled(name, enabled, Some(reason))
        .await?
    {
        return Err(AdminError::NotFound(format!("no channel named {name:?}")));
    }
    Ok(())
}

/// Removes an admin channel: no new tasks go to it; tasks on it finish there.
pub async fn remove(store: &dyn Store, name: &str) -> Result<(), AdminError> {
    owned_by_admin(&live(store, name).await?)?;
    store.remove_channel(name).await?;
    Ok(())
}

/// Every live stored channel (for the CLI without a running server).
pub async fn list_stored(store: &dyn Store) -> Result<Vec<StoredView>, AdminError> {
    let in_flight = store.in_flight_by_channel().await?;
    let mut out = Vec::new();
    for c in store.list_channels().await? {
        let n = in_flight.get(&c.name).copied().unwrap_or(0);
        if c.removed_at.is_some() && n == 0 {
            continue;
        }
        out.push(StoredView {
            in_flight: n,
            has_key: c.api_key.is_some(),
            removed: c.removed_at.is_some(),
            name: c.name,
            source: c.source,
            enabled: c.enabled,
            disabled_reason: c.disabled_reason,
            config: c.config,
        });
    }
    Ok(out)
}
