//! The quick-start (kie.ai-style) dialect: `/api/v1/runway/generate`, `record-detail`,
//! `extend`, and Aleph under `/api/v1/aleph/`, with word states, `expireFlag`, snake_case
//! callbacks on their own retry schedule and kie.ai's optional HMAC headers.
//! Protocol: `shared/api/quickstart.md`.

mod error;
mod fetch;
mod handlers;
mod mapping;
pub(crate) mod openapi;
pub(crate) mod params;
pub(crate) mod request;
mod view;

use axum::routing::{get, post};
use axum::Router;
use chrono::FixedOffset;
use reelay_core::TaskState;
use reelay_store::Task;

pub use error::{QsError, Quickstart};
pub use mapping::Mapping;

use crate::error::{ApiError, ErrorKind};
pub(crate) use crate::media::last_frame;
use crate::media::{task_media, MediaLinks};
use crate::AppState;

#[derive(Debug, Clone)]
pub struct QuickstartConfig {
    pub mapping: Mapping,
    /// Delays of the callback retries (decision 15: 1, 5 and 15 minutes).
    pub callback_schedule: Vec<u64>,
    /// Zone of `generateTime` (decision 8).
    pub time_zone: FixedOffset,
}

impl Default for QuickstartConfig {
    fn default() -> Self {
        QuickstartConfig {
            mapping: Mapping::builtin(),
            callback_schedule: vec![60, 300, 900],
            time_zone: FixedOffset::east_opt(0).expect("UTC"),
        }
    }
}

/// `UTC`, `Z` or `±HH:MM`.
pub fn parse_zone(s: &str) -> Result<FixedOffset, String> {
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("UTC"));
    }
    let bad = || format!("{s:?} is not UTC or an offset like +08:00");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

pub fn router() -> Router<AppState> {
    let not_found =
        || async { QsError::from(ApiError::new(ErrorKind::RouteNotFound, "route not found")) };
    let runway = Router::new()
        .route("/generate", post(handlers::generate))
        .route("/record-detail", get(handlers::record_detail))
        .route("/extend", post(handlers::extend))
        .fallback(not_found);
    let aleph = Router::new()
        .route("/generate", post(handlers::aleph_generate))
        .route("/record-info", get(handlers::aleph_record_info))
        .fallback(not_found);
    Router::new()
        .nest("/api/v1/runway", runway)
        .nest("/api/v1/aleph", aleph)
}

/// The callback of a transition (terminal ones only, §6.1): event type, body, and the task id
/// kie.ai's HMAC signature covers.
pub fn callback(
    links: &MediaLinks,
    task: &Task,
    to: TaskState,
) -> Option<(String, String, String)> {
    view::callback(task, to, &media_of(links, task))
}

/// A task's media as this dialect shows them.
pub(crate) fn media_of(links: &MediaLinks, task: &Task) -> view::Media {
    let m = task_media(links, task);
    view::Media {
        video: m.outputs.first().cloned(),
        poster: m.poster,
        expired: m.expired,
    }
}
