//! Runway's ephemeral uploads as the simulator serves them: `POST /v1/uploads` hands out a
//! slot whose `uploadUrl` is the simulator's own S3-style form POST, and a `runway://` URI that
//! later creates may name (the bytes count among the task's media inputs).

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::ApiError;
use crate::Sim;

pub(crate) const URI_PREFIX: &str = "runway://sim-uploads/";

pub(crate) async fn create(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    super::runway::check_headers(&sim, &headers)?;
    let Json(body) = body.map_err(|e| ApiError::runway(StatusCode::BAD_REQUEST, e.body_text()))?;
    if body.get("type").and_then(Value::as_str) != Some("ephemeral")
        || !body.get("filename").is_some_and(Value::is_string)
    {
        return Err(ApiError::runway(
            StatusCode::BAD_REQUEST,
            "Validation of body failed: filename and type \"ephemeral\" are required",
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    sim.state().stats.uploads_started += 1;
    Ok(Json(json!({
        "uploadUrl": format!("{}/_sim/uploads", sim.public_base(&headers)),
        "fields": {"key": id, "policy": "sim"},
        "runwayUri": format!("{URI_PREFIX}{id}"),
    })))
}

/// The form POST: `key` (and any other fields), then `file`.
pub(crate) async fn form(
    State(sim): State<Sim>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let Ok(mut form) = form else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut key = None;
    while let Ok(Some(f)) = form.next_field().await {
        let name = f.name().unwrap_or("").to_string();
        let Ok(bytes) = f.bytes().await else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        match name.as_str() {
            "key" => key = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" => {
                let Some(k) = key.take() else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                sim.state().put_upload(k, bytes);
                return StatusCode::NO_CONTENT.into_response();
            }
            _ => {}
        }
    }
    StatusCode::BAD_REQUEST.into_response()
}
