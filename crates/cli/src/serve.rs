//! `reelay serve`: open the store, start the sandbox, the engine and the HTTP server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use reelay_api::admin::AdminAuth;
use reelay_api::dialects::openai::{Mapping as OpenaiMapping, OpenaiConfig};
use reelay_api::dialects::quickstart::{parse_zone, Mapping as QsMapping, QuickstartConfig};
use reelay_api::dialects::reverse::{Mapping, ReverseConfig};
use reelay_api::{
    ApiConfig, AppState, DialectCallbacks, Keys, KeysConfig, MediaLinks, MediaServing,
};
use reelay_core::{Catalog, SettingError};
use reelay_engine::{Archive, CallbackUrls, Channels, Deliverer, Engine, EngineHandle};
use reelay_media::{Ffmpeg, Frames, MediaStore};
use reelay_sim::{SimConfig, SimHandle};
use reelay_store::postgres::PgStore;
use reelay_store::sqlite::SqliteStore;
use reelay_store::Store;
use reelay_upstream::ChannelConfig;
use tokio::net::TcpListener;

use crate::config::{redacted_url, Backend, Config, ConfigError};

/// A running server: its address, the key printed on first start (if any), and the parts a
/// test may want to look at.
pub struct Server {
    pub addr: std::net::SocketAddr,
    /// Where `/metrics` is served without a token (`metrics_listen`), if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub base_url: String,
    pub first_key: Option<String>,
    /// The admin token generated on first start when none is configured (printed once).
    pub generated_admin_token: Option<String>,
    pub store: Arc<dyn Store>,
    pub engine: EngineHandle,
    pub sandbox: Option<SimHandle>,
    /// Makes the media links the dialects hand out.
    pub links: MediaLinks,
    pub media: MediaStore,
    shutdown: tokio::sync::watch::Sender<bool>,
    shutdown_grace: Duration,
    pub join: tokio::task::JoinHandle<()>,
}

impl Server {
    /// SIGHUP: the file's channels (from a configuration read again and checked) applied
    /// without a restart. Tasks in flight keep their channel.
    pub async fn reload_channels(&self, config: &Config) -> anyhow::Result<()> {
        self.engine
            .channels()
            .sync_file(self.store.as_ref(), config.channels.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.engine
            .channels_changed()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// A graceful stop (SIGTERM): `/readyz` says draining and the workers stop claiming;
    /// the listener closes and the requests under way finish; the steps under way finish
    /// within `engine.shutdown_grace_seconds`, and whatever this instance still holds is given
    /// back, so nothing waits for a lease to run out.
    pub async fn stop(self) {
        self.engine.shutdown();
        let _ = self.shutdown.send(true);
        let _ = self.join.await;
        if let Err(e) = self.engine.drain(self.shutdown_grace).await {
            tracing::warn!(error = %e, "could not give the claims back at shutdown; they run out with their lease");
        }
    }
}

/// Opens the configured store (for the admin commands: no callbacks, no listener use).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_with(config, None).await
}

/// How long opening the database may take before reelay gives up with a clear error: an
/// unreachable server must not leave the process hanging at start.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

async fn open_with(
    config: &Config,
    callbacks: Option<Arc<dyn reelay_store::Callbacks>>,
) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let key = secret_key(config)?;
    let backend = config.backend();
    let opened = async {
        Ok::<Arc<dyn Store>, reelay_store::StoreError>(match backend {
            Backend::Sqlite => {
                std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                    reelay_store::StoreError::Invalid(format!(
                        "cannot create data_dir {}: {e}",
                        config.data_dir.display()
                    ))
                })?;
                let mut store = SqliteStore::open(&url).await?.with_secret_key(key);
                if let Some(cb) = callbacks {
                    store = store.with_callbacks(cb);
                }
                Arc::new(store)
            }
            Backend::Postgres => {
                let mut store = PgStore::open(&url).await?.with_secret_key(key);
                if let Some(cb) = callbacks {
                    store = store.with_callbacks(cb);
                }
                Arc::new(store)
            }
        })
    };
    match tokio::time::timeout(OPEN_TIMEOUT, opened).await {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "cannot open the database at {}: {e}",
            redacted_url(&url)
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cannot open the database at {}: no answer within {} s",
            redacted_url(&url),
            OPEN_TIMEOUT.as_secs()
        )),
    }
}

/// Runs the migrations of the configured database and returns (`reelay migrate`). `serve`
/// runs them too; several instances may start at once (the migrator takes a lock).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    drop(store);
    Ok(())
}

/// On a shared database, settings each instance would otherwise make up for itself break the
/// others (docs/scaling.md): said at start, once.
fn warn_what_instances_do_not_share(config: &Config) {
    if config.secret_key.is_none() {
        tracing::warn!(
            "secret_key is not set: this instance seals webhook secrets and signs media links \
             with <data_dir>/secret.key, which other instances on this database do not have; \
             set the same secret_key (REELAY_SECRET_KEY) on every instance"
        );
    }
    if config.admin_token.is_none() {
        tracing::warn!(
            "admin_token is not set: the generated admin token works on this instance only; \
             set the same admin_token (REELAY_ADMIN_TOKEN) on every instance"
        );
    }
    if config.sandbox {
        tracing::warn!(
            "the built-in sandbox channel runs inside this instance: a task another instance \
             takes over cannot be found there; with several instances use an external \
             `reelay sim` channel instead"
        );
    }
}

/// Wakes this instance's workers when another instance committed work (PostgreSQL's
/// LISTEN/NOTIFY); the workers' idle wake-up remains the fallback if a notice is lost.
fn forward_wakeups(store: &dyn Store, engine: EngineHandle, outbox: Arc<tokio::sync::Notify>) {
    let Some(mut rx) = store.wakeups() else {
        return;
    };
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match rx.recv().await {
                Ok(reelay_store::Wake::Tasks) => engine.notify(),
                Ok(reelay_store::Wake::Webhooks) => outbox.notify_one(),
                // Missed some: look for both kinds of work.
                Err(RecvError::Lagged(_)) => {
                    engine.notify();
                    outbox.notify_one();
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// The key sealing secrets at rest (webhook signing secrets): `secret_key` (64 hex digits)
/// from configuration or `REELAY_SECRET_KEY`, else `<data_dir>/secret.key`, created on first
/// start readable by its owner only. Instances sharing a database must share this key.
fn secret_key(config: &Config) -> anyhow::Result<[u8; 32]> {
    let parse = |text: &str, source: &str| -> anyhow::Result<[u8; 32]> {
        hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("{source} must be 64 hex digits (32 bytes)"))
    };
    if let Some(k) = &config.secret_key {
        return parse(k, "secret_key");
    }
    let path = config.data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = reelay_store::generate_key();
            write_private(&path, &format!("{}\n", hex::encode(key)))?;
            Ok(key)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Creates the `default` account and its key on first start; returns the key to print once.
pub async fn bootstrap(
    store: &dyn Store,
    credits: i64,
) -> anyhow::Result<Option<(String, String)>> {
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let key = reelay_store::generate_api_key();
    let (account, _) = store
        .open_account(&reelay_store::NewAccount {
            name: "default".into(),
            credits,
            key: Some(reelay_store::NewKey::for_key(&key)),
            ..Default::default()
        })
        .await?;
    Ok(Some((account.id, key)))
}

/// What the dialects and prices are built from: the catalog and the mapping files, each read
/// and checked against the catalog. `serve` and `config check` both go through here, so a
/// configuration `config check` passes is one `serve` starts with.
pub struct Catalogs {
    pub catalog: Catalog,
    pub reverse: ReverseConfig,
    pub quickstart: QuickstartConfig,
    pub openai: OpenaiConfig,
}

impl Catalogs {
    pub fn load(config: &Config) -> Result<Catalogs, SettingError> {
        let mut catalog = match &config.catalog_file {
            Some(path) => Catalog::from_json(&read_setting_file("catalog_file", path)?)
                .map_err(|e| mapping_error("catalog_file", Some(path), e))?,
            None => Catalog::builtin(),
        };
        catalog
            .override_prices(&config.prices)
            .map_err(|e| SettingError::new("prices", e.to_string()))?;
        let reverse = reverse_config(config, &catalog)?;
        let quickstart = quickstart_config(config, &catalog)?;
        let openai = openai_config(config, &catalog)?;
        Ok(Catalogs {
            catalog,
            reverse,
            quickstart,
            openai,
        })
    }
}

/// A file's text, or an error naming the setting that points at it.
fn read_setting_file(key: &str, path: &Path) -> Result<String, SettingError> {
    std::fs::read_to_string(path)
        .map_err(|e| SettingError::new(key, format!("{}: {e}", path.display())))
}

/// A file that does not parse or does not fit the catalog, named by its setting.
fn mapping_error(key: &str, path: Option<&PathBuf>, e: impl std::fmt::Display) -> SettingError {
    match path {
        Some(path) => SettingError::new(key, format!("{}: {e}", path.display())),
        None => SettingError::new(key, format!("the built-in mapping: {e}")),
    }
}

fn quickstart_config(config: &Config, catalog: &Catalog) -> Result<QuickstartConfig, SettingError> {
    let qs = &config.quickstart;
    let key = "quickstart.mapping_file";
    let mapping = match &qs.mapping_file {
        Some(path) => QsMapping::from_json(&read_setting_file(key, path)?)
            .map_err(|e| mapping_error(key, Some(path), e))?,
        None => QsMapping::builtin(),
    };
    mapping
        .check(catalog)
        .map_err(|e| mapping_error(key, qs.mapping_file.as_ref(), e))?;
    Ok(QuickstartConfig {
        mapping,
        callback_schedule: qs.callback_schedule_seconds.clone(),
        time_zone: parse_zone(&qs.time_zone)
            .map_err(|e| SettingError::new("quickstart.time_zone", e))?,
    })
}

fn openai_config(config: &Config, catalog: &Catalog) -> Result<OpenaiConfig, SettingError> {
    let oa = &config.openai;
    let key = "openai.mapping_file";
    let mut mapping = match &oa.mapping_file {
        Some(path) => OpenaiMapping::from_json(&read_setting_file(key, path)?)
            .map_err(|e| mapping_error(key, Some(path), e))?,
        None => OpenaiMapping::builtin(),
    };
    mapping.aliases.extend(oa.aliases.clone());
    mapping
        .check(catalog)
        .map_err(|e| mapping_error("openai.aliases", oa.mapping_file.as_ref(), e))?;
    Ok(OpenaiConfig { mapping })
}

fn reverse_config(config: &Config, catalog: &Catalog) -> Result<ReverseConfig, SettingError> {
    let key = "reverse.mapping_file";
    let path = config.reverse.mapping_file.as_ref();
    let mapping = match path {
        Some(path) => Mapping::from_json(&read_setting_file(key, path)?)
            .map_err(|e| mapping_error(key, Some(path), e))?,
        None => Mapping::builtin(),
    };
    mapping
        .check(catalog)
        .map_err(|e| mapping_error(key, path, e))?;
    Ok(ReverseConfig {
        mapping,
        require_callback_url: config.reverse.require_callback_url,
    })
}

/// The admin token: from configuration, else the hash kept in the data dir, else a new token
/// (returned to be printed once; only its hash is written).
fn admin_auth(config: &Config) -> anyhow::Result<(AdminAuth, Option<String>)> {
    if let Some(token) = &config.admin_token {
        return Ok((AdminAuth::from_token(token), None));
    }
    let path = config.data_dir.join("admin_token.sha256");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let hash: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("{} is not a SHA-256 hex digest", path.display()))?;
        return Ok((AdminAuth::from_hash(hash), None));
    }
    let token = format!("radm_{}", hex::encode(rand::random::<[u8; 32]>()));
    let digest = reelay_store::hash_api_key(&token);
    std::fs::write(&path, format!("{digest}\n"))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok((AdminAuth::from_token(&token), Some(token)))
}

/// The guard of output downloads: the operator's exemptions, plus the address of every channel
/// configured by IP (the sandbox included, on 127.0.0.1): an upstream the operator pointed
/// reelay at may serve its outputs from where it answers. Channels named by host get no
/// exemption (a name can resolve anywhere).
fn archive_guard(
    config: &Config,
    channels: &[ChannelConfig],
    resolver: Option<Arc<dyn reelay_outbound::Resolver>>,
) -> anyhow::Result<reelay_outbound::Guard> {
    let mut allow: Vec<String> = config
        .outbound_allow_cidrs
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    for ch in channels {
        let host = reqwest::Url::parse(&ch.base_url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()));
        if let Some(ip) = host.and_then(|h| h.parse::<std::net::IpAddr>().ok()) {
            allow.push(ip.to_string());
        }
    }
    let mut guard = reelay_outbound::Guard::new(&allow.join(","))
        .map_err(|e| ConfigError::from(SettingError::new("outbound_allow_cidrs", e)))?;
    if let Some(r) = resolver {
        guard = guard.with_resolver(r);
    }
    Ok(guard)
}

/// The connection limits in force: the configured cap, lowered to fit the open-file limit
/// (raised first to its hard limit).
fn http_limits(config: &reelay_api::server::ServerConfig) -> reelay_api::server::Limits {
    let fd_limit = reelay_api::server::raise_fd_limit();
    let cap = reelay_api::server::connection_cap(config.max_connections, fd_limit);
    if cap < config.max_connections {
        tracing::warn!(
            configured = config.max_connections,
            cap,
            open_file_limit = fd_limit,
            "server.max_connections lowered to fit the open-file limit"
        );
    }
    tracing::info!(max_connections = cap, "connection cap");
    reelay_api::server::Limits::new(config, cap)
}

pub async fn start(config: Config) -> anyhow::Result<Server> {
    start_with(config, Extras::default()).await
}

/// What tests (and embedders) may swap in.
#[derive(Default)]
pub struct Extras {
    /// The resolver of outbound requests made for clients (callbacks); default the system's.
    pub resolver: Option<Arc<dyn reelay_outbound::Resolver>>,
}

pub async fn start_with(config: Config, extras: Extras) -> anyhow::Result<Server> {
    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    // Bound first: media links, in webhook payloads too, carry the public base URL.
    let listener = TcpListener::bind(config.listen_addr().map_err(anyhow::Error::msg)?).await?;
    let addr = listener.local_addr()?;
    let base_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create data_dir {}: {e}", config.data_dir.display())
    })?;
    let links = MediaLinks::new(
        &base_url,
        &secret_key(&config)?,
        Duration::from_secs(config.media.link_ttl_seconds),
    );
    let Catalogs {
        catalog,
        reverse,
        quickstart,
        openai,
    } = Catalogs::load(&config).map_err(ConfigError::from)?;
    let catalog = Arc::new(catalog);
    let reverse = Arc::new(reverse);
    let quickstart = Arc::new(quickstart);
    let openai = Arc::new(openai);
    let store = open_with(
        &config,
        Some(Arc::new(DialectCallbacks::new(
            outbox_wake.clone(),
            links.clone(),
            quickstart.clone(),
        ))),
    )
    .await?;
    let backend = config.backend();
    let archive_resolver = extras.resolver.clone();
    let mut guard = config.outbound_guard().map_err(ConfigError::from)?;
    if let Some(r) = extras.resolver {
        guard = guard.with_resolver(r);
    }
    let first = bootstrap(store.as_ref(), config.default_account_credits).await?;

    let (admin, generated_admin_token) = admin_auth(&config)?;

    let mut local_channels: Vec<ChannelConfig> = Vec::new();
    let sandbox = if config.sandbox {
        let sim = reelay_sim::spawn(
            SimConfig {
                run_seconds: config.sandbox_run_seconds,
                ..SimConfig::default()
            },
            "127.0.0.1:0".parse().expect("static address"),
        )
        .await?;
        local_channels.push(ChannelConfig::sandbox(sim.base_url()));
        Some(sim)
    } else {
        None
    };
    let channel_configs: Vec<ChannelConfig> = config
        .channels
        .iter()
        .chain(&local_channels)
        .cloned()
        .collect();
    let archive_guard = archive_guard(&config, &channel_configs, archive_resolver)?;
    // The registry: the file's channels synced into the store (every instance sees the same
    // set, with the admin API's), this instance's sandbox beside them.
    let channels = Channels::registry(local_channels);
    channels
        .sync_file(store.as_ref(), config.channels.clone())
        .await
        .map_err(|e| match e {
            reelay_engine::RegistryError::Invalid(e) => anyhow::Error::from(ConfigError::from(e)),
            other => other.into(),
        })?;
    if channels.snapshot().is_empty() {
        tracing::warn!(
            "no channel is configured and the sandbox is off: tasks will fail with NO_CHANNEL \
             (add one to the file or with `reelay channel add`)"
        );
    }
    // Upstreams that take a callback URL get one where they can reach us: at `public_url`,
    // or on a loopback listener (an upstream on this host, e.g. `reelay sim`). Elsewhere,
    // without a public URL, they are polled only.
    let callback_base = config
        .public_url
        .clone()
        .or_else(|| addr.ip().is_loopback().then(|| format!("http://{addr}")));
    let callbacks = callback_base
        .map(|base| -> anyhow::Result<CallbackUrls> {
            Ok(CallbackUrls::new(&base, &secret_key(&config)?))
        })
        .transpose()?;

    let media = MediaStore::from_config(&config.media, &config.media_dir())
        .map_err(|e| anyhow::anyhow!("media store: {e}"))?;
    tracing::info!(store = %media.describe(), "media store");
    if backend == Backend::Postgres {
        warn_what_instances_do_not_share(&config);
    }
    if backend == Backend::Postgres && !media.is_s3() {
        // Instances sharing a database share tasks, but not a local folder: a link handed out
        // by one would 404 on another. One instance on PostgreSQL is fine.
        tracing::warn!(
            "media are stored in a local folder while the database is PostgreSQL: if several \
             instances share this database, give them one S3 bucket (media.s3_*), or links \
             served by one instance will 404 on the others"
        );
    }
    let frames = match config.media.derive_frames {
        true => {
            let timeout = Duration::from_secs(config.media.ffmpeg_timeout_seconds);
            let ffmpeg = Ffmpeg::detect(
                &config.media.ffmpeg,
                timeout,
                config.media.ffmpeg_concurrency,
            )
            .await;
            Frames::new(ffmpeg, timeout, config.media.ffmpeg_concurrency)
        }
        false => Frames::disabled(),
    };
    let fetcher = archive_guard.client(
        Duration::from_secs(10),
        Duration::from_secs(config.engine.download_timeout_seconds),
        concat!("reelay-archiver/", env!("CARGO_PKG_VERSION")),
    )?;
    let engine = Engine::new(
        store.clone(),
        channels,
        config.engine.clone(),
        Archive {
            media: media.clone(),
            config: config.media.clone(),
            fetcher,
            frames,
            retention_seconds: config.retention_seconds,
        },
        callbacks,
    )
    .start();
    forward_wakeups(store.as_ref(), engine.clone(), outbox_wake.clone());

    let (server_links, server_media) = (links.clone(), media.clone());
    let console = Arc::new(reelay_api::console::Sessions::new(admin.session_key()));
    let state = AppState {
        store: store.clone(),
        catalog,
        engine: engine.clone(),
        media,
        links,
        media_serving: MediaServing {
            redirect_presign_ttl: config
                .media
                .redirect
                .then(|| Duration::from_secs(config.media.presign_ttl_seconds)),
        },
        config: Arc::new(ApiConfig {
            max_body_bytes: config.max_body_bytes,
            idempotency_ttl_ms: (config.idempotency_ttl_seconds as i64).saturating_mul(1000),
            max_active_tasks: config.limits.max_active_tasks,
            runway_insufficient_credits_status: config.runway.insufficient_credits_status,
            refund_cancel_after_submit: config.refund_cancel_after_submit,
            webhook_secret_grace_ms: (config.webhooks.secret_grace_seconds as i64)
                .saturating_mul(1000),
            max_monthly_credit_spend: config.runway.max_monthly_credit_spend,
        }),
        keys: Arc::new(Keys::new(KeysConfig {
            cache_ttl: Duration::from_secs(config.limits.key_cache_seconds),
            rate_per_second: config.limits.requests_per_second,
            burst: config.limits.burst,
            touch_interval: Duration::from_secs(config.limits.key_touch_seconds),
        })),
        admin: Arc::new(admin),
        outbound: guard.clone(),
        outbox_wake: outbox_wake.clone(),
        reverse,
        quickstart,
        openai,
        fetch: guard.client(
            Duration::from_secs(5),
            Duration::from_secs(30),
            concat!("reelay/", env!("CARGO_PKG_VERSION")),
        )?,
        metrics: Default::default(),
        console,
    };
    let webhook_client = guard.client(
        Duration::from_millis(config.webhooks.connect_timeout_ms),
        Duration::from_millis(config.webhooks.timeout_ms),
        concat!("reelay-webhooks/", env!("CARGO_PKG_VERSION")),
    )?;
    let metrics_addr = match &config.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("metrics_listen {addr}: {e}"))?;
            let local = listener.local_addr()?;
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(reelay_api::metrics::scrape_open),
                )
                .with_state(state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
            tracing::info!(%local, "metrics at /metrics");
            Some(local)
        }
        None => None,
    };
    let upkeep = tokio::spawn(reelay_api::upkeep(state.clone()));
    let keys = state.keys.clone();
    let app = reelay_api::router(state);
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    tokio::spawn(
        Deliverer::new(
            store.clone(),
            webhook_client,
            config.webhooks.clone(),
            outbox_wake,
        )
        .run(rx.clone()),
    );
    let flush_store = store.clone();
    let http_limits = http_limits(&config.server);
    let join = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        reelay_api::server::serve(listener, app, http_limits, shutdown).await;
        upkeep.abort();
        if let Err(e) = keys.flush_touches(flush_store.as_ref()).await {
            tracing::warn!(error = %e, "could not record API key last-used times");
        }
    });
    Ok(Server {
        addr,
        metrics_addr,
        base_url,
        first_key: first.map(|(_, k)| k),
        generated_admin_token,
        store,
        engine,
        sandbox,
        links: server_links,
        media: server_media,
        shutdown: tx,
        shutdown_grace: Duration::from_secs(config.engine.shutdown_grace_seconds),
        join,
    })
}
