use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::TaskSpec;
use reelay_store::{now_ms, CancelOutcome};
use serde_json::{json, Value};

use super::view::task_json;
use super::RunwayError;
use crate::accept;
use crate::auth::{authenticate, bearer};
use crate::{AppState, Principal};

/// The API version this dialect speaks. `2024-09-13` had other ratio semantics; a client still
/// sending it gets a clear 400 rather than confusing validation errors.
const VERSION: &str = "2024-11-06";

/// Authenticates and checks `X-Runway-Version`, as Runway does on every request.
async fn preamble(state: &AppState, headers: &HeaderMap) -> Result<Principal, RunwayError> {
    let principal = authenticate(state, bearer(headers)).await?;
    match headers
        .get("x-runway-version")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => Err(RunwayError::BadRequest(format!(
            "Missing X-Runway-Version header. Set it to {VERSION}."
        ))),
        Some(VERSION) => Ok(principal),
        Some(other) => Err(RunwayError::BadRequest(format!(
            "Unsupported X-Runway-Version {other:?}. Supported: {VERSION}."
        ))),
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: &'static str,
) -> Result<Response, RunwayError> {
    let principal = preamble(&state, &headers).await?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RunwayError::PayloadTooLarge
        } else {
            RunwayError::BadRequest(format!("Could not read the request body: {e}"))
        }
    })?;
    let insufficient = state.config.runway_insufficient_credits_status;
    let idempotency_key =
        accept::idempotency_key(&headers).map_err(|e| RunwayError::from_accept(e, insufficient))?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| RunwayError::BadRequest(format!("Invalid JSON in request body: {e}")))?;
    let spec = TaskSpec::parse(&state.catalog, endpoint, &value)?;
    let accepted = accept::accept(
        &state,
        accept::Request {
            principal: &principal,
            dialect: "runway",
            route: endpoint,
            body: &value,
            idempotency_key,
            spec,
        },
        |id, price| (200, json!({"id": id, "estimatedCost": {"credits": price}})),
    )
    .await
    .map_err(|e| RunwayError::from_accept(e, insufficient))?;
    let status = StatusCode::from_u16(accepted.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, Json(accepted.body)).into_response();
    if accepted.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

pub async fn get_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, RunwayError> {
    let principal = preamble(&state, &headers).await?;
    // Another account's task and a task that does not exist look the same: 404.
    let task = state
        .store
        .get_task(&principal.account.id, &id)
        .await?
        .ok_or(RunwayError::TaskNotFound)?;
    Ok(Json(task_json(&task)))
}

pub async fn delete_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, RunwayError> {
    let principal = preamble(&state, &headers).await?;
    match state
        .store
        .cancel_or_delete(
            &principal.account.id,
            &id,
            state.config.refund_cancel_after_submit,
        )
        .await?
    {
        CancelOutcome::NotFound => Err(RunwayError::TaskNotFound),
        CancelOutcome::Cancelled => {
            state.engine.notify();
            Ok(StatusCode::NO_CONTENT)
        }
        CancelOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
    }
}

pub async fn organization(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, RunwayError> {
    let principal = preamble(&state, &headers).await?;
    let account = state
        .store
        .get_account(&principal.account.id)
        .await?
        .unwrap_or(principal.account);
    let since = now_ms() - 24 * 3600 * 1000;
    let usage = state.store.usage_by_model(&account.id, since).await?;
    // reelay sets no per-model limits of its own here: null means "no limit" (SDK >= 5.24).
    let models: serde_json::Map<String, Value> = state
        .catalog
        .model_names()
        .into_iter()
        .map(|m| {
            (
                m.to_string(),
                json!({"maxConcurrentGenerations": null, "maxDailyGenerations": null}),
            )
        })
        .collect();
    let usage: serde_json::Map<String, Value> = usage
        .into_iter()
        .map(|(m, n)| (m, json!({"dailyGenerations": n})))
        .collect();
    Ok(Json(json!({
        "creditBalance": account.credits_available,
        "tier": {"maxMonthlyCreditSpend": state.config.max_monthly_credit_spend, "models": models},
        "usage": {"models": usage},
    })))
}
