use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{CoreError, Issue};
use serde_json::json;

use crate::auth::AuthError;

pub const DOC_URL: &str = "https://docs.dev.runwayml.com/api";

/// Every way a Runway-dialect request can fail, mapped to Runway's status and body once.
#[derive(Debug, thiserror::Error)]
pub enum RunwayError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("validation of body failed")]
    Validation(Vec<Issue>),
    #[error("task not found")]
    TaskNotFound,
    #[error("route not found")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("body too large")]
    PayloadTooLarge,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl From<CoreError> for RunwayError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(issues) => RunwayError::Validation(issues),
            CoreError::Catalog(m) => RunwayError::Unavailable(m),
        }
    }
}

impl From<reelay_store::StoreError> for RunwayError {
    fn from(e: reelay_store::StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        RunwayError::Unavailable("database".into())
    }
}

impl From<AuthError> for RunwayError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => RunwayError::Unauthorized(
                "No API key provided. Pass it as a bearer token in the Authorization header."
                    .into(),
            ),
            AuthError::Invalid => RunwayError::Unauthorized("Invalid API key.".into()),
            AuthError::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for RunwayError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            RunwayError::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": m, "docUrl": DOC_URL}),
            ),
            RunwayError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                json!({"error": m, "docUrl": DOC_URL}),
            ),
            RunwayError::Validation(issues) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "Validation of body failed", "issues": issues, "docUrl": DOC_URL}),
            ),
            RunwayError::TaskNotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "Could not find Task"}),
            ),
            RunwayError::RouteNotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "Not found", "docUrl": DOC_URL}),
            ),
            RunwayError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "Method not allowed", "docUrl": DOC_URL}),
            ),
            RunwayError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "Request body is too large.", "docUrl": DOC_URL}),
            ),
            RunwayError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "The service is temporarily unavailable. Retry shortly.", "docUrl": DOC_URL}),
            ),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        resp
    }
}
