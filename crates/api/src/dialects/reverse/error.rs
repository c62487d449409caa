//! The reverse dialect's envelope (shared/api/reverse.md §7.1), rendered once from the shared
//! [`ApiError`]: HTTP status = `code`, `msg` = `message` = the reason.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, DialectError, ErrorKind, Render};

/// The renderer of this dialect.
pub struct Reverse;

pub type ReverseError = DialectError<Reverse>;

impl Reverse {
    /// The envelope, with the time spent since `started`.
    pub fn respond(mut e: ApiError, started: Instant) -> Response {
        use ErrorKind::*;
        let (status, msg) = match &e.kind {
            Malformed | Invalid | Unfetchable => (
                StatusCode::BAD_REQUEST,
                format!("invalid request: {}", e.message),
            ),
            Validation => (
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid request: {}",
                    e.joined(|i| super::request::reverse_field(&i.path))
                ),
            ),
            MissingCallback => (StatusCode::BAD_REQUEST, "callback_url_empty".into()),
            TaskNotFound => (StatusCode::BAD_REQUEST, "task_not_exist".into()),
            MissingKey | InvalidKey => (StatusCode::UNAUTHORIZED, "invalid api key".into()),
            InsufficientCredits { .. } => {
                (StatusCode::PAYMENT_REQUIRED, "insufficient points".into())
            }
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".into(),
            ),
            IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency key reused with a different body".into(),
            ),
            RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate limited".into()),
            TooManyActive { limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limited: at most {limit} tasks at once"),
            ),
            RouteNotFound => (StatusCode::NOT_FOUND, "not found".into()),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into()),
            Unavailable | Internal => {
                e.retry_after = Some(1);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service unavailable".into(),
                )
            }
        };
        let body = json!({
            "code": status.as_u16(),
            "msg": msg,
            "message": msg,
            "data": null,
            "exec_time": started.elapsed().as_secs_f64(),
        });
        e.respond(status, body)
    }
}

impl Render for Reverse {
    fn render(e: ApiError) -> Response {
        Reverse::respond(e, Instant::now())
    }
}
