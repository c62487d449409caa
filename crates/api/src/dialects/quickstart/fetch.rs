//! Reference media a client names (`imageUrl`, `videoUrl`, `referenceImage`) are fetched by
//! reelay itself, through the SSRF guard, when the task is submitted: a URL that cannot be
//! fetched, or is refused, is a 451 now (§8) instead of a failed task later, and the upstream
//! gets the bytes inline (a data URI), so it never has to reach the client's host.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::StreamExt;

use crate::error::{ApiError, ErrorKind};
use crate::AppState;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Image,
    Video,
}

pub struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// Width and height, for images.
    pub size: Option<(u32, u32)>,
}

impl Fetched {
    pub fn data_uri(&self) -> String {
        format!(
            "data:{};base64,{}",
            self.content_type,
            STANDARD.encode(&self.bytes)
        )
    }
}

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Image => "image",
        Kind::Video => "video",
    }
}

/// Content type from the bytes themselves: the header may be absent or generic.
fn sniff(bytes: &[u8], kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Image => match imagesize::image_type(bytes).ok()? {
            imagesize::ImageType::Png => Some("image/png"),
            imagesize::ImageType::Jpeg => Some("image/jpeg"),
            imagesize::ImageType::Webp => Some("image/webp"),
            imagesize::ImageType::Gif => Some("image/gif"),
            _ => None,
        },
        Kind::Video => {
            if bytes.len() > 12 && &bytes[4..8] == b"ftyp" {
                Some(if &bytes[8..10] == b"qt" {
                    "video/quicktime"
                } else {
                    "video/mp4"
                })
            } else if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
                Some("video/webm")
            } else {
                None
            }
        }
    }
}

pub async fn fetch(
    state: &AppState,
    field: &str,
    url: &str,
    kind: Kind,
    max_bytes: u64,
) -> Result<Fetched, ApiError> {
    let unfetchable = |why: String| {
        ApiError::new(
            ErrorKind::Unfetchable,
            format!("Failed to fetch the {} at {field}: {why}", what(kind)),
        )
        .with_param(field)
    };
    let req = state
        .fetch
        .request(reqwest::Method::GET, url)
        .map_err(|r| unfetchable(format!("refused ({r})")))?;
    let resp = req
        .send()
        .await
        .map_err(|e| match reelay_outbound::refusal_of(&e) {
            Some(r) => unfetchable(format!("refused ({r})")),
            None if e.is_timeout() => unfetchable("timed out".into()),
            None => unfetchable("could not connect".into()),
        })?;
    if !resp.status().is_success() {
        return Err(unfetchable(format!(
            "the server answered {}",
            resp.status()
        )));
    }
    let too_large = || {
        ApiError::invalid(
            field,
            format!("{field} is larger than {} MB", max_bytes / (1024 * 1024)),
        )
    };
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        return Err(too_large());
    }
    let header_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let mut bytes = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| unfetchable("the download broke off".into()))?;
        if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    let prefix = match kind {
        Kind::Image => "image/",
        Kind::Video => "video/",
    };
    let content_type = match (header_type, sniff(&bytes, kind)) {
        (_, Some(sniffed)) => sniffed.to_string(),
        (Some(h), None) if h.starts_with(prefix) => h,
        _ => {
            return Err(ApiError::invalid(
                field,
                format!("{field} is not a supported {}", what(kind)),
            ))
        }
    };
    let size = match kind {
        Kind::Image => imagesize::blob_size(&bytes)
            .ok()
            .map(|s| (s.width as u32, s.height as u32)),
        Kind::Video => None,
    };
    Ok(Fetched {
        bytes,
        content_type,
        size,
    })
}
