//! `GET /metrics` in the Prometheus text format.
//!
//! Two sources. What this instance does — HTTP requests per dialect, route and status with
//! their latency, upstream calls per channel, call and outcome with theirs, webhook attempts,
//! archived bytes — is counted as it happens through the `metrics` facade into one Prometheus
//! recorder per process. What every instance shares — tasks by state, the queue, credits, the
//! webhook backlog — is read from the database, at most once per [`DB_CACHE`] whatever the
//! number of scrapers, so N instances scraped every few seconds do not multiply the query
//! load by much. Channel gauges (breaker, in flight) come from the registry at each scrape.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::admin::Admin;
use crate::AppState;

/// How long figures read from the database are reused.
pub const DB_CACHE: Duration = Duration::from_secs(5);

/// Latency buckets (seconds) for every `*_duration_seconds` histogram.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder, installed on first use (every server in the process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), &BUCKETS)
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (an embedding program's): keep rendering ours,
        // which then sees nothing; the database figures still come through.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows the database figures only");
        }
        handle
    })
}

/// The database figures, rendered, with when they were read.
#[derive(Default)]
pub struct DbFigures(Mutex<Option<(Instant, Arc<String>)>>);

/// `GET /metrics` on the main listener: behind the admin token.
pub async fn scrape_admin(_: Admin, State(state): State<AppState>) -> Response {
    render(&state).await
}

/// `GET /metrics` on `metrics_listen`: no token (that address is the operator's to guard).
pub async fn scrape_open(State(state): State<AppState>) -> Response {
    render(&state).await
}

async fn render(state: &AppState) -> Response {
    let mut out = handle().render();
    match db_figures(state).await {
        Ok(text) => out.push_str(&text),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database figures could not be read");
            out.push_str("# reelay_store_up 0: the database figures could not be read\n");
        }
    }
    if let Ok(views) = state.engine.channel_views().await {
        out.push_str("# TYPE reelay_channel_breaker_state gauge\n");
        for v in &views {
            let n = match v.breaker {
                "closed" => 0,
                "half_open" => 1,
                _ => 2,
            };
            let _ = writeln!(
                out,
                "reelay_channel_breaker_state{{channel=\"{}\"}} {n}",
                label(&v.name)
            );
        }
        out.push_str("# TYPE reelay_channel_enabled gauge\n");
        for v in &views {
            let on = v.enabled && !v.removed;
            let _ = writeln!(
                out,
                "reelay_channel_enabled{{channel=\"{}\"}} {}",
                label(&v.name),
                on as u8
            );
        }
        out.push_str("# TYPE reelay_channel_in_flight gauge\n");
        for v in &views {
            let _ = writeln!(
                out,
                "reelay_channel_in_flight{{channel=\"{}\"}} {}",
                label(&v.name),
                v.in_flight.unwrap_or(0)
            );
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn db_figures(state: &AppState) -> reelay_store::Result<Arc<String>> {
    if let Some((at, text)) = state.metrics.0.lock().unwrap().as_ref() {
        if at.elapsed() < DB_CACHE {
            return Ok(text.clone());
        }
    }
    let now = reelay_store::now_ms();
    let s = state.store.ops_snapshot(now).await?;
    let age = |at: Option<i64>| at.map_or(0.0, |t| ((now - t).max(0)) as f64 / 1000.0);
    let mut out = String::new();
    out.push_str("# HELP reelay_tasks Tasks by state, across instances (from the database).\n# TYPE reelay_tasks gauge\n");
    for (st, n) in &s.tasks_by_state {
        let _ = writeln!(out, "reelay_tasks{{state=\"{}\"}} {n}", label(st));
    }
    let gauges: [(&str, &str, f64); 7] = [
        (
            "reelay_queue_depth",
            "Tasks due now waiting to be submitted.",
            s.queue_depth as f64,
        ),
        (
            "reelay_queue_oldest_due_age_seconds",
            "How long the longest-waiting due task has been due.",
            age(s.oldest_due_at),
        ),
        (
            "reelay_credits_held",
            "Credits held by live tasks.",
            s.credits_held as f64,
        ),
        (
            "reelay_credits_captured_total",
            "Credits captured by succeeded tasks.",
            s.credits_captured as f64,
        ),
        (
            "reelay_credits_refunded_total",
            "Credits refunded to accounts.",
            s.credits_refunded as f64,
        ),
        (
            "reelay_webhook_backlog",
            "Webhook messages not yet delivered nor given up on.",
            s.webhook_backlog as f64,
        ),
        (
            "reelay_webhook_oldest_undelivered_age_seconds",
            "Age of the oldest undelivered webhook message.",
            age(s.oldest_undelivered_at),
        ),
    ];
    for (name, help, v) in gauges {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    let text = Arc::new(out);
    *state.metrics.0.lock().unwrap() = Some((Instant::now(), text.clone()));
    Ok(text)
}

/// A label value as the text format wants it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Which dialect a path belongs to (a bounded label).
fn dialect_of(path: &str) -> &'static str {
    if path.starts_with("/admin") {
        "admin"
    } else if path.starts_with("/v1/videos") {
        "openai"
    } else if path.starts_with("/api/v1/") {
        "quickstart"
    } else if path.starts_with("/runway/") || path.starts_with("/api/video/runway/") {
        "reverse"
    } else if path.starts_with("/v1/") {
        "runway"
    } else if path.starts_with("/media") {
        "media"
    } else {
        "other"
    }
}

/// Counts every request and its latency by dialect, route (the matched pattern, so ids do not
/// make new series) and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let dialect = dialect_of(req.uri().path());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("reelay_http_requests_total", "dialect" => dialect, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("reelay_http_request_duration_seconds", "dialect" => dialect, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_dialect() {
        assert_eq!(dialect_of("/v1/image_to_video"), "runway");
        assert_eq!(dialect_of("/v1/videos/video_1"), "openai");
        assert_eq!(dialect_of("/api/v1/runway/generate"), "quickstart");
        assert_eq!(dialect_of("/runway/pro/generate"), "reverse");
        assert_eq!(dialect_of("/admin/v1/accounts"), "admin");
        assert_eq!(dialect_of("/healthz"), "other");
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
