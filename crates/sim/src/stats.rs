use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the simulator has seen since it started (or since the last reset).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Every create request (`POST /v1/<endpoint>`), whatever its answer.
    pub creates_received: u64,
    /// Create requests that created a task (including those whose response was then spoiled).
    pub tasks_created: u64,
    /// Created tasks per `X-Reelay-Reference` header value.
    pub by_reference: BTreeMap<String, u64>,
    /// `GET /v1/tasks/{id}` requests.
    pub polls: u64,
    /// `POST /v1/uploads` slots handed out.
    #[serde(default)]
    pub uploads_started: u64,
    /// `DELETE /v1/tasks/{id}` that cancelled a task still PENDING, THROTTLED or RUNNING.
    pub cancels: u64,
    /// `DELETE /v1/tasks/{id}` answered 204 (cancels plus deletions of finished tasks).
    #[serde(default)]
    pub deletes: u64,
}
