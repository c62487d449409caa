//! `reelay serve`: open the store, start the sandbox, the engine and the HTTP server.

use std::sync::Arc;

use reelay_api::{ApiConfig, AppState};
use reelay_core::Catalog;
use reelay_engine::{Channel, Channels, Engine, EngineHandle};
use reelay_media::LocalMedia;
use reelay_sim::{SimConfig, SimHandle};
use reelay_store::sqlite::SqliteStore;
use reelay_store::Store;
use reelay_upstream::{ChannelConfig, RunwayAdapter};
use tokio::net::TcpListener;

use crate::config::Config;

/// A running server: its address, the key printed on first start (if any), and the parts a
/// test may want to look at.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub base_url: String,
    pub first_key: Option<String>,
    pub store: Arc<dyn Store>,
    pub engine: EngineHandle,
    pub sandbox: Option<SimHandle>,
    shutdown: tokio::sync::watch::Sender<bool>,
    pub join: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn stop(self) {
        self.engine.shutdown();
        let _ = self.shutdown.send(true);
        let _ = self.join.await;
    }
}

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create data_dir {}: {e}", config.data_dir.display())
    })?;
    let store = SqliteStore::open(&config.database_url()).await?;
    Ok(Arc::new(store))
}

/// Creates the `default` account and its key on first start; returns the key to print once.
pub async fn bootstrap(
    store: &dyn Store,
    credits: i64,
) -> anyhow::Result<Option<(String, String)>> {
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let account = store.create_account("default", credits).await?;
    let key = reelay_store::generate_api_key();
    store
        .create_api_key(&account.id, &reelay_store::hash_api_key(&key), &key[..12])
        .await?;
    Ok(Some((account.id, key)))
}

pub async fn start(config: Config) -> anyhow::Result<Server> {
    let store = open_store(&config).await?;
    let first = bootstrap(store.as_ref(), config.default_account_credits).await?;

    let catalog = Arc::new(match &config.catalog_file {
        Some(path) => Catalog::from_json(&std::fs::read_to_string(path)?)
            .map_err(|e| anyhow::anyhow!("catalog_file {}: {e}", path.display()))?,
        None => Catalog::builtin(),
    });

    let listener = TcpListener::bind(config.listen_addr().map_err(anyhow::Error::msg)?).await?;
    let addr = listener.local_addr()?;
    let base_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));

    let mut channel_configs: Vec<ChannelConfig> = config.channels.clone();
    let sandbox = if config.sandbox {
        let sim = reelay_sim::spawn(
            SimConfig {
                run_seconds: config.sandbox_run_seconds,
                ..SimConfig::default()
            },
            "127.0.0.1:0".parse().expect("static address"),
        )
        .await?;
        channel_configs.push(ChannelConfig::sandbox(sim.base_url()));
        Some(sim)
    } else {
        None
    };
    let mut channels = Vec::new();
    for cfg in channel_configs {
        let adapter =
            RunwayAdapter::new(&cfg).map_err(|e| anyhow::anyhow!("channel {}: {e}", cfg.name))?;
        channels.push(Channel::new(cfg, Arc::new(adapter)));
    }
    if channels.is_empty() {
        tracing::warn!(
            "no channel is configured and the sandbox is off: tasks will fail with NO_CHANNEL"
        );
    }

    let media = LocalMedia::new(config.media_dir());
    std::fs::create_dir_all(media.root())?;
    let engine = Engine::new(
        store.clone(),
        Channels::new(channels),
        media.clone(),
        config.engine.clone(),
        base_url.clone(),
    )
    .start();

    let state = AppState {
        store: store.clone(),
        catalog,
        engine: engine.clone(),
        media,
        config: Arc::new(ApiConfig {
            max_body_bytes: config.max_body_bytes,
            ..ApiConfig::default()
        }),
    };
    let app = reelay_api::router(state);
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let join = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http server stopped");
        }
    });
    Ok(Server {
        addr,
        base_url,
        first_key: first.map(|(_, k)| k),
        store,
        engine,
        sandbox,
        shutdown: tx,
        join,
    })
}
