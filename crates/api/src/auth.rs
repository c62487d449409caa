//! API keys: lookup (cached), per-key rate limits and last-used bookkeeping.
//!
//! A key is looked up by its SHA-256 hash; answers (including "no such key") are cached for
//! `cache_ttl`, so revoking a key through another instance or the CLI takes effect within that
//! bound. Revoking through this instance's admin API clears the cache at once. Last-used times
//! are kept in memory and written in one batch every `touch_interval`, not once per request.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use moka::future::Cache;
use reelay_store::{hash_api_key, now_ms, Account, ApiKey, Store, StoreError};

use crate::AppState;

/// Who is calling: the account and the key used.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct KeysConfig {
    /// How long a lookup is trusted: the bound on how late a revocation elsewhere is seen.
    pub cache_ttl: Duration,
    /// Requests per second per key; 0 disables the limit.
    pub rate_per_second: u32,
    /// Requests a key may send at once after being idle.
    pub burst: u32,
    pub touch_interval: Duration,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            cache_ttl: Duration::from_secs(5),
            rate_per_second: 50,
            burst: 100,
            touch_interval: Duration::from_secs(30),
        }
    }
}

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

pub struct Keys {
    cache: Cache<String, Option<(ApiKey, Account)>>,
    limiter: Option<Limiter>,
    /// key id → last use (ms) not yet written.
    touched: DashMap<String, i64>,
    config: KeysConfig,
}

impl Keys {
    pub fn new(config: KeysConfig) -> Keys {
        let limiter = NonZeroU32::new(config.rate_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.burst.max(1)).expect("max(1) is non-zero");
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Keys {
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.cache_ttl)
                .build(),
            limiter,
            touched: DashMap::new(),
            config,
        }
    }

    /// Forget every cached lookup (after a revocation or an account change here).
    pub fn invalidate(&self) {
        self.cache.invalidate_all();
    }

    async fn lookup(
        &self,
        store: &dyn Store,
        hash: String,
    ) -> Result<Option<(ApiKey, Account)>, StoreError> {
        if let Some(hit) = self.cache.get(&hash).await {
            return Ok(hit);
        }
        let found = store.find_api_key(&hash).await?;
        self.cache.insert(hash, found.clone()).await;
        Ok(found)
    }

    fn check_rate(&self, key_id: &str) -> Result<(), AuthError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key_id.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AuthError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }

    /// Writes pending last-used times; called periodically and at shutdown.
    pub async fn flush_touches(&self, store: &dyn Store) -> Result<(), StoreError> {
        let pending: Vec<(String, i64)> = self
            .touched
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        store.touch_api_keys(&pending).await?;
        // Keep entries touched again since the snapshot for the next round.
        for (id, at) in pending {
            self.touched.remove_if(&id, |_, v| *v == at);
        }
        Ok(())
    }

    /// Background upkeep: last-used writes and trimming idle rate-limit state.
    pub async fn run_upkeep(self: Arc<Self>, store: Arc<dyn Store>) {
        // The first flush one interval after start, not at once: an `interval`'s first tick is
        // immediate, and would race the first requests for a write nobody needs yet.
        let period = self.config.touch_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.flush_touches(store.as_ref()).await {
                tracing::warn!(error = %e, "could not record API key last-used times");
            }
            if let Some(l) = &self.limiter {
                l.retain_recent();
            }
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Resolves an API key to its account and charges the key's rate limit.
pub async fn authenticate(state: &AppState, key: Option<&str>) -> Result<Principal, AuthError> {
    let key = key.ok_or(AuthError::Missing)?;
    // Bound the work an oversized header can cause before hashing.
    if key.len() > 512 {
        return Err(AuthError::Invalid);
    }
    let keys = &state.keys;
    let (k, account) = keys
        .lookup(state.store.as_ref(), hash_api_key(key))
        .await?
        .ok_or(AuthError::Invalid)?;
    keys.check_rate(&k.id)?;
    keys.touched.insert(k.id.clone(), now_ms());
    Ok(Principal {
        account,
        key_id: k.id,
    })
}
