//! Runway's `/v1` routes: create, get, delete, organization.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::SecondsFormat;
use reelay_core::{CoreError, TaskSpec};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::{drop_connection, ApiError, DOC_URL};
use crate::fault::{parse_directives, Fault};
use crate::files::{output_file, sign, unix_now};
use crate::state::{failure_is_charged, failure_message, NewTask, Phase, Task};
use crate::{Sim, RUNWAY_VERSION};

pub(crate) const REFERENCE_HEADER: &str = "x-reelay-reference";
const INITIAL_CREDITS: i64 = 1_000_000;
const MAX_MONTHLY_CREDIT_SPEND: i64 = 1_000_000;

/// Authentication, then the version header: what every `/v1` request must pass.
pub(crate) fn check_headers(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(key) = &sim.inner.config.api_key {
        let given = headers.get("authorization").and_then(|v| v.to_str().ok());
        match given.and_then(|v| v.strip_prefix("Bearer ")) {
            None => {
                return Err(ApiError::runway(
                    StatusCode::UNAUTHORIZED,
                    "No API key provided. Pass it in the Authorization header as a Bearer token.",
                ))
            }
            Some(k) if k.trim() != key => {
                return Err(ApiError::runway(
                    StatusCode::UNAUTHORIZED,
                    "Invalid API key.",
                ))
            }
            Some(_) => {}
        }
    }
    match headers
        .get("x-runway-version")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => Err(ApiError::runway(
            StatusCode::BAD_REQUEST,
            format!("The X-Runway-Version header is required. Set it to {RUNWAY_VERSION}."),
        )),
        Some(v) if v.trim() != RUNWAY_VERSION => Err(ApiError::runway(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid X-Runway-Version header \"{v}\". Supported version: {RUNWAY_VERSION}."
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// A fault that stands for a whole answer before anything is created.
fn answer_pre_accept(fault: &Fault) -> ApiError {
    match fault {
        Fault::RateLimit { retry_after_secs } => ApiError::runway(
            StatusCode::TOO_MANY_REQUESTS,
            "You have exceeded the rate limit for this model. Please retry later.",
        )
        .header("retry-after", retry_after_secs)
        .header("x-ratelimit-limit", 100)
        .header("x-ratelimit-remaining", 0)
        .header("x-ratelimit-reset", retry_after_secs),
        Fault::ServerError { status } => ApiError::server(*status),
        Fault::Moderation => ApiError::with_body(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "Your request was flagged by our content moderation system.",
                "code": "SAFETY.INPUT.TEXT",
                "docUrl": DOC_URL,
            }),
        ),
        Fault::ResetBeforeAccept => drop_connection(),
        other => unreachable!("not a pre-accept fault: {other:?}"),
    }
}

/// A fault together with the key that makes a once-directive fire only once.
struct Candidate {
    fault: Fault,
    once_key: Option<String>,
}

/// Takes the first candidate matching `pred` that may still fire, and marks it fired.
fn take_fault(sim: &Sim, candidates: &[Candidate], pred: impl Fn(&Fault) -> bool) -> Option<Fault> {
    let mut st = sim.state();
    for c in candidates.iter().filter(|c| pred(&c.fault)) {
        match &c.once_key {
            None => return Some(c.fault.clone()),
            Some(key) if st.fire_once(key.clone()) => return Some(c.fault.clone()),
            Some(_) => {}
        }
    }
    None
}

pub(crate) async fn create(
    State(sim): State<Sim>,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    sim.state().stats.creates_received += 1;
    check_headers(&sim, &headers)?;
    let reference = headers
        .get(REFERENCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|r| !r.is_empty() && r.len() <= 512)
        .map(str::to_string);

    // A queued fault belongs to this request whatever else happens to it.
    let pushed = sim.state().next_fault();
    if let Some(f) = pushed.as_ref().filter(|f| f.is_before_body()) {
        return Err(answer_pre_accept(f));
    }

    let body = body.map_err(|rej| {
        let status = rej.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "Request body is too large.".to_string()
        } else {
            rej.body_text()
        };
        ApiError::runway(status, message)
    })?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::runway(StatusCode::BAD_REQUEST, "Invalid JSON in request body."))?;
    let spec = TaskSpec::parse(&sim.inner.catalog, endpoint, &value).map_err(|e| match e {
        CoreError::Validation(issues) => ApiError::with_body(
            StatusCode::BAD_REQUEST,
            json!({"error": "Validation of body failed", "issues": issues, "docUrl": DOC_URL}),
        ),
        other => ApiError::server(500).header("x-sim-error", other.to_string().replace('\n', " ")),
    })?;

    // Which faults apply: the queued one, then the prompt's directives.
    let identity = reference.clone().unwrap_or_else(|| {
        let mut h = Sha256::new();
        h.update(endpoint.as_bytes());
        h.update(value.to_string().as_bytes());
        hex::encode(h.finalize())
    });
    let prompt = value
        .get("promptText")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut candidates: Vec<Candidate> = pushed
        .into_iter()
        .map(|fault| Candidate {
            fault,
            once_key: None,
        })
        .collect();
    candidates.extend(parse_directives(prompt).into_iter().map(|d| Candidate {
        once_key: d.once.then(|| format!("{identity}\u{0}{}", d.token)),
        fault: d.fault,
    }));
    if let Some(f) = take_fault(&sim, &candidates, Fault::is_pre_accept) {
        return Err(answer_pre_accept(&f));
    }
    let forced_failure = candidates.iter().find_map(|c| match &c.fault {
        Fault::FailTask { code } => Some(code.clone()),
        _ => None,
    });
    let slow: f64 = candidates
        .iter()
        .filter_map(|c| match c.fault {
            Fault::SlowProgress { factor } if factor.is_finite() && factor > 0.0 => Some(factor),
            _ => None,
        })
        .product();

    let media_sha256 = media_digests(&sim, &value).map_err(|uri| {
        ApiError::with_body(
            StatusCode::BAD_REQUEST,
            json!({"error": "Validation of body failed", "issues": [{"code": "custom", "path": [],
                   "message": format!("Invalid runway:// URI: {uri}")}], "docUrl": DOC_URL}),
        )
    })?;
    let config = &sim.inner.config;
    let seconds =
        |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(86_400));
    let price = spec.price;
    let new = NewTask {
        estimated: price,
        output: spec.output.unwrap_or(reelay_core::MediaKind::Video),
        model: spec.model,
        pending: seconds(config.pending_seconds),
        run: seconds(config.run_seconds * slow),
        forced_failure,
        reference,
        media_sha256,
    };
    let id = sim.state().create(new, Instant::now());
    let ok =
        Json(json!({"id": id.to_string(), "estimatedCost": {"credits": price}})).into_response();

    match take_fault(&sim, &candidates, Fault::is_post_accept) {
        None => Ok(ok),
        Some(Fault::AcceptThenServerError { status }) => Err(ApiError::server(status)),
        Some(Fault::ResetAfterAccept) => drop_connection(),
        Some(Fault::TimeoutAfterAccept { secs }) => {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Ok(ok)
        }
        Some(other) => unreachable!("not a post-accept fault: {other:?}"),
    }
}

/// SHA-256 of the bytes of every data URI and uploaded file (`runway://`) in a body: how a
/// test sees what the upstream got. An unknown `runway://` URI is refused (as Runway does).
fn media_digests(sim: &Sim, v: &Value) -> Result<Vec<String>, String> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.starts_with("runway://") => {
                let key = s.strip_prefix(super::uploads::URI_PREFIX).unwrap_or("");
                match sim.state().upload(key) {
                    Some(bytes) => out.push(hex::encode(Sha256::digest(&bytes))),
                    None => return Err(s.clone()),
                }
            }
            Value::String(s) if s.starts_with("data:") => {
                if let Some((_, b64)) = s.split_once(";base64,") {
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) {
                        out.push(hex::encode(Sha256::digest(&bytes)));
                    }
                }
            }
            Value::Array(a) => stack.extend(a.iter().rev()),
            Value::Object(o) => stack.extend(o.values().rev()),
            _ => {}
        }
    }
    Ok(out)
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::task_not_found())
}

pub(crate) async fn get_task(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    sim.state().stats.polls += 1;
    check_headers(&sim, &headers)?;
    let id = parse_id(&id)?;
    let (task, phase) = sim
        .state()
        .get(&id, Instant::now())
        .ok_or_else(ApiError::task_not_found)?;
    Ok(Json(render(&sim, &headers, &task, &phase)))
}

/// The task object of section 4.3: exactly the fields of its status.
fn render(sim: &Sim, headers: &HeaderMap, task: &Task, phase: &Phase) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(task.id.to_string()));
    o.insert(
        "createdAt".into(),
        json!(task.created_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    let estimated = json!({"credits": task.estimated});
    match phase {
        Phase::Throttled | Phase::Pending => {
            let status = if *phase == Phase::Throttled {
                "THROTTLED"
            } else {
                "PENDING"
            };
            o.insert("status".into(), json!(status));
            o.insert("estimatedCost".into(), estimated);
        }
        Phase::Running { progress } => {
            o.insert("status".into(), json!("RUNNING"));
            o.insert("progress".into(), json!(progress));
            o.insert("estimatedCost".into(), estimated);
        }
        Phase::Succeeded => {
            let (name, _, _) = output_file(task.output);
            let exp = unix_now() + sim.inner.config.output_ttl_seconds;
            let task_id = task.id.to_string();
            let sig = sign(&sim.inner.secret, &task_id, name, exp);
            let url = match &sim.inner.config.output_url {
                Some(u) => u.replace("{task_id}", &task_id),
                None => format!(
                    "{}/_sim/files/{task_id}/{name}?exp={exp}&sig={sig}",
                    sim.public_base(headers)
                ),
            };
            o.insert("status".into(), json!("SUCCEEDED"));
            o.insert("output".into(), json!([url]));
            o.insert("cost".into(), json!({"credits": task.estimated}));
        }
        Phase::Failed { code } => {
            let charged = if failure_is_charged(code) {
                task.estimated
            } else {
                0
            };
            o.insert("status".into(), json!("FAILED"));
            o.insert("failure".into(), json!(failure_message(code)));
            o.insert("failureCode".into(), json!(code));
            o.insert("cost".into(), json!({"credits": charged}));
        }
    }
    Value::Object(o)
}

pub(crate) async fn delete_task(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    check_headers(&sim, &headers)?;
    let id = parse_id(&id)?;
    sim.state()
        .delete(&id, Instant::now())
        .ok_or_else(ApiError::task_not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn organization(
    State(sim): State<Sim>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check_headers(&sim, &headers)?;
    let now = Instant::now();
    let (charged, daily) = {
        let mut st = sim.state();
        (st.credits_charged(now), st.daily_generations(now))
    };
    let limit = sim.inner.config.max_concurrent.map(|m| m.max(1));
    let models: Map<String, Value> = sim
        .inner
        .catalog
        .model_names()
        .into_iter()
        .map(|m| {
            (
                m.to_string(),
                json!({"maxConcurrentGenerations": limit, "maxDailyGenerations": null}),
            )
        })
        .collect();
    let usage: Map<String, Value> = daily
        .into_iter()
        .map(|(m, n)| (m, json!({"dailyGenerations": n})))
        .collect();
    Ok(Json(json!({
        "creditBalance": INITIAL_CREDITS - charged,
        "tier": {"maxMonthlyCreditSpend": MAX_MONTHLY_CREDIT_SPEND, "models": models},
        "usage": {"models": usage},
    })))
}
