//! What a task step costs beyond the upstream: the step's wall time less the time its upstream
//! calls took, as `reelay_gateway_overhead_seconds{step}`. The HTTP side has no such figure to
//! subtract: no dialect request waits on an upstream (a create is accepted, durably, before any
//! upstream call), so its whole duration is gateway time (`reelay_http_request_duration_seconds`).
//!
//! The upstream time of a step is summed in a task-local set around the step, so the channel
//! layer that times each call adds to it without the dispatcher passing a counter down.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Spent {
    upstream: Cell<Duration>,
    calls: Cell<u32>,
    /// The step copied outputs into the archive (time that is ours but not dispatch work).
    archived: Cell<bool>,
}

tokio::task_local! {
    static SPENT: Spent;
}

/// Adds one upstream call's time to the step under way (if any).
pub(crate) fn upstream_call(took: Duration) {
    let _ = SPENT.try_with(|s| {
        s.upstream.set(s.upstream.get() + took);
        s.calls.set(s.calls.get() + 1);
    });
}

/// Marks the step under way as one that archived outputs.
pub(crate) fn archived() {
    let _ = SPENT.try_with(|s| s.archived.set(true));
}

/// Runs one step of `kind` (`dispatch`, `track`, ...) and records its overhead when it made an
/// upstream call: steps that only touched the store have no upstream time to compare with.
pub(crate) async fn measured<F: Future>(kind: &'static str, step: F) -> F::Output {
    let started = Instant::now();
    SPENT
        .scope(Spent::default(), async move {
            let out = step.await;
            let (upstream, calls, archived) =
                SPENT.with(|s| (s.upstream.get(), s.calls.get(), s.archived.get()));
            if calls > 0 {
                let step = if archived { "archive" } else { kind };
                let overhead = started.elapsed().saturating_sub(upstream);
                metrics::histogram!("reelay_gateway_overhead_seconds", "step" => step)
                    .record(overhead.as_secs_f64());
            }
            out
        })
        .await
}
