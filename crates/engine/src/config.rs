use reelay_core::setting::{ensure, SettingError};
use serde::{Deserialize, Serialize};

/// What the engine does when a submit may or may not have reached the upstream (a timeout
/// after sending, a reset mid-response, a 500/502/504, or a crash while `submitting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOutcomePolicy {
    /// Ask the upstream whether it has the task (by reelay's task id) after a grace period;
    /// resubmit only when it certainly does not. Upstreams that cannot answer fall back to
    /// `fail`. The default.
    Reconcile,
    /// Fail the task and refund it. Never two paid jobs; the upstream job, if any, is orphaned.
    Fail,
    /// Resubmit as if nothing was sent. Can start a second paid upstream job; for upstreams
    /// that de-duplicate on their own.
    Resubmit,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Tasks worked on at once by this instance (submits and polls).
    pub workers: usize,
    /// How long a claim lasts. Must exceed the longest upstream request, so a live worker's
    /// task is never taken over; a dead worker's task comes due again when it ends.
    pub lease_seconds: u64,
    /// First poll interval after submit; grows with the task's age up to `poll_max_ms`.
    pub poll_min_ms: u64,
    pub poll_max_ms: u64,
    /// Poll interval grows by this fraction of the task's age.
    pub poll_age_factor: f64,
    /// Submit attempts (on any channel) before a task fails as unavailable.
    pub submit_max_attempts: i64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub unknown_outcome: UnknownOutcomePolicy,
    /// Wait this long after an unknown outcome before asking the upstream about it.
    pub reconcile_delay_ms: u64,
    /// A task not finished this long after its first submit fails (and is cancelled upstream).
    pub task_deadline_seconds: u64,
    /// While every channel for a task is held by its breaker (or a pause), look again this
    /// often.
    pub throttle_recheck_ms: u64,
    /// While every channel is at its cap, a task waits for a freed slot to wake it (the store
    /// wakes the longest waiter); this is only the fallback.
    pub throttle_fallback_ms: u64,
    /// How often an instance checks whether the channel registry changed elsewhere.
    pub channels_reload_ms: u64,
    /// Upstream failure codes (or prefixes, e.g. `INTERNAL.BAD_OUTPUT`) retried on another
    /// channel rather than failing the task. Empty by default.
    pub retry_failure_codes: Vec<String>,
    /// On channels that call back (reverse, quick-start), polls are the fallback and come
    /// this many times less often.
    pub callback_poll_factor: f64,
    /// Upper bound on sleeping with nothing due (other instances may add work).
    pub idle_wakeup_ms: u64,
    /// At a graceful stop, how long the steps under way may take to finish before their
    /// tasks are given back to the other instances.
    pub shutdown_grace_seconds: u64,
    /// Largest output the archiver downloads.
    pub max_output_bytes: u64,
    pub download_timeout_seconds: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 64,
            lease_seconds: 60,
            poll_min_ms: 1_000,
            poll_max_ms: 30_000,
            poll_age_factor: 0.1,
            submit_max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            unknown_outcome: UnknownOutcomePolicy::Reconcile,
            reconcile_delay_ms: 5_000,
            task_deadline_seconds: 3 * 3600,
            throttle_recheck_ms: 1_000,
            throttle_fallback_ms: 30_000,
            channels_reload_ms: 2_000,
            retry_failure_codes: Vec::new(),
            callback_poll_factor: 4.0,
            idle_wakeup_ms: 5_000,
            shutdown_grace_seconds: 10,
            max_output_bytes: 2 * 1024 * 1024 * 1024,
            download_timeout_seconds: 600,
        }
    }
}

impl EngineConfig {
    /// Checks the settings; keys are named within `[engine]`.
    pub fn validate(&self, longest_request_ms: u64) -> Result<(), SettingError> {
        ensure(self.workers == 0, "workers", "must be at least 1")?;
        if self.lease_seconds * 1000 < 2 * longest_request_ms {
            return Err(SettingError::new(
                "lease_seconds",
                format!(
                    "{} must be at least twice the longest channel request_timeout_ms ({longest_request_ms} ms)",
                    self.lease_seconds
                ),
            ));
        }
        ensure(self.poll_min_ms == 0, "poll_min_ms", "must be positive")?;
        ensure(
            self.poll_max_ms < self.poll_min_ms,
            "poll_max_ms",
            "must be at least poll_min_ms",
        )?;
        ensure(
            self.submit_max_attempts < 1,
            "submit_max_attempts",
            "must be at least 1",
        )?;
        ensure(
            !(self.callback_poll_factor.is_finite() && self.callback_poll_factor >= 1.0),
            "callback_poll_factor",
            "must be a number of at least 1",
        )?;
        ensure(
            !(self.poll_age_factor.is_finite() && self.poll_age_factor >= 0.0),
            "poll_age_factor",
            "must be a non-negative number",
        )?;
        Ok(())
    }
}
