//! The quick-start dialect's mapping from quality, duration and aspect ratio to catalog models
//! and pixel ratios: data (`crates/core/catalog/quickstart.json`), not code.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(rename = "_comment", default)]
    _comment: Option<String>,
    pub durations: Vec<i64>,
    pub qualities: Vec<String>,
    pub default_quality: String,
    /// Combinations refused with their message (10 s + 1080p).
    pub invalid: Vec<Invalid>,
    pub max_prompt_chars: usize,
    pub aspect_ratios: Vec<String>,
    /// quality → aspect ratio → model and pixel ratio, for text-to-video.
    pub text: BTreeMap<String, BTreeMap<String, Target>>,
    /// quality → model and the pixel ratios it takes; the image's shape picks the nearest.
    pub image: BTreeMap<String, ImageTarget>,
    pub extend_duration: i64,
    pub max_image_bytes: u64,
    pub aleph: Aleph,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invalid {
    pub duration: i64,
    pub quality: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub model: String,
    pub ratio: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTarget {
    pub model: String,
    pub ratios: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aleph {
    pub model: String,
    pub aspect_ratios: Vec<String>,
    pub max_video_bytes: u64,
}

use crate::dialects::aspect;

impl Mapping {
    pub fn builtin() -> Mapping {
        Mapping::from_json(reelay_core::QUICKSTART_MAP_JSON).expect("the built-in mapping is valid")
    }

    pub fn from_json(text: &str) -> Result<Mapping, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// Every target must be a model of its endpoint that takes the ratio and the durations.
    pub fn check(&self, catalog: &reelay_core::Catalog) -> Result<(), String> {
        let model_of = |endpoint: &str, model: &str| {
            catalog
                .endpoint(endpoint)
                .and_then(|e| e.models.get(model))
                .ok_or_else(|| format!("{model} is not a model of {endpoint}"))
        };
        for q in &self.qualities {
            let text = self.text.get(q).ok_or(format!("text has no {q}"))?;
            for ar in &self.aspect_ratios {
                let t = text.get(ar).ok_or(format!("text.{q} has no {ar}"))?;
                model_of("text_to_video", &t.model)?;
            }
            let img = self.image.get(q).ok_or(format!("image has no {q}"))?;
            model_of("image_to_video", &img.model)?;
            if img.ratios.iter().any(|r| aspect(r).is_none()) || img.ratios.is_empty() {
                return Err(format!("image.{q}.ratios must be W:H pixel ratios"));
            }
        }
        model_of("video_to_video", &self.aleph.model)?;
        if !self.qualities.contains(&self.default_quality) {
            return Err("default_quality is not one of qualities".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_mapping_matches_the_catalog() {
        Mapping::builtin()
            .check(&reelay_core::Catalog::builtin())
            .unwrap();
    }

    #[test]
    fn nearest_ratio_follows_the_image_shape() {
        let m = Mapping::builtin();
        let r = &m.image["720p"].ratios;
        assert_eq!(crate::dialects::nearest_ratio(r, 1920, 1080), "1280:720");
        assert_eq!(crate::dialects::nearest_ratio(r, 1080, 1920), "720:1280");
        assert_eq!(crate::dialects::nearest_ratio(r, 1000, 1000), "960:960");
        assert_eq!(crate::dialects::nearest_ratio(r, 1024, 768), "1104:832");
        assert_eq!(crate::dialects::nearest_ratio(r, 2560, 1080), "1584:672");
    }
}
