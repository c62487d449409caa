//! The reseller "reverse" format (CometAPI, ElkAPI, DuomiAPI and clones): `/runway/pro/*` and
//! `/runway/feed` under three prefixes, the `{code, msg, data, exec_time}` envelope and the
//! `point`/`refund` callback. Protocol: `shared/api/reverse.md`.

mod error;
mod handlers;
pub(crate) mod openapi;
pub(crate) mod request;
mod view;

use axum::routing::post;
use axum::Router;

pub use error::{Reverse, ReverseError};
pub use request::Mapping;
pub use view::callback;

use crate::error::{ApiError, ErrorKind};
use crate::AppState;
use handlers::Route;

/// Settings of this dialect.
#[derive(Debug, Clone)]
pub struct ReverseConfig {
    pub mapping: Mapping,
    /// Decision 4: optional by default; true restores the resellers' `callback_url_empty`.
    pub require_callback_url: bool,
}

impl Default for ReverseConfig {
    fn default() -> Self {
        ReverseConfig {
            mapping: Mapping::builtin(),
            require_callback_url: false,
        }
    }
}

/// The resellers mount the same routes under these prefixes; they are exact aliases.
pub const PREFIXES: [&str; 3] = ["/runway", "/api/video/runway", "/runway/v1"];

fn routes() -> Router<AppState> {
    let create = |route: Route| {
        post(move |state, headers, body| handlers::create(state, headers, body, route))
    };
    Router::new()
        .route("/pro/generate", create(Route::Generate))
        .route("/pro/video2video", create(Route::Video2Video))
        .route("/pro/act_one", create(Route::ActOne))
        .route("/feed", post(handlers::feed_post).get(handlers::feed_get))
        .fallback(|| async {
            ReverseError::from(ApiError::new(ErrorKind::RouteNotFound, "route not found"))
        })
        .method_not_allowed_fallback(|| async {
            ReverseError::from(ApiError::new(
                ErrorKind::MethodNotAllowed,
                "method not allowed",
            ))
        })
}

pub fn router() -> Router<AppState> {
    PREFIXES
        .iter()
        .fold(Router::new(), |r, prefix| r.nest(prefix, routes()))
}
