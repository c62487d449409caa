//! The simulated provider's memory: tasks, the throttle queue, queued faults and statistics.
//!
//! A task's status is computed from the clock (start + pending + run), so nothing ticks in the
//! background. The only bookkeeping is for concurrency: a THROTTLED task starts when a slot
//! frees, and its clock starts then, which `settle` works out lazily whenever the state is
//! touched. Every function takes `now` so the logic can be tested without sleeping.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reelay_core::MediaKind;
use uuid::Uuid;

use crate::fault::Fault;
use crate::stats::SimStats;

/// Tasks kept in memory; beyond this the oldest finished ones are forgotten.
pub(crate) const MAX_TASKS: usize = 100_000;
/// References remembered for `/_sim/lookup`.
const MAX_REFERENCES: usize = 200_000;
/// Queued faults (each with its count).
pub(crate) const MAX_FAULTS: usize = 10_000;
/// Remembered once-directives.
const MAX_FIRED: usize = 100_000;
const DAY: Duration = Duration::from_secs(86_400);

/// The failure codes a random failure is drawn from (Runway's documented ones).
pub const FAILURE_CODES: [&str; 7] = [
    "SAFETY.INPUT.TEXT",
    "SAFETY.OUTPUT.VIDEO",
    "INTERNAL.BAD_OUTPUT.CODE01",
    "INTERNAL",
    "THIRD_PARTY.UNAVAILABLE",
    "INPUT_PREPROCESSING.INTERNAL",
    "ASSET.INVALID",
];

/// The human-readable `failure` Runway pairs with a code.
pub(crate) fn failure_message(code: &str) -> &'static str {
    match code {
        "SAFETY.INPUT.TEXT" => "The input text was flagged by our content moderation system.",
        "SAFETY.INPUT.IMAGE" => "The input image was flagged by our content moderation system.",
        "SAFETY.INPUT.VIDEO" => "The input video was flagged by our content moderation system.",
        "SAFETY.OUTPUT.VIDEO" => {
            "The generated video was flagged by our content moderation system."
        }
        "SAFETY.OUTPUT.IMAGE" => {
            "The generated image was flagged by our content moderation system."
        }
        "INTERNAL.BAD_OUTPUT.CODE01" => {
            "The model produced an unusable output. Try again, ideally with a different input."
        }
        "INTERNAL" => "An internal error occurred. Please try again later.",
        "THIRD_PARTY.UNAVAILABLE" => {
            "The model provider is temporarily unavailable. Please try again later."
        }
        "INPUT_PREPROCESSING.INTERNAL" => {
            "An error occurred while preprocessing the input. Please try again later."
        }
        "ASSET.INVALID" => {
            "An input asset does not meet the requirements (size, duration, resolution or codec)."
        }
        c if c.starts_with("SAFETY.") => "The task was flagged by our content moderation system.",
        _ => "The task failed.",
    }
}

/// Input moderation failures are charged (Runway does not refund them); the rest are not.
pub(crate) fn failure_is_charged(code: &str) -> bool {
    code.starts_with("SAFETY.INPUT.")
}

/// The wire format a task was created in. Every format shares the one task model; each renders
/// it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    /// Runway's official API (`/v1/...`).
    Runway,
    /// The resellers' reverse format (`/runway/pro/...`, `/runway/feed`).
    Reverse,
    /// kie.ai's quick-start format (`/api/v1/runway/...`).
    Quickstart,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Runway => "runway",
            Format::Reverse => "reverse",
            Format::Quickstart => "quickstart",
        }
    }
}

/// What a create request carried, as the simulator saw it (for `/_sim/tasks/{id}` and for the
/// formats' views, which echo the prompt and inputs). Shared, since tasks are cloned per read.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub format: Format,
    /// The endpoint the request stands for (`text_to_video`, `image_to_video`, ...).
    pub endpoint: String,
    /// The body, data URIs replaced by their digest (see [`elide`]).
    pub body: serde_json::Value,
    pub prompt: String,
    pub callback_url: Option<String>,
    pub reference: Option<String>,
}

/// Bodies larger than this (after eliding data URIs) are not kept.
const MAX_SEEN_BODY: usize = 64 * 1024;

/// The body to remember: every data URI replaced by `data:<type>;sha256=<hex>` (the digest of
/// its bytes, as in the task's media digests), the whole body dropped when still too large.
pub(crate) fn elide(v: &serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    fn walk(v: &Value) -> Value {
        match v {
            Value::String(s) if s.starts_with("data:") => {
                let (head, payload) = s[5..].split_once(',').unwrap_or((&s[5..], ""));
                let kind = head.split(';').next().unwrap_or("");
                let bytes = if head.ends_with(";base64") {
                    base64::engine::general_purpose::STANDARD
                        .decode(payload)
                        .unwrap_or_else(|_| payload.as_bytes().to_vec())
                } else {
                    payload.as_bytes().to_vec()
                };
                let digest = hex::encode(Sha256::digest(&bytes));
                Value::String(format!("data:{kind};sha256={digest}"))
            }
            Value::Array(a) => Value::Array(a.iter().map(walk).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), walk(v))).collect())
            }
            other => other.clone(),
        }
    }
    let out = walk(v);
    if out.to_string().len() > MAX_SEEN_BODY {
        serde_json::json!({"_elided": "body too large to keep"})
    } else {
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Succeed,
    /// Fails with `code` once `fraction` of the run is done.
    Fail {
        code: String,
        fraction: f64,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub created: Instant,
    /// When the task left THROTTLED (its clock started); `None` while throttled.
    pub start: Option<Instant>,
    pub pending: Duration,
    /// The full run, slow factor included.
    pub run: Duration,
    pub outcome: Outcome,
    pub estimated: i64,
    pub output: MediaKind,
    pub model: String,
    pub media_sha256: Vec<String>,
    pub seen: Arc<Seen>,
}

/// A task's status at some instant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Phase {
    Throttled,
    Pending,
    Running { progress: f64 },
    Succeeded,
    Failed { code: String },
}

impl Phase {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed { .. })
    }
}

impl Task {
    /// How long the task runs before it ends (shorter than `run` for a failure mid-run; zero for
    /// one that fails as soon as it starts).
    pub fn active_run(&self) -> Duration {
        match &self.outcome {
            Outcome::Succeed => self.run,
            Outcome::Fail { fraction, .. } => self.run.mul_f64(fraction.clamp(0.0, 1.0)),
        }
    }

    /// When the task ends (frees its slot), once started.
    pub fn end(&self) -> Option<Instant> {
        self.start.map(|s| s + self.pending + self.active_run())
    }

    pub fn phase(&self, now: Instant) -> Phase {
        let Some(start) = self.start else {
            return Phase::Throttled;
        };
        let run_start = start + self.pending;
        if now < run_start {
            return Phase::Pending;
        }
        if now < run_start + self.active_run() {
            let done = now.duration_since(run_start).as_secs_f64();
            let total = self.run.as_secs_f64().max(1e-9);
            let progress = ((done / total).clamp(0.0, 0.9999) * 10_000.0).floor() / 10_000.0;
            return Phase::Running { progress };
        }
        match &self.outcome {
            Outcome::Succeed => Phase::Succeeded,
            Outcome::Fail { code, .. } => Phase::Failed { code: code.clone() },
        }
    }

    /// Credits charged if the task were looked at (or removed) at `now`: the estimate is held
    /// while it runs and charged on success; failures are refunded except input moderation.
    fn charge(&self, phase: &Phase) -> i64 {
        match phase {
            Phase::Failed { code } if !failure_is_charged(code) => 0,
            _ => self.estimated,
        }
    }

    /// Credits kept when the task is cancelled at `now`: nothing while it had not started to
    /// run, everything once RUNNING (Runway's rule).
    fn charge_if_cancelled(&self, phase: &Phase) -> i64 {
        match phase {
            Phase::Throttled | Phase::Pending => 0,
            other => self.charge(other),
        }
    }
}

/// What a create needs from the request, once the body is valid.
pub(crate) struct NewTask {
    pub estimated: i64,
    pub output: MediaKind,
    pub model: String,
    pub pending: Duration,
    pub run: Duration,
    /// A failure forced by a fault or directive.
    pub forced_failure: Option<String>,
    pub reference: Option<String>,
    /// SHA-256 of each inline media input (data URI) the create carried, in body order.
    pub media_sha256: Vec<String>,
    pub seen: Seen,
}

pub(crate) struct State {
    /// Files uploaded through `/v1/uploads`, by key, the oldest evicted past a bound.
    uploads: HashMap<String, bytes::Bytes>,
    upload_order: VecDeque<String>,
    tasks: HashMap<Uuid, Task>,
    /// Creation order, for eviction (may hold ids already deleted).
    order: VecDeque<Uuid>,
    throttled: VecDeque<Uuid>,
    /// End times of the tasks holding a concurrency slot (or of slots freed by a cancel).
    slots: Vec<Instant>,
    last_promotion: Option<Instant>,
    faults: VecDeque<(Fault, u64)>,
    pub stats: SimStats,
    references: HashMap<String, Uuid>,
    reference_order: VecDeque<String>,
    fired: HashSet<String>,
    rng: StdRng,
    /// Credits charged by tasks no longer in memory.
    removed_charges: i64,
    /// Creations in the last day, per model, for `/v1/organization`.
    daily: VecDeque<(Instant, String)>,
    max_concurrent: Option<usize>,
    failure_rate: f64,
    /// End times of the started tasks not known to have ended (a multiset), for the peak.
    live_ends: BTreeMap<Instant, u32>,
    live: u64,
}

impl State {
    pub fn new(seed: u64, max_concurrent: Option<usize>, failure_rate: f64) -> State {
        State {
            uploads: HashMap::new(),
            upload_order: VecDeque::new(),
            tasks: HashMap::new(),
            order: VecDeque::new(),
            throttled: VecDeque::new(),
            slots: Vec::new(),
            last_promotion: None,
            faults: VecDeque::new(),
            stats: SimStats::default(),
            references: HashMap::new(),
            reference_order: VecDeque::new(),
            fired: HashSet::new(),
            rng: StdRng::seed_from_u64(seed),
            removed_charges: 0,
            daily: VecDeque::new(),
            max_concurrent: max_concurrent.map(|m| m.max(1)),
            failure_rate: if failure_rate.is_finite() {
                failure_rate.clamp(0.0, 1.0)
            } else {
                0.0
            },
            live_ends: BTreeMap::new(),
            live: 0,
        }
    }

    // ---- peak concurrency ---------------------------------------------------------------

    /// A task started at `start` and will end at `end`: counts towards the peak.
    fn note_start(&mut self, start: Instant, end: Instant) {
        while let Some(entry) = self.live_ends.first_entry() {
            if *entry.key() > start {
                break;
            }
            self.live -= u64::from(*entry.get());
            entry.remove();
        }
        *self.live_ends.entry(end).or_default() += 1;
        self.live += 1;
        self.stats.peak_concurrent = self.stats.peak_concurrent.max(self.live);
    }

    /// A started task was removed before its end.
    fn note_gone(&mut self, end: Instant) {
        if let Some(n) = self.live_ends.get_mut(&end) {
            *n -= 1;
            self.live -= 1;
            if *n == 0 {
                self.live_ends.remove(&end);
            }
        }
    }

    // ---- faults -------------------------------------------------------------------------

    pub fn push_faults(&mut self, fault: Fault, count: u64) -> bool {
        if count == 0 {
            return true;
        }
        if self.faults.len() >= MAX_FAULTS {
            return false;
        }
        self.faults.push_back((fault, count));
        true
    }

    /// Takes the next queued fault for one create request.
    pub fn next_fault(&mut self) -> Option<Fault> {
        let (fault, count) = self.faults.front_mut()?;
        let fault = fault.clone();
        *count -= 1;
        if *count == 0 {
            self.faults.pop_front();
        }
        Some(fault)
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
        self.fired.clear();
    }

    /// True the first time `key` is seen (a once-directive for one request identity).
    pub fn fire_once(&mut self, key: String) -> bool {
        if self.fired.len() >= MAX_FIRED {
            self.fired.clear();
        }
        self.fired.insert(key)
    }

    // ---- tasks --------------------------------------------------------------------------

    pub fn create(&mut self, new: NewTask, now: Instant) -> Uuid {
        self.settle(now);
        // Draw the same number of values for every task so that the stream (and so the
        // failure pattern) depends only on the seed and the order of creates.
        let roll: f64 = self.rng.gen();
        let code_index = self.rng.gen_range(0..FAILURE_CODES.len());
        let fraction: f64 = self.rng.gen_range(0.2..=1.0);
        let outcome = match new.forced_failure {
            Some(code) => Outcome::Fail {
                code,
                fraction: 1.0,
            },
            None if roll < self.failure_rate => {
                let code = FAILURE_CODES[code_index];
                // Input moderation fails straight away; the rest somewhere into the run.
                let fraction = if failure_is_charged(code) {
                    0.0
                } else {
                    fraction
                };
                Outcome::Fail {
                    code: code.to_string(),
                    fraction,
                }
            }
            None => Outcome::Succeed,
        };
        let id = Uuid::new_v4();
        let mut task = Task {
            id,
            created_at: Utc::now(),
            created: now,
            start: None,
            pending: new.pending,
            run: new.run,
            outcome,
            estimated: new.estimated,
            output: new.output,
            model: new.model,
            media_sha256: new.media_sha256,
            seen: Arc::new(new.seen),
        };
        match self.max_concurrent {
            Some(max) if !self.throttled.is_empty() || self.occupied(now) >= max => {
                self.throttled.push_back(id);
            }
            Some(_) => {
                task.start = Some(now);
                self.slots.push(task.end().expect("started"));
            }
            None => task.start = Some(now),
        }
        if let Some(end) = task.end() {
            self.note_start(now, end);
        }
        self.daily.push_back((now, task.model.clone()));
        self.tasks.insert(id, task);
        self.order.push_back(id);
        self.stats.tasks_created += 1;
        if let Some(r) = new.reference {
            *self.stats.by_reference.entry(r.clone()).or_default() += 1;
            self.remember_reference(r, id);
        }
        self.evict(now);
        id
    }

    fn remember_reference(&mut self, reference: String, id: Uuid) {
        if self.references.insert(reference.clone(), id).is_none() {
            self.reference_order.push_back(reference);
        }
        while self.references.len() > MAX_REFERENCES {
            match self.reference_order.pop_front() {
                Some(old) => {
                    self.references.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn put_upload(&mut self, key: String, bytes: bytes::Bytes) {
        const MAX_UPLOADS: usize = 256;
        if self.uploads.insert(key.clone(), bytes).is_none() {
            self.upload_order.push_back(key);
        }
        while self.uploads.len() > MAX_UPLOADS {
            match self.upload_order.pop_front() {
                Some(old) => {
                    self.uploads.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn upload(&self, key: &str) -> Option<bytes::Bytes> {
        self.uploads.get(key).cloned()
    }

    /// What the create request of a task carried.
    pub fn seen(&self, id: &Uuid) -> Option<(Arc<Seen>, String)> {
        self.tasks
            .get(id)
            .map(|t| (t.seen.clone(), t.model.clone()))
    }

    /// The media digests a task was created with.
    pub fn media_of(&self, id: &Uuid) -> Option<Vec<String>> {
        self.tasks.get(id).map(|t| t.media_sha256.clone())
    }

    pub fn lookup(&self, reference: &str) -> Option<Uuid> {
        self.references.get(reference).copied()
    }

    /// The task and its phase at `now`.
    pub fn get(&mut self, id: &Uuid, now: Instant) -> Option<(Task, Phase)> {
        self.settle(now);
        let task = self.tasks.get(id)?;
        Some((task.clone(), task.phase(now)))
    }

    /// `DELETE`: cancels a live task or deletes a finished one. Returns the phase it was in.
    pub fn delete(&mut self, id: &Uuid, now: Instant) -> Option<Phase> {
        self.settle(now);
        let task = self.tasks.remove(id)?;
        let phase = task.phase(now);
        self.removed_charges += task.charge_if_cancelled(&phase);
        if let (false, Some(end)) = (phase.is_terminal(), task.end()) {
            self.note_gone(end);
        }
        match phase {
            Phase::Throttled => self.throttled.retain(|t| t != id),
            Phase::Pending | Phase::Running { .. } if self.max_concurrent.is_some() => {
                // Its slot frees now rather than at its planned end.
                if let Some(end) = task.end() {
                    if let Some(slot) = self.slots.iter_mut().find(|s| **s == end) {
                        *slot = now;
                    }
                }
            }
            _ => {}
        }
        self.settle(now);
        if !phase.is_terminal() {
            self.stats.cancels += 1;
        }
        self.stats.deletes += 1;
        Some(phase)
    }

    fn occupied(&self, now: Instant) -> usize {
        self.slots.iter().filter(|end| **end > now).count()
    }

    /// Starts the throttled tasks whose slot has freed by `now`, each at the instant it freed.
    fn settle(&mut self, now: Instant) {
        let Some(max) = self.max_concurrent else {
            return;
        };
        while let Some(&id) = self.throttled.front() {
            let Some(task) = self.tasks.get(&id) else {
                self.throttled.pop_front();
                continue;
            };
            let since = match self.last_promotion {
                Some(p) if p > task.created => p,
                _ => task.created,
            };
            let mut ends: Vec<Instant> =
                self.slots.iter().copied().filter(|e| *e > since).collect();
            ends.sort();
            // Occupancy falls below `max` when the (len - max)-th slot ends.
            let start = if ends.len() < max {
                since
            } else {
                ends[ends.len() - max]
            };
            if start > now {
                break;
            }
            let task = self.tasks.get_mut(&id).expect("present");
            task.start = Some(start);
            let end = task.end().expect("started");
            self.last_promotion = Some(start);
            self.slots.retain(|e| *e > start);
            self.slots.push(end);
            self.throttled.pop_front();
            self.note_start(start, end);
        }
        // Slots that ended by `now` can no longer delay anyone (see the note in the tests).
        self.slots.retain(|e| *e > now);
    }

    /// Forgets the oldest finished tasks beyond `MAX_TASKS`.
    fn evict(&mut self, now: Instant) {
        if self.order.len() > 2 * MAX_TASKS {
            let tasks = &self.tasks;
            self.order.retain(|id| tasks.contains_key(id));
        }
        while self.tasks.len() > MAX_TASKS {
            let tasks = &self.tasks;
            let pos = self
                .order
                .iter()
                .position(|id| match tasks.get(id) {
                    Some(t) => t.phase(now).is_terminal(),
                    None => true, // deleted: just drop the id
                })
                .unwrap_or(0);
            let Some(id) = self.order.remove(pos) else {
                break;
            };
            if let Some(task) = self.tasks.remove(&id) {
                let phase = task.phase(now);
                self.removed_charges += task.charge(&phase);
                self.throttled.retain(|t| *t != id);
            }
        }
        while self
            .daily
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > DAY)
            || self.daily.len() > 2 * MAX_TASKS
        {
            self.daily.pop_front();
        }
    }

    // ---- organization -------------------------------------------------------------------

    /// Credits charged so far (held ones included).
    pub fn credits_charged(&mut self, now: Instant) -> i64 {
        self.settle(now);
        self.removed_charges
            + self
                .tasks
                .values()
                .map(|t| t.charge(&t.phase(now)))
                .sum::<i64>()
    }

    pub fn daily_generations(&self, now: Instant) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for (t, model) in &self.daily {
            if now.duration_since(*t) <= DAY {
                *out.entry(model.clone()).or_default() += 1;
            }
        }
        out
    }

    pub fn reset_stats(&mut self) {
        self.stats = SimStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_task(run: f64) -> NewTask {
        NewTask {
            estimated: 10,
            output: MediaKind::Video,
            model: "gen4_turbo".into(),
            pending: Duration::from_secs_f64(1.0),
            run: Duration::from_secs_f64(run),
            forced_failure: None,
            reference: None,
            media_sha256: vec![],
            seen: Seen {
                format: Format::Runway,
                endpoint: "image_to_video".into(),
                body: serde_json::Value::Null,
                prompt: String::new(),
                callback_url: None,
                reference: None,
            },
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn lifecycle_is_computed_from_the_clock() {
        let t0 = Instant::now();
        let mut s = State::new(1, None, 0.0);
        let id = s.create(new_task(4.0), t0);
        assert_eq!(s.get(&id, t0).unwrap().1, Phase::Pending);
        assert_eq!(
            s.get(&id, t0 + secs(3.0)).unwrap().1,
            Phase::Running { progress: 0.5 }
        );
        assert_eq!(s.get(&id, t0 + secs(5.0)).unwrap().1, Phase::Succeeded);
    }

    #[test]
    fn throttled_tasks_start_in_order_when_a_slot_frees() {
        let t0 = Instant::now();
        let mut s = State::new(1, Some(1), 0.0);
        let a = s.create(new_task(4.0), t0); // runs t0 .. t0+5
        let b = s.create(new_task(4.0), t0 + secs(1.0));
        let c = s.create(new_task(4.0), t0 + secs(2.0));
        assert_eq!(s.get(&b, t0 + secs(2.0)).unwrap().1, Phase::Throttled);
        // Looked at long after: b started at t0+5 (when a ended), c at t0+10.
        let (tb, _) = s.get(&b, t0 + secs(20.0)).unwrap();
        assert_eq!(tb.start, Some(t0 + secs(5.0)));
        let (tc, _) = s.get(&c, t0 + secs(20.0)).unwrap();
        assert_eq!(tc.start, Some(t0 + secs(10.0)));
        assert_eq!(s.get(&a, t0 + secs(20.0)).unwrap().1, Phase::Succeeded);
    }

    #[test]
    fn cancelling_frees_the_slot_at_once() {
        let t0 = Instant::now();
        let mut s = State::new(1, Some(1), 0.0);
        let a = s.create(new_task(100.0), t0);
        let b = s.create(new_task(4.0), t0);
        assert_eq!(
            s.delete(&a, t0 + secs(2.0)),
            Some(Phase::Running { progress: 0.01 })
        );
        let (tb, phase) = s.get(&b, t0 + secs(2.5)).unwrap();
        assert_eq!(tb.start, Some(t0 + secs(2.0)));
        assert_eq!(phase, Phase::Pending);
        assert_eq!(s.stats.cancels, 1);
        assert!(s.get(&a, t0 + secs(3.0)).is_none());
    }

    #[test]
    fn settling_late_or_often_gives_the_same_schedule() {
        let t0 = Instant::now();
        let run = |step: f64| {
            let mut s = State::new(1, Some(2), 0.0);
            let ids: Vec<_> = (0..6)
                .map(|i| s.create(new_task(1.0 + i as f64), t0 + secs(i as f64 * 0.1)))
                .collect();
            let mut t = 1.0;
            while t < 40.0 {
                s.settle(t0 + secs(t));
                t += step;
            }
            ids.iter()
                .map(|id| s.get(id, t0 + secs(40.0)).unwrap().0.start.unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(0.05), run(13.0));
    }

    #[test]
    fn peak_concurrency_counts_overlapping_runs_and_forgets_cancelled_ones() {
        let t0 = Instant::now();
        let mut s = State::new(1, None, 0.0);
        let a = s.create(new_task(4.0), t0); // t0 .. t0+5
        s.create(new_task(4.0), t0 + secs(1.0)); // .. t0+6
        assert_eq!(s.stats.peak_concurrent, 2);
        s.delete(&a, t0 + secs(2.0));
        s.create(new_task(4.0), t0 + secs(3.0));
        assert_eq!(s.stats.peak_concurrent, 2);
        s.create(new_task(1.0), t0 + secs(20.0));
        assert_eq!(s.stats.peak_concurrent, 2);

        // Throttled: never more than the limit at once.
        let mut s = State::new(1, Some(2), 0.0);
        for i in 0..6 {
            s.create(new_task(1.0), t0 + secs(i as f64 * 0.1));
        }
        s.settle(t0 + secs(30.0));
        assert_eq!(s.stats.peak_concurrent, 2);
    }

    #[test]
    fn elided_bodies_keep_digests_not_bytes() {
        let v = serde_json::json!({"promptImage": [{"uri": "data:image/png;base64,AAAA"}], "n": 1});
        let e = elide(&v);
        let uri = e["promptImage"][0]["uri"].as_str().unwrap();
        // SHA-256 of the three zero bytes "AAAA" decodes to.
        assert_eq!(
            uri,
            "data:image/png;sha256=709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c"
        );
        assert_eq!(e["n"], 1);
    }

    #[test]
    fn same_seed_same_failures() {
        let pattern = |seed| {
            let t0 = Instant::now();
            let mut s = State::new(seed, None, 0.5);
            let ids: Vec<_> = (0..40).map(|_| s.create(new_task(1.0), t0)).collect();
            ids.iter()
                .map(|id| s.get(id, t0 + secs(10.0)).unwrap().1)
                .collect::<Vec<_>>()
        };
        assert_eq!(pattern(7), pattern(7));
        assert_ne!(pattern(7), pattern(8));
    }

    #[test]
    fn failures_refund_except_input_moderation() {
        let t0 = Instant::now();
        let mut s = State::new(1, None, 0.0);
        let failing = |code: &str| NewTask {
            forced_failure: Some(code.into()),
            ..new_task(1.0)
        };
        s.create(failing("INTERNAL"), t0);
        s.create(failing("SAFETY.INPUT.TEXT"), t0);
        assert_eq!(s.credits_charged(t0 + secs(5.0)), 10);
    }
}
