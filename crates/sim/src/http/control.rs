//! The simulator's own routes under `/_sim/` (not part of Runway's API).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::ApiError;
use crate::{Fault, Sim, SimStats};

pub(crate) async fn stats(State(sim): State<Sim>) -> Json<SimStats> {
    Json(sim.stats())
}

/// Body: a [`Fault`] (`{"kind": "rate_limit", "retry_after_secs": 2}`) plus optional `"count"`.
pub(crate) async fn push_fault(
    State(sim): State<Sim>,
    Json(mut body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let count = match body.as_object_mut().and_then(|o| o.remove("count")) {
        None => 1,
        Some(v) => v.as_u64().ok_or_else(|| {
            ApiError::runway(
                StatusCode::BAD_REQUEST,
                "count must be a non-negative integer",
            )
        })?,
    };
    let fault: Fault = serde_json::from_value(body)
        .map_err(|e| ApiError::runway(StatusCode::BAD_REQUEST, format!("invalid fault: {e}")))?;
    if !sim.push_faults(fault.clone(), count) {
        return Err(ApiError::runway(
            StatusCode::TOO_MANY_REQUESTS,
            "fault queue is full",
        ));
    }
    Ok(Json(json!({"queued": count, "fault": fault})))
}

pub(crate) async fn reset(State(sim): State<Sim>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}

pub(crate) async fn lookup(
    State(sim): State<Sim>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let reference = q.get("reference").ok_or_else(|| {
        ApiError::runway(
            StatusCode::BAD_REQUEST,
            "query parameter reference is required",
        )
    })?;
    let id = sim.lookup(reference).ok_or_else(|| {
        ApiError::with_body(
            StatusCode::NOT_FOUND,
            json!({"error": "Could not find reference"}),
        )
    })?;
    Ok(Json(json!({"id": id})))
}

/// `GET /_sim/tasks/{id}/media`: SHA-256 of each inline media input of a task.
pub(crate) async fn media(
    State(sim): State<Sim>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let digests = sim.media_of(&id).ok_or_else(|| {
        ApiError::with_body(
            StatusCode::NOT_FOUND,
            json!({"error": "Could not find Task"}),
        )
    })?;
    Ok(Json(json!({"media_sha256": digests})))
}

/// `GET /_sim/tasks/{id}`: what the task's create request carried (see [`Sim::task_request`]).
pub(crate) async fn task(
    State(sim): State<Sim>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    sim.task_request(&id).map(Json).ok_or_else(|| {
        ApiError::with_body(
            StatusCode::NOT_FOUND,
            json!({"error": "Could not find Task"}),
        )
    })
}
