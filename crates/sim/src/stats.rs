use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the simulator has seen since it started (or since the last reset).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Every create request, in any format, whatever its answer.
    pub creates_received: u64,
    /// Create requests per format (`runway`, `reverse`, `quickstart`), whatever their answer.
    #[serde(default)]
    pub creates_by_format: BTreeMap<String, u64>,
    /// Create requests that created a task (including those whose response was then spoiled).
    pub tasks_created: u64,
    /// Created tasks per `X-Reelay-Reference` header value.
    pub by_reference: BTreeMap<String, u64>,
    /// Task reads in any format (`GET /v1/tasks/{id}`, `/runway/feed`, `record-detail`).
    pub polls: u64,
    /// Most tasks running (PENDING or RUNNING, holding a slot) at one instant, across formats.
    #[serde(default)]
    pub peak_concurrent: u64,
    /// Callbacks delivered (a 2xx from the receiver, after at most one retry).
    #[serde(default)]
    pub callbacks_sent: u64,
    /// Callbacks given up on (no 2xx after the retry).
    #[serde(default)]
    pub callbacks_failed: u64,
    /// Tasks whose callbacks were never scheduled because too many were pending.
    #[serde(default)]
    pub callbacks_skipped: u64,
    /// `POST /v1/uploads` slots handed out.
    #[serde(default)]
    pub uploads_started: u64,
    /// `DELETE /v1/tasks/{id}` that cancelled a task still PENDING, THROTTLED or RUNNING.
    pub cancels: u64,
    /// `DELETE /v1/tasks/{id}` answered 204 (cancels plus deletions of finished tasks).
    #[serde(default)]
    pub deletes: u64,
}
