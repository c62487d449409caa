//! Every way a reverse-dialect request can fail, mapped once to the dialect's envelope
//! (shared/api/reverse.md §7.1): HTTP status = `code`, `msg` = `message` = the reason.

use std::time::Instant;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::CoreError;
use serde_json::json;

use crate::accept::AcceptError;
use crate::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum ReverseError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("callback_url_empty")]
    CallbackUrlEmpty,
    #[error("task_not_exist")]
    TaskNotExist,
    #[error("invalid api key")]
    Unauthorized,
    #[error("insufficient points")]
    InsufficientPoints,
    #[error("request body too large")]
    TooLarge,
    #[error("idempotency key reused with a different body")]
    IdempotencyMismatch,
    #[error("{message}")]
    TooMany {
        message: String,
        retry_after_secs: u64,
    },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("service unavailable")]
    Unavailable,
}

impl ReverseError {
    fn status(&self) -> StatusCode {
        use ReverseError::*;
        match self {
            Invalid(_) | CallbackUrlEmpty | TaskNotExist => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            InsufficientPoints => StatusCode::PAYMENT_REQUIRED,
            TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The envelope, with the time spent since `started`.
    pub fn respond(self, started: Instant) -> Response {
        let status = self.status();
        let msg = self.to_string();
        let body = json!({
            "code": status.as_u16(),
            "msg": msg,
            "message": msg,
            "data": null,
            "exec_time": started.elapsed().as_secs_f64(),
        });
        let mut resp = (status, Json(body)).into_response();
        let retry = match &self {
            ReverseError::TooMany {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ReverseError::Unavailable => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl IntoResponse for ReverseError {
    fn into_response(self) -> Response {
        self.respond(Instant::now())
    }
}

impl From<reelay_store::StoreError> for ReverseError {
    fn from(e: reelay_store::StoreError) -> Self {
        match e {
            // Input the database cannot hold (a NUL character): the client's mistake.
            reelay_store::StoreError::Invalid(m) => ReverseError::Invalid(m),
            e => {
                tracing::error!(error = %e, "store error");
                ReverseError::Unavailable
            }
        }
    }
}

impl From<AuthError> for ReverseError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid => ReverseError::Unauthorized,
            AuthError::RateLimited { retry_after_secs } => ReverseError::TooMany {
                message: "rate limited".into(),
                retry_after_secs,
            },
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<AcceptError> for ReverseError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::BadIdempotencyKey => ReverseError::Invalid(e.to_string()),
            AcceptError::IdempotencyMismatch => ReverseError::IdempotencyMismatch,
            AcceptError::InsufficientCredits { .. } => ReverseError::InsufficientPoints,
            AcceptError::TooManyActive { limit } => ReverseError::TooMany {
                message: format!("rate limited: at most {limit} tasks at once"),
                retry_after_secs: 5,
            },
            AcceptError::Store(s) => s.into(),
        }
    }
}

impl From<CoreError> for ReverseError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(issues) => {
                let parts: Vec<String> = issues
                    .iter()
                    .map(|i| {
                        let field = super::request::reverse_field(&i.path);
                        if field.is_empty() {
                            i.message.clone()
                        } else {
                            format!("{field}: {}", i.message)
                        }
                    })
                    .collect();
                ReverseError::Invalid(parts.join("; "))
            }
            CoreError::Catalog(m) => {
                tracing::error!(error = %m, "catalog error");
                ReverseError::Unavailable
            }
        }
    }
}
