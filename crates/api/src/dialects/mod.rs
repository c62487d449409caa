//! One folder per client dialect, and the one place they are registered: each dialect's
//! routes are merged here and its callbacks dispatched here, by its [`Dialect`] (adding one is a
//! folder, a `Dialect` variant and its line in each `match`/list below; the compiler finds the
//! matches).

pub mod openai;
pub mod quickstart;
pub mod reverse;
pub mod runway;

use axum::Router;
use reelay_core::{Dialect, TaskState};
use reelay_store::Task;

use crate::media::MediaLinks;
use crate::AppState;

/// Every dialect's routes.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(runway::routes(&state.config))
        .merge(reverse::router())
        .merge(quickstart::router())
        .merge(openai::routes())
}

/// Every dialect's OpenAPI document, by the name it is served under (`/openapi/<name>.json`).
pub(crate) fn openapi(state: &AppState) -> Vec<(&'static str, utoipa::openapi::OpenApi)> {
    vec![
        (
            "runway",
            runway::openapi::document(
                &state.catalog,
                state.config.runway_insufficient_credits_status,
            ),
        ),
        (
            "reverse",
            reverse::openapi::document(&state.reverse.mapping),
        ),
        (
            "quickstart",
            quickstart::openapi::document(&state.quickstart.mapping),
        ),
        ("openai", openai::openapi::document()),
    ]
}

/// What a dialect's callback of a transition is: its event type and body, and for the
/// quick-start dialect the id its kie.ai HMAC covers.
pub(crate) struct Callback {
    pub event_type: String,
    pub payload: String,
    pub hmac_subject: Option<String>,
}

/// The callback `task`'s dialect sends for a transition, if it reports that one.
pub(crate) fn callback(
    links: &MediaLinks,
    task: &Task,
    from: Option<TaskState>,
    to: TaskState,
    at_ms: i64,
) -> Option<Callback> {
    let plain = |(event_type, payload): (String, String)| Callback {
        event_type,
        payload,
        hmac_subject: None,
    };
    match task.dialect {
        Dialect::Runway => runway::callback(links, task, from, to, at_ms).map(plain),
        Dialect::Reverse => reverse::callback(links, task, from, to, at_ms).map(plain),
        Dialect::Quickstart => {
            quickstart::callback(links, task, to).map(|(event_type, payload, subject)| Callback {
                event_type,
                payload,
                hmac_subject: Some(subject),
            })
        }
        Dialect::Openai => openai::callback(task, to, at_ms).map(plain),
    }
}

pub(crate) use reelay_core::validate::longer_than_utf16;

/// The longest string a hand-parsed dialect field may hold: media fields carry URLs or data
/// URIs (bounded as Runway bounds them), every other field is text with the catalog's default
/// bound. The catalog re-checks what it maps; this bound covers what it never sees (styles,
/// watermarks, model words, callback URLs) and keeps a 20 MiB field from being copied around.
pub(crate) fn string_bound(media: bool) -> usize {
    if media {
        reelay_core::media_ref::AV_DATA_URI_MAX
    } else {
        reelay_core::catalog::DEFAULT_TEXT_MAX_UTF16
    }
}

/// `W:H` as a number.
pub(crate) fn aspect(r: &str) -> Option<f64> {
    let (w, h) = r.split_once(':')?;
    let (w, h): (f64, f64) = (w.parse().ok()?, h.parse().ok()?);
    (w > 0.0 && h > 0.0).then_some(w / h)
}

/// The pixel ratio of `ratios` closest in shape to a `width`×`height` picture.
pub(crate) fn nearest_ratio(ratios: &[String], width: u32, height: u32) -> &str {
    let want = (width.max(1) as f64 / height.max(1) as f64).ln();
    ratios
        .iter()
        .min_by(|a, b| {
            let da = (aspect(a).unwrap_or(1.0).ln() - want).abs();
            let db = (aspect(b).unwrap_or(1.0).ln() - want).abs();
            da.total_cmp(&db)
        })
        .map(String::as_str)
        .unwrap_or("1280:720")
}

/// A dialect's typed facts about a task (`TaskSpec::params`), read back; defaults for a task
/// stored without them.
pub(crate) fn params_of<T: serde::de::DeserializeOwned + Default>(task: &Task) -> T {
    task.spec
        .params
        .as_ref()
        .and_then(|v| T::deserialize(v).ok())
        .unwrap_or_default()
}

/// A dialect's typed facts as the JSON stored with the task.
pub(crate) fn params_value<T: serde::Serialize>(params: &T) -> serde_json::Value {
    serde_json::to_value(params).expect("plain data serializes")
}
