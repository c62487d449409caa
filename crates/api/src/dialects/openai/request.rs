//! Reading this dialect's create bodies: multipart form data (what the SDK always sends) or a
//! JSON object (curl, LiteLLM), into one set of fields read by the shared field reader; then
//! the catalog body they mean. Nothing here does I/O but [`read_form`]'s body read.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use reelay_core::{CoreError, Issue};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::mapping::Mapping;
use super::params::Params;
use super::view::{ratio_of_size, size_of_ratio};
use crate::error::ApiError;
use crate::fields::Fields;
use crate::{create, AppState};

/// Most parts a form may have: the create takes five fields; room for clients' extras.
const MAX_PARTS: usize = 32;

/// A file part of a form. Its declared content type is not trusted: the bytes are sniffed.
#[derive(Debug, Clone)]
pub struct Upload {
    pub bytes: Bytes,
}

/// A create body, whatever its encoding: text fields (`a[b]` parts become `{"a": {"b": ..}}`,
/// as the SDK flattens objects) and file parts.
#[derive(Debug, Default)]
pub struct Form {
    pub fields: Map<String, Value>,
    pub files: BTreeMap<String, Upload>,
}

impl Form {
    /// What identifies the request for its `Idempotency-Key`: the fields, and each file by
    /// its hash.
    pub fn identity(&self) -> Value {
        let mut id = self.fields.clone();
        for (name, f) in &self.files {
            id.insert(
                format!("{name}#sha256"),
                Value::String(hex::encode(Sha256::digest(&f.bytes))),
            );
        }
        Value::Object(id)
    }
}

pub async fn read_form(state: &AppState, req: Request) -> Result<Form, ApiError> {
    let multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !multipart {
        let body = create::body(Bytes::from_request(req, state).await)?;
        return Ok(Form {
            fields: create::json_object(&body, false)?,
            files: BTreeMap::new(),
        });
    }
    let mut mp = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::malformed(format!("malformed multipart body: {}", e.body_text())))?;
    let mut form = Form::default();
    let mut parts = 0;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    crate::error::ErrorKind::PayloadTooLarge,
                    "the body is too large",
                ))
            }
            Err(e) => {
                return Err(ApiError::malformed(format!(
                    "malformed multipart body: {}",
                    e.body_text()
                )))
            }
        };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::malformed(format!(
                "a form may have at most {MAX_PARTS} parts"
            )));
        }
        let name = field.name().unwrap_or("").to_string();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    crate::error::ErrorKind::PayloadTooLarge,
                    "the body is too large",
                )
            } else {
                ApiError::malformed(format!("malformed multipart body: {}", e.body_text()))
            }
        })?;
        if is_file {
            form.files.insert(name, Upload { bytes });
            continue;
        }
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::invalid(name.clone(), format!("{name} must be UTF-8 text")))?;
        match name.split_once('[') {
            Some((outer, rest)) if rest.ends_with(']') && !outer.is_empty() => {
                let inner = &rest[..rest.len() - 1];
                let slot = form
                    .fields
                    .entry(outer.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                match slot {
                    Value::Object(o) => {
                        o.insert(inner.to_string(), Value::String(text));
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            outer,
                            format!("{outer} is given both as a value and as an object"),
                        ))
                    }
                }
            }
            _ => {
                form.fields.insert(name, Value::String(text));
            }
        }
    }
    Ok(form)
}

/// What a create turns into before the shared accept path.
pub struct Create {
    pub endpoint: &'static str,
    pub body: Value,
    pub params: Params,
    /// An uploaded `input_reference` (its sniffed type and bytes): stored as an upload once
    /// the request is valid, its URI then replacing [`PENDING_FILE`] in `body`.
    pub file: Option<(&'static str, Bytes)>,
}

/// Stands for an uploaded file in a body until it is stored (a valid `runway://` URI, so the
/// catalog checks everything else first).
pub const PENDING_FILE: &str = "runway://uploads/pending";

/// `seconds`: a string of whole seconds, as the dialect types it (an integer is refused as
/// OpenAI refuses it).
fn seconds(f: &mut Fields, default: &str) -> Result<(String, i64), ApiError> {
    match f.get("seconds") {
        None => Ok((default.to_string(), default.parse().unwrap_or(4))),
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=600).contains(&n) => Ok((n.to_string(), n)),
            _ => Err(ApiError::invalid(
                "seconds",
                format!("Invalid value for 'seconds': {s:?} is not a whole number of seconds."),
            )
            .with_code("invalid_value")),
        },
        Some(Value::Number(_)) => Err(ApiError::invalid(
            "seconds",
            "Invalid type for 'seconds': expected a string of whole seconds such as '4' or '8', but got an integer instead.",
        )
        .with_code("invalid_type")),
        Some(_) => Err(ApiError::invalid(
            "seconds",
            "Invalid type for 'seconds': expected a string.",
        )
        .with_code("invalid_type")),
    }
}

fn size(f: &mut Fields, default: &str) -> Result<(String, String), ApiError> {
    let size = f.text("size")?.unwrap_or_else(|| default.to_string());
    let ratio = ratio_of_size(&size).ok_or_else(|| {
        ApiError::invalid(
            "size",
            format!("Invalid value for 'size': {size:?} is not WIDTHxHEIGHT (such as 1280x720)."),
        )
        .with_code("invalid_value")
    })?;
    Ok((size, ratio))
}

/// The type of image bytes, when they are a JPEG, PNG or WebP within the bound.
fn image_type(param: &str, bytes: &[u8], max: usize) -> Result<&'static str, ApiError> {
    if bytes.len() > max {
        return Err(ApiError::invalid(
            param,
            format!("{param} is larger than {} MB", max / (1024 * 1024)),
        ));
    }
    let ct = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        return Err(ApiError::invalid(
            param,
            format!("Invalid file for '{param}': expected a JPEG, PNG or WebP image."),
        )
        .with_code("invalid_value"));
    };
    Ok(ct)
}

/// What `input_reference` names.
enum Reference {
    Url(String),
    File(&'static str, Bytes),
}

/// `input_reference`: an uploaded file, `{"image_url": ...}` (URL or data URL), or — reelay's
/// extension — a plain string holding one. `{"file_id"}` names OpenAI's file store, which
/// reelay does not have.
fn input_reference(
    f: &mut Fields,
    form: &Form,
    m: &Mapping,
) -> Result<Option<Reference>, ApiError> {
    const P: &str = "input_reference";
    if let Some(file) = form.files.get(P) {
        f.get(P);
        let ct = image_type(P, &file.bytes, m.max_image_bytes)?;
        return Ok(Some(Reference::File(ct, file.bytes.clone())));
    }
    match f.get(P) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        // A `runway://` URI is one of the account's uploads (checked at accept).
        Some(Value::String(s)) => Ok(Some(Reference::Url(s.clone()))),
        Some(Value::Object(o)) => {
            let mut inner = Fields::new(o, "input_reference.", &["image_url"]);
            if inner.get("file_id").is_some() {
                return Err(ApiError::invalid(
                    P,
                    "input_reference.file_id is not supported here: upload the image as a file or pass input_reference.image_url.",
                ));
            }
            let url = inner.required("image_url")?;
            inner.done()?;
            Ok(Some(Reference::Url(url)))
        }
        Some(_) => Err(ApiError::invalid(
            P,
            "Invalid type for 'input_reference': expected a file or an object with image_url.",
        )
        .with_code("invalid_type")),
    }
}

/// Refuses file parts nobody reads.
fn no_other_files(form: &Form, allowed: &[&str]) -> Result<(), ApiError> {
    match form.files.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::invalid(k.clone(), format!("unknown field {k}"))),
    }
}

/// `POST /v1/videos`.
pub fn read_create(
    m: &Mapping,
    catalog: &reelay_core::Catalog,
    form: &Form,
) -> Result<Create, ApiError> {
    let mut f = Fields::new(&form.fields, "", &["input_reference"]);
    let prompt = f.required("prompt")?;
    let model = f.text("model")?.unwrap_or_else(|| m.default_model.clone());
    let (seconds, duration) = seconds(&mut f, &m.default_seconds)?;
    let (size, ratio) = size(&mut f, &m.default_size)?;
    let image = input_reference(&mut f, form, m)?;
    f.done()?;
    no_other_files(form, &["input_reference"])?;
    let target = m.resolve(&model).to_string();
    let endpoint = if image.is_some() {
        "image_to_video"
    } else {
        "text_to_video"
    };
    if !has_model(catalog, endpoint, &target) {
        return Err(unknown_model(catalog, m, &model, endpoint));
    }
    let mut body = json!({"model": target, "promptText": prompt, "ratio": ratio,
                          "duration": duration});
    let file = match image {
        Some(Reference::Url(url)) => {
            body["promptImage"] = Value::String(url);
            None
        }
        Some(Reference::File(ct, bytes)) => {
            body["promptImage"] = Value::String(PENDING_FILE.into());
            Some((ct, bytes))
        }
        None => None,
    };
    Ok(Create {
        endpoint,
        body,
        params: Params {
            model,
            size,
            seconds,
            prompt,
            ..Params::default()
        },
        file,
    })
}

fn has_model(catalog: &reelay_core::Catalog, endpoint: &str, model: &str) -> bool {
    catalog
        .endpoint(endpoint)
        .is_some_and(|e| e.models.contains_key(model))
}

fn unknown_model(
    catalog: &reelay_core::Catalog,
    m: &Mapping,
    model: &str,
    endpoint: &str,
) -> ApiError {
    let target = m.resolve(model);
    let other = if endpoint == "text_to_video" {
        "image_to_video"
    } else {
        "text_to_video"
    };
    let message = if has_model(catalog, other, target) {
        if endpoint == "text_to_video" {
            format!("Model {model:?} needs an input_reference image.")
        } else {
            format!("Model {model:?} does not take an input_reference image.")
        }
    } else {
        let mut known: Vec<&str> = m.aliases.keys().map(String::as_str).collect();
        if let Some(e) = catalog.endpoint(endpoint) {
            known.extend(e.models.keys().map(String::as_str));
        }
        format!(
            "Invalid value for 'model': {model:?} is not available. Supported: {}.",
            known.join(", ")
        )
    };
    ApiError::invalid("model", message).with_code("invalid_value")
}

/// The OpenAI field a catalog field was made from.
fn param_of(path: &[Value]) -> &'static str {
    match path.first().and_then(Value::as_str).unwrap_or("") {
        "promptText" => "prompt",
        "ratio" => "size",
        "duration" => "seconds",
        "promptImage" => "input_reference",
        "videoUri" => "video",
        "model" => "model",
        _ => "",
    }
}

/// The catalog's findings in this dialect's words: the first issue names the field the client
/// sent (`size`, not `ratio`) and the values the model takes, written the dialect's way.
pub fn catalog_error(e: CoreError, model: &str) -> ApiError {
    let CoreError::Validation(issues) = e else {
        return e.into();
    };
    let Some(first) = issues.first() else {
        return CoreError::Validation(issues).into();
    };
    let param = param_of(&first.path);
    let message = describe(first, param, model);
    let err = ApiError::invalid_request(message).with_code("invalid_value");
    if param.is_empty() {
        err
    } else {
        err.with_param(param)
    }
}

fn describe(i: &Issue, param: &str, model: &str) -> String {
    let values = i.extra.get("values").and_then(Value::as_array);
    match (param, values) {
        ("size", Some(v)) => format!(
            "Invalid value for 'size': model {model:?} supports {}.",
            v.iter()
                .filter_map(Value::as_str)
                .map(size_of_ratio)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ("seconds", Some(v)) => format!(
            "Invalid value for 'seconds': model {model:?} supports {}.",
            v.iter()
                .map(|x| format!(
                    "'{}'",
                    x.as_i64().map(|n| n.to_string()).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ("seconds", None) => {
            let min = i.extra.get("minimum").and_then(Value::as_f64);
            let max = i.extra.get("maximum").and_then(Value::as_f64);
            match (min, max) {
                (Some(a), _) => format!(
                    "Invalid value for 'seconds': model {model:?} needs at least {a} seconds."
                ),
                (None, Some(b)) => format!(
                    "Invalid value for 'seconds': model {model:?} takes at most {b} seconds."
                ),
                (None, None) => format!("Invalid value for 'seconds': {}", i.message),
            }
        }
        ("", _) => i.message.clone(),
        (p, _) => format!("Invalid value for '{p}': {}", i.message),
    }
}

/// `POST /v1/videos/{id}/remix`: `prompt` only.
pub fn read_remix(fields: &Map<String, Value>) -> Result<String, ApiError> {
    let mut f = Fields::new(fields, "", &[]);
    let prompt = f.required("prompt")?;
    f.done()?;
    Ok(prompt)
}

/// What an extension continues: a completed video of ours, or a clip the client uploads.
pub enum Source {
    Video(String),
    Upload(Bytes),
}

/// `POST /v1/videos/extensions`: `prompt`, `seconds` and `video` (a file, or `{"id": ...}`).
pub struct Extension {
    pub prompt: String,
    pub seconds: Option<(String, i64)>,
    pub source: Source,
}

pub fn read_extension(form: &Form) -> Result<Extension, ApiError> {
    let mut f = Fields::new(&form.fields, "", &[]);
    let prompt = f.required("prompt")?;
    let seconds = match f.get("seconds") {
        None => None,
        Some(_) => {
            // Read again through the one reader of `seconds` (same messages as create).
            let mut again = Fields::new(&form.fields, "", &[]);
            Some(self::seconds(&mut again, "4")?)
        }
    };
    let source = if let Some(file) = form.files.get("video") {
        f.get("video");
        Source::Upload(file.bytes.clone())
    } else {
        match f.object("video")? {
            Some(o) => {
                let mut inner = Fields::new(o, "video.", &[]);
                let id = inner.required("id")?;
                inner.done()?;
                Source::Video(id)
            }
            None => {
                return Err(ApiError::invalid(
                    "video",
                    "video is required: a video file, or video[id] of a completed video",
                ))
            }
        }
    };
    f.done()?;
    no_other_files(form, &["video"])?;
    Ok(Extension {
        prompt,
        seconds,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(v: Value) -> Form {
        Form {
            fields: v.as_object().unwrap().clone(),
            files: BTreeMap::new(),
        }
    }

    #[test]
    fn sora_defaults_map_to_the_catalog_and_bad_values_name_their_param() {
        let m = Mapping::builtin();
        let c = reelay_core::Catalog::builtin();
        let ok = read_create(&m, &c, &form(json!({"prompt": "a cat"}))).unwrap();
        assert_eq!(ok.endpoint, "text_to_video");
        assert_eq!(ok.body["model"], "veo3.1_fast");
        assert_eq!(ok.body["ratio"], "720:1280");
        assert_eq!(ok.params.seconds, "4");
        reelay_core::TaskSpec::parse(&c, ok.endpoint, &ok.body).unwrap();

        let err = |v: Value| read_create(&m, &c, &form(v)).err().unwrap();
        let e = err(json!({"prompt": "x", "seconds": 8}));
        assert_eq!(
            (e.param.as_deref(), e.code),
            (Some("seconds"), Some("invalid_type"))
        );
        let e = err(json!({"prompt": "x", "size": "wide"}));
        assert_eq!(e.param.as_deref(), Some("size"));
        let e = err(json!({"prompt": "x", "model": "nope"}));
        assert_eq!(e.param.as_deref(), Some("model"));
        assert_eq!(err(json!({})).param.as_deref(), Some("prompt"));
        assert_eq!(
            err(json!({"prompt": "x", "colour": "red"}))
                .param
                .as_deref(),
            Some("colour")
        );
        // An impossible combination: the catalog refuses, the answer names the allowed values.
        let twelve = read_create(&m, &c, &form(json!({"prompt": "x", "seconds": "12"}))).unwrap();
        let e = catalog_error(
            reelay_core::TaskSpec::parse(&c, twelve.endpoint, &twelve.body).unwrap_err(),
            "sora-2",
        );
        assert_eq!(e.param.as_deref(), Some("seconds"));
        assert!(e.message.contains("'4', '6', '8'"), "{}", e.message);
        let wide = read_create(&m, &c, &form(json!({"prompt": "x", "size": "1024x1792"}))).unwrap();
        let e = catalog_error(
            reelay_core::TaskSpec::parse(&c, wide.endpoint, &wide.body).unwrap_err(),
            "sora-2",
        );
        assert_eq!(e.param.as_deref(), Some("size"));
        assert!(e.message.contains("1280x720"), "{}", e.message);
    }

    #[test]
    fn input_reference_forms() {
        let m = Mapping::builtin();
        let c = reelay_core::Catalog::builtin();
        let url = read_create(
            &m,
            &c,
            &form(
                json!({"prompt": "x", "model": "gen4_turbo", "size": "1280x720",
                         "input_reference": {"image_url": "https://e.com/a.png"}}),
            ),
        )
        .unwrap();
        assert_eq!(url.endpoint, "image_to_video");
        assert_eq!(url.body["promptImage"], "https://e.com/a.png");
        let mut f = form(json!({"prompt": "x", "model": "gen4_turbo", "size": "1280x720"}));
        f.files.insert(
            "input_reference".into(),
            Upload {
                bytes: Bytes::from_static(b"\x89PNG\r\n\x1a\nrest"),
            },
        );
        let file = read_create(&m, &c, &f).unwrap();
        assert_eq!(file.body["promptImage"], PENDING_FILE);
        assert_eq!(file.file.as_ref().unwrap().0, "image/png");
        f.files.get_mut("input_reference").unwrap().bytes = Bytes::from_static(b"GIF89a");
        assert_eq!(
            read_create(&m, &c, &f).err().unwrap().param.as_deref(),
            Some("input_reference")
        );
        let e = read_create(&m, &c, &form(json!({"prompt": "x", "model": "gen4_turbo"}))).err();
        assert!(e.unwrap().message.contains("needs an input_reference"));
    }
}
