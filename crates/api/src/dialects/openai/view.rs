//! How tasks look in this dialect: the Video object (§2, §14), ids, and the webhook events
//! `video.completed` / `video.failed` (§12).

use reelay_core::TaskState;
use reelay_store::Task;
use serde_json::{json, Value};

use super::params::Params;

const PREFIX: &str = "video_";

/// `video_` + the task id's 32 hex digits: reversible, so no lookup table is needed.
pub fn video_id(task_id: &str) -> String {
    match uuid::Uuid::parse_str(task_id) {
        Ok(u) => format!("{PREFIX}{}", u.simple()),
        Err(_) => format!("{PREFIX}{task_id}"),
    }
}

/// The task id of a video id; `None` for anything that is not one of ours (a 404).
pub fn task_id(video_id: &str) -> Option<String> {
    let hex = video_id.strip_prefix(PREFIX)?;
    if hex.len() != 32 {
        return None;
    }
    uuid::Uuid::try_parse(hex)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// `1280x720` → `1280:720`.
pub fn ratio_of_size(size: &str) -> Option<String> {
    let (w, h) = size.split_once('x')?;
    let ok = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    (ok(w) && ok(h)).then(|| format!("{w}:{h}"))
}

/// `1280:720` → `1280x720`.
pub fn size_of_ratio(ratio: &str) -> String {
    ratio.replace(':', "x")
}

pub fn status(state: TaskState) -> &'static str {
    match state {
        TaskState::Queued | TaskState::Submitting | TaskState::Throttled => "queued",
        TaskState::Running => "in_progress",
        TaskState::Succeeded => "completed",
        TaskState::Failed | TaskState::Cancelled => "failed",
    }
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// The Video object, every field present (null when unknown), as §2 advises.
pub fn video(task: &Task) -> Value {
    let p = Params::of(task);
    let progress = match task.state {
        TaskState::Succeeded => 100,
        TaskState::Running => ((task.progress * 100.0) as i64).clamp(0, 99),
        _ => 0,
    };
    let error = match task.state {
        TaskState::Cancelled => json!({"code": "cancelled", "message": "The video was cancelled."}),
        TaskState::Failed => json!({
            "code": task.failure_code.as_deref().unwrap_or("failed"),
            "message": task.failure_message.as_deref().filter(|m| !m.is_empty())
                .unwrap_or("Video generation failed."),
        }),
        _ => Value::Null,
    };
    let succeeded = task.state == TaskState::Succeeded;
    json!({
        "id": video_id(&task.id),
        "object": "video",
        "created_at": secs(task.created_at),
        "status": status(task.state),
        "model": p.model,
        "progress": progress,
        "seconds": p.seconds,
        "size": p.size,
        "completed_at": task.finished_at.filter(|_| succeeded).map(secs),
        "expires_at": task.expires_at.filter(|_| succeeded).map(secs),
        "error": error,
        "prompt": p.prompt,
        "remixed_from_video_id": p.remixed_from_video_id,
    })
}

/// The Video object of a task being accepted (before it is stored): queued, at `now_ms`.
pub fn accepted(task_id: &str, params: &Params, now_ms: i64) -> Value {
    json!({
        "id": video_id(task_id),
        "object": "video",
        "created_at": secs(now_ms),
        "status": "queued",
        "model": params.model,
        "progress": 0,
        "seconds": params.seconds,
        "size": params.size,
        "completed_at": null,
        "expires_at": null,
        "error": null,
        "prompt": params.prompt,
        "remixed_from_video_id": params.remixed_from_video_id,
    })
}

/// The webhook of a terminal transition: (event type, body). Only the end of a video is
/// reported, as OpenAI does; the body names the video, the client retrieves it.
pub fn callback(task: &Task, to: TaskState, at_ms: i64) -> Option<(String, String)> {
    let kind = match to {
        TaskState::Succeeded => "video.completed",
        TaskState::Failed | TaskState::Cancelled => "video.failed",
        _ => return None,
    };
    // One event per transition: the id is derived from the task and the event, so a
    // re-rendered payload of the same transition carries the same id.
    let evt = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("reelay:openai:{}:{kind}", task.id).as_bytes(),
    );
    let body = json!({
        "id": format!("evt_{}", evt.simple()),
        "object": "event",
        "created_at": secs(at_ms),
        "type": kind,
        "data": {"id": video_id(&task.id)},
    });
    Some((kind.to_string(), body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_strangers_are_refused() {
        let t = reelay_core::new_task_id().to_string();
        let v = video_id(&t);
        assert!(v.starts_with("video_") && v.len() == 38);
        assert_eq!(task_id(&v).as_deref(), Some(t.as_str()));
        for bad in ["video_", "video_xyz", "task_1", &v[..37], &format!("{v}0")] {
            assert_eq!(task_id(bad), None, "{bad}");
        }
        assert_eq!(ratio_of_size("1280x720").as_deref(), Some("1280:720"));
        for bad in ["1280:720", "x720", "1280x", "12a0x720", "123456x1"] {
            assert_eq!(ratio_of_size(bad), None, "{bad}");
        }
    }
}
