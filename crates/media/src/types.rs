//! Content types and file extensions of outputs.

use crate::config::essence;

/// The content type to record for an output: the upstream's, unless it says nothing useful
/// (`application/octet-stream` or nothing), in which case the first bytes tell.
pub fn effective_content_type(declared: &str, first_bytes: &[u8]) -> String {
    let ct = essence(declared);
    if ct.is_empty() || ct == "application/octet-stream" || ct == "binary/octet-stream" {
        if let Some(sniffed) = sniff(first_bytes) {
            return sniffed.to_string();
        }
        return "application/octet-stream".into();
    }
    ct
}

/// Recognises the media formats upstreams produce by their magic bytes.
pub fn sniff(b: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| {
        b.len() >= off + magic.len() && &b[off..off + magic.len()] == magic
    };
    if at(4, b"ftyp") {
        return Some(if at(8, b"qt  ") {
            "video/quicktime"
        } else {
            "video/mp4"
        });
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if at(0, b"\xff\xd8\xff") {
        return Some("image/jpeg");
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Some("image/webp");
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some("audio/wav");
    }
    if at(0, b"GIF8") {
        return Some("image/gif");
    }
    if at(0, b"\x1a\x45\xdf\xa3") {
        return Some("video/webm");
    }
    if at(0, b"ID3") || (b.len() >= 2 && b[0] == 0xff && (b[1] & 0xe0) == 0xe0) {
        return Some("audio/mpeg");
    }
    if at(0, b"fLaC") {
        return Some("audio/flac");
    }
    if at(0, b"OggS") {
        return Some("audio/ogg");
    }
    if at(0, b"PK\x03\x04") {
        return Some("application/zip");
    }
    None
}

/// The file extension for an output, from its content type, else from its URL path.
pub fn extension(content_type: &str, url: &str) -> &'static str {
    let by_type = match essence(content_type).as_str() {
        "video/mp4" => Some("mp4"),
        "video/quicktime" => Some("mov"),
        "video/webm" => Some("webm"),
        "image/png" => Some("png"),
        "image/jpeg" => Some("jpg"),
        "image/webp" => Some("webp"),
        "image/gif" => Some("gif"),
        "image/svg+xml" => Some("svg"),
        "audio/mpeg" => Some("mp3"),
        "audio/wav" | "audio/x-wav" | "audio/wave" => Some("wav"),
        "audio/flac" => Some("flac"),
        "audio/ogg" => Some("ogg"),
        "application/zip" => Some("zip"),
        _ => None,
    };
    if let Some(e) = by_type {
        return e;
    }
    let path = url.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    match last
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("mp4") => "mp4",
        Some("mov") => "mov",
        Some("webm") => "webm",
        Some("png") => "png",
        Some("jpg") | Some("jpeg") => "jpg",
        Some("webp") => "webp",
        Some("mp3") => "mp3",
        Some("wav") => "wav",
        Some("flac") => "flac",
        Some("zip") => "zip",
        _ => "bin",
    }
}

/// Whether frames can be derived from an output of this type.
pub fn is_video(content_type: &str) -> bool {
    essence(content_type).starts_with("video/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_prefers_content_type() {
        assert_eq!(extension("video/mp4", "https://x/y.bin"), "mp4");
        assert_eq!(
            extension("application/octet-stream", "https://x/out.png?sig=1"),
            "png"
        );
        assert_eq!(extension("", "https://x/out"), "bin");
        assert_eq!(extension("", "https://x.mp4/out"), "bin");
    }

    #[test]
    fn octet_streams_are_sniffed() {
        let mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0";
        assert_eq!(
            effective_content_type("application/octet-stream", mp4),
            "video/mp4"
        );
        assert_eq!(
            effective_content_type("", b"\x89PNG\r\n\x1a\n...."),
            "image/png"
        );
        assert_eq!(
            effective_content_type("Video/MP4; x=y", b"whatever"),
            "video/mp4"
        );
        assert_eq!(
            effective_content_type("application/octet-stream", b"\0\0random"),
            "application/octet-stream"
        );
        assert_eq!(sniff(reelay_sample_mp3()), Some("audio/mpeg"));
    }

    fn reelay_sample_mp3() -> &'static [u8] {
        b"ID3\x04\0\0\0\0\0\0"
    }
}
