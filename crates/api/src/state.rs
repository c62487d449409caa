use std::sync::Arc;

use reelay_core::Catalog;
use reelay_engine::EngineHandle;
use reelay_media::LocalMedia;
use reelay_store::Store;

/// Settings the HTTP layer needs, cut from the one configuration struct.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes (data URIs make bodies big: up to 16 MiB of video).
    pub max_body_bytes: usize,
    /// Runway `tier.maxMonthlyCreditSpend` reported by `/v1/organization`.
    pub max_monthly_credit_spend: i64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 24 * 1024 * 1024,
            max_monthly_credit_spend: 1_000_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub engine: EngineHandle,
    pub media: LocalMedia,
    pub config: Arc<ApiConfig>,
}
