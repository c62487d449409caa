//! The one configuration struct: defaults, then a TOML file (`--config`), then `REELAY_*`
//! environment variables (nested keys with `__`, e.g. `REELAY_ENGINE__WORKERS`), then flags.
//! Loaded once at start and validated; an error names the setting at fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use reelay_core::setting::{ensure, in_range};
use reelay_core::{Price, SettingError};
use reelay_engine::{EngineConfig, WebhookConfig};
use reelay_upstream::ChannelConfig;
use serde::{Deserialize, Serialize};

pub use reelay_api::admin::ops::MAX_RETENTION_SECONDS;

/// Why a configuration cannot be used. Every variant names the file or the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {} does not exist", .0.display())]
    NoFile(PathBuf),
    /// A key that does not parse, does not exist, or holds a value out of range.
    #[error("invalid configuration: {0}")]
    Setting(#[from] SettingError),
}

impl ConfigError {
    /// The key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::NoFile(_) => None,
            ConfigError::Setting(e) => Some(&e.key),
        }
    }
}

/// figment's error as ours: the dotted key, what is wrong, and where the value came from (the
/// file, or the environment variable by name).
impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> ConfigError {
        let mut path = e.path.clone();
        if let figment::error::Kind::UnknownField(field, _) = &e.kind {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
        }
        let key = if path.is_empty() {
            "(top level)".to_string()
        } else {
            path.join(".")
        };
        let origin = e.metadata.as_ref().map(|m| match &m.source {
            Some(source) => format!("{} {source}", m.name),
            // Only the environment provider has no source; name the variable as it is spelt.
            None => format!(
                "environment variable REELAY_{}",
                e.path.join("__").to_ascii_uppercase()
            ),
        });
        let problem = match origin {
            Some(origin) => format!("{} (from {origin})", e.kind),
            None => e.kind.to_string(),
        };
        ConfigError::Setting(SettingError::new(key, problem))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting. Its `Default` is the one place a default is written; `REELAY_*` variables
/// may set any top-level key it serializes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// SQLite file, media and other state live here.
    pub data_dir: PathBuf,
    /// `sqlite://...`; empty means `<data_dir>/reelay.db`.
    pub database_url: Option<String>,
    /// Base of the URLs reelay hands out (media); default `http://<listen>`.
    pub public_url: Option<String>,
    /// When set, `GET /metrics` is also served here, without the admin token (guard this
    /// address yourself); on the main listener it always needs the admin token.
    pub metrics_listen: Option<String>,
    /// Admin API token; when unset, one is generated on first start, printed once, and only its
    /// hash kept in the data dir.
    pub admin_token: Option<String>,
    /// Key sealing secrets at rest (64 hex digits); default `<data_dir>/secret.key`.
    pub secret_key: Option<String>,
    /// Run the built-in `sandbox` channel (the simulator, in process).
    pub sandbox: bool,
    /// How long a sandbox task runs.
    pub sandbox_run_seconds: f64,
    /// Media retention (an account may set its own).
    pub retention_seconds: u64,
    /// Media storage, links, archiving, derived frames and sweeping (`[media]`).
    pub media: reelay_media::MediaConfig,
    /// CIDRs exempt from the outbound SSRF guard, comma-separated.
    pub outbound_allow_cidrs: String,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// A catalog JSON file replacing the built-in one.
    pub catalog_file: Option<PathBuf>,
    /// Credits given to the `default` account created on first start.
    pub default_account_credits: i64,
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` wins when set.
    pub log: String,
    /// `text` (one line per event) or `json` (one JSON object per line, for a collector).
    pub log_format: LogFormat,
    pub engine: EngineConfig,
    pub channels: Vec<ChannelConfig>,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl_seconds: u64,
    /// Refund a client's cancel even after the upstream accepted the job (default: charge it).
    pub refund_cancel_after_submit: bool,
    pub limits: Limits,
    /// Connection hygiene: head, keep-alive and body deadlines, the connection cap (`[server]`).
    pub server: reelay_api::server::ServerConfig,
    pub runway: RunwayDialect,
    pub reverse: ReverseDialect,
    pub quickstart: QuickstartDialect,
    pub openai: OpenaiDialect,
    pub webhooks: WebhookConfig,
    /// Price overrides: `model` or `endpoint/model` → a price in the catalog's format.
    pub prices: BTreeMap<String, Price>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: "./reelay-data".into(),
            database_url: None,
            public_url: None,
            metrics_listen: None,
            admin_token: None,
            secret_key: None,
            sandbox: true,
            sandbox_run_seconds: 5.0,
            retention_seconds: 14 * 24 * 3600,
            media: reelay_media::MediaConfig::default(),
            outbound_allow_cidrs: String::new(),
            max_body_bytes: 24 * 1024 * 1024,
            catalog_file: None,
            default_account_credits: 100_000,
            log: "info".into(),
            log_format: LogFormat::Text,
            engine: EngineConfig::default(),
            channels: Vec::new(),
            idempotency_ttl_seconds: 24 * 3600,
            refund_cancel_after_submit: false,
            limits: Limits::default(),
            server: reelay_api::server::ServerConfig::default(),
            runway: RunwayDialect::default(),
            reverse: ReverseDialect::default(),
            quickstart: QuickstartDialect::default(),
            openai: OpenaiDialect::default(),
            webhooks: WebhookConfig::default(),
            prices: BTreeMap::new(),
        }
    }
}

/// Per-key request rates and per-account task caps.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests per second one API key may make (0 = unlimited).
    pub requests_per_second: u32,
    /// Requests a key may make at once after being idle.
    pub burst: u32,
    /// Live (unfinished) tasks per account unless the account sets its own cap; none = no cap.
    pub max_active_tasks: Option<i64>,
    /// How long an API key lookup is cached: a key revoked elsewhere stops working within this.
    pub key_cache_seconds: u64,
    /// How often last-used times of API keys are written.
    pub key_touch_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_second: 50,
            burst: 100,
            max_active_tasks: None,
            key_cache_seconds: 5,
            key_touch_seconds: 30,
        }
    }
}

/// Settings of the reverse (reseller) dialect.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReverseDialect {
    /// Refuse creates without `callback_url` (`callback_url_empty`), as CometAPI does.
    pub require_callback_url: bool,
    /// A JSON file replacing the built-in model/ratio mapping (`crates/core/catalog/reverse.json`).
    pub mapping_file: Option<PathBuf>,
}

/// Settings of OpenAI's `/v1/videos` dialect.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenaiDialect {
    /// A JSON file replacing the built-in mapping (`crates/core/catalog/openai.json`).
    pub mapping_file: Option<PathBuf>,
    /// Model names mapped onto catalog models over the mapping's own (`"sora-2" = "gen4.5"`):
    /// where old clients' `sora-2` / `sora-2-pro` land.
    pub aliases: BTreeMap<String, String>,
}

/// Settings of the quick-start (kie.ai-style) dialect.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuickstartDialect {
    /// Delays of the callback retries, seconds (kie.ai: 1, 5 and 15 minutes).
    pub callback_schedule_seconds: Vec<u64>,
    /// Zone of `generateTime`: `UTC` or an offset such as `+08:00`.
    pub time_zone: String,
    /// A JSON file replacing the built-in mapping (`crates/core/catalog/quickstart.json`).
    pub mapping_file: Option<PathBuf>,
}

impl Default for QuickstartDialect {
    fn default() -> Self {
        QuickstartDialect {
            callback_schedule_seconds: vec![60, 300, 900],
            time_zone: "UTC".into(),
            mapping_file: None,
        }
    }
}

/// Settings of the Runway official dialect.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunwayDialect {
    /// Status of "not enough credits": 402 (default) or 400 (what Runway itself answers).
    pub insufficient_credits_status: u16,
    /// `tier.maxMonthlyCreditSpend` that `GET /v1/organization` reports.
    pub max_monthly_credit_spend: i64,
}

impl Default for RunwayDialect {
    fn default() -> Self {
        RunwayDialect {
            insufficient_credits_status: 402,
            max_monthly_credit_spend: 1_000_000,
        }
    }
}

/// The top-level keys the environment may set: every key of `Config`. Other `REELAY_*`
/// variables (`REELAY_CONFIG`, the test suite's `REELAY_TEST_DATABASE_URL`) are not settings
/// and are left alone.
fn env_keys() -> Vec<String> {
    serde_json::to_value(Config::default())
        .ok()
        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
        .unwrap_or_default()
}

/// Command-line values that override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::NoFile(path.to_path_buf()));
            }
            fig = fig.merge(Toml::file(path));
        }
        let settings = env_keys();
        fig = fig.merge(Env::prefixed("REELAY_").split("__").filter(move |k| {
            let top = k
                .as_str()
                .split("__")
                .next()
                .unwrap_or("")
                .split('.')
                .next()
                .unwrap_or("");
            settings.iter().any(|known| top.eq_ignore_ascii_case(known))
        }));
        if let Some(l) = &overrides.listen {
            fig = fig.merge(Serialized::default("listen", l));
        }
        if let Some(d) = &overrides.data_dir {
            fig = fig.merge(Serialized::default("data_dir", d));
        }
        let config: Config = fig.extract()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), SettingError> {
        self.listen_addr()?;
        if let Some(addr) = &self.metrics_listen {
            ensure(
                addr.parse::<SocketAddr>().is_err(),
                "metrics_listen",
                "is not an address like 127.0.0.1:9100",
            )?;
        }
        in_range(
            "sandbox_run_seconds",
            self.sandbox_run_seconds,
            0.0,
            86_400.0,
        )?;
        if let Some(url) = &self.database_url {
            if Backend::of(url).is_none() {
                return Err(SettingError::new(
                    "database_url",
                    format!(
                        "must start with sqlite: or postgres:// (got {})",
                        redacted_url(url)
                    ),
                ));
            }
        }
        if let Some(u) = &self.public_url {
            ensure(
                !(u.starts_with("http://") || u.starts_with("https://")),
                "public_url",
                "must start with http:// or https://",
            )?;
        }
        ensure(
            !matches!(self.runway.insufficient_credits_status, 400 | 402),
            "runway.insufficient_credits_status",
            "must be 400 or 402",
        )?;
        ensure(
            self.runway.max_monthly_credit_spend < 0,
            "runway.max_monthly_credit_spend",
            "must not be negative",
        )?;
        self.server.validate().map_err(|e| e.within("server"))?;
        self.webhooks.validate().map_err(|e| e.within("webhooks"))?;
        self.outbound_guard()?;
        in_range(
            "retention_seconds",
            self.retention_seconds,
            1,
            MAX_RETENTION_SECONDS,
        )?;
        self.media.validate().map_err(|e| e.within("media"))?;
        reelay_api::dialects::quickstart::parse_zone(&self.quickstart.time_zone)
            .map_err(|e| SettingError::new("quickstart.time_zone", e))?;
        ensure(
            self.quickstart.callback_schedule_seconds.len() > 20,
            "quickstart.callback_schedule_seconds",
            "at most 20 retries",
        )?;
        ensure(
            self.idempotency_ttl_seconds == 0,
            "idempotency_ttl_seconds",
            "must be positive",
        )?;
        ensure(
            self.limits.max_active_tasks.is_some_and(|n| n < 1),
            "limits.max_active_tasks",
            "must be at least 1",
        )?;
        ensure(
            self.limits.key_touch_seconds == 0,
            "limits.key_touch_seconds",
            "must be positive",
        )?;
        ensure(
            self.admin_token.as_deref().is_some_and(|t| t.len() < 16),
            "admin_token",
            "must be at least 16 characters",
        )?;
        // Overrides must name catalog models; checked against the built-in catalog here and
        // against a catalog_file when it is loaded.
        if self.catalog_file.is_none() {
            reelay_core::Catalog::builtin()
                .override_prices(&self.prices)
                .map_err(|e| SettingError::new("prices", e.to_string()))?;
        }
        ensure(
            self.max_body_bytes < 1024,
            "max_body_bytes",
            "must be at least 1024",
        )?;
        let mut names = std::collections::HashSet::new();
        for ch in &self.channels {
            ensure(
                ch.name == "sandbox" && self.sandbox,
                "channels",
                "the name `sandbox` is reserved for the built-in channel",
            )?;
            ensure(
                !names.insert(ch.name.clone()),
                "channels",
                &format!("duplicate channel name {:?}", ch.name),
            )?;
            ch.validate()
                .map_err(|e| e.within(&format!("channels.{}", ch.name)))?;
        }
        let longest = self
            .channels
            .iter()
            .map(|c| c.request_timeout_ms)
            .max()
            .unwrap_or(20_000);
        self.engine
            .validate(longest)
            .map_err(|e| e.within("engine"))?;
        Ok(())
    }

    /// The SSRF guard of callbacks and downloads, with `outbound_allow_cidrs` let through.
    pub fn outbound_guard(&self) -> Result<reelay_outbound::Guard, SettingError> {
        reelay_outbound::Guard::new(&self.outbound_allow_cidrs)
            .map_err(|e| SettingError::new("outbound_allow_cidrs", e))
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, SettingError> {
        self.listen.parse().map_err(|_| {
            SettingError::new(
                "listen",
                format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
            )
        })
    }

    /// The configuration in force, as TOML, with every secret masked: what `config check`
    /// prints. Unset optional keys are left out.
    pub fn effective_toml(&self) -> Result<String, SettingError> {
        let shown = |e: toml::ser::Error| SettingError::new("(top level)", e.to_string());
        let mut value = toml::Value::try_from(self).map_err(shown)?;
        mask_secrets(&mut value);
        if let Some(url) = &self.database_url {
            value["database_url"] = toml::Value::String(masked_url(url));
        }
        // Channel keys are never serialized; say which channels have one.
        if let Some(toml::Value::Array(channels)) = value.get_mut("channels") {
            for (shown, ch) in channels.iter_mut().zip(&self.channels) {
                if let (Some(table), Some(_)) = (shown.as_table_mut(), &ch.api_key) {
                    table.insert("api_key".into(), toml::Value::String(MASK.into()));
                }
            }
        }
        toml::to_string(&value).map_err(shown)
    }

    /// The store backend the database URL names (checked by `validate`).
    pub fn backend(&self) -> Backend {
        Backend::of(&self.database_url()).unwrap_or(Backend::Sqlite)
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("reelay.db").display()))
    }

    /// The local media folder: `media.local_dir`, else `<data_dir>/media`.
    pub fn media_dir(&self) -> PathBuf {
        self.media
            .local_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("media"))
    }
}

/// What a secret shows as.
const MASK: &str = "<secret>";

/// Keys holding a secret, wherever they sit in the tree.
const SECRET_KEYS: &[&str] = &[
    "admin_token",
    "secret_key",
    "api_key",
    "access_key_id",
    "secret_access_key",
    "session_token",
];

fn mask_secrets(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, v) in table.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *v = toml::Value::String(MASK.into());
                } else {
                    mask_secrets(v);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// A database URL with its password (and query, which may carry one) masked; the rest kept,
/// since which server and database is what an operator checks.
fn masked_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.scheme() != "sqlite" => {
            if u.password().is_some() {
                let _ = u.set_password(Some(MASK));
            }
            if u.query().is_some() {
                u.set_query(Some(MASK));
            }
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => MASK.into(),
    }
}

/// The backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => Some(Backend::Sqlite),
            Some("postgres" | "postgresql") => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// A database URL fit for a message or a log: scheme, host and port of a server, the path of
/// a SQLite file; never a user name or password.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() != "sqlite" && u.has_host() => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Ok(u) if u.scheme() == "sqlite" => url.split('?').next().unwrap_or("").to_string(),
        _ => "an unparsable URL".into(),
    }
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type; not ours to shrink.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_named_without_credentials() {
        assert_eq!(
            redacted_url("postgres://u:secret@db.internal:6432/reelay?sslmode=require"),
            "postgres://db.internal:6432"
        );
        assert_eq!(
            redacted_url("sqlite:///var/lib/reelay.db?mode=rwc"),
            "sqlite:///var/lib/reelay.db"
        );
        assert_eq!(redacted_url("mysql//u:secret@x"), "an unparsable URL");
        assert_eq!(Backend::of("postgresql://x/y"), Some(Backend::Postgres));
        assert_eq!(Backend::of("mysql://x/y"), None);
    }

    // figment::Jail isolates the environment and files of each case.
    #[test]
    fn env_overrides_file_and_bad_values_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "r.toml",
                "listen = \"127.0.0.1:9000\"\n[engine]\nworkers = 3\n",
            )?;
            let c = Config::load(Some(Path::new("r.toml")), &Overrides::default()).unwrap();
            assert_eq!(c.listen, "127.0.0.1:9000");
            assert_eq!(c.engine.workers, 3);

            jail.set_env("REELAY_LISTEN", "127.0.0.1:9001");
            jail.set_env("REELAY_ENGINE__WORKERS", "7");
            jail.set_env("REELAY_SANDBOX_RUN_SECONDS", "1.5");
            jail.set_env("REELAY_TEST_DATABASE_URL", "postgres://ignored");
            let c = Config::load(Some(Path::new("r.toml")), &Overrides::default()).unwrap();
            assert_eq!(c.listen, "127.0.0.1:9001");
            assert_eq!(c.engine.workers, 7);
            assert_eq!(c.sandbox_run_seconds, 1.5);

            let flags = Overrides {
                listen: Some("127.0.0.1:9002".into()),
                data_dir: Some("/tmp/d".into()),
            };
            let c = Config::load(Some(Path::new("r.toml")), &flags).unwrap();
            assert_eq!(c.listen, "127.0.0.1:9002");
            assert_eq!(c.database_url(), "sqlite:///tmp/d/reelay.db");

            jail.set_env("REELAY_ENGINE__WORKERS", "many");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert_eq!(e.key(), Some("engine.workers"), "{e}");
            assert!(e.to_string().contains("REELAY_ENGINE__WORKERS"), "{e}");

            jail.set_env("REELAY_ENGINE__WORKERS", "0");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert_eq!(e.key(), Some("engine.workers"), "{e}");

            jail.create_file("typo.toml", "lisen = \"x\"\n")?;
            let e = Config::load(Some(Path::new("typo.toml")), &Overrides::default()).unwrap_err();
            assert_eq!(e.key(), Some("lisen"), "{e}");
            assert!(e.to_string().contains("typo.toml"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn defaults_need_no_setup() {
        figment::Jail::expect_with(|_| {
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.listen, "127.0.0.1:8080");
            assert_eq!(c.data_dir, PathBuf::from("./reelay-data"));
            assert!(c.sandbox);
            assert_eq!(c.sandbox_run_seconds, 5.0);
            assert_eq!(c.retention_seconds, 1_209_600);
            assert_eq!(c.media.storage, reelay_media::StorageKind::Local);
            assert_eq!(c.media_dir(), PathBuf::from("./reelay-data/media"));
            Ok(())
        });
    }

    #[test]
    fn media_settings_come_from_file_and_env_and_name_the_bad_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "m.toml",
                "[media]\nstorage = \"s3\"\nredirect = true\n[media.s3]\npath_style = true\n",
            )?;
            let e = Config::load(Some(Path::new("m.toml")), &Overrides::default()).unwrap_err();
            assert_eq!(e.key(), Some("media.s3.bucket"), "{e}");
            jail.set_env("REELAY_MEDIA__S3__BUCKET", "clips");
            jail.set_env("REELAY_MEDIA__S3__ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("REELAY_MEDIA__LINK_TTL_SECONDS", "3600");
            let c = Config::load(Some(Path::new("m.toml")), &Overrides::default()).unwrap();
            assert_eq!(c.media.storage, reelay_media::StorageKind::S3);
            assert_eq!(c.media.s3.bucket, "clips");
            assert!(c.media.s3.path_style && c.media.redirect);
            assert_eq!(c.media.link_ttl_seconds, 3600);

            jail.create_file("typo.toml", "[media]\nstorag = \"s3\"\n")?;
            let e = Config::load(Some(Path::new("typo.toml")), &Overrides::default()).unwrap_err();
            assert_eq!(e.key(), Some("media.storag"), "{e}");
            jail.set_env("REELAY_RETENTION_SECONDS", "0");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert_eq!(e.key(), Some("retention_seconds"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_effective_configuration_shows_no_secret() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "s.toml",
                r#"
admin_token = "admin-token-0123456789-secret"
secret_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
database_url = "postgres://reelay:pg-password-secret@db:5432/reelay?sslmode=require"
[media]
storage = "s3"
[media.s3]
bucket = "clips"
access_key_id = "AKIA-SECRET-ID"
secret_access_key = "s3-secret-key"
[[channels]]
name = "primary"
kind = "runway"
base_url = "https://api.example"
api_key = "sk-upstream-secret"
"#,
            )?;
            let c = Config::load(Some(Path::new("s.toml")), &Overrides::default()).unwrap();
            let text = c.effective_toml().unwrap();
            for secret in [
                "admin-token-0123456789-secret",
                "00112233445566778899aabbccddeeff",
                "pg-password-secret",
                "sslmode",
                "AKIA-SECRET-ID",
                "s3-secret-key",
                "sk-upstream-secret",
            ] {
                assert!(!text.contains(secret), "{secret} in\n{text}");
            }
            // Everything else is there, defaults included, and reads back as the same config.
            let back: Config = toml::from_str(&text).unwrap();
            assert_eq!(back.engine.workers, EngineConfig::default().workers);
            assert_eq!(back.channels[0].name, "primary");
            assert_eq!(back.channels[0].api_key.as_deref(), Some(MASK));
            assert!(text.contains("postgres://reelay:"), "{text}");
            assert!(text.contains("db:5432/reelay"), "{text}");
            Ok(())
        });
    }

    #[test]
    fn every_top_level_key_may_come_from_the_environment() {
        let keys = env_keys();
        for key in [
            "listen",
            "engine",
            "media",
            "admin_token",
            "database_url",
            "prices",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
        }
    }
}
