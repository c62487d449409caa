//! Queued task → upstream. The attempt is recorded (`submitting`, channel) before the upstream
//! call, so a crash during the call is visible afterwards as exactly that: an unknown outcome.

use std::sync::Arc;
use std::time::Duration;

use reelay_core::TaskState;
use std::time::Instant;

use reelay_store::{now_ms, SubmitRate, Task, TaskUpdate};
use reelay_upstream::{SubmitContext, SubmitError, UpstreamError};

use crate::backoff::{backoff_ms, poll_interval_ms};
use crate::breaker::Outcome;
use crate::channels::Call;
use crate::{Channel, Engine, EngineError, UnknownOutcomePolicy};

pub const CODE_NO_CHANNEL: &str = "NO_CHANNEL";
pub const CODE_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
pub const CODE_UNKNOWN_OUTCOME: &str = "UPSTREAM_UNKNOWN_OUTCOME";

impl Engine {
    pub(crate) async fn dispatch(self: &Arc<Engine>, task: Task) -> Result<(), EngineError> {
        // A task back from a failure on a channel tries the others first.
        let candidates = self.channels.candidates(
            &task.spec.model,
            &task.spec.endpoint,
            task.channel.as_deref(),
        );
        if candidates.is_empty() {
            return self
                .fail(
                    &task,
                    CODE_NO_CHANNEL,
                    &format!("No channel serves model {}.", task.spec.model),
                )
                .await;
        }
        let mut task = task;
        // Why no channel was tried: one open circuit or a pause means looking again soon; a
        // full submit window, at its end; only full caps, when a slot frees (the store wakes
        // the longest waiter), with a slow fallback.
        let mut held_by_breaker = false;
        let mut rate_until: Option<i64> = None;
        let mut full: Vec<(String, i64)> = Vec::new();
        for (i, ch) in candidates.iter().enumerate() {
            // An open breaker (or a 429 pause) keeps the channel out; half-open lets one probe in.
            if !ch.allow() {
                held_by_breaker = true;
                continue;
            }
            let rate = ch
                .config
                .max_submits_per_second
                .and_then(SubmitRate::per_second);
            // The cap and the rate are checked by the store in the same transaction as the
            // move to `submitting`: a count read first and written after would let concurrent
            // workers (of any instance) all take the last slot.
            let mut u = TaskUpdate::new(&task.id, &[TaskState::Queued, TaskState::Throttled])
                .leased_by(&self.owner)
                .to(TaskState::Submitting);
            u.channel = Some(ch.name().to_string());
            u.channel_cap = ch.config.max_concurrent;
            u.submit_rate = rate;
            u.bump_attempts = true;
            u.event_data =
                Some(serde_json::json!({"channel": ch.name(), "attempt": task.attempts + 1}));
            let Some(claimed) = self.store.update_task(u).await? else {
                if (ch.config.max_concurrent.is_none() && rate.is_none())
                    || !self.still_ours_to_dispatch(&task.id).await?
                {
                    return Ok(()); // cancelled or taken over meanwhile
                }
                if let Some(r) = rate {
                    let end = r.slot(now_ms()) + r.slot_ms;
                    rate_until = Some(rate_until.map_or(end, |t| t.min(end)));
                }
                if let Some(cap) = ch.config.max_concurrent {
                    full.push((ch.name().to_string(), cap));
                }
                continue; // this channel is full; try the next one
            };
            task = claimed;
            // The step's span names the channel from here on.
            tracing::Span::current().record("channel", ch.name());
            let Submitted::Refused(reason, retry_after) = self.submit_on(&task, ch).await? else {
                return Ok(());
            };
            let next_open = candidates[i + 1..].iter().any(|c| c.would_allow());
            if !next_open || task.attempts >= self.config.submit_max_attempts {
                // No other channel to try now: back off. A Retry-After pauses its channel
                // (the breaker), not the task, unless no channel is open at all.
                let elsewhere = candidates.iter().any(|c| c.would_allow());
                let wait = if elsewhere { None } else { retry_after };
                return self
                    .requeue(&task, TaskState::Submitting, wait, &reason)
                    .await;
            }
            // Certainly not taken: on to the next candidate at once.
            let mut u = TaskUpdate::new(&task.id, &[TaskState::Submitting])
                .leased_by(&self.owner)
                .to(TaskState::Queued);
            u.event_data =
                Some(serde_json::json!({"channel": ch.name(), "reason": reason, "failover": true}));
            match self.store.update_task(u).await? {
                Some(t) => task = t,
                None => return Ok(()),
            }
        }
        let now = now_ms();
        let fallback = now + self.config.throttle_fallback_ms as i64;
        let mut at = rate_until.unwrap_or(fallback).min(fallback);
        if held_by_breaker {
            at = at.min(now + self.config.throttle_recheck_ms as i64);
        }
        let mut u = TaskUpdate::new(&task.id, &[TaskState::Queued, TaskState::Throttled])
            .leased_by(&self.owner)
            .to(TaskState::Throttled);
        u.next_attempt_at = Some(Some(at));
        u.release_lease = true;
        // Only while the full channels are still full: a slot freed since they were looked
        // at would otherwise wake nobody (this task was not waiting yet).
        u.unless_room = full;
        if self.store.update_task(u).await?.is_none()
            && self.still_ours_to_dispatch(&task.id).await?
        {
            // Room appeared: dispatch again right away.
            let mut u = TaskUpdate::new(&task.id, &[TaskState::Queued, TaskState::Throttled])
                .leased_by(&self.owner);
            u.next_attempt_at = Some(Some(now_ms()));
            u.release_lease = true;
            self.store.update_task(u).await?;
        }
        Ok(())
    }

    /// Submits a task that holds a slot on `ch` (it is `submitting`, leased by us).
    async fn submit_on(
        self: &Arc<Engine>,
        task: &Task,
        ch: &Arc<Channel>,
    ) -> Result<Submitted, EngineError> {
        let spec = match self.with_uploads(task, ch).await? {
            Prepared::Ready(spec) => spec,
            Prepared::Requeue(reason) => {
                tracing::info!(task = %task.id, channel = ch.name(), %reason, "an upload could not be handed over");
                return Ok(Submitted::Refused(reason, None));
            }
            Prepared::Fail(code, message) => {
                self.fail(task, code, &message).await?;
                return Ok(Submitted::Done);
            }
        };
        let callback_url = match (&self.callbacks, ch.upstream.takes_callbacks()) {
            (Some(urls), true) => Some(urls.url_for(&task.id)),
            _ => None,
        };
        let ctx = SubmitContext {
            reference: &task.id,
            callback_url: callback_url.as_deref(),
            model: ch.config.upstream_model(&task.spec.model),
        };
        let started = Instant::now();
        let result = ch.upstream.submit(&spec, &ctx).await;
        ch.record(
            Call::Submit,
            match &result {
                // A refusal of the request itself is a working upstream's answer.
                Ok(_) | Err(SubmitError::Rejected { .. }) => Outcome::Success,
                Err(SubmitError::RateLimited { retry_after, .. }) => {
                    Outcome::RateLimited(retry_after.unwrap_or(Duration::from_secs(1)))
                }
                Err(SubmitError::NotAccepted {
                    retry_after: Some(d),
                    ..
                }) => Outcome::Unavailable(*d),
                Err(
                    SubmitError::NotAccepted { .. }
                    | SubmitError::Unknown { .. }
                    | SubmitError::OutOfCredit { .. },
                ) => Outcome::Failure,
            },
            started.elapsed(),
        );
        match result {
            Ok(upstream_id) => self.submitted(task, ch, upstream_id).await?,
            Err(
                SubmitError::NotAccepted {
                    reason,
                    retry_after,
                }
                | SubmitError::RateLimited {
                    reason,
                    retry_after,
                },
            ) => {
                tracing::info!(task = %task.id, channel = ch.name(), %reason, "upstream did not take the task");
                return Ok(Submitted::Refused(reason, retry_after));
            }
            Err(SubmitError::OutOfCredit { message }) => {
                self.out_of_credit(ch, &message).await;
                return Ok(Submitted::Refused(
                    format!("channel {} is out of credit: {message}", ch.name()),
                    None,
                ));
            }
            Err(SubmitError::Rejected { code, message }) => {
                self.fail(task, &code, &message).await?
            }
            Err(SubmitError::Unknown { reason }) => {
                tracing::warn!(task = %task.id, channel = ch.name(), %reason, "submit outcome unknown");
                self.defer_unknown(task, &reason).await?
            }
        }
        Ok(Submitted::Done)
    }

    /// The upstream's account is empty: the channel goes out of service for every instance
    /// until an operator switches it back on (a top-up upstream is not something to poll for).
    async fn out_of_credit(&self, ch: &Channel, message: &str) {
        let reason = format!(
            "out of credit upstream: {}",
            message.chars().take(200).collect::<String>()
        );
        tracing::error!(channel = ch.name(), %reason, "channel disabled until an operator re-enables it");
        let stored = match ch.source {
            crate::channels::Source::Local => false,
            _ => match self
                .store
                .set_channel_enabled(ch.name(), false, Some(&reason))
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(channel = ch.name(), error = %e, "could not disable the channel");
                    false
                }
            },
        };
        if !stored {
            self.channels.disable_local(ch.name(), &reason);
        }
        if let Err(e) = self.channels.reload(self.store.as_ref()).await {
            tracing::warn!(error = %e, "reloading channels failed");
        }
    }

    async fn give_up(&self, task: &Task, reason: &str) -> Result<(), EngineError> {
        self.fail(
            task,
            CODE_UNAVAILABLE,
            &format!(
                "The upstream did not accept the task after {} attempts: {reason}",
                task.attempts
            ),
        )
        .await
    }

    /// The spec to submit: each of the account's uploads the body names (`runway://uploads/..`)
    /// handed to the channel's own uploads (a real Runway channel), else inline as a data URI.
    /// Nothing is submitted yet, so a failure here is safe to retry; an upload that expired
    /// before the task was submitted fails the task (and refunds it).
    async fn with_uploads<'t>(
        &self,
        task: &'t Task,
        ch: &Arc<Channel>,
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
        let first_poll = match self.callbacks.is_some() && ch.upstream.takes_callbacks() {
            true => self.next_poll_at(task, ch),
            false => now_ms() + self.config.poll_min_ms as i64,
        };
        u.next_attempt_at = Some(Some(first_poll));
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
            return self.give_up(task, reason).await;
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
                    self.submitted(&task, &ch, upstream_id).await
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

    /// Past the deadline of the task's channel (or the engine's, without one).
    pub(crate) fn past_deadline(&self, task: &Task) -> bool {
        let start = task.started_at.unwrap_or(task.created_at);
        let deadline = match task.channel.as_deref().and_then(|c| self.channels.get(c)) {
            Some(ch) => ch.deadline(self.config.task_deadline_seconds),
            None => Duration::from_secs(self.config.task_deadline_seconds),
        };
        now_ms() - start > deadline.as_millis() as i64
    }

    /// When to poll next: sooner for young tasks; on a channel that calls back, polling is
    /// only the fallback and runs `callback_poll_factor` times slower.
    pub(crate) fn next_poll_at(&self, task: &Task, ch: &Channel) -> i64 {
        let age = now_ms() - task.started_at.unwrap_or(task.created_at);
        let mut wait = poll_interval_ms(
            age,
            self.config.poll_min_ms,
            self.config.poll_max_ms,
            self.config.poll_age_factor,
        );
        if self.callbacks.is_some() && ch.upstream.takes_callbacks() {
            wait = (wait as f64 * self.config.callback_poll_factor.max(1.0)) as u64;
        }
        now_ms() + wait as i64
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

/// How a submit on one channel ended for the dispatch loop.
enum Submitted {
    /// Settled one way or another (running, failed, deferred): the dispatch is over.
    Done,
    /// The channel certainly did not take it (why, and its Retry-After): try the next.
    Refused(String, Option<Duration>),
}

/// A task's spec made ready for its channel, or why it cannot be yet (or at all).
enum Prepared<'t> {
    Ready(std::borrow::Cow<'t, reelay_core::TaskSpec>),
    Requeue(String),
    Fail(&'static str, String),
}
