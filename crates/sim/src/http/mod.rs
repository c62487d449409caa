//! The HTTP face of the simulator: Runway's routes (`runway.rs`), the output files
//! (`files.rs`) and the simulator's own controls (`control.rs`).

mod control;
mod error;
mod files;
mod runway;
mod uploads;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;

use crate::Sim;
pub(crate) use error::ApiError;

/// Create bodies may carry several data URIs (up to 16 MB each for video and audio).
pub(crate) const BODY_LIMIT: usize = 48 * 1024 * 1024;

pub(crate) fn router(sim: Sim) -> Router {
    let mut v1 = Router::new()
        .route(
            "/v1/tasks/{id}",
            get(runway::get_task).delete(runway::delete_task),
        )
        .route("/v1/organization", get(runway::organization))
        .route("/v1/uploads", post(uploads::create))
        .route("/_sim/uploads", post(uploads::form));
    for endpoint in crate::ENDPOINTS {
        v1 = v1.route(
            &format!("/v1/{endpoint}"),
            post(move |state, headers, body| runway::create(state, endpoint, headers, body)),
        );
    }
    v1.route("/_sim/files/{task_id}/{name}", get(files::download))
        .route("/_sim/stats", get(control::stats))
        .route("/_sim/faults", post(control::push_fault))
        .route("/_sim/reset", post(control::reset))
        .route("/_sim/lookup", get(control::lookup))
        .route("/_sim/tasks/{id}/media", get(control::media))
        .fallback(|| async { ApiError::runway(StatusCode::NOT_FOUND, "Not found") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sim)
}

impl Sim {
    /// Base of the URLs the simulator hands out: configured, else bound, else the `Host` the
    /// client used.
    pub(crate) fn public_base(&self, headers: &HeaderMap) -> String {
        if let Some(b) = &self.inner.config.public_base_url {
            return b.trim_end_matches('/').to_string();
        }
        if let Some(b) = self.inner.bound_base.get() {
            return b.clone();
        }
        match headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            Some(host) => format!("http://{host}"),
            None => "http://localhost".to_string(),
        }
    }
}
