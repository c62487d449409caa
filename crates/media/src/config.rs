//! The `[media]` section: where archived media live, how links to them are made, how outputs
//! are fetched and derived, and how expired media are swept. Parsed once at start; `validate`
//! names the setting at fault.

use std::path::PathBuf;

use reelay_core::setting::{ensure, in_range, SettingError};
use serde::{Deserialize, Serialize};

/// Where archived media are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// A folder on local disk (default `<data_dir>/media`).
    Local,
    /// Any S3-compatible bucket (`[media.s3]`).
    S3,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub storage: StorageKind,
    /// Folder of the `local` storage; default `<data_dir>/media`.
    pub local_dir: Option<PathBuf>,
    pub s3: S3Config,
    /// Lifetime of a signed media link reelay hands out (never beyond the media's own expiry).
    pub link_ttl_seconds: u64,
    /// With S3 storage: answer a media link with a redirect to a presigned bucket URL instead
    /// of streaming the object through reelay.
    pub redirect: bool,
    /// Lifetime of those presigned URLs.
    pub presign_ttl_seconds: u64,
    /// Derive a poster (first frame) of every video output at success, and its last frame on
    /// first request (in process for H.264 MP4s, with ffmpeg for other codecs).
    pub derive_frames: bool,
    /// The ffmpeg binary (a name looked up in `PATH`, or a path).
    pub ffmpeg: String,
    /// One frame derivation (in process, or an ffmpeg run) is stopped after this long.
    pub ffmpeg_timeout_seconds: u64,
    /// Frame derivations at once per instance: in process (each holds a core) and ffmpeg
    /// runs, each.
    pub ffmpeg_concurrency: usize,
    /// If a succeeded task's outputs are still not archived this long after the upstream
    /// reported success, the task fails with `ARCHIVE_FAILED` and is refunded.
    pub archive_deadline_seconds: u64,
    /// Tries of one output download within one archiving attempt (with a short backoff).
    pub fetch_attempts: u32,
    /// A download that receives nothing for this long is abandoned (and retried).
    pub fetch_idle_timeout_seconds: u64,
    /// Content types an output may have (`type/*` matches a whole family). Anything else — an
    /// HTML error page answered with 200, say — fails the download for good.
    pub content_types: Vec<String>,
    /// How often the retention sweeper looks for expired media.
    pub sweep_interval_ms: u64,
    /// Tasks whose media one sweep step deletes (then it looks again).
    pub sweep_batch: i64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            storage: StorageKind::Local,
            local_dir: None,
            s3: S3Config::default(),
            link_ttl_seconds: 24 * 3600,
            redirect: false,
            presign_ttl_seconds: 3600,
            derive_frames: true,
            ffmpeg: "ffmpeg".into(),
            ffmpeg_timeout_seconds: 120,
            ffmpeg_concurrency: 2,
            archive_deadline_seconds: 6 * 3600,
            fetch_attempts: 3,
            fetch_idle_timeout_seconds: 60,
            content_types: [
                "video/*",
                "image/*",
                "audio/*",
                "application/zip",
                "application/octet-stream",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            sweep_interval_ms: 60_000,
            sweep_batch: 100,
        }
    }
}

/// An S3-compatible bucket. Unset credentials and region come from the usual `AWS_*`
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`), then from instance metadata.
#[derive(Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    pub region: Option<String>,
    /// The service endpoint, e.g. `https://s3.eu-central-1.amazonaws.com`, `http://minio:9000`.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// `https://endpoint/bucket/key` (MinIO, Ceph, moto, most self-hosted servers) instead of
    /// the virtual-hosted `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Prefix of every key in the bucket, e.g. `reelay/`.
    pub prefix: String,
}

impl std::fmt::Debug for S3Config {
    // Credentials never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "…"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "…"),
            )
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl MediaConfig {
    /// Checks the settings; keys are named within `[media]`.
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.storage == StorageKind::S3 {
            ensure(
                self.s3.bucket.is_empty(),
                "s3.bucket",
                "is required when media.storage = \"s3\"",
            )?;
            if let Some(e) = &self.s3.endpoint {
                ensure(
                    !(e.starts_with("http://") || e.starts_with("https://")),
                    "s3.endpoint",
                    &format!("{e:?} is not an http(s) URL"),
                )?;
            }
            ensure(
                self.s3.prefix.starts_with('/') || self.s3.prefix.contains(".."),
                "s3.prefix",
                "must be relative (no leading '/', no '..')",
            )?;
        } else {
            ensure(self.redirect, "redirect", "needs media.storage = \"s3\"")?;
        }
        in_range(
            "link_ttl_seconds",
            self.link_ttl_seconds,
            60,
            10 * 365 * 86_400,
        )?;
        // S3 presigns for a week at most.
        in_range(
            "presign_ttl_seconds",
            self.presign_ttl_seconds,
            1,
            7 * 86_400,
        )?;
        in_range("ffmpeg_concurrency", self.ffmpeg_concurrency, 1, 1024)?;
        in_range(
            "ffmpeg_timeout_seconds",
            self.ffmpeg_timeout_seconds,
            1,
            86_400,
        )?;
        in_range("fetch_attempts", self.fetch_attempts, 1, 100)?;
        in_range(
            "fetch_idle_timeout_seconds",
            self.fetch_idle_timeout_seconds,
            1,
            86_400,
        )?;
        ensure(
            self.archive_deadline_seconds == 0,
            "archive_deadline_seconds",
            "must be positive",
        )?;
        ensure(
            self.content_types.is_empty(),
            "content_types",
            "must list at least one type",
        )?;
        for t in &self.content_types {
            let ok = t
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !a.contains('*'));
            ensure(
                !ok,
                "content_types",
                &format!("{t:?} is not a type like video/mp4 or video/*"),
            )?;
        }
        ensure(
            self.sweep_interval_ms == 0,
            "sweep_interval_ms",
            "must be positive",
        )?;
        in_range("sweep_batch", self.sweep_batch, 1, 10_000)?;
        Ok(())
    }

    /// Whether `content_type` (parameters ignored) is one outputs may have.
    pub fn accepts(&self, content_type: &str) -> bool {
        let ct = essence(content_type);
        self.content_types.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            match allowed.strip_suffix("/*") {
                Some(family) => ct.split('/').next() == Some(family),
                None => ct == allowed,
            }
        })
    }
}

/// `Video/MP4; codecs=...` → `video/mp4`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_accept_media_only() {
        let c = MediaConfig::default();
        c.validate().unwrap();
        assert!(c.accepts("video/mp4"));
        assert!(c.accepts("Video/MP4; codecs=avc1"));
        assert!(c.accepts("image/png"));
        assert!(c.accepts("application/zip"));
        assert!(!c.accepts("text/html; charset=utf-8"));
        assert!(!c.accepts("application/xml"));
        assert!(!c.accepts("videos/mp4"));
    }

    #[test]
    fn validation_names_the_setting() {
        let mut c = MediaConfig {
            storage: StorageKind::S3,
            ..MediaConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "s3.bucket");
        c.s3.bucket = "b".into();
        c.s3.endpoint = Some("minio:9000".into());
        assert_eq!(c.validate().unwrap_err().key, "s3.endpoint");
        let c = MediaConfig {
            redirect: true,
            ..MediaConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "redirect");
        let c = MediaConfig {
            content_types: vec!["*/*".into()],
            ..MediaConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "content_types");
    }

    #[test]
    fn credentials_stay_out_of_debug_output() {
        let s = S3Config {
            secret_access_key: Some("hunter2".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            ..S3Config::default()
        };
        let text = format!("{s:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("AKIAEXAMPLE"),
            "{text}"
        );
    }
}
