//! Checks a request body against a catalog model entry and reports problems as zod-style
//! issues (`code`, `path`, `message`), the shape Runway's 400 answers carry.

use serde_json::{Map, Value};

use crate::catalog::{EndpointSpec, FieldSpec};
pub use crate::issue::Issue;
use crate::kinds::MediaKind;
use crate::media_ref;

fn p(path: &[Value], key: impl Into<Value>) -> Vec<Value> {
    let mut v = path.to_vec();
    v.push(key.into());
    v
}

/// Validates a body for an endpoint; returns the model name on success.
pub fn validate_body(ep: &EndpointSpec, body: &Value) -> Result<String, Vec<Issue>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![Issue::invalid_type(vec![], "object", Some(body))]);
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) => m.clone(),
        other => {
            return Err(vec![
                Issue::invalid_type(vec!["model".into()], "string", other),
                Issue::new("invalid_union", vec!["model".into()], "Invalid input")
                    .with("note", "No matching discriminator")
                    .with("discriminator", "model")
                    .with("errors", Value::Array(vec![])),
            ])
        }
    };
    let Some(spec) = ep.models.get(&model) else {
        let message = match ep.retired.get(&model) {
            Some(msg) => msg.clone(),
            None => format!(
                "Invalid option: expected one of {}",
                ep.models
                    .keys()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        };
        return Err(vec![Issue::new(
            "invalid_union",
            vec!["model".into()],
            message,
        )
        .with("note", "No matching discriminator")
        .with("discriminator", "model")
        .with("errors", Value::Array(vec![]))]);
    };
    let mut issues = Vec::new();
    check_object(
        obj,
        &spec.fields,
        &spec.required,
        &[],
        &mut issues,
        &["model"],
    );
    if issues.is_empty() {
        Ok(model)
    } else {
        Err(issues)
    }
}

fn check_object(
    obj: &Map<String, Value>,
    fields: &std::collections::BTreeMap<String, FieldSpec>,
    required: &[String],
    path: &[Value],
    issues: &mut Vec<Issue>,
    implicit: &[&str],
) {
    for req in required {
        if obj.get(req).is_none() {
            issues.push(Issue::invalid_type(
                p(path, req.as_str()),
                expected_of(&fields[req]),
                None,
            ));
        }
    }
    let mut unknown = Vec::new();
    for (k, v) in obj {
        if implicit.contains(&k.as_str()) {
            continue;
        }
        match fields.get(k) {
            Some(spec) => {
                // An explicit null for an optional field means "not given" to Runway's schema
                // only where it is nullable; we treat it as absent rather than rejecting.
                if v.is_null() && !required.contains(k) {
                    continue;
                }
                check_field(v, spec, &p(path, k.as_str()), issues)
            }
            None => unknown.push(Value::String(k.clone())),
        }
    }
    if !unknown.is_empty() {
        let names: Vec<String> = unknown
            .iter()
            .map(|k| format!("\"{}\"", k.as_str().unwrap_or_default()))
            .collect();
        issues.push(
            Issue::new(
                "unrecognized_keys",
                path.to_vec(),
                format!(
                    "Unrecognized key{}: {}",
                    if names.len() > 1 { "s" } else { "" },
                    names.join(", ")
                ),
            )
            .with("keys", Value::Array(unknown)),
        );
    }
}

fn expected_of(spec: &FieldSpec) -> &'static str {
    match spec {
        FieldSpec::Text { .. } | FieldSpec::Enum { .. } | FieldSpec::Media { .. } => "string",
        FieldSpec::Int { .. } | FieldSpec::Number { .. } => "number",
        FieldSpec::Bool => "boolean",
        FieldSpec::PromptImage { .. } => "string",
        FieldSpec::TypedMedia { .. } | FieldSpec::Object { .. } => "object",
        FieldSpec::MediaList { .. }
        | FieldSpec::StringList { .. }
        | FieldSpec::ObjectList { .. } => "array",
        FieldSpec::Any => "any",
    }
}

/// Whether `s` has more than `max` UTF-16 code units (how Runway counts string lengths). A
/// string has at most as many units as bytes and at least a quarter as many, so the count is
/// only taken when those cheap bounds cannot decide.
pub fn longer_than_utf16(s: &str, max: usize) -> bool {
    s.len() > max && (s.len() / 4 > max || s.encode_utf16().count() > max)
}

fn check_length(s: &str, max_utf16: Option<usize>, path: Vec<Value>, issues: &mut Vec<Issue>) {
    let Some(max) = max_utf16 else { return };
    if !longer_than_utf16(s, max) {
        return;
    }
    issues.push(
        Issue::new(
            "too_big",
            path,
            format!("Too big: expected string to have <={max} characters"),
        )
        .with("maximum", max)
        .with("origin", "string")
        .with("inclusive", true),
    );
}

fn check_field(v: &Value, spec: &FieldSpec, path: &[Value], issues: &mut Vec<Issue>) {
    let path = path.to_vec();
    match spec {
        FieldSpec::Text { max_utf16 } => match v.as_str() {
            None => issues.push(Issue::invalid_type(path, "string", Some(v))),
            Some("") => issues.push(
                Issue::new(
                    "too_small",
                    path,
                    "Too small: expected string to have >=1 characters",
                )
                .with("minimum", 1)
                .with("origin", "string"),
            ),
            Some(s) => check_length(s, *max_utf16, path, issues),
        },
        FieldSpec::Enum {
            values,
            pixel_range,
            ..
        } => match v.as_str() {
            None => issues.push(Issue::invalid_type(path, "string", Some(v))),
            Some(s) if values.iter().any(|x| x == s) => {}
            Some(s)
                if pixel_range
                    .is_some_and(|r| pixels(s).is_some_and(|px| px >= r[0] && px <= r[1])) => {}
            Some(_) => issues.push(
                Issue::new(
                    "invalid_value",
                    path,
                    format!(
                        "Invalid option: expected one of {}",
                        values
                            .iter()
                            .map(|x| format!("\"{x}\""))
                            .collect::<Vec<_>>()
                            .join("|")
                    ),
                )
                .with(
                    "values",
                    Value::Array(values.iter().cloned().map(Value::String).collect()),
                ),
            ),
        },
        FieldSpec::Int {
            min,
            max,
            values,
            auto,
            ..
        } => {
            if *auto && v.as_str() == Some("auto") {
                return;
            }
            let Some(n) = v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            else {
                let expected = if v.is_number() { "int" } else { "number" };
                issues.push(Issue::invalid_type(path, expected, Some(v)));
                return;
            };
            if !values.is_empty() {
                if !values.contains(&n) {
                    issues.push(
                        Issue::new(
                            "invalid_value",
                            path,
                            format!(
                                "Invalid option: expected one of {}",
                                values
                                    .iter()
                                    .map(|x| x.to_string())
                                    .collect::<Vec<_>>()
                                    .join("|")
                            ),
                        )
                        .with(
                            "values",
                            Value::Array(values.iter().map(|x| (*x).into()).collect()),
                        ),
                    );
                }
                return;
            }
            range_check(
                n as f64,
                min.map(|m| m as f64),
                max.map(|m| m as f64),
                path,
                issues,
            );
        }
        FieldSpec::Number { min, max } => match v.as_f64() {
            None => issues.push(Issue::invalid_type(path, "number", Some(v))),
            Some(n) => range_check(n, *min, *max, path, issues),
        },
        FieldSpec::Bool => {
            if !v.is_boolean() {
                issues.push(Issue::invalid_type(path, "boolean", Some(v)));
            }
        }
        FieldSpec::Media { kind } => check_media(v, *kind, path, issues),
        FieldSpec::PromptImage {
            positions,
            references,
            max_items,
        } => check_prompt_image(v, positions, *references, *max_items, path, issues),
        FieldSpec::TypedMedia { types } => {
            let Some(obj) = v.as_object() else {
                issues.push(Issue::invalid_type(path, "object", Some(v)));
                return;
            };
            let kind = obj
                .get("type")
                .and_then(Value::as_str)
                .and_then(|t| types.iter().copied().find(|k| k.as_str() == t));
            match kind {
                None => issues.push(
                    Issue::new(
                        "invalid_union",
                        p(&path, "type"),
                        format!(
                            "Invalid input: expected type one of {}",
                            types
                                .iter()
                                .map(|k| format!("'{}'", k.as_str()))
                                .collect::<Vec<_>>()
                                .join("|")
                        ),
                    )
                    .with("note", "No matching discriminator")
                    .with("discriminator", "type"),
                ),
                Some(kind) => {
                    match obj.get("uri") {
                        Some(u) => check_media(u, kind, p(&path, "uri"), issues),
                        None => issues.push(Issue::invalid_type(p(&path, "uri"), "string", None)),
                    }
                    for k in obj.keys().filter(|k| *k != "type" && *k != "uri") {
                        issues.push(
                            Issue::new(
                                "unrecognized_keys",
                                path.clone(),
                                format!("Unrecognized key: \"{k}\""),
                            )
                            .with("keys", Value::Array(vec![k.clone().into()])),
                        );
                    }
                }
            }
        }
        FieldSpec::MediaList {
            kind,
            min_items,
            max_items,
            typed,
            allow_string,
            item_fields,
        } => {
            if *allow_string && v.is_string() {
                check_media(v, *kind, path, issues);
                return;
            }
            let Some(items) = v.as_array() else {
                issues.push(Issue::invalid_type(path, "array", Some(v)));
                return;
            };
            count_check(items.len(), *min_items, *max_items, &path, issues);
            for (i, item) in items.iter().enumerate() {
                let ip = p(&path, i);
                let Some(obj) = media_item(item, *kind, &ip, issues) else {
                    continue;
                };
                if *typed && obj.get("type").and_then(Value::as_str) != Some(kind.as_str()) {
                    issues.push(
                        Issue::new(
                            "invalid_value",
                            p(&ip, "type"),
                            format!("Invalid input: expected \"{}\"", kind.as_str()),
                        )
                        .with("values", Value::Array(vec![kind.as_str().into()])),
                    );
                }
                let rest: Map<String, Value> = obj
                    .iter()
                    .filter(|(k, _)| *k != "uri" && !(*typed && *k == "type"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                check_object(&rest, item_fields, &[], &ip, issues, &[]);
            }
        }
        FieldSpec::StringList {
            max_items,
            item_max_utf16,
        } => {
            let Some(items) = v.as_array() else {
                issues.push(Issue::invalid_type(path, "array", Some(v)));
                return;
            };
            count_check(items.len(), None, *max_items, &path, issues);
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) => check_length(s, *item_max_utf16, p(&path, i), issues),
                    None => issues.push(Issue::invalid_type(p(&path, i), "string", Some(item))),
                }
            }
        }
        FieldSpec::Object { fields, required } => {
            let Some(obj) = v.as_object() else {
                issues.push(Issue::invalid_type(path, "object", Some(v)));
                return;
            };
            if let Some(fields) = fields {
                check_object(obj, fields, required, &path, issues, &[]);
            }
        }
        FieldSpec::ObjectList {
            fields,
            required,
            max_items,
        } => {
            let Some(items) = v.as_array() else {
                issues.push(Issue::invalid_type(path, "array", Some(v)));
                return;
            };
            count_check(items.len(), None, *max_items, &path, issues);
            for (i, item) in items.iter().enumerate() {
                match item.as_object() {
                    Some(obj) => check_object(obj, fields, required, &p(&path, i), issues, &[]),
                    None => issues.push(Issue::invalid_type(p(&path, i), "object", Some(item))),
                }
            }
        }
        FieldSpec::Any => {}
    }
}

fn pixels(ratio: &str) -> Option<u64> {
    let (w, h) = ratio.split_once(':')?;
    Some(w.parse::<u64>().ok()? * h.parse::<u64>().ok()?)
}

fn range_check(
    n: f64,
    min: Option<f64>,
    max: Option<f64>,
    path: Vec<Value>,
    issues: &mut Vec<Issue>,
) {
    if let Some(min) = min {
        if n < min {
            issues.push(
                Issue::new(
                    "too_small",
                    path,
                    format!("Too small: expected number to be >={min}"),
                )
                .with("minimum", min)
                .with("origin", "number")
                .with("inclusive", true),
            );
            return;
        }
    }
    if let Some(max) = max {
        if n > max {
            issues.push(
                Issue::new(
                    "too_big",
                    path,
                    format!("Too big: expected number to be <={max}"),
                )
                .with("maximum", max)
                .with("origin", "number")
                .with("inclusive", true),
            );
        }
    }
}

fn count_check(
    n: usize,
    min: Option<usize>,
    max: Option<usize>,
    path: &[Value],
    issues: &mut Vec<Issue>,
) {
    if let Some(min) = min {
        if n < min {
            issues.push(
                Issue::new(
                    "too_small",
                    path.to_vec(),
                    format!("Too small: expected array to have >={min} items"),
                )
                .with("minimum", min)
                .with("origin", "array"),
            );
        }
    }
    if let Some(max) = max {
        if n > max {
            issues.push(
                Issue::new(
                    "too_big",
                    path.to_vec(),
                    format!("Too big: expected array to have <={max} items"),
                )
                .with("maximum", max)
                .with("origin", "array"),
            );
        }
    }
}

fn check_media(v: &Value, kind: MediaKind, path: Vec<Value>, issues: &mut Vec<Issue>) {
    match v.as_str() {
        None => issues.push(Issue::invalid_type(path, "string", Some(v))),
        Some(s) => {
            if let Err(reason) = media_ref::check(s, kind) {
                issues.push(Issue::custom(path, reason));
            }
        }
    }
}

/// An array item of the `{uri, ...}` shape: checks the object and its `uri`.
fn media_item<'a>(
    item: &'a Value,
    kind: MediaKind,
    path: &[Value],
    issues: &mut Vec<Issue>,
) -> Option<&'a Map<String, Value>> {
    let Some(obj) = item.as_object() else {
        issues.push(Issue::invalid_type(path.to_vec(), "object", Some(item)));
        return None;
    };
    match obj.get("uri") {
        Some(u) => check_media(u, kind, p(path, "uri"), issues),
        None => issues.push(Issue::invalid_type(p(path, "uri"), "string", None)),
    }
    Some(obj)
}

fn check_prompt_image(
    v: &Value,
    positions: &[String],
    references: bool,
    max_items: Option<usize>,
    path: Vec<Value>,
    issues: &mut Vec<Issue>,
) {
    if v.is_string() {
        check_media(v, MediaKind::Image, path, issues);
        return;
    }
    let Some(items) = v.as_array() else {
        issues.push(Issue::invalid_type(path, "string", Some(v)));
        return;
    };
    if items.is_empty() {
        issues.push(
            Issue::new(
                "too_small",
                path,
                "Too small: expected array to have >=1 items",
            )
            .with("minimum", 1)
            .with("origin", "array"),
        );
        return;
    }
    let default_max = if references {
        None
    } else {
        Some(positions.len().max(1))
    };
    count_check(items.len(), None, max_items.or(default_max), &path, issues);
    let mut seen = Vec::new();
    let (mut keyframes, mut refs) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let ip = p(&path, i);
        let Some(obj) = media_item(item, MediaKind::Image, &ip, issues) else {
            continue;
        };
        match obj.get("position") {
            None if references => refs += 1,
            None => issues.push(Issue::invalid_type(p(&ip, "position"), "string", None)),
            Some(pos) => {
                keyframes += 1;
                match pos.as_str() {
                    Some(s) if positions.iter().any(|x| x == s) => {
                        if seen.contains(&s.to_string()) {
                            issues.push(Issue::custom(
                                p(&ip, "position"),
                                format!("Duplicate position \"{s}\""),
                            ));
                        }
                        seen.push(s.to_string());
                    }
                    _ => issues.push(
                        Issue::new(
                            "invalid_value",
                            p(&ip, "position"),
                            format!(
                                "Invalid option: expected one of {}",
                                positions
                                    .iter()
                                    .map(|x| format!("\"{x}\""))
                                    .collect::<Vec<_>>()
                                    .join("|")
                            ),
                        )
                        .with(
                            "values",
                            Value::Array(positions.iter().cloned().map(Value::String).collect()),
                        ),
                    ),
                }
            }
        }
        for k in obj.keys().filter(|k| *k != "uri" && *k != "position") {
            issues.push(
                Issue::new(
                    "unrecognized_keys",
                    ip.clone(),
                    format!("Unrecognized key: \"{k}\""),
                )
                .with("keys", Value::Array(vec![k.clone().into()])),
            );
        }
    }
    if keyframes > 0 && refs > 0 {
        issues.push(Issue::custom(
            path.clone(),
            "Keyframes and reference images cannot be mixed",
        ));
    }
    // Models with a first+last mode require the first frame; "last only" is refused.
    if keyframes > 0
        && seen.iter().any(|s| s != "first")
        && !seen.iter().any(|s| s == "first")
        && positions.iter().any(|s| s == "first")
    {
        issues.push(Issue::custom(
            path,
            "A \"first\" frame is required when other keyframes are given",
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::catalog::Catalog;
    use crate::spec::TaskSpec;
    use crate::CoreError;

    fn issues(endpoint: &str, body: serde_json::Value) -> Vec<super::Issue> {
        match TaskSpec::parse(&Catalog::builtin(), endpoint, &body) {
            Err(CoreError::Validation(i)) => i,
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_gen4_turbo_body_parses_and_is_priced() {
        let spec = TaskSpec::parse(
            &Catalog::builtin(),
            "image_to_video",
            &json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg", "ratio": "1280:720", "duration": 5, "promptText": "x"}),
        )
        .unwrap();
        assert_eq!(spec.price, 25);
    }

    #[test]
    fn empty_body_names_the_model_discriminator() {
        let i = issues("image_to_video", json!({}));
        assert_eq!(i[0].code, "invalid_type");
        assert_eq!(i[1].code, "invalid_union");
    }

    #[test]
    fn wrong_ratio_unknown_field_and_long_prompt_are_all_reported() {
        let i = issues(
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg", "ratio": "1:1",
                   "promptText": "é".repeat(1001), "bogus": 1}),
        );
        let codes: Vec<&str> = i.iter().map(|x| x.code.as_str()).collect();
        assert!(codes.contains(&"invalid_value"), "{codes:?}");
        assert!(codes.contains(&"too_big"), "{codes:?}");
        assert!(codes.contains(&"unrecognized_keys"), "{codes:?}");
    }

    #[test]
    fn prompt_length_counts_utf16_units() {
        // 500 astral characters are 1000 UTF-16 units: allowed; 501 are not.
        let ok = "😀".repeat(500);
        let body = |t: &str| json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg", "ratio": "1280:720", "promptText": t});
        assert!(TaskSpec::parse(&Catalog::builtin(), "image_to_video", &body(&ok)).is_ok());
        assert!(TaskSpec::parse(
            &Catalog::builtin(),
            "image_to_video",
            &body(&"😀".repeat(501))
        )
        .is_err());
    }

    #[test]
    fn last_only_keyframe_is_refused() {
        let i = issues(
            "image_to_video",
            json!({"model": "veo3.1", "ratio": "1280:720",
                   "promptImage": [{"uri": "https://example.com/a.jpg", "position": "last"}]}),
        );
        assert!(i.iter().any(|x| x.message.contains("first")), "{i:?}");
    }

    #[test]
    fn a_huge_prompt_is_refused_for_every_text_field_without_its_own_bound() {
        let c = crate::catalog::Catalog::builtin();
        let ep = c.endpoint("sound_effect").unwrap();
        let huge = "a".repeat(20 * 1024 * 1024);
        let body = json!({"model": "eleven_text_to_sound_v2", "promptText": huge});
        let issues = super::validate_body(ep, &body).unwrap_err();
        assert_eq!(issues[0].code, "too_big");
        assert_eq!(issues[0].path, vec![json!("promptText")]);
        // Multi-byte text is counted in UTF-16 units, not bytes: 32,000 'é' (64,000 bytes) fit.
        let fits = json!({"model": "eleven_text_to_sound_v2", "promptText": "é".repeat(crate::catalog::DEFAULT_TEXT_MAX_UTF16)});
        assert!(
            super::validate_body(ep, &fits).is_ok(),
            "{:?}",
            super::validate_body(ep, &fits)
        );
    }
}
