//! The webhook deliverer: claims due outbox messages with a lease, POSTs each signed payload
//! through the SSRF guard, records every attempt and schedules the next one.
//!
//! Concurrency is bounded twice: a global semaphore for requests in flight, and a small
//! per-destination limit (host and port). A message whose destination is busy is given back
//! with a short delay instead of waiting while it holds a global slot, so one slow receiver
//! can never stall deliveries to the others. Order per task comes from the store: a task's
//! later message is not due while an earlier one is pending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::StreamExt;
use rand::Rng;
use reelay_core::setting::{ensure, SettingError};
use reelay_outbound::{refusal_of, GuardedClient, Refusal};
use reelay_store::{now_ms, Store, WebhookAttempt, WebhookMessage, WebhookNext};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::signing::{kie_signature, signature_header};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Deliveries in flight at once (this instance).
    pub workers: usize,
    /// Deliveries in flight to one destination (host:port).
    pub per_destination: usize,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Delays before the 2nd, 3rd, ... attempt, in seconds; after the last, the message fails.
    /// The default is Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts, ~27.6 h).
    pub schedule_seconds: Vec<f64>,
    /// Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter].
    pub jitter: f64,
    /// How long a claimed message is ours; a crashed deliverer's messages come due after it.
    pub lease_seconds: u64,
    /// Bytes of the receiver's response kept with the attempt.
    pub response_excerpt_bytes: usize,
    /// Longest sleep with nothing due (other instances may add work).
    pub idle_wakeup_ms: u64,
    /// How long a rotated-out secret keeps signing, in seconds.
    pub secret_grace_seconds: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            workers: 32,
            per_destination: 4,
            timeout_ms: 15_000,
            connect_timeout_ms: 5_000,
            schedule_seconds: vec![5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
            jitter: 0.2,
            lease_seconds: 60,
            response_excerpt_bytes: 1024,
            idle_wakeup_ms: 5_000,
            secret_grace_seconds: 24 * 3600,
        }
    }
}

impl WebhookConfig {
    /// Checks the settings; keys are named within `[webhooks]`.
    pub fn validate(&self) -> Result<(), SettingError> {
        ensure(self.workers == 0, "workers", "must be at least 1")?;
        ensure(
            self.per_destination == 0,
            "per_destination",
            "must be at least 1",
        )?;
        ensure(
            !(0.0..1.0).contains(&self.jitter),
            "jitter",
            "must be at least 0 and less than 1",
        )?;
        ensure(
            self.schedule_seconds.iter().any(|s| s.is_nan() || *s < 0.0),
            "schedule_seconds",
            "must be non-negative numbers",
        )?;
        ensure(
            self.schedule_seconds.len() > 100,
            "schedule_seconds",
            "at most 100 retries",
        )?;
        ensure(
            self.lease_seconds * 1000 < 2 * (self.timeout_ms + self.connect_timeout_ms),
            "lease_seconds",
            "must cover twice timeout_ms + connect_timeout_ms",
        )?;
        Ok(())
    }
}

struct Inner {
    store: Arc<dyn Store>,
    client: GuardedClient,
    config: WebhookConfig,
    owner: String,
    slots: Arc<Semaphore>,
    destinations: DashMap<String, Arc<Semaphore>>,
    wake: Arc<Notify>,
}

/// Runs the delivery loop until `shutdown` turns true.
pub struct Deliverer(Arc<Inner>);

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        client: GuardedClient,
        config: WebhookConfig,
        wake: Arc<Notify>,
    ) -> Deliverer {
        Deliverer(Arc::new(Inner {
            slots: Arc::new(Semaphore::new(config.workers)),
            store,
            client,
            owner: format!("webhooks-{}", uuid::Uuid::new_v4().simple()),
            config,
            destinations: DashMap::new(),
            wake,
        }))
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let inner = self.0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let claimed = match claim(&inner).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook claim failed");
                    0
                }
            };
            if claimed > 0 {
                continue;
            }
            let idle = Duration::from_millis(inner.config.idle_wakeup_ms);
            let sleep = match inner.store.next_webhook_due().await {
                Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(0) as u64).min(idle),
                Ok(None) => idle,
                Err(_) => idle,
            };
            // With every slot busy, what is due waits for a slot, not for the clock.
            let sleep = if inner.slots.available_permits() == 0 {
                idle
            } else {
                sleep.max(Duration::from_millis(5))
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = inner.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Claims as many due messages as there are free slots and starts their deliveries.
async fn claim(inner: &Arc<Inner>) -> Result<usize, reelay_store::StoreError> {
    let free = inner.slots.available_permits();
    if free == 0 {
        return Ok(0);
    }
    let now = now_ms();
    let lease_until = now + inner.config.lease_seconds as i64 * 1000;
    let messages = inner
        .store
        .claim_webhooks(&inner.owner, now, lease_until, free as i64)
        .await?;
    let n = messages.len();
    for msg in messages {
        let Ok(slot) = inner.slots.clone().try_acquire_owned() else {
            // Cannot happen (we claimed at most `free`), but never deliver without a slot.
            let _ = inner
                .store
                .postpone_webhook(&msg.id, &inner.owner, now)
                .await;
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            deliver(&inner, msg, slot).await;
            inner.wake.notify_one();
        });
    }
    Ok(n)
}

fn destination(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_string())
}

async fn deliver(inner: &Inner, msg: WebhookMessage, _slot: OwnedSemaphorePermit) {
    let dest = destination(&msg.url);
    let per_dest = inner
        .destinations
        .entry(dest)
        .or_insert_with(|| Arc::new(Semaphore::new(inner.config.per_destination)))
        .clone();
    let Ok(_dest_slot) = per_dest.try_acquire_owned() else {
        let later = now_ms() + rand::thread_rng().gen_range(100..400);
        if let Err(e) = inner
            .store
            .postpone_webhook(&msg.id, &inner.owner, later)
            .await
        {
            tracing::warn!(error = %e, id = %msg.id, "could not postpone a webhook");
        }
        return;
    };
    let (attempt, outcome) = attempt(inner, &msg).await;
    let n = msg.attempts + 1;
    let next = next_step(&inner.config, &msg, n, outcome);
    let result = match (&next, attempt.status) {
        (WebhookNext::Delivered, _) => "delivered",
        (WebhookNext::Failed, _) => "given_up",
        (_, Some(_)) => "refused",
        (_, None) => "unreachable",
    };
    metrics::counter!("reelay_webhook_attempts_total", "outcome" => result).increment(1);
    tracing::debug!(id = %msg.id, n, status = ?attempt.status, error = ?attempt.error, next = ?next, "webhook attempt");
    if let WebhookNext::Failed = next {
        tracing::warn!(id = %msg.id, task = %msg.task_id, url = %msg.url, error = ?attempt.error,
            status = ?attempt.status, "webhook given up after {n} attempts");
    }
    match inner
        .store
        .finish_webhook_attempt(&inner.owner, attempt, next)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(id = %msg.id, "webhook lease lost before the attempt was recorded")
        }
        Err(e) => tracing::warn!(error = %e, id = %msg.id, "could not record a webhook attempt"),
    }
}

/// How an attempt ended, for scheduling.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Delivered,
    /// The receiver is gone for good (410).
    Gone,
    /// The URL can never be delivered to (scheme, a literal private address, malformed).
    Permanent,
    /// Try again; `retry_after` is the receiver's wish, in seconds.
    Retry {
        retry_after: Option<f64>,
    },
}

async fn attempt(inner: &Inner, msg: &WebhookMessage) -> (WebhookAttempt, Outcome) {
    let started_at = now_ms();
    let clock = Instant::now();
    let mut record = WebhookAttempt {
        message_id: msg.id.clone(),
        n: msg.attempts + 1,
        started_at,
        status: None,
        latency_ms: 0,
        error: None,
        response_excerpt: None,
    };
    let outcome = match send(inner, msg).await {
        Err(SendError::Unavailable(why)) => {
            record.error = Some(why);
            Outcome::Retry { retry_after: None }
        }
        Err(SendError::Refused(r)) => {
            record.error = Some(format!("{}: {r}", r.code()));
            // Refused on its face: no later attempt can succeed. Refused after resolution:
            // DNS answers change, so the schedule goes on.
            match r.code() {
                "invalid_url" => Outcome::Permanent,
                "blocked_destination" if !matches!(r, Refusal::NoAllowedAddress { .. }) => {
                    Outcome::Permanent
                }
                _ => Outcome::Retry { retry_after: None },
            }
        }
        Err(SendError::Http(e)) => {
            record.error = Some(match refusal_of(&e) {
                Some(r) => format!("{}: {r}", r.code()),
                None if e.is_timeout() => "timeout".to_string(),
                None if e.is_connect() => format!("connect: {}", root_cause(&e)),
                None => format!("request: {}", root_cause(&e)),
            });
            Outcome::Retry { retry_after: None }
        }
        Ok(resp) => {
            let status = resp.status();
            record.status = Some(status.as_u16());
            let retry_after = retry_after_secs(resp.headers());
            record.response_excerpt =
                Some(excerpt(resp, inner.config.response_excerpt_bytes).await);
            if status.is_success() {
                Outcome::Delivered
            } else if status.as_u16() == 410 {
                record.error = Some("410 Gone: the receiver unsubscribed".into());
                Outcome::Gone
            } else {
                record.error = Some(format!("HTTP {}", status.as_u16()));
                Outcome::Retry { retry_after }
            }
        }
    };
    record.latency_ms = clock.elapsed().as_millis() as i64;
    (record, outcome)
}

enum SendError {
    Unavailable(String),
    Refused(Refusal),
    Http(reqwest::Error),
}

async fn send(inner: &Inner, msg: &WebhookMessage) -> Result<reqwest::Response, SendError> {
    let secrets = match inner.store.webhook_secrets(&msg.account_id).await {
        Ok(Some(s)) => s,
        // Unsigned messages are never sent: a store hiccup is retried like a network one.
        Ok(None) => {
            return Err(SendError::Unavailable(
                "the account no longer exists".into(),
            ))
        }
        Err(e) => return Err(SendError::Unavailable(format!("signing secret: {e}"))),
    };
    let ts = now_ms() / 1000;
    let body = msg.payload.as_bytes();
    let live = std::iter::once(secrets.current.as_str()).chain(secrets.previous.as_deref());
    let signature = signature_header(live, &msg.id, ts, body);
    let req = inner
        .client
        .request(reqwest::Method::POST, &msg.url)
        .map_err(SendError::Refused)?
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &msg.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature);
    // kie.ai's own signature, for the dialect that speaks it, when the account set a key.
    let req = match (&msg.hmac_subject, &secrets.hmac_key) {
        (Some(subject), Some(key)) => req
            .header("X-Webhook-Timestamp", ts.to_string())
            .header("X-Webhook-Signature", kie_signature(key, subject, ts)),
        _ => req,
    };
    let req = req.body(msg.payload.clone());
    req.send().await.map_err(SendError::Http)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The first `limit` bytes of the body; the rest is not read.
async fn excerpt(resp: reqwest::Response, limit: usize) -> String {
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn retry_after_secs(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<f64>() {
        return (secs >= 0.0).then_some(secs);
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    )
}

/// What follows attempt `n`: the schedule of the message (or the configured one), jittered;
/// a receiver's `Retry-After` is honoured within [delay, 2 × delay], as Svix does.
fn next_step(
    config: &WebhookConfig,
    msg: &WebhookMessage,
    n: i64,
    outcome: Outcome,
) -> WebhookNext {
    let retry_after = match outcome {
        Outcome::Delivered => return WebhookNext::Delivered,
        Outcome::Gone | Outcome::Permanent => return WebhookNext::Failed,
        Outcome::Retry { retry_after } => retry_after,
    };
    let schedule: Vec<f64> = match &msg.schedule {
        Some(s) => s.iter().map(|&x| x as f64).collect(),
        None => config.schedule_seconds.clone(),
    };
    let Some(&delay) = schedule.get((n - 1).max(0) as usize) else {
        return WebhookNext::Failed;
    };
    let j = config.jitter;
    let mut secs = delay * rand::thread_rng().gen_range((1.0 - j)..=(1.0 + j));
    if let Some(wish) = retry_after {
        secs = secs.max(wish.clamp(delay, 2.0 * delay));
    }
    WebhookNext::RetryAt(now_ms() + (secs * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(schedule: Option<Vec<u64>>) -> WebhookMessage {
        WebhookMessage {
            id: "evt_1".into(),
            account_id: "a".into(),
            task_id: "t".into(),
            seq: 1,
            event_type: "task.succeeded".into(),
            url: "https://example.com/h".into(),
            payload: "{}".into(),
            schedule,
            hmac_subject: None,
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            created_at: 0,
            delivered_at: None,
        }
    }

    #[test]
    fn schedule_runs_out_into_failure_and_retry_after_is_clamped() {
        let c = WebhookConfig {
            schedule_seconds: vec![10.0, 100.0],
            jitter: 0.0,
            ..WebhookConfig::default()
        };
        let m = msg(None);
        let retry = Outcome::Retry { retry_after: None };
        let at = |n, o| match next_step(&c, &m, n, o) {
            WebhookNext::RetryAt(t) => (t - now_ms()) as f64 / 1000.0,
            other => panic!("{other:?}"),
        };
        assert!((at(1, retry) - 10.0).abs() < 0.5);
        assert!((at(2, retry) - 100.0).abs() < 0.5);
        assert_eq!(next_step(&c, &m, 3, retry), WebhookNext::Failed);
        // Retry-After within [delay, 2 × delay].
        assert!(
            (at(
                1,
                Outcome::Retry {
                    retry_after: Some(15.0)
                }
            ) - 15.0)
                .abs()
                < 0.5
        );
        assert!(
            (at(
                1,
                Outcome::Retry {
                    retry_after: Some(500.0)
                }
            ) - 20.0)
                .abs()
                < 0.5
        );
        assert!(
            (at(
                1,
                Outcome::Retry {
                    retry_after: Some(1.0)
                }
            ) - 10.0)
                .abs()
                < 0.5
        );
        assert_eq!(next_step(&c, &m, 1, Outcome::Gone), WebhookNext::Failed);
        assert_eq!(
            next_step(&c, &m, 1, Outcome::Delivered),
            WebhookNext::Delivered
        );
        // A dialect's own schedule wins.
        let own = msg(Some(vec![60]));
        match next_step(&c, &own, 1, retry) {
            WebhookNext::RetryAt(t) => assert!(((t - now_ms()) as f64 / 1000.0 - 60.0).abs() < 0.5),
            other => panic!("{other:?}"),
        }
        assert_eq!(next_step(&c, &own, 2, retry), WebhookNext::Failed);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let c = WebhookConfig {
            schedule_seconds: vec![100.0],
            jitter: 0.2,
            ..WebhookConfig::default()
        };
        for _ in 0..200 {
            match next_step(&c, &msg(None), 1, Outcome::Retry { retry_after: None }) {
                WebhookNext::RetryAt(t) => {
                    let s = (t - now_ms()) as f64 / 1000.0;
                    assert!((79.5..=120.5).contains(&s), "{s}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn destinations_are_host_and_port() {
        assert_eq!(destination("https://a.example/x?y"), "a.example:443");
        assert_eq!(destination("http://a.example:8080/"), "a.example:8080");
    }
}
