//! Reading the quick-start bodies (§3.1, §5.1, §7.1): every documented field, its type and
//! range; an unknown field is a 422 naming it.

use serde_json::{Map, Value};

use super::mapping::Mapping;
use crate::error::ApiError;
use crate::fields::Fields;

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid_request(msg)
}

/// Fields that hold a media URL or data URI; every other string is text.
const MEDIA_FIELDS: [&str; 3] = ["imageUrl", "videoUrl", "referenceImage"];

/// The fields of one body (the shared reader, with this dialect's media fields).
fn fields(obj: &Map<String, Value>) -> Fields<'_> {
    Fields::new(obj, "", &MEDIA_FIELDS)
}

/// `prompt`: required, at most the mapping's limit in characters.
pub fn prompt(m: &Mapping, b: &mut Fields) -> Result<String, ApiError> {
    let p = b.required("prompt")?;
    if p.chars().count() > m.max_prompt_chars {
        return Err(invalid(format!(
            "prompt must be at most {} characters",
            m.max_prompt_chars
        )));
    }
    Ok(p)
}

pub fn quality(m: &Mapping, b: &mut Fields) -> Result<String, ApiError> {
    let q = b
        .text("quality")?
        .unwrap_or_else(|| m.default_quality.clone());
    if !m.qualities.contains(&q) {
        return Err(invalid(format!(
            "quality must be one of {}",
            m.qualities.join(", ")
        )));
    }
    Ok(q)
}

/// `duration`, or the one `model` names (`runway-duration-5-generate`); both given and
/// different is an error (decision 3).
pub fn duration(m: &Mapping, b: &mut Fields) -> Result<i64, ApiError> {
    let given = b.seconds("duration")?;
    let from_model = match b.text("model")? {
        None => None,
        Some(model) => Some(
            model
                .strip_prefix("runway-duration-")
                .and_then(|r| r.strip_suffix("-generate"))
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "model {model:?} is not known; use runway-duration-5-generate or runway-duration-10-generate"
                    ))
                })?,
        ),
    };
    let d = match (given, from_model) {
        (Some(d), Some(md)) if d != md => {
            return Err(invalid(format!(
                "duration {d} does not match model (which says {md})"
            )))
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => return Err(invalid("duration is required")),
    };
    if !m.durations.contains(&d) {
        let allowed: Vec<String> = m.durations.iter().map(i64::to_string).collect();
        return Err(invalid(format!(
            "duration must be {}",
            allowed.join(" or ")
        )));
    }
    Ok(d)
}

pub fn check_combination(m: &Mapping, duration: i64, quality: &str) -> Result<(), ApiError> {
    match m
        .invalid
        .iter()
        .find(|i| i.duration == duration && i.quality == quality)
    {
        Some(i) => Err(invalid(i.message.clone())),
        None => Ok(()),
    }
}

/// `POST /api/v1/runway/generate` (§3.1), read and checked; nothing here does I/O, so the
/// fuzz target can drive it. `callback` is checked for SSRF by the handler.
#[derive(Debug)]
pub struct GenerateRequest {
    pub prompt: String,
    pub duration: i64,
    pub quality: String,
    /// Checked against the mapping's ratios; required (and then present) without `image_url`.
    pub aspect: Option<String>,
    pub image_url: Option<String>,
    pub water_mark: String,
    pub callback: Option<String>,
    pub expand: bool,
}

pub fn read_generate(m: &Mapping, obj: &Map<String, Value>) -> Result<GenerateRequest, ApiError> {
    let mut b = fields(obj);
    let prompt = prompt(m, &mut b)?;
    let duration = duration(m, &mut b)?;
    let quality = quality(m, &mut b)?;
    let aspect = b.text("aspectRatio")?;
    let image_url = b.text("imageUrl")?;
    let water_mark = b.string("waterMark")?.unwrap_or_default();
    let callback = b.text("callBackUrl")?;
    let expand = b.bool("expandPrompt")?.unwrap_or(false);
    b.done()?;
    check_combination(m, duration, &quality)?;
    match (&aspect, &image_url) {
        (Some(a), _) => one_of("aspectRatio", a, &m.aspect_ratios)?,
        (None, None) => {
            return Err(invalid("aspectRatio is required without imageUrl"));
        }
        (None, Some(_)) => {}
    }
    Ok(GenerateRequest {
        prompt,
        duration,
        quality,
        aspect,
        image_url,
        water_mark,
        callback,
        expand,
    })
}

/// `POST /api/v1/runway/extend` (§5.1), read and checked.
#[derive(Debug)]
pub struct ExtendRequest {
    pub parent_id: String,
    pub prompt: String,
    pub quality: String,
    pub water_mark: String,
    pub callback: Option<String>,
    pub expand: bool,
}

pub fn read_extend(m: &Mapping, obj: &Map<String, Value>) -> Result<ExtendRequest, ApiError> {
    let mut b = fields(obj);
    let parent_id = b.required("taskId")?;
    let prompt = prompt(m, &mut b)?;
    let quality = quality(m, &mut b)?;
    let water_mark = b.string("waterMark")?.unwrap_or_default();
    let callback = b.text("callBackUrl")?;
    // In kie.ai's example, not its field list; the extension starts from the parent's last
    // frame whatever this says.
    let _ = b.text("imageUrl")?;
    let expand = b.bool("expandPrompt")?.unwrap_or(false);
    b.done()?;
    Ok(ExtendRequest {
        parent_id,
        prompt,
        quality,
        water_mark,
        callback,
        expand,
    })
}

/// `POST /api/v1/aleph/generate` (§7.1), read and checked.
#[derive(Debug)]
pub struct AlephRequest {
    pub prompt: String,
    pub video_url: String,
    pub callback: Option<String>,
    pub water_mark: String,
    pub aspect: Option<String>,
    pub seed: Option<i64>,
    pub reference: Option<String>,
}

pub fn read_aleph(m: &Mapping, obj: &Map<String, Value>) -> Result<AlephRequest, ApiError> {
    let mut b = fields(obj);
    let prompt = prompt(m, &mut b)?;
    let video_url = b.required("videoUrl")?;
    let callback = b.text("callBackUrl")?;
    let water_mark = b.string("waterMark")?.unwrap_or_default();
    // A storage-region switch of kie.ai's; reelay has its own media store (decision 18).
    let _upload_cn = b.bool("uploadCn")?;
    let aspect = b.text("aspectRatio")?;
    let seed = b.int("seed", 0, 4_294_967_295)?;
    let reference = b.text("referenceImage")?;
    b.done()?;
    if let Some(a) = &aspect {
        one_of("aspectRatio", a, &m.aleph.aspect_ratios)?;
    }
    Ok(AlephRequest {
        prompt,
        video_url,
        callback,
        water_mark,
        aspect,
        seed,
        reference,
    })
}

/// `value` must be one of `allowed` (an aspect ratio list, say).
pub fn one_of(field: &str, value: &str, allowed: &[String]) -> Result<(), ApiError> {
    if allowed.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be one of {}", allowed.join(", ")),
        ))
    }
}
