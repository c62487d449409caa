//! The admin HTTP API under `/admin/v1/`, guarded by the admin token. The rules about inputs
//! live in [`ops`], shared with the `reelay` admin subcommands; [`handlers`] only translate
//! HTTP to those calls and [`AdminError`] back to HTTP.

pub mod channels;
mod error;
pub(crate) mod handlers;
pub(crate) mod openapi;
pub mod ops;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::routing::{any, delete, get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;

pub use error::AdminError;

/// The admin token, kept only as its SHA-256 hash.
#[derive(Debug, Clone, Default)]
pub struct AdminAuth {
    token_hash: Option<[u8; 32]>,
}

impl AdminAuth {
    pub fn from_token(token: &str) -> AdminAuth {
        AdminAuth {
            token_hash: Some(Sha256::digest(token.as_bytes()).into()),
        }
    }

    pub fn from_hash(hash: [u8; 32]) -> AdminAuth {
        AdminAuth {
            token_hash: Some(hash),
        }
    }

    /// No token configured: every admin call is refused.
    pub fn disabled() -> AdminAuth {
        AdminAuth::default()
    }

    /// Does the request carry the admin token (`Authorization: Bearer <token>`)? The digests
    /// are compared in constant time, so the answer's timing says nothing about the token.
    pub fn verify(&self, headers: &HeaderMap) -> bool {
        crate::auth::bearer(headers).is_some_and(|given| self.verify_token(given))
    }

    /// Is `given` the admin token (the console's sign-in form)?
    pub fn verify_token(&self, given: &str) -> bool {
        let Some(expected) = &self.token_hash else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(given.ct_eq(expected))
    }

    /// The key of the console's sessions: derived from the token's hash, so a new admin token
    /// ends every session.
    pub fn session_key(&self) -> Option<[u8; 32]> {
        let hash = self.token_hash?;
        let mut h = Sha256::new();
        h.update(b"reelay console sessions\n");
        h.update(hash);
        Some(h.finalize().into())
    }
}

/// Proof that the request carries the admin token. Every admin handler takes one as its first
/// argument, so a request without the token is refused before anything else is read.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, AdminError> {
        if state.admin.verify(&parts.headers) {
            Ok(Admin)
        } else {
            Err(AdminError::Unauthorized)
        }
    }
}

pub fn routes() -> Router<AppState> {
    use handlers as h;
    Router::new()
        .route("/accounts", post(h::create_account).get(h::list_accounts))
        .route(
            "/accounts/{id}",
            get(h::get_account).patch(h::update_account),
        )
        .route("/accounts/{id}/topup", post(h::topup))
        .route("/accounts/{id}/adjust", post(h::adjust))
        .route("/accounts/{id}/ledger", get(h::ledger))
        .route("/accounts/{id}/keys", post(h::create_key).get(h::list_keys))
        .route("/accounts/{id}/webhook-secret", get(h::webhook_secret))
        .route(
            "/accounts/{id}/webhook-hmac-key",
            axum::routing::put(h::set_webhook_hmac_key),
        )
        .route(
            "/accounts/{id}/webhook-url",
            axum::routing::put(h::set_webhook_url),
        )
        .route(
            "/accounts/{id}/webhook-secret/rotate",
            post(h::rotate_webhook_secret),
        )
        .route("/channels", get(h::list_channels).post(h::add_channel))
        .route(
            "/channels/{name}",
            get(h::get_channel)
                .patch(h::set_channel)
                .delete(h::remove_channel),
        )
        .route("/channels/{name}/enable", post(h::enable_channel))
        .route("/channels/{name}/disable", post(h::disable_channel))
        .route("/keys/{key_id}", delete(h::revoke_key))
        .route("/ledger/verify", get(h::verify_ledger))
        .route("/tasks/{id}", get(h::task))
        .route("/tasks/{id}/webhooks", get(h::task_webhooks))
        .route(
            "/tasks/{id}/webhooks/redeliver",
            post(h::redeliver_webhooks),
        )
        .route("/", any(h::not_found))
        // Both set here so that the outer router's Runway-shaped answers do not apply.
        .fallback(h::not_found)
        .method_not_allowed_fallback(h::method_not_allowed)
}
