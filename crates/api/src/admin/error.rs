use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_store::StoreError;
use serde_json::json;

/// Every way an admin call can fail, for the HTTP API and the CLI alike. The message is meant
/// for the operator as is: the CLI prints it, the HTTP API sends it as `error.message`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or invalid admin token")]
    Unauthorized,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InsufficientBalance(String),
    /// The balance would pass the largest one an account may have.
    #[error("{0}")]
    BalanceLimit(String),
    /// A redelivery of a message that is still pending.
    #[error("{0}")]
    WebhookPending(String),
    /// The change conflicts with what exists (a name taken, a channel owned by the file).
    #[error("{0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

impl AdminError {
    pub fn invalid(message: impl Into<String>) -> AdminError {
        AdminError::InvalidRequest(message.into())
    }

    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AdminError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AdminError::InsufficientBalance(_) => (StatusCode::CONFLICT, "insufficient_balance"),
            AdminError::BalanceLimit(_) => (StatusCode::CONFLICT, "balance_limit"),
            AdminError::Store(StoreError::Invalid(_)) => {
                (StatusCode::BAD_REQUEST, "invalid_request")
            }
            AdminError::Store(
                StoreError::Database(_) | StoreError::Sqlite(_) | StoreError::Migrate(_),
            ) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            AdminError::WebhookPending(_) => (StatusCode::CONFLICT, "webhook_pending"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AdminError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            AdminError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AdminError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

/// Bad JSON, a missing field or a wrong type: axum's message (it names the field) in our shape,
/// always 400 (axum itself would say 415 or 422 in plain text).
impl From<JsonRejection> for AdminError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AdminError::PayloadTooLarge;
        }
        AdminError::InvalidRequest(r.body_text())
    }
}

impl From<QueryRejection> for AdminError {
    fn from(r: QueryRejection) -> Self {
        AdminError::InvalidRequest(r.body_text())
    }
}

impl From<PathRejection> for AdminError {
    fn from(r: PathRejection) -> Self {
        AdminError::InvalidRequest(r.body_text())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            AdminError::Store(StoreError::Invalid(m)) => m.clone(),
            // Database details belong in the log, not in a response.
            AdminError::Store(e) => {
                tracing::error!(error = %e, "admin API store error");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut res = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        res
    }
}
