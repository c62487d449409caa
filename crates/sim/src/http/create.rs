//! The create pipeline every format shares: authentication, the queued fault, the body, the
//! prompt's directives, the task, and the faults that spoil the answer after it — each answer
//! rendered by the format ([`Face`]) the request came in.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use reelay_core::MediaKind;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::{drop_connection, ApiError};
use crate::fault::{parse_directives, Fault};
use crate::state::{elide, Format, NewTask, Phase, Seen, Task};
use crate::Sim;

pub(crate) const REFERENCE_HEADER: &str = "x-reelay-reference";

/// What a format's parser makes of a valid create body.
pub(crate) struct Parsed {
    /// The endpoint the request stands for (`text_to_video`, ...).
    pub endpoint: String,
    /// The text the `[sim:...]` directives are read from.
    pub prompt: String,
    /// The model as the request named it (or the format's default).
    pub model: String,
    /// Credits (points) the task costs.
    pub estimated: i64,
    pub output: MediaKind,
    pub callback_url: Option<String>,
}

/// One wire format's face: how it authenticates, parses a create body and words each answer.
pub(crate) trait Face {
    const FORMAT: Format;

    /// What every request of this format must pass (the key, a version header).
    fn check(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError>;

    /// An unreadable body (too large, cut short) or one that is not JSON.
    fn bad_body(status: StatusCode, message: String) -> ApiError;

    /// A body that names something invalid (an unknown `runway://` upload), in this format's
    /// words for a validation failure.
    fn invalid(message: String) -> ApiError;

    /// A valid body → what the task needs; an invalid one → this format's rejection.
    fn parse(sim: &Sim, route: &'static str, body: &Value) -> Result<Parsed, ApiError>;

    /// The answer of a fault that refuses the request (rate limit, 5xx, moderation, out of
    /// credit); a connection reset is handled by the pipeline.
    fn refuse(fault: &Fault) -> ApiError;

    /// The answer to a successful create.
    fn accepted(
        sim: &Sim,
        headers: &HeaderMap,
        task: &Task,
        phase: &Phase,
        started: Instant,
    ) -> Response;
}

/// A fault together with the key that makes a once-directive fire only once.
struct Candidate {
    fault: Fault,
    once_key: Option<String>,
}

/// Takes the first candidate matching `pred` that may still fire, and marks it fired.
fn take_fault(sim: &Sim, candidates: &[Candidate], pred: impl Fn(&Fault) -> bool) -> Option<Fault> {
    let mut st = sim.state();
    for c in candidates.iter().filter(|c| pred(&c.fault)) {
        match &c.once_key {
            None => return Some(c.fault.clone()),
            Some(key) if st.fire_once(key.clone()) => return Some(c.fault.clone()),
            Some(_) => {}
        }
    }
    None
}

fn refuse<F: Face>(fault: &Fault) -> ApiError {
    match fault {
        Fault::ResetBeforeAccept | Fault::ResetAfterAccept => drop_connection(),
        other => F::refuse(other),
    }
}

pub(crate) async fn create<F: Face>(
    sim: Sim,
    route: &'static str,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    {
        let mut st = sim.state();
        st.stats.creates_received += 1;
        *st.stats
            .creates_by_format
            .entry(F::FORMAT.as_str().to_string())
            .or_default() += 1;
    }
    F::check(&sim, &headers)?;
    let reference = headers
        .get(REFERENCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|r| !r.is_empty() && r.len() <= 512)
        .map(str::to_string);

    // A queued fault belongs to this request whatever else happens to it.
    let pushed = sim.state().next_fault();
    if let Some(f) = pushed.as_ref().filter(|f| f.is_before_body()) {
        return Err(refuse::<F>(f));
    }

    let body = body.map_err(|rej| {
        let status = rej.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "Request body is too large.".to_string()
        } else {
            rej.body_text()
        };
        F::bad_body(status, message)
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|_| {
        F::bad_body(
            StatusCode::BAD_REQUEST,
            "Invalid JSON in request body.".into(),
        )
    })?;
    let parsed = F::parse(&sim, route, &value)?;

    // Which faults apply: the queued one, then the prompt's directives.
    let identity = reference.clone().unwrap_or_else(|| {
        let mut h = Sha256::new();
        h.update(F::FORMAT.as_str().as_bytes());
        h.update(parsed.endpoint.as_bytes());
        h.update(value.to_string().as_bytes());
        hex::encode(h.finalize())
    });
    let mut candidates: Vec<Candidate> = pushed
        .into_iter()
        .map(|fault| Candidate {
            fault,
            once_key: None,
        })
        .collect();
    candidates.extend(
        parse_directives(&parsed.prompt)
            .into_iter()
            .map(|d| Candidate {
                once_key: d.once.then(|| format!("{identity}\u{0}{}", d.token)),
                fault: d.fault,
            }),
    );
    if let Some(f) = take_fault(&sim, &candidates, Fault::is_pre_accept) {
        return Err(refuse::<F>(&f));
    }
    let forced_failure = candidates.iter().find_map(|c| match &c.fault {
        Fault::FailTask { code } => Some(code.clone()),
        _ => None,
    });
    let slow: f64 = candidates
        .iter()
        .filter_map(|c| match c.fault {
            Fault::SlowProgress { factor } if factor.is_finite() && factor > 0.0 => Some(factor),
            _ => None,
        })
        .product();

    let media_sha256 = media_digests(&sim, &value)
        .map_err(|uri| F::invalid(format!("Invalid runway:// URI: {uri}")))?;
    let config = &sim.inner.config;
    let seconds =
        |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(86_400));
    let callback_url = parsed.callback_url.clone();
    let new = NewTask {
        estimated: parsed.estimated,
        output: parsed.output,
        model: parsed.model,
        pending: seconds(config.pending_seconds),
        run: seconds(config.run_seconds * slow),
        forced_failure,
        reference: reference.clone(),
        media_sha256,
        seen: Seen {
            format: F::FORMAT,
            endpoint: parsed.endpoint,
            body: elide(&value),
            prompt: parsed.prompt,
            callback_url: callback_url.clone(),
            reference,
        },
    };
    let now = Instant::now();
    let (task, phase) = {
        let mut st = sim.state();
        let id = st.create(new, now);
        st.get(&id, now).expect("just created")
    };
    if callback_url.is_some() {
        crate::callbacks::schedule(&sim, task.id);
    }
    let ok = F::accepted(&sim, &headers, &task, &phase, started);

    match take_fault(&sim, &candidates, Fault::is_post_accept) {
        None => Ok(ok),
        Some(Fault::AcceptThenServerError { status }) => {
            Err(F::refuse(&Fault::ServerError { status }))
        }
        Some(Fault::ResetAfterAccept) => drop_connection(),
        Some(Fault::TimeoutAfterAccept { secs }) => {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Ok(ok)
        }
        Some(other) => unreachable!("not a post-accept fault: {other:?}"),
    }
}

/// SHA-256 of the bytes of every data URI and uploaded file (`runway://`) in a body: how a
/// test sees what the upstream got. An unknown `runway://` URI is refused (as Runway does).
fn media_digests(sim: &Sim, v: &Value) -> Result<Vec<String>, String> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.starts_with("runway://") => {
                let key = s.strip_prefix(super::uploads::URI_PREFIX).unwrap_or("");
                match sim.state().upload(key) {
                    Some(bytes) => out.push(hex::encode(Sha256::digest(&bytes))),
                    None => return Err(s.clone()),
                }
            }
            Value::String(s) if s.starts_with("data:") => {
                if let Some((_, b64)) = s.split_once(";base64,") {
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) {
                        out.push(hex::encode(Sha256::digest(&bytes)));
                    }
                }
            }
            Value::Array(a) => stack.extend(a.iter().rev()),
            Value::Object(o) => stack.extend(o.values().rev()),
            _ => {}
        }
    }
    Ok(out)
}

/// The signed URL of one of a task's output files (`name` from [`crate::files`]), or the
/// configured override.
pub(crate) fn output_url(sim: &Sim, headers: &HeaderMap, task: &Task, name: &str) -> String {
    let exp = crate::files::unix_now() + sim.inner.config.output_ttl_seconds;
    let task_id = task.id.to_string();
    let sig = crate::files::sign(&sim.inner.secret, &task_id, name, exp);
    match &sim.inner.config.output_url {
        Some(u) if name == crate::files::output_file(task.output).0 => {
            u.replace("{task_id}", &task_id)
        }
        _ => format!(
            "{}/_sim/files/{task_id}/{name}?exp={exp}&sig={sig}",
            sim.public_base(headers)
        ),
    }
}

/// Unix seconds of an instant of the task's clock.
pub(crate) fn unix_at(task: &Task, at: Instant) -> i64 {
    let offset = at.saturating_duration_since(task.created);
    task.created_at.timestamp() + offset.as_secs() as i64
}

/// When the task last changed status, as of `phase` (for the formats' `update_time`).
pub(crate) fn changed_at(task: &Task, phase: &Phase) -> Instant {
    match (phase, task.start) {
        (Phase::Throttled, _) | (_, None) => task.created,
        (Phase::Pending, Some(s)) => s,
        (Phase::Running { .. }, Some(s)) => s + task.pending,
        (_, Some(_)) => task.end().unwrap_or(task.created),
    }
}
