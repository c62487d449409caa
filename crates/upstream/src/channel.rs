use std::collections::BTreeMap;

use reelay_core::SettingError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Runway's official developer API (or anything speaking it).
    Runway,
    /// A reseller speaking the reverse format (`/runway/pro/generate`, `/runway/feed`).
    Reverse,
    /// A reseller speaking kie.ai's quick-start format (`/api/v1/runway/generate`,
    /// `record-detail`).
    Quickstart,
    /// reelay's simulator (in process for the built-in sandbox, or `reelay sim`): Runway's
    /// protocol plus a lookup by reference, which makes unknown outcomes reconcilable.
    Sandbox,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Runway => "runway",
            ChannelKind::Reverse => "reverse",
            ChannelKind::Quickstart => "quickstart",
            ChannelKind::Sandbox => "sandbox",
        }
    }
}

/// One upstream channel, as configured (in the file, or through the admin API). Serializing
/// it never writes the key, nor does `Debug` show it: what is stored, shown or logged of a
/// channel is everything else.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    pub base_url: String,
    /// The upstream key. Prefer `api_key_env`: keys belong in the environment, not in files.
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    /// Name of the environment variable holding the upstream key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Lower is tried first.
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Tasks this channel may hold upstream at once; beyond it tasks wait as `throttled`.
    #[serde(default)]
    pub max_concurrent: Option<i64>,
    /// Submits per second this channel takes at most (across instances); beyond it tasks
    /// wait their turn as `throttled`.
    #[serde(default)]
    pub max_submits_per_second: Option<f64>,
    /// Models this channel serves (client names); empty = every catalog model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Client model → the upstream's name for it. A mapped model is served even when
    /// `models` does not list it.
    #[serde(default)]
    pub model_map: BTreeMap<String, String>,
    /// A task on this channel not finished this long after its first submit fails (and is
    /// cancelled upstream); default `engine.task_deadline_seconds`.
    #[serde(default)]
    pub task_deadline_seconds: Option<u64>,
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_request_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_version")]
    pub runway_version: String,
    /// The channel's circuit breaker.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// Probe the upstream this often (seconds) with a cheap authenticated call; the outcome
    /// feeds the breaker. Off by default.
    #[serde(default)]
    pub health_probe_seconds: Option<u64>,
}

/// When a channel's circuit breaker opens, and for how long (see the engine's `breaker`).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    pub enabled: bool,
    /// Failures in a row that open it.
    pub consecutive_failures: u32,
    /// Or: this share of failures among at least `min_calls` calls within `window_seconds`.
    pub error_rate: f64,
    pub min_calls: u32,
    pub window_seconds: u64,
    /// The first opening; each failed probe doubles it, up to `max_open_seconds`.
    pub open_seconds: u64,
    pub max_open_seconds: u64,
    /// A half-open probe whose answer never came frees the way for another after this.
    pub probe_timeout_seconds: u64,
    /// Longest pause an upstream's `Retry-After` may impose.
    pub max_pause_seconds: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 5,
            error_rate: 0.5,
            min_calls: 20,
            window_seconds: 60,
            open_seconds: 15,
            max_open_seconds: 300,
            probe_timeout_seconds: 30,
            max_pause_seconds: 300,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_weight() -> u32 {
    1
}
fn default_connect_ms() -> u64 {
    5_000
}
fn default_request_ms() -> u64 {
    20_000
}
fn default_version() -> String {
    "2024-11-06".into()
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = serde_json::to_value(self).unwrap_or_default();
        if self.api_key.is_some() {
            shown["api_key"] = "<redacted>".into();
        }
        write!(f, "ChannelConfig {shown}")
    }
}

impl ChannelConfig {
    pub fn sandbox(base_url: String) -> ChannelConfig {
        ChannelConfig {
            name: "sandbox".into(),
            kind: ChannelKind::Sandbox,
            base_url,
            api_key: None,
            api_key_env: None,
            enabled: true,
            priority: 100,
            weight: 1,
            max_concurrent: None,
            max_submits_per_second: None,
            models: vec![],
            model_map: BTreeMap::new(),
            task_deadline_seconds: None,
            connect_timeout_ms: default_connect_ms(),
            request_timeout_ms: default_request_ms(),
            runway_version: default_version(),
            breaker: BreakerConfig::default(),
            health_probe_seconds: None,
        }
    }

    /// Checks every field; the error names the field (`base_url: ...`).
    pub fn validate(&self) -> Result<(), SettingError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(SettingError::new(
                "name",
                "1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
            ));
        }
        match url::Url::parse(&self.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(SettingError::new("base_url", "must be an http(s) URL")),
        }
        if self.base_url.len() > 2048 {
            return Err(SettingError::new("base_url", "at most 2048 characters"));
        }
        if self
            .api_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 4096)
        {
            return Err(SettingError::new("api_key", "1 to 4096 characters"));
        }
        if !(1..=10_000).contains(&self.weight) {
            return Err(SettingError::new("weight", "1 to 10000"));
        }
        if !(-1_000_000..=1_000_000).contains(&self.priority) {
            return Err(SettingError::new("priority", "-1000000 to 1000000"));
        }
        if self
            .max_concurrent
            .is_some_and(|c| !(1..=1_000_000).contains(&c))
        {
            return Err(SettingError::new("max_concurrent", "1 to 1000000"));
        }
        if self
            .max_submits_per_second
            .is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 100_000.0))
        {
            return Err(SettingError::new(
                "max_submits_per_second",
                "more than 0, at most 100000",
            ));
        }
        if self
            .task_deadline_seconds
            .is_some_and(|d| !(10..=7 * 86_400).contains(&d))
        {
            return Err(SettingError::new("task_deadline_seconds", "10 to 604800"));
        }
        if self
            .health_probe_seconds
            .is_some_and(|d| !(1..=86_400).contains(&d))
        {
            return Err(SettingError::new("health_probe_seconds", "1 to 86400"));
        }
        if !(100..=120_000).contains(&self.connect_timeout_ms) {
            return Err(SettingError::new("connect_timeout_ms", "100 to 120000"));
        }
        if !(100..=600_000).contains(&self.request_timeout_ms) {
            return Err(SettingError::new("request_timeout_ms", "100 to 600000"));
        }
        let bounded = |s: &String| !s.is_empty() && s.len() <= 128;
        if self.models.len() > 1000 || !self.models.iter().all(bounded) {
            return Err(SettingError::new(
                "models",
                "at most 1000 names of 1 to 128 characters",
            ));
        }
        if self.model_map.len() > 1000
            || !self.model_map.iter().all(|(k, v)| bounded(k) && bounded(v))
        {
            return Err(SettingError::new(
                "model_map",
                "at most 1000 entries of 1 to 128 characters",
            ));
        }
        let b = &self.breaker;
        if !(b.error_rate > 0.0 && b.error_rate <= 1.0) {
            return Err(SettingError::new(
                "breaker.error_rate",
                "more than 0, at most 1",
            ));
        }
        if b.consecutive_failures == 0 || b.open_seconds == 0 || b.max_open_seconds < b.open_seconds
        {
            return Err(SettingError::new("breaker", "consecutive_failures and open_seconds at least 1, max_open_seconds at least open_seconds"));
        }
        Ok(())
    }

    /// Whether this channel serves the client's `model`.
    pub fn serves_model(&self, model: &str) -> bool {
        (self.models.is_empty() && self.model_map.is_empty())
            || self.models.iter().any(|m| m == model)
            || self.model_map.contains_key(model)
    }

    /// The upstream's name for the client's `model`, when this channel maps it.
    pub fn upstream_model(&self, model: &str) -> Option<&str> {
        self.model_map.get(model).map(String::as_str)
    }

    /// The upstream key from the environment variable or the config, never logged.
    pub fn resolved_api_key(&self) -> Option<String> {
        self.api_key_env
            .as_ref()
            .and_then(|name| std::env::var(name).ok())
            .or_else(|| self.api_key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_never_serialized_nor_debug_printed() {
        let mut c = ChannelConfig::sandbox("http://127.0.0.1:9".into());
        c.api_key = Some("sk-never-shown".into());
        assert!(!serde_json::to_string(&c)
            .unwrap()
            .contains("sk-never-shown"));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("sk-never-shown") && debug.contains("<redacted>"),
            "{debug}"
        );
        c.validate().unwrap();
    }
}
