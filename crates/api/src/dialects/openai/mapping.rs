//! OpenAI's model names, sizes and seconds onto catalog models: data
//! (`crates/core/catalog/openai.json`), not code. The catalog itself says which ratio and
//! duration each model takes; this file only names the models.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(rename = "_comment", default)]
    _comment: Option<String>,
    pub default_model: String,
    pub default_size: String,
    pub default_seconds: String,
    /// OpenAI model name → catalog model (`sora-2` → a Runway-family model).
    pub aliases: BTreeMap<String, String>,
    /// The `video_to_video` model a remix runs on.
    pub remix_model: String,
    /// The `image_to_video` model an extension runs on when the source's model has no
    /// image-to-video form.
    pub extend_model: String,
    /// Largest `input_reference` image taken, in bytes.
    pub max_image_bytes: usize,
    /// `openai-poll-after-ms` on answers about unfinished videos (the SDK's poll interval).
    pub poll_after_ms: u64,
}

impl Mapping {
    pub fn builtin() -> Mapping {
        Mapping::from_json(reelay_core::OPENAI_MAP_JSON).expect("the built-in mapping is valid")
    }

    pub fn from_json(text: &str) -> Result<Mapping, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The catalog model a client's model name means: an alias, else the name itself.
    pub fn resolve<'a>(&'a self, model: &'a str) -> &'a str {
        self.aliases.get(model).map(String::as_str).unwrap_or(model)
    }

    /// Every alias must name a model of text- or image-to-video; the remix and extension
    /// models must exist on their endpoints.
    pub fn check(&self, catalog: &reelay_core::Catalog) -> Result<(), String> {
        let has = |endpoint: &str, model: &str| {
            catalog
                .endpoint(endpoint)
                .is_some_and(|e| e.models.contains_key(model))
        };
        for (alias, model) in &self.aliases {
            if !has("text_to_video", model) && !has("image_to_video", model) {
                return Err(format!(
                    "aliases.{alias}: {model} is not a text_to_video or image_to_video model"
                ));
            }
        }
        if !has("video_to_video", &self.remix_model) {
            return Err(format!(
                "remix_model: {} is not a video_to_video model",
                self.remix_model
            ));
        }
        if !has("image_to_video", &self.extend_model) {
            return Err(format!(
                "extend_model: {} is not an image_to_video model",
                self.extend_model
            ));
        }
        if crate::dialects::openai::view::ratio_of_size(&self.default_size).is_none() {
            return Err(format!(
                "default_size: {:?} is not WIDTHxHEIGHT",
                self.default_size
            ));
        }
        if self.default_seconds.parse::<i64>().is_err() {
            return Err(format!(
                "default_seconds: {:?} is not a whole number",
                self.default_seconds
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_mapping_matches_the_catalog() {
        let m = Mapping::builtin();
        m.check(&reelay_core::Catalog::builtin()).unwrap();
        assert_eq!(m.resolve("sora-2"), "veo3.1_fast");
        assert_eq!(m.resolve("gen4.5"), "gen4.5");
    }
}
