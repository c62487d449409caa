//! Queued task → upstream. The attempt is recorded (`submitting`, channel) before the upstream
//! call, so a crash during the call is visible afterwards as exactly that: an unknown outcome.

use std::sync::Arc;
use std::time::Duration;

use reelay_core::TaskState;
use reelay_store::{now_ms, Task, TaskUpdate};
use reelay_upstream::{SubmitError, UpstreamError};

use crate::backoff::{backoff_ms, poll_interval_ms};
use crate::breaker::Outcome;
use crate::{Channel, Engine, EngineError, UnknownOutcomePolicy};

pub const CODE_NO_CHANNEL: &str = "NO_CHANNEL";
pub const CODE_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
pub const CODE_UNKNOWN_OUTCOME: &str = "UPSTREAM_UNKNOWN_OUTCOME";

impl Engine {
    pub(crate) async fn dispatch(self: &Arc<Engine>, task: Task) -> Result<(), EngineError> {
        let candidates = self.channels.candidates(&task.spec.model);
        if candidates.is_empty() {
            return self
                .fail(
                    &task,
                    CODE_NO_CHANNEL,
                    &format!("No channel serves model {}.", task.spec.model),
                )
                .await;
        }
        // Take a slot on the first channel with room. The cap is checked by the store in the
        // same transaction as the move to `submitting`: a count read first and written after
        // would let concurrent workers all take the last slot.
        let mut claimed = None;
        for ch in candidates {
            // An open breaker (or a 429 pause) keeps the channel out; half-open lets one probe in.
            if !ch.allow() {
                continue;
            }
            let mut u = TaskUpdate::new(&task.id, &[TaskState::Queued, TaskState::Throttled])
                .leased_by(&self.owner)
                .to(TaskState::Submitting);
            u.channel = Some(ch.name().to_string());
            u.channel_cap = ch.config.max_concurrent;
            u.bump_attempts = true;
            u.event_data =
                Some(serde_json::json!({"channel": ch.name(), "attempt": task.attempts + 1}));
            if let Some(t) = self.store.update_task(u).await? {
                claimed = Some((ch, t));
                break;
            }
            if ch.config.max_concurrent.is_none() || !self.still_ours_to_dispatch(&task.id).await? {
                return Ok(()); // cancelled or taken over meanwhile
            }
            // This channel is full; try the next one.
        }
        let Some((ch, task)) = claimed else {
            // Every channel is at its cap: wait as `throttled` and look again soon.
            let mut u = TaskUpdate::new(&task.id, &[TaskState::Queued, TaskState::Throttled])
                .leased_by(&self.owner)
                .to(TaskState::Throttled);
            u.next_attempt_at = Some(Some(now_ms() + self.config.throttle_recheck_ms as i64));
            u.release_lease = true;
            self.store.update_task(u).await?;
            return Ok(());
        };

        let spec = match self.with_uploads(&task, ch).await? {
            Prepared::Ready(spec) => spec,
            Prepared::Requeue(reason) => {
                tracing::info!(task = %task.id, channel = ch.name(), %reason, "an upload could not be handed over");
                return self
                    .requeue(&task, TaskState::Submitting, None, &reason)
                    .await;
            }
            Prepared::Fail(code, message) => return self.fail(&task, code, &message).await,
        };
        let ctx = reelay_upstream::SubmitContext {
            reference: &task.id,
            callback_url: None,
            model: ch.config.upstream_model(&task.spec.model),
        };
        let result = ch.upstream.submit(&spec, &ctx).await;
        ch.record(match &result {
            // A refusal of the request itself is a working upstream's answer.
            Ok(_) | Err(SubmitError::Rejected { .. }) => Outcome::Success,
            Err(SubmitError::NotAccepted {
                retry_after: Some(d),
                ..
            }) => Outcome::RateLimited(*d),
            Err(
                SubmitError::NotAccepted { .. }
                | SubmitError::Unknown { .. }
                | SubmitError::OutOfCredit { .. },
            ) => Outcome::Failure,
        });
        match result {
            Ok(upstream_id) => self.submitted(&task, ch, upstream_id).await,
            Err(SubmitError::NotAccepted {
                reason,
                retry_after,
            }) => {
                tracing::info!(task = %task.id, channel = ch.name(), %reason, "upstream did not take the task");
                ch.mark_unhealthy(
                    retry_after
                        .unwrap_or(Duration::from_secs(5))
                        .min(Duration::from_secs(60)),
                );
                // A Retry-After pauses this channel (its breaker), not the task: with another
                // channel open the next try goes there after the usual backoff; with none, the
                // task waits the Retry-After out.
                let elsewhere = self
                    .channels
                    .candidates(&task.spec.model)
                    .iter()
                    .any(|c| c.name() != ch.name() && c.would_allow());
                let wait = if elsewhere { None } else { retry_after };
                self.requeue(&task, TaskState::Submitting, wait, &reason)
                    .await
            }
            Err(SubmitError::Rejected { code, message }) => self.fail(&task, &code, &message).await,
            Err(SubmitError::OutOfCredit { message }) => {
                // TODO(channels): disable the channel in the registry until re-enabled.
                tracing::warn!(task = %task.id, channel = ch.name(), %message, "upstream is out of credit");
                self.requeue(&task, TaskState::Submitting, None, &message)
                    .await
            }
            Err(SubmitError::Unknown { reason }) => {
                tracing::warn!(task = %task.id, channel = ch.name(), %reason, "submit outcome unknown");
                self.defer_unknown(&task, &reason).await
            }
        }
    }

    /// The spec to submit: each of the account's uploads the body names (`runway://uploads/..`)
    /// handed to the channel's own uploads (a real Runway channel), else inline as a data URI.
    /// Nothing is submitted yet, so a failure here is safe to retry; an upload that expired
    /// before the task was submitted fails the task (and refunds it).
    async fn with_uploads<'t>(
        &self,
        task: &'t Task,
        ch: &Channel,
    ) -> Result<Prepared<'t>, EngineError> {
        use base64::Engine as _;
        use reelay_core::media_ref::{at_path, upload_refs, UPLOAD_URI_PREFIX};
        let refs = upload_refs(&task.spec.input);
        if refs.is_empty() {
            return Ok(Prepared::Ready(std::borrow::Cow::Borrowed(&task.spec)));
        }
        let mut spec = task.spec.clone();
        for (path, uri) in refs {
            let id = uri.strip_prefix(UPLOAD_URI_PREFIX).unwrap_or("");
            let Some(upload) = self
                .store
                .get_upload(&task.account_id, id, now_ms())
                .await?
            else {
                return Ok(Prepared::Fail(
                    "INPUT.UPLOAD_EXPIRED",
                    format!("The uploaded file {uri} expired before the task was submitted."),
                ));
            };
            let bytes = match self.archive.media.get_bytes(&upload.key()).await {
                Ok(b) => b,
                Err(e) => return Ok(Prepared::Requeue(format!("reading upload {id}: {e}"))),
            };
            let handed = match ch
                .upstream
                .upload(&upload.filename, &upload.content_type, bytes.to_vec())
                .await
            {
                Ok(Some(upstream_uri)) => upstream_uri,
                Ok(None) => format!(
                    "data:{};base64,{}",
                    upload.content_type,
                    base64::engine::general_purpose::STANDARD.encode(&bytes)
                ),
                Err(e) => return Ok(Prepared::Requeue(format!("upload {id}: {e:?}"))),
            };
            if let Some(slot) = at_path(&mut spec.input, &path) {
                *slot = serde_json::Value::String(handed);
            }
        }
        Ok(Prepared::Ready(std::borrow::Cow::Owned(spec)))
    }

    /// After a refused move to `submitting`: was it the channel's cap (the task is still
    /// waiting and leased by us), rather than a cancel or a takeover?
    async fn still_ours_to_dispatch(&self, id: &str) -> Result<bool, EngineError> {
        Ok(self.store.get_task_by_id(id).await?.is_some_and(|t| {
            matches!(t.state, TaskState::Queued | TaskState::Throttled)
                && t.lease_owner.as_deref() == Some(self.owner.as_str())
        }))
    }

    /// The upstream took the task: from now on it is tracked by polling.
    async fn submitted(
        &self,
        task: &Task,
        ch: &Channel,
        upstream_id: String,
    ) -> Result<(), EngineError> {
        let mut u = TaskUpdate::new(&task.id, &[TaskState::Submitting])
            .leased_by(&self.owner)
            .to(TaskState::Running);
        u.upstream_id = Some(upstream_id.clone());
        u.progress = Some(0.0);
        u.next_attempt_at = Some(Some(now_ms() + self.config.poll_min_ms as i64));
        u.release_lease = true;
        u.event_data = Some(serde_json::json!({"channel": ch.name(), "upstream_id": upstream_id}));
        if self.store.update_task(u).await?.is_some() {
            return Ok(());
        }
        // The client cancelled while we were submitting: the upstream job must not run on.
        let Some(now) = self.store.get_task_by_id(&task.id).await? else {
            return Ok(());
        };
        if now.state == TaskState::Cancelled {
            let cancelled = ch.upstream.cancel(&upstream_id).await.is_ok();
            let mut u = TaskUpdate::new(&task.id, &[TaskState::Cancelled]);
            u.upstream_id = Some(upstream_id);
            u.cancel_upstream = Some(!cancelled);
            if cancelled {
                u.next_attempt_at = Some(None);
                u.release_lease = true;
            }
            self.store.update_task(u).await?;
        }
        Ok(())
    }

    /// Back to the queue after a failure where the upstream certainly has no task.
    async fn requeue(
        &self,
        task: &Task,
        from: TaskState,
        retry_after: Option<Duration>,
        reason: &str,
    ) -> Result<(), EngineError> {
        if task.attempts >= self.config.submit_max_attempts {
            return self
                .fail(
                    task,
                    CODE_UNAVAILABLE,
                    &format!(
                        "The upstream did not accept the task after {} attempts: {reason}",
                        task.attempts
                    ),
                )
                .await;
        }
        let mut wait = backoff_ms(
            task.attempts - 1,
            self.config.backoff_base_ms,
            self.config.backoff_max_ms,
        );
        if let Some(ra) = retry_after {
            wait = wait.max(ra.as_millis() as u64);
        }
        let mut u = TaskUpdate::new(&task.id, &[from])
            .leased_by(&self.owner)
            .to(TaskState::Queued);
        u.next_attempt_at = Some(Some(now_ms() + wait as i64));
        u.release_lease = true;
        u.event_data = Some(serde_json::json!({"retry_in_ms": wait, "reason": reason}));
        self.store.update_task(u).await?;
        Ok(())
    }

    /// The submit may have reached the upstream. Settle it now (fail, resubmit) or, when
    /// reconciling, keep the task in `submitting` and ask the upstream after a grace period.
    async fn defer_unknown(&self, task: &Task, reason: &str) -> Result<(), EngineError> {
        match self.config.unknown_outcome {
            UnknownOutcomePolicy::Reconcile => {
                let mut u =
                    TaskUpdate::new(&task.id, &[TaskState::Submitting]).leased_by(&self.owner);
                u.next_attempt_at = Some(Some(now_ms() + self.config.reconcile_delay_ms as i64));
                u.release_lease = true;
                self.store.update_task(u).await?;
                Ok(())
            }
            UnknownOutcomePolicy::Fail => self.fail_unknown(task, reason).await,
            UnknownOutcomePolicy::Resubmit => {
                self.requeue(task, TaskState::Submitting, None, reason)
                    .await
            }
        }
    }

    /// A task found in `submitting` when claimed: its submit's outcome is not known (a worker
    /// died mid-call, or the call ended ambiguously). Never resubmit blindly.
    pub(crate) async fn resolve_unknown(
        self: &Arc<Engine>,
        task: Task,
        reason: &str,
    ) -> Result<(), EngineError> {
        let Some(ch) = task.channel.as_deref().and_then(|c| self.channels.get(c)) else {
            return self.fail_unknown(&task, reason).await;
        };
        match self.config.unknown_outcome {
            UnknownOutcomePolicy::Fail => self.fail_unknown(&task, reason).await,
            UnknownOutcomePolicy::Resubmit => {
                self.requeue(&task, TaskState::Submitting, None, reason)
                    .await
            }
            UnknownOutcomePolicy::Reconcile => match ch.upstream.lookup(&task.id).await {
                Ok(Some(upstream_id)) => {
                    tracing::info!(task = %task.id, %upstream_id, "reconciled: the upstream has the task");
                    self.submitted(&task, ch, upstream_id).await
                }
                Ok(None) => {
                    tracing::info!(task = %task.id, "reconciled: the upstream never got the task; resubmitting");
                    self.requeue(&task, TaskState::Submitting, None, reason)
                        .await
                }
                Err(UpstreamError::Unsupported) => self.fail_unknown(&task, reason).await,
                Err(e) => {
                    // Cannot tell yet; ask again later, until the deadline ends it.
                    if self.past_deadline(&task) {
                        return self.fail_unknown(&task, reason).await;
                    }
                    tracing::warn!(task = %task.id, error = %e, "reconcile lookup failed; will retry");
                    let mut u =
                        TaskUpdate::new(&task.id, &[TaskState::Submitting]).leased_by(&self.owner);
                    u.next_attempt_at = Some(Some(
                        now_ms()
                            + backoff_ms(2, self.config.backoff_base_ms, self.config.backoff_max_ms)
                                as i64,
                    ));
                    u.release_lease = true;
                    self.store.update_task(u).await?;
                    Ok(())
                }
            },
        }
    }

    async fn fail_unknown(&self, task: &Task, reason: &str) -> Result<(), EngineError> {
        self.fail(
            task,
            CODE_UNKNOWN_OUTCOME,
            &format!("The upstream may or may not have started this task ({reason}); it was not resubmitted, to avoid a second paid job."),
        )
        .await
    }

    pub(crate) fn past_deadline(&self, task: &Task) -> bool {
        let start = task.started_at.unwrap_or(task.created_at);
        now_ms() - start > (self.config.task_deadline_seconds * 1000) as i64
    }

    pub(crate) fn next_poll_at(&self, task: &Task) -> i64 {
        let age = now_ms() - task.started_at.unwrap_or(task.created_at);
        now_ms()
            + poll_interval_ms(
                age,
                self.config.poll_min_ms,
                self.config.poll_max_ms,
                self.config.poll_age_factor,
            ) as i64
    }

    /// Ends a task as failed, from whatever live state it is in.
    pub(crate) async fn fail(
        &self,
        task: &Task,
        code: &str,
        message: &str,
    ) -> Result<(), EngineError> {
        let mut u = TaskUpdate::new(
            &task.id,
            &[
                TaskState::Queued,
                TaskState::Throttled,
                TaskState::Submitting,
                TaskState::Running,
            ],
        )
        .leased_by(&self.owner)
        .to(TaskState::Failed);
        u.failure = Some((code.to_string(), message.to_string()));
        u.next_attempt_at = Some(None);
        u.release_lease = true;
        self.store.update_task(u).await?;
        Ok(())
    }
}

/// A task's spec made ready for its channel, or why it cannot be yet (or at all).
enum Prepared<'t> {
    Ready(std::borrow::Cow<'t, reelay_core::TaskSpec>),
    Requeue(String),
    Fail(&'static str, String),
}
