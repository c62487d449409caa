//! How tasks look in the quick-start dialect (§4, §7.2) and what its callbacks say (§6, §7.3).

use chrono::FixedOffset;
use reelay_core::TaskState;
use reelay_store::Task;
use serde_json::{json, Value};

use super::params::{Params, Route};

/// A task's media as this dialect reports them.
#[derive(Debug, Clone, Default)]
pub struct Media {
    pub video: Option<String>,
    pub poster: Option<String>,
    pub expired: bool,
}

/// Canonical state → `state` word (§10.1).
pub fn state_word(s: TaskState) -> &'static str {
    match s {
        TaskState::Queued => "wait",
        TaskState::Submitting | TaskState::Throttled => "queueing",
        TaskState::Running => "generating",
        TaskState::Succeeded => "success",
        TaskState::Failed | TaskState::Cancelled => "fail",
    }
}

/// 400 for content and format rejections by the upstream, 500 for everything on our side
/// (§9; decision 13 for cancellation).
pub fn fail_code(t: &Task) -> u16 {
    if t.state == TaskState::Cancelled {
        return 500;
    }
    let code = t.failure_code.as_deref().unwrap_or("");
    let ours = [
        "NO_CHANNEL",
        "UPSTREAM_UNAVAILABLE",
        "UPSTREAM_UNKNOWN_OUTCOME",
        "UPSTREAM_LOST",
        "TIMEOUT",
        "CHANNEL_GONE",
        "INTERNAL",
        "ARCHIVE",
    ];
    if code.is_empty() || ours.iter().any(|p| code.starts_with(p)) {
        500
    } else {
        400
    }
}

pub fn fail_msg(t: &Task) -> String {
    match t.state {
        TaskState::Cancelled => "Task cancelled".into(),
        _ => t
            .failure_message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "Generation failed, please try again later".into()),
    }
}

/// A stable id for the task's video (kie.ai hands out one per video).
pub fn video_id(t: &Task) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("reelay:video:{}", t.id).as_bytes(),
    )
    .to_string()
}

fn local_time(ms: i64, zone: FixedOffset) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `GET /api/v1/runway/record-detail` `data` (§4.2).
pub fn record_detail(t: &Task, media: &Media, zone: FixedOffset) -> Value {
    let p = Params::of(t);
    let g = p.generate_param.unwrap_or_default();
    let succeeded = t.state == TaskState::Succeeded;
    let failed = matches!(t.state, TaskState::Failed | TaskState::Cancelled);
    // Submission time until the task ends, completion time after (decision 8).
    let time = t.finished_at.unwrap_or(t.created_at);
    json!({
        "taskId": t.id,
        "parentTaskId": p.parent_task_id,
        "generateParam": g,
        "state": state_word(t.state),
        "generateTime": local_time(time, zone),
        "videoInfo": if succeeded {
            json!({
                "videoId": video_id(t),
                "taskId": t.id,
                "videoUrl": media.video.clone().unwrap_or_default(),
                "imageUrl": media.poster.clone().unwrap_or_default(),
            })
        } else {
            Value::Null
        },
        "failCode": if failed { json!(fail_code(t)) } else { Value::Null },
        "failMsg": if failed { fail_msg(t) } else { String::new() },
        "expireFlag": if succeeded && media.expired { 1 } else { 0 },
    })
}

/// `GET /api/v1/aleph/record-info` `data` (§7.2).
pub fn aleph_info(t: &Task, media: &Media) -> Value {
    let p = Params::of(t);
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let succeeded = t.state == TaskState::Succeeded;
    let failed = matches!(t.state, TaskState::Failed | TaskState::Cancelled);
    json!({
        "taskId": t.id,
        "paramJson": p.request.map(Value::Object).unwrap_or(Value::Null).to_string(),
        "response": if succeeded {
            json!({
                "taskId": t.id,
                "resultVideoUrl": media.video.clone().unwrap_or_default(),
                "resultImageUrl": media.poster.clone().unwrap_or_default(),
            })
        } else {
            Value::Null
        },
        "completeTime": t.finished_at.filter(|_| t.state.is_terminal()).map(iso),
        "createTime": iso(t.created_at),
        "successFlag": if succeeded { 1 } else { 0 },
        "errorCode": if failed { fail_code(t) } else { 0 },
        "errorMessage": if failed { fail_msg(t) } else { String::new() },
    })
}

/// The callback of a terminal transition: (event type, body, id the kie.ai HMAC covers).
pub fn callback(t: &Task, to: TaskState, media: &Media) -> Option<(String, String, String)> {
    if !to.is_terminal() {
        return None;
    }
    let aleph = Params::of(t).kind == Route::Aleph;
    let ok = to == TaskState::Succeeded;
    let body = if aleph {
        if ok {
            json!({"code": 200, "msg": "success", "taskId": t.id, "data": {
                "result_video_url": media.video.clone().unwrap_or_default(),
                "result_image_url": media.poster.clone().unwrap_or_default(),
            }})
        } else {
            json!({"code": 400, "msg": fail_msg(t), "data": null, "taskId": t.id})
        }
    } else if ok {
        json!({"code": 200, "msg": "All generated successfully.", "data": {
            "task_id": t.id,
            "video_id": video_id(t),
            "video_url": media.video.clone().unwrap_or_default(),
            "image_url": media.poster.clone().unwrap_or_default(),
        }})
    } else {
        json!({"code": fail_code(t), "msg": fail_msg(t), "data": {
            "task_id": t.id, "video_id": "", "video_url": "", "image_url": "",
        }})
    };
    let kind = if ok { "task.succeeded" } else { "task.failed" };
    Some((kind.into(), body.to_string(), t.id.clone()))
}
