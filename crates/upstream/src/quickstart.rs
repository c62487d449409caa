//! Adapter for a reseller speaking kie.ai's quick-start format (shared/api/quickstart.md):
//! `POST /api/v1/runway/generate` and `GET /api/v1/runway/record-detail?taskId=` under the
//! channel's `base_url`.
//!
//! The envelope's `code` lives in the body of an HTTP 200 (§8), so a submit is sorted by that
//! code: 402 (and 433, a sub-key over its limit) is an empty balance; 400/422/451 reject the
//! task; 401, 404, 429 (with `Retry-After`), 455 (maintenance) and the other 4xx did not take
//! it; 500, 501 and an unreadable or id-less 200 may have. States map by §10.3.
//!
//! Served: `text_to_video` and `image_to_video` only. Not served (`serves` is false): Aleph
//! (`video_to_video`, `/api/v1/aleph/generate`), whose tasks are read through another route
//! (`aleph/record-info`) with another shape, which a bare upstream id cannot tell apart;
//! `extend` (`/api/v1/runway/extend`), which has no catalog endpoint (it continues one of the
//! upstream's own tasks); and everything else. The format has no cancel and no lookup; files go
//! inline (data URIs) or as the URLs the task names. An end frame (`position: "last"`) cannot
//! be expressed: a task's first frame is sent, its last one dropped (or sent as the image when
//! it is the only one).

use std::time::Duration;

use async_trait::async_trait;
use reelay_core::TaskSpec;
use serde_json::{json, Value};

use crate::http::{
    classify_send_error, client, failure_code, is_out_of_credit, moderation_code, retry_after,
    snippet,
};
use crate::reverse::{aspect_word, frames, message_of, seconds, PROBE_ID};
use crate::{ChannelConfig, SubmitContext, SubmitError, Upstream, UpstreamError, UpstreamStatus};

const SERVED: [&str; 2] = ["text_to_video", "image_to_video"];

/// The aspect ratios `generate` takes (§3.1; no 21:9).
const ASPECT_RATIOS: [&str; 5] = ["16:9", "4:3", "1:1", "3:4", "9:16"];

/// Adapter for the quick-start format.
pub struct QuickstartAdapter {
    name: String,
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

// The key must never reach a log line, so Debug prints everything else.
impl std::fmt::Debug for QuickstartAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickstartAdapter")
            .field("name", &self.name)
            .field("base", &self.base)
            .finish()
    }
}

impl QuickstartAdapter {
    pub fn new(cfg: &ChannelConfig) -> Result<QuickstartAdapter, UpstreamError> {
        Ok(QuickstartAdapter {
            name: cfg.name.clone(),
            base: cfg.base_url.trim_end_matches('/').to_string(),
            key: cfg.resolved_api_key(),
            http: client(cfg)?,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }
}

// ---- translation: a canonical Runway body → the quick-start format's ------------------------

/// The duration a quick-start model name implies (`runway-duration-5-generate` → 5).
pub fn model_duration(model: &str) -> Option<i64> {
    model
        .strip_prefix("runway-duration-")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// `1080p` when the task asks for a 1080-class size (its ratio's shorter side is at least
/// 1080 pixels) and 5 seconds — the only length 1080p is offered at (§3.1) — else `720p`.
pub fn quality(ratio: Option<&str>, duration: i64) -> &'static str {
    let short_side = ratio
        .and_then(|r| r.split_once(':'))
        .and_then(|(w, h)| Some(w.trim().parse::<u32>().ok()?.min(h.trim().parse().ok()?)));
    match short_side {
        Some(s) if s >= 1080 && duration == 5 => "1080p",
        _ => "720p",
    }
}

/// The body for a task: `promptText` → `prompt`; `duration` → 5 or 10 (nearest; 10 when
/// absent), or the length a mapped model name says (`runway-duration-5-generate`); `quality`
/// by [`quality`]; `ratio` → the nearest `aspectRatio` (16:9 when none); the first frame →
/// `imageUrl`; `model` the channel's mapping, else `runway-duration-{5|10}-generate`; no
/// watermark; the callback URL as `callBackUrl`. `seed` has no field here and is dropped.
pub fn translate(
    spec: &TaskSpec,
    model: Option<&str>,
    callback_url: Option<&str>,
) -> Result<Value, String> {
    if !SERVED.contains(&spec.endpoint.as_str()) {
        return Err(format!(
            "the quick-start format has no request for {}",
            spec.endpoint
        ));
    }
    let input = &spec.input;
    let ratio = input.get("ratio").and_then(Value::as_str);
    let duration = model
        .and_then(model_duration)
        .filter(|d| [5, 10].contains(d))
        .unwrap_or_else(|| seconds(input.get("duration").and_then(Value::as_f64)));
    let mut body = json!({
        "prompt": input.get("promptText").and_then(Value::as_str).unwrap_or(""),
        "duration": duration,
        "quality": quality(ratio, duration),
        "aspectRatio": ratio.and_then(|r| aspect_word(r, &ASPECT_RATIOS)).unwrap_or("16:9"),
        "model": model.map(str::to_string)
            .unwrap_or_else(|| format!("runway-duration-{duration}-generate")),
        "waterMark": "",
    });
    if spec.endpoint == "image_to_video" {
        let (first, last) = frames(input.get("promptImage").unwrap_or(&Value::Null));
        let image = first.or(last).ok_or("the task has no prompt image")?;
        body["imageUrl"] = json!(image);
    }
    if let Some(url) = callback_url {
        body["callBackUrl"] = json!(url);
    }
    Ok(body)
}

// ---- answers ---------------------------------------------------------------------------------

/// An envelope `code` (or an HTTP status standing for one) that is not 200 → whether the
/// upstream may hold the task.
fn refused_code(code: i64, msg: &str, after: Option<Duration>) -> SubmitError {
    let not_accepted = || SubmitError::NotAccepted {
        reason: format!("upstream answered code {code}: {msg}"),
        retry_after: after,
    };
    match code {
        402 | 433 => SubmitError::OutOfCredit {
            message: msg.to_string(),
        },
        _ if is_out_of_credit(msg) => SubmitError::OutOfCredit {
            message: msg.to_string(),
        },
        400 | 422 | 451 => SubmitError::Rejected {
            code: moderation_code(msg).unwrap_or("UPSTREAM_REJECTED").into(),
            message: msg.to_string(),
        },
        500 | 501 | 502 | 504 => SubmitError::Unknown {
            reason: format!("upstream answered code {code}: {msg}"),
        },
        429 => SubmitError::RateLimited {
            reason: format!("upstream answered code 429: {msg}"),
            retry_after: after,
        },
        _ if (400..600).contains(&code) => not_accepted(),
        _ => SubmitError::Unknown {
            reason: format!("upstream answered code {code}: {msg}"),
        },
    }
}

/// A create's answer: the HTTP status, and the envelope in the body that usually decides.
fn read_created(
    status: reqwest::StatusCode,
    body: Result<String, String>,
    after: Option<Duration>,
) -> Result<String, SubmitError> {
    let unknown = |reason: String| SubmitError::Unknown { reason };
    if matches!(status.as_u16(), 500 | 502 | 504) {
        return Err(unknown(format!("upstream answered {status}")));
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if status.is_success() => return Err(unknown(format!("reading body: {e}"))),
        Err(_) => String::new(),
    };
    let v: Option<Value> = serde_json::from_str(&body).ok();
    let code = v
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()));
    match (status.is_success(), code) {
        (true, Some(200)) => v
            .as_ref()
            .and_then(|v| {
                [v.pointer("/data/taskId"), v.pointer("/data/task_id")]
                    .into_iter()
                    .flatten()
                    .find_map(|id| id.as_str().filter(|s| !s.is_empty()).map(str::to_string))
            })
            .ok_or_else(|| {
                unknown(format!(
                    "create response without a taskId: {}",
                    snippet(&body)
                ))
            }),
        (_, Some(c)) if c != 200 => Err(refused_code(c, &message_of(&body), after)),
        (true, _) => Err(unknown(format!(
            "unreadable create response: {}",
            snippet(&body)
        ))),
        // An HTTP error without an envelope: sorted by its status (a 400 rejects the task).
        (false, _) => Err(refused_code(
            i64::from(status.as_u16()),
            &message_of(&body),
            after,
        )),
    }
}

/// What a record-detail answer says.
#[derive(Debug, PartialEq)]
enum Detail {
    Status(UpstreamStatus),
    /// Code 404: not (yet) visible.
    Missing,
    Error(String),
    Unreadable(String),
}

fn read_detail(v: &Value) -> Detail {
    let code = v
        .get("code")
        .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()));
    match code {
        Some(200) => {}
        Some(404) => return Detail::Missing,
        Some(c) => return Detail::Error(format!("code {c}: {}", message_of(&v.to_string()))),
        None => return Detail::Unreadable("record-detail answer without a code".into()),
    }
    let d = &v["data"];
    let state = d.get("state").and_then(Value::as_str).unwrap_or("");
    Detail::Status(match state {
        "wait" | "queueing" => UpstreamStatus::Pending,
        "generating" => UpstreamStatus::Running { progress: 0.0 },
        "success" => {
            let url = d
                .pointer("/videoInfo/videoUrl")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty());
            let expired = d.get("expireFlag").and_then(Value::as_i64) == Some(1);
            match url {
                // The source is gone (§10.3): nothing left to archive.
                Some(_) if expired => UpstreamStatus::Failed {
                    code: Some("UPSTREAM_LOST".into()),
                    message: "The upstream's outputs expired before they were archived.".into(),
                },
                Some(u) => UpstreamStatus::Succeeded {
                    outputs: vec![u.to_string()],
                },
                None => UpstreamStatus::Running { progress: 0.99 },
            }
        }
        "fail" => {
            let msg = d
                .get("failMsg")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or("Generation failed, please try again later");
            let fail_code = d.get("failCode").and_then(|c| {
                c.as_i64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            });
            let code = failure_code(msg).or(match fail_code {
                Some(500) => Some("INTERNAL".into()),
                Some(400) => Some("UPSTREAM_REJECTED".into()),
                _ => None,
            });
            UpstreamStatus::Failed {
                code,
                message: msg.to_string(),
            }
        }
        other => return Detail::Unreadable(format!("unknown state {other:?}")),
    })
}

#[async_trait]
impl Upstream for QuickstartAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    /// Text and image to video; not Aleph, extend or anything else (see the module docs).
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
        let body = translate(spec, ctx.model, ctx.callback_url).map_err(|reason| {
            SubmitError::NotAccepted {
                reason,
                retry_after: None,
            }
        })?;
        let resp = self
            .req(reqwest::Method::POST, "/api/v1/runway/generate")
            .header("X-Reelay-Reference", ctx.reference)
            .json(&body)
            .send()
            .await
            .map_err(|e| classify_send_error(&e))?;
        let status = resp.status();
        let after = retry_after(&resp);
        let text = resp.text().await.map_err(|e| e.to_string());
        read_created(status, text, after)
    }

    async fn status(&self, upstream_id: &str) -> Result<UpstreamStatus, UpstreamError> {
        let resp = self
            .req(reqwest::Method::GET, "/api/v1/runway/record-detail")
            .query(&[("taskId", upstream_id)])
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        let detail = match serde_json::from_str::<Value>(&text) {
            Ok(v) if status.is_success() => read_detail(&v),
            _ if status == reqwest::StatusCode::NOT_FOUND => Detail::Missing,
            Ok(_) | Err(_) if !status.is_success() => {
                return Err(UpstreamError::Transient(format!(
                    "record-detail answered {status}: {}",
                    snippet(&text)
                )))
            }
            _ => Detail::Unreadable("record-detail answered no JSON".into()),
        };
        match detail {
            Detail::Status(s) => Ok(s),
            // §10.3: keep it submitting; the channel deadline fails it if it never shows.
            Detail::Missing => Ok(UpstreamStatus::Pending),
            Detail::Error(msg) => Err(UpstreamError::Transient(format!("record-detail: {msg}"))),
            Detail::Unreadable(why) => {
                tracing::warn!(channel = %self.name, task = %upstream_id, %why, "unreadable record-detail answer");
                Err(UpstreamError::Protocol(why))
            }
        }
    }

    /// The format has no cancel request.
    async fn cancel(&self, _upstream_id: &str) -> Result<(), UpstreamError> {
        Err(UpstreamError::Unsupported)
    }

    /// The record of a task that cannot exist: code 404 shows the key was taken; 401 (or any
    /// other error) that the channel cannot work.
    async fn probe(&self) -> Result<(), UpstreamError> {
        let resp = self
            .req(reqwest::Method::GET, "/api/v1/runway/record-detail")
            .query(&[("taskId", PROBE_ID)])
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        let status = resp.status();
        let v: Option<Value> = resp.json().await.ok();
        match v.as_ref().map(read_detail) {
            Some(Detail::Missing | Detail::Status(_)) => Ok(()),
            _ => Err(UpstreamError::Transient(format!(
                "record-detail probe answered {status}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn spec(endpoint: &str, input: Value) -> TaskSpec {
        TaskSpec {
            operation: reelay_core::Operation::TextToVideo,
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
    fn text_to_video_body() {
        let s = spec(
            "text_to_video",
            json!({"model": "gen4.5", "promptText": "a cat", "ratio": "1280:720", "duration": 5, "seed": 3}),
        );
        assert_eq!(
            translate(&s, None, Some("https://hook/1")).unwrap(),
            json!({"prompt": "a cat", "duration": 5, "quality": "720p", "aspectRatio": "16:9",
                   "model": "runway-duration-5-generate", "waterMark": "",
                   "callBackUrl": "https://hook/1"})
        );
    }

    #[test]
    fn quality_duration_and_model() {
        assert_eq!(quality(Some("1920:1080"), 5), "1080p");
        assert_eq!(quality(Some("1080:1920"), 10), "720p");
        assert_eq!(quality(Some("1280:720"), 5), "720p");
        assert_eq!(quality(None, 5), "720p");
        // A mapped model decides the length.
        let s = spec(
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": [{"uri": "https://x/f.jpg", "position": "first"}],
                   "ratio": "720:1280", "duration": 5}),
        );
        let body = translate(&s, Some("runway-duration-10-generate"), None).unwrap();
        assert_eq!(
            (
                &body["duration"],
                &body["model"],
                &body["imageUrl"],
                &body["aspectRatio"]
            ),
            (
                &json!(10),
                &json!("runway-duration-10-generate"),
                &json!("https://x/f.jpg"),
                &json!("9:16")
            )
        );
        // 21:9 has no quick-start word: the nearest one.
        let s = spec(
            "text_to_video",
            json!({"model": "gen4.5", "promptText": "x", "ratio": "1584:672"}),
        );
        assert_eq!(translate(&s, None, None).unwrap()["aspectRatio"], "16:9");
        assert!(translate(&spec("video_to_video", json!({})), None, None).is_err());
    }

    #[test]
    fn create_codes_in_an_http_200() {
        let ok = |body: &str| read_created(StatusCode::OK, Ok(body.into()), None);
        assert_eq!(
            ok(r#"{"code":200,"msg":"success","data":{"taskId":"t-1"}}"#),
            Ok("t-1".into())
        );
        let code = |c: i64| ok(&format!(r#"{{"code":{c},"msg":"m","data":null}}"#)).unwrap_err();
        assert!(matches!(code(402), SubmitError::OutOfCredit { .. }));
        assert!(matches!(code(401), SubmitError::NotAccepted { .. }));
        assert!(matches!(code(429), SubmitError::RateLimited { .. }));
        assert!(matches!(code(455), SubmitError::NotAccepted { .. }));
        assert!(matches!(code(422), SubmitError::Rejected { .. }));
        assert!(matches!(code(500), SubmitError::Unknown { .. }));
        assert!(matches!(
            ok(r#"{"code":200,"msg":"success","data":null}"#),
            Err(SubmitError::Unknown { .. })
        ));
        assert!(matches!(ok("<html>"), Err(SubmitError::Unknown { .. })));
        assert!(matches!(
            read_created(StatusCode::INTERNAL_SERVER_ERROR, Ok("{}".into()), None),
            Err(SubmitError::Unknown { .. })
        ));
        assert!(matches!(
            read_created(StatusCode::SERVICE_UNAVAILABLE, Ok("busy".into()), None),
            Err(SubmitError::NotAccepted { .. })
        ));
        assert_eq!(
            ok(r#"{"code":400,"msg":"Your prompt was caught by our AI moderator."}"#),
            Err(SubmitError::Rejected {
                code: "SAFETY.INPUT".into(),
                message: "Your prompt was caught by our AI moderator.".into()
            })
        );
    }

    #[test]
    fn states_follow_section_10_3() {
        let d = |data: Value| read_detail(&json!({"code": 200, "msg": "success", "data": data}));
        let st = Detail::Status;
        assert_eq!(d(json!({"state": "wait"})), st(UpstreamStatus::Pending));
        assert_eq!(d(json!({"state": "queueing"})), st(UpstreamStatus::Pending));
        assert_eq!(
            d(json!({"state": "generating"})),
            st(UpstreamStatus::Running { progress: 0.0 })
        );
        assert_eq!(
            d(
                json!({"state": "success", "videoInfo": {"videoUrl": "https://v/1.mp4"}, "expireFlag": 0})
            ),
            st(UpstreamStatus::Succeeded {
                outputs: vec!["https://v/1.mp4".into()]
            })
        );
        assert!(matches!(
            d(
                json!({"state": "success", "videoInfo": {"videoUrl": "https://v/1.mp4"}, "expireFlag": 1})
            ),
            Detail::Status(UpstreamStatus::Failed { .. })
        ));
        assert_eq!(
            d(json!({"state": "fail", "failCode": 500, "failMsg": "An internal error occurred."})),
            st(UpstreamStatus::Failed {
                code: Some("INTERNAL".into()),
                message: "An internal error occurred.".into()
            })
        );
        assert_eq!(
            d(
                json!({"state": "fail", "failCode": 400, "failMsg": "Inappropriate content detected. Please replace the image or video."})
            ),
            st(UpstreamStatus::Failed {
                code: Some("SAFETY.INPUT".into()),
                message: "Inappropriate content detected. Please replace the image or video."
                    .into()
            })
        );
        assert!(matches!(d(json!({"state": "odd"})), Detail::Unreadable(_)));
        assert_eq!(
            read_detail(&json!({"code": 404, "msg": "not found", "data": null})),
            Detail::Missing
        );
        assert!(matches!(
            read_detail(&json!({"code": 401, "msg": "no", "data": null})),
            Detail::Error(_)
        ));
    }
}
