//! The one error the shared machinery returns, and the seam where each dialect renders it.
//!
//! Store, core, authentication and accept errors become an [`ApiError`] here, once, and
//! anything that is the server's fault (not the client's) is logged here, once. A dialect
//! implements [`Render`] — one function from an `ApiError` to its own status and body — and its
//! handlers return [`DialectError<ItsDialect>`], which every shared error converts into.

use std::marker::PhantomData;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{CoreError, Issue};
use reelay_store::StoreError;
use serde_json::Value;

use crate::accept::AcceptError;
use crate::auth::AuthError;

/// What went wrong, in terms every dialect can render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The body or query could not be read as the route's format (not JSON, not an object).
    Malformed,
    /// A field (or header) is wrong; `message` says which and why, `param` names it.
    Invalid,
    /// The catalog's findings about a body, field by field.
    Validation,
    /// The dialect is configured to require a callback URL and none came.
    MissingCallback,
    /// A credential is required and none came.
    MissingKey,
    /// The credential is not a live key.
    InvalidKey,
    /// The task does not exist for this account (another account's task looks the same).
    TaskNotFound,
    RouteNotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    InsufficientCredits {
        available: i64,
        price: i64,
    },
    /// The `Idempotency-Key` was already used with a different request.
    IdempotencyMismatch,
    /// The key's request rate.
    RateLimited,
    /// The account's cap on live tasks.
    TooManyActive {
        limit: i64,
    },
    /// Media the client named could not be fetched (the quick-start 451).
    Unfetchable,
    /// The database (or another dependency) is away; retry shortly.
    Unavailable,
    /// A bug or a broken deployment (an invalid catalog).
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    /// A neutral explanation; a dialect may word its answer its own way per kind.
    pub message: String,
    /// The field at fault, as the client named it, where there is one.
    pub param: Option<Box<str>>,
    /// A machine-readable reason where a dialect has such codes (`invalid_type`).
    pub code: Option<&'static str>,
    /// The catalog's findings (kind `Validation`).
    pub issues: Vec<Issue>,
    /// Seconds the client should wait before retrying (`Retry-After`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        let retry_after = match kind {
            ErrorKind::TooManyActive { .. } => Some(5),
            ErrorKind::Unavailable => Some(1),
            _ => None,
        };
        ApiError {
            kind,
            message: message.into(),
            param: None,
            code: None,
            issues: Vec::new(),
            retry_after,
        }
    }

    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Malformed, message)
    }

    /// A bad field, named.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, message).with_param(param)
    }

    /// A bad request that no single field is to blame for.
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, message)
    }

    pub fn task_not_found(id: &str) -> ApiError {
        ApiError::new(ErrorKind::TaskNotFound, format!("Task {id} does not exist"))
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into().into_boxed_str());
        self
    }

    /// The issues' messages, or the message, as one line (for dialects with a single string).
    pub fn joined(&self, field: impl Fn(&Issue) -> String) -> String {
        if self.issues.is_empty() {
            return self.message.clone();
        }
        self.issues
            .iter()
            .map(|i| {
                let f = field(i);
                if f.is_empty() {
                    i.message.clone()
                } else {
                    format!("{f}: {}", i.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A response with this error's `Retry-After`: the one place that header is written.
    pub fn respond(&self, status: StatusCode, body: Value) -> Response {
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // Input the database cannot hold (a NUL character): the client's mistake.
            StoreError::Invalid(m) => ApiError::invalid_request(m),
            e => {
                tracing::error!(error = %e, "store error");
                ApiError::new(ErrorKind::Unavailable, "database unavailable")
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::new(ErrorKind::MissingKey, "missing API key"),
            AuthError::Invalid => ApiError::new(ErrorKind::InvalidKey, "invalid API key"),
            AuthError::RateLimited { retry_after_secs } => ApiError {
                retry_after: Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX)),
                ..ApiError::new(ErrorKind::RateLimited, "too many requests")
            },
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<AcceptError> for ApiError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::BadIdempotencyKey => ApiError::invalid(
                "Idempotency-Key",
                AcceptError::BadIdempotencyKey.to_string(),
            ),
            AcceptError::IdempotencyMismatch => {
                ApiError::new(ErrorKind::IdempotencyMismatch, e.to_string())
            }
            AcceptError::InsufficientCredits { available, price } => ApiError::new(
                ErrorKind::InsufficientCredits { available, price },
                e.to_string(),
            ),
            AcceptError::TooManyActive { limit } => {
                ApiError::new(ErrorKind::TooManyActive { limit }, e.to_string())
            }
            AcceptError::Store(s) => s.into(),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(issues) => ApiError {
                issues,
                ..ApiError::new(ErrorKind::Validation, "validation of body failed")
            },
            CoreError::Catalog(m) => {
                tracing::error!(error = %m, "catalog error");
                ApiError::new(ErrorKind::Internal, "catalog error")
            }
        }
    }
}

/// A dialect's one renderer: its status and body for every kind of error.
pub trait Render {
    fn render(e: ApiError) -> Response;
}

/// The error a dialect's handlers return: an [`ApiError`] tagged with the dialect that renders
/// it. Every shared error converts into it through `ApiError`, so `?` works everywhere.
pub struct DialectError<D>(pub ApiError, PhantomData<fn() -> D>);

impl<D> std::fmt::Debug for DialectError<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<D> std::fmt::Display for DialectError<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<D: Render> IntoResponse for DialectError<D> {
    fn into_response(self) -> Response {
        D::render(self.0)
    }
}

impl<D> From<ApiError> for DialectError<D> {
    fn from(e: ApiError) -> Self {
        DialectError(e, PhantomData)
    }
}

macro_rules! via_api_error {
    ($($t:ty),*) => {$(
        impl<D> From<$t> for DialectError<D> {
            fn from(e: $t) -> Self {
                DialectError(ApiError::from(e), PhantomData)
            }
        }
    )*};
}
via_api_error!(StoreError, AuthError, AcceptError, CoreError);
