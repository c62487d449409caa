//! kie.ai's quick-start format (shared/api/quickstart.md): `POST /api/v1/runway/generate` and
//! `GET /api/v1/runway/record-detail?taskId=`.
//!
//! Every answer is the `{code, msg, data}` envelope, errors included, in an HTTP 200 (§1, §8):
//! 401 bad key, 402 insufficient credits, 404 unknown task, 422 validation, 429 rate limit (with
//! `Retry-After`), 455 maintenance (how a 503 fault shows here); only other 5xx keep their
//! HTTP status. States: `wait` (accepted, its clock started), `queueing` (throttled),
//! `generating`, `success`, `fail`.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::create::{changed_at, output_url, Face, Parsed};
use super::error::ApiError;
use crate::fault::Fault;
use crate::files::output_file;
use crate::state::{failure_message, Format, Phase, Task};
use crate::Sim;

const ASPECT_RATIOS: [&str; 5] = ["16:9", "4:3", "1:1", "3:4", "9:16"];
const MAX_PROMPT_CHARS: usize = 1800;

/// The envelope with an error `code`, in an HTTP 200.
pub(crate) fn error(code: u16, msg: impl Into<String>) -> ApiError {
    error_with_status(StatusCode::OK, code, msg)
}

fn error_with_status(status: StatusCode, code: u16, msg: impl Into<String>) -> ApiError {
    ApiError::with_body(
        status,
        json!({"code": code, "msg": msg.into(), "data": null}),
    )
}

fn ok(data: Value) -> Response {
    Json(json!({"code": 200, "msg": "success", "data": data})).into_response()
}

fn check_key(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &sim.inner.config.api_key else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(k) if k == key => Ok(()),
        _ => Err(error(
            401,
            "Unauthorized - Authentication credentials are missing or invalid",
        )),
    }
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    error(422, msg)
}

/// `5`, `5.0` or `"5"` (decision 5).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The duration a model name implies (`runway-duration-5-generate` → 5; decision 3).
pub(crate) fn model_duration(model: &str) -> Option<i64> {
    let rest = model.strip_prefix("runway-duration-")?;
    rest.split('-').next()?.parse().ok()
}

fn text<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(unprocessable(format!("{key} must be a string"))),
    }
}

/// Credits per (duration, quality), from the third-party catalog the doc quotes (§11, 22).
fn credits(duration: i64, quality: &str) -> i64 {
    match (duration, quality) {
        (5, "720p") => 12,
        _ => 30,
    }
}

/// The quick-start format's face for the shared create pipeline.
pub(crate) struct Quickstart;

impl Face for Quickstart {
    const FORMAT: Format = Format::Quickstart;

    fn check(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
        check_key(sim, headers)
    }

    fn bad_body(_status: StatusCode, message: String) -> ApiError {
        error(400, message)
    }

    fn invalid(message: String) -> ApiError {
        unprocessable(message)
    }

    fn parse(_sim: &Sim, _route: &'static str, body: &Value) -> Result<Parsed, ApiError> {
        if !body.is_object() {
            return Err(error(400, "The body must be a JSON object"));
        }
        let prompt = text(body, "prompt")?.unwrap_or("");
        if prompt.trim().is_empty() {
            return Err(unprocessable("prompt is required"));
        }
        if prompt.chars().count() > MAX_PROMPT_CHARS {
            return Err(unprocessable(format!(
                "prompt cannot exceed {MAX_PROMPT_CHARS} characters"
            )));
        }
        let model = text(body, "model")?;
        let implied = model.and_then(model_duration);
        let duration = match body.get("duration").filter(|v| !v.is_null()) {
            Some(v) => {
                let d = number(v)
                    .filter(|d| *d == 5.0 || *d == 10.0)
                    .ok_or_else(|| unprocessable("duration must be 5 or 10"))?
                    as i64;
                if implied.is_some_and(|m| m != d) {
                    return Err(unprocessable("duration does not match the model"));
                }
                d
            }
            None => implied.ok_or_else(|| unprocessable("duration is required"))?,
        };
        let quality = text(body, "quality")?.unwrap_or("720p");
        if !["720p", "1080p"].contains(&quality) {
            return Err(unprocessable("quality must be 720p or 1080p"));
        }
        if duration == 10 && quality == "1080p" {
            return Err(unprocessable(
                "duration 10 cannot be combined with quality 1080p",
            ));
        }
        let image = text(body, "imageUrl")?.filter(|s| !s.is_empty());
        if let Some(i) = image {
            if !(i.starts_with("https://") || i.starts_with("http://") || i.starts_with("data:")) {
                return Err(unprocessable("imageUrl must be an http(s) URL"));
            }
        }
        match text(body, "aspectRatio")? {
            Some(r) if !ASPECT_RATIOS.contains(&r) => {
                return Err(unprocessable(format!(
                    "aspectRatio must be one of {}",
                    ASPECT_RATIOS.join(", ")
                )))
            }
            None if image.is_none() => {
                return Err(unprocessable("aspectRatio is required for text-to-video"))
            }
            _ => {}
        }
        text(body, "waterMark")?;
        let callback_url = match text(body, "callBackUrl")?.filter(|s| !s.is_empty()) {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u.to_string()),
            Some(_) => return Err(unprocessable("callBackUrl must be an http(s) URL")),
            None => None,
        };
        Ok(Parsed {
            endpoint: if image.is_some() {
                "image_to_video"
            } else {
                "text_to_video"
            }
            .to_string(),
            prompt: prompt.to_string(),
            model: model
                .map(str::to_string)
                .unwrap_or_else(|| format!("runway-duration-{duration}-generate")),
            estimated: credits(duration, quality),
            output: reelay_core::MediaKind::Video,
            callback_url,
        })
    }

    fn refuse(fault: &Fault) -> ApiError {
        match fault {
            Fault::RateLimit { retry_after_secs } => {
                error(429, "Rate limited, please try again later")
                    .header("retry-after", retry_after_secs)
            }
            Fault::ServerError { status: 503 } | Fault::AcceptThenServerError { status: 503 } => {
                error(455, "Service unavailable: the system is under maintenance")
            }
            Fault::ServerError { status } | Fault::AcceptThenServerError { status } => {
                let s = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error_with_status(s, *status, "Server error")
            }
            Fault::Moderation => error(
                400,
                "Your prompt was caught by our AI moderator. Please adjust it and try again!",
            ),
            Fault::OutOfCredit => error(402, "Insufficient credits"),
            other => unreachable!("not a refusing fault: {other:?}"),
        }
    }

    fn accepted(
        _sim: &Sim,
        _headers: &HeaderMap,
        task: &Task,
        _phase: &Phase,
        _started: Instant,
    ) -> Response {
        ok(json!({"taskId": task.id.to_string()}))
    }
}

pub(crate) async fn create(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    super::create::create::<Quickstart>(sim, "generate", headers, body).await
}

/// §4.3; a throttled task waits in the queue.
fn state_of(phase: &Phase) -> &'static str {
    match phase {
        Phase::Throttled => "queueing",
        Phase::Pending => "wait",
        Phase::Running { .. } => "generating",
        Phase::Succeeded => "success",
        Phase::Failed { .. } => "fail",
    }
}

/// 400 for content and input rejections, 500 for the rest (§9).
pub(crate) fn fail_code(code: &str) -> u16 {
    if code.starts_with("SAFETY.") || code.starts_with("ASSET.") {
        400
    } else {
        500
    }
}

/// The id of a task's video (stable, distinct from the task id).
fn video_id(task: &Task) -> String {
    Uuid::new_v5(&task.id, b"video").to_string()
}

fn detail(sim: &Sim, headers: &HeaderMap, task: &Task, phase: &Phase) -> Value {
    let body = &task.seen.body;
    let video_info = match phase {
        Phase::Succeeded => json!({
            "videoId": video_id(task),
            "taskId": task.id.to_string(),
            "videoUrl": output_url(sim, headers, task, output_file(task.output).0),
            "imageUrl": output_url(sim, headers, task, "output.png"),
        }),
        _ => Value::Null,
    };
    let (fail_code, fail_msg) = match phase {
        Phase::Failed { code } => (json!(fail_code(code)), failure_message(code)),
        _ => (Value::Null, ""),
    };
    // Submission time until the task ends, completion time after (decision 8), in UTC.
    let at = changed_at(task, phase);
    let when = if phase.is_terminal() {
        at
    } else {
        task.created
    };
    let generate_time = (task.created_at
        + chrono::Duration::from_std(when.saturating_duration_since(task.created))
            .unwrap_or_default())
    .format("%Y-%m-%d %H:%M:%S")
    .to_string();
    json!({
        "taskId": task.id.to_string(),
        "parentTaskId": "",
        "generateParam": {
            "prompt": task.seen.prompt,
            "imageUrl": body.get("imageUrl").and_then(Value::as_str).unwrap_or(""),
            "expandPrompt": body.get("expandPrompt").and_then(Value::as_bool).unwrap_or(false),
        },
        "state": state_of(phase),
        "generateTime": generate_time,
        "videoInfo": video_info,
        "failCode": fail_code,
        "failMsg": fail_msg,
        "expireFlag": 0,
    })
}

/// The generation callback of §6.2 (terminal states only).
pub(crate) fn callback_body(sim: &Sim, task: &Task, phase: &Phase) -> Value {
    let headers = HeaderMap::new();
    match phase {
        Phase::Succeeded => json!({
            "code": 200,
            "msg": "All generated successfully.",
            "data": {
                "task_id": task.id.to_string(),
                "video_id": video_id(task),
                "video_url": output_url(sim, &headers, task, output_file(task.output).0),
                "image_url": output_url(sim, &headers, task, "output.png"),
            },
        }),
        Phase::Failed { code } => json!({
            "code": fail_code(code),
            "msg": failure_message(code),
            "data": {"task_id": task.id.to_string(), "video_id": "", "video_url": "", "image_url": ""},
        }),
        _ => Value::Null,
    }
}

/// `GET /api/v1/runway/record-detail?taskId=`.
pub(crate) async fn record_detail(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    sim.state().stats.polls += 1;
    check_key(&sim, &headers)?;
    let task_id = q
        .get("taskId")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unprocessable("taskId is required"))?;
    let not_found = || error(404, "The task does not exist");
    let id = Uuid::parse_str(task_id).map_err(|_| not_found())?;
    let (task, phase) = sim.state().get(&id, Instant::now()).ok_or_else(not_found)?;
    Ok(ok(detail(&sim, &headers, &task, &phase)))
}
