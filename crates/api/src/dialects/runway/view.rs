//! How a task looks in Runway's dialect.

use reelay_core::TaskState;
use reelay_store::Task;
use serde_json::{json, Value};

use crate::media::{task_media, MediaLinks};

/// Canonical state → Runway `status` (runway-official.md §8.5).
pub fn status_of(state: TaskState) -> &'static str {
    match state {
        TaskState::Queued | TaskState::Submitting => "PENDING",
        TaskState::Throttled => "THROTTLED",
        TaskState::Running => "RUNNING",
        TaskState::Succeeded => "SUCCEEDED",
        TaskState::Failed => "FAILED",
        TaskState::Cancelled => "CANCELLED",
    }
}

/// reelay's own failure codes → Runway-style dotted codes; upstream codes pass through.
const FAILURE_CODES: &[(&str, &str)] = &[
    ("NO_CHANNEL", "INTERNAL.NO_CHANNEL"),
    ("UPSTREAM_UNAVAILABLE", "THIRD_PARTY.UNAVAILABLE"),
    ("UPSTREAM_UNKNOWN_OUTCOME", "INTERNAL.UNKNOWN_OUTCOME"),
    ("UPSTREAM_LOST", "INTERNAL.LOST"),
    ("UPSTREAM_REJECTED", "INPUT_PREPROCESSING.REJECTED"),
    ("SAFETY.INPUT", "SAFETY.INPUT.TEXT"),
    ("TIMEOUT", "INTERNAL.TIMEOUT"),
    ("CHANNEL_GONE", "INTERNAL.CHANNEL_GONE"),
    ("ARCHIVE_FAILED", "INTERNAL.ARCHIVE_FAILED"),
];

fn failure_code(code: &str) -> &str {
    FAILURE_CODES
        .iter()
        .find(|(ours, _)| *ours == code)
        .map(|(_, theirs)| *theirs)
        .unwrap_or(code)
}

pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub fn task_json(links: &MediaLinks, t: &Task) -> Value {
    let status = status_of(t.state);
    let mut v = json!({"id": t.id, "status": status, "createdAt": iso_ms(t.created_at)});
    match t.state {
        TaskState::Queued | TaskState::Submitting | TaskState::Throttled => {
            v["estimatedCost"] = json!({"credits": t.credits_held});
        }
        TaskState::Running => {
            v["progress"] = json!(t.progress);
            v["estimatedCost"] = json!({"credits": t.credits_held});
        }
        TaskState::Succeeded => {
            // Ours, signed; after retention they answer 404 (Runway has no expiry flag).
            v["output"] = json!(task_media(links, t).outputs);
            v["cost"] = json!({"credits": t.credits_held - t.credits_refunded});
        }
        TaskState::Failed => {
            v["failure"] = json!(t
                .failure_message
                .clone()
                .unwrap_or_else(|| "The task failed.".into()));
            v["failureCode"] = json!(t.failure_code.as_deref().map(failure_code));
            v["cost"] = json!({"credits": t.credits_captured});
        }
        TaskState::Cancelled => {
            v["cost"] = json!({"credits": t.credits_captured});
        }
    }
    v
}

/// reelay's extension to Runway's API: a task created with `X-Reelay-Callback-Url` is reported
/// there as a Standard Webhooks event `{"type", "timestamp", "data": <the task as GET shows
/// it>}` when it starts running and when it ends.
pub fn callback(
    links: &MediaLinks,
    task: &Task,
    from: Option<TaskState>,
    to: TaskState,
    at_ms: i64,
) -> Option<(String, String)> {
    let kind = match to {
        TaskState::Running if from != Some(TaskState::Running) => "task.running",
        TaskState::Succeeded => "task.succeeded",
        TaskState::Failed => "task.failed",
        TaskState::Cancelled => "task.cancelled",
        _ => return None,
    };
    let body = json!({"type": kind, "timestamp": iso_ms(at_ms), "data": task_json(links, task)});
    Some((kind.to_string(), body.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_milliseconds_and_z() {
        assert_eq!(super::iso_ms(1_724_653_833_796), "2024-08-26T06:30:33.796Z");
    }
}
