use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{CoreError, Issue};
use serde_json::json;

use crate::accept::AcceptError;
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
    #[error("insufficient credits")]
    InsufficientCredits { status: StatusCode },
    #[error("idempotency key reused with another request")]
    IdempotencyMismatch,
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
}

impl RunwayError {
    pub fn from_accept(e: AcceptError, insufficient_status: u16) -> RunwayError {
        match e {
            AcceptError::BadIdempotencyKey => RunwayError::BadRequest(e.to_string()),
            AcceptError::IdempotencyMismatch => RunwayError::IdempotencyMismatch,
            AcceptError::InsufficientCredits { .. } => RunwayError::InsufficientCredits {
                status: StatusCode::from_u16(insufficient_status)
                    .unwrap_or(StatusCode::PAYMENT_REQUIRED),
            },
            AcceptError::TooManyActive { limit } => RunwayError::TooManyRequests {
                message: format!(
                    "You have reached the limit of {limit} concurrent tasks. Wait for one to finish."
                ),
                retry_after_secs: 5,
            },
            AcceptError::Store(s) => s.into(),
        }
    }
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
        match e {
            // Input the database cannot hold (a NUL character): the client's mistake.
            reelay_store::StoreError::Invalid(m) => RunwayError::BadRequest(m),
            e => {
                tracing::error!(error = %e, "store error");
                RunwayError::Unavailable("database".into())
            }
        }
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
            AuthError::RateLimited { retry_after_secs } => RunwayError::TooManyRequests {
                message: "Too many requests. Slow down and retry after the Retry-After delay."
                    .into(),
                retry_after_secs,
            },
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
            RunwayError::InsufficientCredits { status } => (
                *status,
                json!({"error": "You do not have enough credits to run this task.", "docUrl": DOC_URL}),
            ),
            RunwayError::IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "This Idempotency-Key was already used with a different request body.", "docUrl": DOC_URL}),
            ),
            RunwayError::TooManyRequests { message, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": message, "docUrl": DOC_URL}),
            ),
        };
        let retry_after = match &self {
            RunwayError::Unavailable(_) => Some(1),
            RunwayError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        resp
    }
}
