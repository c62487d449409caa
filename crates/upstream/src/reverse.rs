//! Adapter for a reseller speaking the reverse format (shared/api/reverse.md): CometAPI,
//! DuomiAPI, DeerAPI and their clones.
//!
//! Routes, under the channel's `base_url` plus `/runway` (unless the base already ends with
//! `/runway` or `/runway/v1`, the prefixes of §1.1): `POST /pro/generate` (text and image to
//! video), `/pro/video2video`, `/pro/act_one`, and `POST /feed` to read a task. Answers are the
//! `{code, msg, data}` envelope; a task's `status` is `"0"`–`"3"` (mapped by §10.2, including
//! CometAPI's newer new-api wrapper of §6.5). The format has no cancel, no lookup and no
//! uploads: files go inline (data URIs) or as the URLs the task names.
//!
//! The helpers at the end (transport errors, out-of-credit and moderation wording, the grace
//! for tasks an upstream does not show yet) are shared with the quick-start adapter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reelay_core::TaskSpec;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::http::{
    classify_send_error, client, failure_code, is_out_of_credit, moderation_code, retry_after,
    snippet,
};
use crate::{ChannelConfig, SubmitContext, SubmitError, Upstream, UpstreamError, UpstreamStatus};

/// Endpoints this format has a request for (§2); extend, lip sync and upscale it has not.
const SERVED: [&str; 4] = [
    "text_to_video",
    "image_to_video",
    "video_to_video",
    "character_performance",
];

/// The ratio words the format takes (§3.1).
const RATIO_WORDS: [&str; 6] = ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"];

/// Runway's model names → the reverse format's (§3.1: `gen2`, `gen3`, `gen4`, `gen4.5`; §5.1:
/// `act_one`, `act_two`). Names not listed pass through unchanged; a channel's `model_map`
/// (`ctx.model`) overrides all of this.
const MODEL_NAMES: [(&str, &str); 5] = [
    ("gen4_turbo", "gen4"),
    ("gen3a_turbo", "gen3"),
    ("gen4_aleph", "gen4"),
    ("aleph2", "gen4"),
    ("act_two", "act_two"),
];

/// Adapter for the reverse format.
pub struct ReverseAdapter {
    name: String,
    /// The base URL with the `/runway` prefix.
    root: String,
    key: Option<String>,
    http: reqwest::Client,
    recent: Recent,
}

// The key must never reach a log line, so Debug prints everything else.
impl std::fmt::Debug for ReverseAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseAdapter")
            .field("name", &self.name)
            .field("root", &self.root)
            .finish()
    }
}

impl ReverseAdapter {
    pub fn new(cfg: &ChannelConfig) -> Result<ReverseAdapter, UpstreamError> {
        let base = cfg.base_url.trim_end_matches('/');
        let root = if base.ends_with("/runway") || base.ends_with("/runway/v1") {
            base.to_string()
        } else {
            format!("{base}/runway")
        };
        Ok(ReverseAdapter {
            name: cfg.name.clone(),
            root,
            key: cfg.resolved_api_key(),
            http: client(cfg)?,
            recent: Recent::default(),
        })
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.post(format!("{}{path}", self.root));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }
}

#[async_trait]
impl Upstream for ReverseAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    /// Text, image and video to video and Act-One; nothing else (§2).
    fn serves(&self, endpoint: &str) -> bool {
        SERVED.contains(&endpoint)
    }

    fn takes_callbacks(&self) -> bool {
        true
    }

    async fn submit(
        &self,
        spec: &TaskSpec,
        ctx: &SubmitContext<'_>,
    ) -> Result<String, SubmitError> {
        let (route, body) = translate(spec, ctx.model, ctx.callback_url).map_err(|reason| {
            SubmitError::NotAccepted {
                reason,
                retry_after: None,
            }
        })?;
        let resp = self
            .post(route)
            .header("X-Reelay-Reference", ctx.reference)
            .json(&body)
            .send()
            .await
            .map_err(|e| classify_send_error(&e))?;
        let status = resp.status();
        let after = retry_after(&resp);
        let body = resp.text().await;
        let id = match (status.is_success(), body) {
            (true, Err(e)) => Err(SubmitError::Unknown {
                reason: format!("reading body: {e}"),
            }),
            (true, Ok(b)) => read_created(&b, after),
            (false, b) => Err(refused(status, &b.unwrap_or_default(), after)),
        }?;
        self.recent.note(&id);
        Ok(id)
    }

    async fn status(&self, upstream_id: &str) -> Result<UpstreamStatus, UpstreamError> {
        let resp = self
            .post("/feed")
            .json(&json!({"task_id": upstream_id}))
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        let parsed = serde_json::from_str::<Value>(&text).ok();
        let feed = match (status, parsed) {
            (s, Some(v)) if s.is_success() || s == StatusCode::BAD_REQUEST => read_feed(&v),
            (StatusCode::NOT_FOUND, _) => Feed::Missing,
            (s, _) if s.is_success() => Feed::Unreadable("feed answered no JSON".into()),
            (s, _) => {
                return Err(UpstreamError::Transient(format!(
                    "feed answered {s}: {}",
                    snippet(&text)
                )))
            }
        };
        match feed {
            Feed::Status(s) => {
                if matches!(
                    s,
                    UpstreamStatus::Succeeded { .. }
                        | UpstreamStatus::Failed { .. }
                        | UpstreamStatus::Cancelled
                ) {
                    self.recent.forget(upstream_id);
                }
                Ok(s)
            }
            Feed::Missing => Ok(self.recent.missing(upstream_id, Instant::now())),
            Feed::Error(msg) => Err(UpstreamError::Transient(format!("feed: {msg}"))),
            Feed::Unreadable(why) => {
                // §10.2 "other / unparsable": keep the task as it is; the deadline ends it.
                tracing::warn!(channel = %self.name, task = %upstream_id, %why, "unreadable feed answer");
                Err(UpstreamError::Protocol(why))
            }
        }
    }

    /// The format has no cancel request.
    async fn cancel(&self, _upstream_id: &str) -> Result<(), UpstreamError> {
        Err(UpstreamError::Unsupported)
    }

    /// The feed of a task that cannot exist: `task_not_exist` shows the key was taken, a 401
    /// (or any other error) that the channel cannot work.
    async fn probe(&self) -> Result<(), UpstreamError> {
        let resp = self
            .post("/feed")
            .json(&json!({"task_id": PROBE_ID}))
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        let status = resp.status();
        let v: Option<Value> = resp.json().await.ok();
        match v.as_ref().map(read_feed) {
            Some(Feed::Missing | Feed::Status(_)) => Ok(()),
            _ => Err(UpstreamError::Transient(format!(
                "feed probe answered {status}"
            ))),
        }
    }
}

/// A task id no upstream holds, for probes.
pub(crate) const PROBE_ID: &str = "00000000-0000-0000-0000-000000000000";

// ---- translation: a canonical Runway body → the reverse format's --------------------------

/// The reverse model name for a Runway one ([`MODEL_NAMES`]).
pub fn model_name(runway: &str) -> String {
    MODEL_NAMES
        .iter()
        .find(|(r, _)| *r == runway)
        .map(|(_, ours)| ours.to_string())
        .unwrap_or_else(|| runway.to_string())
}

/// The output length in whole seconds the format offers (5 or 10) nearest `duration`; 10 when
/// absent (Runway's default for the Gen-4 family, and the format's, §3.2).
pub fn seconds(duration: Option<f64>) -> i64 {
    match duration {
        Some(d) if d < 7.5 => 5,
        _ => 10,
    }
}

/// `"1280:720"` (or `"16:9"`) → the nearest of `words` by aspect; `None` when not `W:H`.
pub fn aspect_word(ratio: &str, words: &[&'static str]) -> Option<&'static str> {
    let aspect = |r: &str| -> Option<f64> {
        let (w, h) = r.split_once(':')?;
        let (w, h) = (w.trim().parse::<f64>().ok()?, h.trim().parse::<f64>().ok()?);
        (w > 0.0 && h > 0.0).then(|| (w / h).ln())
    };
    let a = aspect(ratio)?;
    words
        .iter()
        .filter_map(|w| aspect(w).map(|b| (*w, (a - b).abs())))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(w, _)| w)
}

/// Taller than wide.
pub fn is_portrait(ratio: &str) -> bool {
    ratio
        .split_once(':')
        .and_then(|(w, h)| Some(w.trim().parse::<f64>().ok()? < h.trim().parse::<f64>().ok()?))
        .unwrap_or(false)
}

/// Runway's `promptImage` (a string, or `[{uri, position}]`) → (first frame, last frame).
pub fn frames(prompt_image: &Value) -> (Option<String>, Option<String>) {
    match prompt_image {
        Value::String(s) => (Some(s.clone()), None),
        Value::Array(items) => {
            let at = |pos: &str| {
                items.iter().find_map(|i| {
                    let p = i.get("position").and_then(Value::as_str).unwrap_or("first");
                    (p == pos)
                        .then(|| i.get("uri").and_then(Value::as_str).map(str::to_string))
                        .flatten()
                })
            };
            (at("first"), at("last"))
        }
        _ => (None, None),
    }
}

fn text(input: &Value, key: &str) -> Option<String> {
    input.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The route and body for a task: `promptText` → `prompt`; `ratio` → the nearest ratio word
/// (and `options.flip` for a portrait image or video input, which older models need); `duration`
/// → `options.seconds` ([`seconds`]); the first frame → `image`, a last frame → `last_image`
/// (a last frame alone → `image` with `options.image_as_end_frame`); `videoUri` → `video`;
/// Act-One's `reference` video → `video` and its `character` → `image` or `character_video`;
/// `seed` as is; the model by `model` (the channel's mapping) or [`model_name`]; the callback
/// URL as `callback_url`.
pub fn translate(
    spec: &TaskSpec,
    model: Option<&str>,
    callback_url: Option<&str>,
) -> Result<(&'static str, Value), String> {
    let input = &spec.input;
    let mut body = Map::new();
    let mut options = Map::new();
    let ratio = text(input, "ratio").or_else(|| text(input, "targetAspectRatio"));
    let word = ratio.as_deref().and_then(|r| aspect_word(r, &RATIO_WORDS));
    let portrait = ratio.as_deref().is_some_and(is_portrait);
    let duration = input.get("duration").and_then(Value::as_f64);
    if let Some(p) = text(input, "promptText") {
        body.insert("prompt".into(), json!(p));
    }
    let route = match spec.endpoint.as_str() {
        "text_to_video" => {
            body.insert("ratio".into(), json!(word.unwrap_or("16:9")));
            body.insert("style".into(), json!("cinematic"));
            options.insert("seconds".into(), json!(seconds(duration)));
            "/pro/generate"
        }
        "image_to_video" => {
            let (first, last) = frames(input.get("promptImage").unwrap_or(&Value::Null));
            match (first, last) {
                (Some(f), last) => {
                    body.insert("image".into(), json!(f));
                    if let Some(l) = last {
                        body.insert("last_image".into(), json!(l));
                    }
                }
                (None, Some(l)) => {
                    body.insert("image".into(), json!(l));
                    options.insert("image_as_end_frame".into(), json!(true));
                }
                (None, None) => return Err("the task has no prompt image".into()),
            }
            if let Some(w) = word {
                body.insert("ratio".into(), json!(w));
            }
            body.insert("style".into(), json!("cinematic"));
            options.insert("seconds".into(), json!(seconds(duration)));
            options.insert("flip".into(), json!(portrait));
            "/pro/generate"
        }
        "video_to_video" => {
            let video = text(input, "videoUri").ok_or("the task has no videoUri")?;
            body.insert("video".into(), json!(video));
            options.insert("flip".into(), json!(portrait));
            // The format's default length for a redraw (§4.1); Runway's runs as long as the
            // input allows, up to 5 s for Aleph.
            options.insert("seconds".into(), json!(5));
            "/pro/video2video"
        }
        "character_performance" => {
            let uri = |key: &str| input.get(key).and_then(|c| text(c, "uri"));
            let reference = uri("reference").ok_or("the task has no reference video")?;
            body.insert("video".into(), json!(reference));
            let character = uri("character").ok_or("the task has no character")?;
            let kind = input
                .get("character")
                .and_then(|c| text(c, "type"))
                .unwrap_or_default();
            let key = if kind == "video" {
                "character_video"
            } else {
                "image"
            };
            body.insert(key.into(), json!(character));
            if let Some(b) = input.get("bodyControl").and_then(Value::as_bool) {
                options.insert("body_control".into(), json!(b));
            }
            if let Some(e) = input.get("expressionIntensity").and_then(Value::as_i64) {
                options.insert("expression_intensity".into(), json!(e));
            }
            "/pro/act_one"
        }
        other => return Err(format!("the reverse format has no request for {other}")),
    };
    let model = match model {
        Some(m) => m.to_string(),
        None => model_name(input.get("model").and_then(Value::as_str).unwrap_or("")),
    };
    if !model.is_empty() {
        body.insert("model".into(), json!(model));
    }
    if let Some(seed) = input.get("seed").filter(|s| s.is_u64()) {
        body.insert("seed".into(), seed.clone());
    }
    if let Some(url) = callback_url {
        body.insert("callback_url".into(), json!(url));
    }
    body.insert("options".into(), Value::Object(options));
    Ok((route, Value::Object(body)))
}

// ---- answers: the format's envelopes → outcomes ---------------------------------------------

/// The envelope's `code`: 200 / `"200"` / new-api's `"success"` is success.
enum Code {
    Ok,
    Number(u16),
    Word(String),
    Missing,
}

fn code_of(v: &Value) -> Code {
    match v.get("code") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(200) => Code::Ok,
            Some(c) => Code::Number(u16::try_from(c).unwrap_or(u16::MAX)),
            None => Code::Missing,
        },
        Some(Value::String(s)) if s == "200" || s.eq_ignore_ascii_case("success") => Code::Ok,
        Some(Value::String(s)) => match s.parse::<u16>() {
            Ok(c) => Code::Number(c),
            Err(_) => Code::Word(s.clone()),
        },
        _ => Code::Missing,
    }
}

/// The error text of an envelope (`msg`, `message`, a nested `error.message`), or the body.
pub(crate) fn message_of(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    v.as_ref()
        .and_then(|v| {
            [
                v.get("msg"),
                v.get("message"),
                v.get("error").and_then(|e| e.get("message").or(Some(e))),
            ]
            .into_iter()
            .flatten()
            .find_map(|m| m.as_str().filter(|s| !s.is_empty()).map(str::to_string))
        })
        .unwrap_or_else(|| snippet(body))
}

/// A create answered 2xx: the task id, or an envelope error sorted like an HTTP one.
fn read_created(body: &str, after: Option<Duration>) -> Result<String, SubmitError> {
    let unknown = |reason: String| SubmitError::Unknown { reason };
    let v: Value = serde_json::from_str(body)
        .map_err(|e| unknown(format!("unreadable create response: {e}")))?;
    match code_of(&v) {
        // DuomiAPI and CometAPI answer `data.task_id`; new-api style wrappers `data` itself
        // or a top-level `task_id`.
        Code::Ok | Code::Missing => [
            v.pointer("/data/task_id"),
            v.pointer("/data/id"),
            v.get("data").filter(|d| d.is_string()),
            v.get("task_id"),
        ]
        .into_iter()
        .flatten()
        .find_map(|id| id.as_str().filter(|s| !s.is_empty()).map(str::to_string))
        .ok_or_else(|| {
            unknown(format!(
                "create response without a task id: {}",
                snippet(body)
            ))
        }),
        Code::Number(c) => Err(refused_code(c, &message_of(body), after)),
        Code::Word(w) => {
            let msg = message_of(body);
            if is_out_of_credit(&format!("{w} {msg}")) {
                Err(SubmitError::OutOfCredit { message: msg })
            } else {
                Err(unknown(format!("create answered code {w}: {msg}")))
            }
        }
    }
}

/// A create answered a non-2xx HTTP status.
fn refused(status: StatusCode, body: &str, after: Option<Duration>) -> SubmitError {
    refused_code(status.as_u16(), &message_of(body), after)
}

/// An error code (the HTTP status, or the envelope's `code` in an HTTP 200) → whether the
/// upstream may hold the task: 400 rejects the task (unless the words say the balance is
/// empty), 402 is an empty balance, 500/502/504 may have taken it, the rest did not.
fn refused_code(code: u16, msg: &str, after: Option<Duration>) -> SubmitError {
    if is_out_of_credit(msg) || code == 402 {
        return SubmitError::OutOfCredit {
            message: msg.to_string(),
        };
    }
    match code {
        400 => SubmitError::Rejected {
            code: moderation_code(msg).unwrap_or("UPSTREAM_REJECTED").into(),
            message: msg.to_string(),
        },
        500 | 502 | 504 => SubmitError::Unknown {
            reason: format!("upstream answered {code}: {msg}"),
        },
        429 => SubmitError::RateLimited {
            reason: format!("upstream answered 429: {msg}"),
            retry_after: after,
        },
        c => SubmitError::NotAccepted {
            reason: format!("upstream answered {c}: {msg}"),
            retry_after: after,
        },
    }
}

/// What a feed answer says.
#[derive(Debug, PartialEq)]
enum Feed {
    Status(UpstreamStatus),
    /// `task_not_exist`: not (yet) visible upstream.
    Missing,
    /// An error envelope (bad key, rate limit, ...): try again later.
    Error(String),
    /// Something §10.2 has no row for.
    Unreadable(String),
}

fn read_feed(v: &Value) -> Feed {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match code_of(v) {
        Code::Ok => match v.get("data") {
            Some(d @ Value::Object(_)) => {
                let new_api = v.get("code").is_some_and(Value::is_string)
                    && d.get("status")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.chars().any(|c| c.is_ascii_uppercase()));
                if new_api {
                    read_new_api(d)
                } else {
                    read_task(d)
                }
            }
            _ => Feed::Unreadable("feed answer without data".into()),
        },
        code => {
            let words = format!(
                "{} {} {}",
                text("msg"),
                text("message"),
                match &code {
                    Code::Word(w) => w.as_str(),
                    _ => "",
                }
            );
            let w = words.to_ascii_lowercase();
            if w.contains("task_not_exist") || w.contains("not exist") || w.contains("not found") {
                Feed::Missing
            } else if matches!(code, Code::Missing) {
                Feed::Unreadable(format!(
                    "feed answer without a code: {}",
                    snippet(&v.to_string())
                ))
            } else {
                Feed::Error(words.trim().to_string())
            }
        }
    }
}

/// `"NN%"`, `"0.5"` or a number → a fraction.
fn progress_of(v: Option<&Value>) -> Option<f64> {
    let p = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            match s.strip_suffix('%') {
                Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
                None => s.parse().ok()?,
            }
        }
        _ => return None,
    };
    let p = if p > 1.0 { p / 100.0 } else { p };
    p.is_finite().then_some(p.clamp(0.0, 1.0))
}

/// The §10.2 table for the task object of §6.2.
fn read_task(d: &Value) -> Feed {
    let status = match d.get("status") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Feed::Unreadable("task without a status".into()),
    };
    let state = d.get("state").and_then(Value::as_str).unwrap_or("");
    let msg = d
        .get("msg")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    let url = d
        .get("video_url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty());
    Feed::Status(match status.as_str() {
        "0" if state == "throttled" => UpstreamStatus::Throttled,
        "0" => UpstreamStatus::Pending,
        "1" => UpstreamStatus::Running {
            progress: progress_of(d.get("progress")).unwrap_or(0.0),
        },
        "2" if state == "cancelled" => UpstreamStatus::Cancelled,
        "2" => UpstreamStatus::Failed {
            code: msg.and_then(failure_code),
            message: msg.unwrap_or("The task failed upstream.").to_string(),
        },
        "3" => match url {
            Some(u) => UpstreamStatus::Succeeded {
                outputs: vec![u.to_string()],
            },
            // Finished without its video yet: keep polling (the deadline ends it).
            None => UpstreamStatus::Running { progress: 0.99 },
        },
        other => return Feed::Unreadable(format!("unknown status {other:?}")),
    })
}

/// CometAPI's new-api wrapper (§6.5): upper-case words, `fail_reason`, `progress: "NN%"`, the
/// upstream's own task object in `data.data`.
fn read_new_api(d: &Value) -> Feed {
    let status = d.get("status").and_then(Value::as_str).unwrap_or("");
    let url = [
        d.get("result_url"),
        d.get("video_url"),
        d.pointer("/data/video_url"),
        d.pointer("/data/output/0"),
    ]
    .into_iter()
    .flatten()
    .find_map(|u| u.as_str().filter(|s| !s.is_empty()).map(str::to_string));
    let reason = d
        .get("fail_reason")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    Feed::Status(match status {
        "QUEUED" | "SUBMITTED" | "NOT_START" => UpstreamStatus::Pending,
        "IN_PROGRESS" => UpstreamStatus::Running {
            progress: progress_of(d.get("progress")).unwrap_or(0.0),
        },
        "SUCCESS" => match url {
            Some(u) => UpstreamStatus::Succeeded { outputs: vec![u] },
            None => UpstreamStatus::Running { progress: 0.99 },
        },
        "FAILURE" => UpstreamStatus::Failed {
            code: reason.and_then(failure_code),
            message: reason.unwrap_or("The task failed upstream.").to_string(),
        },
        other => return Feed::Unreadable(format!("unknown new-api status {other:?}")),
    })
}

/// How long a task an upstream does not show is still taken for "not yet visible" (§6.1:
/// CometAPI's transient `task_not_exist`).
pub(crate) const MISSING_GRACE: Duration = Duration::from_secs(60);
const RECENT_MAX: usize = 50_000;

/// When each task was submitted (or first missing, for tasks submitted before a restart):
/// the start of its grace. Bounded; entries older than the grace are pruned.
#[derive(Default)]
pub(crate) struct Recent {
    at: Mutex<HashMap<String, Instant>>,
}

impl Recent {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.at.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn note(&self, id: &str) {
        let now = Instant::now();
        let mut m = self.map();
        if m.len() >= RECENT_MAX {
            m.retain(|_, t| now.duration_since(*t) < MISSING_GRACE);
            if m.len() >= RECENT_MAX {
                m.clear();
            }
        }
        m.insert(id.to_string(), now);
    }

    pub(crate) fn forget(&self, id: &str) {
        self.map().remove(id);
    }

    /// A task the upstream does not show: still pending within its grace, lost after it.
    pub(crate) fn missing(&self, id: &str, now: Instant) -> UpstreamStatus {
        let since = *self.map().entry(id.to_string()).or_insert(now);
        if now.duration_since(since) < MISSING_GRACE {
            UpstreamStatus::Pending
        } else {
            self.forget(id);
            UpstreamStatus::NotFound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(endpoint: &str, input: Value) -> TaskSpec {
        TaskSpec {
            operation: reelay_core::Operation::ImageToVideo,
            endpoint: endpoint.into(),
            model: input["model"].as_str().unwrap_or("").into(),
            input,
            price: 1,
            output: None,
            callback_url: None,
            params: None,
            watermark: None,
            received: None,
        }
    }

    #[test]
    fn ratios_become_the_nearest_word() {
        let w = &RATIO_WORDS;
        assert_eq!(aspect_word("1280:720", w), Some("16:9"));
        assert_eq!(aspect_word("720:1280", w), Some("9:16"));
        assert_eq!(aspect_word("960:960", w), Some("1:1"));
        assert_eq!(aspect_word("1104:832", w), Some("4:3"));
        assert_eq!(aspect_word("832:1104", w), Some("3:4"));
        assert_eq!(aspect_word("1584:672", w), Some("21:9"));
        assert_eq!(aspect_word("16:9", w), Some("16:9"));
        assert_eq!(aspect_word("adaptive", w), None);
        assert!(is_portrait("720:1280") && !is_portrait("1280:720") && !is_portrait("x"));
    }

    #[test]
    fn durations_become_5_or_10() {
        assert_eq!(
            [None, Some(2.0), Some(5.0), Some(7.0), Some(8.0), Some(10.0)].map(seconds),
            [10, 5, 5, 5, 10, 10]
        );
    }

    #[test]
    fn model_names_translate_unless_the_channel_maps_one() {
        assert_eq!(model_name("gen4_turbo"), "gen4");
        assert_eq!(model_name("gen3a_turbo"), "gen3");
        assert_eq!(model_name("gen4.5"), "gen4.5");
        let s = spec(
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": "https://x/a.jpg", "ratio": "1280:720"}),
        );
        assert_eq!(translate(&s, None, None).unwrap().1["model"], "gen4");
        assert_eq!(
            translate(&s, Some("gen4.5"), None).unwrap().1["model"],
            "gen4.5"
        );
    }

    #[test]
    fn image_to_video_with_first_and_last_frames() {
        let s = spec(
            "image_to_video",
            json!({"model": "gen4_turbo", "promptText": "a cat", "ratio": "720:1280", "duration": 5,
                   "seed": 7, "promptImage": [{"uri": "https://x/f.jpg", "position": "first"},
                                              {"uri": "https://x/l.jpg", "position": "last"}]}),
        );
        let (route, body) = translate(&s, None, Some("https://hook/1")).unwrap();
        assert_eq!(route, "/pro/generate");
        assert_eq!(
            body,
            json!({"prompt": "a cat", "image": "https://x/f.jpg", "last_image": "https://x/l.jpg",
                   "ratio": "9:16", "style": "cinematic", "model": "gen4", "seed": 7,
                   "callback_url": "https://hook/1",
                   "options": {"seconds": 5, "flip": true}})
        );
        // A last frame alone is the image, used as the end frame.
        let s = spec(
            "image_to_video",
            json!({"model": "gen4_turbo", "ratio": "1280:720",
                   "promptImage": [{"uri": "https://x/l.jpg", "position": "last"}]}),
        );
        let (_, body) = translate(&s, None, None).unwrap();
        assert_eq!(body["image"], "https://x/l.jpg");
        assert_eq!(body["options"]["image_as_end_frame"], true);
        assert!(body.get("callback_url").is_none());
    }

    #[test]
    fn text_video_and_act_one_bodies() {
        let s = spec(
            "text_to_video",
            json!({"model": "gen4.5", "promptText": "a cat", "ratio": "1280:720", "duration": 10}),
        );
        let (route, body) = translate(&s, None, None).unwrap();
        assert_eq!(route, "/pro/generate");
        assert_eq!(
            body,
            json!({"prompt": "a cat", "ratio": "16:9", "style": "cinematic", "model": "gen4.5",
                   "options": {"seconds": 10}})
        );
        let s = spec(
            "video_to_video",
            json!({"model": "aleph2", "promptText": "pixelated", "videoUri": "https://x/v.mp4"}),
        );
        let (route, body) = translate(&s, None, None).unwrap();
        assert_eq!(route, "/pro/video2video");
        assert_eq!(
            (&body["video"], &body["model"], &body["prompt"]),
            (
                &json!("https://x/v.mp4"),
                &json!("gen4"),
                &json!("pixelated")
            )
        );
        let s = spec(
            "character_performance",
            json!({"model": "act_two", "character": {"type": "video", "uri": "https://x/c.mp4"},
                   "reference": {"type": "video", "uri": "https://x/r.mp4"}, "bodyControl": true}),
        );
        let (route, body) = translate(&s, None, None).unwrap();
        assert_eq!(route, "/pro/act_one");
        assert_eq!(
            body,
            json!({"video": "https://x/r.mp4", "character_video": "https://x/c.mp4",
                   "model": "act_two", "options": {"body_control": true}})
        );
        assert!(translate(&spec("video_upscale", json!({})), None, None).is_err());
    }

    #[test]
    fn create_answers_are_sorted_by_whether_the_task_may_exist() {
        let ok = r#"{"code":200,"msg":"success","data":{"task_id":"t-1"}}"#;
        assert_eq!(read_created(ok, None), Ok("t-1".into()));
        assert!(matches!(
            read_created("<html>", None),
            Err(SubmitError::Unknown { .. })
        ));
        assert!(matches!(
            read_created(r#"{"code":200,"data":{}}"#, None),
            Err(SubmitError::Unknown { .. })
        ));
        // Envelope errors in an HTTP 200 (DuomiAPI style).
        let e = |c: u16, msg: &str| {
            read_created(
                &format!(r#"{{"code":{c},"msg":"{msg}","data":null}}"#),
                None,
            )
            .unwrap_err()
        };
        assert!(matches!(
            e(402, "insufficient points"),
            SubmitError::OutOfCredit { .. }
        ));
        assert!(matches!(
            e(400, "余额不足"),
            SubmitError::OutOfCredit { .. }
        ));
        assert!(matches!(
            e(400, "prompt is required"),
            SubmitError::Rejected { .. }
        ));
        assert!(matches!(
            e(500, "internal error"),
            SubmitError::Unknown { .. }
        ));
        assert!(matches!(
            e(429, "rate limited"),
            SubmitError::RateLimited { .. }
        ));
        assert!(matches!(
            e(401, "invalid api key"),
            SubmitError::NotAccepted { .. }
        ));
        assert_eq!(
            e(400, "Inappropriate content detected."),
            SubmitError::Rejected {
                code: "SAFETY.INPUT".into(),
                message: "Inappropriate content detected.".into()
            }
        );
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            refused(StatusCode::SERVICE_UNAVAILABLE, "{}", after),
            SubmitError::NotAccepted {
                reason: "upstream answered 503: {}".into(),
                retry_after: after
            }
        );
        assert!(matches!(
            refused(StatusCode::GATEWAY_TIMEOUT, "", None),
            SubmitError::Unknown { .. }
        ));
        // CometAPI's gateway envelope.
        let body = r#"{"error":{"message":"insufficient_user_quota","type":"comet_api_error"}}"#;
        assert!(matches!(
            refused(StatusCode::FORBIDDEN, body, None),
            SubmitError::OutOfCredit { .. }
        ));
    }

    #[test]
    fn feed_statuses_follow_section_10_2() {
        let task = |status: &str, state: &str, extra: Value| {
            let mut d = json!({"task_id": "t", "status": status, "state": state});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            read_feed(&json!({"code": 200, "msg": "success", "data": d}))
        };
        let st = |s| Feed::Status(s);
        assert_eq!(task("0", "", json!({})), st(UpstreamStatus::Pending));
        assert_eq!(
            task("0", "throttled", json!({})),
            st(UpstreamStatus::Throttled)
        );
        assert_eq!(
            task("1", "running", json!({})),
            st(UpstreamStatus::Running { progress: 0.0 })
        );
        assert_eq!(
            task("2", "cancelled", json!({})),
            st(UpstreamStatus::Cancelled)
        );
        assert_eq!(
            task(
                "2",
                "failed",
                json!({"msg": "The generated video was flagged by our content moderation system."})
            ),
            st(UpstreamStatus::Failed {
                code: Some("SAFETY.OUTPUT".into()),
                message: "The generated video was flagged by our content moderation system.".into()
            })
        );
        assert_eq!(
            task("3", "succeeded", json!({"video_url": "https://v/1.mp4"})),
            st(UpstreamStatus::Succeeded {
                outputs: vec!["https://v/1.mp4".into()]
            })
        );
        assert_eq!(
            task("3", "", json!({"video_url": null})),
            st(UpstreamStatus::Running { progress: 0.99 })
        );
        assert!(matches!(task("4", "", json!({})), Feed::Unreadable(_)));
        assert_eq!(
            read_feed(&json!({"code": 400, "msg": "task_not_exist", "data": null})),
            Feed::Missing
        );
        assert!(matches!(
            read_feed(&json!({"code": 401, "msg": "invalid api key", "data": null})),
            Feed::Error(_)
        ));
    }

    #[test]
    fn the_new_api_wrapper_is_read_too() {
        let wrap = |d: Value| read_feed(&json!({"code": "success", "message": "", "data": d}));
        assert_eq!(
            wrap(json!({"task_id": "t", "status": "QUEUED", "progress": "0%",
                        "data": {"id": "t", "status": "PENDING"}})),
            Feed::Status(UpstreamStatus::Pending)
        );
        assert_eq!(
            wrap(json!({"task_id": "t", "status": "IN_PROGRESS", "progress": "40%"})),
            Feed::Status(UpstreamStatus::Running { progress: 0.4 })
        );
        assert_eq!(
            wrap(json!({"task_id": "t", "status": "SUCCESS",
                        "data": {"status": "SUCCEEDED", "output": ["https://v/2.mp4"]}})),
            Feed::Status(UpstreamStatus::Succeeded {
                outputs: vec!["https://v/2.mp4".into()]
            })
        );
        assert_eq!(
            wrap(json!({"task_id": "t", "status": "FAILURE", "fail_reason": "INTERNAL: boom"})),
            Feed::Status(UpstreamStatus::Failed {
                code: Some("INTERNAL".into()),
                message: "INTERNAL: boom".into()
            })
        );
        assert_eq!(
            read_feed(&json!({"code": "task_not_exist", "message": "task_not_exist"})),
            Feed::Missing
        );
    }

    #[test]
    fn a_missing_task_is_pending_for_a_minute_then_lost() {
        let r = Recent::default();
        let t0 = Instant::now();
        r.note("a");
        assert_eq!(r.missing("a", t0), UpstreamStatus::Pending);
        assert_eq!(
            r.missing("a", t0 + MISSING_GRACE + Duration::from_secs(1)),
            UpstreamStatus::NotFound
        );
        // Unknown to this process (submitted before a restart): the grace starts now.
        assert_eq!(r.missing("b", t0), UpstreamStatus::Pending);
    }

    #[test]
    fn failure_codes_from_messages() {
        assert_eq!(failure_code("INTERNAL: boom").as_deref(), Some("INTERNAL"));
        assert_eq!(
            failure_code("SAFETY.INPUT.TEXT flagged").as_deref(),
            Some("SAFETY.INPUT.TEXT")
        );
        assert_eq!(
            failure_code("Your prompt was caught by our AI moderator.").as_deref(),
            Some("SAFETY.INPUT")
        );
        assert_eq!(
            failure_code("Generation failed, please try again later"),
            None
        );
        assert_eq!(failure_code("OK then"), None);
    }
}
