//! The accept path every dialect's create endpoints share: price for the account, honour an
//! `Idempotency-Key`, and insert the task with its credit hold in one transaction.

use axum::http::HeaderMap;
use reelay_core::{Dialect, TaskSpec};
use reelay_store::{AcceptOutcome, Acceptance, IdempotencyRecord, NewTask};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{AppState, Principal};

/// Longest `Idempotency-Key` accepted (Stripe's limit).
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters")]
    BadIdempotencyKey,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    #[error("insufficient credits: {available} available, {price} needed")]
    InsufficientCredits { available: i64, price: i64 },
    #[error("too many active tasks (limit {limit})")]
    TooManyActive { limit: i64 },
    #[error(transparent)]
    Store(#[from] reelay_store::StoreError),
}

/// What a create answers: fresh or replayed, the status and JSON body to send.
#[derive(Debug)]
pub struct Accepted {
    pub task_id: String,
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

/// The `Idempotency-Key` header, validated; `None` when absent.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AcceptError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| AcceptError::BadIdempotencyKey)?;
    if s.is_empty() || s.len() > MAX_IDEMPOTENCY_KEY || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AcceptError::BadIdempotencyKey);
    }
    Ok(Some(s.to_string()))
}

/// What makes two requests "the same": dialect, route and the body as parsed JSON (so key
/// order and whitespace do not matter; `serde_json::Value` maps are sorted).
pub fn request_hash(dialect: Dialect, route: &str, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(dialect.as_str().as_bytes());
    h.update([0]);
    h.update(route.as_bytes());
    h.update([0]);
    h.update(body.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// The request a dialect hands to [`accept`].
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub dialect: Dialect,
    /// The route as the client called it (part of the idempotency identity).
    pub route: &'a str,
    /// What identifies the request for its `Idempotency-Key`: the client's body as it sent it
    /// (less any credential), not the translation.
    pub body: &'a Value,
    /// The request's headers (for the `Idempotency-Key`).
    pub headers: &'a HeaderMap,
    pub spec: TaskSpec,
}

/// The largest client request kept with its task for the operator's view (as JSON text).
const KEPT_REQUEST_BYTES: usize = 16 * 1024;

/// The client's request, if it is small enough to keep beside the task's own body. Measured
/// by writing it into a counter that gives up past the limit, so a body carrying a 16 MiB data
/// URI costs a few kilobytes of work here, not a second copy.
fn kept_request(body: &Value) -> Option<Value> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            if self.0 > KEPT_REQUEST_BYTES {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Count(0), body)
        .is_ok()
        .then(|| body.clone())
}

/// Prices the task for the account (catalog price × the account's multiplier, rounded up),
/// then accepts it. `render(task_id, price)` builds the success answer before the insert, so
/// the answer a retry replays is stored in the same transaction as the task.
pub async fn accept(
    state: &AppState,
    req: Request<'_>,
    render: impl FnOnce(&str, i64) -> (u16, Value),
) -> Result<Accepted, crate::error::ApiError> {
    let Request {
        principal,
        dialect,
        route,
        body,
        headers,
        mut spec,
    } = req;
    let idempotency_key = idempotency_key(headers)?;
    let account = &principal.account;
    // Whatever the dialect, a task may name only this account's uploads.
    crate::uploads::check_refs(state, &account.id, &spec.input).await?;
    spec.price = account_price(spec.price, account.price_multiplier);
    let task_id = reelay_core::new_task_id().to_string();
    let (status, answer) = render(&task_id, spec.price);
    let idempotency = idempotency_key.map(|key| IdempotencyRecord {
        key,
        request_hash: request_hash(dialect, route, body),
        response_status: status,
        response_body: answer.to_string(),
        ttl_ms: state.config.idempotency_ttl_ms,
    });
    let outcome = state
        .store
        .accept_task(
            NewTask {
                id: task_id,
                account_id: account.id.clone(),
                key_id: Some(principal.key_id.clone()),
                dialect,
                spec: TaskSpec {
                    received: kept_request(body),
                    ..spec
                },
            },
            Acceptance {
                idempotency,
                max_active_tasks: state.config.max_active_tasks,
            },
        )
        .await?;
    match outcome {
        AcceptOutcome::Created(task) => {
            state.engine.notify();
            Ok(Accepted {
                task_id: task.id,
                status,
                body: answer,
                replayed: false,
            })
        }
        AcceptOutcome::Replayed {
            task_id,
            status,
            body,
        } => Ok(Accepted {
            task_id,
            status,
            body: serde_json::from_str(&body).map_err(|e| {
                AcceptError::Store(reelay_store::StoreError::Corrupt(format!(
                    "stored idempotent answer: {e}"
                )))
            })?,
            replayed: true,
        }),
        AcceptOutcome::IdempotencyMismatch => Err(AcceptError::IdempotencyMismatch.into()),
        AcceptOutcome::InsufficientCredits { available, price } => {
            Err(AcceptError::InsufficientCredits { available, price }.into())
        }
        AcceptOutcome::TooManyActive { limit } => Err(AcceptError::TooManyActive { limit }.into()),
    }
}

/// The range of an account's price multiplier: a 100× discount or markup at most. Outside it
/// a multiplier is a typo (1e-9 for 1.0) that would give work away or price it out of reach.
pub const MIN_PRICE_MULTIPLIER: f64 = 0.01;
pub const MAX_PRICE_MULTIPLIER: f64 = 100.0;

/// A price for an account: multiplied and rounded up, so a discount never reaches zero by
/// rounding down a cheap task and a markup is never lost to truncation. A priced task costs at
/// least one credit whatever the multiplier (one stored before the range existed is clamped
/// into it), and never more than a balance can hold.
pub fn account_price(price: i64, multiplier: f64) -> i64 {
    if price <= 0 {
        return 0;
    }
    let price = price.min(reelay_store::MAX_BALANCE);
    if (multiplier - 1.0).abs() < f64::EPSILON {
        return price;
    }
    let multiplier = if multiplier.is_nan() {
        1.0
    } else {
        multiplier.clamp(MIN_PRICE_MULTIPLIER, MAX_PRICE_MULTIPLIER)
    };
    // Round away float noise first: 100 × 1.1 is 110.00000000000001, which must stay 110.
    let exact = ((price as f64) * multiplier * 1e6).round() / 1e6;
    // `as` saturates; the clamp keeps the result a price some balance can pay.
    (exact.ceil() as i64).clamp(1, reelay_store::MAX_BALANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_hash_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "b": {"d":3, "c":2}, "a": 1 }"#).unwrap();
        assert_eq!(
            request_hash(Dialect::Runway, "/x", &a),
            request_hash(Dialect::Runway, "/x", &b)
        );
        assert_ne!(
            request_hash(Dialect::Runway, "/x", &a),
            request_hash(Dialect::Runway, "/y", &a)
        );
        let c: Value = serde_json::from_str(r#"{"a":2,"b":{"c":2,"d":3}}"#).unwrap();
        assert_ne!(
            request_hash(Dialect::Runway, "/x", &a),
            request_hash(Dialect::Runway, "/x", &c)
        );
    }

    #[test]
    fn idempotency_keys_are_validated() {
        let mut h = HeaderMap::new();
        assert!(idempotency_key(&h).unwrap().is_none());
        h.insert("idempotency-key", "abc-123".parse().unwrap());
        assert_eq!(idempotency_key(&h).unwrap().as_deref(), Some("abc-123"));
        h.insert("idempotency-key", "x".repeat(256).parse().unwrap());
        assert!(idempotency_key(&h).is_err());
        h.insert("idempotency-key", "x".repeat(255).parse().unwrap());
        assert!(idempotency_key(&h).is_ok());
        h.insert("idempotency-key", "has space".parse().unwrap());
        assert!(idempotency_key(&h).is_err());
    }

    #[test]
    fn multiplier_rounds_up() {
        assert_eq!(account_price(25, 1.0), 25);
        assert_eq!(account_price(25, 0.5), 13);
        assert_eq!(account_price(1, 0.01), 1);
        assert_eq!(account_price(10, 1.15), 12);
        assert_eq!(account_price(0, 3.0), 0);
        assert_eq!(account_price(100, 1.1), 110);
        assert_eq!(account_price(3, 0.7), 3);
        // A priced task is never free, whatever multiplier the account has.
        assert_eq!(account_price(250, 1e-9), 3);
        assert_eq!(account_price(250, 5e-324), 3);
        assert_eq!(account_price(1, 0.0), 1);
        assert_eq!(account_price(1, f64::NAN), 1);
        assert_eq!(account_price(i64::MAX, 100.0), reelay_store::MAX_BALANCE);
        assert_eq!(account_price(-5, 2.0), 0);
    }
}

#[cfg(test)]
mod kept_tests {
    use super::*;

    #[test]
    fn small_requests_are_kept_large_ones_are_not() {
        let small = serde_json::json!({"promptText": "a lake"});
        assert_eq!(kept_request(&small), Some(small));
        let large = serde_json::json!({"promptImage": "x".repeat(KEPT_REQUEST_BYTES)});
        assert_eq!(kept_request(&large), None);
    }
}
