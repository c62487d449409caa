//! The quick-start `{code, msg, data}` envelope (§8), rendered once from the shared
//! [`ApiError`]. Business errors answer HTTP 200 with the code in the body (decision 1);
//! unexpected ones HTTP 500.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, DialectError, ErrorKind, Render};

/// The renderer of this dialect.
pub struct Quickstart;

pub type QsError = DialectError<Quickstart>;

impl Quickstart {
    /// The envelope's `code` and `msg` for an error.
    pub(crate) fn code_and_msg(e: &ApiError) -> (u16, String) {
        use ErrorKind::*;
        match &e.kind {
            Malformed => (400, format!("Bad request: {}", e.message)),
            PayloadTooLarge => (400, "Bad request: the body is too large".into()),
            MissingKey | InvalidKey => (
                401,
                "You do not have access permissions: the API key is missing or invalid".into(),
            ),
            InsufficientCredits { .. } => (402, "Insufficient credits".into()),
            TaskNotFound => (404, e.message.clone()),
            RouteNotFound => (404, "Not found: no such endpoint".into()),
            MethodNotAllowed => (405, "Method not allowed".into()),
            Invalid | MissingCallback => (422, e.message.clone()),
            Validation => (422, e.joined(|_| String::new())),
            IdempotencyMismatch => (
                422,
                "Idempotency-Key was already used with a different request body".into(),
            ),
            RateLimited => (429, "Rate limited: too many requests".into()),
            TooManyActive { limit } => (
                429,
                format!("Reached the limit for concurrent generations ({limit})"),
            ),
            Unfetchable => (451, e.message.clone()),
            Unavailable => (
                455,
                "Service unavailable: maintenance, retry shortly".into(),
            ),
            Internal => (500, "Server error".into()),
        }
    }
}

impl Render for Quickstart {
    fn render(e: ApiError) -> Response {
        let (code, msg) = Quickstart::code_and_msg(&e);
        let http = if code == 500 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        e.respond(http, json!({"code": code, "msg": msg, "data": null}))
    }
}
