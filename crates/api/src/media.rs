use axum::Router;
use tower_http::services::ServeDir;

use crate::AppState;

/// Archived outputs, with Range, Content-Type and Last-Modified handled by `ServeDir`.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new().nest_service("/media", ServeDir::new(state.media.root()))
}
