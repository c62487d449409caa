//! The resellers' reverse format (shared/api/reverse.md): `POST /runway/pro/generate`,
//! `/runway/pro/video2video`, `/runway/pro/act_one`, and `POST`/`GET /runway/feed`, under each
//! of the three prefixes resellers use (`/runway`, `/api/video/runway`, `/runway/v1`).
//!
//! Every answer is the `{code, msg, message, data, exec_time}` envelope; errors carry an HTTP
//! status equal to `code` (§7.1: 400, 401, 402 `insufficient points`, 429 with `Retry-After`,
//! 5xx). Task states are the `status` strings `"0"`–`"3"` with reelay's `state` words (§10.1):
//! a throttled task is `"0"`/`throttled`.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::create::{changed_at, output_url, unix_at, Face, Parsed};
use super::error::ApiError;
use crate::fault::Fault;
use crate::files::output_file;
use crate::state::{failure_message, Format, Phase, Task};
use crate::Sim;

/// The prefixes the reverse routes are mounted under (§1.1); exact aliases.
pub(crate) const PREFIXES: [&str; 3] = ["/runway", "/api/video/runway", "/runway/v1"];

/// Models each route takes (§3.1, §4.1, §5.1) and its default.
const GENERATE_MODELS: [&str; 5] = ["gen2", "gen3", "gen4", "gen4_turbo", "gen4.5"];
const VIDEO2VIDEO_MODELS: [&str; 4] = ["gen3", "gen4", "gen4_aleph", "aleph2"];
const ACT_ONE_MODELS: [&str; 2] = ["act_one", "act_two"];
const RATIO_WORDS: [&str; 6] = ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"];
/// Points per second of output (10 s → `"320"`, as in the docs' samples).
const POINTS_PER_SECOND: i64 = 32;

/// The envelope with an error: HTTP status = `code` (decision 11).
pub(crate) fn error(code: u16, msg: impl Into<String>) -> ApiError {
    let msg = msg.into();
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::with_body(
        status,
        json!({"code": code, "msg": msg, "message": msg, "data": null, "exec_time": 0.001}),
    )
}

fn invalid(msg: impl std::fmt::Display) -> ApiError {
    error(400, format!("invalid request: {msg}"))
}

fn ok(data: Value, started: Instant) -> Response {
    Json(json!({
        "code": 200,
        "msg": "success",
        "message": "",
        "data": data,
        "exec_time": started.elapsed().as_secs_f64(),
    }))
    .into_response()
}

/// `Bearer <key>` or, as DuomiAPI's clients send it, the bare key (§1.2).
fn check_key(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &sim.inner.config.api_key else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
    match given {
        Some(k) if k == key => Ok(()),
        _ => Err(error(401, "invalid api key")),
    }
}

/// A body's fields, read with the reverse format's type rules.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: &'static str,
}

impl<'a> Fields<'a> {
    fn text(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid(format!("{}{key} must be a string", self.prefix))),
        }
    }

    /// A media input: a URL or a data URI.
    fn media(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        let v = self.text(key)?.filter(|s| !s.is_empty());
        match v {
            Some(s) if !is_media(s) => Err(invalid(format!(
                "{}{key} must be an http(s) URL or a data URI",
                self.prefix
            ))),
            other => Ok(other),
        }
    }

    fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| (min..=max).contains(n))
                .map(Some)
                .ok_or_else(|| {
                    invalid(format!(
                        "{}{key} must be an integer from {min} to {max}",
                        self.prefix
                    ))
                }),
        }
    }

    fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(invalid(format!("{}{key} must be an object", self.prefix))),
        }
    }
}

fn is_media(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://") || s.starts_with("data:")
}

fn model(given: Option<&str>, default: &str, known: &[&str]) -> Result<String, ApiError> {
    let name = given.unwrap_or(default);
    if known.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(invalid(format!(
            "model {name:?} is not available here; use one of {}",
            known.join(", ")
        )))
    }
}

fn seconds(opts: &Fields, default: i64) -> Result<i64, ApiError> {
    match opts.obj.get("seconds") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .filter(|s| [5, 10].contains(s))
            .ok_or_else(|| invalid("options.seconds must be 5 or 10")),
    }
}

/// Word ratios (`16:9`) or pixel ones (`1280:720`, §3.1).
fn check_ratio(ratio: Option<&str>) -> Result<(), ApiError> {
    let Some(r) = ratio else { return Ok(()) };
    let pixels = r.split_once(':').is_some_and(|(w, h)| {
        w.parse::<u32>().is_ok_and(|w| w > 0) && h.parse::<u32>().is_ok_and(|h| h > 0)
    });
    if RATIO_WORDS.contains(&r) || pixels {
        Ok(())
    } else {
        Err(invalid(format!(
            "ratio must be one of {}",
            RATIO_WORDS.join(", ")
        )))
    }
}

fn callback(top: &Fields) -> Result<Option<String>, ApiError> {
    match top.text("callback_url")?.filter(|s| !s.is_empty()) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u.into())),
        Some(_) => Err(invalid("callback_url must be an http(s) URL")),
        None => Ok(None),
    }
}

/// The reverse format's face for the shared create pipeline.
pub(crate) struct Reverse;

impl Face for Reverse {
    const FORMAT: Format = Format::Reverse;

    fn check(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
        check_key(sim, headers)
    }

    fn bad_body(status: StatusCode, message: String) -> ApiError {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            error(413, "request body too large")
        } else {
            invalid(message)
        }
    }

    fn invalid(message: String) -> ApiError {
        invalid(message)
    }

    fn parse(_sim: &Sim, route: &'static str, body: &Value) -> Result<Parsed, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| invalid("the body must be a JSON object"))?;
        let top = Fields { obj, prefix: "" };
        let empty = Map::new();
        let opts = Fields {
            obj: top.object("options")?.unwrap_or(&empty),
            prefix: "options.",
        };
        let callback_url = callback(&top)?;
        top.int("seed", 0, 4_294_967_295)?;
        opts.int("seed", 0, 4_294_967_295)?;
        let prompt = top.text("prompt")?.unwrap_or("").to_string();
        let given_model = top.text("model")?;
        let (endpoint, model, points) = match route {
            "generate" => {
                let image = top.media("image")?;
                top.media("last_image")?;
                check_ratio(top.text("ratio")?)?;
                top.text("style")?;
                if image.is_none() && prompt.trim().is_empty() {
                    return Err(invalid("prompt is required"));
                }
                let model = model(given_model, "gen3", &GENERATE_MODELS)?;
                let secs = seconds(&opts, 10)?;
                let endpoint = if image.is_some() {
                    "image_to_video"
                } else {
                    "text_to_video"
                };
                (endpoint, model, secs * POINTS_PER_SECOND)
            }
            "video2video" => {
                if top.media("video")?.is_none() {
                    return Err(invalid("video is required"));
                }
                if prompt.trim().is_empty() {
                    return Err(invalid("prompt is required"));
                }
                let model = model(given_model, "gen3", &VIDEO2VIDEO_MODELS)?;
                let secs = seconds(&opts, 5)?;
                ("video_to_video", model, secs * POINTS_PER_SECOND)
            }
            "act_one" => {
                if top.media("video")?.is_none() {
                    return Err(invalid("video is required"));
                }
                let image = top.media("image")?;
                let character_video = top.media("character_video")?;
                if image.is_none() && character_video.is_none() {
                    return Err(invalid("image is required"));
                }
                let model = model(given_model, "act_one", &ACT_ONE_MODELS)?;
                ("character_performance", model, 10 * POINTS_PER_SECOND)
            }
            other => unreachable!("no reverse route {other}"),
        };
        Ok(Parsed {
            endpoint: endpoint.to_string(),
            prompt,
            model,
            estimated: points,
            output: reelay_core::MediaKind::Video,
            callback_url,
        })
    }

    fn refuse(fault: &Fault) -> ApiError {
        match fault {
            Fault::RateLimit { retry_after_secs } => {
                error(429, "rate limited").header("retry-after", retry_after_secs)
            }
            Fault::ServerError { status } | Fault::AcceptThenServerError { status } => {
                let msg = match status {
                    502 => "bad gateway",
                    503 => "service unavailable",
                    504 => "gateway timeout",
                    _ => "internal error",
                };
                let e = error(*status, msg);
                if *status == 503 {
                    e.header("retry-after", 1)
                } else {
                    e
                }
            }
            Fault::Moderation => error(
                400,
                "Inappropriate content detected. Please replace the image or video.",
            ),
            Fault::OutOfCredit => error(402, "insufficient points"),
            other => unreachable!("not a refusing fault: {other:?}"),
        }
    }

    fn accepted(
        sim: &Sim,
        headers: &HeaderMap,
        task: &Task,
        phase: &Phase,
        started: Instant,
    ) -> Response {
        ok(task_data(sim, headers, task, phase), started)
    }
}

pub(crate) async fn create(
    State(sim): State<Sim>,
    route: &'static str,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    super::create::create::<Reverse>(sim, route, headers, body).await
}

/// `(status, state)` of a phase (§10.1).
fn status_of(phase: &Phase) -> (&'static str, &'static str) {
    match phase {
        Phase::Throttled => ("0", "throttled"),
        Phase::Pending => ("0", "pending"),
        Phase::Running { .. } => ("1", "running"),
        Phase::Failed { .. } => ("2", "failed"),
        Phase::Succeeded => ("3", "succeeded"),
    }
}

/// The task object of §6.2: the feed's `data`, and the callback body (§8.1).
pub(crate) fn task_data(sim: &Sim, headers: &HeaderMap, task: &Task, phase: &Phase) -> Value {
    let (status, state) = status_of(phase);
    let (video, poster) = match phase {
        Phase::Succeeded => (
            json!(output_url(sim, headers, task, output_file(task.output).0)),
            json!(output_url(sim, headers, task, "output.png")),
        ),
        _ => (Value::Null, Value::Null),
    };
    let (msg, refund) = match phase {
        Phase::Failed { code } => (json!(failure_message(code)), "1"),
        _ => (Value::Null, "0"),
    };
    json!({
        "task_id": task.id.to_string(),
        "state": state,
        "status": status,
        "prompt": task.seen.prompt,
        "prompt_en": task.seen.prompt,
        "video_url": video,
        "poster": poster,
        "last_frame": poster,
        "msg": msg,
        "point": task.estimated.to_string(),
        "refund": refund,
        "create_time": task.created_at.timestamp().to_string(),
        "update_time": unix_at(task, changed_at(task, phase)).to_string(),
    })
}

async fn feed(sim: Sim, headers: HeaderMap, task_id: Option<String>) -> Result<Response, ApiError> {
    let started = Instant::now();
    sim.state().stats.polls += 1;
    check_key(&sim, &headers)?;
    let task_id = task_id
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("task_id is required"))?;
    let not_found = || error(400, "task_not_exist");
    let id = Uuid::parse_str(&task_id).map_err(|_| not_found())?;
    let (task, phase) = sim.state().get(&id, Instant::now()).ok_or_else(not_found)?;
    Ok(ok(task_data(&sim, &headers, &task, &phase), started))
}

/// `POST /runway/feed` with `{"task_id": ...}` (§6.1).
pub(crate) async fn feed_post(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let task_id = match body {
        Ok(Json(v)) => v.get("task_id").and_then(Value::as_str).map(str::to_string),
        Err(_) => None,
    };
    feed(sim, headers, task_id).await
}

/// `GET /runway/feed?task_id=...` (§6.1, as DuomiAPI's clients call it).
pub(crate) async fn feed_get(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    feed(sim, headers, q.get("task_id").cloned()).await
}
