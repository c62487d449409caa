//! Archived media, served by reelay itself: `GET /media/{task_id}/{name}?exp=&sig=`.
//!
//! Every dialect hands out the links [`task_media`] makes: signed with a key derived from the
//! instance secret (HMAC-SHA-256 over task, name and expiry), valid until `exp` (never beyond
//! the media's own expiry). Serving answers with the recorded Content-Type, Content-Length and
//! a strong ETag (the SHA-256), honours single byte ranges (a video player seeks) and
//! `If-None-Match`/`If-Range`, and answers 404 once the media expired or the task was deleted.
//! With S3 storage it may instead redirect to a short-lived presigned bucket URL.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use reelay_core::TaskState;
use reelay_store::{now_ms, MediaObject, ServedMedia, Task};
use sha2::Sha256;

use crate::AppState;

/// Makes and checks signed media links. Cheap to clone; holds no I/O, so views built inside a
/// store transaction (webhook payloads) can use it.
#[derive(Clone)]
pub struct MediaLinks {
    base: Arc<str>,
    key: Arc<[u8; 32]>,
    ttl_seconds: u64,
}

impl std::fmt::Debug for MediaLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLinks")
            .field("base", &self.base)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

/// What a task's media look like to a client: links to its outputs (in order), to the poster
/// and last frame of its first video output, and whether the media expired (their links then
/// answer 404; quick-start says `expireFlag: 1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskMedia {
    pub outputs: Vec<String>,
    pub poster: Option<String>,
    pub last_frame: Option<String>,
    pub expired: bool,
    /// When the media expire (ms since the epoch), once archived.
    pub expires_at: Option<i64>,
}

/// The media links of `task`, made for now. Pure: no I/O.
pub fn task_media(links: &MediaLinks, task: &Task) -> TaskMedia {
    let now = now_ms();
    let link = |name: &str| links.url(&task.id, name, task.expires_at, now);
    TaskMedia {
        outputs: task.outputs.iter().map(|n| link(n)).collect(),
        poster: task.poster.as_deref().map(link),
        last_frame: task.last_frame.as_deref().map(link),
        expired: task.state == TaskState::Succeeded && task.expires_at.is_some_and(|e| e <= now),
        expires_at: task.expires_at,
    }
}

type HmacSha256 = Hmac<Sha256>;

impl MediaLinks {
    /// `public_url` is the base clients reach reelay at; `secret_key` the instance secret, from
    /// which a key used for nothing else is derived; links live `ttl`.
    pub fn new(public_url: &str, secret_key: &[u8; 32], ttl: Duration) -> MediaLinks {
        let mut mac = HmacSha256::new_from_slice(secret_key).expect("any key length works");
        mac.update(b"media-links");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        MediaLinks {
            base: public_url.trim_end_matches('/').into(),
            key: Arc::new(key),
            ttl_seconds: ttl.as_secs().max(1),
        }
    }

    /// The link to object `name` of task `task_id`. Its expiry is rounded up to a step of at
    /// most an hour, so a client polling a task sees the same URL for a while (and can cache
    /// it), and is cut to the media's own expiry when that comes first.
    pub fn url(
        &self,
        task_id: &str,
        name: &str,
        media_expires_at: Option<i64>,
        now_ms: i64,
    ) -> String {
        let exp = self.expiry(media_expires_at, now_ms);
        format!(
            "{}/media/{task_id}/{name}?exp={exp}&sig={}",
            self.base,
            self.sign(task_id, name, exp)
        )
    }

    fn expiry(&self, media_expires_at: Option<i64>, now_ms: i64) -> u64 {
        let now = (now_ms.max(0) / 1000) as u64;
        let step = (self.ttl_seconds / 4).clamp(1, 3600);
        let exp = (now + self.ttl_seconds).div_ceil(step) * step;
        match media_expires_at {
            Some(m) if m > now_ms => exp.min((m as u64).div_ceil(1000)),
            _ => exp,
        }
    }

    fn mac(&self, task_id: &str, name: &str, exp: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key[..]).expect("any key length works");
        mac.update(format!("{task_id}/{name}\n{exp}").as_bytes());
        mac
    }

    /// The public base URL (no trailing slash).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn sign(&self, task_id: &str, name: &str, exp: u64) -> String {
        hex::encode(&self.mac(task_id, name, exp).finalize().into_bytes()[..SIG_BYTES])
    }

    /// Whether `sig` is ours for this object and expiry (constant time).
    pub fn verify(&self, task_id: &str, name: &str, exp: u64, sig: &str) -> bool {
        match hex::decode(sig) {
            Ok(bytes) if bytes.len() == SIG_BYTES => self
                .mac(task_id, name, exp)
                .verify_truncated_left(&bytes)
                .is_ok(),
            _ => false,
        }
    }
}

/// A 128-bit tag: plenty against forgery, and keeps URLs short.
const SIG_BYTES: usize = 16;

/// How media are served, cut from the configuration.
#[derive(Debug, Clone, Default)]
pub struct MediaServing {
    /// With S3 storage: redirect to presigned URLs living at most this long.
    pub redirect_presign_ttl: Option<Duration>,
}

pub fn routes(_state: &AppState) -> Router<AppState> {
    Router::new().route(
        "/media/{task_id}/{name}",
        get(serve).fallback(|| async {
            let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }),
    )
}

/// The signed part of a media link. Read by hand rather than through axum's `Query`, whose
/// rejection of a repeated key is a text/plain 400: a link we did not make, however it is
/// malformed, is answered like no object at all (docs/media.md).
#[derive(Debug, PartialEq)]
pub(crate) struct LinkQuery {
    pub(crate) exp: u64,
    pub(crate) sig: String,
}

impl LinkQuery {
    /// Exactly one `exp` (a number) and one `sig`; other keys are ignored, as a CDN or a
    /// player may append its own.
    pub(crate) fn parse(query: Option<&str>) -> Option<LinkQuery> {
        let (mut exp, mut sig) = (None, None);
        for (k, v) in url::form_urlencoded::parse(query?.as_bytes()) {
            let slot = match &*k {
                "exp" => &mut exp,
                "sig" => &mut sig,
                _ => continue,
            };
            if slot.replace(v).is_some() {
                return None;
            }
        }
        Some(LinkQuery {
            exp: exp?.parse().ok()?,
            sig: sig?.into_owned(),
        })
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let mut r = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        r.headers_mut()
            .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    r
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found")
}

async fn serve(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    // A link we did not sign, for whatever object, is indistinguishable from no object.
    let (Ok(Path((task_id, name))), Some(LinkQuery { exp, sig })) =
        (path, LinkQuery::parse(query.as_deref()))
    else {
        return not_found();
    };
    if !state.links.verify(&task_id, &name, exp, &sig) {
        return not_found();
    }
    let served = match served_media(&state, &task_id, &name).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "reading media record failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "Try again later");
        }
    };
    let now = now_ms();
    if served.deleted || served.expires_at.is_some_and(|e| e <= now) {
        return not_found();
    }
    let now_s = (now / 1000) as u64;
    if exp <= now_s {
        return error(
            StatusCode::FORBIDDEN,
            "This media link has expired; fetch the task again for a fresh one.",
        );
    }
    send(&state, served.object, &method, &headers, exp - now_s).await
}

/// Streams a recorded object (or redirects to a presigned URL with S3), honouring
/// `If-None-Match`, `Range` and `If-Range`. `valid_for_s`: how long the caller may cache it.
pub(crate) async fn send(
    state: &AppState,
    object: MediaObject,
    method: &Method,
    headers: &HeaderMap,
    valid_for_s: u64,
) -> Response {
    let etag = format!("\"{}\"", object.sha256);
    let max_age = valid_for_s.min(86_400);
    let mut common = HeaderMap::new();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(&mut common, header::ETAG, etag.clone());
    set(
        &mut common,
        header::CACHE_CONTROL,
        format!("private, max-age={max_age}"),
    );
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    common.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Outputs are data, never a page of ours: no scripts, even in an SVG.
    common.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if let Some(t) = chrono::DateTime::from_timestamp_millis(object.created_at) {
        set(
            &mut common,
            header::LAST_MODIFIED,
            t.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        );
    }

    if if_none_match(headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().extend(common);
        return r;
    }

    let key = object.key();
    if let (Some(ttl), true) = (
        state.media_serving.redirect_presign_ttl,
        state.media.is_s3(),
    ) {
        let ttl = ttl.min(Duration::from_secs(valid_for_s));
        return match state.media.presign_get(&key, ttl).await {
            Ok(Some(url)) => {
                let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
                set(r.headers_mut(), header::LOCATION, url);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Ok(None) => not_found(),
            Err(e) => {
                tracing::error!(error = %e, "presigning a media URL failed");
                error(StatusCode::SERVICE_UNAVAILABLE, "Try again later")
            }
        };
    }

    let size = object.size.max(0) as u64;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_allows(headers, &etag) => parse_range(r, size),
        _ => RangeRequest::Full,
    };
    let (status, range) = match range {
        RangeRequest::Full => (StatusCode::OK, 0..size),
        RangeRequest::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
        RangeRequest::Unsatisfiable => {
            let mut r = error(StatusCode::RANGE_NOT_SATISFIABLE, "Range not satisfiable");
            set(
                r.headers_mut(),
                header::CONTENT_RANGE,
                format!("bytes */{size}"),
            );
            return r;
        }
    };
    let mut h = common;
    set(&mut h, header::CONTENT_TYPE, object.content_type.clone());
    set(
        &mut h,
        header::CONTENT_LENGTH,
        (range.end - range.start).to_string(),
    );
    set(
        &mut h,
        header::CONTENT_DISPOSITION,
        format!("inline; filename=\"{}-{}\"", object.task_id, object.name),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            &mut h,
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", range.start, range.end - 1),
        );
    }
    let body = if method == Method::HEAD || range.is_empty() {
        Body::empty()
    } else {
        match state.media.get(&key, Some(range)).await {
            Ok(stream) => Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other))),
            Err(e) if e.is_not_found() => {
                tracing::warn!(key, "a recorded media object is missing from the store");
                return not_found();
            }
            Err(e) => {
                tracing::error!(key, error = %e, "reading media failed");
                return error(StatusCode::SERVICE_UNAVAILABLE, "Try again later");
            }
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().extend(h);
    r
}

/// The record of object `name`, derived first when it is a frame the task shows that nobody
/// asked for yet (the last frame is made on its first request).
pub(crate) async fn served_media(
    state: &AppState,
    task_id: &str,
    name: &str,
) -> reelay_store::Result<Option<ServedMedia>> {
    if let Some(s) = state.store.media_object(task_id, name).await? {
        return Ok(Some(s));
    }
    let Some(task) = state.store.get_task_by_id(task_id).await? else {
        return Ok(None);
    };
    if state.engine.frame_on_demand(&task, name).await?.is_none() {
        return Ok(None);
    }
    state.store.media_object(task_id, name).await
}

/// The bytes of object `name` of `task`, derived first like [`served_media`] does.
pub(crate) async fn object_bytes(
    state: &AppState,
    task: &Task,
    name: &str,
) -> Result<Option<bytes::Bytes>, String> {
    let key = format!("{}/{name}", task.id);
    match state.media.get_bytes(&key).await {
        Ok(b) => return Ok(Some(b)),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.to_string()),
    }
    match state.engine.frame_on_demand(task, name).await {
        Ok(Some(_)) => state
            .media
            .get_bytes(&key)
            .await
            .map(Some)
            .map_err(|e| e.to_string()),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// `If-Range` with our ETag (or absent) lets the range apply; anything else means "send it all".
fn if_range_allows(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => v.trim() == etag,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Full,
    Partial(Range<u64>),
    Unsatisfiable,
}

/// One byte range (RFC 9110 §14.1.2) against an object of `size` bytes. Syntax reelay does not
/// serve (other units, several ranges) is ignored, as the RFC allows: the whole object is sent.
fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), num(first), num(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(size.saturating_sub(n)..size)
            }
        }
        // bytes=A- and bytes=A-B.
        (false, Some(a), b) if last.trim().is_empty() || b.is_some() => {
            if b.is_some_and(|b| b < a) {
                return RangeRequest::Full;
            }
            if a >= size {
                return RangeRequest::Unsatisfiable;
            }
            let end = b.map_or(size, |b| b.saturating_add(1).min(size));
            RangeRequest::Partial(a..end)
        }
        _ => RangeRequest::Full,
    }
}

/// A task's last frame: inline (a data URI) for an upstream to continue from, and our signed
/// URL for it. Made on first request like every last frame. `param` names the field that
/// pointed at the task, for the error when there is no frame.
pub(crate) struct Frame {
    pub data_uri: String,
    pub url: String,
}

pub(crate) async fn last_frame(
    state: &AppState,
    task: &Task,
    param: &str,
) -> Result<Frame, crate::error::ApiError> {
    let no_frame = || {
        crate::error::ApiError::invalid(
            param,
            format!("Task {} has no last frame to continue from", task.id),
        )
    };
    let m = task_media(&state.links, task);
    let (Some(name), Some(url)) = (&task.last_frame, m.last_frame) else {
        return Err(no_frame());
    };
    let bytes = object_bytes(state, task, name)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, task = %task.id, "reading a last frame");
            no_frame()
        })?
        .ok_or_else(no_frame)?;
    let ct = if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    use base64::Engine;
    Ok(Frame {
        data_uri: format!(
            "data:{ct};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        ),
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_query_takes_exactly_one_exp_and_one_sig() {
        let q = |s: &str| LinkQuery::parse(Some(s));
        let ok = Some(LinkQuery {
            exp: 5,
            sig: "ab".into(),
        });
        assert_eq!(q("exp=5&sig=ab"), ok);
        assert_eq!(q("sig=ab&utm=x&exp=5"), ok);
        for bad in [
            "exp=5&exp=5&sig=ab",
            "exp=5&sig=ab&sig=cd",
            "exp=-1&sig=ab",
            "exp=&sig=ab",
            "exp=99999999999999999999999&sig=ab",
            "sig=ab",
            "exp=5",
            "",
        ] {
            assert_eq!(q(bad), None, "{bad}");
        }
        assert_eq!(LinkQuery::parse(None), None);
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Partial(0..100));
        assert_eq!(parse_range("bytes=-100", 1000), Partial(900..1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Partial(0..1000));
        assert_eq!(parse_range("bytes=990-", 1000), Partial(990..1000));
        assert_eq!(parse_range("bytes=990-5000", 1000), Partial(990..1000));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=5000-6000", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Full);
        assert_eq!(parse_range("items=0-1", 1000), Full);
        assert_eq!(parse_range("bytes=a-b", 1000), Full);
        assert_eq!(parse_range("bytes=+1-2", 1000), Full);
    }

    fn links() -> MediaLinks {
        MediaLinks::new(
            "https://v.example.com/",
            &[7; 32],
            Duration::from_secs(86_400),
        )
    }

    fn query(url: &str) -> (u64, String) {
        let q = url.split_once('?').unwrap().1;
        let mut exp = 0;
        let mut sig = String::new();
        for kv in q.split('&') {
            match kv.split_once('=').unwrap() {
                ("exp", v) => exp = v.parse().unwrap(),
                ("sig", v) => sig = v.into(),
                _ => {}
            }
        }
        (exp, sig)
    }

    #[test]
    fn links_verify_only_for_their_object_and_expiry() {
        let l = links();
        let now = 1_700_000_000_000;
        let url = l.url("t1", "0.mp4", None, now);
        assert!(
            url.starts_with("https://v.example.com/media/t1/0.mp4?exp="),
            "{url}"
        );
        let (exp, sig) = query(&url);
        assert!((1_700_000_000 + 86_400..1_700_000_000 + 86_400 + 3600).contains(&exp));
        assert!(l.verify("t1", "0.mp4", exp, &sig));
        assert!(!l.verify("t2", "0.mp4", exp, &sig));
        assert!(!l.verify("t1", "0.poster.jpg", exp, &sig));
        assert!(!l.verify("t1", "0.mp4", exp + 1, &sig));
        assert!(!l.verify("t1", "0.mp4", exp, "zz"));
        assert!(!l.verify("t1", "0.mp4", exp, &sig[..30]));
        // Another instance secret, another key.
        let other = MediaLinks::new(
            "https://v.example.com",
            &[8; 32],
            Duration::from_secs(86_400),
        );
        assert!(!other.verify("t1", "0.mp4", exp, &sig));
        // The same link for a while: clients can cache it.
        assert_eq!(l.url("t1", "0.mp4", None, now + 1000), url);
    }

    #[test]
    fn links_never_outlive_the_media() {
        let l = links();
        let now = 1_700_000_000_000;
        let (exp, _) = query(&l.url("t1", "0.mp4", Some(now + 60_000), now));
        assert_eq!(exp, 1_700_000_060);
        // Already expired media: a normal link (serving answers 404 anyway).
        let (exp, _) = query(&l.url("t1", "0.mp4", Some(now - 1), now));
        assert!(exp > 1_700_000_000 + 86_400 - 1);
    }
}
