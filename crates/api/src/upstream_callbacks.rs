//! `POST /upstream-callbacks/{task}/{token}`: where reverse and quick-start upstreams report a
//! task's progress (the URL the engine gave them at submit, see `reelay_engine::callbacks`).
//! No API key: the token is the credential. A callback with the task's token makes its next
//! poll due now; the poll decides. Anything else gets a 404 and changes nothing. The body is
//! not read beyond its size bound: the upstream's own answer to the poll is what counts.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

/// Callback payloads are small JSON documents.
const BODY_LIMIT: usize = 64 * 1024;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            &format!(
                "{}/{{task}}/{{token}}",
                reelay_engine::callbacks::CALLBACK_PATH
            ),
            post(callback),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

async fn callback(
    State(state): State<AppState>,
    Path((task, token)): Path<(String, String)>,
    _body: axum::body::Bytes,
) -> impl IntoResponse {
    if task.len() > 64 || token.len() > 128 {
        return not_found();
    }
    match state.engine.upstream_callback(&task, &token).await {
        Ok(true) => (StatusCode::OK, Json(json!({"code": 200, "msg": "success"}))),
        Ok(false) => not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "upstream callback not applied; polling covers it");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"code": 503, "msg": "try again later"})),
            )
        }
    }
}

fn not_found() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": 404, "msg": "not found"})),
    )
}
