//! Runway's error shape: `{"error": ..., "docUrl": ...}` (with `issues` for a body that failed
//! validation), rendered once from the shared [`ApiError`].

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, DialectError, ErrorKind, Render};

pub const DOC_URL: &str = "https://docs.dev.runwayml.com/api";

/// The renderer of this dialect.
pub struct Runway;

pub type RunwayError = DialectError<Runway>;

/// Marks a 402 for insufficient credits, so the layer in [`insufficient_credits_status`] can
/// apply the configured status (Runway itself answers 400).
#[derive(Clone, Copy)]
struct InsufficientCredits;

impl Render for Runway {
    fn render(mut e: ApiError) -> Response {
        use ErrorKind::*;
        let (status, body) = match &e.kind {
            Validation => (
                StatusCode::BAD_REQUEST,
                json!({"error": "Validation of body failed", "issues": e.issues, "docUrl": DOC_URL}),
            ),
            MissingKey => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "No API key provided. Pass it as a bearer token in the Authorization header.", "docUrl": DOC_URL}),
            ),
            InvalidKey => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "Invalid API key.", "docUrl": DOC_URL}),
            ),
            TaskNotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "Could not find Task"}),
            ),
            RouteNotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "Not found", "docUrl": DOC_URL}),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "Method not allowed", "docUrl": DOC_URL}),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "Request body is too large.", "docUrl": DOC_URL}),
            ),
            Unavailable | Internal => {
                e.retry_after = Some(1);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "The service is temporarily unavailable. Retry shortly.", "docUrl": DOC_URL}),
                )
            }
            InsufficientCredits { .. } => {
                let mut resp = e.respond(
                    StatusCode::PAYMENT_REQUIRED,
                    json!({"error": "You do not have enough credits to run this task.", "docUrl": DOC_URL}),
                );
                resp.extensions_mut().insert(self::InsufficientCredits);
                return resp;
            }
            IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "This Idempotency-Key was already used with a different request body.", "docUrl": DOC_URL}),
            ),
            RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "Too many requests. Slow down and retry after the Retry-After delay.", "docUrl": DOC_URL}),
            ),
            TooManyActive { limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": format!("You have reached the limit of {limit} concurrent tasks. Wait for one to finish."), "docUrl": DOC_URL}),
            ),
            Malformed | Invalid | MissingCallback | Unfetchable => (
                StatusCode::BAD_REQUEST,
                json!({"error": e.message, "docUrl": DOC_URL}),
            ),
        };
        e.respond(status, body)
    }
}

/// The configured status of an insufficient-credits answer (`runway_insufficient_credits_status`):
/// 402 by default so clients can tell "top up" from "fix your request"; 400 as Runway says.
pub fn insufficient_credits_status(
    status: u16,
) -> impl Fn(Response) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::PAYMENT_REQUIRED);
    move |mut resp: Response| {
        if resp.extensions().get::<InsufficientCredits>().is_some() {
            *resp.status_mut() = status;
        }
        std::future::ready(resp)
    }
}
