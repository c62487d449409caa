//! Media references as Runway accepts them: an HTTPS URL on a domain, a `runway://` upload, or
//! a base64 data URI of the right kind and size.

use base64::Engine;

use crate::kinds::MediaKind;

/// Data URI caps, counted on the whole encoded URI as Runway does.
pub const IMAGE_DATA_URI_MAX: usize = 5 * 1024 * 1024;
pub const AV_DATA_URI_MAX: usize = 16 * 1024 * 1024;
pub const URL_MAX: usize = 2048;

/// Returns the reason a reference is refused, in Runway's words.
pub fn check(uri: &str, kind: MediaKind) -> Result<(), String> {
    if let Some(rest) = uri.strip_prefix("data:") {
        return check_data_uri(rest, uri.len(), kind);
    }
    if uri.starts_with("runway://") {
        return if (13..=5000).contains(&uri.len()) {
            Ok(())
        } else {
            Err("Invalid runway:// URI".into())
        };
    }
    if uri.len() > URL_MAX {
        return Err(format!("URL must be at most {URL_MAX} characters"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| "Invalid URL".to_string())?;
    if parsed.scheme() != "https" {
        return Err("Only HTTPS URLs are allowed".into());
    }
    match parsed.host() {
        Some(url::Host::Domain(d)) if d.contains('.') || d == "localhost" => Ok(()),
        Some(url::Host::Domain(_)) => Err("URLs must be hosted on a domain".into()),
        Some(_) => Err("URLs must be hosted on a domain".into()),
        None => Err("Invalid URL".into()),
    }
}

/// The prefix of reelay's own upload URIs (`runway://uploads/<id>`): files an account put into
/// reelay's media store through Runway's `POST /v1/uploads` (or the OpenAI dialect's file
/// parts), resolved for that account when the task is submitted.
pub const UPLOAD_URI_PREFIX: &str = "runway://uploads/";

/// Whether a body names any `runway://` URI: a scan without allocation, so the common body
/// (none) costs the accept and submit paths nothing more.
fn names_runway_uri(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.starts_with("runway://"),
        Value::Array(a) => a.iter().any(names_runway_uri),
        Value::Object(o) => o.values().any(names_runway_uri),
        _ => false,
    }
}

/// Every upload URI in a body, with its JSON path, in body order.
pub fn upload_refs(v: &serde_json::Value) -> Vec<(Vec<serde_json::Value>, String)> {
    if !names_runway_uri(v) {
        return Vec::new();
    }
    fn walk(
        v: &serde_json::Value,
        path: &mut Vec<serde_json::Value>,
        out: &mut Vec<(Vec<serde_json::Value>, String)>,
    ) {
        use serde_json::Value;
        match v {
            Value::String(s) if s.starts_with("runway://") => out.push((path.clone(), s.clone())),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(i.into());
                    walk(x, path, out);
                    path.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    path.push(k.as_str().into());
                    walk(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The value at `path` (as [`upload_refs`] gives paths), to replace it.
pub fn at_path<'a>(
    v: &'a mut serde_json::Value,
    path: &[serde_json::Value],
) -> Option<&'a mut serde_json::Value> {
    let mut at = v;
    for p in path {
        at = match p {
            serde_json::Value::Number(n) => at.get_mut(n.as_u64()? as usize)?,
            serde_json::Value::String(k) => at.get_mut(k.as_str())?,
            _ => return None,
        };
    }
    Some(at)
}

fn check_data_uri(rest: &str, total_len: usize, kind: MediaKind) -> Result<(), String> {
    let (meta, data) = rest.split_once(',').ok_or("Invalid data URI")?;
    let mime = meta.strip_suffix(";base64").ok_or("Invalid data URI")?;
    let mime = mime.split(';').next().unwrap_or("").to_ascii_lowercase();
    if mime.is_empty() {
        return Err("Invalid data URI".into());
    }
    let max = match kind {
        MediaKind::Image => IMAGE_DATA_URI_MAX,
        MediaKind::Video | MediaKind::Audio => AV_DATA_URI_MAX,
    };
    if total_len > max {
        return Err(format!("Data URI must be at most {} bytes", max));
    }
    let allowed: &[&str] = match kind {
        MediaKind::Image => &["image/jpeg", "image/jpg", "image/png", "image/webp"],
        MediaKind::Video => &[
            "video/mp4",
            "video/quicktime",
            "video/webm",
            "video/x-matroska",
        ],
        MediaKind::Audio => &[
            "audio/mpeg",
            "audio/mp3",
            "audio/wav",
            "audio/x-wav",
            "audio/wave",
            "audio/aac",
            "audio/flac",
            "audio/mp4",
            "audio/ogg",
        ],
    };
    if !allowed.contains(&mime.as_str()) {
        return Err("Unsupported asset type".into());
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.trim_end())
        .map_err(|_| "Invalid data URI".to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        assert!(check("https://example.com/a.jpg", MediaKind::Image).is_ok());
        assert!(check("runway://abcdefghijk", MediaKind::Image).is_ok());
        assert!(check("data:image/png;base64,iVBORw0KGgo=", MediaKind::Image).is_ok());
    }

    #[test]
    fn refuses_what_runway_refuses() {
        assert_eq!(
            check("http://example.com/a.jpg", MediaKind::Image).unwrap_err(),
            "Only HTTPS URLs are allowed"
        );
        assert_eq!(
            check("https://10.0.0.1/a.jpg", MediaKind::Image).unwrap_err(),
            "URLs must be hosted on a domain"
        );
        assert_eq!(
            check("https://[::1]/a.jpg", MediaKind::Image).unwrap_err(),
            "URLs must be hosted on a domain"
        );
        assert_eq!(
            check("data:image/gif;base64,R0lGOD==", MediaKind::Image).unwrap_err(),
            "Unsupported asset type"
        );
        assert_eq!(
            check("data:image/png,plain", MediaKind::Image).unwrap_err(),
            "Invalid data URI"
        );
        assert_eq!(
            check("data:image/png;base64,@@@", MediaKind::Image).unwrap_err(),
            "Invalid data URI"
        );
        assert_eq!(
            check("data:video/mp4;base64,AAAA", MediaKind::Image).unwrap_err(),
            "Unsupported asset type"
        );
        let big = format!("data:image/png;base64,{}", "A".repeat(IMAGE_DATA_URI_MAX));
        assert!(check(&big, MediaKind::Image)
            .unwrap_err()
            .contains("at most"));
        assert!(check("ftp://example.com/a", MediaKind::Image).is_err());
    }
}
