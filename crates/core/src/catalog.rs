//! The model catalog: endpoint → models → the fields each accepts and what it costs.
//!
//! It is data (`catalog/runway.json`, embedded at build time and overridable by a file named in
//! the configuration) because the upstream adds models every few weeks: a new model must be a
//! catalog entry, not a code change. Validation (`validate.rs`) and pricing read only this.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::error::CoreError;
pub use crate::kinds::{MediaKind, Operation};

/// Runway's generation endpoints (`POST /v1/<name>`); the catalog has an entry for each.
pub const GENERATION_ENDPOINTS: [&str; 14] = [
    "image_to_video",
    "text_to_video",
    "video_to_video",
    "character_performance",
    "video_upscale",
    "text_to_image",
    "image_upscale",
    "sound_effect",
    "text_to_speech",
    "speech_to_speech",
    "voice_dubbing",
    "voice_isolation",
    "video_to_audio",
    "video_to_hdr",
];

/// The catalog shipped with reelay.
pub const BUILTIN_JSON: &str = include_str!("../catalog/runway.json");

/// How the reverse dialect's routes, model names and ratio words map onto the catalog.
pub const REVERSE_MAP_JSON: &str = include_str!("../catalog/reverse.json");

/// How the quick-start dialect's quality, duration and ratio map onto catalog models.
pub const QUICKSTART_MAP_JSON: &str = include_str!("../catalog/quickstart.json");

/// How OpenAI's `/v1/videos` model names, sizes and seconds map onto catalog models.
pub const OPENAI_MAP_JSON: &str = include_str!("../catalog/openai.json");

/// The bound of a text field whose catalog entry names none: the largest bound the upstream
/// itself names for any field, so no request the upstream would take is refused, while a
/// 20 MiB "prompt" is (a catalog file may set its own with `text_max_utf16`).
pub const DEFAULT_TEXT_MAX_UTF16: usize = 32_000;

#[derive(Debug, Clone)]
pub struct Catalog {
    endpoints: BTreeMap<String, EndpointSpec>,
}

#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub name: String,
    pub operation: Operation,
    pub models: BTreeMap<String, ModelSpec>,
    /// Models the upstream no longer serves, with the message a client gets for them.
    pub retired: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    pub price: Price,
    /// What the model produces, for content types and media handling.
    #[serde(default)]
    pub output: Option<MediaKind>,
    /// The model name to send upstream, when it differs from the public one.
    #[serde(default)]
    pub upstream_model: Option<String>,
}

/// What one body field accepts. `validate.rs` gives each variant its meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldSpec {
    /// A non-empty string; `max_utf16` counts UTF-16 code units as Runway does.
    Text {
        #[serde(default)]
        max_utf16: Option<usize>,
    },
    /// One of `values` (or of the shared list named `list`); with `pixel_range`, any `W:H`
    /// whose pixel count lies in the range is accepted too.
    Enum {
        #[serde(default)]
        values: Vec<String>,
        #[serde(default)]
        list: Option<String>,
        #[serde(default)]
        pixel_range: Option<[u64; 2]>,
    },
    /// An integer in `[min, max]` or one of `values`; `auto` also allows the string "auto".
    Int {
        #[serde(default)]
        min: Option<i64>,
        #[serde(default)]
        max: Option<i64>,
        #[serde(default)]
        values: Vec<i64>,
        #[serde(default)]
        auto: bool,
        #[serde(default)]
        default: Option<i64>,
    },
    Number {
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
    },
    Bool,
    /// A media reference string: HTTPS URL, `runway://` upload or data URI of this kind.
    Media {
        kind: MediaKind,
    },
    /// `promptImage`: a string, or an array of `{uri, position}` keyframes with these
    /// positions, or (when `references`) of `{uri}` references.
    PromptImage {
        #[serde(default)]
        positions: Vec<String>,
        #[serde(default)]
        references: bool,
        #[serde(default)]
        max_items: Option<usize>,
    },
    /// `{"type": <one of types>, "uri": ...}`.
    TypedMedia {
        types: Vec<MediaKind>,
    },
    /// An array of `{uri, ...}` objects of one media kind. `typed`: each item also carries
    /// `"type": <kind>`. `item_fields`: further optional keys of each item.
    MediaList {
        kind: MediaKind,
        #[serde(default)]
        min_items: Option<usize>,
        #[serde(default)]
        max_items: Option<usize>,
        #[serde(default)]
        typed: bool,
        #[serde(default)]
        allow_string: bool,
        #[serde(default)]
        item_fields: BTreeMap<String, FieldSpec>,
    },
    /// An array of strings (e.g. colours), each of at most `item_max_utf16` UTF-16 units.
    StringList {
        #[serde(default)]
        max_items: Option<usize>,
        #[serde(default)]
        item_max_utf16: Option<usize>,
    },
    /// An object; with `fields`, its keys are checked (unknown keys rejected); without, any.
    Object {
        #[serde(default)]
        fields: Option<BTreeMap<String, FieldSpec>>,
        #[serde(default)]
        required: Vec<String>,
    },
    /// An array of objects checked against `fields`.
    ObjectList {
        fields: BTreeMap<String, FieldSpec>,
        #[serde(default)]
        required: Vec<String>,
        #[serde(default)]
        max_items: Option<usize>,
    },
    /// Anything: the upstream's schema leaves it untyped.
    Any,
}

/// What a task costs in credits. The parts add up; `per_second` is multiplied by the requested
/// duration (`default_seconds` when absent, `max_seconds` for `"auto"`, which is billed at the
/// maximum up front as Runway does), `per_image` by `outputCount` (default 1).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub per_second: Option<f64>,
    #[serde(default)]
    pub per_image: Option<i64>,
    #[serde(default)]
    pub flat: Option<i64>,
    #[serde(default)]
    pub default_seconds: Option<f64>,
    #[serde(default)]
    pub max_seconds: Option<f64>,
    /// Extra credits per second when a boolean field is true (Veo's `audio`).
    #[serde(default)]
    pub per_second_if: BTreeMap<String, f64>,
}

impl Price {
    pub fn credits_for(&self, body: &serde_json::Map<String, Value>) -> i64 {
        let seconds = match body.get("duration") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) if s == "auto" => self.max_seconds.or(self.default_seconds),
            _ => self.default_seconds,
        }
        .unwrap_or(0.0);
        let mut per_second = self.per_second.unwrap_or(0.0);
        for (field, extra) in &self.per_second_if {
            if body.get(field).and_then(Value::as_bool) == Some(true) {
                per_second += extra;
            }
        }
        let count = body
            .get("outputCount")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(1);
        // Float to integer `as` saturates, so an absurd duration cannot wrap to a small price.
        let by_time = (per_second * seconds.max(0.0)).ceil() as i64;
        let total = by_time
            .saturating_add(self.per_image.unwrap_or(0).saturating_mul(count))
            .saturating_add(self.flat.unwrap_or(0));
        total.max(0)
    }

    /// Whether any part of the price can charge anything.
    fn charges(&self) -> bool {
        self.per_second.is_some_and(|p| p > 0.0)
            || self.per_image.is_some_and(|p| p > 0)
            || self.flat.is_some_and(|p| p > 0)
            || self.per_second_if.values().any(|p| *p > 0.0)
    }

    /// Why the price cannot be used, if it cannot: a negative or non-finite part, or nothing
    /// that charges (a priced model costs at least 1 credit; a free model is a configuration
    /// mistake that would give work away).
    fn problem(&self) -> Option<String> {
        let floats = [self.per_second, self.default_seconds, self.max_seconds]
            .into_iter()
            .flatten()
            .chain(self.per_second_if.values().copied());
        for f in floats {
            if !f.is_finite() || f < 0.0 {
                return Some(format!("price part {f} is negative or not finite"));
            }
        }
        if [self.per_image, self.flat]
            .into_iter()
            .flatten()
            .any(|n| n < 0)
        {
            return Some("price part is negative".into());
        }
        if !self.charges() {
            return Some("price charges nothing".into());
        }
        None
    }

    fn per_second_priced(&self) -> bool {
        self.per_second.is_some_and(|p| p > 0.0) || !self.per_second_if.is_empty()
    }
}

// The file's own shape; `like` and shared ratio lists are resolved while loading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
    #[serde(default = "default_text_max")]
    text_max_utf16: usize,
    endpoints: BTreeMap<String, RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    operation: Operation,
    models: BTreeMap<String, Value>,
    #[serde(default)]
    retired: BTreeMap<String, String>,
}

impl Catalog {
    pub fn builtin() -> Catalog {
        Catalog::from_json(BUILTIN_JSON).expect("the built-in catalog is valid (tested)")
    }

    /// Parses a catalog. A model entry may say `"like": "<other model of the endpoint>"` to
    /// start from that model's entry; its own keys then replace the other's (and `fields` are
    /// merged key by key, a `null` field removing one).
    pub fn from_json(text: &str) -> Result<Catalog, CoreError> {
        let raw: RawCatalog =
            serde_json::from_str(text).map_err(|e| CoreError::Catalog(e.to_string()))?;
        let mut endpoints = BTreeMap::new();
        for (name, ep) in raw.endpoints {
            let mut models = BTreeMap::new();
            for (model, value) in &ep.models {
                let resolved = resolve_like(&ep.models, model, value, 0)
                    .map_err(|e| CoreError::Catalog(format!("{name}.{model}: {e}")))?;
                let mut spec: ModelSpec = serde_json::from_value(resolved)
                    .map_err(|e| CoreError::Catalog(format!("{name}.{model}: {e}")))?;
                for field in spec.fields.values_mut() {
                    expand_lists(field, &raw.lists)
                        .map_err(|e| CoreError::Catalog(format!("{name}.{model}: {e}")))?;
                    bound_text(field, raw.text_max_utf16);
                }
                for req in &spec.required {
                    if !spec.fields.contains_key(req) {
                        return Err(CoreError::Catalog(format!(
                            "{name}.{model}: required field {req} has no field spec"
                        )));
                    }
                }
                models.insert(model.clone(), spec);
            }
            endpoints.insert(
                name.clone(),
                EndpointSpec {
                    name,
                    operation: ep.operation,
                    models,
                    retired: ep.retired,
                },
            );
        }
        let catalog = Catalog { endpoints };
        catalog.check()?;
        Ok(catalog)
    }

    /// The checks every loaded catalog passes, so a bad entry stops the start instead of
    /// reaching a client: every text field (at any depth) resolves to a length bound, every
    /// price charges something and nothing negative, and a model priced per second refuses a
    /// duration under 1 s (a zero-second request would otherwise be free work; Runway's own
    /// minimum for every per-second model is at least 1 s).
    pub fn check(&self) -> Result<(), CoreError> {
        for ep in self.endpoints.values() {
            for (model, spec) in &ep.models {
                let at = |what: String| CoreError::Catalog(format!("{}.{model}: {what}", ep.name));
                for (name, field) in &spec.fields {
                    if let Some(path) = unbounded_text(field) {
                        return Err(at(format!("text field {name}{path} has no length bound")));
                    }
                }
                if let Some(problem) = spec.price.problem() {
                    return Err(at(problem));
                }
                if spec.price.per_second_priced() {
                    let min = match spec.fields.get("duration") {
                        Some(FieldSpec::Int { min, values, .. }) if values.is_empty() => {
                            min.map(|m| m as f64)
                        }
                        Some(FieldSpec::Int { values, .. }) => {
                            values.iter().copied().min().map(|m| m as f64)
                        }
                        Some(FieldSpec::Number { min, .. }) => *min,
                        Some(_) => Some(1.0),
                        // No duration field: the price's own default applies.
                        None => spec.price.default_seconds.or(Some(0.0)),
                    };
                    if min.is_none_or(|m| m < 1.0) {
                        return Err(at(
                            "priced per second, but a duration under 1 s is accepted".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Replaces prices from configuration. A key is `model` (that model on every endpoint that
    /// serves it) or `endpoint/model`; a key that names nothing is an error, so a typo in the
    /// configuration cannot silently leave the old price in place.
    pub fn override_prices(&mut self, prices: &BTreeMap<String, Price>) -> Result<(), CoreError> {
        for (key, price) in prices {
            let (endpoint, model) = match key.split_once('/') {
                Some((e, m)) => (Some(e), m),
                None => (None, key.as_str()),
            };
            let mut hits = 0;
            for ep in self.endpoints.values_mut() {
                if endpoint.is_some_and(|e| e != ep.name) {
                    continue;
                }
                if let Some(spec) = ep.models.get_mut(model) {
                    spec.price = price.clone();
                    hits += 1;
                }
            }
            if hits == 0 {
                return Err(CoreError::Catalog(format!(
                    "price override {key:?} names no model of the catalog"
                )));
            }
        }
        self.check()
    }

    pub fn endpoint(&self, name: &str) -> Option<&EndpointSpec> {
        self.endpoints.get(name)
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointSpec> {
        self.endpoints.values()
    }

    /// The values an enum field of a model takes (shared lists resolved); `None` when the
    /// model has no such enum field.
    pub fn enum_values(&self, endpoint: &str, model: &str, field: &str) -> Option<&[String]> {
        match self
            .endpoint(endpoint)?
            .models
            .get(model)?
            .fields
            .get(field)?
        {
            FieldSpec::Enum { values, .. } => Some(values),
            _ => None,
        }
    }

    /// Every model name across endpoints, for `/v1/organization`.
    pub fn model_names(&self) -> std::collections::BTreeSet<&str> {
        self.endpoints
            .values()
            .flat_map(|e| e.models.keys().map(String::as_str))
            .collect()
    }
}

fn default_text_max() -> usize {
    DEFAULT_TEXT_MAX_UTF16
}

fn resolve_like(
    models: &BTreeMap<String, Value>,
    name: &str,
    value: &Value,
    depth: usize,
) -> Result<Value, String> {
    if depth > 8 {
        return Err("`like` chain too deep".into());
    }
    let Value::Object(own) = value else {
        return Err("model entry must be an object".into());
    };
    let Some(base_name) = own.get("like") else {
        return Ok(value.clone());
    };
    let base_name = base_name.as_str().ok_or("`like` must be a string")?;
    let base_value = models
        .get(base_name)
        .ok_or_else(|| format!("`like` names unknown model {base_name}"))?;
    let base = resolve_like(models, base_name, base_value, depth + 1)?;
    let Value::Object(mut merged) = base else {
        unreachable!()
    };
    for (k, v) in own {
        match k.as_str() {
            "like" => {}
            "fields" => {
                let mut fields = merged
                    .remove("fields")
                    .unwrap_or(Value::Object(Default::default()));
                let fobj = fields.as_object_mut().ok_or("fields must be an object")?;
                for (fk, fv) in v.as_object().ok_or("fields must be an object")? {
                    if fv.is_null() {
                        fobj.remove(fk);
                    } else {
                        fobj.insert(fk.clone(), fv.clone());
                    }
                }
                merged.insert("fields".into(), fields);
            }
            _ => {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    let _ = name;
    Ok(Value::Object(merged))
}

fn expand_lists(
    field: &mut FieldSpec,
    lists: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    match field {
        FieldSpec::Enum { values, list, .. } => {
            if let Some(name) = list.take() {
                let extra = lists
                    .get(&name)
                    .ok_or_else(|| format!("unknown list {name}"))?;
                values.extend(extra.iter().cloned());
            }
            if values.is_empty() {
                return Err("enum without values".into());
            }
        }
        FieldSpec::Object {
            fields: Some(fields),
            ..
        }
        | FieldSpec::ObjectList { fields, .. }
        | FieldSpec::MediaList {
            item_fields: fields,
            ..
        } => {
            for f in fields.values_mut() {
                expand_lists(f, lists)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Gives every text field without a bound the catalog's default, at any depth.
fn bound_text(field: &mut FieldSpec, default: usize) {
    match field {
        FieldSpec::Text { max_utf16 } => {
            max_utf16.get_or_insert(default);
        }
        FieldSpec::StringList { item_max_utf16, .. } => {
            item_max_utf16.get_or_insert(default);
        }
        FieldSpec::Object {
            fields: Some(fields),
            ..
        }
        | FieldSpec::ObjectList { fields, .. }
        | FieldSpec::MediaList {
            item_fields: fields,
            ..
        } => fields.values_mut().for_each(|f| bound_text(f, default)),
        _ => {}
    }
}

/// The path (`""` for the field itself, `.key` below it) of a text field with no bound.
fn unbounded_text(field: &FieldSpec) -> Option<String> {
    match field {
        FieldSpec::Text { max_utf16: None }
        | FieldSpec::StringList {
            item_max_utf16: None,
            ..
        } => Some(String::new()),
        FieldSpec::Object {
            fields: Some(fields),
            ..
        }
        | FieldSpec::ObjectList { fields, .. }
        | FieldSpec::MediaList {
            item_fields: fields,
            ..
        } => fields
            .iter()
            .find_map(|(k, f)| unbounded_text(f).map(|rest| format!(".{k}{rest}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_overrides_apply_by_model_or_endpoint_and_reject_unknown_names() {
        let mut c = Catalog::builtin();
        let flat = |n| Price {
            flat: Some(n),
            ..Price::default()
        };
        let mut o = BTreeMap::new();
        o.insert("gen4_turbo".to_string(), flat(7));
        o.insert("text_to_image/gen4_image".to_string(), flat(9));
        c.override_prices(&o).unwrap();
        let body = serde_json::Map::new();
        let m = &c.endpoint("image_to_video").unwrap().models["gen4_turbo"];
        assert_eq!(m.price.credits_for(&body), 7);
        assert_eq!(
            c.endpoint("text_to_image").unwrap().models["gen4_image"]
                .price
                .credits_for(&body),
            9
        );
        let mut bad = BTreeMap::new();
        bad.insert("gen9_ultra".to_string(), flat(1));
        assert!(c.override_prices(&bad).is_err());
        let mut bad = BTreeMap::new();
        bad.insert("image_to_video/gen4_image".to_string(), flat(1));
        assert!(c.override_prices(&bad).is_err());
    }

    #[test]
    fn builtin_catalog_loads_and_prices_every_model() {
        let c = Catalog::builtin();
        let mut n = 0;
        for ep in c.endpoints() {
            for (name, m) in &ep.models {
                let p = &m.price;
                assert!(
                    p.per_second.is_some() || p.per_image.is_some() || p.flat.is_some(),
                    "{}.{name} has no price",
                    ep.name
                );
                n += 1;
            }
        }
        assert!(n > 10);
        let names: Vec<&str> = c.endpoints().map(|e| e.name.as_str()).collect();
        let mut expected = GENERATION_ENDPOINTS.to_vec();
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn like_merges_fields() {
        let c = Catalog::from_json(
            r#"{"endpoints":{"x":{"operation":"text_to_video","models":{
                "a":{"required":["p"],"fields":{"p":{"type":"text"},"q":{"type":"bool"}},"price":{"flat":1}},
                "b":{"like":"a","fields":{"q":null,"r":{"type":"bool"}},"price":{"flat":2}}}}}}"#,
        )
        .unwrap();
        let b = &c.endpoint("x").unwrap().models["b"];
        assert!(
            b.fields.contains_key("p") && b.fields.contains_key("r") && !b.fields.contains_key("q")
        );
        assert_eq!(b.price.flat, Some(2));
    }

    fn load(models: &str) -> Result<Catalog, CoreError> {
        Catalog::from_json(&format!(
            r#"{{"endpoints":{{"x":{{"operation":"text_to_video","models":{{{models}}}}}}}}}"#
        ))
    }

    #[test]
    fn every_text_field_gets_a_bound_at_any_depth() {
        let c = load(
            r#""a":{"fields":{"p":{"type":"text"},"q":{"type":"text","max_utf16":5},
                "o":{"type":"object_list","fields":{"t":{"type":"text"}}},
                "s":{"type":"string_list"}},"price":{"flat":1}}"#,
        )
        .unwrap();
        let f = &c.endpoint("x").unwrap().models["a"].fields;
        assert!(matches!(
            f["p"],
            FieldSpec::Text {
                max_utf16: Some(DEFAULT_TEXT_MAX_UTF16)
            }
        ));
        assert!(matches!(f["q"], FieldSpec::Text { max_utf16: Some(5) }));
        let FieldSpec::ObjectList { fields, .. } = &f["o"] else {
            panic!()
        };
        assert!(matches!(
            fields["t"],
            FieldSpec::Text { max_utf16: Some(_) }
        ));
        assert!(matches!(
            f["s"],
            FieldSpec::StringList {
                item_max_utf16: Some(_),
                ..
            }
        ));
        for ep in Catalog::builtin().endpoints() {
            for (model, spec) in &ep.models {
                for (name, field) in &spec.fields {
                    assert_eq!(unbounded_text(field), None, "{}.{model}.{name}", ep.name);
                }
            }
        }
        // A catalog file may choose its own default.
        let c = Catalog::from_json(
            r#"{"text_max_utf16":7,"endpoints":{"x":{"operation":"text_to_video","models":{
                "a":{"fields":{"p":{"type":"text"}},"price":{"flat":1}}}}}}"#,
        )
        .unwrap();
        assert!(matches!(
            c.endpoint("x").unwrap().models["a"].fields["p"],
            FieldSpec::Text { max_utf16: Some(7) }
        ));
    }

    #[test]
    fn free_or_negative_prices_and_zero_second_durations_are_refused_at_load() {
        for bad in [
            r#""a":{"price":{}}"#,
            r#""a":{"price":{"flat":0}}"#,
            r#""a":{"price":{"flat":-3,"per_image":5}}"#,
            r#""a":{"fields":{"duration":{"type":"number","min":0}},"price":{"per_second":2}}"#,
            r#""a":{"fields":{"duration":{"type":"int"}},"price":{"per_second":2}}"#,
            r#""a":{"price":{"per_second":2}}"#,
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
        for good in [
            r#""a":{"price":{"flat":1}}"#,
            r#""a":{"fields":{"duration":{"type":"number","min":1}},"price":{"per_second":0.5}}"#,
            r#""a":{"fields":{"duration":{"type":"int","values":[5,10]}},"price":{"per_second":2}}"#,
            r#""a":{"price":{"per_second":2,"default_seconds":5}}"#,
        ] {
            load(good).unwrap_or_else(|e| panic!("{good}: {e:?}"));
        }
        // A price override is checked like the file.
        let mut c = Catalog::builtin();
        let mut o = BTreeMap::new();
        o.insert("gen4_turbo".to_string(), Price::default());
        assert!(c.override_prices(&o).is_err());
    }

    #[test]
    fn prices_saturate_instead_of_wrapping() {
        let p = Price {
            per_second: Some(1e300),
            per_image: Some(i64::MAX),
            flat: Some(i64::MAX),
            ..Price::default()
        };
        let mut body = serde_json::Map::new();
        body.insert("duration".into(), serde_json::json!(1e300));
        body.insert("outputCount".into(), serde_json::json!(i64::MAX));
        assert_eq!(p.credits_for(&body), i64::MAX);
        body.insert("duration".into(), serde_json::json!(-5));
        assert!(p.credits_for(&body) > 0);
    }
}
