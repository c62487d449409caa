use async_trait::async_trait;
use reelay_core::TaskSpec;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::http::{classify_send_error, client, is_out_of_credit, retry_after};
use crate::{
    ChannelConfig, ChannelKind, SubmitContext, SubmitError, Upstream, UpstreamError, UpstreamStatus,
};

/// Adapter for Runway's official developer API.
pub struct RunwayAdapter {
    name: String,
    base: String,
    key: Option<String>,
    version: String,
    lookup_supported: bool,
    /// Files go through Runway's own uploads (a real Runway channel) rather than inline.
    uploads: bool,
    http: reqwest::Client,
}

// The key must never reach a log line, so Debug prints everything else.
impl std::fmt::Debug for RunwayAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunwayAdapter")
            .field("name", &self.name)
            .field("base", &self.base)
            .finish()
    }
}

impl RunwayAdapter {
    pub fn new(cfg: &ChannelConfig) -> Result<RunwayAdapter, UpstreamError> {
        let http = client(cfg)?;
        Ok(RunwayAdapter {
            name: cfg.name.clone(),
            base: cfg.base_url.trim_end_matches('/').to_string(),
            key: cfg.resolved_api_key(),
            version: cfg.runway_version.clone(),
            lookup_supported: cfg.kind == ChannelKind::Sandbox,
            uploads: cfg.kind == ChannelKind::Runway,
            http,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("X-Runway-Version", &self.version);
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        r
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadSlot {
    upload_url: String,
    fields: std::collections::BTreeMap<String, String>,
    runway_uri: String,
}

#[derive(Deserialize)]
struct CreateResponse {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskResponse {
    status: String,
    #[serde(default)]
    progress: Option<f64>,
    #[serde(default)]
    output: Option<Vec<String>>,
    #[serde(default)]
    failure: Option<String>,
    #[serde(default)]
    failure_code: Option<String>,
}

fn error_text(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[async_trait]
impl Upstream for RunwayAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    /// Runway's three steps (§3.9): a slot, the S3-style form POST of the file (every slot
    /// field first, the file last), and the `runway://` URI to name it by.
    async fn upload(
        &self,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<String>, SubmitError> {
        if !self.uploads {
            return Ok(None);
        }
        let not_accepted = |reason: String| SubmitError::NotAccepted {
            reason,
            retry_after: None,
        };
        let resp = self
            .req(reqwest::Method::POST, "/v1/uploads")
            .json(&serde_json::json!({"filename": filename, "type": "ephemeral"}))
            .send()
            .await
            .map_err(|e| not_accepted(format!("upload slot: {e}")))?;
        if !resp.status().is_success() {
            return Err(SubmitError::NotAccepted {
                reason: format!("upload slot: upstream answered {}", resp.status()),
                retry_after: retry_after(&resp),
            });
        }
        let slot: UploadSlot = resp
            .json()
            .await
            .map_err(|e| not_accepted(format!("unreadable upload slot: {e}")))?;
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in slot.fields {
            form = form.text(k, v);
        }
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_string())
            .mime_str(content_type)
            .map_err(|e| not_accepted(format!("upload content type: {e}")))?;
        // The slot's URL is the upstream's storage, not its API: no key goes there.
        let resp = self
            .http
            .post(&slot.upload_url)
            .multipart(form.part("file", part))
            .send()
            .await
            .map_err(|e| not_accepted(format!("upload: {e}")))?;
        if !resp.status().is_success() {
            return Err(not_accepted(format!(
                "upload: storage answered {}",
                resp.status()
            )));
        }
        Ok(Some(slot.runway_uri))
    }

    async fn submit(
        &self,
        spec: &TaskSpec,
        ctx: &SubmitContext<'_>,
    ) -> Result<String, SubmitError> {
        let mapped;
        let body = match ctx.model {
            Some(m) => {
                let mut b = spec.input.clone();
                b["model"] = serde_json::Value::String(m.to_string());
                mapped = b;
                &mapped
            }
            None => &spec.input,
        };
        let resp = self
            .req(reqwest::Method::POST, &format!("/v1/{}", spec.endpoint))
            .header("X-Reelay-Reference", ctx.reference)
            .json(body)
            .send()
            .await
            .map_err(|e| classify_send_error(&e))?;
        let status = resp.status();
        let after = retry_after(&resp);
        let body = resp.text().await.map_err(|e| SubmitError::Unknown {
            reason: format!("reading body: {e}"),
        });
        match status {
            s if s.is_success() => {
                let body = body?;
                serde_json::from_str::<CreateResponse>(&body)
                    .map(|c| c.id)
                    .map_err(|e| SubmitError::Unknown {
                        reason: format!("unreadable create response: {e}"),
                    })
            }
            StatusCode::BAD_REQUEST => {
                let text = body.map(|b| error_text(&b)).unwrap_or_default();
                // Runway answers a 400 for an empty balance too (§ errors): the task is fine,
                // the channel's account is not.
                if is_out_of_credit(&text) {
                    return Err(SubmitError::OutOfCredit { message: text });
                }
                let code = if text.to_ascii_lowercase().contains("moderation") {
                    "SAFETY.INPUT"
                } else {
                    "UPSTREAM_REJECTED"
                };
                Err(SubmitError::Rejected {
                    code: code.into(),
                    message: text,
                })
            }
            StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT => Err(SubmitError::Unknown {
                reason: format!("upstream answered {status}"),
            }),
            StatusCode::TOO_MANY_REQUESTS => Err(SubmitError::RateLimited {
                reason: format!(
                    "upstream answered {status}: {}",
                    body.map(|b| error_text(&b)).unwrap_or_default()
                ),
                retry_after: after,
            }),
            s => Err(SubmitError::NotAccepted {
                reason: format!(
                    "upstream answered {s}: {}",
                    body.map(|b| error_text(&b)).unwrap_or_default()
                ),
                retry_after: after,
            }),
        }
    }

    async fn status(&self, upstream_id: &str) -> Result<UpstreamStatus, UpstreamError> {
        let resp = self
            .req(reqwest::Method::GET, &format!("/v1/tasks/{upstream_id}"))
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(UpstreamStatus::NotFound),
            s if !s.is_success() => {
                return Err(UpstreamError::Transient(format!(
                    "status poll answered {s}"
                )))
            }
            _ => {}
        }
        let t: TaskResponse = resp
            .json()
            .await
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        Ok(match t.status.as_str() {
            "PENDING" => UpstreamStatus::Pending,
            "THROTTLED" => UpstreamStatus::Throttled,
            "RUNNING" => UpstreamStatus::Running {
                progress: t.progress.unwrap_or(0.0).clamp(0.0, 1.0),
            },
            "SUCCEEDED" => UpstreamStatus::Succeeded {
                outputs: t.output.unwrap_or_default(),
            },
            "FAILED" => UpstreamStatus::Failed {
                code: t.failure_code,
                message: t
                    .failure
                    .unwrap_or_else(|| "The task failed upstream.".into()),
            },
            "CANCELLED" => UpstreamStatus::Cancelled,
            // Unknown statuses are read as "still pending": the deadline ends them if they stay.
            _ => UpstreamStatus::Pending,
        })
    }

    async fn cancel(&self, upstream_id: &str) -> Result<(), UpstreamError> {
        let resp = self
            .req(reqwest::Method::DELETE, &format!("/v1/tasks/{upstream_id}"))
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(UpstreamError::Transient(format!("cancel answered {s}"))),
        }
    }

    /// `GET /v1/organization`: authenticated, free, and what every Runway client can call.
    async fn probe(&self) -> Result<(), UpstreamError> {
        let resp = self
            .req(reqwest::Method::GET, "/v1/organization")
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(UpstreamError::Transient(format!(
                "organization answered {s}"
            ))),
        }
    }

    async fn lookup(&self, reference: &str) -> Result<Option<String>, UpstreamError> {
        if !self.lookup_supported {
            return Err(UpstreamError::Unsupported);
        }
        let resp = self
            .req(reqwest::Method::GET, "/_sim/lookup")
            .query(&[("reference", reference)])
            .send()
            .await
            .map_err(|e| UpstreamError::Transient(e.to_string()))?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let c: CreateResponse = resp
                    .json()
                    .await
                    .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                Ok(Some(c.id))
            }
            s => Err(UpstreamError::Transient(format!("lookup answered {s}"))),
        }
    }
}
