//! Reading the quick-start bodies (§3.1, §5.1, §7.1): every documented field, its type and
//! range; an unknown field is a 422 naming it.

use serde_json::{Map, Value};

use super::mapping::Mapping;
use super::QsError;

fn invalid(msg: impl Into<String>) -> QsError {
    QsError::Validation(msg.into())
}

/// Fields that hold a media URL or data URI; every other string is text.
const MEDIA_FIELDS: [&str; 3] = ["imageUrl", "videoUrl", "referenceImage"];

/// Fields of one body, remembering which were read.
pub struct Body<'a> {
    obj: &'a Map<String, Value>,
    seen: Vec<&'static str>,
}

impl<'a> Body<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Body<'a> {
        Body { obj, seen: vec![] }
    }

    fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        self.seen.push(name);
        self.obj.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, name: &'static str) -> Result<Option<String>, QsError> {
        let max = crate::dialects::string_bound(MEDIA_FIELDS.contains(&name));
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if crate::dialects::longer_than_utf16(s, max) => {
                Err(invalid(format!("{name} must be at most {max} characters")))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
        }
    }

    /// A non-empty string, or `None` for absent/empty.
    pub fn text(&mut self, name: &'static str) -> Result<Option<String>, QsError> {
        Ok(self.string(name)?.filter(|s| !s.trim().is_empty()))
    }

    pub fn required(&mut self, name: &'static str) -> Result<String, QsError> {
        self.text(name)?
            .ok_or_else(|| invalid(format!("{name} is required")))
    }

    pub fn bool(&mut self, name: &'static str) -> Result<Option<bool>, QsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(format!("{name} must be true or false"))),
        }
    }

    pub fn int(&mut self, name: &'static str, min: i64, max: i64) -> Result<Option<i64>, QsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| (min..=max).contains(&v)) => {
                Ok(n.as_i64())
            }
            Some(_) => Err(invalid(format!(
                "{name} must be an integer from {min} to {max}"
            ))),
        }
    }

    /// `5`, `5.0` and `"5"` alike (decision 5).
    pub fn seconds(&mut self, name: &'static str) -> Result<Option<i64>, QsError> {
        let bad = || invalid(format!("{name} must be a number of seconds"));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let f = n.as_f64().ok_or_else(bad)?;
                (f.fract() == 0.0)
                    .then_some(f as i64)
                    .map(Some)
                    .ok_or_else(bad)
            }
            Some(Value::String(s)) => {
                let f: f64 = s.trim().parse().map_err(|_| bad())?;
                (f.fract() == 0.0)
                    .then_some(f as i64)
                    .map(Some)
                    .ok_or_else(bad)
            }
            Some(_) => Err(bad()),
        }
    }

    /// Refuses fields nobody read.
    pub fn done(self) -> Result<(), QsError> {
        match self.obj.keys().find(|k| !self.seen.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(invalid(format!("unknown field {k}"))),
        }
    }
}

/// `prompt`: required, at most the mapping's limit in characters.
pub fn prompt(m: &Mapping, b: &mut Body) -> Result<String, QsError> {
    let p = b.required("prompt")?;
    if p.chars().count() > m.max_prompt_chars {
        return Err(invalid(format!(
            "prompt must be at most {} characters",
            m.max_prompt_chars
        )));
    }
    Ok(p)
}

pub fn quality(m: &Mapping, b: &mut Body) -> Result<String, QsError> {
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
pub fn duration(m: &Mapping, b: &mut Body) -> Result<i64, QsError> {
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

pub fn check_combination(m: &Mapping, duration: i64, quality: &str) -> Result<(), QsError> {
    match m
        .invalid
        .iter()
        .find(|i| i.duration == duration && i.quality == quality)
    {
        Some(i) => Err(invalid(i.message.clone())),
        None => Ok(()),
    }
}

/// A body as JSON: an object, or the dialect's 400.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, QsError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(QsError::BadRequest(
            "Bad request: the body must be a JSON object".into(),
        )),
        Err(e) => Err(QsError::BadRequest(format!(
            "Bad request: malformed JSON: {e}"
        ))),
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

pub fn read_generate(m: &Mapping, obj: &Map<String, Value>) -> Result<GenerateRequest, QsError> {
    let mut b = Body::new(obj);
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

pub fn read_extend(m: &Mapping, obj: &Map<String, Value>) -> Result<ExtendRequest, QsError> {
    let mut b = Body::new(obj);
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

pub fn read_aleph(m: &Mapping, obj: &Map<String, Value>) -> Result<AlephRequest, QsError> {
    let mut b = Body::new(obj);
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
pub fn one_of(field: &str, value: &str, allowed: &[String]) -> Result<(), QsError> {
    if allowed.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} must be one of {}",
            allowed.join(", ")
        )))
    }
}
