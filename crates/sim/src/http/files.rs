//! `GET /_sim/files/{task_id}/{name}?exp=&sig=`: outputs behind signed, expiring URLs, refused
//! with a CDN-style 403 once expired or when the signature does not match.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::files::{file_by_name, sign, unix_now};
use crate::Sim;

fn denied(message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
    );
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

pub(crate) async fn download(
    State(sim): State<Sim>,
    Path((task_id, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(exp), Some(sig)) = (q.get("exp"), q.get("sig")) else {
        return denied("Missing Key-Pair-Id query parameter or cookie value");
    };
    let Ok(exp) = exp.parse::<u64>() else {
        return denied("Invalid expiry");
    };
    if sign(&sim.inner.secret, &task_id, &name, exp) != *sig {
        return denied("Invalid signature");
    }
    if unix_now() >= exp {
        return denied("Request has expired");
    }
    match file_by_name(&name, sim.inner.config.output_video.as_ref()) {
        Some((content_type, bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "private, max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/xml")],
            "<Error><Code>NoSuchKey</Code></Error>",
        )
            .into_response(),
    }
}
