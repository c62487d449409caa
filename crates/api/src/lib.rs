//! The HTTP surface. Each dialect is a folder under `dialects/` with its routes, its views
//! (state tables) and its one error type mapped to HTTP once; they all turn requests into the
//! same `TaskSpec` and read the same tasks.

mod accept;
pub mod admin;
mod auth;
mod callbacks;
pub mod console;
mod create;
pub mod dialects;
pub mod error;
mod fields;
#[cfg(test)]
mod fuzz;
mod health;
mod media;
pub mod metrics;
mod openapi;
pub mod server;
mod state;
mod uploads;
mod upstream_callbacks;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::trace::TraceLayer;

pub use accept::{AcceptError, Accepted};
pub use auth::{Keys, KeysConfig, Principal};
pub use callbacks::DialectCallbacks;
pub use media::{task_media, MediaLinks, MediaServing, TaskMedia};
pub use state::{ApiConfig, AppState};

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(media::routes(&state))
        .merge(dialects::routes(&state))
        .merge(uploads::routes())
        .merge(openapi::routes(&state))
        .merge(console::routes())
        .merge(upstream_callbacks::routes())
        .nest("/admin/v1", admin::routes())
        // The nest does not match its own path with a trailing slash; without this the
        // outer, Runway-shaped fallback would answer for the admin API.
        .route("/admin/v1/", axum::routing::any(admin::handlers::not_found))
        .route("/metrics", axum::routing::get(metrics::scrape_admin))
        // Counted per matched route (an unmatched path would make a series per URL).
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(dialects::runway::not_found)
        .method_not_allowed_fallback(dialects::runway::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        // A bug must cost one request a 500, never the connection or the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        // Each request has an id (the client's `x-request-id`, else a new UUID), echoed in
        // the response and carried by the request's span, so every log line of the request
        // names it.
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
        .with_state(state)
}

/// Background upkeep of the HTTP layer: API key last-used writes, rate-limit state trimming, and
/// expired idempotency records (purged in small batches so the writer is never held long).
pub async fn upkeep(state: AppState) {
    tokio::spawn(state.keys.clone().run_upkeep(state.store.clone()));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        loop {
            match state
                .store
                .purge_idempotency(reelay_store::now_ms(), 500)
                .await
            {
                Ok(500) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not purge expired idempotency keys");
                    break;
                }
            }
        }
    }
}

/// Crate-private pure functions re-exported for the criterion benchmarks in `benches/` (an
/// external crate sees only `pub` items). Not an API: nothing else may use it.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::accept::account_price;
    pub use crate::create::json_object;
    pub mod reverse {
        pub use crate::dialects::reverse::request::{act_one, generate, video2video, Translated};
    }
    pub mod quickstart {
        pub use crate::dialects::quickstart::request::{
            read_aleph, read_extend, read_generate, GenerateRequest,
        };
    }
}
