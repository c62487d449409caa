//! What every adapter shares: the channel's HTTP client, the reading of a `Retry-After`, the
//! sorting of a transport error by whether the request can have reached the upstream, and the
//! words upstreams use for an empty balance and for moderation.

use std::time::Duration;

use crate::{ChannelConfig, SubmitError, UpstreamError};

/// The HTTP client of a channel (its timeouts, no key: that goes on each request).
pub(crate) fn client(cfg: &ChannelConfig) -> Result<reqwest::Client, UpstreamError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("reelay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| UpstreamError::Protocol(e.to_string()))
}

pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

/// Sorts a transport error by whether the request can have reached the upstream's handler.
pub(crate) fn classify_send_error(e: &reqwest::Error) -> SubmitError {
    if e.is_connect() || e.is_builder() {
        SubmitError::NotAccepted {
            reason: format!("connect: {e}"),
            retry_after: None,
        }
    } else {
        SubmitError::Unknown {
            reason: format!("{e}"),
        }
    }
}

pub(crate) fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

/// How resellers word an empty balance (English and Chinese).
const OUT_OF_CREDIT: [&str; 11] = [
    "enough credits",
    "insufficient credits",
    "insufficient points",
    "insufficient balance",
    "insufficient quota",
    "insufficient_user_quota",
    "not enough points",
    "not enough balance",
    "余额不足",
    "额度不足",
    "积分不足",
];

pub(crate) fn is_out_of_credit(text: &str) -> bool {
    let t = text.to_lowercase();
    OUT_OF_CREDIT.iter().any(|w| t.contains(w))
}

const MODERATION: [&str; 8] = [
    "moderat",
    "inappropriate",
    "nsfw",
    "flagged",
    "sensitive",
    "content policy",
    "违规",
    "敏感",
];

/// `SAFETY.INPUT` when the words say content moderation refused the request's own content.
pub(crate) fn moderation_code(text: &str) -> Option<&'static str> {
    let t = text.to_lowercase();
    MODERATION
        .iter()
        .any(|w| t.contains(w))
        .then_some("SAFETY.INPUT")
}

/// A failure code for an upstream's failure message: a Runway code it starts with
/// (`INTERNAL: ...`, `SAFETY.INPUT.TEXT ...`), else `SAFETY.INPUT` / `SAFETY.OUTPUT` for
/// moderation (input when the words point at the prompt or the inputs), else none.
pub(crate) fn failure_code(msg: &str) -> Option<String> {
    let head: String = msg
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '.' || *c == '_')
        .collect();
    let rest = &msg[head.len()..];
    if head.len() >= 4
        && head.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && !head.ends_with('.')
        && (rest.is_empty() || rest.starts_with([':', ' ']))
        && (head.contains(['.', '_']) || head == "INTERNAL")
    {
        return Some(head);
    }
    moderation_code(msg)?;
    let t = msg.to_lowercase();
    let input = ["prompt", "input", "replace"].iter().any(|w| t.contains(w));
    Some(
        if input {
            "SAFETY.INPUT"
        } else {
            "SAFETY.OUTPUT"
        }
        .into(),
    )
}
