//! Submitted task → terminal state, by polling the upstream on a schedule that backs off with
//! the task's age.

use std::sync::Arc;

use reelay_core::TaskState;
use reelay_store::{now_ms, Task, TaskUpdate};
use reelay_upstream::{UpstreamError, UpstreamStatus};

use crate::archiver::ArchiveError;

use crate::{Engine, EngineError};

pub const CODE_TIMEOUT: &str = "TIMEOUT";
pub const CODE_LOST: &str = "UPSTREAM_LOST";
pub const CODE_CHANNEL_GONE: &str = "CHANNEL_GONE";
/// The outputs could not be copied into our media store before the archive deadline (or can
/// never be: too large, not media, a refused destination). The task is refunded.
pub const CODE_ARCHIVE_FAILED: &str = "ARCHIVE_FAILED";

impl Engine {
    pub(crate) async fn track(self: &Arc<Engine>, task: Task) -> Result<(), EngineError> {
        let (Some(upstream_id), Some(ch)) = (
            task.upstream_id.clone(),
            task.channel.as_deref().and_then(|c| self.channels.get(c)),
        ) else {
            return self
                .fail(
                    &task,
                    CODE_CHANNEL_GONE,
                    "The channel this task ran on is no longer configured.",
                )
                .await;
        };
        // Once the upstream succeeded, the archive deadline governs instead (finish_success).
        if task.archive_started_at.is_none() && self.past_deadline(&task) {
            let _ = ch.upstream.cancel(&upstream_id).await;
            return self
                .fail(
                    &task,
                    CODE_TIMEOUT,
                    "The task did not finish within the deadline.",
                )
                .await;
        }
        let live = [TaskState::Running, TaskState::Throttled];
        let started = std::time::Instant::now();
        let status = ch.upstream.status(&upstream_id).await;
        // Polls feed the breaker too: a channel that stops answering is sick for submits.
        ch.record(
            crate::channels::Call::Poll,
            match &status {
                Ok(_) => crate::breaker::Outcome::Success,
                Err(_) => crate::breaker::Outcome::Failure,
            },
            started.elapsed(),
        );
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "status poll failed; will retry");
                return self.poll_later(&task, &ch, None, None).await;
            }
        };
        match status {
            UpstreamStatus::Pending => {
                self.poll_later(&task, &ch, Some(TaskState::Running), Some(0.0))
                    .await
            }
            UpstreamStatus::Throttled => {
                self.poll_later(&task, &ch, Some(TaskState::Throttled), None)
                    .await
            }
            UpstreamStatus::Running { progress } => {
                // Progress never goes backwards in what clients see.
                self.poll_later(
                    &task,
                    &ch,
                    Some(TaskState::Running),
                    Some(progress.max(task.progress).min(0.99)),
                )
                .await
            }
            UpstreamStatus::Succeeded { outputs } => self.finish_success(&task, outputs).await,
            UpstreamStatus::Failed { code, message } => {
                let code = code.as_deref().unwrap_or("INTERNAL");
                if self.retryable(code) && task.attempts < self.config.submit_max_attempts {
                    return self.retry_elsewhere(&task, &ch, code, &message).await;
                }
                self.fail(&task, code, &message).await
            }
            UpstreamStatus::Cancelled => {
                let mut u = TaskUpdate::new(&task.id, &live)
                    .leased_by(&self.owner)
                    .to(TaskState::Cancelled);
                u.failure = Some((
                    "CANCELLED".into(),
                    "The task was cancelled upstream.".into(),
                ));
                u.next_attempt_at = Some(None);
                u.release_lease = true;
                self.store.update_task(u).await?;
                Ok(())
            }
            UpstreamStatus::NotFound => {
                self.fail(&task, CODE_LOST, "The upstream no longer knows this task.")
                    .await
            }
        }
    }

    /// The upstream succeeded: archive the outputs, then (and only then) the task succeeds and
    /// its hold is captured. Archiving that keeps failing is retried on later polls until the
    /// archive deadline; after it, or at once for a permanent problem, the task fails with
    /// `ARCHIVE_FAILED` and is refunded, and whatever was stored is swept.
    async fn finish_success(
        self: &Arc<Engine>,
        task: &Task,
        outputs: Vec<String>,
    ) -> Result<(), EngineError> {
        crate::overhead::archived();
        let live = [TaskState::Running, TaskState::Throttled];
        let started = task.archive_started_at.unwrap_or_else(now_ms);
        let result = match self
            .with_lease_kept(task, self.archive(task, &outputs))
            .await
        {
            Some(r) => r,
            // The task changed under us (cancelled): it will never show these media.
            None => {
                self.store.expire_media(&task.id, now_ms()).await?;
                return Ok(());
            }
        };
        let now = now_ms();
        let deadline_ms = (self.archive.config.archive_deadline_seconds * 1000) as i64;
        match result {
            Ok(archived) => {
                let retention = match self.store.get_account(&task.account_id).await? {
                    Some(a) => a.retention_seconds,
                    None => None,
                }
                .unwrap_or(self.archive.retention_seconds as i64);
                let mut u = TaskUpdate::new(&task.id, &live)
                    .leased_by(&self.owner)
                    .to(TaskState::Succeeded);
                u.outputs = Some(archived.outputs);
                u.poster = archived.poster;
                u.last_frame = archived.last_frame;
                u.upstream_outputs = Some(outputs);
                u.archive_started_at = Some(started);
                u.expires_at = Some(now.saturating_add(retention.saturating_mul(1000)));
                u.next_attempt_at = Some(None);
                u.release_lease = true;
                if self.store.update_task(u).await?.is_none() {
                    self.store.expire_media(&task.id, now).await?;
                }
                Ok(())
            }
            Err(e) if matches!(e, ArchiveError::Permanent(_)) || now - started >= deadline_ms => {
                metrics::counter!("reelay_archive_failures_total", "kind" => "final").increment(1);
                tracing::warn!(task = %task.id, error = %e, "archiving failed for good; the task fails and is refunded");
                let mut u = TaskUpdate::new(&task.id, &live)
                    .leased_by(&self.owner)
                    .to(TaskState::Failed);
                u.failure = Some((
                    CODE_ARCHIVE_FAILED.into(),
                    format!("The outputs could not be archived: {e}"),
                ));
                u.upstream_outputs = Some(outputs);
                u.archive_started_at = Some(started);
                u.expires_at = Some(now);
                u.next_attempt_at = Some(None);
                u.release_lease = true;
                self.store.update_task(u).await?;
                Ok(())
            }
            Err(e) => {
                // Waits grow with the time already spent, so a long outage costs few attempts.
                let wait = ((now - started) / 2).clamp(
                    self.config.backoff_base_ms as i64,
                    self.config.backoff_max_ms as i64,
                );
                metrics::counter!("reelay_archive_failures_total", "kind" => "retried")
                    .increment(1);
                tracing::warn!(task = %task.id, error = %e, wait_ms = wait, "archiving outputs failed; will retry");
                let mut u = TaskUpdate::new(&task.id, &live).leased_by(&self.owner);
                u.archive_started_at = Some(started);
                u.next_attempt_at = Some(Some(now + wait));
                u.release_lease = true;
                self.store.update_task(u).await?;
                Ok(())
            }
        }
    }

    /// Runs `work` while extending the task's claim, so a long download is not taken over by
    /// another worker when the lease would run out. `None` when the claim was lost (the task
    /// was cancelled or changed); `work` is then dropped, which aborts its upload.
    ///
    /// The keeper is a future of its own, polled side by side with `work`: were the renewal
    /// awaited inside a `select!` arm, `work` would not be polled meanwhile, and if it held the
    /// store's single writer connection at that moment, the renewal would wait for it forever.
    async fn with_lease_kept<T>(
        &self,
        task: &Task,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let lease_ms = (self.config.lease_seconds * 1000) as i64;
        let every = std::time::Duration::from_millis((lease_ms / 3).max(100) as u64);
        let keeper = async {
            loop {
                tokio::time::sleep(every).await;
                let mut u = TaskUpdate::new(&task.id, &[TaskState::Running, TaskState::Throttled])
                    .leased_by(&self.owner);
                u.next_attempt_at = Some(Some(now_ms() + lease_ms));
                match self.store.update_task(u).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(task = %task.id, error = %e, "could not extend the claim while archiving")
                    }
                }
            }
        };
        tokio::select! {
            out = work => Some(out),
            () = keeper => None,
        }
    }

    /// Whether the configuration retries this upstream failure code on another channel
    /// (a listed code, or one it prefixes: `INTERNAL.BAD_OUTPUT` covers `.CODE01`).
    fn retryable(&self, code: &str) -> bool {
        self.config.retry_failure_codes.iter().any(|c| {
            code == c || (code.starts_with(c.as_str()) && code[c.len()..].starts_with('.'))
        })
    }

    /// A definitive failure the configuration retries: back to the queue with the same hold
    /// (nothing is charged twice: the task settles once, whenever it ends), and its channel
    /// tried last. The upstream's job is over, so nothing can run twice.
    async fn retry_elsewhere(
        &self,
        task: &Task,
        ch: &crate::Channel,
        code: &str,
        message: &str,
    ) -> Result<(), EngineError> {
        tracing::info!(task = %task.id, channel = ch.name(), code, "retryable upstream failure; trying another channel");
        let mut u = TaskUpdate::new(&task.id, &[TaskState::Running, TaskState::Throttled])
            .leased_by(&self.owner)
            .to(TaskState::Queued);
        u.clear_upstream = true;
        u.progress = Some(0.0);
        u.next_attempt_at = Some(Some(now_ms()));
        u.release_lease = true;
        u.event_data = Some(serde_json::json!({
            "channel": ch.name(), "retry_after_failure": code, "reason": message,
        }));
        self.store.update_task(u).await?;
        Ok(())
    }

    async fn poll_later(
        &self,
        task: &Task,
        ch: &crate::Channel,
        to: Option<TaskState>,
        progress: Option<f64>,
    ) -> Result<(), EngineError> {
        let mut u = TaskUpdate::new(&task.id, &[TaskState::Running, TaskState::Throttled])
            .leased_by(&self.owner);
        u.to = to;
        u.progress = progress;
        u.next_attempt_at = Some(Some(self.next_poll_at(task, ch)));
        u.release_lease = true;
        self.store.update_task(u).await?;
        Ok(())
    }

    /// A cancelled task whose upstream job still has to be stopped.
    pub(crate) async fn cancel_upstream(self: &Arc<Engine>, task: Task) -> Result<(), EngineError> {
        let ch = task.channel.as_deref().and_then(|c| self.channels.get(c));
        let upstream_id = match (&task.upstream_id, ch.as_deref()) {
            (Some(id), _) => Some(id.clone()),
            // Cancelled while submitting and the submitter is gone: find the job if we can.
            (None, Some(ch)) => ch.upstream.lookup(&task.id).await.ok().flatten(),
            (None, None) => None,
        };
        let done = match (upstream_id.as_deref(), ch.as_deref()) {
            (Some(id), Some(ch)) => match ch.upstream.cancel(id).await {
                Ok(()) => true,
                Err(UpstreamError::Unsupported) => true,
                Err(e) => {
                    tracing::warn!(task = %task.id, error = %e, "upstream cancel failed; will retry");
                    false
                }
            },
            _ => true,
        };
        let mut u = TaskUpdate::new(&task.id, &[TaskState::Cancelled]).leased_by(&self.owner);
        u.upstream_id = upstream_id;
        u.release_lease = true;
        if done || self.past_deadline(&task) {
            u.cancel_upstream = Some(false);
            u.next_attempt_at = Some(None);
        } else {
            u.next_attempt_at = Some(Some(now_ms() + 5_000));
        }
        self.store.update_task(u).await?;
        Ok(())
    }
}
