//! The simulator's knobs, in one struct.

/// How the simulated provider behaves. `Default` gives a well-behaved, unlimited provider whose
/// tasks take half a second to start and five seconds to run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// When `Some`, every request of every format must carry `Authorization: Bearer <key>`
    /// (the reverse format also takes the bare key); otherwise each format's 401 (the
    /// quick-start format's is code 401 in an HTTP 200). The `/_sim/...` routes are never
    /// authenticated.
    pub api_key: Option<String>,
    /// Time a task spends in `PENDING` before `RUNNING`.
    pub pending_seconds: f64,
    /// Time a task spends in `RUNNING`; `progress` grows from 0 to 1 over it.
    pub run_seconds: f64,
    /// Output URLs handed out by `GET /v1/tasks/{id}` stop working after this long (403).
    pub output_ttl_seconds: u64,
    /// Tasks beyond this many `PENDING`/`RUNNING` ones wait in `THROTTLED`, in submission order.
    pub max_concurrent: Option<usize>,
    /// Seeds every random choice except task ids: the same seed and the same requests give the
    /// same failures.
    pub seed: u64,
    /// Probability that a task ends `FAILED` with a code drawn from [`crate::FAILURE_CODES`].
    pub failure_rate: f64,
    /// Base of the output URLs (e.g. when the router is mounted behind a proxy or a prefix).
    /// Default: the address [`crate::spawn`] bound, or else the request's `Host`.
    pub public_base_url: Option<String>,
    /// When set, a succeeded task reports this URL as its output (`{task_id}` is replaced by
    /// the task's id) instead of a signed URL of the sim's own files: lets a test point a
    /// gateway's archiver at a file server of its own (large, failing or special files).
    pub output_url: Option<String>,
    /// When set, every video output is this file instead of the small embedded sample: a clip
    /// from [`crate::clip::generate`] (1280×720 H.264, say), padded with [`crate::clip::padded`]
    /// to the size an archive benchmark wants.
    pub output_video: Option<bytes::Bytes>,
    /// When set, the quick-start format's callbacks carry `X-Webhook-Timestamp` and
    /// `X-Webhook-Signature` (`base64(HMAC-SHA256(taskId + "." + timestamp, key))`,
    /// quickstart.md §6.3), as kie.ai signs them for an account with a webhook HMAC key.
    pub callback_hmac_key: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_key: None,
            pending_seconds: 0.5,
            run_seconds: 5.0,
            output_ttl_seconds: 86_400,
            max_concurrent: None,
            seed: 0,
            failure_rate: 0.0,
            public_base_url: None,
            output_url: None,
            output_video: None,
            callback_hmac_key: None,
        }
    }
}
