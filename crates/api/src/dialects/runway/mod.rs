//! Runway's official developer API, so that the `runwayml` SDKs work by changing the base URL.
//! Protocol: `shared/api/runway-official.md`.

mod error;
mod handlers;
pub(crate) mod openapi;
mod view;

use axum::routing::{get, post};
use axum::Router;

pub use error::{insufficient_credits_status, Runway, RunwayError};
#[cfg(test)]
pub(crate) use handlers::parse_body;
pub use view::callback;

use crate::error::{ApiError, ErrorKind};
use crate::AppState;

pub fn routes(config: &crate::ApiConfig) -> Router<AppState> {
    let mut r = Router::new();
    for endpoint in reelay_core::GENERATION_ENDPOINTS {
        r = r.route(
            &format!("/v1/{endpoint}"),
            post(move |state, headers, body| handlers::create(state, headers, body, endpoint)),
        );
    }
    r.route(
        "/v1/tasks/{id}",
        get(handlers::get_task).delete(handlers::delete_task),
    )
    .route("/v1/organization", get(handlers::organization))
    .route("/v1/uploads", post(handlers::create_upload))
    .route("/v1/organization/usage", post(handlers::organization_usage))
    .layer(axum::middleware::map_response(insufficient_credits_status(
        config.runway_insufficient_credits_status,
    )))
}

pub async fn not_found() -> RunwayError {
    ApiError::new(ErrorKind::RouteNotFound, "route not found").into()
}

pub async fn method_not_allowed() -> RunwayError {
    ApiError::new(ErrorKind::MethodNotAllowed, "method not allowed").into()
}
