//! How a task looks in the reverse dialect (shared/api/reverse.md §6.2, §10.1): the feed's
//! `data` object, which is also the callback body.

use reelay_core::TaskState;
use reelay_store::Task;
use serde_json::{json, Value};

use crate::media::{task_media, MediaLinks};

/// Canonical state → (`status`, `state`) (§10.1).
pub fn status_of(state: TaskState) -> (&'static str, &'static str) {
    match state {
        TaskState::Queued | TaskState::Submitting => ("0", "pending"),
        TaskState::Throttled => ("0", "throttled"),
        TaskState::Running => ("1", "running"),
        TaskState::Succeeded => ("3", "succeeded"),
        TaskState::Failed => ("2", "failed"),
        TaskState::Cancelled => ("2", "cancelled"),
    }
}

/// `"1"` once the task's credits went back to the account (written in the transaction of the
/// terminal state). A cancel after the upstream took the job is charged under the default
/// cancel policy (docs/credits.md), so it says `"0"`: the field tells the truth about money.
fn refunded(t: &Task) -> bool {
    t.state.is_terminal() && t.state != TaskState::Succeeded && t.credits_refunded == t.credits_held
}

fn secs(ms: i64) -> String {
    (ms.div_euclid(1000)).to_string()
}

pub fn data(links: &MediaLinks, t: &Task) -> Value {
    let media = task_media(links, t);
    let (status, state) = status_of(t.state);
    let prompt = t
        .spec
        .input
        .get("promptText")
        .and_then(Value::as_str)
        .unwrap_or("");
    let succeeded = t.state == TaskState::Succeeded;
    let msg = match t.state {
        TaskState::Failed => Some(
            t.failure_message
                .clone()
                .unwrap_or_else(|| "task failed".into()),
        ),
        TaskState::Cancelled => Some("task cancelled".to_string()),
        _ => None,
    };
    json!({
        "task_id": t.id,
        "state": state,
        "status": status,
        "prompt": prompt,
        // reelay does not translate: the prompt that went upstream (decision 13).
        "prompt_en": prompt,
        // Ours, signed; after retention they answer 404 (reverse.md decision 22).
        "video_url": if succeeded { media.outputs.first().cloned() } else { None },
        "poster": if succeeded { media.poster } else { None },
        "last_frame": if succeeded { media.last_frame } else { None },
        "msg": msg,
        "point": t.credits_held.to_string(),
        "refund": if refunded(t) { "1" } else { "0" },
        "create_time": secs(t.created_at),
        "update_time": secs(t.updated_at),
    })
}

/// One callback per transition into `"1"`, `"2"` or `"3"` (§8.2); the body is the feed's
/// `data` at that moment.
pub fn callback(
    links: &MediaLinks,
    task: &Task,
    from: Option<TaskState>,
    to: TaskState,
    _at_ms: i64,
) -> Option<(String, String)> {
    let (status, _) = status_of(to);
    let before = from.map(|f| status_of(f).0);
    if status == "0" || before == Some(status) {
        return None;
    }
    let kind = match status {
        "1" => "task.processing",
        "2" => "task.failed",
        _ => "task.succeeded",
    };
    Some((kind.to_string(), data(links, task).to_string()))
}
