use axum::http::HeaderMap;
use reelay_store::{hash_api_key, Account, StoreError};

use crate::AppState;

/// Who is calling: the account and the key used.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub async fn authenticate(state: &AppState, key: Option<&str>) -> Result<Principal, AuthError> {
    let key = key.ok_or(AuthError::Missing)?;
    // Bound the work an oversized header can cause before hashing.
    if key.len() > 512 {
        return Err(AuthError::Invalid);
    }
    match state.store.find_api_key(&hash_api_key(key)).await? {
        Some((k, account)) => Ok(Principal {
            account,
            key_id: k.id,
        }),
        None => Err(AuthError::Invalid),
    }
}
