use std::sync::Arc;

use reelay_core::Catalog;
use reelay_engine::EngineHandle;
use reelay_media::MediaStore;
use reelay_store::Store;

use crate::admin::AdminAuth;
use crate::auth::Keys;

/// Settings the HTTP layer needs, cut from the one configuration struct (which holds their
/// defaults; there are none here).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes (data URIs make bodies big: up to 16 MiB of video).
    pub max_body_bytes: usize,
    /// Runway `tier.maxMonthlyCreditSpend` reported by `/v1/organization`.
    pub max_monthly_credit_spend: i64,
    /// How long an `Idempotency-Key` is remembered, in milliseconds.
    pub idempotency_ttl_ms: i64,
    /// Live tasks an account may have at once unless the account sets its own cap.
    pub max_active_tasks: Option<i64>,
    /// Status the Runway dialect answers when credits are short. Runway itself says 400; reelay
    /// says 402 by default so that clients can tell "top up" from "fix your request".
    pub runway_insufficient_credits_status: u16,
    /// Refund a client's cancel even after the upstream took the job (default: capture, as
    /// Runway does).
    pub refund_cancel_after_submit: bool,
    /// How long a rotated-out webhook secret keeps signing, in milliseconds.
    pub webhook_secret_grace_ms: i64,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub engine: EngineHandle,
    /// Archived media (local folder or S3 bucket).
    pub media: MediaStore,
    /// Signs and checks the media links every dialect hands out.
    pub links: crate::media::MediaLinks,
    pub media_serving: crate::media::MediaServing,
    pub config: Arc<ApiConfig>,
    /// API key lookups (cached), rate limits and last-used bookkeeping.
    pub keys: Arc<Keys>,
    pub admin: Arc<AdminAuth>,
    /// Checks callback URLs on their face at submit time (the SSRF guard).
    pub outbound: reelay_outbound::Guard,
    /// Wakes the webhook deliverers (after a redelivery).
    pub outbox_wake: Arc<tokio::sync::Notify>,
    pub reverse: Arc<crate::dialects::reverse::ReverseConfig>,
    pub quickstart: Arc<crate::dialects::quickstart::QuickstartConfig>,
    pub openai: Arc<crate::dialects::openai::OpenaiConfig>,
    /// Fetches media clients name (quick-start references) through the SSRF guard.
    pub fetch: reelay_outbound::GuardedClient,
    /// The database figures of `/metrics`, cached.
    pub metrics: Arc<crate::metrics::DbFigures>,
    /// The console's sessions.
    pub console: Arc<crate::console::Sessions>,
}
