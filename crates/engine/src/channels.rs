//! The channel registry as the workers see it: every upstream with its live health.
//!
//! Channels come from the database (the file's, synced at start and on SIGHUP, and the admin
//! API's), so every instance serves the same set, plus this instance's own (the built-in
//! sandbox, a simulator in this process that no other instance could reach). Each instance
//! holds a snapshot and swaps it for a new one when the registry's fingerprint moves (an admin
//! change here reloads at once, one elsewhere within `channels_reload_ms`). A channel whose
//! configuration did not change is carried over as it is; one that changed gets a new adapter
//! but keeps its breaker and its call log. Tasks name their channel, so a task in flight keeps
//! its channel through any change: a removed channel stays in the snapshot, out of service,
//! for the tasks still on it.
//!
//! The breaker is each instance's own: it reads this instance's calls, and sharing it would
//! cost a write per call. Instances calling the same sick upstream open within a few calls of
//! each other anyway. What must be shared is: an out-of-credit answer disables the channel in
//! the database, for every instance, until an operator re-enables it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use reelay_store::{ChannelSource, ChannelWrite, KeyChange, Store, StoredChannel};
use reelay_upstream::{ChannelConfig, Upstream};
use serde::Serialize;

use crate::breaker::{self, Breaker, Outcome};

/// A configured upstream with its live health.
pub struct Channel {
    pub config: ChannelConfig,
    pub upstream: Arc<dyn Upstream>,
    pub source: Source,
    /// Why it is off, when it was switched off by an upstream's answer or an operator.
    pub disabled_reason: Option<String>,
    /// Removed from the registry: no new tasks, the ones on it finish.
    pub removed: bool,
    has_key: bool,
    /// What it was built from, to tell whether a reload changed it.
    fingerprint: String,
    breaker: Mutex<Breaker>,
    calls: Mutex<CallLog>,
}

/// Where a channel is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    File,
    Admin,
    /// This instance's own (the built-in sandbox); not in the database.
    Local,
}

impl From<ChannelSource> for Source {
    fn from(s: ChannelSource) -> Source {
        match s {
            ChannelSource::File => Source::File,
            ChannelSource::Admin => Source::Admin,
        }
    }
}

/// What kind of call a log entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Submit,
    Poll,
    Probe,
}

impl Channel {
    pub fn new(config: ChannelConfig, upstream: Arc<dyn Upstream>) -> Channel {
        Channel::built(config, upstream, Source::Local, None, false)
    }

    fn built(
        config: ChannelConfig,
        upstream: Arc<dyn Upstream>,
        source: Source,
        disabled_reason: Option<String>,
        removed: bool,
    ) -> Channel {
        let key = config.resolved_api_key();
        Channel {
            breaker: Mutex::new(Breaker::new(config.breaker.clone())),
            fingerprint: fingerprint(&config, key.as_deref(), &disabled_reason, removed),
            has_key: key.is_some(),
            config,
            upstream,
            source,
            disabled_reason,
            removed,
            calls: Mutex::new(CallLog::default()),
        }
    }

    /// Whether a call may go to this channel now (takes the half-open probe when it is one).
    pub fn allow(&self) -> bool {
        self.breaker.lock().unwrap().allow(Instant::now())
    }

    /// Whether a call could go now, without taking a half-open probe.
    pub fn would_allow(&self) -> bool {
        self.breaker.lock().unwrap().would_allow(Instant::now())
    }

    /// Whether new tasks may go to this channel (its switch, not its health).
    pub fn in_service(&self) -> bool {
        self.config.enabled && !self.removed
    }

    /// What a submit or a poll showed about the channel, and how long it took.
    pub fn record(&self, call: Call, outcome: Outcome, took: Duration) {
        let now = Instant::now();
        let call_name = match call {
            Call::Submit => "submit",
            Call::Poll => "poll",
            Call::Probe => "probe",
        };
        let outcome_name = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::RateLimited(_) => "rate_limited",
            Outcome::Unavailable(_) => "unavailable",
        };
        metrics::counter!("reelay_upstream_requests_total", "channel" => self.config.name.clone(),
            "call" => call_name, "outcome" => outcome_name)
        .increment(1);
        metrics::histogram!("reelay_upstream_request_duration_seconds",
            "channel" => self.config.name.clone(), "call" => call_name)
        .record(took.as_secs_f64());
        crate::overhead::upstream_call(took);
        self.calls
            .lock()
            .unwrap()
            .push(now, call, outcome == Outcome::Success, took);
        let mut b = self.breaker.lock().unwrap();
        let before = b.state(now);
        b.record(now, outcome);
        let after = b.state(now);
        if before != after {
            tracing::warn!(
                channel = self.name(),
                from = before.as_str(),
                to = after.as_str(),
                "circuit breaker"
            );
        }
    }

    pub fn breaker_state(&self) -> breaker::State {
        self.breaker.lock().unwrap().state(Instant::now())
    }

    /// A task on this channel not finished this long after its first submit fails.
    pub fn deadline(&self, default_seconds: u64) -> Duration {
        Duration::from_secs(self.config.task_deadline_seconds.unwrap_or(default_seconds))
    }

    /// The periodic health probe: a cheap authenticated call whose outcome feeds the breaker
    /// (so an open circuit can close without risking a task on it). An out-of-credit channel
    /// stays off whatever the probe says: the operator switches it back on.
    pub async fn probe(&self) {
        let started = Instant::now();
        let outcome = match self.upstream.probe().await {
            Ok(()) => Outcome::Success,
            Err(reelay_upstream::UpstreamError::Unsupported) => return,
            Err(e) => {
                tracing::info!(channel = self.name(), error = %e, "health probe failed");
                Outcome::Failure
            }
        };
        self.record(Call::Probe, outcome, started.elapsed());
    }

    /// The operator's view of this channel (its key never in it).
    pub fn view(&self) -> ChannelView {
        let now = Instant::now();
        let (state, openings, paused) = {
            let b = self.breaker.lock().unwrap();
            (b.state(now).as_str(), b.openings, b.paused(now))
        };
        ChannelView {
            name: self.config.name.clone(),
            kind: self.config.kind.as_str(),
            source: self.source,
            base_url: self.config.base_url.clone(),
            has_key: self.has_key,
            enabled: self.config.enabled,
            disabled_reason: self.disabled_reason.clone(),
            removed: self.removed,
            priority: self.config.priority,
            weight: self.config.weight,
            max_concurrent: self.config.max_concurrent,
            max_submits_per_second: self.config.max_submits_per_second,
            task_deadline_seconds: self.config.task_deadline_seconds,
            models: self.config.models.clone(),
            model_map: self.config.model_map.clone(),
            breaker: state,
            breaker_openings: openings,
            paused,
            in_flight: None,
            recent: self.calls.lock().unwrap().summary(now),
        }
    }
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// This channel rebuilt from `next` (same name): the adapter anew, the health carried.
    fn carry_over(&self, mut next: Channel) -> Channel {
        let old = self.breaker.lock().unwrap().clone();
        if serde_json::to_value(&self.config.breaker).ok()
            == serde_json::to_value(&next.config.breaker).ok()
        {
            next.breaker = Mutex::new(old);
        }
        next.calls = Mutex::new(std::mem::take(&mut *self.calls.lock().unwrap()));
        next
    }
}

/// A digest of what a channel is built from; the key enters only as a hash.
fn fingerprint(
    cfg: &ChannelConfig,
    key: Option<&str>,
    reason: &Option<String>,
    removed: bool,
) -> String {
    use sha2::Digest;
    let key = key.map(|k| hex::encode(sha2::Sha256::digest(k.as_bytes())));
    serde_json::json!([cfg, key, reason, removed]).to_string()
}

/// What `GET /admin/v1/channels` shows of a channel.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub name: String,
    pub kind: &'static str,
    pub source: Source,
    pub base_url: String,
    /// Whether an upstream key is set (the key itself is never shown).
    pub has_key: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub removed: bool,
    pub priority: i32,
    pub weight: u32,
    pub max_concurrent: Option<i64>,
    pub max_submits_per_second: Option<f64>,
    pub task_deadline_seconds: Option<u64>,
    pub models: Vec<String>,
    pub model_map: std::collections::BTreeMap<String, String>,
    /// `closed`, `open` or `half_open` (this instance's).
    pub breaker: &'static str,
    pub breaker_openings: u64,
    /// Paused by an upstream's `Retry-After`.
    pub paused: bool,
    /// Tasks held upstream now (across instances; from the store).
    pub in_flight: Option<i64>,
    /// This instance's calls to it over the last [`LOG_WINDOW`].
    pub recent: CallSummary,
}

/// How long the call log looks back, and how many calls it keeps at most.
pub const LOG_WINDOW: Duration = Duration::from_secs(300);
const LOG_CAP: usize = 20_000;

#[derive(Default)]
struct CallLog(VecDeque<(Instant, Call, bool, u32)>);

/// Calls over the window: rates, success and latency percentiles (milliseconds).
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CallSummary {
    pub window_seconds: u64,
    pub submits_per_minute: f64,
    pub polls_per_minute: f64,
    /// Share of calls that succeeded; `None` without calls.
    pub success_rate: Option<f64>,
    pub latency_ms_p50: Option<u32>,
    pub latency_ms_p95: Option<u32>,
    pub latency_ms_p99: Option<u32>,
}

impl CallLog {
    fn push(&mut self, now: Instant, call: Call, ok: bool, took: Duration) {
        self.prune(now);
        if self.0.len() == LOG_CAP {
            self.0.pop_front();
        }
        let ms = took.as_millis().min(u32::MAX as u128) as u32;
        self.0.push_back((now, call, ok, ms));
    }

    fn prune(&mut self, now: Instant) {
        while self
            .0
            .front()
            .is_some_and(|(t, ..)| now.duration_since(*t) > LOG_WINDOW)
        {
            self.0.pop_front();
        }
    }

    fn summary(&mut self, now: Instant) -> CallSummary {
        self.prune(now);
        let minutes = LOG_WINDOW.as_secs_f64() / 60.0;
        let count = |c: Call| self.0.iter().filter(|e| e.1 == c).count() as f64;
        let mut ms: Vec<u32> = self.0.iter().map(|e| e.3).collect();
        ms.sort_unstable();
        let pct = |p: f64| {
            (!ms.is_empty())
                .then(|| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1])
        };
        let ok = self.0.iter().filter(|e| e.2).count();
        CallSummary {
            window_seconds: LOG_WINDOW.as_secs(),
            submits_per_minute: count(Call::Submit) / minutes,
            polls_per_minute: count(Call::Poll) / minutes,
            success_rate: (!self.0.is_empty()).then(|| ok as f64 / self.0.len() as f64),
            latency_ms_p50: pct(0.50),
            latency_ms_p95: pct(0.95),
            latency_ms_p99: pct(0.99),
        }
    }
}

/// The channels every worker of this instance reads: a snapshot, swapped whole on reload.
#[derive(Clone, Default)]
pub struct Channels(Arc<Registry>);

#[derive(Default)]
struct Registry {
    live: RwLock<Arc<Vec<Arc<Channel>>>>,
    /// This instance's own channels (never stored).
    local: Mutex<Vec<ChannelConfig>>,
    /// The file's channels as last loaded, for their keys (keys from the file or the
    /// environment are never stored).
    file: Mutex<HashMap<String, ChannelConfig>>,
    /// This instance's own channels switched off (an out-of-credit answer), with why.
    local_off: Mutex<HashMap<String, String>>,
    /// The store's fingerprint the snapshot was built at.
    seen: Mutex<Option<(i64, i64)>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// Why a registry write was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] reelay_store::StoreError),
    #[error("{0}")]
    Invalid(#[from] reelay_core::SettingError),
}

impl Channels {
    /// A fixed set (tests, and the start before the registry is read).
    pub fn new(channels: Vec<Channel>) -> Channels {
        let reg = Registry::default();
        *reg.live.write().unwrap() = Arc::new(channels.into_iter().map(Arc::new).collect());
        Channels(Arc::new(reg))
    }

    /// A registry backed by the store, with this instance's own channels beside it.
    pub fn registry(local: Vec<ChannelConfig>) -> Channels {
        let reg = Registry::default();
        *reg.local.lock().unwrap() = local;
        Channels(Arc::new(reg))
    }

    pub fn snapshot(&self) -> Arc<Vec<Arc<Channel>>> {
        self.0.live.read().unwrap().clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.snapshot().iter().find(|c| c.name() == name).cloned()
    }

    /// Channels that can take a new task of `model` for `endpoint`, best first: by priority,
    /// and within one priority in a weighted random order. `avoid` (the channel a task just
    /// failed on) goes after the others. A sick channel stays in the list: its breaker keeps
    /// it out once it has shown it is sick, and a refusal moves the task on at once.
    pub fn candidates(
        &self,
        model: &str,
        endpoint: &str,
        avoid: Option<&str>,
    ) -> Vec<Arc<Channel>> {
        let mut rng = rand::thread_rng();
        let snapshot = self.snapshot();
        let mut list: Vec<(&Arc<Channel>, bool, i32, f64)> = snapshot
            .iter()
            .filter(|c| {
                c.in_service() && c.config.serves_model(model) && c.upstream.serves(endpoint)
            })
            .map(|c| {
                // Weighted shuffle: sort by u^(1/w), the Efraimidis–Spirakis key.
                let u: f64 = rng.gen_range(f64::EPSILON..1.0);
                let key = u.powf(1.0 / c.config.weight.max(1) as f64);
                let avoided = avoid == Some(c.name());
                (c, avoided, c.config.priority, -key)
            })
            .collect();
        list.sort_by(|a, b| (a.1, a.2).cmp(&(b.1, b.2)).then(a.3.total_cmp(&b.3)));
        list.into_iter().map(|x| x.0.clone()).collect()
    }

    /// Writes the file's channels to the store (the file wins for its own channels; a file
    /// channel no longer in the file is removed) and reloads.
    pub async fn sync_file(
        &self,
        store: &dyn Store,
        configs: Vec<ChannelConfig>,
    ) -> Result<(), RegistryError> {
        let stored = store.list_channels().await?;
        for cfg in &configs {
            let before = stored
                .iter()
                .find(|s| s.name == cfg.name && s.removed_at.is_none());
            if let Some(b) = before.filter(|b| b.source == ChannelSource::Admin) {
                return Err(RegistryError::Invalid(reelay_core::SettingError::new(
                    format!("channels.{}", b.name),
                    "is defined through the admin API; remove it there or rename the file's",
                )));
            }
            // The stored switch is the operator's; the file's `enabled` applies when it
            // changed in the file (or the channel is new).
            let file_enabled_before = before
                .and_then(|b| b.config.get("enabled"))
                .and_then(|v| v.as_bool());
            let enabled = match file_enabled_before {
                Some(was) if was == cfg.enabled => None,
                _ => Some(cfg.enabled),
            };
            let config = serde_json::to_value(cfg).map_err(|e| {
                RegistryError::Invalid(reelay_core::SettingError::new(
                    format!("channels.{}", cfg.name),
                    e.to_string(),
                ))
            })?;
            if before.is_some_and(|b| b.config == config && enabled.is_none()) {
                continue;
            }
            store
                .put_channel(&ChannelWrite {
                    name: cfg.name.clone(),
                    config,
                    key: KeyChange::Clear,
                    enabled,
                    source: ChannelSource::File,
                })
                .await?;
        }
        for s in stored.iter().filter(|s| {
            s.source == ChannelSource::File
                && s.removed_at.is_none()
                && !configs.iter().any(|c| c.name == s.name)
        }) {
            store.remove_channel(&s.name).await?;
        }
        *self.0.file.lock().unwrap() = configs.into_iter().map(|c| (c.name.clone(), c)).collect();
        self.reload(store).await?;
        Ok(())
    }

    /// Switches one of this instance's own channels off (they are not in the store).
    pub fn disable_local(&self, name: &str, reason: &str) {
        self.0
            .local_off
            .lock()
            .unwrap()
            .insert(name.to_string(), reason.to_string());
    }

    /// Switches one of this instance's own channels back on; false if it is not one.
    pub fn enable_local(&self, name: &str) -> bool {
        let local = self.0.local.lock().unwrap().iter().any(|c| c.name == name);
        self.0.local_off.lock().unwrap().remove(name);
        local
    }

    /// Whether `name` is one of this instance's own channels.
    pub fn is_local(&self, name: &str) -> bool {
        self.0.local.lock().unwrap().iter().any(|c| c.name == name)
    }

    /// Reloads when the store's registry moved since the snapshot was built.
    pub async fn refresh(&self, store: &dyn Store) -> Result<bool, RegistryError> {
        let now = store.channels_fingerprint().await?;
        if *self.0.seen.lock().unwrap() == Some(now) {
            return Ok(false);
        }
        self.reload(store).await?;
        Ok(true)
    }

    /// Rebuilds the snapshot from the store and this instance's own channels.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), RegistryError> {
        let _one = self.0.reloading.lock().await;
        let fingerprint = store.channels_fingerprint().await?;
        let stored = store.list_channels().await?;
        let old = self.snapshot();
        let mut next: Vec<Arc<Channel>> = Vec::new();
        let local = self.0.local.lock().unwrap().clone();
        let off = self.0.local_off.lock().unwrap().clone();
        for mut cfg in local {
            let reason = off.get(&cfg.name).cloned();
            cfg.enabled &= reason.is_none();
            next.push(self.build(&old, cfg, Source::Local, reason, false));
        }
        for s in stored {
            match self.config_of(&s) {
                Ok(cfg) => {
                    let removed = s.removed_at.is_some();
                    next.push(self.build(&old, cfg, s.source.into(), s.disabled_reason, removed))
                }
                Err(e) => {
                    tracing::error!(channel = %s.name, error = %e, "stored channel unreadable; left out")
                }
            }
        }
        // A removed channel with nothing on it is gone from the snapshot only once no task
        // can name it: it stays, cheap and out of service.
        *self.0.live.write().unwrap() = Arc::new(next);
        *self.0.seen.lock().unwrap() = Some(fingerprint);
        Ok(())
    }

    /// A stored channel's configuration with its key and switch.
    fn config_of(&self, s: &StoredChannel) -> Result<ChannelConfig, String> {
        let mut cfg: ChannelConfig =
            serde_json::from_value(s.config.clone()).map_err(|e| e.to_string())?;
        cfg.enabled = s.enabled && s.removed_at.is_none();
        match s.source {
            ChannelSource::Admin => {
                cfg.api_key = s.api_key.clone();
                cfg.api_key_env = None;
            }
            // The file's key stays in this process: from this instance's own file.
            ChannelSource::File => {
                let file = self.0.file.lock().unwrap();
                let own = file.get(&s.name);
                cfg.api_key = own.and_then(|c| c.api_key.clone());
                cfg.api_key_env = own.and_then(|c| c.api_key_env.clone());
            }
        }
        Ok(cfg)
    }

    fn build(
        &self,
        old: &[Arc<Channel>],
        cfg: ChannelConfig,
        source: Source,
        reason: Option<String>,
        removed: bool,
    ) -> Arc<Channel> {
        let prev = old.iter().find(|c| c.name() == cfg.name);
        let key = cfg.resolved_api_key();
        if let Some(p) = prev {
            if p.fingerprint == fingerprint(&cfg, key.as_deref(), &reason, removed) {
                return p.clone();
            }
        }
        let upstream = match reelay_upstream::build(&cfg) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(channel = %cfg.name, error = %e, "channel cannot be built; out of service");
                Arc::new(Unbuildable(cfg.name.clone()))
            }
        };
        let ch = Channel::built(cfg, upstream, source, reason, removed);
        Arc::new(match prev {
            Some(p) => p.carry_over(ch),
            None => ch,
        })
    }
}

/// The adapter of a channel that could not be built: serves nothing, answers nothing.
struct Unbuildable(String);

#[async_trait::async_trait]
impl Upstream for Unbuildable {
    fn name(&self) -> &str {
        &self.0
    }
    fn serves(&self, _: &str) -> bool {
        false
    }
    async fn submit(
        &self,
        _: &reelay_core::TaskSpec,
        _: &reelay_upstream::SubmitContext<'_>,
    ) -> Result<String, reelay_upstream::SubmitError> {
        Err(reelay_upstream::SubmitError::NotAccepted {
            reason: "the channel could not be built".into(),
            retry_after: None,
        })
    }
    async fn status(
        &self,
        _: &str,
    ) -> Result<reelay_upstream::UpstreamStatus, reelay_upstream::UpstreamError> {
        Err(reelay_upstream::UpstreamError::Unsupported)
    }
    async fn cancel(&self, _: &str) -> Result<(), reelay_upstream::UpstreamError> {
        Err(reelay_upstream::UpstreamError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reelay_upstream::{SubmitError, UpstreamError, UpstreamStatus};

    /// An upstream that is never called: selection only reads the configuration.
    struct Idle(String);

    #[async_trait::async_trait]
    impl Upstream for Idle {
        fn name(&self) -> &str {
            &self.0
        }
        async fn submit(
            &self,
            _: &reelay_core::TaskSpec,
            _: &reelay_upstream::SubmitContext<'_>,
        ) -> Result<String, SubmitError> {
            unreachable!()
        }
        async fn status(&self, _: &str) -> Result<UpstreamStatus, UpstreamError> {
            unreachable!()
        }
        async fn cancel(&self, _: &str) -> Result<(), UpstreamError> {
            unreachable!()
        }
    }

    fn channel(name: &str, priority: i32, weight: u32) -> Channel {
        let mut cfg = ChannelConfig::sandbox("http://127.0.0.1:1".into());
        cfg.name = name.into();
        cfg.priority = priority;
        cfg.weight = weight;
        Channel::new(cfg, Arc::new(Idle(name.into())))
    }

    #[test]
    fn weights_split_dispatches_and_priority_comes_first() {
        let channels = Channels::new(vec![
            channel("a", 0, 3),
            channel("b", 0, 1),
            channel("backup", 1, 100),
        ]);
        let mut firsts = std::collections::HashMap::<String, u32>::new();
        for _ in 0..4_000 {
            let c = channels.candidates("gen4_turbo", "image_to_video", None);
            assert_eq!(
                c.last().unwrap().name(),
                "backup",
                "a lower priority comes last"
            );
            *firsts.entry(c[0].name().to_string()).or_default() += 1;
        }
        // 3:1 → 3,000 of 4,000 to `a`, within ±5 % of the dispatches (σ ≈ 27).
        let a = firsts.get("a").copied().unwrap_or(0);
        assert!(
            (2_800..=3_200).contains(&a),
            "a was first {a} times of 4000"
        );
        assert_eq!(a + firsts.get("b").copied().unwrap_or(0), 4_000);
    }

    #[test]
    fn the_channel_a_task_just_failed_on_goes_last() {
        let channels = Channels::new(vec![channel("a", 0, 1), channel("b", 5, 1)]);
        for _ in 0..50 {
            let c = channels.candidates("gen4_turbo", "image_to_video", Some("a"));
            assert_eq!(c[0].name(), "b");
            assert_eq!(c.len(), 2, "still a candidate, after the others");
        }
    }

    #[test]
    fn the_call_log_summarises_rates_success_and_latency() {
        let mut log = CallLog::default();
        let now = Instant::now();
        for i in 0..100u64 {
            log.push(now, Call::Poll, i % 10 != 0, Duration::from_millis(i + 1));
        }
        for _ in 0..50 {
            log.push(now, Call::Submit, true, Duration::from_millis(500));
        }
        let s = log.summary(now);
        assert_eq!(s.polls_per_minute, 100.0 / 5.0);
        assert_eq!(s.submits_per_minute, 50.0 / 5.0);
        assert_eq!(s.success_rate, Some(140.0 / 150.0));
        assert_eq!(s.latency_ms_p50, Some(75));
        assert_eq!(s.latency_ms_p99, Some(500));
        assert_eq!(CallLog::default().summary(now).success_rate, None);
    }
}
