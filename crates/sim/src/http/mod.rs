//! The HTTP face of the simulator: Runway's routes (`runway.rs`), the reverse format's
//! (`reverse.rs`) and the quick-start format's (`quickstart.rs`), all through one create
//! pipeline (`create.rs`); the output files (`files.rs`) and the simulator's own controls
//! (`control.rs`).

mod control;
mod create;
mod error;
mod files;
mod quickstart;
mod reverse;
mod runway;
mod uploads;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;

use crate::Sim;
pub(crate) use error::ApiError;
pub(crate) use quickstart::callback_body as quickstart_callback;
pub(crate) use reverse::task_data as reverse_task_data;

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
    for prefix in reverse::PREFIXES {
        for (path, route) in [
            ("pro/generate", "generate"),
            ("pro/video2video", "video2video"),
            ("pro/act_one", "act_one"),
        ] {
            v1 = v1.route(
                &format!("{prefix}/{path}"),
                post(move |state, headers, body| reverse::create(state, route, headers, body)),
            );
        }
        v1 = v1.route(
            &format!("{prefix}/feed"),
            get(reverse::feed_get).post(reverse::feed_post),
        );
    }
    v1.route("/api/v1/runway/generate", post(quickstart::create))
        .route(
            "/api/v1/runway/record-detail",
            get(quickstart::record_detail),
        )
        .route("/_sim/files/{task_id}/{name}", get(files::download))
        .route("/_sim/stats", get(control::stats))
        .route("/_sim/faults", post(control::push_fault))
        .route("/_sim/reset", post(control::reset))
        .route("/_sim/lookup", get(control::lookup))
        .route("/_sim/tasks/{id}/media", get(control::media))
        .route("/_sim/tasks/{id}", get(control::task))
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
