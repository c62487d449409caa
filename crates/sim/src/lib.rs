//! A faithful simulator of Runway's official developer API, failures included — and of the two
//! reseller formats reelay resells: the reverse format (`/runway/pro/...`, `/runway/feed`) and
//! kie.ai's quick-start format (`/api/v1/runway/...`).
//!
//! It stands in for the remote provider in tests, benchmarks and reelay's `sandbox` channel:
//! the same routes, headers, bodies and task lifecycle (`PENDING` → `RUNNING` with progress →
//! `SUCCEEDED` with signed, expiring output URLs), concurrency throttling, random failures from
//! a seeded RNG, and injectable faults — rate limits, 5xx, dropped connections and timeouts,
//! before or after the task is created, moderation, an empty balance — queued through
//! [`Sim::push_fault`] or written into a prompt as `[sim:...]` directives.
//!
//! The three formats share one task model: a task created in one can be read in any (same
//! uuid), and every fault applies to a create in any format, answered in that format's words.
//! Tasks created with a callback URL (reverse `callback_url`, quick-start `callBackUrl`) get the
//! format's callbacks.
//!
//! Runway create bodies are validated with reelay's own catalog (`reelay_core::TaskSpec::parse`),
//! so a body the simulator accepts is one reelay would send; the resellers' bodies with the
//! field rules of their documents.
//!
//! Routes: see [`Sim::router`].

mod callbacks;
pub mod clip;
mod config;
mod fault;
mod files;
mod http;
mod state;
mod stats;

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

pub use callbacks::signature as webhook_signature;
pub use config::SimConfig;
pub use fault::Fault;
pub use files::{SAMPLE_MP3, SAMPLE_MP4, SAMPLE_PNG};
pub use state::FAILURE_CODES;
pub use stats::SimStats;

use reelay_core::Catalog;
use state::State;

/// The only `X-Runway-Version` the simulator accepts.
pub const RUNWAY_VERSION: &str = "2024-11-06";

/// The 14 generation endpoints served under `/v1/`.
pub const ENDPOINTS: [&str; 14] = reelay_core::GENERATION_ENDPOINTS;

/// The simulator: shared state behind an `Arc`, cheap to clone.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

struct Inner {
    config: SimConfig,
    catalog: Catalog,
    /// Key of the output URL signatures.
    secret: [u8; 32],
    state: Mutex<State>,
    /// Set by [`spawn`]: the address output URLs point at when no public base is configured.
    bound_base: OnceLock<String>,
    /// Tasks whose callbacks are still to be sent.
    callbacks_pending: AtomicUsize,
    /// Turns true when the server stops: pending callbacks are dropped.
    closed: tokio::sync::watch::Sender<bool>,
    callback_client: OnceLock<reqwest::Client>,
}

impl Sim {
    pub fn new(config: SimConfig) -> Sim {
        let state = State::new(config.seed, config.max_concurrent, config.failure_rate);
        Sim {
            inner: Arc::new(Inner {
                catalog: Catalog::builtin(),
                secret: rand::random(),
                state: Mutex::new(state),
                bound_base: OnceLock::new(),
                callbacks_pending: AtomicUsize::new(0),
                closed: tokio::sync::watch::Sender::new(false),
                callback_client: OnceLock::new(),
                config,
            }),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Every route: Runway's `/v1/...`, the reverse and quick-start formats', and the
    /// simulator's own `/_sim/...`.
    ///
    /// - `POST /v1/{endpoint}` for the 14 [`ENDPOINTS`] → `{"id", "estimatedCost"}`
    /// - `GET /v1/tasks/{id}`, `DELETE /v1/tasks/{id}` (204, then 404)
    /// - `GET /v1/organization`
    /// - reverse, under `/runway`, `/api/video/runway` and `/runway/v1`: `POST .../pro/generate`,
    ///   `.../pro/video2video`, `.../pro/act_one`; `POST` or `GET .../feed`
    /// - quick-start: `POST /api/v1/runway/generate`, `GET /api/v1/runway/record-detail?taskId=`
    /// - `GET /_sim/files/{task_id}/{name}?exp=&sig=` — output files (403 when expired or forged)
    /// - `GET /_sim/stats`, `POST /_sim/faults`, `POST /_sim/reset`, `GET /_sim/lookup?reference=`
    /// - `GET /_sim/tasks/{id}` (what its create carried), `GET /_sim/tasks/{id}/media`
    ///
    /// Connection-dropping faults unwind the connection's task (without the panic hook), so do
    /// not wrap this router in a panic-catching layer if those faults must look like resets.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    pub fn stats(&self) -> SimStats {
        self.state().stats.clone()
    }

    /// Queues a fault for the next create request.
    pub fn push_fault(&self, fault: Fault) {
        self.push_faults(fault, 1);
    }

    /// Queues a fault for the next `count` create requests. Returns false (and queues nothing)
    /// when the queue is full.
    pub fn push_faults(&self, fault: Fault, count: u64) -> bool {
        self.state().push_faults(fault, count)
    }

    /// Clears queued faults, fired prompt directives and statistics (tasks are kept).
    pub fn reset(&self) {
        let mut st = self.state();
        st.clear_faults();
        st.reset_stats();
    }

    /// The task created by the last create request that carried `X-Reelay-Reference: reference`.
    pub fn lookup(&self, reference: &str) -> Option<String> {
        self.state().lookup(reference).map(|id| id.to_string())
    }

    /// SHA-256 of each inline media input task `id` was created with (what the upstream got).
    pub fn media_of(&self, id: &str) -> Option<Vec<String>> {
        let id = uuid::Uuid::parse_str(id).ok()?;
        self.state().media_of(&id)
    }

    /// What task `id`'s create request carried: `{"id", "format", "endpoint", "model", "body",
    /// "prompt", "callback_url", "reference"}` (`body` with data URIs replaced by their digest).
    pub fn task_request(&self, id: &str) -> Option<serde_json::Value> {
        let uuid = uuid::Uuid::parse_str(id).ok()?;
        let (seen, model) = self.state().seen(&uuid)?;
        Some(serde_json::json!({
            "id": uuid.to_string(),
            "format": seen.format.as_str(),
            "endpoint": seen.endpoint,
            "model": model,
            "body": seen.body,
            "prompt": seen.prompt,
            "callback_url": seen.callback_url,
            "reference": seen.reference,
        }))
    }

    /// Drops the callbacks still waiting (the server stopped).
    fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters to a simulator; keep serving.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Binds `addr` (port 0 picks one) and serves the simulator in a tokio task until the handle is
/// dropped or shut down.
pub async fn spawn(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let sim = Sim::new(config);
    let _ = sim.inner.bound_base.set(format!("http://{addr}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = sim.router();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "simulator server stopped");
        }
    });
    Ok(SimHandle {
        sim,
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    pub sim: Sim,
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits briefly for in-flight requests.
    pub async fn shutdown(mut self) {
        self.sim.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.sim.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
