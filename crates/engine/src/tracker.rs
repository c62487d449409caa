//! Submitted task → terminal state, by polling the upstream on a schedule that backs off with
//! the task's age.

use std::sync::Arc;

use reelay_core::TaskState;
use reelay_store::{now_ms, Task, TaskUpdate};
use reelay_upstream::{UpstreamError, UpstreamStatus};

use crate::{Engine, EngineError};

pub const CODE_TIMEOUT: &str = "TIMEOUT";
pub const CODE_LOST: &str = "UPSTREAM_LOST";
pub const CODE_CHANNEL_GONE: &str = "CHANNEL_GONE";

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
        if self.past_deadline(&task) {
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
        let status = match ch.upstream.status(&upstream_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "status poll failed; will retry");
                return self.poll_later(&task, None, None).await;
            }
        };
        match status {
            UpstreamStatus::Pending => {
                self.poll_later(&task, Some(TaskState::Running), Some(0.0))
                    .await
            }
            UpstreamStatus::Throttled => {
                self.poll_later(&task, Some(TaskState::Throttled), None)
                    .await
            }
            UpstreamStatus::Running { progress } => {
                // Progress never goes backwards in what clients see.
                self.poll_later(
                    &task,
                    Some(TaskState::Running),
                    Some(progress.max(task.progress).min(0.99)),
                )
                .await
            }
            UpstreamStatus::Succeeded { outputs } => match self.archive(&task, &outputs).await {
                Ok(ours) => {
                    let mut u = TaskUpdate::new(&task.id, &live)
                        .leased_by(&self.owner)
                        .to(TaskState::Succeeded);
                    u.outputs = Some(ours);
                    u.upstream_outputs = Some(outputs);
                    u.next_attempt_at = Some(None);
                    u.release_lease = true;
                    self.store.update_task(u).await?;
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(task = %task.id, error = %e, "archiving outputs failed; will retry");
                    self.poll_later(&task, None, None).await
                }
            },
            UpstreamStatus::Failed { code, message } => {
                self.fail(&task, code.as_deref().unwrap_or("INTERNAL"), &message)
                    .await
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

    async fn poll_later(
        &self,
        task: &Task,
        to: Option<TaskState>,
        progress: Option<f64>,
    ) -> Result<(), EngineError> {
        let mut u = TaskUpdate::new(&task.id, &[TaskState::Running, TaskState::Throttled])
            .leased_by(&self.owner);
        u.to = to;
        u.progress = progress;
        u.next_attempt_at = Some(Some(self.next_poll_at(task)));
        u.release_lease = true;
        self.store.update_task(u).await?;
        Ok(())
    }

    /// A cancelled task whose upstream job still has to be stopped.
    pub(crate) async fn cancel_upstream(self: &Arc<Engine>, task: Task) -> Result<(), EngineError> {
        let ch = task.channel.as_deref().and_then(|c| self.channels.get(c));
        let upstream_id = match (&task.upstream_id, ch) {
            (Some(id), _) => Some(id.clone()),
            // Cancelled while submitting and the submitter is gone: find the job if we can.
            (None, Some(ch)) => ch.upstream.lookup(&task.id).await.ok().flatten(),
            (None, None) => None,
        };
        let done = match (upstream_id.as_deref(), ch) {
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
