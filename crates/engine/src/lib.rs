//! The workers that move tasks from `queued` to a terminal state.
//!
//! One loop per instance claims due tasks from the store with a lease and works each in its
//! own tokio task, bounded by a semaphore: the dispatcher (`dispatcher.rs`) submits queued
//! tasks upstream, the tracker (`tracker.rs`) polls submitted ones and the archiver
//! (`archiver.rs`) copies outputs into our media store. The loop sleeps until the earliest due
//! time or until new work is announced; it never scans idle tasks. Beside it, the sweeper
//! (`sweeper.rs`) deletes media past their retention.

mod archiver;
mod backoff;
pub mod breaker;
pub mod callbacks;
mod channels;
mod config;
mod dispatcher;
mod overhead;
pub mod signing;
mod sweeper;
mod tracker;
mod webhooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reelay_core::TaskState;
use reelay_media::{Frames, MediaConfig, MediaStore};
use reelay_store::{now_ms, Store, Task};
use tokio::sync::{watch, Notify, Semaphore};

pub use callbacks::CallbackUrls;
pub use channels::{Call, CallSummary, Channel, ChannelView, Channels, RegistryError, Source};
pub use config::{EngineConfig, UnknownOutcomePolicy};
pub use webhooks::{Deliverer, WebhookConfig};

pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) channels: Channels,
    pub(crate) archive: Archive,
    pub(crate) config: EngineConfig,
    pub(crate) owner: String,
    /// Set when upstreams can reach this gateway (`public_url`): submits on formats that take
    /// a callback URL carry one.
    pub(crate) callbacks: Option<CallbackUrls>,
    wake: Notify,
    alive: AtomicBool,
    /// Stopping: no new claims, `/readyz` answers 503.
    draining: AtomicBool,
    /// One permit per step that may run at once; all of them back = no step runs.
    permits: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
}

/// What the archiver and the sweeper work with.
pub struct Archive {
    pub media: MediaStore,
    pub config: MediaConfig,
    /// Fetches outputs through the SSRF guard.
    pub fetcher: reelay_outbound::GuardedClient,
    /// Posters and last frames (in process for H.264 MP4s, ffmpeg for the rest), and
    /// ffmpeg for watermarks when it is installed.
    pub frames: Frames,
    /// Media retention unless the account sets its own.
    pub retention_seconds: u64,
}

/// What the API holds: a way to announce new work and to ask whether the workers run.
#[derive(Clone)]
pub struct EngineHandle(Arc<Engine>);

impl EngineHandle {
    /// New or changed work exists (a task was accepted or cancelled): look now.
    pub fn notify(&self) {
        self.0.wake.notify_one();
    }
    /// A frame a task shows but that is derived on its first request (see the archiver):
    /// derived, stored and recorded now; `Ok(None)` when `name` is no such frame of `task`.
    pub async fn frame_on_demand(
        &self,
        task: &reelay_store::Task,
        name: &str,
    ) -> reelay_store::Result<Option<reelay_store::MediaObject>> {
        self.0.frame_on_demand(task, name).await
    }
    /// A frame of an uploaded video (not a task's): the last frame a client's own clip ends
    /// on, for an extension of it.
    pub async fn frame_of_bytes(
        &self,
        bytes: bytes::Bytes,
        kind: reelay_media::FrameKind,
    ) -> Result<bytes::Bytes, reelay_media::FrameError> {
        self.0.archive.frames.derive_bytes(bytes, kind).await
    }
    /// Every channel as the operator sees it, with its in-flight count.
    pub async fn channel_views(&self) -> reelay_store::Result<Vec<ChannelView>> {
        let in_flight = self.0.store.in_flight_by_channel().await?;
        Ok(self
            .0
            .channels
            .snapshot()
            .iter()
            .map(|ch| {
                let mut v = ch.view();
                v.in_flight = Some(in_flight.get(ch.name()).copied().unwrap_or(0));
                v
            })
            .collect())
    }
    /// The registry (the admin API changes channels through it).
    pub fn channels(&self) -> &Channels {
        &self.0.channels
    }
    /// The registry changed here: this instance's snapshot now, with waiting tasks looked
    /// at again (a raised cap or a new channel may take them).
    pub async fn channels_changed(&self) -> Result<(), RegistryError> {
        self.0.channels.reload(self.0.store.as_ref()).await?;
        self.notify();
        Ok(())
    }
    /// An upstream's callback for `task_id`: when the token is the task's, its next poll
    /// is due now. False for a token that is not the task's (nothing changes).
    pub async fn upstream_callback(
        &self,
        task_id: &str,
        token: &str,
    ) -> reelay_store::Result<bool> {
        let Some(urls) = &self.0.callbacks else {
            return Ok(false);
        };
        if !urls.verify(task_id, token) {
            return Ok(false);
        }
        if self.0.store.hurry_task(task_id, now_ms()).await? {
            self.notify();
        }
        Ok(true)
    }
    pub fn is_running(&self) -> bool {
        self.0.alive.load(Ordering::Relaxed)
    }
    pub fn shutdown(&self) {
        self.0.draining.store(true, Ordering::Relaxed);
        let _ = self.0.shutdown.send(true);
        self.0.wake.notify_one();
    }
    /// Whether the workers are stopping (`/readyz` then says not ready, before anything else
    /// stops, so a load balancer sends no more work).
    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }
    /// Stops claiming, lets the steps under way finish for up to `grace`, then gives back the
    /// claim of every task this instance still holds, so another instance (or the restart)
    /// takes it at once instead of when its lease would have run out. A task left in
    /// `submitting` comes due only after the longest upstream request could have ended, so
    /// the reconciler that looks it up sees the submit if it arrived.
    pub async fn drain(&self, grace: std::time::Duration) -> reelay_store::Result<u64> {
        self.shutdown();
        let all = self.0.config.workers as u32;
        let finished = tokio::time::timeout(grace, self.0.permits.acquire_many(all)).await;
        if finished.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "steps still running after the shutdown grace; their tasks are given back"
            );
        }
        let now = now_ms();
        let longest = self
            .0
            .channels
            .snapshot()
            .iter()
            .map(|c| c.config.request_timeout_ms)
            .max()
            .unwrap_or(0) as i64;
        let released = self
            .0
            .store
            .release_leases(&self.0.owner, now, now + longest)
            .await?;
        if released > 0 {
            tracing::info!(released, "claims given back at shutdown");
        }
        Ok(released)
    }
    pub fn owner(&self) -> &str {
        &self.0.owner
    }
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        channels: Channels,
        config: EngineConfig,
        archive: Archive,
        callbacks: Option<CallbackUrls>,
    ) -> Arc<Engine> {
        let workers = config.workers;
        Arc::new(Engine {
            store,
            channels,
            archive,
            config,
            owner: format!("w-{}", uuid::Uuid::now_v7().simple()),
            callbacks,
            wake: Notify::new(),
            alive: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            permits: Arc::new(Semaphore::new(workers)),
            shutdown: watch::channel(false).0,
        })
    }

    /// Starts the loop on the current runtime.
    pub fn start(self: &Arc<Engine>) -> EngineHandle {
        let engine = self.clone();
        tokio::spawn(async move { engine.run().await });
        let engine = self.clone();
        tokio::spawn(async move { engine.sweep_loop().await });
        let engine = self.clone();
        tokio::spawn(async move { engine.registry_loop().await });
        EngineHandle(self.clone())
    }

    async fn run(self: Arc<Engine>) {
        let permits = self.permits.clone();
        let mut stop = self.shutdown.subscribe();
        self.alive.store(true, Ordering::Relaxed);
        tracing::info!(owner = %self.owner, workers = self.config.workers, "engine started");
        loop {
            if *stop.borrow() {
                break;
            }
            let now = now_ms();
            let free = permits.available_permits() as i64;
            let mut full_batch = false;
            if free > 0 {
                let lease_until = now + (self.config.lease_seconds * 1000) as i64;
                match self
                    .store
                    .claim_due(&self.owner, now, lease_until, free.min(256))
                    .await
                {
                    Ok(tasks) => {
                        full_batch = tasks.len() as i64 == free.min(256);
                        for task in tasks {
                            let permit =
                                permits.clone().acquire_owned().await.expect("never closed");
                            let engine = self.clone();
                            tokio::spawn(async move {
                                engine.step(task).await;
                                drop(permit);
                                engine.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claiming tasks failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            if full_batch {
                continue;
            }
            let idle = self.config.idle_wakeup_ms as i64;
            let wait_ms = if free > 0 {
                match self.store.next_due_at().await {
                    Ok(Some(due)) => (due - now_ms()).clamp(0, idle),
                    Ok(None) => idle,
                    Err(e) => {
                        tracing::error!(error = %e, "reading next due time failed");
                        1000
                    }
                }
            } else {
                idle
            };
            if wait_ms == 0 {
                // Due now but nothing claimed: another instance holds it, or it just came
                // due. A short pause keeps this from spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
                _ = stop.changed() => {}
            }
        }
        self.alive.store(false, Ordering::Relaxed);
        tracing::info!("engine stopped");
    }

    /// Keeps this instance's channels in step with the registry, and runs the channels'
    /// health probes.
    async fn registry_loop(self: Arc<Engine>) {
        let mut stop = self.shutdown.subscribe();
        let every = Duration::from_millis(self.config.channels_reload_ms.max(100));
        let mut last_probe: std::collections::HashMap<String, std::time::Instant> =
            Default::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            match self.channels.refresh(self.store.as_ref()).await {
                Ok(true) => self.wake.notify_one(),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "reading the channel registry failed"),
            }
            for ch in self.channels.snapshot().iter() {
                let Some(secs) = ch.config.health_probe_seconds.filter(|_| ch.in_service()) else {
                    continue;
                };
                let due = last_probe
                    .get(ch.name())
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(secs.max(1)));
                if !due {
                    continue;
                }
                last_probe.insert(ch.name().to_string(), std::time::Instant::now());
                let ch = ch.clone();
                tokio::spawn(async move { ch.probe().await });
            }
        }
    }

    /// Works one claimed task one step forward. Its span names the task, its account and
    /// channel, so every log line of the step does.
    #[tracing::instrument(name = "step", skip_all, fields(task = %task.id, account = %task.account_id,
        channel = task.channel.as_deref().unwrap_or(""), state = %task.state))]
    async fn step(self: &Arc<Engine>, task: Task) {
        let id = task.id.clone();
        let result = match task.state {
            TaskState::Queued => overhead::measured("dispatch", self.dispatch(task)).await,
            TaskState::Throttled if task.upstream_id.is_none() => {
                overhead::measured("dispatch", self.dispatch(task)).await
            }
            TaskState::Submitting => {
                overhead::measured(
                    "reconcile",
                    self.resolve_unknown(task, "worker stopped while submitting"),
                )
                .await
            }
            TaskState::Running | TaskState::Throttled => {
                overhead::measured("track", self.track(task)).await
            }
            TaskState::Cancelled if task.cancel_upstream => {
                overhead::measured("cancel", self.cancel_upstream(task)).await
            }
            _ => self.settle(task).await,
        };
        if let Err(e) = result {
            // The lease runs out and the task comes due again: no step is lost to an error.
            tracing::warn!(task = %id, error = %e, "task step failed; it will be retried");
        }
    }

    /// A terminal task that still came due (e.g. a lease left behind): nothing left to do.
    async fn settle(&self, task: Task) -> Result<(), EngineError> {
        let mut u = reelay_store::TaskUpdate::new(&task.id, &[task.state]).leased_by(&self.owner);
        u.next_attempt_at = Some(None);
        u.release_lease = true;
        self.store.update_task(u).await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] reelay_store::StoreError),
    #[error(transparent)]
    Media(#[from] reelay_media::MediaError),
    #[error("{0}")]
    Other(String),
}
