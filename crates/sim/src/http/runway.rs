//! Runway's `/v1` routes: create (through the shared pipeline, `create.rs`), get, delete,
//! organization.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::SecondsFormat;
use reelay_core::{CoreError, TaskSpec};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::create::{output_url, Face, Parsed};
use super::error::{ApiError, DOC_URL};
use crate::fault::Fault;
use crate::files::output_file;
use crate::state::{failure_is_charged, failure_message, Format, Phase, Task};
use crate::{Sim, RUNWAY_VERSION};
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

/// Runway's face for the shared create pipeline.
pub(crate) struct Runway;

impl Face for Runway {
    const FORMAT: Format = Format::Runway;

    fn check(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
        check_headers(sim, headers)
    }

    fn bad_body(status: StatusCode, message: String) -> ApiError {
        ApiError::runway(status, message)
    }

    fn invalid(message: String) -> ApiError {
        ApiError::with_body(
            StatusCode::BAD_REQUEST,
            json!({"error": "Validation of body failed", "issues": [{"code": "custom", "path": [],
                   "message": message}], "docUrl": DOC_URL}),
        )
    }

    fn parse(sim: &Sim, endpoint: &'static str, value: &Value) -> Result<Parsed, ApiError> {
        let spec = TaskSpec::parse(&sim.inner.catalog, endpoint, value).map_err(|e| match e {
            CoreError::Validation(issues) => ApiError::with_body(
                StatusCode::BAD_REQUEST,
                json!({"error": "Validation of body failed", "issues": issues, "docUrl": DOC_URL}),
            ),
            other => {
                ApiError::server(500).header("x-sim-error", other.to_string().replace('\n', " "))
            }
        })?;
        Ok(Parsed {
            endpoint: endpoint.to_string(),
            prompt: value
                .get("promptText")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            model: spec.model,
            estimated: spec.price,
            output: spec.output.unwrap_or(reelay_core::MediaKind::Video),
            callback_url: None,
        })
    }

    fn refuse(fault: &Fault) -> ApiError {
        match fault {
            Fault::RateLimit { retry_after_secs } => ApiError::runway(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded the rate limit for this model. Please retry later.",
            )
            .header("retry-after", retry_after_secs)
            .header("x-ratelimit-limit", 100)
            .header("x-ratelimit-remaining", 0)
            .header("x-ratelimit-reset", retry_after_secs),
            Fault::ServerError { status } | Fault::AcceptThenServerError { status } => {
                ApiError::server(*status)
            }
            Fault::Moderation => ApiError::with_body(
                StatusCode::BAD_REQUEST,
                json!({
                    "error": "Your request was flagged by our content moderation system.",
                    "code": "SAFETY.INPUT.TEXT",
                    "docUrl": DOC_URL,
                }),
            ),
            Fault::OutOfCredit => ApiError::with_body(
                StatusCode::BAD_REQUEST,
                json!({"error": "You do not have enough credits to run this task."}),
            ),
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
        Json(json!({"id": task.id.to_string(), "estimatedCost": {"credits": task.estimated}}))
            .into_response()
    }
}

pub(crate) async fn create(
    State(sim): State<Sim>,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    super::create::create::<Runway>(sim, endpoint, headers, body).await
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
            let url = output_url(sim, headers, task, name);
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
