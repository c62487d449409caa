//! A webhook receiver on a real socket that records what it is sent.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// Every header, names lower-case.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver on 127.0.0.1:0 that fails (500) while it has failures left, sleeping a delay
/// before answering each request. Both can be changed while it runs.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    fail_left: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    pub async fn start(fail_first: usize, delay: Duration) -> Receiver {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let fail_left = Arc::new(AtomicUsize::new(fail_first));
        let delay_ms = Arc::new(AtomicU64::new(delay.as_millis() as u64));
        let (s, f, d) = (seen.clone(), fail_left.clone(), delay_ms.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let (s, f, d) = (s.clone(), f.clone(), d.clone());
                async move {
                    let h = |k: &str| {
                        headers
                            .get(k)
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default()
                    };
                    s.lock().unwrap().push(Seen {
                        at: Instant::now(),
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        body: body.to_vec(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                            })
                            .collect(),
                    });
                    tokio::time::sleep(Duration::from_millis(d.load(Ordering::SeqCst))).await;
                    let failing = f
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        (StatusCode::INTERNAL_SERVER_ERROR, "not yet")
                    } else {
                        (StatusCode::OK, "ok")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url,
            seen,
            fail_left,
            delay_ms,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn set_failures(&self, n: usize) {
        self.fail_left.store(n, Ordering::SeqCst);
    }

    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }
}
