//! OpenAI's Videos API (`/v1/videos`), so that the official `openai` SDKs and the gateways that
//! speak this format (LiteLLM, New API, ...) reach Runway-family models through reelay.
//! Protocol: `shared/api/openai-videos.md`.

mod error;
mod handlers;
pub(crate) mod mapping;
pub(crate) mod openapi;
mod params;
pub(crate) mod request;
pub(crate) mod view;

use axum::routing::{get, post};
use axum::Router;
use reelay_core::TaskState;
use reelay_store::Task;

pub use error::{OpenAi, OpenAiError};
pub use mapping::Mapping;

use crate::AppState;

/// Settings of this dialect.
#[derive(Debug, Clone)]
pub struct OpenaiConfig {
    pub mapping: Mapping,
}

impl Default for OpenaiConfig {
    fn default() -> Self {
        OpenaiConfig {
            mapping: Mapping::builtin(),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/videos", post(handlers::create).get(handlers::list))
        .route("/v1/videos/extensions", post(handlers::extend))
        .route(
            "/v1/videos/{id}",
            get(handlers::retrieve).delete(handlers::delete),
        )
        .route("/v1/videos/{id}/content", get(handlers::content))
        .route("/v1/videos/{id}/remix", post(handlers::remix))
}

/// The webhook of a transition: `video.completed` / `video.failed`.
pub fn callback(task: &Task, to: TaskState, at_ms: i64) -> Option<(String, String)> {
    view::callback(task, to, at_ms)
}
