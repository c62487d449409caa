//! OpenAI's error envelope `{"error": {message, type, param, code}}` with its status codes,
//! rendered once from the shared [`ApiError`]. The official SDK maps the status to its typed
//! exceptions (400 `BadRequestError`, 401 `AuthenticationError`, 404 `NotFoundError`, 429
//! `RateLimitError`) and retries 408/409/429/5xx, so no refusal here uses 409, and a quota
//! refusal says `x-should-retry: false`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::error::{ApiError, DialectError, ErrorKind, Render};

/// The renderer of this dialect.
pub struct OpenAi;

pub type OpenAiError = DialectError<OpenAi>;

impl Render for OpenAi {
    fn render(mut e: ApiError) -> Response {
        use ErrorKind::*;
        let invalid = "invalid_request_error";
        let (status, kind, code, message): (StatusCode, &str, Option<&str>, String) = match &e
            .kind
        {
            Malformed | Invalid | MissingCallback | Unfetchable => {
                (StatusCode::BAD_REQUEST, invalid, e.code, e.message.clone())
            }
            Validation => {
                let first = e.issues.first();
                let message = first.map(|i| i.message.clone()).unwrap_or(e.message.clone());
                (StatusCode::BAD_REQUEST, invalid, Some("invalid_value"), message)
            }
            MissingKey => (
                StatusCode::UNAUTHORIZED,
                invalid,
                None,
                "You didn't provide an API key. Provide it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).".into(),
            ),
            InvalidKey => (
                StatusCode::UNAUTHORIZED,
                invalid,
                Some("invalid_api_key"),
                "Incorrect API key provided.".into(),
            ),
            TaskNotFound => (StatusCode::NOT_FOUND, invalid, None, e.message.clone()),
            RouteNotFound => (
                StatusCode::NOT_FOUND,
                invalid,
                None,
                "Invalid URL: no such route.".into(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                invalid,
                None,
                "Method not allowed on this route.".into(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                invalid,
                None,
                "The request body is too large.".into(),
            ),
            InsufficientCredits { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                Some("insufficient_quota"),
                "You exceeded your current quota: the account does not have enough credits for this video.".into(),
            ),
            IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                invalid,
                Some("idempotency_key_reused"),
                "This Idempotency-Key was already used with a different request.".into(),
            ),
            RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests. Retry after the Retry-After delay.".into(),
            ),
            TooManyActive { limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                Some("rate_limit_exceeded"),
                format!("Too many videos in progress: the limit is {limit} at once."),
            ),
            Unavailable => {
                e.retry_after = Some(1);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    None,
                    "The server is temporarily unavailable. Retry shortly.".into(),
                )
            }
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                "The server had an error while processing your request.".into(),
            ),
        };
        let param = e.param.clone();
        let body = json!({"error": {
            "message": message,
            "type": kind,
            "param": param.map(|p| Value::String(p.into())).unwrap_or(Value::Null),
            "code": code,
        }});
        let quota = matches!(e.kind, InsufficientCredits { .. });
        let mut resp = e.respond(status, body);
        if quota {
            resp.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        resp
    }
}
