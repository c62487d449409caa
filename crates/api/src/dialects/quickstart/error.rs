//! Quick-start errors, mapped once to the `{code, msg, data}` envelope (§8). Business errors
//! answer HTTP 200 with the code in the body (decision 1); unexpected ones HTTP 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::CoreError;
use serde_json::json;

use crate::accept::AcceptError;
use crate::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum QsError {
    #[error("{0}")]
    BadRequest(String),
    #[error("You do not have access permissions: the API key is missing or invalid")]
    Unauthorized,
    #[error("Insufficient credits")]
    InsufficientCredits,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Validation(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unfetchable(String),
    #[error("Service unavailable: maintenance, retry shortly")]
    Unavailable,
    #[error("Server error")]
    Internal,
}

impl QsError {
    pub(crate) fn code(&self) -> u16 {
        match self {
            QsError::BadRequest(_) => 400,
            QsError::Unauthorized => 401,
            QsError::InsufficientCredits => 402,
            QsError::NotFound(_) => 404,
            QsError::Validation(_) => 422,
            QsError::RateLimited { .. } => 429,
            QsError::Unfetchable(_) => 451,
            QsError::Unavailable => 455,
            QsError::Internal => 500,
        }
    }
}

impl IntoResponse for QsError {
    fn into_response(self) -> Response {
        let code = self.code();
        let http = if code == 500 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        let body = json!({"code": code, "msg": self.to_string(), "data": null});
        let mut resp = (http, Json(body)).into_response();
        if let QsError::RateLimited {
            retry_after_secs, ..
        } = self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        resp
    }
}

impl From<reelay_store::StoreError> for QsError {
    fn from(e: reelay_store::StoreError) -> Self {
        match e {
            // Input the database cannot hold (a NUL character): the client's mistake.
            reelay_store::StoreError::Invalid(m) => QsError::Validation(m),
            e => {
                tracing::error!(error = %e, "store error");
                QsError::Unavailable
            }
        }
    }
}

impl From<AuthError> for QsError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid => QsError::Unauthorized,
            AuthError::RateLimited { retry_after_secs } => QsError::RateLimited {
                message: "Rate limited: too many requests".into(),
                retry_after_secs,
            },
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<AcceptError> for QsError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::BadIdempotencyKey => QsError::Validation(e.to_string()),
            AcceptError::IdempotencyMismatch => QsError::Validation(
                "Idempotency-Key was already used with a different request body".into(),
            ),
            AcceptError::InsufficientCredits { .. } => QsError::InsufficientCredits,
            AcceptError::TooManyActive { limit } => QsError::RateLimited {
                message: format!("Reached the limit for concurrent generations ({limit})"),
                retry_after_secs: 5,
            },
            AcceptError::Store(s) => s.into(),
        }
    }
}

impl From<CoreError> for QsError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(issues) => QsError::Validation(
                issues
                    .iter()
                    .map(|i| i.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            CoreError::Catalog(m) => {
                tracing::error!(error = %m, "catalog error");
                QsError::Internal
            }
        }
    }
}
