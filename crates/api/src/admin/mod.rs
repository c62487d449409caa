//! The admin HTTP API under `/admin/v1/`, guarded by the admin token.

use axum::http::HeaderMap;
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;

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
        let (Some(expected), Some(given)) = (&self.token_hash, crate::auth::bearer(headers)) else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(given.ct_eq(expected))
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
