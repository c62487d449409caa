//! Callbacks to the URL a task was created with: the reverse format POSTs its task object on
//! each transition into status `"1"`, `"2"` and `"3"` (reverse.md §8.2); the quick-start format
//! POSTs its generation callback once the task ends (quickstart.md §6), signed with §6.3's
//! `X-Webhook-Timestamp` / `X-Webhook-Signature` when [`crate::SimConfig::callback_hmac_key`]
//! is set.
//!
//! States are computed from the clock, so one tokio task per task sleeps until each transition,
//! renders the task as it was at that instant and POSTs it (10 s timeout, one retry). The tasks
//! hold nothing but a clone of the simulator, stop when the task is deleted or the server
//! stops, and are bounded: beyond [`MAX_PENDING`] waiting at once, new ones are not scheduled.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use crate::state::{Format, Phase};
use crate::Sim;

/// Tasks whose callbacks may wait at once.
pub(crate) const MAX_PENDING: usize = 10_000;
const TIMEOUT: Duration = Duration::from_secs(10);
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Decrements the pending count however the callback task ends (done, cancelled, aborted).
struct Pending(Sim);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0
            .inner
            .callbacks_pending
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// Starts the callbacks of task `id` (created with a callback URL).
pub(crate) fn schedule(sim: &Sim, id: Uuid) {
    if sim.inner.callbacks_pending.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING {
        sim.inner.callbacks_pending.fetch_sub(1, Ordering::AcqRel);
        sim.state().stats.callbacks_skipped += 1;
        return;
    }
    let guard = Pending(sim.clone());
    let sim = sim.clone();
    let mut closed = sim.inner.closed.subscribe();
    tokio::spawn(async move {
        let _guard = guard;
        tokio::select! {
            _ = run(&sim, id) => {}
            _ = closed.wait_for(|c| *c) => {}
        }
    });
}

/// How often a throttled task is looked at again: its start is only known once a slot frees.
fn recheck(sim: &Sim) -> Duration {
    Duration::from_secs_f64((sim.inner.config.run_seconds / 4.0).clamp(0.05, 1.0))
}

async fn run(sim: &Sim, id: Uuid) {
    let mut sent_running = false;
    loop {
        let now = Instant::now();
        let Some((task, _)) = sim.state().get(&id, now) else {
            return; // deleted
        };
        let Some(url) = task.seen.callback_url.clone() else {
            return;
        };
        let format = task.seen.format;
        let Some(start) = task.start else {
            tokio::time::sleep(recheck(sim)).await;
            continue;
        };
        let run_start = start + task.pending;
        let end = task.end().expect("started");
        let wants_running = format == Format::Reverse && task.active_run() > Duration::ZERO;
        if wants_running && !sent_running && run_start <= now {
            let phase = task.phase(run_start);
            if let Some(body) = payload(sim, format, &task, &phase) {
                deliver(sim, &url, format, task.id, body).await;
            }
            sent_running = true;
            continue;
        }
        if end <= now {
            let phase = task.phase(end);
            if let Some(body) = payload(sim, format, &task, &phase) {
                deliver(sim, &url, format, task.id, body).await;
            }
            return;
        }
        let next = if wants_running && !sent_running {
            run_start
        } else {
            end
        };
        tokio::time::sleep_until(next.into()).await;
    }
}

fn payload(sim: &Sim, format: Format, task: &crate::state::Task, phase: &Phase) -> Option<Value> {
    match format {
        Format::Reverse => Some(crate::http::reverse_task_data(
            sim,
            &HeaderMap::new(),
            task,
            phase,
        )),
        Format::Quickstart if phase.is_terminal() => {
            Some(crate::http::quickstart_callback(sim, task, phase))
        }
        _ => None,
    }
}

/// `base64(HMAC-SHA256(task_id + "." + timestamp, key))` (quickstart.md §6.3).
pub fn signature(key: &str, task_id: &str, timestamp: u64) -> String {
    use base64::Engine;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{task_id}.{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn deliver(sim: &Sim, url: &str, format: Format, id: Uuid, body: Value) {
    let client = sim.inner.callback_client.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("reelay-sim/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with a timeout builds")
    });
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(RETRY_AFTER).await;
        }
        let mut req = client.post(url).json(&body);
        if let (Format::Quickstart, Some(key)) = (format, &sim.inner.config.callback_hmac_key) {
            let ts = crate::files::unix_now();
            req = req
                .header("X-Webhook-Timestamp", ts.to_string())
                .header("X-Webhook-Signature", signature(key, &id.to_string(), ts));
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => {
                sim.state().stats.callbacks_sent += 1;
                return;
            }
            Ok(res) => {
                tracing::debug!(task = %id, status = %res.status(), "callback refused");
            }
            Err(e) => tracing::debug!(task = %id, error = %e, "callback failed"),
        }
    }
    sim.state().stats.callbacks_failed += 1;
}
