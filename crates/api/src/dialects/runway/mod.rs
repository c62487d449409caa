//! Runway's official developer API, so that the `runwayml` SDKs work by changing the base URL.
//! Protocol: `shared/api/runway-official.md`.

mod error;
mod handlers;
mod view;

use axum::routing::{get, post};
use axum::Router;

pub use error::RunwayError;

use crate::AppState;

/// The generation endpoints; each is a catalog endpoint of the same name.
pub const ENDPOINTS: [&str; 14] = [
    "image_to_video",
    "text_to_video",
    "video_to_video",
    "character_performance",
    "video_upscale",
    "text_to_image",
    "image_upscale",
    "sound_effect",
    "text_to_speech",
    "speech_to_speech",
    "voice_dubbing",
    "voice_isolation",
    "video_to_audio",
    "video_to_hdr",
];

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for endpoint in ENDPOINTS {
        r = r.route(
            &format!("/v1/{endpoint}"),
            post(move |state, headers, body| handlers::create(state, headers, body, endpoint)),
        );
    }
    r.route("/v1/tasks/{id}", get(handlers::get_task).delete(handlers::delete_task))
        .route("/v1/organization", get(handlers::organization))
}

pub async fn not_found() -> RunwayError {
    RunwayError::RouteNotFound
}

pub async fn method_not_allowed() -> RunwayError {
    RunwayError::MethodNotAllowed
}
