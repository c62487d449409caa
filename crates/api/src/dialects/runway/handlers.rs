use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{Dialect, TaskSpec};
use reelay_store::{now_ms, CancelOutcome};
use serde_json::{json, Value};

use super::view::task_json;
use super::RunwayError;
use crate::auth::{authenticate, bearer};
use crate::error::ApiError;
use crate::{accept, create};
use crate::{AppState, Principal};

/// The API version this dialect speaks. `2024-09-13` had other ratio semantics; a client still
/// sending it gets a clear 400 rather than confusing validation errors.
pub(crate) const VERSION: &str = "2024-11-06";

/// Authenticates and checks `X-Runway-Version`, as Runway does on every request.
async fn preamble(state: &AppState, headers: &HeaderMap) -> Result<Principal, RunwayError> {
    let principal = authenticate(state, bearer(headers)).await?;
    match headers
        .get("x-runway-version")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => Err(ApiError::invalid(
            "X-Runway-Version",
            format!("Missing X-Runway-Version header. Set it to {VERSION}."),
        )
        .into()),
        Some(VERSION) => Ok(principal),
        Some(other) => Err(ApiError::invalid(
            "X-Runway-Version",
            format!("Unsupported X-Runway-Version {other:?}. Supported: {VERSION}."),
        )
        .into()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: &'static str,
) -> Result<Response, RunwayError> {
    let principal = preamble(&state, &headers).await?;
    let body = create::body(body)?;
    let value = read_json(&body)?;
    let mut spec = TaskSpec::parse(&state.catalog, endpoint, &value)?;
    spec.callback_url = create::callback_header(&state, &headers)?;
    let accepted = accept::accept(
        &state,
        accept::Request {
            principal: &principal,
            dialect: Dialect::Runway,
            route: endpoint,
            body: &value,
            headers: &headers,
            spec,
        },
        |id, price| (200, json!({"id": id, "estimatedCost": {"credits": price}})),
    )
    .await?;
    Ok(accepted.into_response())
}

/// A create body as JSON: any value (the catalog says, in Runway's own words, what a
/// non-object is).
fn read_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("Invalid JSON in request body: {e}")))
}

/// A create body, read and checked against the catalog as `create` does but without the
/// upload lookup: no I/O, so the fuzz target drives it.
#[cfg(test)]
pub(crate) fn parse_body(
    catalog: &reelay_core::Catalog,
    endpoint: &str,
    body: &[u8],
) -> Result<(Value, TaskSpec), RunwayError> {
    let value = read_json(body)?;
    let spec = TaskSpec::parse(catalog, endpoint, &value)?;
    Ok((value, spec))
}

/// `POST /v1/uploads` `{"filename": ..., "type": "ephemeral"}`: an upload slot.
pub async fn create_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, RunwayError> {
    use reelay_core::Issue;
    let principal = preamble(&state, &headers).await?;
    let obj = create::json_object(&create::body(body)?, false)?;
    let mut issues = Vec::new();
    let filename = match obj.get("filename") {
        Some(Value::String(f))
            if !f.is_empty()
                && f.len() <= 255
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_. ".contains(&b)) =>
        {
            Some(f.clone())
        }
        _ => {
            issues.push(Issue::custom(
                vec![json!("filename")],
                "Expected a file name of 1 to 255 letters, digits, spaces, dots, dashes or underscores",
            ));
            None
        }
    };
    if obj.get("type").and_then(Value::as_str) != Some("ephemeral") {
        issues.push(Issue::custom(vec![json!("type")], "Expected \"ephemeral\""));
    }
    for k in obj.keys().filter(|k| *k != "filename" && *k != "type") {
        issues.push(Issue::new(
            "unrecognized_keys",
            vec![],
            format!("Unrecognized key: \"{k}\""),
        ));
    }
    match filename {
        Some(f) if issues.is_empty() => Ok(Json(crate::uploads::slot(&state, &principal, &f))),
        _ => Err(validation(issues)),
    }
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
        .ok_or_else(|| ApiError::task_not_found(&id))?;
    Ok(Json(task_json(&state.links, &task)))
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
        CancelOutcome::NotFound => Err(ApiError::task_not_found(&id).into()),
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

/// `POST /v1/organization/usage`: net credits per day and model, from the ledger.
pub async fn organization_usage(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, RunwayError> {
    let principal = preamble(&state, &headers).await?;
    let body = create::body(body)?;
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::malformed(format!("Invalid JSON in request body: {e}")))?
    };
    let (start, before) = usage_range(&value, chrono::Utc::now().date_naive())?;
    let ms = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis()
    };
    let rows = state
        .store
        .credit_usage(&principal.account.id, ms(start), ms(before))
        .await?;
    let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    let mut results: Vec<Value> = Vec::new();
    for r in &rows {
        let item = json!({"model": r.model, "amount": r.amount});
        match results.last_mut() {
            Some(day) if day["date"] == r.date.as_str() => day["usedCredits"]
                .as_array_mut()
                .expect("built here")
                .push(item),
            _ => results.push(json!({"date": r.date, "usedCredits": [item]})),
        }
    }
    Ok(Json(json!({"models": models, "results": results})))
}

/// `startDate` (default 30 days ago) and `beforeDate` (exclusive, default start + 30 days, at
/// most start + 90 days), as Runway documents them.
fn usage_range(
    body: &Value,
    today: chrono::NaiveDate,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate), RunwayError> {
    use reelay_core::Issue;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::malformed("The request body must be a JSON object."))?;
    let mut issues = Vec::new();
    for key in obj.keys() {
        if key != "startDate" && key != "beforeDate" {
            issues.push(Issue::new(
                "unrecognized_keys",
                vec![],
                format!("Unrecognized key: \"{key}\""),
            ));
        }
    }
    let date = |field: &str, issues: &mut Vec<Issue>| -> Option<chrono::NaiveDate> {
        let v = obj.get(field)?;
        match v
            .as_str()
            .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        {
            Some(d) => Some(d),
            None => {
                issues.push(Issue::custom(
                    vec![json!(field)],
                    "Expected a date as YYYY-MM-DD",
                ));
                None
            }
        }
    };
    let start = date("startDate", &mut issues);
    let before = date("beforeDate", &mut issues);
    if !issues.is_empty() {
        return Err(validation(issues));
    }
    // With no dates at all, the window ends after today: "the last 30 days" includes today.
    let default_before = match start {
        None => today + chrono::Days::new(1),
        Some(s) => s + chrono::Days::new(30),
    };
    let start = start.unwrap_or(today - chrono::Days::new(30));
    let before = before.unwrap_or(default_before);
    if before <= start {
        return Err(validation(vec![Issue::custom(
            vec![json!("beforeDate")],
            "beforeDate must be after startDate",
        )]));
    }
    if before > start + chrono::Days::new(90) {
        return Err(validation(vec![Issue::custom(
            vec![json!("beforeDate")],
            "The range may span at most 90 days",
        )]));
    }
    Ok((start, before))
}

fn validation(issues: Vec<reelay_core::Issue>) -> RunwayError {
    reelay_core::CoreError::Validation(issues).into()
}
