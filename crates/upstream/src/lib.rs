//! Upstream adapters. Each turns a canonical [`TaskSpec`] into the provider's request and the
//! provider's answers into [`UpstreamStatus`], and — the part that protects money — classifies
//! every submit failure by whether the provider may have taken the task.

mod channel;
mod http;
mod quickstart;
mod reverse;
mod runway;

use std::time::Duration;

use async_trait::async_trait;
use reelay_core::TaskSpec;

pub use channel::{BreakerConfig, ChannelConfig, ChannelKind};
pub use quickstart::QuickstartAdapter;
pub use reverse::ReverseAdapter;
pub use runway::RunwayAdapter;

/// The adapter for a channel's kind.
pub fn build(cfg: &ChannelConfig) -> Result<std::sync::Arc<dyn Upstream>, UpstreamError> {
    Ok(match cfg.kind {
        ChannelKind::Runway | ChannelKind::Sandbox => std::sync::Arc::new(RunwayAdapter::new(cfg)?),
        ChannelKind::Reverse => std::sync::Arc::new(ReverseAdapter::new(cfg)?),
        ChannelKind::Quickstart => std::sync::Arc::new(QuickstartAdapter::new(cfg)?),
    })
}

/// What a submit carries besides the task's spec.
#[derive(Debug, Clone, Copy)]
pub struct SubmitContext<'a> {
    /// reelay's task id, sent along so an upstream that can look tasks up by it lets the
    /// engine reconcile an unknown outcome.
    pub reference: &'a str,
    /// An unguessable URL of reelay's for this task, for formats that take a callback URL
    /// (`callback_url`, `callBackUrl`). A callback there is only a hint to poll now.
    pub callback_url: Option<&'a str>,
    /// The upstream's name for the model, when the channel's configuration maps the client's
    /// model to one; `None` = the adapter's own translation of `spec.input["model"]`.
    pub model: Option<&'a str>,
}

/// How a submit ended when it did not return an upstream id.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitError {
    /// The upstream certainly did not take the task (connect refused, 503, a 4xx other than
    /// 400 and 429): safe to retry, on this channel or another. A `retry_after` (a 503's)
    /// pauses the channel too, but the failure still counts against its breaker.
    NotAccepted {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The upstream refused the task for good (validation, moderation): fail it.
    Rejected { code: String, message: String },
    /// The upstream may have taken the task (timeout after sending, reset mid-response, 500,
    /// 502, 504, an unreadable 200): a blind resubmit could start a second paid job.
    Unknown { reason: String },
    /// The upstream limits this key's rate (a 429): it did not take the task, it is not sick
    /// either. Pauses the channel for `retry_after`, without counting against its breaker.
    RateLimited {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The upstream's account is out of credit (Runway's "not enough credits", a reseller's
    /// 402 / points error): it did not take the task, and will take none until topped up, so
    /// the channel is disabled until an operator re-enables it.
    OutOfCredit { message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamStatus {
    Pending,
    Throttled,
    Running {
        progress: f64,
    },
    Succeeded {
        outputs: Vec<String>,
    },
    Failed {
        code: Option<String>,
        message: String,
    },
    Cancelled,
    /// The upstream no longer knows the task.
    NotFound,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum UpstreamError {
    #[error("upstream unreachable or failing: {0}")]
    Transient(String),
    #[error("upstream answered something we cannot read: {0}")]
    Protocol(String),
    #[error("this upstream cannot do that")]
    Unsupported,
}

#[async_trait]
pub trait Upstream: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Whether this upstream's format has a request for the catalog endpoint (which models a
    /// channel serves is its configuration's business, not the adapter's).
    fn serves(&self, _endpoint: &str) -> bool {
        true
    }
    /// Whether submits carry a callback URL (polls then run on a slower schedule).
    fn takes_callbacks(&self) -> bool {
        false
    }
    async fn submit(&self, spec: &TaskSpec, ctx: &SubmitContext<'_>)
        -> Result<String, SubmitError>;
    async fn status(&self, upstream_id: &str) -> Result<UpstreamStatus, UpstreamError>;
    async fn cancel(&self, upstream_id: &str) -> Result<(), UpstreamError>;
    /// Puts a file the task names into the upstream's own store and answers the URI to send
    /// instead; `Ok(None)` when this upstream takes files inline (a data URI). Errors are
    /// [`SubmitError::NotAccepted`]: nothing was submitted yet, so any of them may be retried.
    async fn upload(
        &self,
        _filename: &str,
        _content_type: &str,
        _bytes: Vec<u8>,
    ) -> Result<Option<String>, SubmitError> {
        Ok(None)
    }
    /// A cheap authenticated call that shows whether the upstream answers (the channel's
    /// health probe); `Unsupported` where the format has none.
    async fn probe(&self) -> Result<(), UpstreamError> {
        Err(UpstreamError::Unsupported)
    }
    /// Finds the upstream task submitted with `reference`, if the upstream can tell.
    async fn lookup(&self, _reference: &str) -> Result<Option<String>, UpstreamError> {
        Err(UpstreamError::Unsupported)
    }
}
