//! Reverse-dialect bodies → the Runway body of a catalog endpoint (the canonical input), using
//! the mapping in `crates/core/catalog/reverse.json`. Every field of shared/api/reverse.md §3–5
//! is checked here; what the catalog checks (media URLs, model ranges) is checked there, and
//! its findings are reported under the reverse field names.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ErrorKind};
use crate::fields::Fields;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(rename = "_comment", default)]
    _comment: Option<String>,
    pub defaults: Defaults,
    pub seconds: Vec<i64>,
    pub ratios: BTreeMap<String, String>,
    /// Landscape pixel ratio → its portrait form, for `options.flip`.
    pub portrait: BTreeMap<String, String>,
    pub text: Route,
    pub image: Route,
    pub video2video: Route,
    pub act_one: Route,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub model: String,
    pub ratio: String,
    pub seconds: i64,
    pub style: String,
    pub video2video_seconds: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub endpoint: String,
    #[serde(default)]
    pub default_model: Option<String>,
    /// Reverse model name → catalog model.
    pub models: BTreeMap<String, String>,
}

impl Mapping {
    pub fn builtin() -> Mapping {
        Mapping::from_json(reelay_core::REVERSE_MAP_JSON).expect("the built-in mapping is valid")
    }

    /// Parses a mapping and checks it against the catalog: every target must be a model of its
    /// endpoint, every ratio a pixel ratio.
    pub fn from_json(text: &str) -> Result<Mapping, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    pub fn check(&self, catalog: &reelay_core::Catalog) -> Result<(), String> {
        for (name, route) in [
            ("text", &self.text),
            ("image", &self.image),
            ("video2video", &self.video2video),
            ("act_one", &self.act_one),
        ] {
            let ep = catalog
                .endpoint(&route.endpoint)
                .ok_or_else(|| format!("{name}: no catalog endpoint {}", route.endpoint))?;
            for (ours, theirs) in &route.models {
                if !ep.models.contains_key(theirs) {
                    return Err(format!(
                        "{name}.models.{ours}: {theirs} is not a model of {}",
                        route.endpoint
                    ));
                }
            }
        }
        if !self.ratios.contains_key(&self.defaults.ratio) {
            return Err(format!(
                "defaults.ratio {} is not in ratios",
                self.defaults.ratio
            ));
        }
        Ok(())
    }
}

/// What a create route turns into.
pub struct Translated {
    pub endpoint: String,
    /// The Runway body for the endpoint.
    pub body: Value,
    /// The prompt as submitted (reported back as `prompt` and `prompt_en`).
    pub prompt: String,
    pub callback_url: Option<String>,
}

/// Fields that hold a media URL or data URI; every other string is text.
const MEDIA_FIELDS: [&str; 4] = ["image", "last_image", "video", "character_video"];

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::invalid_request(msg)
}

fn fields<'a>(obj: &'a Map<String, Value>, prefix: &'static str) -> Fields<'a> {
    Fields::new(obj, prefix, &MEDIA_FIELDS)
}

fn model<'m>(route: &'m Route, given: Option<String>, default: &str) -> Result<&'m str, ApiError> {
    let name = given.unwrap_or_else(|| route.default_model.clone().unwrap_or(default.into()));
    route.models.get(&name).map(String::as_str).ok_or_else(|| {
        let known: Vec<&str> = route.models.keys().map(String::as_str).collect();
        bad(format!(
            "model {name:?} is not available here; use one of {}",
            known.join(", ")
        ))
    })
}

fn seed(top: &mut Fields, opts: &mut Fields) -> Result<Option<i64>, ApiError> {
    let a = top.int("seed", 0, 4_294_967_295)?;
    let b = opts.int("seed", 0, 4_294_967_295)?;
    Ok(a.or(b))
}

fn seconds(m: &Mapping, opts: &mut Fields, default: i64) -> Result<i64, ApiError> {
    match opts.get("seconds") {
        None => Ok(default),
        Some(v) => v.as_i64().filter(|s| m.seconds.contains(s)).ok_or_else(|| {
            let allowed: Vec<String> = m.seconds.iter().map(i64::to_string).collect();
            bad(format!("options.seconds must be {}", allowed.join(" or ")))
        }),
    }
}

/// Camera control has no counterpart in the current models: checked, then left out
/// (decision 7: ignored without an error by models without camera control).
fn motion_vector(opts: &mut Fields) -> Result<(), ApiError> {
    let Some(mv) = opts.object("motion_vector")? else {
        return Ok(());
    };
    let mut f = fields(mv, "options.motion_vector.");
    for axis in ["x", "y", "z", "r", "bg_x_pan", "bg_y_pan"] {
        // Out-of-range values are clamped (as the doc decides), but must be numbers.
        match f.get(axis) {
            None | Some(Value::Number(_)) => {}
            Some(_) => {
                return Err(bad(format!(
                    "options.motion_vector.{axis} must be a number"
                )))
            }
        }
    }
    f.done()
}

fn ratio(m: &Mapping, given: Option<String>, flip: bool) -> Result<String, ApiError> {
    let word = given.unwrap_or_else(|| m.defaults.ratio.clone());
    let pixels = if let Some(p) = m.ratios.get(&word) {
        p.clone()
    } else if m.ratios.values().any(|p| *p == word) || word.split(':').count() == 2 {
        // Pixel forms (`1280:720`) pass through; the catalog says whether the model takes them.
        word.clone()
    } else {
        let words: Vec<&str> = m.ratios.keys().map(String::as_str).collect();
        return Err(bad(format!("ratio must be one of {}", words.join(", "))));
    };
    Ok(if flip {
        m.portrait.get(&pixels).cloned().unwrap_or(pixels)
    } else {
        pixels
    })
}

pub fn generate(
    m: &Mapping,
    obj: &Map<String, Value>,
    require_callback: bool,
) -> Result<Translated, ApiError> {
    let mut top = fields(obj, "");
    let callback_url = callback(&mut top, require_callback)?;
    let prompt = top.text("prompt")?;
    let given_ratio = top.text("ratio")?;
    let _style = top
        .text("style")?
        .unwrap_or_else(|| m.defaults.style.clone());
    let given_model = top.text("model")?;
    let image = top.text("image")?;
    let last_image = top.text("last_image")?;
    let empty = Map::new();
    let options = top.object("options")?.unwrap_or(&empty);
    let mut opts = fields(options, "options.");
    let secs = seconds(m, &mut opts, m.defaults.seconds)?;
    motion_vector(&mut opts)?;
    let end_frame = opts.flag("image_as_end_frame")?;
    let flip = opts.flag("flip")?;
    let seed = seed(&mut top, &mut opts)?;
    opts.done()?;
    top.get("key"); // a body credential, consumed by authentication
    top.done()?;

    let mut body = Map::new();
    let endpoint = match &image {
        Some(img) => {
            let model = model(&m.image, given_model, &m.defaults.model)?;
            let first = if end_frame { "last" } else { "first" };
            let mut frames = vec![json!({"uri": img, "position": first})];
            if let Some(last) = &last_image {
                if end_frame {
                    return Err(bad(
                        "last_image cannot be combined with options.image_as_end_frame",
                    ));
                }
                frames.push(json!({"uri": last, "position": "last"}));
            }
            body.insert("model".into(), json!(model));
            body.insert(
                "promptImage".into(),
                if frames.len() == 1 && first == "first" {
                    json!(img)
                } else {
                    Value::Array(frames)
                },
            );
            if let Some(p) = &prompt {
                body.insert("promptText".into(), json!(p));
            }
            &m.image.endpoint
        }
        None => {
            if last_image.is_some() || end_frame {
                return Err(bad("an end frame needs image"));
            }
            let p = prompt
                .as_ref()
                .ok_or_else(|| bad("prompt is required (or image, for image-to-video)"))?;
            let model = model(&m.text, given_model, &m.defaults.model)?;
            body.insert("model".into(), json!(model));
            body.insert("promptText".into(), json!(p));
            &m.text.endpoint
        }
    };
    body.insert("ratio".into(), json!(ratio(m, given_ratio, flip)?));
    body.insert("duration".into(), json!(secs));
    if let Some(s) = seed {
        body.insert("seed".into(), json!(s));
    }
    Ok(Translated {
        endpoint: endpoint.clone(),
        body: Value::Object(body),
        prompt: prompt.unwrap_or_default(),
        callback_url,
    })
}

pub fn video2video(
    m: &Mapping,
    obj: &Map<String, Value>,
    require_callback: bool,
) -> Result<Translated, ApiError> {
    let mut top = fields(obj, "");
    let callback_url = callback(&mut top, require_callback)?;
    let video = top.required("video")?;
    let model = model(&m.video2video, top.text("model")?, &m.defaults.model)?;
    let prompt = top.required("prompt")?;
    let empty = Map::new();
    let options = top.object("options")?.unwrap_or(&empty);
    let mut opts = fields(options, "options.");
    // Runway's Video-to-Video strength; the current upstream model has no such knob.
    opts.number("structure_transformation", 0.0, 1.0)?;
    let flip = opts.flag("flip")?;
    // The output follows the source clip's length; the value is checked, not sent.
    seconds(m, &mut opts, m.defaults.video2video_seconds)?;
    let seed = seed(&mut top, &mut opts)?;
    opts.done()?;
    top.get("key");
    top.done()?;
    let mut body = json!({"model": model, "videoUri": video, "promptText": prompt});
    if flip {
        body["targetAspectRatio"] = json!("9:16");
    }
    if let Some(s) = seed {
        body["seed"] = json!(s);
    }
    Ok(Translated {
        endpoint: m.video2video.endpoint.clone(),
        body,
        prompt,
        callback_url,
    })
}

pub fn act_one(
    m: &Mapping,
    obj: &Map<String, Value>,
    require_callback: bool,
) -> Result<Translated, ApiError> {
    let mut top = fields(obj, "");
    let callback_url = callback(&mut top, require_callback)?;
    let video = top.required("video")?;
    let image = top.text("image")?;
    let character_video = top.text("character_video")?;
    let model = model(&m.act_one, top.text("model")?, "act_one")?;
    let empty = Map::new();
    let options = top.object("options")?.unwrap_or(&empty);
    let mut opts = fields(options, "options.");
    opts.number("motion_multiplier", 0.0, 10.0)?;
    let flip = opts.flag("flip")?;
    let intensity = opts.int("expression_intensity", 1, 5)?;
    let body_control = match opts.get("body_control") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("options.body_control must be true or false")),
    };
    let seed = seed(&mut top, &mut opts)?;
    opts.done()?;
    top.get("key");
    top.done()?;
    let character = match (image, character_video) {
        (Some(img), None) => json!({"type": "image", "uri": img}),
        (None, Some(v)) => json!({"type": "video", "uri": v}),
        (None, None) => return Err(bad("image (or character_video) is required")),
        (Some(_), Some(_)) => return Err(bad("give image or character_video, not both")),
    };
    let mut body = json!({
        "model": model,
        "character": character,
        "reference": {"type": "video", "uri": video},
        "ratio": if flip { "720:1280" } else { "1280:720" },
    });
    if let Some(i) = intensity {
        body["expressionIntensity"] = json!(i);
    }
    if let Some(b) = body_control {
        body["bodyControl"] = json!(b);
    }
    if let Some(s) = seed {
        body["seed"] = json!(s);
    }
    Ok(Translated {
        endpoint: m.act_one.endpoint.clone(),
        body,
        prompt: String::new(),
        callback_url,
    })
}

fn callback(top: &mut Fields, required: bool) -> Result<Option<String>, ApiError> {
    match top.text("callback_url")? {
        None if required => Err(ApiError::new(
            ErrorKind::MissingCallback,
            "callback_url is required",
        )
        .with_param("callback_url")),
        other => Ok(other),
    }
}

/// Catalog field → the reverse field a client sent, for error messages.
pub fn reverse_field(runway_path: &[Value]) -> String {
    let head = runway_path.first().and_then(Value::as_str).unwrap_or("");
    let name = match head {
        "promptText" => "prompt",
        "promptImage" => "image",
        "videoUri" => "video",
        "reference" => "video",
        "character" => "image",
        "duration" => "options.seconds",
        "expressionIntensity" => "options.expression_intensity",
        "bodyControl" => "options.body_control",
        "targetAspectRatio" => "options.flip",
        other => other,
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn builtin_mapping_matches_the_catalog() {
        Mapping::builtin()
            .check(&reelay_core::Catalog::builtin())
            .unwrap();
    }

    #[test]
    fn text_and_image_routes_and_defaults() {
        let m = Mapping::builtin();
        let t = generate(&m, &obj(json!({"prompt": "a cat"})), false).unwrap();
        assert_eq!(t.endpoint, "text_to_video");
        assert_eq!(
            t.body,
            json!({"model": "gen4.5", "promptText": "a cat", "ratio": "1280:720", "duration": 10})
        );
        let i = generate(
            &m,
            &obj(
                json!({"image": "https://e.com/a.jpg", "model": "gen4", "ratio": "9:16",
                        "options": {"seconds": 5, "flip": false, "seed": 7}}),
            ),
            false,
        )
        .unwrap();
        assert_eq!(i.endpoint, "image_to_video");
        assert_eq!(
            i.body,
            json!({"model": "gen4_turbo", "promptImage": "https://e.com/a.jpg", "ratio": "720:1280",
                   "duration": 5, "seed": 7})
        );
        let flipped = generate(
            &m,
            &obj(json!({"image": "https://e.com/a.jpg", "options": {"flip": true}})),
            false,
        )
        .unwrap();
        assert_eq!(flipped.body["ratio"], "720:1280");
    }

    #[test]
    fn bad_fields_are_named() {
        let m = Mapping::builtin();
        let err = |v: Value| generate(&m, &obj(v), false).err().unwrap().to_string();
        assert!(err(json!({})).contains("prompt is required"));
        assert!(err(json!({"prompt": "x", "options": {"seconds": 7}})).contains("options.seconds"));
        assert!(err(json!({"prompt": "x", "ratio": "wide"})).contains("ratio"));
        assert!(err(json!({"prompt": "x", "model": "gen9"})).contains("gen9"));
        assert!(err(json!({"prompt": 5})).contains("prompt must be a string"));
        assert!(err(json!({"prompt": "x", "colour": 1})).contains("unknown field colour"));
        assert!(
            err(json!({"prompt": "x", "options": {"motion_vector": {"x": "left"}}}))
                .contains("options.motion_vector.x")
        );
        assert!(err(json!({"prompt": "x", "seed": -1})).contains("seed"));
        let long = "s".repeat(reelay_core::catalog::DEFAULT_TEXT_MAX_UTF16 + 1);
        assert!(err(json!({"prompt": "x", "style": long})).contains("style must be at most"));
        assert!(err(json!({"prompt": long})).contains("prompt must be at most"));
        // A media field may hold a data URI far longer than any text.
        let uri = format!("data:image/png;base64,{}", "A".repeat(100_000));
        assert!(generate(&m, &obj(json!({"image": uri})), false).is_ok());
        assert!(matches!(
            generate(&m, &obj(json!({"prompt": "x"})), true),
            Err(e) if e.kind == ErrorKind::MissingCallback
        ));
    }
}
