//! The HTTP surface. Each dialect is a folder under `dialects/` with its routes, its views
//! (state tables) and its one error type mapped to HTTP once; they all turn requests into the
//! same `TaskSpec` and read the same tasks.

mod auth;
pub mod dialects;
mod health;
mod media;
mod state;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::trace::TraceLayer;

pub use auth::Principal;
pub use state::{ApiConfig, AppState};

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(media::routes(&state))
        .merge(dialects::runway::routes())
        .fallback(dialects::runway::not_found)
        .method_not_allowed_fallback(dialects::runway::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        // A bug must cost one request a 500, never the connection or the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
