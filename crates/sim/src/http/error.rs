//! Error answers in Runway's shape (`{"error": ..., "docUrl": ...}`), converted to a response in
//! one place.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(crate) const DOC_URL: &str = "https://docs.dev.runwayml.com/api";

#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// `{"error": message, "docUrl": ...}` — most of Runway's errors.
    pub fn runway(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::with_body(status, json!({"error": message.into(), "docUrl": DOC_URL}))
    }

    pub fn with_body(status: StatusCode, body: Value) -> ApiError {
        ApiError {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// Runway's answer for an unknown, deleted or cancelled task (no `docUrl` in the captures).
    pub fn task_not_found() -> ApiError {
        ApiError::with_body(
            StatusCode::NOT_FOUND,
            json!({"error": "Could not find Task"}),
        )
    }

    /// An arbitrary status (from a fault), with a message fitting it.
    pub fn server(status: u16) -> ApiError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match status.as_u16() {
            500 => "An unexpected error occurred. Please try again later.",
            502 => "Bad gateway. Please try again later.",
            503 => "The service is temporarily unavailable. Please try again later.",
            504 => "The server timed out. Please try again later.",
            _ => status.canonical_reason().unwrap_or("Error"),
        };
        let err = ApiError::runway(status, message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            err.header("retry-after", 1)
        } else {
            err
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body)).into_response();
        for (k, v) in self.headers {
            res.headers_mut().insert(k, v);
        }
        res
    }
}

/// Drops the connection without answering.
///
/// Unwinding the connection's task is the one way a handler can make hyper close the socket
/// without writing a response. `resume_unwind` skips the panic hook, so nothing is printed;
/// tokio catches the unwind at the task boundary and the runtime carries on.
pub(crate) fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("reelay-sim: connection dropped on purpose"))
}
