//! Output files: the small real media embedded in the crate, served behind signed, expiring
//! URLs the way a CDN serves Runway's outputs.

use reelay_core::MediaKind;
use sha2::{Digest, Sha256};

pub const SAMPLE_MP4: &[u8] = include_bytes!("../assets/sample.mp4");
pub const SAMPLE_PNG: &[u8] = include_bytes!("../assets/sample.png");
pub const SAMPLE_MP3: &[u8] = include_bytes!("../assets/sample.mp3");

/// The file a task of this output kind produces: (name, content type, bytes).
pub(crate) fn output_file(kind: MediaKind) -> (&'static str, &'static str, &'static [u8]) {
    match kind {
        MediaKind::Video => ("output.mp4", "video/mp4", SAMPLE_MP4),
        MediaKind::Image => ("output.png", "image/png", SAMPLE_PNG),
        MediaKind::Audio => ("output.mp3", "audio/mpeg", SAMPLE_MP3),
    }
}

/// The bytes served under `name`: the configured video in place of the sample, if any.
pub(crate) fn file_by_name(
    name: &str,
    video: Option<&bytes::Bytes>,
) -> Option<(&'static str, bytes::Bytes)> {
    [MediaKind::Video, MediaKind::Image, MediaKind::Audio]
        .into_iter()
        .map(output_file)
        .find(|(n, _, _)| *n == name)
        .map(|(_, ct, bytes)| match (ct, video) {
            ("video/mp4", Some(v)) => (ct, v.clone()),
            _ => (ct, bytes::Bytes::from_static(bytes)),
        })
}

/// A keyed hash over what the URL grants: this file of this task until `exp`.
pub(crate) fn sign(secret: &[u8], task_id: &str, name: &str, exp: u64) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(task_id.as_bytes());
    h.update(b"/");
    h.update(name.as_bytes());
    h.update(b":");
    h.update(exp.to_string().as_bytes());
    hex::encode(h.finalize())
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
